#!/usr/bin/env bash
# The agent daemon end to end (DESIGN.md §8), on a local control plane of its own:
# 1. commit pushed → files on the gateway directory, over BENCH_PUSHES pushes (default
#    20) each way: through the reconcile token (the annotation
#    stoker.io/reconcile-requested-at on the GitSource) and through the webhook receiver
#    (a signed GitHub push of the branch the Stoker follows, POSTed to the
#    notification-controller); p50 / p95 / max, with source-, profile-, sync- and
#    notification-controller and the agent as host processes and the fake gateway;
#    target p50 ≤ 2 s. Baseline, same pushes, same git daemon: `git fetch`
#    into a clone plus `git checkout` of the commit (the least a git-sync sidecar does,
#    with no API server in the path).
# 2. agent RSS: idle (after its initial sync, waiting for changes) and peak (VmHWM) while
#    syncing a BENCH_BIG_FILES / BENCH_BIG_MB tree (default 50000 / 1024) from a tar.gz
#    artifact; target ≤ 32 MiB. Baseline: peak RSS of `tar -xzf` of the same artifact.
# Nothing here asserts.
#   bench/pipeline/run.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$build/bin
py=/usr/bin/python3
pushes=${BENCH_PUSHES:-20}
big_files=${BENCH_BIG_FILES:-50000}
big_mb=${BENCH_BIG_MB:-1024}
name=bench-pipeline-$$
work=$(mktemp -d /tmp/stoker-bench-pipeline.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	"$root/e2e/fixtures/git-servers" down --dir "$work/git" >/dev/null 2>&1 || true
	"$root/e2e/cluster" down --name "$name" --quiet >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
free_port() { "$py" "$root/scripts/free-ports"; }
now() { date +%s.%N; }
k() { kubectl_ "$@"; }

"$root/e2e/cluster" up --name "$name" --quiet >/dev/null
eval "$("$root/e2e/cluster" env --name "$name")"
kubectl_() { "$STOKER_KUBECTL" "$@"; }
ns=bench
k create namespace $ns >/dev/null
k apply -k "$root/config/crd/" >/dev/null
k wait --for=condition=Established --timeout=60s crd --all >/dev/null
k create serviceaccount default -n $ns >/dev/null 2>&1 || true

gs=$root/e2e/fixtures/git-servers
eval "$("$gs" up --dir "$work/git")"
eval "$("$gs" repo --dir "$work/git" plant)"

"$py" "$root/e2e/fixtures/fake-gateway.py" --port 0 --port-file "$work/fg.port" --token key \
	>"$work/fg.log" 2>&1 &
pids+=($!)
while [ ! -s "$work/fg.port" ]; do sleep 0.05; done
fg_port=$(cat "$work/fg.port")

art_port=$(free_port)
run() { # name args...
	local n=$1
	shift
	"$bin/$n" --kubeconfig "$KUBECONFIG" --leader-elect=false --watch-namespaces $ns \
		--health-probe-bind-address "127.0.0.1:0" --metrics-bind-address "127.0.0.1:0" \
		"$@" >"$work/$n.log" 2>&1 &
	pids+=($!)
}
run source-controller --storage-path "$work/storage" --artifact-bind-address "127.0.0.1:$art_port" \
	--artifact-base-url "http://127.0.0.1:$art_port"
run profile-controller
run sync-controller
recv_port=$(free_port)
run notification-controller --receiver-bind-address "127.0.0.1:$recv_port"
hook_key=bench-$$-key
k create secret generic hook -n $ns --from-literal=key=$hook_key >/dev/null

k create secret generic gw-key -n $ns --from-literal=apiKey=key >/dev/null
k apply -n $ns -f - >/dev/null <<Y
apiVersion: source.stoker.io/v1alpha1
kind: GitSource
metadata: {name: plant-src}
spec: {url: "$GIT_DAEMON_URL/plant.git", ref: {branch: main}, interval: 1h}
---
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: site}
spec:
  mappings: [{source: services/site/projects, destination: projects}, {source: services/site/config, destination: config}]
  syncPeriod: 300
---
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: plant}
spec:
  sourceRef: {kind: GitSource, name: plant-src}
  gateway: {port: $fg_port, apiKeySecretRef: {name: gw-key, key: apiKey}}
  webhook: {secretRef: {name: hook, key: key}}
---
apiVersion: v1
kind: Pod
metadata:
  name: site-gw
  annotations: {stoker.io/inject: "true", stoker.io/cr-name: plant, stoker.io/sync-profile: site}
spec:
  initContainers: [{name: stoker-agent, image: agent, restartPolicy: Always}]
  containers: [{name: gateway, image: ignition}]
Y
k patch pod site-gw -n $ns --subresource=status --type=merge -p '{"status":{"phase":"Running"}}' >/dev/null

# start_agent NAME CR PROFILE: the agent as the injector would configure it.
start_agent() {
	local d=$work/$1
	mkdir -p "$d/repo" "$d/data"
	printf key >"$d/apikey"
	k create token default -n $ns --audience stoker-source --duration 1h >"$d/token"
	env -i PATH="$PATH" KUBECONFIG="$KUBECONFIG" POD_NAME="$1" POD_NAMESPACE=$ns CR_NAME="$2" \
		GATEWAY_NAME="$1" SYNC_PROFILE="$3" REPO_PATH="$d/repo" DATA_PATH="$d/data" \
		GATEWAY_HOST=127.0.0.1 GATEWAY_PORT="$fg_port" API_KEY_FILE="$d/apikey" \
		SOURCE_TOKEN_FILE="$d/token" "$bin/agent" --health-probe-bind-address "127.0.0.1:0" \
		--metrics-bind-address "127.0.0.1:0" >"$work/agent-$1.log" 2>&1 &
	agent_pid=$!
	pids+=($!)
}
view=projects/Site/com.inductiveautomation.perspective/views/Main/view.json
start_agent site-gw plant site
data=$work/site-gw/data
for _ in $(seq 600); do [ -f "$data/$view" ] && break; sleep 0.1; done
[ -f "$data/$view" ] || { echo "bench: the initial sync never happened" >&2; tail "$work"/agent-site-gw.log >&2; exit 1; }
sleep 2 # the post-commissioning sync

# --- 1. push → files on the gateway ------------------------------------------------------
git clone -q "$GIT_DAEMON_URL/plant.git" "$work/clone"
sha256sum <"$data/$view" >"$work/last.sum"
# push_via HOW: pushes a commit, triggers Stoker the way HOW says, waits for the view to
# change on the gateway directory; appends the seconds to lat_HOW, and the baseline's.
hook_body='{"ref":"refs/heads/main","repository":{"full_name":"acme/plant"}}'
hook_sig=$(printf '%s' "$hook_body" | openssl dgst -sha256 -hmac "$hook_key" | awk '{print $NF}')
declare -a lat_token lat_webhook base
push_via() {
	local how=$1 sha t0 t1 code
	sha=$("$gs" push --dir "$work/git" plant main)
	t0=$(now)
	case $how in
	token) k annotate gitsource plant-src -n $ns "stoker.io/reconcile-requested-at=$sha" --overwrite >/dev/null ;;
	webhook)
		code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
			-H 'X-GitHub-Event: push' -H "X-Hub-Signature-256: sha256=$hook_sig" \
			--data-binary "$hook_body" "http://127.0.0.1:$recv_port/webhook/$ns/plant")
		[ "$code" = 202 ] || { echo "bench: the receiver answered $code" >&2; exit 1; } ;;
	esac
	until [ "$(sha256sum <"$data/$view")" != "$(cat "$work/last.sum")" ]; do
		sleep 0.01
	done
	t1=$(now)
	sha256sum <"$data/$view" >"$work/last.sum"
	case $how in
	token) lat_token+=("$(echo "$t1 - $t0" | bc)") ;;
	webhook) lat_webhook+=("$(echo "$t1 - $t0" | bc)") ;;
	esac
	t0=$(now)
	git -C "$work/clone" fetch -q origin main && git -C "$work/clone" checkout -q "$sha"
	t1=$(now)
	base+=("$(echo "$t1 - $t0" | bc)")
}
for _ in $(seq 50); do # the receiver is up once it answers
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$recv_port/webhook/$ns/plant")" = 405 ] && break
	sleep 0.1
done
for i in $(seq "$pushes"); do
	push_via token
done
for i in $(seq "$pushes"); do
	# A second apart, as pushes are: a call within the second of the previous token waits
	# for the trailing token at the end of that second (docs/receiver.md), up to 1 s more.
	sleep 1.1
	push_via webhook
done
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {p50=a[int((NR+1)/2)]; p95=a[int(NR*0.95+0.999)]; printf "p50 %.3f s  p95 %.3f s  max %.3f s", p50, p95, a[NR]}'; }
printf '\ncommit pushed -> files on the gateway directory, %s pushes each way\n' "$pushes"
printf '  stoker, reconcile token on the GitSource:               %s   target p50 <= 2 s\n' "$(stats "${lat_token[@]}")"
printf '  stoker, GitHub push webhook to the receiver:            %s   target p50 <= 2 s\n' "$(stats "${lat_webhook[@]}")"
printf '  baseline git fetch + checkout of the same commits:      %s\n' "$(stats "${base[@]}")"

# --- 2. agent RSS -------------------------------------------------------------------------
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
idle_kib=$(rss "$agent_pid")

big=$work/big
"$py" - "$big/src" "$big_files" "$big_mb" <<'PY'
import os, sys
root, n, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = mib * 1024 * 1024 // n
for i in range(n):
    d = os.path.join(root, "projects", "P%02d" % (i % 50), "views", "v%03d" % ((i // 50) % 200))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.bin" % i), "wb") as f:
        f.write(os.urandom(size))
PY
sha=0123456789abcdef0123456789abcdef01234567
mkdir -p "$big/art"
tar -C "$big/src" --format=pax --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
	-czf "$big/art/$sha.tar.gz" projects
digest="sha256:$(sha256sum "$big/art/$sha.tar.gz" | cut -d' ' -f1)"
"$py" -m http.server --bind 127.0.0.1 --directory "$big/art" 0 >"$work/http.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	hport=$(grep -o 'port [0-9]*' "$work/http.log" | head -1 | cut -d' ' -f2) && [ -n "$hport" ] && break
	sleep 0.1
done
k create configmap stoker-status-big -n $ns >/dev/null
start_agent big-gw big big
sleep 3
big_idle_kib=$(rss "$agent_pid")
profiles='{"big":{"gate":"'$sha'","spec":{"mappings":[{"source":"projects","destination":"projects"}],"syncPeriod":300}}}'
t0=$(now)
k create configmap stoker-metadata-big -n $ns --from-literal=commit=$sha --from-literal=ref=main \
	--from-literal=artifactURL="http://127.0.0.1:$hport/$sha.tar.gz" \
	--from-literal=artifactDigest="$digest" --from-literal=paused=false \
	--from-literal=profiles="$profiles" >/dev/null
peak=0
synced() { k get configmap stoker-status-big -n $ns -o jsonpath='{.data.big-gw}' | grep -q '"syncStatus":"Synced"'; }
until synced; do
	r=$(rss "$agent_pid" || echo 0)
	[ "${r:-0}" -gt "$peak" ] && peak=$r
	sleep 0.2
done
t1=$(now)
big_hwm=$(hwm "$agent_pid")
mkdir -p "$big/tarx"
tar_kib=$( { /usr/bin/time -f '%M' tar -C "$big/tarx" -xzf "$big/art/$sha.tar.gz"; } 2>&1 | tail -1)
printf '\nagent RSS (VmRSS / VmHWM, KiB -> MiB)\n'
printf '  idle after its initial sync (small profile):      %.1f MiB\n' "$(echo "$idle_kib / 1024" | bc -l)"
printf '  idle before its first sync (big):                 %.1f MiB\n' "$(echo "$big_idle_kib / 1024" | bc -l)"
printf '  peak while syncing %s files / %s MiB:        %.1f MiB (sampled peak %.1f MiB) in %.1f s   target <= 32 MiB\n' \
	"$big_files" "$big_mb" "$(echo "$big_hwm / 1024" | bc -l)" "$(echo "$peak / 1024" | bc -l)" "$(echo "$t1 - $t0" | bc)"
printf '  baseline tar -xzf of the same artifact, peak:     %.1f MiB\n' "$(echo "$tar_kib / 1024" | bc -l)"
