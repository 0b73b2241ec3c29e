#!/usr/bin/env bash
# The test cluster is a real Kubernetes API server: CRD schemas with defaults and CEL
# are enforced, watches stream, Pods are stored, ServiceAccount tokens pass TokenReview,
# and mutating webhooks over HTTPS are called on Pod CREATE.
. "$(dirname "$0")/../lib/testlib.sh"
fx=$E2E_ROOT/fixtures

# --- a CRD with a schema ---------------------------------------------------------------
k apply -f "$fx/widget-crd.yaml" >/dev/null
check "CRD becomes Established" \
	k wait --for=condition=Established --timeout=60s crd/widgets.e2e.stoker.io
# Discovery can lag Established by a moment.
wait_for 30 k get widgets -n "$E2E_NS"

k apply -n "$E2E_NS" -f - >/dev/null <<'Y'
apiVersion: e2e.stoker.io/v1alpha1
kind: Widget
metadata: {name: plain}
spec: {ref: {branch: main}}
Y
expect_eq "default applied to spec.size" 3 "$(k get widget plain -n "$E2E_NS" -o jsonpath='{.spec.size}')"
expect_eq "default applied to spec.mode" safe "$(k get widget plain -n "$E2E_NS" -o jsonpath='{.spec.mode}')"

out=$(k apply -n "$E2E_NS" -f - 2>&1 <<'Y'
apiVersion: e2e.stoker.io/v1alpha1
kind: Widget
metadata: {name: too-big}
spec: {size: 11, ref: {tag: v1}}
Y
)
expect_contains "maximum enforced" "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10" "$out"

out=$(k apply -n "$E2E_NS" -f - 2>&1 <<'Y'
apiVersion: e2e.stoker.io/v1alpha1
kind: Widget
metadata: {name: both-refs}
spec: {ref: {branch: main, tag: v1}}
Y
)
expect_contains "CEL rule enforced with its message" "exactly one of branch or tag must be set" "$out"

out=$(k apply -n "$E2E_NS" -f - 2>&1 <<'Y'
apiVersion: e2e.stoker.io/v1alpha1
kind: Widget
metadata: {name: bad-enum}
spec: {mode: reckless, ref: {tag: v1}}
Y
)
expect_contains "enum enforced" 'supported values: "fast", "safe"' "$out"

# Status is a subresource: a status write through the main resource is ignored.
k patch widget plain -n "$E2E_NS" --type merge -p '{"status":{"observedGeneration":5}}' >/dev/null
expect_eq "status ignored on the main resource" "" \
	"$(k get widget plain -n "$E2E_NS" -o jsonpath='{.status.observedGeneration}')"
k patch widget plain -n "$E2E_NS" --subresource status --type merge \
	-p '{"status":{"observedGeneration":1}}' >/dev/null
expect_eq "status written through /status" 1 \
	"$(k get widget plain -n "$E2E_NS" -o jsonpath='{.status.observedGeneration}')"

# --- a watch delivers events -----------------------------------------------------------
rv=$(k get --raw "/apis/e2e.stoker.io/v1alpha1/namespaces/$E2E_NS/widgets" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
k get --raw "/apis/e2e.stoker.io/v1alpha1/namespaces/$E2E_NS/widgets?watch=true&resourceVersion=$rv&timeoutSeconds=30&allowWatchBookmarks=true" \
	>"$E2E_WORK/watch.jsonl" 2>&1 &
watch_pid=$!
on_exit "kill $watch_pid"
sleep 1
k apply -n "$E2E_NS" -f - >/dev/null <<'Y'
apiVersion: e2e.stoker.io/v1alpha1
kind: Widget
metadata: {name: watched}
spec: {ref: {tag: v2}}
Y
k patch widget watched -n "$E2E_NS" --type merge -p '{"spec":{"size":7}}' >/dev/null
k delete widget watched -n "$E2E_NS" >/dev/null
events() { # the event types seen for the object "watched", in order
	python3 -c 'import json,sys
print(" ".join(e["type"] for e in map(json.loads, open(sys.argv[1]))
               if e["object"]["metadata"].get("name") == "watched"))' "$E2E_WORK/watch.jsonl"
}
wait_for 15 grep -q '"type":"DELETED"' "$E2E_WORK/watch.jsonl"
expect_eq "watch from a list resourceVersion streams ADDED, MODIFIED, DELETED" "ADDED MODIFIED DELETED" "$(events)"

# --- a Pod is stored (and stays Pending without a kubelet) -----------------------------
k run e2e-pod -n "$E2E_NS" --image=registry.invalid/none:1 --restart=Never >/dev/null
check "pod stored" k get pod e2e-pod -n "$E2E_NS" -o name
if [ "$STOKER_E2E_NODES" = 0 ]; then
	expect_eq "pod is Pending (no kubelet)" Pending "$(k get pod e2e-pod -n "$E2E_NS" -o jsonpath='{.status.phase}')"
fi
expect_eq "ServiceAccount admission set the default account" default \
	"$(k get pod e2e-pod -n "$E2E_NS" -o jsonpath='{.spec.serviceAccountName}')"

# --- TokenReview ---------------------------------------------------------------------
k create serviceaccount tester -n "$E2E_NS" >/dev/null
token=$(k create token tester -n "$E2E_NS" --audience stoker-source --duration 10m)
review() { # token audience
	k create -o json -f - <<J
{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview",
 "spec":{"token":"$1","audiences":["$2"]}}
J
}
out=$(review "$token" stoker-source)
expect_contains "projected-style token authenticates" '"authenticated": true' "$out"
expect_contains "token names its service account" "\"username\": \"system:serviceaccount:$E2E_NS:tester\"" "$out"
out=$(review "$token" some-other-audience)
check "token for another audience is refused" bash -c '! grep -q "\"authenticated\": true" <<<"$1"' _ "$out"
out=$(review "not-a-token" stoker-source)
check "garbage token is refused" bash -c '! grep -q "\"authenticated\": true" <<<"$1"' _ "$out"

# --- a mutating webhook over HTTPS on the host ------------------------------------------
make_serving_cert "$E2E_WORK/tls"
port=$(free_port)
python3 "$fx/webhook_echo.py" "$STOKER_E2E_HOST" "$port" "$E2E_WORK/tls/tls.crt" \
	"$E2E_WORK/tls/tls.key" "$E2E_WORK/reviews.jsonl" >"$E2E_WORK/webhook.log" 2>&1 &
hook_pid=$!
on_exit "kill $hook_pid"
wait_for 10 grep -q listening "$E2E_WORK/webhook.log"
cfg=e2e-$E2E_NS
on_exit "k delete mutatingwebhookconfiguration $cfg"
k apply -f - >/dev/null <<Y
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: $cfg}
webhooks:
- name: echo.e2e.stoker.io
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 10
  clientConfig:
    url: https://$STOKER_E2E_HOST:$port/mutate
    caBundle: $(base64 -w0 "$E2E_WORK/tls/ca.crt")
  namespaceSelector:
    matchLabels: {kubernetes.io/metadata.name: $E2E_NS}
  rules:
  - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
Y
# Webhook configuration reaches the admission chain asynchronously.
mutated=""
for _ in $(seq 1 50); do
	k delete pod hooked -n "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1
	k run hooked -n "$E2E_NS" --image=registry.invalid/none:1 --restart=Never >/dev/null 2>&1 || true
	mutated=$(k get pod hooked -n "$E2E_NS" -o jsonpath='{.metadata.annotations.e2e\.stoker\.io/mutated}' 2>/dev/null)
	[ "$mutated" = true ] && break
	sleep 0.2
done
expect_eq "webhook patch is in the stored pod" true "$mutated"
check "webhook received a v1 AdmissionReview for a Pod CREATE" \
	python3 -c 'import json,sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    q = r["request"]
    if r["apiVersion"] == "admission.k8s.io/v1" and q["operation"] == "CREATE" and q["kind"]["kind"] == "Pod" and q["namespace"] == sys.argv[2]:
        sys.exit(0)
sys.exit(1)' "$E2E_WORK/reviews.jsonl" "$E2E_NS"
