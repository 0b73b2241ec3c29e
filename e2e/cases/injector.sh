#!/usr/bin/env bash
# The injector behind a real API server: a MutatingWebhookConfiguration calls it over
# HTTPS on loopback with the CA it generated and published itself; every decision
# branch is checked on the Pod as the API server stored it (DESIGN.md §4, §5;
# CONTRACTS.md "Injected sidecar"). With the injector stopped, pods are still created
# (failurePolicy Ignore) and the sync-controller reports MissingSidecar.
. "$(dirname "$0")/../lib/testlib.sh"
root=$(cd "$E2E_ROOT/.." && pwd)
bindir=${STOKER_BUILD_DIR:-$root/build}/bin

k apply -k "$root/config/crd/" >/dev/null
k wait --for=condition=Established --timeout=60s crd --all >/dev/null
run_id=${E2E_NS##*-}
ns0=$E2E_NS-zero ns2=$E2E_NS-two
for n in "$E2E_NS" "$ns0" "$ns2"; do
	k create namespace "$n" >/dev/null 2>&1
	k label namespace "$n" stoker.io/injection=enabled "stoker.io/e2e-run=$run_id" >/dev/null
done
on_exit "k delete namespace $ns0 $ns2 --wait=false"
config=stoker-injector-$E2E_NS
port=$(free_port)

# --- the webhook configuration, as shipped but without caBundle (the injector adds it) ---
apply_config() {
	k apply -f - >/dev/null <<Y
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: $config}
webhooks:
- name: pods.injector.stoker.io
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Ignore
  reinvocationPolicy: IfNeeded
  timeoutSeconds: 5
  clientConfig: {url: "https://127.0.0.1:$port/mutate-v1-pod"}
  rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
  namespaceSelector:
    matchLabels: {stoker.io/injection: enabled, stoker.io/e2e-run: "$run_id"}
Y
}
apply_config
on_exit "k delete mutatingwebhookconfiguration $config"

inj_pid=
inj_metrics=$(free_port)
start_injector() { # [extra injector flags]
	"$bindir/injector" "$@" --kubeconfig "$KUBECONFIG" --leader-elect=false \
		--leader-election-namespace "$E2E_NS" --webhook-bind-address "127.0.0.1:$port" \
		--webhook-config-name "$config" --cert-dns-names 127.0.0.1,localhost \
		--agent-image stoker/agent:e2e --health-probe-bind-address "127.0.0.1:$(free_port)" \
		--metrics-bind-address "127.0.0.1:$inj_metrics" --log-level debug \
		>>"$E2E_WORK/injector.log" 2>&1 &
	inj_pid=$!
}
start_injector
on_exit 'kill $inj_pid'
ca() { k get mutatingwebhookconfiguration "$config" -o jsonpath='{.webhooks[0].clientConfig.caBundle}'; }
has_ca() { [ -n "$(ca)" ]; }
ca_is() { [ "$(ca)" = "$1" ]; }
if wait_for 30 has_ca; then
	ok "injector published its CA into caBundle"
else
	not_ok "caBundle never published"; tail -20 "$E2E_WORK/injector.log"; exit 1
fi
first_ca=$(ca)
check "the pair is kept in a Secret" k get secret "$config-tls" -n "$E2E_NS"

# --- fixtures -----------------------------------------------------------------------------
k apply -n "$E2E_NS" -f - >/dev/null <<'Y'
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: plant}
spec:
  sourceRef: {kind: GitSource, name: repo}
  gateway: {port: 8043, tls: true, apiKeySecretRef: {name: gw-key, key: apiKey}}
  agent: {image: {repository: registry.example/stoker-agent, tag: "7.7"}}
---
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: gitpublic}
spec:
  git: {repo: "https://example.invalid/public.git", ref: main}
  agent: {sourceMode: git}
---
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: sleepy}
spec: {sourceRef: {kind: GitSource, name: repo}, paused: true}
---
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: site}
spec: {mappings: [{source: sites/a, destination: projects}]}
Y
k apply -n "$ns2" -f - >/dev/null <<'Y'
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: one}
spec: {sourceRef: {kind: GitSource, name: repo}}
---
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: two}
spec: {sourceRef: {kind: GitSource, name: repo}}
Y
sleep 1 # the injector's caches see them

# create_pod NS NAME ANNOTATIONS [VOLUME [MOUNT]]: prints kubectl's error on denial.
create_pod() {
	local ns=$1 name=$2 ann=$3 vol=${4:-data} mount=${5:-/usr/local/bin/ignition/data}
	k create -n "$ns" -f - 2>&1 >/dev/null <<Y
apiVersion: v1
kind: Pod
metadata:
  name: $name
  annotations: {$ann}
spec:
  containers:
  - name: gateway
    image: inductiveautomation/ignition
    volumeMounts: [{name: $vol, mountPath: $mount}]
  volumes: [{name: $vol, emptyDir: {}}]
Y
}
pj() { k get pod "$1" -n "${3:-$E2E_NS}" -o jsonpath="$2"; }
agent() { pj "$1" "{.spec.initContainers[?(@.name==\"stoker-agent\")]$2}" "${3:-}"; }
envv() { agent "$1" ".env[?(@.name==\"$2\")].value" "${3:-}"; }
expect_denied() { # description message ns name annotations
	local out
	out=$(create_pod "$3" "$4" "$5")
	if k get pod "$4" -n "$3" >/dev/null 2>&1; then
		not_ok "$1: pod was created"
	else
		expect_contains "$1" "$2" "$out"
	fi
}

# --- not annotated, and the basic injection --------------------------------------------
create_pod "$E2E_NS" plain 'team: x'
expect_eq "not annotated: untouched" "" "$(pj plain '{.spec.initContainers}{.metadata.annotations.stoker\.io/injected}')"

create_pod "$E2E_NS" gw-basic 'stoker.io/inject: "true", stoker.io/cr-name: plant, stoker.io/sync-profile: site, stoker.io/gateway-name: site'
expect_eq "basic: one stoker-agent sidecar" "stoker-agent" "$(pj gw-basic '{.spec.initContainers[*].name}')"
expect_eq "basic: native sidecar" Always "$(agent gw-basic .restartPolicy)"
expect_eq "basic: image from the Stoker" registry.example/stoker-agent:7.7 "$(agent gw-basic .image)"
expect_eq "basic: injected annotation" true "$(pj gw-basic '{.metadata.annotations.stoker\.io/injected}')"
expect_eq "basic: env CR_NAME" plant "$(envv gw-basic CR_NAME)"
expect_eq "basic: env GATEWAY_NAME" site "$(envv gw-basic GATEWAY_NAME)"
expect_eq "basic: env SYNC_PROFILE" site "$(envv gw-basic SYNC_PROFILE)"
expect_eq "basic: env POD_NAME from the downward API" metadata.name \
	"$(agent gw-basic '.env[?(@.name=="POD_NAME")].valueFrom.fieldRef.fieldPath')"
expect_eq "basic: env DATA_PATH" /usr/local/bin/ignition/data "$(envv gw-basic DATA_PATH)"
expect_eq "basic: port from the Stoker" 8043 "$(envv gw-basic GATEWAY_PORT)"
expect_eq "basic: TLS from the Stoker" true "$(envv gw-basic GATEWAY_TLS)"
expect_eq "basic: API key file" /etc/stoker/api-key/apiKey "$(envv gw-basic API_KEY_FILE)"
expect_eq "artifact mode: SOURCE_MODE" artifact "$(envv gw-basic SOURCE_MODE)"
expect_eq "artifact mode: token file" /var/run/secrets/stoker/token "$(envv gw-basic SOURCE_TOKEN_FILE)"
expect_eq "artifact mode: projected token, audience stoker-source" "stoker-source/3600" \
	"$(pj gw-basic '{.spec.volumes[?(@.name=="stoker-token")].projected.sources[0].serviceAccountToken.audience}/{.spec.volumes[?(@.name=="stoker-token")].projected.sources[0].serviceAccountToken.expirationSeconds}')"
expect_eq "artifact mode: no git credentials" "" "$(envv gw-basic GIT_SSH_KEY_FILE)$(envv gw-basic GIT_TOKEN_FILE)"
expect_eq "basic: /repo emptyDir" "{}" "$(pj gw-basic '{.spec.volumes[?(@.name=="stoker-repo")].emptyDir}')"
expect_eq "basic: API key Secret volume" gw-key "$(pj gw-basic '{.spec.volumes[?(@.name=="stoker-api-key")].secret.secretName}')"
# (the API server's ServiceAccount admission adds the API token mount the agent uses)
expect_eq "basic: mounts" "/repo /usr/local/bin/ignition/data /etc/stoker/api-key /var/run/secrets/stoker /var/run/secrets/kubernetes.io/serviceaccount" \
	"$(agent gw-basic '.volumeMounts[*].mountPath')"
expect_eq "basic: security context" "true/true/false/ALL/RuntimeDefault" \
	"$(agent gw-basic '.securityContext.runAsNonRoot')/$(agent gw-basic '.securityContext.readOnlyRootFilesystem')/$(agent gw-basic '.securityContext.allowPrivilegeEscalation')/$(agent gw-basic '.securityContext.capabilities.drop[0]')/$(agent gw-basic '.securityContext.seccompProfile.type')"
expect_eq "basic: no runAsUser (inherits the gateway's)" "" "$(agent gw-basic '.securityContext.runAsUser')"
expect_eq "basic: probes on :8082" "/startupz:8082 /readyz:8082 /healthz:8082" \
	"$(agent gw-basic '.startupProbe.httpGet.path'):$(agent gw-basic '.startupProbe.httpGet.port') $(agent gw-basic '.readinessProbe.httpGet.path'):$(agent gw-basic '.readinessProbe.httpGet.port') $(agent gw-basic '.livenessProbe.httpGet.path'):$(agent gw-basic '.livenessProbe.httpGet.port')"
expect_eq "basic: default resources" "20m/32Mi/128Mi" \
	"$(agent gw-basic '.resources.requests.cpu')/$(agent gw-basic '.resources.requests.memory')/$(agent gw-basic '.resources.limits.memory')"

# --- already injected, image and volume variants, git mode -----------------------------------
k create -n "$E2E_NS" -f - >/dev/null <<'Y'
apiVersion: v1
kind: Pod
metadata:
  name: gw-already
  annotations: {stoker.io/inject: "true", stoker.io/cr-name: plant, stoker.io/sync-profile: site}
spec:
  initContainers: [{name: stoker-agent, image: mine, restartPolicy: Always}]
  containers: [{name: gateway, image: ignition, volumeMounts: [{name: data, mountPath: /data}]}]
  volumes: [{name: data, emptyDir: {}}]
Y
expect_eq "already injected: exactly one sidecar, untouched" "stoker-agent/mine" \
	"$(pj gw-already '{.spec.initContainers[*].name}')/$(agent gw-already .image)"

create_pod "$E2E_NS" gw-image 'stoker.io/inject: "true", stoker.io/cr-name: plant, stoker.io/sync-profile: site, stoker.io/agent-image: "my.registry/agent:9"'
expect_eq "image from the annotation" my.registry/agent:9 "$(agent gw-image .image)"

create_pod "$E2E_NS" gw-ignition 'stoker.io/inject: "true", stoker.io/cr-name: plant, stoker.io/sync-profile: site' ignition-data /var/lib/ignition/data
expect_eq "volume ignition-data: DATA_PATH" /var/lib/ignition/data "$(envv gw-ignition DATA_PATH)"
expect_eq "volume ignition-data: mounted at the gateway's path" /var/lib/ignition/data \
	"$(agent gw-ignition '.volumeMounts[?(@.name=="ignition-data")].mountPath')"
create_pod "$E2E_NS" gw-data 'stoker.io/inject: "true", stoker.io/cr-name: plant, stoker.io/sync-profile: site' data /srv/gw
expect_eq "volume data: DATA_PATH" /srv/gw "$(envv gw-data DATA_PATH)"
expect_eq "volume data: mounted at the gateway's path" /srv/gw "$(agent gw-data '.volumeMounts[?(@.name=="data")].mountPath')"

create_pod "$E2E_NS" gw-git 'stoker.io/inject: "true", stoker.io/cr-name: gitpublic, stoker.io/sync-profile: site'
expect_eq "git mode: SOURCE_MODE" git "$(envv gw-git SOURCE_MODE)"
expect_eq "git mode, public repository: no credential env" "" \
	"$(envv gw-git GIT_SSH_KEY_FILE)$(envv gw-git GIT_TOKEN_FILE)$(envv gw-git GIT_KNOWN_HOSTS_FILE)$(envv gw-git SOURCE_TOKEN_FILE)"
expect_eq "git mode, public repository: no credential or token volume" "data stoker-repo" \
	"$(pj gw-git '{.spec.volumes[*].name}' | tr ' ' '\n' | grep -v '^kube-api-access-' | xargs)"
expect_eq "image: the injector's default" stoker/agent:e2e "$(agent gw-git .image)"
expect_eq "default port and TLS" "8088/false" "$(envv gw-git GATEWAY_PORT)/$(envv gw-git GATEWAY_TLS)"

# --- auto-derived cr-name, denials ------------------------------------------------------------
k delete stokers gitpublic sleepy -n "$E2E_NS" >/dev/null
create_pod "$E2E_NS" gw-auto 'stoker.io/inject: "true", stoker.io/sync-profile: site'
expect_eq "auto-derived with one Stoker: cr-name written back" plant "$(pj gw-auto '{.metadata.annotations.stoker\.io/cr-name}')"
expect_eq "auto-derived: CR_NAME" plant "$(envv gw-auto CR_NAME)"
expect_denied "auto-derive with zero Stokers" "no Stoker found in namespace '$ns0'; create one or set annotation stoker.io/cr-name" \
	"$ns0" gw-zero 'stoker.io/inject: "true", stoker.io/sync-profile: site'
expect_denied "auto-derive with two Stokers" "multiple Stokers in namespace '$ns2' (one, two); set annotation stoker.io/cr-name" \
	"$ns2" gw-two 'stoker.io/inject: "true", stoker.io/sync-profile: site'
expect_denied "Stoker not found" "Stoker 'nope' not found in namespace '$E2E_NS'" \
	"$E2E_NS" gw-nope 'stoker.io/inject: "true", stoker.io/cr-name: nope, stoker.io/sync-profile: site'
k apply -n "$E2E_NS" -f - >/dev/null <<'Y'
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: sleepy}
spec: {sourceRef: {kind: GitSource, name: repo}, paused: true}
Y
sleep 1
expect_denied "Stoker paused" "Stoker 'sleepy' is paused" \
	"$E2E_NS" gw-sleepy 'stoker.io/inject: "true", stoker.io/cr-name: sleepy, stoker.io/sync-profile: site'
expect_denied "SyncProfile not found" "SyncProfile 'ghost' not found in namespace '$E2E_NS'" \
	"$E2E_NS" gw-ghost 'stoker.io/inject: "true", stoker.io/cr-name: plant, stoker.io/sync-profile: ghost'

m=$(curl -fsS "http://127.0.0.1:$inj_metrics/metrics")
expect_contains "admission metric: injected" 'stoker_admission_total{result="injected"}' "$m"
expect_contains "admission metric: denied" 'stoker_admission_total{result="denied"}' "$m"
expect_contains "admission duration histogram" 'stoker_admission_duration_seconds_count' "$m"

# --- self-managed TLS across restarts and a GitOps re-apply -----------------------------------
kill "$inj_pid"
wait "$inj_pid" 2>/dev/null
start_injector
wait_for 20 curl -fsk "https://127.0.0.1:$port/" -o /dev/null -w '%{http_code}' >/dev/null 2>&1 || true
check "restart: same CA (pair read back from the Secret)" test "$(ca)" = "$first_ca"
wait_for 20 bash -c "curl -sk -o /dev/null https://127.0.0.1:$port/mutate-v1-pod"
create_pod "$E2E_NS" gw-restart 'stoker.io/inject: "true", stoker.io/cr-name: plant, stoker.io/sync-profile: site'
expect_eq "restart: the API server still trusts the injector" stoker-agent "$(pj gw-restart '{.spec.initContainers[*].name}')"
apply_config # as a GitOps tool would: without caBundle
sleep 1
if wait_for 20 ca_is "$first_ca"; then ok "caBundle re-published after a re-apply"; else not_ok "caBundle not re-published: '$(ca)'"; fi

# --- self-managed TLS: renewal while running ---------------------------------------------------
# A 45 s certificate is renewed when 15 s are left. Admission goes on throughout: the new
# certificate is served only once the caBundle carries its CA (with the old CA beside it),
# so no review fails TLS — which, with failurePolicy Ignore, would admit a pod without
# its sidecar.
kill "$inj_pid"
wait "$inj_pid" 2>/dev/null
k delete secret "$config-tls" -n "$E2E_NS" >/dev/null
start_injector --cert-validity 45s --cert-check-interval 1s
new_ca() { has_ca && [ "$(ca)" != "$first_ca" ]; }
check "renewal: a new pair and CA for the 45 s certificate" wait_for 30 new_ca
serial() { openssl s_client -connect "127.0.0.1:$port" </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null; }
wait_for 20 bash -c "openssl s_client -connect 127.0.0.1:$port </dev/null 2>/dev/null | grep -q BEGIN"
serial0=$(serial)
. "$E2E_ROOT/lib/gateway.sh"
dry_pod() {
	stk_gateway_pod_yaml renew-probe plant site |
		k create -n "$E2E_NS" --dry-run=server -o jsonpath='{.spec.initContainers[*].name}' -f - 2>&1
}
reviews=0 missed=0 after=0 deadline=$(($(date +%s) + 60))
while [ "$(date +%s)" -lt $deadline ] && [ $after -lt 10 ]; do
	out=$(dry_pod)
	reviews=$((reviews + 1))
	[ "$out" = stoker-agent ] || { missed=$((missed + 1)); echo "# review without the sidecar: $out"; }
	[ -n "$serial0" ] && [ "$(serial)" != "$serial0" ] && after=$((after + 1))
	sleep 0.3
done
check "renewal: a renewed certificate is served without a restart ($serial0 -> $(serial))" test $after -ge 10
expect_eq "renewal: every one of $reviews reviews during the renewal injected the sidecar" 0 "$missed"
k get secret "$config-tls" -n "$E2E_NS" -o jsonpath='{.data.ca\.crt}' | base64 -d >"$E2E_WORK/bundle.pem"
expect_eq "renewal: the Secret's CA bundle holds the new and the previous CA" 2 "$(grep -c 'BEGIN CERTIFICATE' "$E2E_WORK/bundle.pem")"
expect_eq "renewal: the caBundle is the Secret's bundle" "$(k get secret "$config-tls" -n "$E2E_NS" -o jsonpath='{.data.ca\.crt}')" "$(ca)"
openssl s_client -connect "127.0.0.1:$port" </dev/null 2>/dev/null | openssl x509 >"$E2E_WORK/served.pem"
check "renewal: the served certificate verifies against the caBundle" \
	openssl verify -CAfile "$E2E_WORK/bundle.pem" "$E2E_WORK/served.pem"
check "renewal: logged" grep -q '"msg":"serving the renewed certificate"' "$E2E_WORK/injector.log"
expect_eq "--cert-check-interval longer than a sixth of --cert-validity: usage error (2)" 2 \
	"$("$bindir/injector" --webhook-config-name x --cert-dns-names localhost --cert-validity 60s --cert-check-interval 20s >/dev/null 2>&1; echo $?)"
kill "$inj_pid"
wait "$inj_pid" 2>/dev/null
start_injector
wait_for 20 bash -c "curl -sk -o /dev/null https://127.0.0.1:$port/mutate-v1-pod"

# --- injector down: pods still created, and MissingSidecar reported ---------------------------
k apply -n "$E2E_NS" -f - >/dev/null <<'Y'
apiVersion: source.stoker.io/v1alpha1
kind: GitSource
metadata: {name: repo}
spec: {url: "https://example.invalid/repo.git", ref: {branch: main}}
Y
k delete stokers sleepy -n "$E2E_NS" >/dev/null
"$bindir/sync-controller" --kubeconfig "$KUBECONFIG" --leader-elect=false --watch-namespaces "$E2E_NS" \
	--health-probe-bind-address "127.0.0.1:$(free_port)" --metrics-bind-address "127.0.0.1:$(free_port)" \
	>>"$E2E_WORK/sync.log" 2>&1 &
sync_pid=$!
on_exit 'kill $sync_pid'
kill "$inj_pid"
wait "$inj_pid" 2>/dev/null
out=$(create_pod "$E2E_NS" gw-down 'stoker.io/inject: "true", stoker.io/cr-name: plant, stoker.io/sync-profile: site')
expect_eq "injector down: pod created anyway (failurePolicy Ignore)" "" "$out"
expect_eq "injector down: no sidecar" "" "$(pj gw-down '{.spec.initContainers}')"
k patch pod gw-down -n "$E2E_NS" --subresource=status --type=merge -p '{"status":{"phase":"Running"}}' >/dev/null
if wait_for 20 bash -c "[ \"\$('$STOKER_KUBECTL' get stokers plant -n $E2E_NS -o jsonpath='{.status.conditions[?(@.type==\"SidecarInjected\")].reason}')\" = SidecarMissing ]"; then
	expect_contains "sync-controller names the pod" gw-down \
		"$(k get stokers plant -n "$E2E_NS" -o jsonpath='{.status.conditions[?(@.type=="SidecarInjected")].message}')"
else
	not_ok "MissingSidecar not reported: $(k get stokers plant -n "$E2E_NS" -o jsonpath='{.status.conditions}')"
fi
expect_absent "no secret material in the injector's log" "$(cat "$E2E_WORK/injector.log")" "PRIVATE KEY"

# --- mounted TLS files (cert-manager): a renewed pair is served without a restart -----------
mkcert() { # CN dir
	mkdir -p "$2"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
		-subj "/CN=$1" -addext subjectAltName=IP:127.0.0.1 \
		-keyout "$2/tls.key" -out "$2/tls.crt" 2>/dev/null
}
served_cn() { openssl s_client -connect "127.0.0.1:$1" </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null; }
mkcert first "$E2E_WORK/tls"
fport=$(free_port)
"$bindir/injector" --kubeconfig "$KUBECONFIG" --leader-elect=false --webhook-bind-address "127.0.0.1:$fport" \
	--tls-cert-file "$E2E_WORK/tls/tls.crt" --tls-key-file "$E2E_WORK/tls/tls.key" \
	--health-probe-bind-address "127.0.0.1:$(free_port)" --metrics-bind-address "127.0.0.1:$(free_port)" \
	>>"$E2E_WORK/injector-files.log" 2>&1 &
files_pid=$!
on_exit 'kill $files_pid'
served_is() { served_cn "$fport" | grep -q "CN *= *$1"; }
check "mounted files: the pair is served" wait_for 10 served_is first
mkcert second "$E2E_WORK/tls.new"
mv "$E2E_WORK/tls.new/tls.key" "$E2E_WORK/tls/tls.key"
mv "$E2E_WORK/tls.new/tls.crt" "$E2E_WORK/tls/tls.crt"
check "mounted files: a renewed pair is served without a restart" wait_for 25 served_is second
check "mounted files: the injector kept running" kill -0 "$files_pid"
