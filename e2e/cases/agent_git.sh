#!/usr/bin/env bash
# The agent in git mode (spec.agent.sourceMode: git; DESIGN.md §3.3, §4, §5 agent) against
# the real git servers of e2e/fixtures/git-servers: git daemon (git://), smart HTTP with
# basic auth and with a token, and sshd with a key and known_hosts. The source-, profile-
# and sync-controller run as host processes; one Stoker with inline spec.git (and its
# auth Secrets) per transport; a gateway pod per Stoker is created for real, given a
# fake stoker-agent sidecar and set Running as a kubelet would, and the agent runs as a
# process with that transport's credential files. The gateway is
# e2e/fixtures/fake-gateway.py.
#  - per transport: the files land, the Stoker shows the gateway Synced at the branch's
#    commit, and a pushed commit reaches the data directory;
#  - stoker.io/ref-override: release on a pod: that agent syncs the release branch, the
#    Stoker gets RefSkew=True/RefOverride;
#  - a wrong ssh known_hosts: Error with a host-key message, nothing written.
. "$(dirname "$0")/../lib/testlib.sh"
root=$(cd "$E2E_ROOT/.." && pwd)
bindir=${STOKER_BUILD_DIR:-$root/build}/bin
PY=/usr/bin/python3
t_start=$(date +%s)

k apply -k "$root/config/crd/" >/dev/null
k wait --for=condition=Established --timeout=60s crd --all >/dev/null

gs="$root/e2e/fixtures/git-servers"
eval "$("$gs" up --dir "$E2E_WORK/git")"
on_exit "'$gs' down --dir '$E2E_WORK/git'"
eval "$("$gs" repo --dir "$E2E_WORK/git" site)"

# --- the fake gateway (no API token needed) -------------------------------------------------
"$PY" "$root/e2e/fixtures/fake-gateway.py" --port 0 --port-file "$E2E_WORK/fg.port" \
	>>"$E2E_WORK/fake-gateway.log" 2>&1 &
fg_pid=$!
on_exit 'kill $fg_pid'
wait_for 10 test -s "$E2E_WORK/fg.port" || { not_ok "fake gateway did not start"; exit 1; }
fg_port=$(cat "$E2E_WORK/fg.port")

# --- the controllers, as host processes watching this namespace --------------------------------
pids=()
on_exit 'kill ${pids[@]}'
start() { # name log args...
	local name=$1 log=$2
	shift 2
	"$bindir/$name" --kubeconfig "$KUBECONFIG" --leader-elect=false --log-level debug \
		--watch-namespaces "$E2E_NS" --health-probe-bind-address "127.0.0.1:$(free_port)" \
		--metrics-bind-address "127.0.0.1:$(free_port)" "$@" >>"$E2E_WORK/$log.log" 2>&1 &
	pids+=("$!")
}
art_port=$(free_port)
start source-controller source --storage-path "$E2E_WORK/storage" \
	--artifact-bind-address "127.0.0.1:$art_port" --artifact-base-url "http://127.0.0.1:$art_port"
start profile-controller profile
start sync-controller sync

# --- Secrets, the profile and one Stoker per transport -------------------------------------------
k create secret generic git-basic -n "$E2E_NS" --from-literal=username="$GIT_HTTP_USER" \
	--from-literal=password="$GIT_HTTP_PASSWORD" >/dev/null
k create secret generic git-token -n "$E2E_NS" --from-literal=token="$GIT_HTTP_TOKEN" >/dev/null
k create secret generic git-ssh -n "$E2E_NS" --from-file=identity="$GIT_SSH_KEY" \
	--from-file=known_hosts="$GIT_KNOWN_HOSTS" >/dev/null
stoker() { # name repo-url [auth-yaml]
	k apply -n "$E2E_NS" -f - >/dev/null <<Y
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: $1}
spec:
  git:
    repo: "$2"
    ref: main
${3:+    auth: $3}
  polling: {interval: 1h}
  gateway: {port: $fg_port}
  agent: {sourceMode: git}
Y
}
k apply -n "$E2E_NS" -f - >/dev/null <<'Y'
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: site}
spec:
  mappings:
  - {source: services/site/projects, destination: projects}
  - {source: services/site/config, destination: config}
  syncPeriod: 5
Y
stoker gd "$GIT_DAEMON_URL/site.git"
stoker basic "$GIT_HTTP_URL/site.git" '{basic: {secretRef: {name: git-basic}}}'
stoker token "$GIT_HTTP_URL/site.git" '{token: {secretRef: {name: git-token, key: token}}}'
stoker ssh "$GIT_SSH_URL/site.git" \
	'{sshKey: {secretRef: {name: git-ssh, key: identity}}, knownHosts: {secretRef: {name: git-ssh, key: known_hosts}}}'
transports=(gd basic token ssh)

# --- helpers -------------------------------------------------------------------------------------
# pod NAME STOKER [extra annotations]: a gateway pod with the sidecar, Running
pod() {
	k apply -n "$E2E_NS" -f - >/dev/null <<Y
apiVersion: v1
kind: Pod
metadata:
  name: $1
  annotations: {stoker.io/inject: "true", stoker.io/cr-name: $2, stoker.io/sync-profile: site${3:+, $3}}
spec:
  initContainers: [{name: stoker-agent, image: stoker/agent:e2e, restartPolicy: Always}]
  containers: [{name: gateway, image: inductiveautomation/ignition}]
Y
	k patch pod "$1" -n "$E2E_NS" --subresource=status --type=merge -p '{"status":{"phase":"Running"}}' >/dev/null
}
# start_agent POD STOKER [VAR=value...]: the agent in git mode for that pod
declare -A agent_pid agent_health
start_agent() {
	local p=$1 s=$2 dir=$E2E_WORK/$1 hp
	shift 2
	mkdir -p "$dir/repo" "$dir/data"
	hp=$(free_port)
	agent_health[$p]=$hp
	# No HOME, as in an empty environment: libgit2's ssh transport needs one, and
	# stk_git_init provides it (this machine's ~/.ssh must not matter either way).
	env -i PATH="$PATH" KUBECONFIG="$KUBECONFIG" POD_NAME="$p" POD_NAMESPACE="$E2E_NS" \
		CR_NAME="$s" GATEWAY_NAME="$p" SYNC_PROFILE=site REPO_PATH="$dir/repo" DATA_PATH="$dir/data" \
		GATEWAY_HOST=127.0.0.1 GATEWAY_PORT="$fg_port" SOURCE_MODE=git "$@" \
		"$bindir/agent" --health-probe-bind-address "127.0.0.1:$hp" \
		--metrics-bind-address "127.0.0.1:$(free_port)" --log-level debug \
		>>"$E2E_WORK/agent-$p.log" 2>&1 &
	agent_pid[$p]=$!
	pids+=("$!")
}
# report STOKER GATEWAY FIELD: one field of an agent's report in stoker-status-<stoker>
report() {
	k get configmap "stoker-status-$1" -n "$E2E_NS" -o json 2>/dev/null | "$PY" -c "
import json, sys
d = (json.load(sys.stdin).get('data') or {}).get('$2')
v = json.loads(d) if d else {}
print(v.get('$3', ''))"
}
# gwstatus STOKER GATEWAY: "syncStatus syncedCommit syncedRef" from Stoker.status.discoveredGateways
gwstatus() {
	k get stoker "$1" -n "$E2E_NS" -o json 2>/dev/null | "$PY" -c "
import json, sys
gws = json.load(sys.stdin).get('status', {}).get('discoveredGateways') or []
g = [g for g in gws if g.get('name') == '$2']
print(' '.join(g[0].get(k, '') for k in ('syncStatus', 'syncedCommit', 'syncedRef')) if g else 'absent')"
}
gw_is() { [ "$(gwstatus "$1" "$2")" = "$3" ]; }
meta_commit_is() { [ "$(k get configmap "stoker-metadata-$1" -n "$E2E_NS" -o jsonpath='{.data.commit}' 2>/dev/null)" = "$2" ]; }
cond() { k get stoker "$1" -n "$E2E_NS" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].$3}"; }
dump() { # STOKER POD: what to look at when an expectation fails
	echo "# $1/$2: agent report: $(report "$1" "$2" syncStatus) $(report "$1" "$2" errorMessage)"
	echo "# metadata: $(k get configmap "stoker-metadata-$1" -n "$E2E_NS" -o jsonpath='{.data.commit} {.data.gitURL}' 2>&1)"
	tail -5 "$E2E_WORK/agent-$2.log" | sed 's/^/# /'
}
view=projects/Site/com.inductiveautomation.perspective/views/Main/view.json
props=config/resources/core/ignition/system-properties/config.json

# --- every transport: the initial sync ------------------------------------------------------
for s in "${transports[@]}"; do
	if wait_for 30 meta_commit_is "$s" "$COMMIT_MAIN"; then
		ok "$s: the sync-controller publishes the commit"
	else
		not_ok "$s: no commit in stoker-metadata-$s: $(cond "$s" Ready message)"
	fi
	expect_eq "$s: metadata gitURL (git mode)" "$(k get stoker "$s" -n "$E2E_NS" -o jsonpath='{.spec.git.repo}')" \
		"$(k get configmap "stoker-metadata-$s" -n "$E2E_NS" -o jsonpath='{.data.gitURL}')"
	pod "$s-gw" "$s"
done
creds_dir=$E2E_WORK/creds
mkdir -p "$creds_dir"
printf '%s\n' "$GIT_HTTP_USER" >"$creds_dir/username"
printf '%s\n' "$GIT_HTTP_PASSWORD" >"$creds_dir/password"
printf '%s\n' "$GIT_HTTP_TOKEN" >"$creds_dir/token"
start_agent gd-gw gd
start_agent basic-gw basic GIT_USERNAME_FILE="$creds_dir/username" GIT_PASSWORD_FILE="$creds_dir/password"
start_agent token-gw token GIT_TOKEN_FILE="$creds_dir/token"
start_agent ssh-gw ssh GIT_SSH_KEY_FILE="$GIT_SSH_KEY" GIT_KNOWN_HOSTS_FILE="$GIT_KNOWN_HOSTS"
for s in "${transports[@]}"; do
	d=$E2E_WORK/$s-gw/data
	if wait_for 45 gw_is "$s" "$s-gw" "Synced $COMMIT_MAIN main"; then
		ok "$s: the Stoker shows the gateway Synced at main's commit"
	else
		not_ok "$s: discoveredGateways: $(gwstatus "$s" "$s-gw")"
		dump "$s" "$s-gw"
	fi
	check "$s: the project landed" test -f "$d/projects/Site/project.json"
	check "$s: the view landed" test -f "$d/$view"
	check "$s: config resources landed" grep -q '"site-gateway-2"' "$d/$props"
	check "$s: nothing of the area service" test ! -e "$d/projects/Area"
	check "$s: agent ready" curl -fsS "http://127.0.0.1:${agent_health[$s-gw]}/readyz"
done
expect_eq "ssh: the tree is identical to git://'s" "" "$(diff -r "$E2E_WORK/gd-gw/data" "$E2E_WORK/ssh-gw/data")"

# --- a pushed commit reaches every data directory --------------------------------------------
new=$("$gs" push --dir "$E2E_WORK/git" site main | tail -n1)
k annotate gitsource "${transports[@]/%/-git}" -n "$E2E_NS" --overwrite \
	"stoker.io/reconcile-requested-at=$new" >/dev/null
for s in "${transports[@]}"; do
	if wait_for 45 gw_is "$s" "$s-gw" "Synced $new main"; then
		ok "$s: the pushed commit is Synced"
	else
		not_ok "$s: after the push: $(gwstatus "$s" "$s-gw")"
		dump "$s" "$s-gw"
	fi
	check "$s: the pushed view is in the data directory" grep -q 'Site (main)' "$E2E_WORK/$s-gw/data/$view"
	expect_eq "$s: one file changed" 1 "$(report "$s" "$s-gw" filesChanged)"
done
check "every Stoker: AllGatewaysSynced" bash -c "for s in ${transports[*]}; do [ \"\$('$STOKER_KUBECTL' get stoker \$s -n $E2E_NS -o jsonpath='{.status.conditions[?(@.type==\"AllGatewaysSynced\")].status}')\" = True ] || exit 1; done"

# --- ref-override: one pod follows the release branch ------------------------------------------
pod gd-canary gd "stoker.io/ref-override: release"
start_agent gd-canary gd
if wait_for 45 gw_is gd gd-canary "Synced $COMMIT_RELEASE release"; then
	ok "ref-override: the gateway is Synced at the release branch's commit"
else
	not_ok "ref-override: $(gwstatus gd gd-canary)"
	dump gd gd-canary
fi
expect_eq "ref-override: the agent reports syncedRef release" release "$(report gd gd-canary syncedRef)"
check "ref-override: release's system properties are on the gateway" \
	grep -q '"tagHistoryRetentionDays": 90' "$E2E_WORK/gd-canary/data/$props"
check "ref-override: main's pushed view is not" bash -c "! grep -q 'Site (main)' '$E2E_WORK/gd-canary/data/$view'"
refskew() { [ "$(cond gd RefSkew status)/$(cond gd RefSkew reason)" = True/RefOverride ]; }
if wait_for 15 refskew; then
	expect_contains "ref-override: RefSkew names the pod and the ref" "pod gd-canary uses ref 'release'" "$(cond gd RefSkew message)"
else
	not_ok "ref-override: RefSkew is $(cond gd RefSkew status)/$(cond gd RefSkew reason)"
fi
expect_eq "ref-override: the other gateway stays on main" "Synced $new main" "$(gwstatus gd gd-gw)"
# a commit on release reaches the override gateway, with no reconcile request at all (the
# Stoker tracks main; the agent resolves release itself at its syncPeriod)
rel=$("$gs" push --dir "$E2E_WORK/git" site release | tail -n1)
if wait_for 30 gw_is gd gd-canary "Synced $rel release"; then
	ok "ref-override: a commit pushed to release lands"
else
	not_ok "ref-override: after a push to release: $(gwstatus gd gd-canary)"
	dump gd gd-canary
fi
check "ref-override: the release view is on the gateway" grep -q 'Site (release)' "$E2E_WORK/gd-canary/data/$view"

# --- a wrong ssh known_hosts: refused, nothing written ------------------------------------------
pod ssh-badhost ssh
start_agent ssh-badhost ssh GIT_SSH_KEY_FILE="$GIT_SSH_KEY" GIT_KNOWN_HOSTS_FILE="$GIT_WRONG_KNOWN_HOSTS"
badhost() { [ "$(report ssh ssh-badhost syncStatus)" = Error ]; }
if wait_for 30 badhost; then ok "wrong known_hosts: Error"; else not_ok "wrong known_hosts: $(report ssh ssh-badhost syncStatus)"; dump ssh ssh-badhost; fi
msg=$(report ssh ssh-badhost errorMessage)
echo "# wrong known_hosts: $msg"
expect_contains "wrong known_hosts: the message is about the host key" "host key" "$msg"
fetch_failed() { k get events -n "$E2E_NS" --field-selector reason=FetchFailed -o jsonpath='{range .items[*]}{.involvedObject.kind}/{.involvedObject.name}: {.message}{"\n"}{end}' | grep -q "^Stoker/ssh: .*ssh-badhost.*host key"; }
check "wrong known_hosts: Warning FetchFailed event on the Stoker" wait_for 10 fetch_failed
expect_eq "wrong known_hosts: nothing written" "" "$(ls -A "$E2E_WORK/ssh-badhost/data")"
badgw() { [ "$(gwstatus ssh ssh-badhost | cut -d' ' -f1)" = Error ]; }
check "wrong known_hosts: the Stoker shows the gateway in Error" wait_for 15 badgw
expect_eq "wrong known_hosts: the good ssh gateway is untouched" "Synced $new main" "$(gwstatus ssh ssh-gw)"

if grep -q "ERROR: AddressSanitizer\|runtime error:" "$E2E_WORK"/agent-*.log; then
	not_ok "sanitizer reports in the agent logs"
fi
if [ "$E2E_FAILED" -gt 0 ]; then
	for f in "$E2E_WORK"/agent-*.log; do echo "# --- $f"; tail -15 "$f" | sed 's/^/# /'; done
fi
echo "# agent_git took $(($(date +%s) - t_start)) s"
