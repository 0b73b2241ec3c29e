#!/usr/bin/env bash
# source-controller benchmarks, each beside a baseline measured in the same run:
# 1. first fetch + artifact of a generated repository (BENCH_FILES files, BENCH_MB MiB in
#    all; default 50000 / 1024) beside `git clone` + `tar czf` of the same repository;
# 2. resident memory of the controller holding BENCH_SOURCES GitSources (default 100).
#   bench/source/run.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
files=${BENCH_FILES:-50000}
mb=${BENCH_MB:-1024}
sources=${BENCH_SOURCES:-100}
work=$(mktemp -d /tmp/stoker-bench-source.XXXXXX)
gs="$root/e2e/fixtures/git-servers"
name=bench-src-$$
cleanup() {
	"$gs" down --dir "$work/git" >/dev/null 2>&1 || true
	"$root/e2e/cluster" down --name "$name" --quiet >/dev/null 2>&1 || true
	[ -n "${ctl:-}" ] && kill "$ctl" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
eval "$("$gs" up --dir "$work/git")" >/dev/null

# A repository of $files files, $mb MiB in all, incompressible (random) content.
echo "generating $files files / $mb MiB ..." >&2
src=$work/src
mkdir -p "$src"
/usr/bin/python3 - "$src" "$files" "$mb" <<'PY'
import os, sys
root, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = mb * 1024 * 1024 // n
for i in range(n):
    d = os.path.join(root, "services", "area%02d" % (i % 50), "projects", "p%03d" % (i // 50 % 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "resource%06d.json" % i), "wb") as f:
        f.write(os.urandom(size))
PY
git -C "$src" init -q -b main
git -C "$src" add -A
git -C "$src" -c user.name=bench -c user.email=b@example.com commit -qm bench
git clone -q --bare "$src" "$GIT_REPOS/big.git"
url="$GIT_DAEMON_URL/big.git"

mkdir -p "$work/stoker"
out=$("$build/bench/bench_artifact" "$url" "$work/stoker")
val() { sed -n "s/^$1=//p" <<<"$out"; }

read -r b_secs b_rss < <(/usr/bin/python3 - "$url" "$work/baseline" <<'PY'
import resource, subprocess, sys, time
url, dest = sys.argv[1], sys.argv[2]
t = time.monotonic()
subprocess.run(["git", "clone", "-q", url, dest], check=True)
subprocess.run(["tar", "czf", dest + ".tar.gz", "--exclude=.git", "-C", dest, "."], check=True)
print("%.2f %d" % (time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
PY
)
printf '\nFirst fetch + artifact: %s files, %s MiB (same repository, same run)\n' "$files" "$mb"
printf '%-36s %14s %20s\n' "" "stoker" "git clone + tar czf"
printf '%-36s %14s %20s\n' "time (s)" "$(val total_seconds)" "$b_secs"
printf '%-36s %14s %20s\n' "  of which fetch / pack (s)" "$(val fetch_seconds) / $(val pack_seconds)" "-"
printf '%-36s %14s %20s\n' "peak RSS (KiB)" "$(val peak_rss_kib)" "$b_rss (largest child)"
printf '%-36s %14s %20s\n' "artifact (bytes)" "$(val artifact_bytes)" "$(stat -c %s "$work/baseline.tar.gz")"

# Resident memory of the controller holding $sources GitSources.
"$root/e2e/cluster" up --name "$name" --quiet >/dev/null
eval "$("$root/e2e/cluster" env --name "$name")"
k() { "$STOKER_KUBECTL" "$@"; }
k apply -k "$root/config/crd" >/dev/null
k wait --for=condition=Established --timeout=60s crd/gitsources.source.stoker.io >/dev/null
eval "$("$gs" repo --dir "$work/git" small)" >/dev/null
k create namespace bench >/dev/null
port() { python3 "$root/scripts/free-ports"; }
"$build/bin/source-controller" --kubeconfig "$KUBECONFIG" --leader-elect=false \
	--watch-namespaces bench --storage-path "$work/storage" \
	--artifact-bind-address "127.0.0.1:$(port)" --artifact-base-url http://127.0.0.1 \
	--health-probe-bind-address "127.0.0.1:$(port)" --metrics-bind-address "127.0.0.1:$(port)" \
	--log-level warn >"$work/controller.log" 2>&1 &
ctl=$!
for i in $(seq 1 "$sources"); do
	printf 'apiVersion: source.stoker.io/v1alpha1\nkind: GitSource\nmetadata: {name: s%d}\nspec: {url: "%s/small.git", ref: {branch: main}}\n---\n' "$i" "$GIT_DAEMON_URL"
done | k apply -n bench -f - >/dev/null
t0=$(date +%s)
until [ "$(k get gitsources -n bench -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)" -ge "$sources" ]; do
	[ $(($(date +%s) - t0)) -lt 300 ] || { echo "bench: not all Ready after 300 s" >&2; break; }
	sleep 1
done
ready_secs=$(($(date +%s) - t0))
sleep 5
rss=$(awk '/VmRSS/ {print $2}' "/proc/$ctl/status")
kubectl_rss=$(/usr/bin/python3 - "$STOKER_KUBECTL" <<'PY'
import resource, subprocess, sys
subprocess.run([sys.argv[1], "get", "gitsources", "-n", "bench", "-o", "json"], check=True,
               stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
)
printf '\nController holding %s GitSources (all Ready after %s s)\n' "$sources" "$ready_secs"
printf '%-36s %14s %20s\n' "resident memory (KiB)" "$rss" "$kubectl_rss (kubectl get -o json)"
