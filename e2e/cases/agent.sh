#!/usr/bin/env bash
# The whole flow with the agent daemon (DESIGN.md §5): GitSource + SyncProfiles + Stoker
# with the real source-, profile- and sync-controller and the injector behind the API
# server's HTTPS admission path; gateway pods are created for real and mutated; the test
# sets them Running as a kubelet would and starts the agent as a process with the env the
# injector put in the pod spec (paths remapped to temporary directories). The gateway is
# e2e/fixtures/fake-gateway.py.
#  - initial sync while the gateway commissions (no scan), ready, Stoker Ready; the
#    post-commissioning sync; a pushed commit lands and is scanned (projects, then config);
#  - drift reported and restored; designer policies wait / fail / proceed; paused (an
#    agent restarted during the pause is ready on its predecessor's complete sync);
#  - dry-run reported and aggregated on the SyncProfile;
#  - a dependsOn gate holds an area gateway back until the site gateway synced.
. "$(dirname "$0")/../lib/testlib.sh"
root=$(cd "$E2E_ROOT/.." && pwd)
bindir=${STOKER_BUILD_DIR:-$root/build}/bin
PY=/usr/bin/python3

k apply -k "$root/config/crd/" >/dev/null
k wait --for=condition=Established --timeout=60s crd --all >/dev/null
run_id=${E2E_NS##*-}
k create namespace "$E2E_NS" >/dev/null 2>&1 || true
k label namespace "$E2E_NS" stoker.io/injection=enabled "stoker.io/e2e-run=$run_id" --overwrite >/dev/null

gs="$root/e2e/fixtures/git-servers"
eval "$("$gs" up --dir "$E2E_WORK/git")"
on_exit "'$gs' down --dir '$E2E_WORK/git'"
eval "$("$gs" repo --dir "$E2E_WORK/git" plant)"
push() { # new commit on main; the GitSource is told at once (as the receiver would)
	local sha
	sha=$("$gs" push --dir "$E2E_WORK/git" plant main)
	k annotate gitsource plant-src -n "$E2E_NS" "stoker.io/reconcile-requested-at=$sha" --overwrite >/dev/null
	echo "$sha"
}

# --- the fake gateway, commissioning at first -------------------------------------------
api_key="stoker-e2e:$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
"$PY" "$root/e2e/fixtures/fake-gateway.py" --port 0 --port-file "$E2E_WORK/fg.port" \
	--token "$api_key" >>"$E2E_WORK/fake-gateway.log" 2>&1 &
fg_pid=$!
on_exit 'kill $fg_pid'
wait_for 10 test -s "$E2E_WORK/fg.port" || { not_ok "fake gateway did not start"; exit 1; }
fg_port=$(cat "$E2E_WORK/fg.port")
fg() { curl -fsS "http://127.0.0.1:$fg_port/_fake/$1" ${2:+-X POST -H 'Content-Type: application/json' -d "$2"}; }
fg mode '{"commissioning": true}' >/dev/null
# calls PATH-PREFIX: the recorded calls whose path starts with it, as "path status" lines
calls() { fg calls | "$PY" -c "import json,sys; [print(c['path'], c['status']) for c in json.load(sys.stdin) if c['path'].startswith('$1')]"; }

# --- the injector behind the API server --------------------------------------------------
config=stoker-injector-$E2E_NS
inj_port=$(free_port)
k apply -f - >/dev/null <<Y
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: $config}
webhooks:
- name: pods.injector.stoker.io
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Ignore
  reinvocationPolicy: IfNeeded
  timeoutSeconds: 5
  clientConfig: {url: "https://127.0.0.1:$inj_port/mutate-v1-pod"}
  rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
  namespaceSelector:
    matchLabels: {stoker.io/injection: enabled, stoker.io/e2e-run: "$run_id"}
Y
on_exit "k delete mutatingwebhookconfiguration $config"

pids=()
start() { # name log args...
	local name=$1 log=$2
	shift 2
	"$bindir/$name" --kubeconfig "$KUBECONFIG" --leader-elect=false --log-level debug \
		--health-probe-bind-address "127.0.0.1:$(free_port)" "$@" >>"$E2E_WORK/$log.log" 2>&1 &
	pids+=("$!")
}
on_exit 'kill ${pids[@]}'
art_port=$(free_port)
common=(--watch-namespaces "$E2E_NS" --metrics-bind-address "127.0.0.1:0")
start source-controller source "${common[@]}" --storage-path "$E2E_WORK/storage" \
	--artifact-bind-address "127.0.0.1:$art_port" --artifact-base-url "http://127.0.0.1:$art_port"
start profile-controller profile "${common[@]}"
start sync-controller sync "${common[@]}"
start injector injector --leader-election-namespace "$E2E_NS" --metrics-bind-address "127.0.0.1:0" \
	--webhook-bind-address "127.0.0.1:$inj_port" --webhook-config-name "$config" \
	--cert-dns-names 127.0.0.1,localhost --agent-image stoker/agent:e2e
has_ca() { [ -n "$(k get mutatingwebhookconfiguration "$config" -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" ]; }
wait_for 30 has_ca || { not_ok "the injector never published its CA"; tail -20 "$E2E_WORK/injector.log"; exit 1; }

# --- the objects ---------------------------------------------------------------------------
k create secret generic gw-key -n "$E2E_NS" --from-literal=apiKey="$api_key" >/dev/null
k apply -n "$E2E_NS" -f - >/dev/null <<Y
apiVersion: source.stoker.io/v1alpha1
kind: GitSource
metadata: {name: plant-src}
spec: {url: "$GIT_DAEMON_URL/plant.git", ref: {branch: main}, interval: 1h}
---
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: site}
spec:
  mappings:
  - {source: services/site/projects, destination: projects}
  - {source: services/site/config, destination: config}
  syncPeriod: 5
---
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: area}
spec:
  mappings: [{source: services/area/projects, destination: projects}]
  dependsOn: [{profileName: site}]
  syncPeriod: 5
---
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: plant}
spec:
  sourceRef: {kind: GitSource, name: plant-src}
  gateway: {port: $fg_port, apiKeySecretRef: {name: gw-key, key: apiKey}}
Y
sleep 1 # the injector's caches see them

. "$E2E_ROOT/lib/gateway.sh"
gw_pod() { stk_gateway_pod "$E2E_NS" "$1" plant "$2"; } # name profile

declare -A agent_pid agent_health
start_agent() { # pod: the agent with the env the injector put in the pod
	local p=$1 hp
	mkdir -p "$E2E_WORK/$p/secrets"
	printf '%s' "$api_key" >"$E2E_WORK/$p/secrets/apiKey"
	hp=$(free_port)
	agent_health[$p]=$hp
	stk_agent_start "$E2E_NS" "$p" "$E2E_WORK/$p" "$bindir" "$E2E_WORK/agent-$p.log" "$hp"
	agent_pid[$p]=$STK_AGENT_PID
	pids+=("$STK_AGENT_PID")
}
stop_agent() { kill "${agent_pid[$1]}" 2>/dev/null; wait "${agent_pid[$1]}" 2>/dev/null; }
report() { # pod field: one field of the agent's report in stoker-status-plant
	k get configmap stoker-status-plant -n "$E2E_NS" -o json 2>/dev/null | "$PY" -c "
import json, sys
d = json.load(sys.stdin)['data'].get('$1')
v = json.loads(d) if d else {}
for part in '$2'.split('.'):
    v = v.get(part, '') if isinstance(v, dict) else ''
print(json.dumps(v) if isinstance(v, (dict, list, bool)) else v)"
}
status_is() { [ "$(report "$1" syncStatus)/$(report "$1" syncedCommit)" = "$2/$3" ]; }
file_has() { grep -q -- "$2" "$1" 2>/dev/null; }
view=projects/Site/com.inductiveautomation.perspective/views/Main/view.json

# --- the full flow: injection, initial sync during commissioning ---------------------------
gw_pod site-gw site
expect_eq "the injector added the agent sidecar" stoker-agent \
	"$(k get pod site-gw -n "$E2E_NS" -o jsonpath='{.spec.initContainers[*].name}')"
start_agent site-gw
d=$E2E_WORK/site-gw/data
if wait_for 30 status_is site-gw Synced "$COMMIT_MAIN"; then
	ok "initial sync: stoker-status reports Synced at $COMMIT_MAIN"
else
	not_ok "initial sync: $(report site-gw syncStatus) $(report site-gw errorMessage)"
	tail -20 "$E2E_WORK/agent-site-gw.log"
	exit 1
fi
check "initial sync: the site project is on the gateway" test -f "$d/projects/Site/project.json"
check "initial sync: config resources too" test -f "$d/config/resources/core/ignition/system-properties/config.json"
check "initial sync: the area project is not (other profile)" test ! -e "$d/projects/Area"
check "agent ready after the initial sync" curl -fsS "http://127.0.0.1:${agent_health[site-gw]}/readyz"
check "agent started" curl -fsS "http://127.0.0.1:${agent_health[site-gw]}/startupz"
expect_eq "no scan on the initial sync" "" "$(calls /data/api/v1/scan)"
if k wait --for=condition=Ready "stk/plant" -n "$E2E_NS" --timeout=30s >/dev/null 2>&1; then
	ok "kubectl wait --for=condition=Ready stk/plant"
else
	not_ok "Stoker not Ready: $(k get stk plant -n "$E2E_NS" -o jsonpath='{.status.conditions}')"
fi
expect_eq "Stoker.status reports the gateway Synced" "Synced $COMMIT_MAIN" \
	"$(k get stk plant -n "$E2E_NS" -o jsonpath='{.status.discoveredGateways[0].syncStatus} {.status.discoveredGateways[0].syncedCommit}')"
expect_eq "history has the initial sync" "success" "$(report site-gw history | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[-1]["result"])')"

# --- commissioning ends: the post-commissioning sync; then a new commit -----------------------
fg mode '{"commissioning": false}' >/dev/null
gwinfo_seen() { calls /system/gwinfo | grep -q ' 200$'; }
check "post-commissioning: the agent polls gwinfo until it runs" wait_for 15 gwinfo_seen
c2=$(push)
t_push=$(date +%s.%N)
if wait_for 20 status_is site-gw Synced "$c2"; then
	ok "a new commit reaches the gateway"
else
	not_ok "new commit: $(report site-gw syncStatus) $(report site-gw errorMessage)"
fi
check "the new view is in the data directory" file_has "$d/$view" "revision"
scans_done() { [ "$(calls /data/api/v1/scan | wc -l)" -ge 2 ]; }
wait_for 10 scans_done
expect_eq "scan projects, then scan config, after the change" \
	"/data/api/v1/scan/projects 200
/data/api/v1/scan/config 200" "$(calls /data/api/v1/scan)"
expect_eq "the token was sent" "$api_key" "$(fg calls | "$PY" -c "import json,sys; print([c['token'] for c in json.load(sys.stdin) if c['path'].startswith('/data/api/v1/scan')][0])")"
expect_eq "lastScanResult" "projects=200 config=200" "$(report site-gw lastScanResult)"
events() { k get events -n "$E2E_NS" --field-selector "reason=$1" -o jsonpath='{range .items[*]}{.message}{"\n"}{end}'; }
expect_contains "SyncCompleted event names the gateway" "on gateway site-gw" "$(events SyncCompleted)"
expect_eq "filesChanged of the new commit" 1 "$(report site-gw filesChanged)"

# --- drift: a file edited on the gateway is reported and restored ----------------------------
echo '{"title": "edited by hand"}' >"$d/projects/Site/project.json"
drift_seen() { events DriftDetected | grep -q "projects/Site/project.json"; }
check "drift: DriftDetected event names the file" wait_for 20 drift_seen
restored() { ! grep -q "edited by hand" "$d/projects/Site/project.json"; }
check "drift: the file is restored" wait_for 20 restored
expect_contains "drift: reported in status" "projects/Site/project.json" "$(report site-gw drift.files)"

# --- designer sessions --------------------------------------------------------------------
k patch syncprofile site -n "$E2E_NS" --type merge -p '{"spec":{"designerSessionPolicy":"wait"}}' >/dev/null
fg mode '{"designers": [{"user": "alice", "project": "Site"}]}' >/dev/null
sleep 1
c3=$(push)
blocked() { [ "$(report site-gw syncStatus)" = Blocked ]; }
if wait_for 20 blocked; then ok "designer policy wait: Blocked"; else not_ok "wait: $(report site-gw syncStatus) $(report site-gw errorMessage)"; fi
expect_eq "wait: designerSessionsBlocked" true "$(report site-gw designerSessionsBlocked)"
expect_contains "wait: message names the session" "alice@Site" "$(report site-gw errorMessage)"
expect_contains "wait: DesignerSessionsBlocked event" "alice@Site" "$(events DesignerSessionsBlocked)"
check "wait: the gateway keeps the previous commit" test "$(report site-gw syncedCommit)" = "$c2"
fg mode '{"designers": []}' >/dev/null
if wait_for 20 status_is site-gw Synced "$c3"; then ok "wait: syncs once the sessions close"; else not_ok "after sessions closed: $(report site-gw syncStatus)"; fi
k patch syncprofile site -n "$E2E_NS" --type merge -p '{"spec":{"designerSessionPolicy":"fail"}}' >/dev/null
fg mode '{"designers": [{"user": "bob", "project": "Site"}]}' >/dev/null
sleep 1
c4=$(push)
failed() { [ "$(report site-gw syncStatus)" = Error ]; }
if wait_for 20 failed; then ok "designer policy fail: Error"; else not_ok "fail: $(report site-gw syncStatus)"; fi
expect_contains "fail: message names the session" "bob@Site" "$(report site-gw errorMessage)"
k patch syncprofile site -n "$E2E_NS" --type merge -p '{"spec":{"designerSessionPolicy":"proceed"}}' >/dev/null
if wait_for 20 status_is site-gw Synced "$c4"; then ok "designer policy proceed: syncs with sessions open"; else not_ok "proceed: $(report site-gw syncStatus) $(report site-gw errorMessage)"; fi
fg mode '{"designers": []}' >/dev/null

# --- paused ----------------------------------------------------------------------------------
k patch stk plant -n "$E2E_NS" --type merge -p '{"spec":{"paused":true}}' >/dev/null
paused_meta() { [ "$(k get configmap stoker-metadata-plant -n "$E2E_NS" -o jsonpath='{.data.paused}')" = true ]; }
wait_for 10 paused_meta
c5=$(push)
sleep 8
expect_eq "paused: the gateway stays at the previous commit" "$c4" "$(report site-gw syncedCommit)"
# The agent container restarts during the pause (same pod: its state survives): the
# complete files of the earlier sync make it ready without syncing; the gateway stays put.
tree_before=$(cd "$d" && find . -type f ! -name '.stoker-tmp-*' -exec sha256sum {} + | sort)
stop_agent site-gw
start_agent site-gw
site_ready() { curl -fsS "http://127.0.0.1:${agent_health[site-gw]}/readyz" >/dev/null 2>&1; }
check "paused: an agent restarted in its pod is ready on the earlier complete sync" wait_for 20 site_ready
expect_contains "paused: and says why" "ready without syncing" "$(cat "$E2E_WORK/agent-site-gw.log")"
sleep 2
expect_eq "paused: the restarted agent changes nothing" "$tree_before" \
	"$(cd "$d" && find . -type f ! -name '.stoker-tmp-*' -exec sha256sum {} + | sort)"
k patch stk plant -n "$E2E_NS" --type merge -p '{"spec":{"paused":false}}' >/dev/null
if wait_for 20 status_is site-gw Synced "$c5"; then ok "resumed: the held commit lands"; else not_ok "resumed: $(report site-gw syncStatus)"; fi

# --- dry run ----------------------------------------------------------------------------------
k patch syncprofile site -n "$E2E_NS" --type merge -p '{"spec":{"dryRun":true}}' >/dev/null
sleep 1
before=$(sha256sum "$d/$view")
c6=$(push)
dry() { [ "$(report site-gw dryRun)" = true ] && [ -n "$(report site-gw dryRunDiff)" ]; }
if wait_for 20 dry; then ok "dry run: reported in status"; else not_ok "dry run: $(report site-gw dryRun) $(report site-gw errorMessage)"; fi
expect_contains "dry run: the diff names the view" "$view" "$(report site-gw dryRunDiff.modified)"
expect_eq "dry run: nothing changed on the gateway" "$before" "$(sha256sum "$d/$view")"
sp_diff() { k get syncprofile site -n "$E2E_NS" -o jsonpath='{.status.dryRunDiff.files}' | grep -q "$view"; }
check "dry run: aggregated on the SyncProfile" wait_for 20 sp_diff
k patch syncprofile site -n "$E2E_NS" --type merge -p '{"spec":{"dryRun":false}}' >/dev/null
if wait_for 20 status_is site-gw Synced "$c6"; then ok "dry run off: the commit lands"; else not_ok "dry run off: $(report site-gw syncStatus)"; fi

# --- dependsOn: the area gateway waits for the site gateway ---------------------------------
gw_pod area-gw area
start_agent area-gw
da=$E2E_WORK/area-gw/data
if wait_for 30 status_is area-gw Synced "$c6"; then ok "area gateway syncs once site is synced"; else not_ok "area: $(report area-gw syncStatus) $(report area-gw errorMessage)"; fi
check "area: its project landed" test -f "$da/projects/Area/project.json"
stop_agent site-gw
c7=$(push)
sleep 8
expect_eq "dependsOn: the area gateway stays at the gate while site is behind" "$c6" "$(report area-gw syncedCommit)"
area_blocked() { k get stk plant -n "$E2E_NS" -o jsonpath='{.status.discoveredGateways[?(@.name=="area-gw")].syncStatus}' | grep -q Blocked; }
check "dependsOn: the Stoker shows the area gateway Blocked" wait_for 10 area_blocked
start_agent site-gw
if wait_for 30 status_is site-gw Synced "$c7"; then ok "site gateway catches up"; else not_ok "site: $(report site-gw syncStatus)"; fi
if wait_for 30 status_is area-gw Synced "$c7"; then ok "dependsOn: the area gateway follows"; else not_ok "area after site: $(report area-gw syncStatus)"; fi

# --- SIGTERM: a clean exit --------------------------------------------------------------------
kill -TERM "${agent_pid[area-gw]}"
rc=0
wait_exit() { ! kill -0 "${agent_pid[area-gw]}" 2>/dev/null; }
if wait_for 10 wait_exit; then
	wait "${agent_pid[area-gw]}" || rc=$?
	expect_eq "SIGTERM: the agent exits 0" 0 "$rc"
else
	not_ok "SIGTERM: still running after 10 s"
fi
if grep -q "ERROR: AddressSanitizer\|runtime error:" "$E2E_WORK"/agent-*.log; then
	not_ok "sanitizer reports in the agent logs"
fi
