#!/usr/bin/env bash
# notification-controller, webhook receiver (DESIGN.md §5, CONTRACTS.md "Webhook receiver",
# docs/receiver.md) against a real API server, a real git daemon and the real
# source-, sync- and profile-controllers, all host processes. Requests are made by
# e2e/fixtures/webhook-load.py (raw HTTP/1.1, each from a loopback address of its own so
# the per-client rate limit only answers where a case asks for it).
#  - one accepted request per payload type (generic, GitHub push and release, GitLab push
#    and tag push, Argo CD, Kargo; HMAC and Bearer): the exact 202 body, the three
#    requested-* annotations, a WebhookReceived event, the receiver metric, and the
#    GitSource resolving the requested ref (the tag's commit) with the controllers running;
#  - the same ref again: 202, requested-at unchanged, no second event;
#  - a push to the branch already followed: the reconcile token reaches the GitSource,
#    which fetches the new commit at once despite its 1 h interval;
#  - 400 (invalid JSON, no ref, '..'), 401 byte-identical for a wrong HMAC, a missing
#    Stoker, a Stoker without webhook, a missing Secret, another namespace and no auth,
#    with medians of ~30 timed requests each within noise; 405, 404, 413 (1 MiB passes),
#    429 with Retry-After beyond the burst;
#  - load: 1000 signed requests/s for 10 s (rate limit lifted), in phases of one ref each:
#    every phase with a 202 changed the Stoker exactly once (one WebhookReceived event
#    per such ref, count 1), the final requested-ref is the last one accepted, and
#    /metrics and the receiver answer within 1 s throughout;
#  - the key never appears in the controller's log.
. "$(dirname "$0")/../lib/testlib.sh"
root=$(cd "$E2E_ROOT/.." && pwd)
bindir=${STOKER_BUILD_DIR:-$root/build}/bin
PY=/usr/bin/python3
WL=$root/e2e/fixtures/webhook-load.py
t_start=$(date +%s)

k apply -k "$root/config/crd/" >/dev/null
k wait --for=condition=Established --timeout=60s crd --all >/dev/null
k create namespace "$E2E_NS" >/dev/null 2>&1 || true

gs="$root/e2e/fixtures/git-servers"
eval "$("$gs" up --dir "$E2E_WORK/git")"
on_exit "'$gs' down --dir '$E2E_WORK/git'"
eval "$("$gs" repo --dir "$E2E_WORK/git" plant)"

# --- objects ----------------------------------------------------------------------------
key="hook-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
k create secret generic hook -n "$E2E_NS" --from-literal=key="$key" >/dev/null
k apply -n "$E2E_NS" -f - >/dev/null <<Y
apiVersion: source.stoker.io/v1alpha1
kind: GitSource
metadata: {name: plant-src}
spec: {url: "$GIT_DAEMON_URL/plant.git", ref: {branch: main}, interval: 1h}
---
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: plant}
spec:
  sourceRef: {kind: GitSource, name: plant-src}
  webhook: {secretRef: {name: hook, key: key}}
---
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: nohook}
spec:
  sourceRef: {kind: GitSource, name: plant-src}
---
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: lost}
spec:
  sourceRef: {kind: GitSource, name: plant-src}
  webhook: {secretRef: {name: no-such-secret, key: key}}
Y

# --- the controllers, as host processes watching this namespace ----------------------------
common=(--kubeconfig "$KUBECONFIG" --watch-namespaces "$E2E_NS" --leader-elect=false)
pids=()
on_exit 'kill ${pids[@]}'
start() { # name log args...
	local name=$1 log=$2
	shift 2
	"$bindir/$name" "${common[@]}" "$@" >>"$E2E_WORK/$log.log" 2>&1 &
	pids+=($!)
}
art_port=$(free_port)
start source-controller source --storage-path "$E2E_WORK/storage" \
	--artifact-bind-address "127.0.0.1:$art_port" --artifact-base-url "http://127.0.0.1:$art_port" \
	--health-probe-bind-address "127.0.0.1:$(free_port)" --metrics-bind-address "127.0.0.1:$(free_port)"
start sync-controller sync --health-probe-bind-address "127.0.0.1:$(free_port)" \
	--metrics-bind-address "127.0.0.1:$(free_port)"
start profile-controller profile --health-probe-bind-address "127.0.0.1:$(free_port)" \
	--metrics-bind-address "127.0.0.1:$(free_port)"
nc_pid=
start_nc() { # log extra-args...: (re)starts notification-controller on fresh ports
	local log=$1
	shift
	nc_metrics=$(free_port) recv_port=$(free_port)
	"$bindir/notification-controller" "${common[@]}" --health-probe-bind-address "127.0.0.1:$(free_port)" \
		--metrics-bind-address "127.0.0.1:$nc_metrics" --receiver-bind-address "127.0.0.1:$recv_port" \
		"$@" >>"$E2E_WORK/$log.log" 2>&1 &
	nc_pid=$!
	pids+=($nc_pid)
	recv="http://127.0.0.1:$recv_port"
	wait_for 10 curl -fsS -o /dev/null "http://127.0.0.1:$nc_metrics/metrics"
}
start_nc notification --log-level debug

# --- helpers ------------------------------------------------------------------------------
get() { k get "$1" -n "$E2E_NS" -o jsonpath="$2" 2>/dev/null; }
ann() { get "stoker/$1" "{.metadata.annotations.stoker\.io/requested-$2}"; }
# post PATH [webhook-load.py send options]: one request from a random loopback address;
# prints the JSON result. Answers 503 (receiver still starting) are retried for 20 s.
post() {
	local path=$1
	shift
	"$PY" "$WL" send "$recv$path" --source-ip random --retry-503 20 "$@"
}
# jq_ JSON EXPR: a Python expression over the decoded document d.
jq_() { "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); r=eval(sys.argv[2]); print(r if isinstance(r,str) else json.dumps(r))' "$1" "$2"; }
status_of() { jq_ "$1" 'd["status"]'; }
hdr() { jq_ "$1" "next((v for n,v in d['headers'] if n.lower()=='$2'.lower()), '')"; }
body_is() { # DESC RESULT EXPECTED-JSON: the body parses to exactly this document
	local got
	got=$("$PY" -c 'import json,sys; print(json.loads(json.loads(sys.argv[1])["body"]) == json.loads(sys.argv[2]))' "$1" "$2" 2>&1)
	if [ "$got" = True ]; then ok "$3"; else not_ok "$3: body $(jq_ "$1" 'd["body"]'), want $2"; fi
}
metric() { # name-and-labels: the value on the notification-controller's /metrics, else 0
	curl -fsS "http://127.0.0.1:$nc_metrics/metrics" | awk -v m="$1" '$1 == m { print $2; f=1 } END { if (!f) print 0 }'
}
# events_json: the WebhookReceived events on plant as {message: count}
events_json() {
	k get events -n "$E2E_NS" --field-selector involvedObject.kind=Stoker,involvedObject.name=plant,reason=WebhookReceived \
		-o json | "$PY" -c '
import json, sys
out = {}
for e in json.load(sys.stdin)["items"]:
    out[e["message"]] = out.get(e["message"], 0) + (e.get("count") or 1)
print(json.dumps(out, sort_keys=True))'
}
event_count() { jq_ "$(events_json)" "d.get(\"$1\", 0)"; }
event_is() { [ "$(event_count "$1")" = "${2:-1}" ]; }
src_is() { # ref commit: the GitSource's artifact
	[ "$(get gitsource/plant-src '{.status.artifact.ref} {.status.artifact.commit}')" = "$1 $2" ]
}
rfc3339_recent() { # value: RFC 3339 UTC with seconds and Z, within 15 s of now
	"$PY" -c '
import sys, datetime, re
v = sys.argv[1]
if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v): sys.exit(1)
t = datetime.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
sys.exit(0 if abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) < 15 else 1)' "$1"
}

check "GitSource plant-src resolves main first" wait_for 30 src_is main "$COMMIT_MAIN"
plant="/webhook/$E2E_NS/plant"

# --- generic, HMAC ----------------------------------------------------------------------------
m202=$(metric 'stoker_receiver_requests_total{code="202",source="generic"}')
r=$(post "$plant" --body '{"ref":"v1.1.0"}' --key "$key")
expect_eq "generic + HMAC: 202" 202 "$(status_of "$r")"
body_is "$r" '{"accepted":true,"ref":"v1.1.0","source":"generic"}' "generic: body exactly {accepted, ref v1.1.0, source generic}"
expect_eq "generic: Content-Type" application/json "$(hdr "$r" content-type)"
expect_eq "generic: requested-ref" v1.1.0 "$(ann plant ref)"
expect_eq "generic: requested-by" generic "$(ann plant by)"
at1=$(ann plant at)
check "generic: requested-at is RFC 3339 UTC, now ($at1)" rfc3339_recent "$at1"
check "generic: one WebhookReceived event 'ref 'v1.1.0' requested by generic'" wait_for 5 event_is "ref 'v1.1.0' requested by generic"
expect_eq "generic: stoker_receiver_requests_total{code=202,source=generic} +1" \
	"$((${m202%.*} + 1))" "$(metric 'stoker_receiver_requests_total{code="202",source="generic"}' | cut -d. -f1)"
check "generic: the sync-controller passes the request to the GitSource" \
	wait_for 15 bash -c "[ \"\$('$STOKER_KUBECTL' get gitsource/plant-src -n $E2E_NS -o jsonpath='{.metadata.annotations.stoker\.io/requested-ref}')\" = v1.1.0 ]"
check "generic: the GitSource resolves v1.1.0 to the tag's commit" wait_for 30 src_is v1.1.0 "$COMMIT_V1_1_0"
meta_commit() { [ "$(get configmap/stoker-metadata-plant '{.data.commit}')" = "$1" ]; }
check "generic: the Stoker's metadata ConfigMap follows (commit of v1.1.0)" wait_for 15 meta_commit "$COMMIT_V1_1_0"

# --- the same ref again ----------------------------------------------------------------------------
[ "$(date -u +%Y-%m-%dT%H:%M:%SZ)" = "$at1" ] && sleep 1.1
r=$(post "$plant" --body '{"ref":"v1.1.0"}' --key "$key")
expect_eq "same ref again: 202" 202 "$(status_of "$r")"
body_is "$r" '{"accepted":true,"ref":"v1.1.0","source":"generic"}' "same ref again: same body"
expect_eq "same ref again: requested-at unchanged" "$at1" "$(ann plant at)"
sleep 0.5
expect_eq "same ref again: no second event" '{"ref '"'v1.1.0'"' requested by generic": 1}' "$(events_json)"

# --- one accepted request per payload type --------------------------------------------------
# accept DESC BODY REF SOURCE [send options]: 202 with the exact body, the annotations, the event
accept() {
	local desc=$1 body=$2 ref=$3 source=$4 r
	shift 4
	r=$(post "$plant" --body "$body" "$@")
	expect_eq "$desc: 202" 202 "$(status_of "$r")"
	body_is "$r" "{\"accepted\":true,\"ref\":\"$ref\",\"source\":\"$source\"}" "$desc: body {ref $ref, source $source}"
	expect_eq "$desc: annotations requested-ref, requested-by" "$ref $source" "$(ann plant ref) $(ann plant by)"
	check "$desc: WebhookReceived 'ref '$ref' requested by $source'" wait_for 5 event_is "ref '$ref' requested by $source"
}
mgh=$(metric 'stoker_receiver_requests_total{code="202",source="github"}')
accept "GitHub push" '{"ref":"refs/heads/release","before":"'"$COMMIT_MAIN"'","after":"'"$COMMIT_RELEASE"'","repository":{"full_name":"acme/plant"}}' \
	release github --key "$key" --header "X-GitHub-Event: push"
expect_eq "GitHub push: stoker_receiver_requests_total{code=202,source=github} +1" \
	"$((${mgh%.*} + 1))" "$(metric 'stoker_receiver_requests_total{code="202",source="github"}' | cut -d. -f1)"
check "GitHub push: the GitSource resolves branch release" wait_for 30 src_is release "$COMMIT_RELEASE"
accept "GitHub release" '{"action":"published","release":{"tag_name":"v2.0.0","name":"2.0.0"}}' \
	v2.0.0 github --key "$key" --header "X-GitHub-Event: release"
check "GitHub release: the GitSource resolves annotated v2.0.0 to its commit" wait_for 30 src_is v2.0.0 "$COMMIT_V2_0_0"
accept "GitLab push" '{"object_kind":"push","ref":"refs/heads/main","checkout_sha":"'"$COMMIT_MAIN"'"}' \
	main gitlab --key "$key" --header "X-Gitlab-Event: Push Hook"
check "GitLab push of main (the GitSource's own ref): the GitSource resolves main again" \
	wait_for 30 src_is main "$COMMIT_MAIN"
accept "GitLab tag push" '{"object_kind":"tag_push","ref":"refs/tags/v1.0.0"}' \
	v1.0.0 gitlab --key "$key" --header "X-Gitlab-Event: Tag Push Hook"
accept "Argo CD notification" '{"app":{"metadata":{"name":"plant","annotations":{"git.ref":"v2.0.0-rc.1"}}}}' \
	v2.0.0-rc.1 argocd --key "$key"
accept "Kargo promotion" '{"freight":{"name":"f1","commits":[{"repoURL":"x","tag":"v1.1.0"}]}}' \
	v1.1.0 kargo --key "$key"
accept "Bearer instead of HMAC (generic, a commit SHA)" "{\"ref\":\"$COMMIT_RELEASE\"}" \
	"$COMMIT_RELEASE" generic --bearer "$key"
check "Bearer: the GitSource resolves the commit" wait_for 30 src_is "$COMMIT_RELEASE" "$COMMIT_RELEASE"

# --- 400: bad payloads after authentication -----------------------------------------------------
refused() { # DESC BODY MESSAGE-PART
	local r
	r=$(post "$plant" --body "$2" --key "$key")
	expect_eq "$1: 400" 400 "$(status_of "$r")"
	expect_contains "$1: error message" "$3" "$(jq_ "$r" 'json.loads(d["body"])["error"]')"
}
refused "invalid JSON" 'not json' "payload: invalid JSON"
refused "no ref" '{"hello":"world"}' "no ref found in the payload"
refused "a ref with '..'" '{"ref":"a..b"}' "ref 'a..b' contains '..'"
expect_eq "400s leave requested-ref alone" "$COMMIT_RELEASE" "$(ann plant ref)"

# --- 401: one answer for every authentication failure ------------------------------------------
u=$("$PY" "$WL" unauthorized "$recv" --n 30 \
	--case "wrong-hmac:$plant:key=not-the-key" \
	--case "missing-stoker:/webhook/$E2E_NS/nosuch:key=$key" \
	--case "nohook:/webhook/$E2E_NS/nohook:key=$key" \
	--case "no-auth:$plant:none" \
	--case "wrong-bearer:$plant:bearer=not-the-key" \
	--case "missing-secret:/webhook/$E2E_NS/lost:key=$key" \
	--case "other-namespace:/webhook/kube-system/plant:key=$key")
for c in wrong-hmac missing-stoker nohook no-auth wrong-bearer missing-secret other-namespace; do
	expect_eq "401 for $c" 401 "$(jq_ "$u" "d['$c']['status']")"
done
expect_eq "401 body" '{"error":"unauthorized"}' "$(jq_ "$u" 'd["wrong-hmac"]["body"]')"
expect_eq "401 WWW-Authenticate" 'Bearer realm="stoker-webhook"' \
	"$(jq_ "$u" "next(v for n,v in d['wrong-hmac']['headers'] if n.lower()=='www-authenticate')")"
for c in missing-stoker nohook no-auth wrong-bearer missing-secret other-namespace; do
	expect_eq "401 for $c is byte-identical to a wrong HMAC (headers but Date, body)" \
		"$(jq_ "$u" 'd["wrong-hmac"]["raw"]')" "$(jq_ "$u" "d['$c']['raw']")"
done
expect_eq "every timed request was answered 401" "[]" "$(jq_ "$u" '[c for c in d if d[c].get("other_status")]')"
echo "# 401 median/p90 ms over 30 each: $(jq_ "$u" "' '.join('%s=%s/%s' % (c, d[c]['median_ms'], d[c]['p90_ms']) for c in d)")"
same_time() { # case: median within max(3 ms, 50%) of the wrong HMAC's
	"$PY" -c '
import json, sys
d = json.loads(sys.argv[1]); a = d["wrong-hmac"]["median_ms"]; b = d[sys.argv[2]]["median_ms"]
sys.exit(0 if abs(a - b) < max(3.0, 0.5 * max(a, b)) else 1)' "$u" "$1"
}
for c in missing-stoker nohook missing-secret; do
	check "401 for $c takes the time of a wrong HMAC (medians $(jq_ "$u" "d['wrong-hmac']['median_ms']") vs $(jq_ "$u" "d['$c']['median_ms']") ms)" same_time "$c"
done

# --- 405, 404, 413 ------------------------------------------------------------------------------
r=$(post "$plant" --method GET)
expect_eq "GET: 405" 405 "$(status_of "$r")"
expect_eq "GET: Allow: POST" POST "$(hdr "$r" allow)"
body_is "$r" '{"error":"method not allowed"}' "GET: body"
for p in "$plant/" "/webhook/Site1/plant" "/webhook/$E2E_NS" "/webhook/$E2E_NS/plant/extra"; do
	r=$(post "$p" --body '{"ref":"v1.0.0"}' --key "$key")
	expect_eq "malformed path $p: 404" 404 "$(status_of "$r")"
done
body_is "$r" '{"error":"not found"}' "malformed path: body"
r=$(post "$plant" --body-size 1048577 --key "$key")
expect_eq "a body of 1 MiB + 1: 413" 413 "$(status_of "$r")"
r=$(post "$plant" --body-size 1048576 --key "$key")
expect_eq "a body of exactly 1 MiB reaches the receiver (400: the ref is too long)" 400 "$(status_of "$r")"
expect_contains "1 MiB: the receiver's message" "longer than" "$(jq_ "$r" 'json.loads(d["body"])["error"]')"

# --- 429: a client beyond the burst (default --receiver-rate 10, --receiver-burst 20) -------
b=$("$PY" "$WL" burst "$recv$plant" --n 40 --source-ip 127.0.5.5)
expect_eq "burst: the first 20 requests are not rate-limited" 0 "$(jq_ "$b" 'sum(1 for s,_ in d[:20] if s == 429)')"
n429=$(jq_ "$b" 'sum(1 for s,_ in d if s == 429)')
check "burst of 40: some 429 ($n429; statuses $(jq_ "$b" "' '.join(str(s) for s,_ in d)"))" test "$n429" -ge 5
expect_eq "every 429 has Retry-After: 1" '["1"]' "$(jq_ "$b" 'sorted(set(str(r) for s,r in d if s == 429))')"
expect_eq "stoker_receiver_requests_total{code=429} counts them" "$n429" \
	"$(metric 'stoker_receiver_requests_total{code="429",source=""}' | cut -d. -f1)"
check "another client is not limited meanwhile" test "$(status_of "$(post "$plant" --body '{"ref":"v1.0.0"}')")" = 401

# --- load: rate limit lifted, 1000 signed requests/s for 10 s -------------------------------------
kill "$nc_pid"
wait "$nc_pid" 2>/dev/null
start_nc notification-load --log-level info --receiver-rate 100000 --receiver-burst 100000
# Ready when a request gets past the start-up 503.
r=$(post "$plant" --body '{"ref":"v1.0.0"}' --key "$key")
expect_eq "restarted controller (rate 100000, burst 100000) accepts" 202 "$(status_of "$r")"
events_before=$(events_json)

: >"$E2E_WORK/probing"
(
	while [ -e "$E2E_WORK/probing" ]; do
		curl -s -o /dev/null -m 3 -w "metrics %{http_code} %{time_total}\n" "http://127.0.0.1:$nc_metrics/metrics"
		curl -s -o /dev/null -m 3 -w "receiver %{http_code} %{time_total}\n" "$recv$plant"
		sleep 0.5
	done >"$E2E_WORK/probe.log" 2>&1
) &
probe_pid=$!
pids+=($probe_pid)
"$PY" "$WL" load "$recv$plant" --key "$key" --rate 1000 --duration 10 --phase 500 --conns 128 \
	--source-ip 127.0.6.6 --out "$E2E_WORK/load.json" >/dev/null
rm -f "$E2E_WORK/probing"
wait "$probe_pid"
L=$(cat "$E2E_WORK/load.json")
echo "# load: $(jq_ "$L" "'sent %d answered %d in %ss: %s/s (202: %s/s); codes %s; latency p50 %s ms p99 %s ms (202: p50 %s p99 %s); %d of %d phases accepted' % (d['sent'], d['answered'], d['seconds'], d['rate'], d['rate_202'], json.dumps(d['codes'], sort_keys=True), d['p50_ms'], d['p99_ms'], d['p50_202_ms'], d['p99_202_ms'], len(d['accepted_refs']), d['phases'])")"
expect_eq "load: every request answered" "10000 0" "$(jq_ "$L" "'%d %d' % (d['answered'], d['n_errors'])")"
expect_eq "load: answers are only 202 and 503 (busy)" "[]" "$(jq_ "$L" "sorted(c for c in d['codes'] if c not in ('202', '503'))")"
check "load: requests were accepted ($(jq_ "$L" "d['codes'].get('202', 0)") × 202)" test "$(jq_ "$L" "d['codes'].get('202', 0)")" -gt 0
check "load: 10000 requests answered within 20 s ($(jq_ "$L" "d['seconds']") s)" \
	"$PY" -c "import sys; sys.exit(0 if $(jq_ "$L" "d['seconds']") < 20 else 1)"
# Each phase is one new ref: the phases with a 202 each changed requested-ref once.
expect_eq "load: one WebhookReceived per accepted ref (count 1), none for the others" \
	"$(jq_ "$L" "json.dumps({\"ref '%s' requested by generic\" % r: 1 for r in d['accepted_refs']}, sort_keys=True)")" \
	"$(jq_ "$(events_json)" "json.dumps({m: c for m, c in d.items() if m.startswith(\"ref 'load-\")}, sort_keys=True)")"
expect_eq "load: ref changes caused (phases with a 202) = sum of WebhookReceived counts since the load" \
	"$(jq_ "$L" 'len(d["accepted_refs"])')" \
	"$(jq_ "$(events_json)" "sum(c for m, c in d.items() if m.startswith(\"ref 'load-\"))")"
expect_eq "load: events from before the load unchanged" "$events_before" \
	"$(jq_ "$(events_json)" "json.dumps({m: c for m, c in d.items() if not m.startswith(\"ref 'load-\")}, sort_keys=True)")"
expect_eq "load: the final requested-ref is the last ref accepted" "$(jq_ "$L" 'd["last_accepted"]')" "$(ann plant ref)"
log_accepted() { # changed: "webhook accepted" lines for load refs in the controller's log
	grep '"msg":"webhook accepted"' "$E2E_WORK/notification-load.log" | grep '"ref":"load-' | grep -c "\"changed\":\"$1\""
}
expect_eq "load: the log's changed=true acceptances match the accepted refs" \
	"$(jq_ "$L" 'len(d["accepted_refs"])')" "$(log_accepted true)"
expect_eq "load: the log's acceptances match the 202s" \
	"$(jq_ "$L" "d['codes'].get('202', 0)")" "$(($(log_accepted true) + $(log_accepted false)))"
probes=$(wc -l <"$E2E_WORK/probe.log")
slow=$(awk '$2 !~ /^(200|405)$/ || $3 >= 1.0' "$E2E_WORK/probe.log")
echo "# probes during the load: $probes, slowest $(sort -k3 -n "$E2E_WORK/probe.log" | tail -1)"
check "load: /metrics and the receiver were probed throughout ($probes probes)" test "$probes" -ge 20
expect_eq "load: every probe answered (200 /metrics, 405 receiver GET) within 1 s" "" "$slow"

# --- a push to the branch already followed fetches at once ----------------------------------
# The GitSource's interval is 1 h: only the receiver's reconcile token, forwarded by the
# sync-controller, can make it fetch the new commit within seconds.
push_main() { # BODY: a GitHub push of main; prints the HTTP status
	status_of "$(post "$plant" --body "$1" --key "$key" --header "X-GitHub-Event: push")"
}
gh_main='{"ref":"refs/heads/main","repository":{"full_name":"acme/plant"}}'
expect_eq "push to main (the followed branch): 202" 202 "$(push_main "$gh_main")"
check "push to main: the GitSource is back on main" wait_for 30 src_is main "$COMMIT_MAIN"
token() { get "$1" '{.metadata.annotations.stoker\.io/reconcile-requested-at}'; }
new_main=$("$gs" push --dir "$E2E_WORK/git" plant main)
expect_eq "push to main again (ref unchanged): 202" 202 "$(push_main "$gh_main")"
expect_eq "push to main again: requested-ref still main" main "$(ann plant ref)"
check "push to main again: the Stoker carries a reconcile token ($(token stoker/plant))" rfc3339_recent "$(token stoker/plant)"
same_token() { [ -n "$(token stoker/plant)" ] && [ "$(token gitsource/plant-src)" = "$(token stoker/plant)" ]; }
check "push to main again: the sync-controller forwards the token to the GitSource" wait_for 15 same_token
check "push to main again: the GitSource fetches the new commit at once (interval 1h)" wait_for 15 src_is main "$new_main"
check "push to main again: the GitSource handled the token" wait_for 5 bash -c \
	"[ \"\$('$STOKER_KUBECTL' get gitsource/plant-src -n $E2E_NS -o jsonpath='{.status.lastHandledReconcileAt}')\" = '$(token stoker/plant)' ]"
# Two pushes in quick succession, each followed by its webhook (as two merges in a row
# would be), started at the top of a second so both usually fall within it: the first
# request's fetch is over before the second push, and the second request finds this
# second's token already written. It is owed a trailing token once the second is over,
# so the second commit is fetched too. (Should the steps straddle a second, the second
# request writes its own token: the same outcome, by the other path.)
"$PY" -c 'import time; time.sleep(1 - time.time() % 1 + 0.01)'
quick1=$("$gs" push --dir "$E2E_WORK/git" plant main)
expect_eq "two quick pushes: first webhook 202" 202 "$(push_main "$gh_main")"
check "two quick pushes: the first commit is fetched" wait_for 15 src_is main "$quick1"
tok1=$(token stoker/plant)
quick2=$("$gs" push --dir "$E2E_WORK/git" plant main)
expect_eq "two quick pushes: second webhook 202" 202 "$(push_main "$gh_main")"
echo "# two quick pushes: second webhook $([ "$(token stoker/plant)" = "$tok1" ] && echo "in the same second (trailing token)" || echo "in the next second")"
check "two quick pushes: the GitSource ends at the second commit at once (interval 1h)" wait_for 15 src_is main "$quick2"

# --- secrets never logged --------------------------------------------------------------------
sig=$("$PY" -c 'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), b"{\"ref\":\"v1.1.0\"}", hashlib.sha256).hexdigest())' "$key")
if grep -q -e "$key" -e "$sig" "$E2E_WORK"/notification*.log; then
	not_ok "the webhook key or a signature appears in the controller's log"
else
	ok "no key or signature in the controller's logs"
fi
echo "# runtime $(($(date +%s) - t_start)) s"
