#!/usr/bin/env bash
# notification-controller, Alerts: Events about Stoker kinds go out to providers
# (DESIGN.md §3.4, §5). A local sink (e2e/fixtures/sink.py) records what each provider
# type sends; events are recorded on real objects through the API server, as the
# controllers' and agents' event recorders do.
#  - one Alert per provider type: the documented payload shape; generic-hmac signature;
#  - severity, name, label, inclusion and exclusion filters;
#  - a repeated event inside the 5-minute window is sent once;
#  - a sink answering 500 twice then 200 receives the notification; a sink that keeps
#    failing gives a NotificationDispatchFailed event; a suspended Alert sends nothing;
#  - Alert status: Ready, InvalidSpec for a bad regex, SecretNotFound, lastSent;
#  - leader handover (a leader killed, a leader stopped): each event sent once.
. "$(dirname "$0")/../lib/testlib.sh"
root=$(cd "$E2E_ROOT/.." && pwd)
bindir=${STOKER_BUILD_DIR:-$root/build}/bin
PY=/usr/bin/python3

k apply -k "$root/config/crd/" >/dev/null
k wait --for=condition=Established --timeout=60s crd --all >/dev/null
k create namespace "$E2E_NS" >/dev/null 2>&1 || true

"$PY" "$root/e2e/fixtures/sink.py" --port-file "$E2E_WORK/sink.port" >>"$E2E_WORK/sink.log" 2>&1 &
sink_pid=$!
on_exit 'kill $sink_pid'
wait_for 10 test -s "$E2E_WORK/sink.port" || { not_ok "sink did not start"; exit 1; }
sink="http://127.0.0.1:$(cat "$E2E_WORK/sink.port")"
# requests PATH: the bodies received on PATH, one JSON document per line
requests() {
	curl -fsS "$sink/_sink/requests" | "$PY" -c "
import json, sys
for r in json.load(sys.stdin):
    if r['path'] == '$1':
        print(json.dumps(r))"
}
count() { requests "$1" | wc -l; }

"$bindir/notification-controller" --kubeconfig "$KUBECONFIG" --leader-elect=false \
	--watch-namespaces "$E2E_NS" --health-probe-bind-address "127.0.0.1:$(free_port)" \
	--metrics-bind-address "127.0.0.1:$(free_port)" --receiver-bind-address "127.0.0.1:$(free_port)" \
	--log-level debug >>"$E2E_WORK/notification.log" 2>&1 &
nc_pid=$!
on_exit 'kill $nc_pid'

# --- objects: two Stokers (one labelled), Secrets, one Alert per provider type ---------------
k create secret generic hmac -n "$E2E_NS" --from-literal=token=hmac-key >/dev/null
k create secret generic pd -n "$E2E_NS" --from-literal=token=routing-key-1 \
	--from-literal=address="$sink/pagerduty" >/dev/null
k apply -n "$E2E_NS" -f - >/dev/null <<Y
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: plant, labels: {site: one}}
spec: {git: {repo: "https://example.invalid/r.git", ref: main}}
---
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: other}
spec: {git: {repo: "https://example.invalid/r.git", ref: main}}
Y
alert() { # name type [extra spec yaml lines]
	local name=$1 type=$2
	shift 2
	k apply -n "$E2E_NS" -f - >/dev/null <<Y
apiVersion: notification.stoker.io/v1alpha1
kind: Alert
metadata: {name: $name}
spec:
  provider: {type: $type, address: "$sink/$name"$( [ "$type" = generic-hmac ] && echo ", secretRef: {name: hmac}")$( [ "$type" = pagerduty ] && echo ", secretRef: {name: pd}")}
  eventSources: [{kind: Stoker, name: plant}]
  summary: "site one"
  eventMetadata: {env: e2e}
$(printf '  %s\n' "$@")
Y
}
for t in generic generic-hmac slack msteams discord googlechat pagerduty alertmanager; do
	alert "$t" "$t"
done
alert sev-error generic "eventSeverity: error"
alert by-label generic 'eventSources: [{kind: Stoker, name: "*", matchLabels: {site: one}}]'
alert incl generic 'inclusionList: ["area[0-9]+"]' 'exclusionList: ["area9"]'
alert suspended generic "suspend: true"
alert bad-regex generic 'exclusionList: ["(unclosed"]'
k apply -n "$E2E_NS" -f - >/dev/null <<Y
apiVersion: notification.stoker.io/v1alpha1
kind: Alert
metadata: {name: no-secret}
spec:
  provider: {type: slack, secretRef: {name: missing}}
  eventSources: [{kind: Stoker, name: plant}]
Y

ready_is() { [ "$(k get alert "$1" -n "$E2E_NS" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}')" = "$2" ]; }
for a in generic slack pagerduty suspended; do
	check "Alert $a is Ready" wait_for 20 ready_is "$a" True/Succeeded
done
check "bad regex: Ready False InvalidSpec" wait_for 20 ready_is bad-regex False/InvalidSpec
expect_contains "bad regex: the message names it" "(unclosed" \
	"$(k get alert bad-regex -n "$E2E_NS" -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}')"
check "missing Secret: Ready False SecretNotFound" wait_for 20 ready_is no-secret False/SecretNotFound
expect_contains "missing Secret: the message names it" "Secret 'missing' not found" \
	"$(k get alert no-secret -n "$E2E_NS" -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}')"
k wait --for=condition=Ready alert/generic -n "$E2E_NS" --timeout=20s >/dev/null && ok "kubectl wait --for=condition=Ready alert/generic"

# event STOKER TYPE REASON MESSAGE: a core/v1 Event on a Stoker, as a recorder writes it.
n_ev=0
event() {
	local uid now
	n_ev=$((n_ev + 1))
	uid=$(k get stoker "$1" -n "$E2E_NS" -o jsonpath='{.metadata.uid}')
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	k create -n "$E2E_NS" -f - >/dev/null <<Y
apiVersion: v1
kind: Event
metadata: {name: "$1.e2e-$n_ev"}
involvedObject: {apiVersion: stoker.io/v1alpha1, kind: Stoker, namespace: "$E2E_NS", name: "$1", uid: "$uid"}
type: $2
reason: $3
message: "$4"
source: {component: stoker-agent, host: area2-gw}
reportingComponent: stoker-agent
reportingInstance: area2-gw
firstTimestamp: "$now"
lastTimestamp: "$now"
count: 1
Y
}
sleep 2 # the controller's event watch is up
event plant Warning SyncFailed "Sync failed on gateway area2: scan failed"
got() { [ "$(count "/$1")" -ge "${2:-1}" ]; }
got_sent() { requests /generic | grep -q "$1"; } # a request to /generic carried TEXT
for t in generic generic-hmac slack msteams discord googlechat pagerduty alertmanager; do
	check "$t: one notification received" wait_for 20 got "$t"
done
body() { requests "/$1" | head -1 | "$PY" -c "import json,sys; r=json.loads(sys.stdin.readline()); print(r['body'])"; }
header() { requests "/$1" | head -1 | "$PY" -c "import json,sys; r=json.loads(sys.stdin.readline()); print(r['headers'].get('$2',''))"; }
jq_() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
g=$(body generic)
expect_eq "generic: involvedObject" "Stoker/$E2E_NS/plant" "$(jq_ 'd["involvedObject"]["kind"]+"/"+d["involvedObject"]["namespace"]+"/"+d["involvedObject"]["name"]' <<<"$g")"
expect_eq "generic: severity, reason" "error SyncFailed" "$(jq_ 'd["severity"]+" "+d["reason"]' <<<"$g")"
expect_eq "generic: message" "Sync failed on gateway area2: scan failed" "$(jq_ 'd["message"]' <<<"$g")"
expect_eq "generic: metadata summary and eventMetadata" "site one e2e" "$(jq_ 'd["metadata"]["summary"]+" "+d["metadata"]["env"]' <<<"$g")"
expect_eq "generic: reporting controller and instance" "stoker-agent area2-gw" "$(jq_ 'd["reportingController"]+" "+d["reportingInstance"]' <<<"$g")"
expect_eq "generic: Content-Type" "application/json" "$(header generic content-type)"
h=$(body generic-hmac)
sig=$(header generic-hmac x-signature)
want=$(printf '%s' "$h" | "$PY" -c "import hmac,hashlib,sys; print('sha256='+hmac.new(b'hmac-key', sys.stdin.buffer.read(), hashlib.sha256).hexdigest())")
expect_eq "generic-hmac: X-Signature verifies" "$want" "$sig"
expect_contains "slack: attachments carry the message" "scan failed" "$(jq_ 'json.dumps(d.get("attachments") or d.get("blocks"))' <<<"$(body slack)")"
expect_contains "msteams: a card with the message" "scan failed" "$(body msteams)"
expect_contains "discord: an embed" "scan failed" "$(jq_ 'json.dumps(d["embeds"])' <<<"$(body discord)")"
expect_contains "googlechat: the message" "scan failed" "$(body googlechat)"
pd=$(body pagerduty)
expect_eq "pagerduty: routing key and trigger" "routing-key-1 trigger" "$(jq_ 'd["routing_key"]+" "+d["event_action"]' <<<"$pd")"
expect_contains "pagerduty: summary" "SyncFailed" "$(jq_ 'd["payload"]["summary"]' <<<"$pd")"
am=$(body alertmanager)
expect_eq "alertmanager: one alert with the reason label" "SyncFailed" "$(jq_ 'd[0]["labels"]["reason"]' <<<"$am")"

# --- filters --------------------------------------------------------------------------------
expect_eq "severity error: the Warning is sent" 1 "$(count /sev-error)"
event plant Normal SyncCompleted "Sync completed on gateway site: 2c6a06"
check "an info event reaches the info Alert" wait_for 20 got generic 2
expect_eq "severity error: the Normal event is not sent" 1 "$(count /sev-error)"
expect_eq "label: a labelled Stoker's events are sent" 2 "$(count /by-label)"
event other Warning SyncFailed "Sync failed on gateway area3"
sleep 3
expect_eq "name: another Stoker's event is not sent" 2 "$(count /generic)"
expect_eq "label: an unlabelled Stoker's event is not sent" 2 "$(count /by-label)"
event plant Warning SyncFailed "Sync failed on gateway area9"
event plant Warning SyncFailed "Sync failed on gateway area4"
check "inclusion: a matching message is sent" wait_for 20 got incl 2
sleep 2
expect_eq "inclusion: area2 and area4 sent, exclusion wins for area9" \
	"area2 area4" "$(requests /incl | "$PY" -c "
import json,sys,re
print(' '.join(sorted(re.search(r'area[0-9]+', json.loads(json.loads(l)['body'])['message']).group(0) for l in sys.stdin)))")"
expect_eq "suspended: nothing sent" 0 "$(count /suspended)"

# --- duplicates, retries, failures ------------------------------------------------------------
before=$(count /generic)
event plant Warning SyncFailed "Sync failed on gateway area2: scan failed"
sleep 3
expect_eq "a repeated event inside the window is sent once" "$before" "$(count /generic)"

curl -fsS -X POST "$sink/_sink/mode" -d '{"fail": 2, "failStatus": 500, "path": "/generic"}' >/dev/null
event plant Warning SyncFailed "Sync failed on gateway area5"
got_ok() { requests /generic | tail -1 | grep '"status": 200' | grep -q area5; }
check "500 twice then 200: delivered" wait_for 20 got_ok
expect_eq "500 twice then 200: three attempts" "500 500 200" "$(requests /generic | tail -3 | "$PY" -c "import json,sys; print(' '.join(str(json.loads(l)['status']) for l in sys.stdin))")"
last_sent() { k get alert generic -n "$E2E_NS" -o jsonpath='{.status.lastSent.reason}/{.status.lastSent.result}'; }
sent_ok() { [ "$(last_sent)" = SyncFailed/200 ]; }
check "lastSent records the delivery" wait_for 10 sent_ok

curl -fsS -X POST "$sink/_sink/mode" -d '{"fail": 100, "failStatus": 503, "path": "/generic"}' >/dev/null
event plant Warning SyncFailed "Sync failed on gateway area6"
dispatch_failed() { k get events -n "$E2E_NS" --field-selector reason=NotificationDispatchFailed,involvedObject.kind=Alert -o name | grep -q .; }
check "a sink that keeps failing: NotificationDispatchFailed on the Alert" wait_for 30 dispatch_failed
curl -fsS -X POST "$sink/_sink/mode" -d '{"fail": 0}' >/dev/null
if grep -q "hmac-key\|routing-key-1" "$E2E_WORK/notification.log"; then
	not_ok "a secret appears in the controller's log"
else
	ok "no secret in the controller's log"
fi
kill -TERM $nc_pid
rc=0
wait $nc_pid || rc=$?
expect_eq "SIGTERM: the controller exits 0" 0 "$rc"

# --- leader handover: two replicas; nothing lost, nothing sent twice ---------------------------
# A standby holds the events it sees; on taking the Lease it sends what comes after each
# Alert's status.lastSent marker. Short Lease timings keep the takeover quick.
replica() { # LOG: starts a replica, its pid in $replica_pid and readyz URL in $replica_ready
	local hp
	hp=$(free_port)
	"$bindir/notification-controller" --kubeconfig "$KUBECONFIG" --leader-elect \
		--leader-election-namespace "$E2E_NS" --leader-elect-lease-duration 4s \
		--leader-elect-renew-deadline 3s --leader-elect-retry-period 1s \
		--watch-namespaces "$E2E_NS" --health-probe-bind-address "127.0.0.1:$hp" \
		--metrics-bind-address "127.0.0.1:$(free_port)" \
		--receiver-bind-address "127.0.0.1:$(free_port)" --log-level debug \
		>>"$E2E_WORK/$1.log" 2>&1 &
	replica_pid=$!
	replica_ready="http://127.0.0.1:$hp/readyz"
}
holder() { k get lease notification-controller-leader-election -n "$E2E_NS" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
holds() { case "$(holder)" in *_"$1") return 0 ;; esac; return 1; }
ready() { curl -fsS "$1" >/dev/null 2>&1; }
sent_times() { requests /generic | grep -c "$1" || true; }
marker_is() { [ "$(k get alert generic -n "$E2E_NS" -o jsonpath='{.status.lastSent.event}#{.status.lastSent.count}')" = "$E2E_NS/plant.e2e-$n_ev#1" ]; }
replica ha-a
a_pid=$replica_pid
on_exit 'kill $a_pid 2>/dev/null'
check "handover: the first replica takes the Lease" wait_for 30 holds "$a_pid"
replica ha-b
b_pid=$replica_pid
b_ready=$replica_ready
on_exit 'kill $b_pid 2>/dev/null'
check "handover: the second replica is ready, standing by" wait_for 30 ready "$b_ready"
expect_eq "handover: the Lease stays with the first" yes "$(holds "$a_pid" && echo yes)"
event plant Warning SyncFailed "handover: gateway area10"
check "handover: the leader sends" wait_for 20 got_sent "area10"
check "handover: lastSent names the Event and its count" wait_for 10 marker_is
kill -KILL $a_pid
wait $a_pid 2>/dev/null || true
event plant Warning SyncFailed "handover: gateway area11"
check "leader killed: the standby takes the Lease" wait_for 30 holds "$b_pid"
check "leader killed: an event of the gap is sent by the new leader" wait_for 20 got_sent "area11"
sleep 2
expect_eq "leader killed: the gap's event is sent once" 1 "$(sent_times area11)"
expect_eq "leader killed: what the old leader sent is not sent again" 1 "$(sent_times area10)"

replica ha-c
c_pid=$replica_pid
on_exit 'kill $c_pid 2>/dev/null'
check "handover: a new replica is ready, standing by" wait_for 30 ready "$replica_ready"
event plant Warning SyncFailed "handover: gateway area12"
check "graceful: the leader sends" wait_for 20 got_sent "area12"
check "graceful: lastSent marker written" wait_for 10 marker_is
kill -TERM $b_pid
event plant Warning SyncFailed "handover: gateway area13"
rc=0
wait $b_pid || rc=$?
expect_eq "graceful: the old leader exits 0" 0 "$rc"
check "graceful: the standby takes the released Lease" wait_for 20 holds "$c_pid"
check "graceful: the event sent during the handover arrives" wait_for 20 got_sent "area13"
event plant Warning SyncFailed "handover: gateway area14"
check "graceful: the new leader sends new events" wait_for 20 got_sent "area14"
sleep 2
expect_eq "graceful: each event of the handover sent once" "1 1 1" \
	"$(sent_times area12) $(sent_times area13) $(sent_times area14)"
kill -TERM $c_pid
wait $c_pid || true

for log in notification ha-a ha-b ha-c; do
	if grep -q "Sanitizer\|runtime error:" "$E2E_WORK/$log.log"; then
		not_ok "sanitizer report in $log.log"
		grep -A20 "Sanitizer\|runtime error:" "$E2E_WORK/$log.log" | head -40
	fi
done
