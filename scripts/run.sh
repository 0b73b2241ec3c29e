#!/usr/bin/env bash
# The main job (`make run`): Stoker working end to end on this machine.
#  - a local Kubernetes control plane (e2e/cluster) with the CRDs;
#  - the daemons as host processes: source-, profile-, sync- and notification-controller
#    and the injector behind the API server's HTTPS admission path;
#  - a demo Git repository with an Ignition-style layout (projects, config resources, a
#    deployment-mode overlay) served by a real git daemon, and a work tree to edit it;
#  - GitSource, SyncProfile and Stoker objects; a gateway pod the injector mutates; the
#    fake Ignition gateway (e2e/fixtures/fake-gateway.py) and its agent.
# Prints what it did, waits until everything is Ready, and keeps running until Ctrl-C;
# another terminal can commit and push to the demo repository and watch it land.
# STOKER_RUN_DIR (default /tmp/stoker-run) holds the repository, the gateway's data
# directory and every log.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bindir=$root/build/bin
run=${STOKER_RUN_DIR:-/tmp/stoker-run}
name=run
ns=demo
PY=/usr/bin/python3
pids=()

stop() {
	trap - EXIT INT TERM
	echo
	echo "Stopping the daemons and the control plane..."
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	e2e/fixtures/git-servers down --dir "$run/git" >/dev/null 2>&1 || true
	e2e/cluster down --name "$name" --quiet >/dev/null 2>&1 || true
	echo "Stopped. The demo repository and the gateway's files stay in $run."
}
trap stop EXIT INT TERM
step() { printf '\n== %s\n' "$*"; }
free_port() { "$PY" "$root/scripts/free-ports"; }
wait_until() { # seconds description command...
	local t=$1 what=$2
	shift 2
	for _ in $(seq $((t * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
	echo "timed out waiting for $what; logs are in $run/logs" >&2
	return 1
}

rm -rf "$run"
mkdir -p "$run/logs"

step "Local control plane"
e2e/cluster up --name "$name" --quiet >/dev/null
eval "$(e2e/cluster env --name "$name")"
k() { "$STOKER_KUBECTL" "$@"; }
echo "kube-apiserver $(k version -o json | $PY -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])') on $(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
k apply -k config/crd/ >/dev/null
k wait --for=condition=Established --timeout=60s crd --all >/dev/null
echo "CRDs installed: $(k get crd -o name | grep -c stoker.io) (kubectl get stoker-all)"

step "Demo Git repository"
eval "$(e2e/fixtures/git-servers up --dir "$run/git")"
eval "$(e2e/fixtures/git-servers repo --dir "$run/git" demo)"
git clone -q "$GIT_REPOS/demo.git" "$run/demo"
git -C "$run/demo" config user.name "Stoker demo"
git -C "$run/demo" config user.email demo@stoker.invalid
overlay=services/site/deployment-modes/dev/ignition/system-properties
mkdir -p "$run/demo/$overlay"
cat >"$run/demo/$overlay/config.json" <<'JSON'
{"systemName": "site-gateway-dev", "httpPort": 8088, "tagHistoryRetentionDays": 7}
JSON
git -C "$run/demo" add -A
git -C "$run/demo" commit -q -m "Add the dev deployment mode"
git -C "$run/demo" push -q origin main
echo "served at $GIT_DAEMON_URL/demo.git; work tree $run/demo"
find "$run/demo/services/site" -type f -not -path '*/.git/*' | sed "s|$run/demo/||" | sort | sed 's/^/  /'

step "Daemons"
k create namespace $ns >/dev/null
k label namespace $ns stoker.io/injection=enabled >/dev/null
start() { # binary args...
	local b=$1
	shift
	"$bindir/$b" --kubeconfig "$KUBECONFIG" --leader-elect=false --log-level info \
		--health-probe-bind-address "127.0.0.1:$(free_port)" "$@" >>"$run/logs/$b.log" 2>&1 &
	pids+=("$!")
	printf '  %-24s pid %-7s log %s\n' "$b" "$!" "$run/logs/$b.log"
}
art_port=$(free_port) inj_port=$(free_port) recv_port=$(free_port)
metrics=(--metrics-bind-address "127.0.0.1:0")
start source-controller "${metrics[@]}" --storage-path "$run/storage" \
	--artifact-bind-address "127.0.0.1:$art_port" --artifact-base-url "http://127.0.0.1:$art_port"
start profile-controller "${metrics[@]}"
start sync-controller "${metrics[@]}"
start notification-controller "${metrics[@]}" --receiver-bind-address "127.0.0.1:$recv_port"
k apply -f - >/dev/null <<Y
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: stoker-injector}
webhooks:
- name: pods.injector.stoker.io
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Ignore
  reinvocationPolicy: IfNeeded
  timeoutSeconds: 5
  clientConfig: {url: "https://127.0.0.1:$inj_port/mutate-v1-pod"}
  rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
  namespaceSelector: {matchLabels: {stoker.io/injection: enabled}}
Y
start injector "${metrics[@]}" --leader-election-namespace default \
	--webhook-bind-address "127.0.0.1:$inj_port" --webhook-config-name stoker-injector \
	--cert-dns-names 127.0.0.1,localhost --agent-image ghcr.io/stoker/agent:demo
has_ca() { [ -n "$(k get mutatingwebhookconfiguration stoker-injector -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" ]; }
wait_until 30 "the injector's CA" has_ca
echo "  the injector published its CA into the webhook configuration"

step "Fake Ignition gateway"
api_key="demo:$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
"$PY" e2e/fixtures/fake-gateway.py --port 0 --port-file "$run/gateway.port" --token "$api_key" \
	--log "$run/logs/gateway-calls.jsonl" >>"$run/logs/fake-gateway.log" 2>&1 &
pids+=("$!")
wait_until 10 "the fake gateway" test -s "$run/gateway.port"
gw_port=$(cat "$run/gateway.port")
echo "  http://127.0.0.1:$gw_port (calls logged to $run/logs/gateway-calls.jsonl)"

step "Stoker objects (namespace $ns)"
hook_key=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
k create secret generic gateway-api-key -n $ns --from-literal=apiKey="$api_key" >/dev/null
k create secret generic webhook -n $ns --from-literal=key="$hook_key" >/dev/null
cat >"$run/objects.yaml" <<Y
apiVersion: source.stoker.io/v1alpha1
kind: GitSource
metadata: {name: demo}
spec: {url: "$GIT_DAEMON_URL/demo.git", ref: {branch: main}, interval: 10s}
---
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: site}
spec:
  mappings:
  - {source: services/site/projects, destination: projects}
  - {source: services/site/config, destination: config}
  deploymentMode: {name: dev, source: services/site/deployment-modes/dev}
  syncPeriod: 10
---
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: demo}
spec:
  sourceRef: {kind: GitSource, name: demo}
  gateway: {port: $gw_port, apiKeySecretRef: {name: gateway-api-key, key: apiKey}}
  webhook: {secretRef: {name: webhook, key: key}}
Y
k apply -n $ns -f "$run/objects.yaml" >/dev/null
sed 's/^/  /' "$run/objects.yaml"
sleep 1 # the injector's caches see them

step "Gateway pod and its agent"
. e2e/lib/gateway.sh
stk_gateway_pod $ns site-gateway-0 demo site
echo "  pod site-gateway-0 created; containers after admission: $(k get pod site-gateway-0 -n $ns -o jsonpath='{.spec.initContainers[*].name} + {.spec.containers[*].name}')"
mkdir -p "$run/gateway/secrets"
printf '%s' "$api_key" >"$run/gateway/secrets/apiKey"
stk_agent_start $ns site-gateway-0 "$run/gateway" "$bindir" "$run/logs/agent.log"
pids+=("$STK_AGENT_PID")
echo "  agent pid $STK_AGENT_PID with the env the injector wrote (paths remapped under $run/gateway)"
ready() { [ "$(k get stk demo -n $ns -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
wait_until 60 "the Stoker to be Ready" ready

step "Ready"
k get stk,sp,gitsrc -n $ns
echo
echo "The gateway's data directory ($run/gateway/data):"
(cd "$run/gateway/data" && find . -type f | sort | sed 's|^\./|  |')
echo
echo "system-properties after the dev overlay: $(cat "$run/gateway/data/config/resources/core/ignition/system-properties/config.json")"

cat <<TXT

Stoker is running. From another terminal:

  export KUBECONFIG=$KUBECONFIG PATH=$(dirname "$STOKER_KUBECTL"):\$PATH
  kubectl get stk,sp,gitsrc -n $ns                      # status; -o yaml for the details
  kubectl get cm stoker-status-demo -n $ns -o jsonpath='{.data.site-gateway-0}'; echo

  # change something and push; the GitSource polls every 10 s:
  cd $run/demo
  sed -i 's/"tagHistoryRetentionDays": 7/"tagHistoryRetentionDays": 14/' $overlay/config.json
  git commit -qam "Keep dev tag history for 14 days" && git push -q
  cat $run/gateway/data/config/resources/core/ignition/system-properties/config.json

  # or tell Stoker at once through the webhook receiver (HMAC with the Stoker's key),
  # as CI would after a push; a tag pins the gateways to it, {"ref":"main"} follows main again:
  sed -i 's/"tagHistoryRetentionDays": 14/"tagHistoryRetentionDays": 30/' $overlay/config.json
  git commit -qam "Keep dev tag history for 30 days" && git tag v1.2.0 && git push -q origin main v1.2.0
  body='{"ref":"v1.2.0"}'
  curl -s -X POST http://127.0.0.1:$recv_port/webhook/$ns/demo -H "X-Hub-Signature-256: sha256=\$(printf %s "\$body" | openssl dgst -sha256 -hmac $hook_key | cut -d' ' -f2)" -d "\$body"

Gateway API calls (scans after each change): $run/logs/gateway-calls.jsonl
Logs: $run/logs/
Press Ctrl-C to stop.
TXT
wait
