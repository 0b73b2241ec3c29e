#!/usr/bin/env bash
# agent sync-engine benchmarks (DESIGN.md §8), each beside baselines measured in the same
# run on the same filesystem (everything lives under one mktemp directory in /tmp):
# 1. cold sync of BENCH_FILES files / BENCH_MB MiB (default 10000 / 200) into an empty
#    data directory with `agent sync --service-path`, beside `cp -a`, `rsync -a --delete`
#    and `tar -x` of an (uncompressed) tarball of the same tree into empty directories;
#    target: agent ≤ 1.2 × (tar -x + rsync -a --delete);
# 2. no-op sync of the same tree (median of BENCH_NOOP_RUNS, default 5; target ≤ 50 ms)
#    beside an `rsync -a --delete` no-op;
# 3. peak RSS of a cold `agent sync` of BENCH_BIG_FILES / BENCH_BIG_MB (default 50000 /
#    1024; target ≤ 32 MiB) beside `rsync -a --delete` of the same tree.
# The source trees are in the page cache for every contender; the agent alone makes its
# writes durable (syncfs per batch, fsync of directories and manifest), the baselines
# do not. Nothing here asserts.
#   bench/agent/run.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
agent=$build/bin/agent
files=${BENCH_FILES:-10000}
mb=${BENCH_MB:-200}
big_files=${BENCH_BIG_FILES:-50000}
big_mb=${BENCH_BIG_MB:-1024}
noop_runs=${BENCH_NOOP_RUNS:-5}
py=/usr/bin/python3
work=$(mktemp -d /tmp/stoker-bench-agent.XXXXXX)
trap 'rm -rf "$work"' EXIT
for tool in rsync tar cp; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done

# A repository of $2 files, $3 MiB in all (random content), under services/gw/ as the
# agent's 2-tier mode maps it, spread like an Ignition data directory.
generate() { # dir files mib
	"$py" - "$@" <<'PY'
import os, sys
root, n, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = mib * 1024 * 1024 // n
base = os.path.join(root, "services", "gw")
for i in range(n):
    if i % 10 == 9:
        d = os.path.join(base, "config", "resources", "core", "mod%02d" % (i % 40))
    else:
        d = os.path.join(base, "projects", "p%02d" % (i % 20), "com.inductiveautomation.perspective",
                         "views", "v%03d" % (i // 20 % 50))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "resource%06d.json" % i), "wb") as f:
        f.write(os.urandom(size))
PY
}

# Runs a command; prints "<seconds> <peak RSS KiB>" of it (stdout to $work/out).
measure() {
	"$py" - "$@" <<'PY'
import os, resource, subprocess, sys, time
t = time.monotonic()
r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE)
secs = time.monotonic() - t
if r.returncode:
    sys.exit("bench: %s failed (exit %d)" % (" ".join(sys.argv[1:3]), r.returncode))
with open(os.environ["BENCH_OUT"], "wb") as f:
    f.write(r.stdout)
print("%.3f %d" % (secs, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
PY
}
export BENCH_OUT=$work/out
agent_sync() { # repo data
	measure "$agent" sync --repo "$1" --data "$2" --state "$2.state" --service-path services/gw
}
engine_secs() { sed -n 's/.*"duration":"\([0-9.]*\)s".*/\1/p' "$BENCH_OUT"; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }

# ---- 1. cold sync ----------------------------------------------------------------------
echo "generating $files files / $mb MiB ..." >&2
generate "$work/repo" "$files" "$mb"
tree=$work/repo/services/gw
tar -cf "$work/tree.tar" -C "$tree" .
sync # the generated data is written back before anything is timed
mkdir "$work/data" "$work/cp" "$work/rsync" "$work/tarx" "$work/tarx-rsync"
read -r a_secs a_rss < <(agent_sync "$work/repo" "$work/data")
a_engine=$(engine_secs)
read -r cp_secs _ < <(measure cp -a "$tree/." "$work/cp/")
read -r rs_secs _ < <(measure rsync -a --delete "$tree/" "$work/rsync/")
read -r tx_secs _ < <(measure tar -xf "$work/tree.tar" -C "$work/tarx")
read -r txr_secs _ < <(measure rsync -a --delete "$work/tarx/" "$work/tarx-rsync/")
base=$(awk -v a="$tx_secs" -v b="$txr_secs" 'BEGIN {printf "%.3f", a + b}')
diff -r "$tree" "$work/data" >/dev/null || echo "bench: the agent's copy differs from the tree!" >&2
printf '\nCold sync: %s files, %s MiB, into an empty directory (same tree, same run)\n' "$files" "$mb"
printf '%-44s %10s\n' "" "seconds"
printf '%-44s %10s   (engine: %s s; %.2f × the tar -x + rsync baseline, target ≤ 1.2)\n' \
	"agent sync --service-path" "$a_secs" "$a_engine" "$(ratio "$a_secs" "$base")"
printf '%-44s %10s\n' "cp -a" "$cp_secs"
printf '%-44s %10s\n' "rsync -a --delete" "$rs_secs"
printf '%-44s %10s\n' "tar -x (uncompressed tarball)" "$tx_secs"
printf '%-44s %10s\n' "tar -x + rsync -a --delete (staging → live)" "$base"

# ---- 2. no-op sync ---------------------------------------------------------------------
: >"$work/noop-agent"
: >"$work/noop-engine"
: >"$work/noop-rsync"
for _ in $(seq 1 "$noop_runs"); do
	read -r s _ < <(agent_sync "$work/repo" "$work/data")
	echo "$s" >>"$work/noop-agent"
	engine_secs >>"$work/noop-engine"
	grep -q '"filesChanged":0,' "$BENCH_OUT" || echo "bench: the no-op sync changed files!" >&2
	read -r s _ < <(measure rsync -a --delete "$tree/" "$work/rsync/")
	echo "$s" >>"$work/noop-rsync"
done
n_agent=$(median <"$work/noop-agent")
n_engine=$(median <"$work/noop-engine")
n_rsync=$(median <"$work/noop-rsync")
printf '\nNo-op sync: %s files, nothing changed (median of %s runs)\n' "$files" "$noop_runs"
printf '%-44s %10s\n' "" "ms"
printf '%-44s %10.0f   (engine alone: %.0f ms; target ≤ 50 ms)\n' "agent sync (whole process)" \
	"$(awk -v s="$n_agent" 'BEGIN {print s * 1000}')" "$(awk -v s="$n_engine" 'BEGIN {print s * 1000}')"
printf '%-44s %10.0f\n' "rsync -a --delete" "$(awk -v s="$n_rsync" 'BEGIN {print s * 1000}')"
rm -rf "$work/repo" "$work/tree.tar" "$work/data" "$work/data.state" "$work/cp" "$work/rsync" \
	"$work/tarx" "$work/tarx-rsync"

# ---- 3. peak RSS on the big tree ---------------------------------------------------------
echo "generating $big_files files / $big_mb MiB ..." >&2
generate "$work/big" "$big_files" "$big_mb"
sync
mkdir "$work/big-data" "$work/big-rsync"
read -r b_secs b_rss < <(agent_sync "$work/big" "$work/big-data")
read -r bn_secs bn_rss < <(agent_sync "$work/big" "$work/big-data")
read -r br_secs br_rss < <(measure rsync -a --delete "$work/big/services/gw/" "$work/big-rsync/")
printf '\nBig tree: %s files, %s MiB (same tree, same run)\n' "$big_files" "$big_mb"
printf '%-44s %10s %14s\n' "" "seconds" "peak RSS (KiB)"
printf '%-44s %10s %14s   (%.1f MiB; target ≤ 32 MiB)\n' "agent sync, cold" "$b_secs" "$b_rss" \
	"$(awk -v k="$b_rss" 'BEGIN {print k / 1024}')"
printf '%-44s %10s %14s\n' "agent sync, no-op" "$bn_secs" "$bn_rss"
printf '%-44s %10s %14s   (largest of its processes)\n' "rsync -a --delete, cold" "$br_secs" "$br_rss"
