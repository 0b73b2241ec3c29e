#!/usr/bin/env bash
# sync-controller at fleet scale (DESIGN.md §8: "500 Stokers, 2000 gateway pods: full
# resync ≤ 30 s, controller RSS ≤ 32 MiB"), beside baselines measured in the same run:
# 1. cold start: time until every Stoker is current (observedGeneration, AllGatewaysSynced
#    "N/N gateways synced", stoker-metadata-<cr> written), and RSS after it settles;
# 2. warm resync of the up-to-date fleet after a restart: time until
#    stoker_reconcile_total{result="success"} reaches the number of Stokers, RSS, and the
#    writes it made (watched as they happen, and resourceVersions compared before/after;
#    an up-to-date fleet should need none) with the time of the last one;
# 3. baselines: `kubectl get` of everything the controller caches (time, peak RSS), and
#    a write floor: one PATCH per Stoker from a THREADS-wide client pool.
# Objects are written straight to the API server by kube.py (no kubelet: pods are set
# Running by a status patch; agents' reports are pre-written into stoker-status-<cr>).
#   bench/sync/run.sh BUILD_DIR
#   env: BENCH_STOKERS (500), BENCH_PODS_PER_STOKER (4), BENCH_NAMESPACES (50),
#        BENCH_THREADS (16, the loader's client pool), BENCH_TIMEOUT (300 s per wait)
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
stokers=${BENCH_STOKERS:-500}
pps=${BENCH_PODS_PER_STOKER:-4}
nns=${BENCH_NAMESPACES:-50}
threads=${BENCH_THREADS:-16}
timeout=${BENCH_TIMEOUT:-300}
py=/usr/bin/python3 # Debian's: has yaml
work=$(mktemp -d /tmp/stoker-bench-sync.XXXXXX)
name=bench-sync-$$
ctl=
watcher=

stop_ctl() {
	[ -n "$ctl" ] || return 0
	kill -TERM "$ctl" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$ctl" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$ctl" 2>/dev/null || true
	wait "$ctl" 2>/dev/null || true
	ctl=
}
cleanup() {
	stop_ctl
	stop_watch
	"$root/e2e/cluster" down --name "$name" --quiet >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

kube() { "$py" "$here/kube.py" "$@"; }
port() { "$py" "$root/scripts/free-ports"; }
now() { date +%s.%N; }
mib() { awk -v k="$1" '$1 == k":" {printf "%.1f", $2 / 1024}' "/proc/$ctl/status"; }
# Starts the controller; sets ctl, t0 (launch time) and metrics (its /metrics URL).
start_ctl() {
	local mport
	mport=$(port)
	metrics=http://127.0.0.1:$mport/metrics
	t0=$(now)
	"$build/bin/sync-controller" --kubeconfig "$KUBECONFIG" --leader-elect=false \
		--metrics-bind-address "127.0.0.1:$mport" --health-probe-bind-address "127.0.0.1:$(port)" \
		--log-level warn >>"$work/controller.log" 2>&1 &
	ctl=$!
}
# Logs every write to Stokers, their ConfigMaps and Events in $work/writes-$1 from now on.
start_watch() {
	"$py" "$here/kube.py" watch "$work/writes-$1" >>"$work/watch.log" 2>&1 &
	watcher=$!
	for _ in $(seq 1 300); do
		[ -e "$work/writes-$1.ready" ] && return 0
		kill -0 "$watcher" 2>/dev/null || break
		sleep 0.1
	done
	cat "$work/watch.log" >&2
	echo "bench/sync: the write watcher did not start" >&2
	exit 1
}
stop_watch() {
	[ -n "$watcher" ] || return 0
	kill "$watcher" 2>/dev/null || true
	wait "$watcher" 2>/dev/null || true
	watcher=
}
fail() {
	echo "bench/sync: $1" >&2
	if [ -n "$ctl" ] && ! kill -0 "$ctl" 2>/dev/null; then
		wait "$ctl" && rc=0 || rc=$?
		echo "bench/sync: sync-controller exited with status $rc" >&2
		ctl=
	fi
	echo "--- sync-controller log (last 40 lines) ---" >&2
	tail -n 40 "$work/controller.log" >&2
	exit 1
}

"$root/e2e/cluster" up --name "$name" --quiet >/dev/null
eval "$("$root/e2e/cluster" env --name "$name")"
"$STOKER_KUBECTL" apply -k "$root/config/crd" >/dev/null
"$STOKER_KUBECTL" wait --for=condition=Established --timeout=60s crd --all >/dev/null

echo "setting up $stokers Stokers x $pps pods in $nns namespaces ..." >&2
read -r setup_secs setup_detail < <(kube load "$nns" "$stokers" "$pps" "$threads")

# 1. Cold start: nothing written for the Stokers yet.
start_watch cold
start_ctl
cold=$(kube converge "$t0" "$stokers" "$pps" "$ctl" "$timeout") || fail "cold start did not converge"
sleep 5
cold_rss=$(mib VmRSS) cold_hwm=$(mib VmHWM) cold_anon=$(mib RssAnon) cold_file=$(mib RssFile)
kill -0 "$ctl" 2>/dev/null || fail "sync-controller died after converging"
stop_watch
cold_writes=$(kube writes "$work/writes-cold" "$t0")

# 2. Warm resync of the up-to-date fleet.
kube snapshot "$work/before.json"
stop_ctl
start_watch warm
start_ctl
warm=$(kube metrics-wait "$t0" "$metrics" "$stokers" "$ctl" "$timeout") || fail "warm resync did not finish"
sleep 5
warm_rss=$(mib VmRSS) warm_hwm=$(mib VmHWM) warm_anon=$(mib RssAnon) warm_file=$(mib RssFile)
kill -0 "$ctl" 2>/dev/null || fail "sync-controller died after resync"
stop_watch
warm_writes=$(kube writes "$work/writes-warm" "$t0")
changed=$(kube diff "$work/before.json")
log_lines=$(wc -l <"$work/controller.log")
stop_ctl

# 3. Baselines, with the controller stopped.
read -r k_secs k_rss < <("$py" - "$STOKER_KUBECTL" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
subprocess.run([sys.argv[1], "get", "stokers,gitsources,syncprofiles,pods,configmaps", "-A",
                "-o", "json"], check=True, stdout=subprocess.DEVNULL)
print("%.1f %.1f" % (time.monotonic() - t,
                     resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
PY
)
touch_secs=$(kube touch "$stokers" "$nns" "$threads")

printf '\nsync-controller, %s Stokers x %s gateway pods in %s namespaces (same cluster, same run)\n' \
	"$stokers" "$pps" "$nns"
printf 'BENCH_STOKERS=%s BENCH_PODS_PER_STOKER=%s BENCH_NAMESPACES=%s BENCH_THREADS=%s\n' \
	"$stokers" "$pps" "$nns" "$threads"
printf 'setup: %s s (%s)\n\n' "$setup_secs" "$setup_detail"
printf '%-28s %10s %34s %14s\n' "" "stoker" "baseline" "DESIGN target"
printf '%-28s %10s %34s %14s\n' "cold full sync (s)" "$cold" "$touch_secs ($stokers PATCHes, $threads threads)" "30"
printf '%-28s %10s %34s %14s\n' "warm resync (s)" "$warm" "$k_secs (kubectl get all, -o json)" "30"
printf '%-28s %10s %34s %14s\n' "  until its last write (s)" "$(sed -n 's/.*last write \([0-9.-]*\) s after start.*/\1/p' <<<"$warm_writes")" "" ""
printf '%-28s %10s %34s %14s\n' "RSS after cold sync (MiB)" "$cold_rss" "$k_rss (kubectl get, peak)" "32"
printf '%-28s %10s %34s %14s\n' "  peak during cold (MiB)" "$cold_hwm" "" ""
printf '%-28s %10s %34s %14s\n' "  private heap (RssAnon)" "$cold_anon" "" ""
printf '%-28s %10s %34s %14s\n' "  shared libraries (RssFile)" "$cold_file" "" ""
printf '%-28s %10s %34s %14s\n' "RSS after resync (MiB)" "$warm_rss" "" "32"
printf '%-28s %10s %34s %14s\n' "  peak during resync (MiB)" "$warm_hwm" "" ""
printf '%-28s %10s %34s %14s\n' "  private heap (RssAnon)" "$warm_anon" "" ""
printf '%-28s %10s %34s %14s\n' "  shared libraries (RssFile)" "$warm_file" "" ""
printf '\nwrites, cold start (until 5 s after converged): %s\n' "$cold_writes"
printf 'writes, warm resync (until 5 s after the reconcile count was reached): %s\n' "$warm_writes"
printf 'objects changed by the warm resync (resourceVersion before/after): %s\n' "$changed"
printf 'controller log (warn and above): %s lines\n' "$log_lines"
