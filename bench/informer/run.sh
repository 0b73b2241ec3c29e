#!/usr/bin/env bash
# Informer benchmark: 10k ConfigMaps read into Stoker's informer cache, beside
# `kubectl get configmaps -o json` reading the same objects in the same run.
#   bench/informer/run.sh BUILD_DIR [COUNT]
set -euo pipefail
build=$1
count=${2:-${BENCH_COUNT:-10000}}
root=$(cd "$(dirname "$0")/../.." && pwd)
name=bench-$$
"$root/e2e/cluster" up --name "$name" --quiet >/dev/null
trap '"$root/e2e/cluster" down --name "$name" --quiet >/dev/null 2>&1' EXIT
eval "$("$root/e2e/cluster" env --name "$name")"
ns=bench
"$STOKER_KUBECTL" create namespace $ns >/dev/null

out=$("$build/bench/bench_informer" $ns "$count")
val() { sed -n "s/^$1=//p" <<<"$out"; }

# Baseline: kubectl reading the same objects, timed and measured by the same clock.
read -r k_secs k_rss k_bytes < <(python3 - "$STOKER_KUBECTL" "$ns" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
out = subprocess.run([sys.argv[1], "get", "configmaps", "-n", sys.argv[2], "-l", "app=bench",
                      "-o", "json"], check=True, stdout=subprocess.PIPE).stdout
dt = time.monotonic() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print("%.3f %d %d" % (dt, rss, len(out)))
PY
)
printf '\nInformer cache, %s ConfigMaps (same cluster, same run)\n' "$(val objects)"
printf '%-44s %14s %14s\n' "" "stoker" "kubectl -o json"
printf '%-44s %14s %14s\n' "list + decode all objects (s)" "$(val list_seconds)" "$k_secs"
printf '%-44s %14s %14s\n' "resident memory for them (KiB)" \
	"$(( $(val rss_after_kib) - $(val rss_before_kib) ))" "$k_rss (max RSS)"
printf '%-44s %14s %14s\n' "memory per object (bytes)" "$(val bytes_per_object)" \
	"$(( k_rss * 1024 / count ))"
printf '%-44s %14s %14s\n' "watch: updates applied to the cache (/s)" \
	"$(val watch_events_per_second)" "-"
printf '%-44s %14s %14s\n' "watch: decode+apply cost (us/event)" \
	"$(val decode_apply_us_per_event)" "-"
printf '%-44s %14s %14s\n' "watch: decode+apply capacity (events/s)" \
	"$(val decode_apply_events_per_second)" "-"
printf '(JSON read by kubectl: %s bytes; creating the objects took %ss; watch rate is bounded\n by how fast the API server accepts the 8 writer threads'"'"' updates)\n' \
	"$k_bytes" "$(val create_seconds)"
