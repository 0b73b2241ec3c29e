#!/usr/bin/env bash
# Crash safety of `agent sync` (engine.h, DESIGN.md §5): a sync killed with SIGKILL at any
# instant leaves every file under a managed root either its old or its new version, never
# torn, and the next run converges.
#
# Two commits' trees A and B (CRASH_FILES files each, default 3000: mostly the same paths
# with different contents, some only in A, some only in B, a few that are a file in one
# and a directory in the other), a SyncProfile mapping a directory onto `projects` and a
# file onto `config/gateway.conf`. Then CRASH_RUNS (default 60) syncs alternating B, A,
# B, ... each killed after a random delay; after every kill a checker hashes every file
# of the data directory and compares it with its version in A and in B.
#   agent/tests/crash-sync.sh AGENT_BINARY
set -euo pipefail
bin=$1
runs=${CRASH_RUNS:-60}
files=${CRASH_FILES:-3000}
py=/usr/bin/python3
work=$(mktemp -d /tmp/stoker-crash-sync.XXXXXX)
trap 'rm -rf "$work"' EXIT
data=$work/data
state=$work/state

# ---- the two commits, and what every data path may hold -------------------------------
"$py" - "$work" "$files" <<'PY'
import hashlib, json, os, random, sys

root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(20240611)
dirs = ["p%02d/views/%s" % (p, v) for p in range(6) for v in ("main", "popup", "dock")]
dirs += ["p%02d/scripts" % p for p in range(6)]
expect = {"A": {}, "B": {}}


def put(tree, rel, data, mode):
    path = os.path.join(root, tree, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def body(tree, rel):
    # Mostly small files, some large enough that a kill can land inside one write.
    size = rnd.choice([40, 200, 900, 3000, 3000, 9000, 20000, 65000])
    head = ("%s:%s:" % (tree, rel)).encode()
    data = head + bytes(rnd.getrandbits(8) for _ in range(64)) * (size // 64 + 1)
    return data[:max(size, len(head))]


for i in range(n):
    rel = "site/%s/r%05d.json" % (dirs[i % len(dirs)], i)
    kind = i % 20
    mode = 0o755 if i % 7 == 0 else 0o644
    if kind == 0:
        trees = ["A"]  # only in A: deleted by a sync to B
    elif kind == 1:
        trees = ["B"]  # only in B
    else:
        trees = ["A", "B"]
    same = body("AB", rel) if kind == 2 else None  # the same in both
    for t in trees:
        data = same if same is not None else body(t, rel)
        put(t, rel, data, mode)
        expect[t][rel] = hashlib.sha256(data).hexdigest()
# Whole directories in one commit only.
for i in range(40):
    for t, d in (("A", "p06/only-a"), ("B", "p07/only-b/deep")):
        rel = "site/%s/f%03d.bin" % (d, i)
        data = body(t, rel)
        put(t, rel, data, 0o644)
        expect[t][rel] = hashlib.sha256(data).hexdigest()
# A file in A where B has a directory, and the other way round.
for i in range(5):
    for t, rel in (("A", "site/swap/s%d" % i), ("B", "site/swap/s%d/inner.json" % i),
                   ("A", "site/swap/d%d/inner.json" % i), ("B", "site/swap/d%d" % i)):
        data = body(t, rel)
        put(t, rel, data, 0o644)
        expect[t][rel] = hashlib.sha256(data).hexdigest()
for t in ("A", "B"):
    data = ("gateway settings of commit %s\n" % t).encode() * 50
    put(t, "files/gateway.conf", data, 0o644)
    expect[t]["files/gateway.conf"] = hashlib.sha256(data).hexdigest()
with open(os.path.join(root, "expect.json"), "w") as f:
    json.dump(expect, f)
print("A: %d files, B: %d files, %d paths in both" %
      (len(expect["A"]), len(expect["B"]), len(set(expect["A"]) & set(expect["B"]))))
PY
cat >"$work/profile.yaml" <<'EOF'
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: crash}
spec:
  mappings:
    - {source: site, destination: projects}
    - {source: files/gateway.conf, destination: config/gateway.conf, type: file}
EOF

# The checker: every file of the data directory (but .stoker-tmp-*, which are counted) is
# byte for byte its version in A or in B — or, with `exact A`, the data directory is A.
# Data that is neither all of A nor all of B (a sync cut short) must carry the engine's
# `unsettled` marker in the state directory (agent_data_settled); a complete sync clears it.
cat >"$work/check.py" <<'PY'
import hashlib, json, os, stat, sys

work, mode = sys.argv[1], sys.argv[2]
data = os.path.join(work, "data")
expect = json.load(open(os.path.join(work, "expect.json")))
# data path -> repository path
to_repo = lambda rel: ("site/" + rel[len("projects/"):] if rel.startswith("projects/")
                       else "files/gateway.conf" if rel == "config/gateway.conf" else None)
checked = tmp = tmp_managed = 0
bad, seen = [], set()
whole = {"A": True, "B": True}  # every file seen so far is that tree's version
for d, subdirs, names in os.walk(data):
    for name in names:
        path = os.path.join(d, name)
        rel = os.path.relpath(path, data)
        if name.startswith(".stoker-tmp-"):
            tmp += 1
            tmp_managed += rel.startswith("projects/")
            continue
        if rel in ("unmanaged.txt", "projects/.resources/live.bin"):
            with open(path, "rb") as f:
                if f.read() != b"not the agent's\n":
                    bad.append("%s was changed" % rel)
            continue
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            bad.append("%s is not a regular file" % rel)
            continue
        repo = to_repo(rel)
        with open(path, "rb") as f:
            h = hashlib.sha256(f.read()).hexdigest()
        checked += 1
        seen.add(repo)
        allowed = [t for t in ("A", "B") if expect[t].get(repo) == h]
        for t in ("A", "B"):
            whole[t] = whole[t] and t in allowed
        if mode == "exact":
            if "A" not in allowed:
                bad.append("%s is not A's version" % rel)
            elif st.st_mode & 0o777 not in (0o644, 0o755):
                bad.append("%s has mode %o" % (rel, st.st_mode & 0o777))
        elif not allowed:
            bad.append("%s is neither A's nor B's version (torn?)" % rel)
for rel in ("unmanaged.txt", "projects/.resources/live.bin"):
    if not os.path.exists(os.path.join(data, rel)):
        bad.append("%s is gone" % rel)
marker = os.path.exists(os.path.join(work, "state", "unsettled"))
mixed = not any(whole[t] and seen == set(expect[t]) for t in ("A", "B"))
if mode == "exact" and marker:
    bad.append("the unsettled marker is left after a complete sync")
if mixed and not marker:
    bad.append("the data is neither A nor B, and the state has no unsettled marker")
if mode == "exact":
    for repo in sorted(set(expect["A"]) - seen):
        bad.append("%s of A is missing" % repo)
    if tmp_managed:
        bad.append("%d temporary files left under the managed root" % tmp_managed)
for b in bad[:20]:
    print("not ok - " + b, file=sys.stderr)
print(checked, tmp, tmp_managed, int(mixed))
sys.exit(1 if bad else 0)
PY

sync_to() { # tree
	"$bin" sync --repo "$work/$1" --data "$data" --state "$state" --profile "$work/profile.yaml"
}

mkdir -p "$data/projects/.resources"
echo "not the agent's" >"$data/unmanaged.txt"
echo "not the agent's" >"$data/projects/.resources/live.bin"
sync_to A >/dev/null
"$py" "$work/check.py" "$work" exact >/dev/null

# How long one whole sync takes here (with sanitizers or valgrind it is much longer): the
# kills are spread over 0..1.2 × that (at least 0..150 ms), so most land mid-merge.
t0=$(date +%s%N)
sync_to B >/dev/null
t1=$(date +%s%N)
full_ms=$(((t1 - t0) / 1000000))
max_ms=$((full_ms * 12 / 10))
[ "$max_ms" -ge 150 ] || max_ms=150
echo "one full sync: ${full_ms} ms; kills after 0..${max_ms} ms"

kills=0 mid=0 checked=0 tmps=0 fails=0 mixed=0
tree=A
for i in $(seq 1 "$runs"); do
	delay_ms=$(((RANDOM * 32768 + RANDOM) % (max_ms + 1)))
	# The agent itself in the background (not a function's subshell), so $! is its pid.
	"$bin" sync --repo "$work/$tree" --data "$data" --state "$state" \
		--profile "$work/profile.yaml" >/dev/null 2>"$work/stderr" &
	pid=$!
	sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
	kill -KILL "$pid" 2>/dev/null || true
	rc=0
	{ wait "$pid"; } 2>/dev/null || rc=$? # without bash's "Killed" notice
	kills=$((kills + 1))
	if [ "$rc" -eq 137 ]; then
		mid=$((mid + 1))
	elif [ "$rc" -ne 0 ]; then
		echo "not ok - run $i (to $tree) failed by itself: rc=$rc $(cat "$work/stderr")"
		fails=$((fails + 1))
	fi
	if out=$("$py" "$work/check.py" "$work" any); then
		read -r n t _ m <<<"$out"
		checked=$((checked + n))
		tmps=$((tmps + t))
		mixed=$((mixed + m))
	else
		echo "not ok - after kill $i (to $tree, ${delay_ms} ms, rc=$rc)"
		fails=$((fails + 1))
	fi
	[ "$tree" = A ] && tree=B || tree=A
done

# One run to the end converges on A exactly.
if ! sync_to A >"$work/final.json"; then
	echo "not ok - the final sync to A failed"
	fails=$((fails + 1))
fi
if out=$("$py" "$work/check.py" "$work" exact); then
	read -r n t _ <<<"$out"
	echo "ok - after the final sync the data directory is A ($n files, $t temporary files outside managed roots)"
else
	echo "not ok - after the final sync the data directory is not A"
	fails=$((fails + 1))
fi
if ! "$bin" drift --data "$data" --state "$state" | grep -q '"filesChanged":0,'; then
	echo "not ok - drift after the final sync is not empty"
	fails=$((fails + 1))
fi
echo "kills: $kills, mid-run: $mid, files checked: $checked, temporary files seen: $tmps, left between A and B (marked unsettled): $mixed"
[ "$mid" -gt 0 ] || {
	echo "not ok - no kill landed mid-run"
	fails=$((fails + 1))
}
[ "$mixed" -gt 0 ] || {
	echo "not ok - no kill left the data between A and B"
	fails=$((fails + 1))
}
[ "$fails" -eq 0 ]
