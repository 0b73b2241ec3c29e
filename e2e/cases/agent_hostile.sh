#!/usr/bin/env bash
# The agent daemon alone (no controllers) against hostile artifacts and a misbehaving
# gateway (DESIGN.md §4, §5 agent; CONTRACTS.md "Metadata ConfigMap", "Status ConfigMap",
# "Artifact download"). The test plays the sync-controller: it writes
# stoker-metadata-hostile and creates stoker-status-hostile itself, and serves tar.gz
# artifacts it crafts with Python's tarfile from a small HTTP server that insists on the
# bearer token. The gateway is e2e/fixtures/fake-gateway.py.
#  - a good artifact while the gateway commissions: files land, no scan, ready;
#  - '../', 'projects/../../', absolute, symlink and hardlink entries, a digest mismatch,
#    401 and 404 from the artifact server: each one an Error naming the cause, nothing
#    written anywhere, the data directory byte-for-byte unchanged; FetchFailed events;
#  - scans: two 500s then success (3 projects calls, 1 config), every try failing, a
#    refused token (one call: 401 is not retried);
#  - SIGKILL in the middle of a 3000-file sync, restart, convergence; SIGTERM in the
#    middle of a sync: exit 0 within 10 s, every file old or new, no temporary files.
. "$(dirname "$0")/../lib/testlib.sh"
root=$(cd "$E2E_ROOT/.." && pwd)
bindir=${STOKER_BUILD_DIR:-$root/build}/bin
PY=/usr/bin/python3
t_start=$(date +%s)

cr=hostile gw=hostile-gw
data=$E2E_WORK/data repo=$E2E_WORK/repo arts=$E2E_WORK/artifacts src=$E2E_WORK/src
outside=$E2E_WORK/outside
mkdir -p "$data" "$repo" "$arts" "$src" "$outside" "$E2E_WORK/secrets"
echo "do not touch" >"$outside/target"
pids=()
on_exit 'kill ${pids[@]}'

# --- the artifact tool: packs a directory, or a small tree plus one hostile entry ---------
cat >"$E2E_WORK/mkart.py" <<'PY'
import hashlib, io, os, sys, tarfile

def add_file(t, name, data, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), mode, 0
    t.addfile(ti, io.BytesIO(data))

def add_dir(t, name):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
    t.addfile(ti)

def pack_tree(t, top):
    for d, dirs, files in os.walk(top):
        dirs.sort()
        rel = os.path.relpath(d, top)
        if rel != ".":
            add_dir(t, rel)
        for f in sorted(files):
            with open(os.path.join(d, f), "rb") as fh:
                add_file(t, os.path.normpath(os.path.join(rel, f)), fh.read())

out, kind = sys.argv[1], sys.argv[2]
with tarfile.open(out, "w:gz", format=tarfile.USTAR_FORMAT) as t:
    if kind == "tree":  # tree SRC
        pack_tree(t, sys.argv[3])
    else:  # hostile KIND ARG: a plausible change first, then the hostile entry
        add_dir(t, "projects")
        add_dir(t, "projects/Site")
        add_file(t, "projects/Site/project.json", b'{"title": "hostile"}\n')
        add_file(t, "projects/Site/new.json", b'{"new": true}\n')
        arg = sys.argv[3] if len(sys.argv) > 3 else ""
        if kind in ("dotdot", "nested-dotdot", "absolute"):
            add_file(t, arg, b"escaped\n")
        elif kind == "symlink":  # a link pointing outside, then a file through it
            ti = tarfile.TarInfo("projects/Evil")
            ti.type, ti.linkname, ti.mtime = tarfile.SYMTYPE, arg, 0
            t.addfile(ti)
            add_file(t, "projects/Evil/escape", b"escaped\n")
        elif kind == "hardlink":  # a hard link to a file outside, then data written into it
            ti = tarfile.TarInfo("projects/hard")
            ti.type, ti.linkname, ti.mtime = tarfile.LNKTYPE, arg, 0
            t.addfile(ti)
            add_file(t, "projects/hard", b"overwritten through a hard link\n")
        else:
            sys.exit("unknown kind " + kind)
with open(out, "rb") as f:
    print("sha256:" + hashlib.sha256(f.read()).hexdigest())
PY
# art NAME KIND [ARG]: writes $arts/<sha>.tar.gz, where sha = sha1(NAME); sets $sha, $digest.
art() {
	sha=$(printf '%s' "$1" | sha1sum | cut -c1-40)
	digest=$("$PY" "$E2E_WORK/mkart.py" "$arts/$sha.tar.gz" "${@:2}") || { not_ok "cannot build artifact $1"; exit 1; }
}

# --- the artifact server: files from $arts; /401/… and /404/… answer that status -----------
cat >"$E2E_WORK/artserver.py" <<'PY'
import os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
root, token, portfile, log = sys.argv[1:5]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, code, body=b"", ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with open(log, "a") as f:
            f.write("%s %s %d\n" % (self.path, self.headers.get("Authorization", "-"), code))
    def do_GET(self):
        parts = self.path.split("/")
        if self.headers.get("Authorization") != "Bearer " + token:
            return self.answer(401, b"no or wrong bearer token\n")
        if len(parts) == 3 and parts[1] in ("401", "404"):
            return self.answer(int(parts[1]), b"as asked\n")
        if len(parts) != 3 or parts[1] != "art" or "/" in parts[2] or parts[2].startswith("."):
            return self.answer(404, b"no such path\n")
        p = os.path.join(root, parts[2])
        if not os.path.isfile(p):
            return self.answer(404, b"no such artifact\n")
        with open(p, "rb") as f:
            self.answer(200, f.read(), "application/gzip")
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.replace(portfile + ".tmp", portfile)
s.serve_forever()
PY
src_token="hostile-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$src_token" >"$E2E_WORK/secrets/token"
"$PY" "$E2E_WORK/artserver.py" "$arts" "$src_token" "$E2E_WORK/art.port" "$E2E_WORK/art.log" \
	>>"$E2E_WORK/artserver.log" 2>&1 &
pids+=("$!")
wait_for 10 test -s "$E2E_WORK/art.port" || { not_ok "artifact server did not start"; exit 1; }
art_url="http://127.0.0.1:$(cat "$E2E_WORK/art.port")"

# --- the fake gateway, commissioning at first ----------------------------------------------
api_key="stoker-e2e:$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s' "$api_key" >"$E2E_WORK/secrets/apiKey"
"$PY" "$root/e2e/fixtures/fake-gateway.py" --port 0 --port-file "$E2E_WORK/fg.port" \
	--token "$api_key" >>"$E2E_WORK/fake-gateway.log" 2>&1 &
pids+=("$!")
wait_for 10 test -s "$E2E_WORK/fg.port" || { not_ok "fake gateway did not start"; exit 1; }
fg_port=$(cat "$E2E_WORK/fg.port")
fg() { curl -fsS "http://127.0.0.1:$fg_port/_fake/$1" ${2:+-X POST -H 'Content-Type: application/json' -d "$2"}; }
fg mode '{"commissioning": true}' >/dev/null
# calls PREFIX: recorded gateway calls whose path starts with PREFIX, "path status" lines
calls() { fg calls | "$PY" -c "import json,sys; [print(c['path'], c['status']) for c in json.load(sys.stdin) if c['path'].startswith('$1')]"; }

# --- the ConfigMaps the sync-controller would own --------------------------------------------
k create configmap "stoker-status-$cr" -n "$E2E_NS" >/dev/null
# meta SHA URL DIGEST: stoker-metadata-hostile pointing at one artifact
meta() {
	"$PY" - "$1" "$2" "$3" "$fg_port" "$cr" "$E2E_NS" <<'PY' | k apply -f - >/dev/null
import json, sys
sha, url, digest, port, cr, ns = sys.argv[1:]
prof = {"site": {"gate": sha, "spec": {"mappings": [{"source": "projects", "destination": "projects"}],
                                       "syncPeriod": 5}}}
print(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "stoker-metadata-" + cr, "namespace": ns},
                  "data": {"ref": "main", "commit": sha, "revision": "main@sha1:" + sha,
                           "artifactURL": url, "artifactDigest": digest, "gitURL": "",
                           "paused": "false", "excludePatterns": json.dumps(["**/.git/"]),
                           "gateway": json.dumps({"port": int(port), "tls": False}),
                           "profiles": json.dumps(prof)}}))
PY
}
# report FIELD: one field of the agent's report
report() {
	k get configmap "stoker-status-$cr" -n "$E2E_NS" -o json 2>/dev/null | "$PY" -c "
import json, sys
d = (json.load(sys.stdin).get('data') or {}).get('$gw')
v = json.loads(d) if d else {}
print(json.dumps(v['$1']) if isinstance(v.get('$1'), (dict, list, bool)) else v.get('$1', ''))"
}
status_is() { [ "$(report syncStatus)/$(report syncedCommit)" = "$1/$2" ]; }
error_has() { [ "$(report syncStatus)" = Error ] && report errorMessage | grep -qF -- "$1"; }
# snapshot: every path with its type and mode, and the sha256 of every file, of DATA
snapshot() {
	(cd "$data" && find . -printf '%y %m %p\n' | LC_ALL=C sort && find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2)
}
# no file named escape in the work tree, the agent's working directory, or /
no_escape() { [ -z "$(find "$E2E_WORK" 2>/dev/null -name escape; find "$PWD" -maxdepth 2 -name escape 2>/dev/null; ls -d /escape 2>/dev/null)" ]; }

# --- the agent -----------------------------------------------------------------------------
agent_pid= health=
start_agent() {
	health=$(free_port)
	env -i PATH="$PATH" KUBECONFIG="$KUBECONFIG" POD_NAME="$gw-0" POD_NAMESPACE="$E2E_NS" \
		CR_NAME="$cr" GATEWAY_NAME="$gw" SYNC_PROFILE=site REPO_PATH="$repo" DATA_PATH="$data" \
		GATEWAY_HOST=127.0.0.1 GATEWAY_PORT="$fg_port" API_KEY_FILE="$E2E_WORK/secrets/apiKey" \
		SOURCE_MODE=artifact SOURCE_TOKEN_FILE="$E2E_WORK/secrets/token" \
		"$bindir/agent" --health-probe-bind-address "127.0.0.1:$health" \
		--metrics-bind-address "127.0.0.1:$(free_port)" --log-level debug \
		>>"$E2E_WORK/agent.log" 2>&1 &
	agent_pid=$!
	pids+=("$agent_pid")
}
ready() { curl -fsS "http://127.0.0.1:$health/readyz" >/dev/null; }
gone() { ! kill -0 "$agent_pid" 2>/dev/null; }

# --- a good artifact, while the gateway is commissioning -----------------------------------
mkdir -p "$src/good1/projects/Site/views/Main" "$src/good1/projects/Shared"
echo '{"title": "Site", "enabled": true}' >"$src/good1/projects/Site/project.json"
echo '{"root": {"type": "ia.container.flex"}}' >"$src/good1/projects/Site/views/Main/view.json"
echo '{"title": "Shared"}' >"$src/good1/projects/Shared/project.json"
art good1 tree "$src/good1"
good1=$sha
meta "$sha" "$art_url/art/$sha.tar.gz" "$digest"
start_agent
if wait_for 30 status_is Synced "$good1"; then
	ok "good artifact: Synced at its commit"
else
	not_ok "good artifact: $(report syncStatus) $(report errorMessage)"
	tail -20 "$E2E_WORK/agent.log"
fi
check "good artifact: the files are in the data directory" diff -r "$src/good1/projects" "$data/projects"
check "ready after the initial sync" wait_for 5 ready
expect_eq "commissioning: no scan for the initial sync" "" "$(calls /data/api/v1/scan)"
check "commissioning: the agent asked gwinfo" bash -c "curl -fsS http://127.0.0.1:$fg_port/_fake/calls | grep -q /system/gwinfo"
expect_eq "the token went to the artifact server" "Bearer $src_token" "$(awk '/\/art\// {print $2, $3; exit}' "$E2E_WORK/art.log")"
expect_eq "lastScanResult of the initial sync" "skipped (initial sync)" "$(report lastScanResult)"
fg mode '{"commissioning": false}' >/dev/null
gwinfo_ok() { calls /system/gwinfo | grep -q ' 200$'; }
check "commissioning over: the agent sees the gateway running" wait_for 15 gwinfo_ok
before=$(snapshot)

# --- hostile artifacts: refused, nothing written, nothing changed ----------------------------
# hostile DESC NAME EXPECTED-MESSAGE-PART KIND [ARG]
hostile() {
	local desc=$1 name=$2 want=$3
	shift 3
	art "$name" "$@"
	meta "$sha" "$art_url/art/$sha.tar.gz" "$digest"
	if wait_for 20 error_has "$want"; then
		ok "$desc: Error naming the entry"
	else
		not_ok "$desc: expected Error with '$want', got $(report syncStatus): $(report errorMessage)"
	fi
	expect_eq "$desc: the data directory is unchanged" "$before" "$(snapshot)"
	expect_eq "$desc: still reports the good commit" "$good1" "$(report syncedCommit)"
	check "$desc: no 'escape' file anywhere" no_escape
	expect_eq "$desc: nothing left in the scratch trees" "$good1" "$(ls -A "$repo/trees")"
}
hostile "'../escape'" dotdot "tar entry '../escape'" dotdot ../escape
hostile "'projects/../../escape'" nested "tar entry 'projects/../../escape'" nested-dotdot projects/../../escape
hostile "absolute path" absolute "tar entry '$outside/escape': absolute path" absolute "$outside/escape"
hostile "symlink pointing outside" symlink "tar entry 'projects/Evil'" symlink "$outside"
expect_contains "symlink: the message says why" "symbolic link" "$(report errorMessage)"
hostile "hard link to a file outside" hardlink "tar entry 'projects/hard'" hardlink "$outside/target"
expect_contains "hardlink: the message says why" "hard link" "$(report errorMessage)"
expect_eq "hardlink: the outside file is untouched" "do not touch/1" "$(cat "$outside/target")/$(stat -c %h "$outside/target")"
expect_eq "nothing was written outside" "target" "$(ls -A "$outside")"
check "the agent still answers /healthz" curl -fsS "http://127.0.0.1:$health/healthz"

# --- digest mismatch ---------------------------------------------------------------------------
mkdir -p "$src/good2/projects"
cp -r "$src/good1/projects/." "$src/good2/projects/"
echo '{"title": "Site v2", "enabled": true}' >"$src/good2/projects/Site/project.json"
art good2 tree "$src/good2"
good2=$sha good2_digest=$digest
wrong="sha256:$(printf 'not the artifact' | sha256sum | cut -d' ' -f1)"
meta "$good2" "$art_url/art/$good2.tar.gz" "$wrong"
if wait_for 20 error_has "digest mismatch"; then ok "digest mismatch: Error"; else not_ok "digest mismatch: $(report syncStatus): $(report errorMessage)"; fi
expect_contains "digest mismatch: names the expected digest" "$wrong" "$(report errorMessage)"
expect_eq "digest mismatch: the data directory is unchanged" "$before" "$(snapshot)"
check "digest mismatch: no tree unpacked" test ! -e "$repo/trees/$good2"

# --- the artifact server refuses or lacks the artifact ----------------------------------------
events() { k get events -n "$E2E_NS" --field-selector "reason=$1" -o jsonpath='{range .items[*]}{.type}|{.involvedObject.kind}|{.involvedObject.name}|{.message}{"\n"}{end}'; }
meta "$good2" "$art_url/401/$good2.tar.gz" "$good2_digest"
if wait_for 20 error_has "HTTP 401"; then ok "artifact server 401: Error"; else not_ok "401: $(report syncStatus): $(report errorMessage)"; fi
expect_contains "401: a fetch failure that says the token was refused" "fetch failed: the artifact server refused this pod's token" "$(report errorMessage)"
expect_eq "401: the data directory is unchanged" "$before" "$(snapshot)"
fetch_event() { events FetchFailed | grep -q "$1"; }
if wait_for 10 fetch_event "HTTP 401"; then
	expect_contains "401: Warning FetchFailed event on Stoker $cr" "Warning|Stoker|$cr|" "$(events FetchFailed | grep 'HTTP 401' | head -1)"
	expect_contains "401: the event names the gateway" "on gateway $gw" "$(events FetchFailed | grep 'HTTP 401' | head -1)"
else
	not_ok "401: no FetchFailed event: $(events FetchFailed)"
fi
meta "$good2" "$art_url/404/$good2.tar.gz" "$good2_digest"
if wait_for 20 error_has "HTTP 404"; then ok "artifact server 404: Error"; else not_ok "404: $(report syncStatus): $(report errorMessage)"; fi
expect_contains "404: a fetch failure that says not found" "fetch failed: artifact not found" "$(report errorMessage)"
check "404: Warning FetchFailed event" wait_for 10 fetch_event "HTTP 404"
expect_eq "404: the data directory is unchanged" "$before" "$(snapshot)"
expect_eq "every hostile or failed sync left the gateway unscanned" "" "$(calls /data/api/v1/scan)"

# --- scans: retried on 500 ---------------------------------------------------------------------
fg reset {} >/dev/null
fg mode '{"fail": 2}' >/dev/null
meta "$good2" "$art_url/art/$good2.tar.gz" "$good2_digest"
if wait_for 30 status_is Synced "$good2"; then ok "scan retried: Synced"; else not_ok "scan retried: $(report syncStatus): $(report errorMessage)"; fi
check "scan retried: the new file content landed" diff -r "$src/good2/projects" "$data/projects"
expect_eq "scan retried: 3 projects calls (2 failed), then config" \
	"/data/api/v1/scan/projects 500
/data/api/v1/scan/projects 500
/data/api/v1/scan/projects 200
/data/api/v1/scan/config 200" "$(calls /data/api/v1/scan)"
expect_eq "scan retried: lastScanResult" "projects=200 config=200" "$(report lastScanResult)"

# --- scans: every try fails ------------------------------------------------------------------
next_good() { # NAME TITLE: a copy of the last good tree with one change; sets sha/digest
	mkdir -p "$src/$1"
	cp -r "$src/good2/projects" "$src/$1/"
	echo "{\"title\": \"$2\"}" >"$src/$1/projects/Shared/project.json"
	art "$1" tree "$src/$1"
}
fg reset {} >/dev/null
fg mode '{"failAll": true}' >/dev/null
next_good good3 "Shared v3"
good3=$sha
meta "$good3" "$art_url/art/$good3.tar.gz" "$digest"
if wait_for 30 error_has "scan"; then ok "scan always failing: Error"; else not_ok "scan failing: $(report syncStatus): $(report errorMessage)"; fi
expect_contains "scan always failing: message" "gateway scan failed: POST /data/api/v1/scan/projects: HTTP 500" "$(report errorMessage)"
expect_eq "scan always failing: 3 tries, no config scan" "3/0" \
	"$(calls /data/api/v1/scan/projects | head -3 | grep -c ' 500$')/$(calls /data/api/v1/scan/config | wc -l)"
scan_event() { events SyncFailed | grep -q "Warning|Stoker|$cr|.*gateway scan failed"; }
check "scan always failing: Warning SyncFailed event" wait_for 10 scan_event
fg mode '{"failAll": false}' >/dev/null
if wait_for 30 status_is Synced "$good3"; then ok "scan healed: the scan is retried and the gateway Synced"; else not_ok "scan healed: $(report syncStatus): $(report errorMessage)"; fi

# --- scans: the gateway refuses the token: not retried ---------------------------------------
fg reset {} >/dev/null
fg mode '{"token": "other"}' >/dev/null
next_good good4 "Shared v4"
good4=$sha
meta "$good4" "$art_url/art/$good4.tar.gz" "$digest"
if wait_for 30 error_has "refused the API token"; then ok "token refused: Error"; else not_ok "token refused: $(report syncStatus): $(report errorMessage)"; fi
sleep 2.5 # longer than the first retry backoff (1 s): a retry would have happened by now
# One projects call per scan: each 401 is at least 4 s (the next sync) after the previous.
spacing=$(fg calls | "$PY" -c '
import json, sys
t = [c["time"] for c in json.load(sys.stdin) if c["path"] == "/data/api/v1/scan/projects"]
print(len(t) >= 1 and all(b - a > 4 for a, b in zip(t, t[1:])))')
expect_eq "token refused: exactly one projects call per scan (401 not retried)" "True" "$spacing"
expect_eq "token refused: no config scan" "" "$(calls /data/api/v1/scan/config)"
expect_eq "token refused: lastScanResult" "projects=401" "$(report lastScanResult)"
fg mode "{\"token\": \"$api_key\"}" >/dev/null
if wait_for 30 status_is Synced "$good4"; then ok "token accepted again: Synced"; else not_ok "token back: $(report syncStatus): $(report errorMessage)"; fi

# --- SIGKILL in the middle of a big sync, then a restart -----------------------------------
cat >"$E2E_WORK/bigtree.py" <<'PY'
import os, sys
top, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(n):
    d = os.path.join(top, "projects", "Big" + tag, "d%02d" % (i % 30))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%04d.json" % i), "w") as f:
        f.write('{"i": %d, "tag": "%s", "blob": "%s"}\n' % (i, tag, os.urandom(700).hex()))
PY
# killer SIGNAL DIR PID: sends SIGNAL to PID the moment the first file is renamed into
# place under DIR (the sync is then half done: some files new, some still temporary or
# missing); prints how many files were in place then
cat >"$E2E_WORK/killer.py" <<'PY'
import os, signal, sys, time
sig, top, pid = getattr(signal, sys.argv[1]), sys.argv[2], int(sys.argv[3])
def placed():
    return sum(1 for _, _, fs in os.walk(top) for f in fs if not f.startswith(".stoker-tmp-"))
deadline = time.time() + 60
while time.time() < deadline:
    if os.path.isdir(top) and placed():
        os.kill(pid, sig)
        print(placed())
        sys.exit(0)
    time.sleep(0.0005)
print("timeout")
sys.exit(1)
PY
mkdir -p "$src/big"
cp -r "$src/good2/projects" "$src/big/"
"$PY" "$E2E_WORK/bigtree.py" "$src/big" 3000 A
art big tree "$src/big"
big=$sha
echo "# big artifact: $(du -h "$arts/$big.tar.gz" | cut -f1)"
disown "$agent_pid" # no "Killed" notice from bash
"$PY" "$E2E_WORK/killer.py" SIGKILL "$data/projects/BigA" "$agent_pid" >"$E2E_WORK/kill.out" 2>&1 &
killer=$!
meta "$big" "$art_url/art/$big.tar.gz" "$digest"
wait "$killer"
seen=$(cat "$E2E_WORK/kill.out")
wait_for 5 gone
if gone; then ok "SIGKILL during the sync (files of BigA in place at the kill: $seen)"; else not_ok "the agent survived SIGKILL"; fi
partial=$(find "$data/projects/BigA" -type f -name 'f*.json' 2>/dev/null | wc -l)
echo "# after the kill: $partial of 3000 files in place, $(find "$data" -name '.stoker-tmp-*' | wc -l) temporary files"
start_agent
if wait_for 60 status_is Synced "$big"; then ok "restarted after SIGKILL: Synced at the commit"; else not_ok "after SIGKILL: $(report syncStatus): $(report errorMessage)"; fi
check "after SIGKILL: the data equals the artifact exactly" diff -r "$src/big/projects" "$data/projects"
expect_eq "after SIGKILL: no temporary file left" "" "$(find "$data" -name '.stoker-tmp-*' | head -3)"
check "after SIGKILL: ready again" wait_for 10 ready

# --- SIGTERM in the middle of a sync: exit 0 within 10 s, every file old or new -----------------
mkdir -p "$src/big2"
cp -r "$src/big/projects" "$src/big2/"
"$PY" "$E2E_WORK/bigtree.py" "$src/big2" 3000 B
art big2 tree "$src/big2"
big2=$sha
"$PY" "$E2E_WORK/killer.py" SIGTERM "$data/projects/BigB" "$agent_pid" >"$E2E_WORK/term.out" 2>&1 &
killer=$!
meta "$big2" "$art_url/art/$big2.tar.gz" "$digest"
wait "$killer"
t_term=$(date +%s)
if wait_for 10 gone; then
	rc=0
	wait "$agent_pid" || rc=$?
	expect_eq "SIGTERM during a sync: the agent exits 0 within 10 s (took $(($(date +%s) - t_term)) s)" 0 "$rc"
else
	not_ok "SIGTERM: still running after 10 s"
	kill -KILL "$agent_pid" 2>/dev/null
fi
expect_eq "SIGTERM: no temporary file left" "" "$(find "$data" -name '.stoker-tmp-*' | head -3)"
torn=$(cd "$data/projects" && find BigB -type f 2>/dev/null | while read -r f; do cmp -s "$f" "$src/big2/projects/$f" || echo "$f"; done | head -3)
expect_eq "SIGTERM: every file written is complete" "" "$torn"
done_b=$(find "$data/projects/BigB" -type f 2>/dev/null | wc -l)
echo "# SIGTERM: $done_b of 3000 new files written before the exit"
if [ "$done_b" -gt 0 ] && [ "$done_b" -lt 3000 ]; then
	expect_eq "SIGTERM mid-sync: the report says the sync was interrupted" "Pending" "$(report syncStatus)"
	expect_contains "SIGTERM mid-sync: message" "interrupted by shutdown" "$(report errorMessage)"
fi

if grep -q "ERROR: AddressSanitizer\|runtime error:" "$E2E_WORK/agent.log"; then
	not_ok "sanitizer reports in the agent log"
fi
echo "# agent_hostile took $(($(date +%s) - t_start)) s"
