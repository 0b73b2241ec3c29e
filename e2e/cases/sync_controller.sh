#!/usr/bin/env bash
# sync-controller and profile-controller against a real API server, a real git server and
# a real source-controller (DESIGN.md §3.2–§5). The agents' reports are written into
# stoker-status-<cr> by the test, the way an agent does it (a JSON merge patch of its own
# key); pods are created for real and set Running the way a kubelet would.
#  - inline git and sourceRef both give the metadata ConfigMap and status of CONTRACTS.md,
#    and a new commit reaches both within a second of the GitSource update;
#  - conditions and messages: source missing, API-key Secret missing, no gateways, a pod
#    without sidecar, some and all gateways synced, ref-override, paused;
#  - dependsOn gates, cycles and missing dependencies, gatewayCount following pods;
#  - deletion removes the ConfigMaps and the owned GitSource; of two replicas only the
#    leader acts, and the other takes over when it goes.
#  - a requested ref is dropped when spec.git.ref or the GitSource's spec.ref changes,
#    also a GitSource changed while no sync-controller ran.
. "$(dirname "$0")/../lib/testlib.sh"
root=$(cd "$E2E_ROOT/.." && pwd)
bindir=${STOKER_BUILD_DIR:-$root/build}/bin

k apply -k "$root/config/crd/" >/dev/null
k wait --for=condition=Established --timeout=60s crd --all >/dev/null
k create namespace "$E2E_NS" >/dev/null 2>&1 || true

gs="$root/e2e/fixtures/git-servers"
eval "$("$gs" up --dir "$E2E_WORK/git")"
on_exit "'$gs' down --dir '$E2E_WORK/git'"
eval "$("$gs" repo --dir "$E2E_WORK/git" site)"

# --- the controllers, as host processes watching this namespace ------------------------
common=(--kubeconfig "$KUBECONFIG" --watch-namespaces "$E2E_NS" --log-level debug)
elect=(--leader-elect=true --leader-election-namespace "$E2E_NS" --leader-elect-lease-duration 4s
	--leader-elect-renew-deadline 3s --leader-elect-retry-period 1s)
pids=()
started=
start() { # name log args... ; sets $started to the new process's pid
	local name=$1 log=$2
	shift 2
	"$bindir/$name" "${common[@]}" "$@" >>"$E2E_WORK/$log.log" 2>&1 &
	started=$!
	pids+=("$started")
}
on_exit 'kill ${pids[@]}'
art_port=$(free_port)
start source-controller source --leader-elect=false --storage-path "$E2E_WORK/storage" \
	--artifact-bind-address "127.0.0.1:$art_port" --artifact-base-url "http://127.0.0.1:$art_port" \
	--health-probe-bind-address "127.0.0.1:$(free_port)" --metrics-bind-address "127.0.0.1:$(free_port)"
start profile-controller profile "${elect[@]}" --health-probe-bind-address "127.0.0.1:$(free_port)" \
	--metrics-bind-address "127.0.0.1:$(free_port)"
sa_metrics=$(free_port) sb_metrics=$(free_port)
start sync-controller sync-a "${elect[@]}" --health-probe-bind-address "127.0.0.1:$(free_port)" \
	--metrics-bind-address "127.0.0.1:$sa_metrics"
sa=$started
start sync-controller sync-b "${elect[@]}" --health-probe-bind-address "127.0.0.1:$(free_port)" \
	--metrics-bind-address "127.0.0.1:$sb_metrics"
sb=$started

leader_of() { curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null | grep -q '^stoker_leader{daemon="sync-controller"} 1'; }
# Both replicas serve metrics, so that the takeover below is tested with a live standby.
for m in "$sa_metrics" "$sb_metrics"; do
	wait_for 30 curl -fsS "http://127.0.0.1:$m/metrics" || { not_ok "replica with metrics on :$m did not start"; exit 1; }
done
if wait_for 30 bash -c "curl -fsS http://127.0.0.1:$sa_metrics/metrics | grep -q '^stoker_leader.* 1' || curl -fsS http://127.0.0.1:$sb_metrics/metrics | grep -q '^stoker_leader.* 1'"; then
	ok "a sync-controller replica leads"
else
	not_ok "no sync-controller replica became leader"
	tail -5 "$E2E_WORK"/sync-*.log
	exit 1
fi
if leader_of "$sa_metrics"; then
	leader=$sa follower=$sb leader_m=$sa_metrics follower_m=$sb_metrics follower_log=sync-b
else
	leader=$sb follower=$sa leader_m=$sb_metrics follower_m=$sa_metrics follower_log=sync-a
fi

# --- helpers ---------------------------------------------------------------------------
apply() { k apply -n "$E2E_NS" -f - >/dev/null; }
get() { k get "$1" -n "$E2E_NS" -o jsonpath="$2" 2>/dev/null; }
cond() { get "stoker/$1" "{.status.conditions[?(@.type==\"$2\")].$3}"; }
spcond() { get "syncprofile/$1" "{.status.conditions[?(@.type==\"$2\")].$3}"; }
meta() { get "configmap/stoker-metadata-$1" "{.data.$2}"; }
meta_is() { [ "$(meta "$1" "$2")" = "$3" ]; } # stoker key value
gate() { # stoker profile
	meta "$1" profiles | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin).get('$2',{}).get('gate','<none>'))"
}
# expect_cond DESC stoker type status reason [message-part]: waits up to 10 s.
expect_cond() {
	local desc=$1 s=$2 t=$3 st=$4 re=$5 msg=${6:-}
	if wait_for 10 bash -c "[ \"\$(k_ get stoker/$s -n $E2E_NS -o jsonpath='{.status.conditions[?(@.type==\"$t\")].status}/{.status.conditions[?(@.type==\"$t\")].reason}')\" = '$st/$re' ]"; then
		if [ -n "$msg" ]; then
			expect_contains "$desc" "$msg" "$(cond "$s" "$t" message)"
		else
			ok "$desc"
		fi
	else
		not_ok "$desc: $t is $(cond "$s" "$t" status)/$(cond "$s" "$t" reason): $(cond "$s" "$t" message)"
	fi
}
k_() { "$STOKER_KUBECTL" "$@"; }
export -f k_
export STOKER_KUBECTL
pod() { # name profile [extra annotations yaml] [labels yaml] [sidecar: yes|no]
	local init=""
	[ "${5:-yes}" = yes ] && init="initContainers: [{name: stoker-agent, image: agent, restartPolicy: Always}]"
	apply <<Y
apiVersion: v1
kind: Pod
metadata:
  name: $1
  labels: {${4:-}}
  annotations: {stoker.io/inject: "true", stoker.io/cr-name: ref, stoker.io/sync-profile: $2${3:+, $3}}
spec:
  $init
  containers: [{name: gateway, image: ignition}]
Y
	k patch pod "$1" -n "$E2E_NS" --subresource=status --type=merge -p '{"status":{"phase":"Running"}}' >/dev/null
}
report() { # stoker gateway status commit [ref]
	local v
	v=$(printf '{"syncStatus":"%s","syncedCommit":"%s","syncedRef":"%s","agentVersion":"0.1.0","filesChanged":3,"projectsSynced":["Site"]}' \
		"$3" "$4" "${5:-main}" | sed 's/"/\\"/g')
	k patch configmap "stoker-status-$1" -n "$E2E_NS" --type merge -p "{\"data\":{\"$2\":\"$v\"}}" >/dev/null
}
# Watches one field of one object, writing "<epoch ms> <value>" per change to FILE.
watch_field() { # file object jsonpath
	{
		"$STOKER_KUBECTL" get "$2" -n "$E2E_NS" --watch -o jsonpath="$3{\"\\n\"}" 2>/dev/null &
		echo $! >"$1.pid"
		wait
	} | while IFS= read -r line; do echo "$(date +%s%3N) $line"; done >"$1" &
	pids+=($!)
	wait_for 5 test -s "$1.pid"
	pids+=("$(cat "$1.pid")")
}
first_ms() { awk -v v="$2" '$2 == v { print $1; exit }' "$1"; }

# --- source not found, then an API-key Secret missing ------------------------------------
apply <<Y
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: ref}
spec:
  sourceRef: {kind: GitSource, name: repo}
  gateway: {apiKeySecretRef: {name: gw-key, key: apiKey}}
Y
expect_cond "source missing: SourceReady" ref SourceReady False SourceNotFound "GitSource 'repo' not found"
expect_cond "API-key Secret missing: Ready" ref Ready False SecretNotFound "Secret 'gw-key' not found in namespace '$E2E_NS'"
k create secret generic gw-key -n "$E2E_NS" --from-literal=apiKey=secret >/dev/null
expect_cond "Secret created: Ready follows the missing source" ref Ready False SourceNotFound

apply <<Y
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: authless}
spec:
  git: {repo: "$GIT_HTTP_URL/site.git", ref: main, auth: {token: {secretRef: {name: git-token, key: token}}}}
Y
expect_cond "inline git auth Secret missing: Ready" authless Ready False SecretNotFound \
	"git token: Secret 'git-token' not found in namespace '$E2E_NS'"
k delete stokers authless -n "$E2E_NS" --wait=false >/dev/null

# --- sourceRef and inline git ----------------------------------------------------------
apply <<Y
apiVersion: source.stoker.io/v1alpha1
kind: GitSource
metadata: {name: repo}
spec: {url: "$GIT_DAEMON_URL/site.git", ref: {branch: main}, interval: 1h}
---
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: inline}
spec:
  git: {repo: "$GIT_DAEMON_URL/site.git", ref: main}
  polling: {interval: 1h}
  excludePatterns: ["**/.git/", "**/tmp/**"]
Y
expect_cond "sourceRef: RefResolved" ref RefResolved True RefResolved "$COMMIT_MAIN"
expect_cond "inline git: RefResolved" inline RefResolved True RefResolved "$COMMIT_MAIN"
expect_cond "inline git: SourceReady" inline SourceReady True SourceReady
expect_eq "owned GitSource: url" "$GIT_DAEMON_URL/site.git" "$(get gitsource/inline-git '{.spec.url}')"
expect_eq "owned GitSource: ref.name" main "$(get gitsource/inline-git '{.spec.ref.name}')"
expect_eq "owned GitSource: interval from polling" 1h "$(get gitsource/inline-git '{.spec.interval}')"
expect_eq "owned GitSource: controller owner" "Stoker/inline/true" \
	"$(get gitsource/inline-git '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}')"
for s in ref inline; do
	src=$([ $s = ref ] && echo repo || echo inline-git)
	expect_eq "$s: metadata commit" "$COMMIT_MAIN" "$(meta $s commit)"
	expect_eq "$s: metadata ref" main "$(meta $s ref)"
	expect_eq "$s: metadata revision" "main@sha1:$COMMIT_MAIN" "$(meta $s revision)"
	expect_eq "$s: metadata artifactURL" "$(get gitsource/$src '{.status.artifact.url}')" "$(meta $s artifactURL)"
	expect_eq "$s: metadata artifactDigest" "$(get gitsource/$src '{.status.artifact.digest}')" "$(meta $s artifactDigest)"
	expect_eq "$s: metadata paused" false "$(meta $s paused)"
	expect_eq "$s: metadata gitURL (artifact mode)" "" "$(meta $s gitURL)"
	expect_eq "$s: metadata owner" "Stoker/$s" \
		"$(get configmap/stoker-metadata-$s '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}')"
	expect_eq "$s: metadata label" "$s" "$(get configmap/stoker-metadata-$s '{.metadata.labels.stoker\.io/cr-name}')"
	check "$s: status ConfigMap exists" get "configmap/stoker-status-$s" '{.metadata.name}'
	expect_eq "$s: status.lastSyncCommit" "$COMMIT_MAIN" "$(get stoker/$s '{.status.lastSyncCommit}')"
	expect_eq "$s: status.lastSyncCommitShort" "${COMMIT_MAIN:0:7}" "$(get stoker/$s '{.status.lastSyncCommitShort}')"
	expect_eq "$s: status.lastSyncRef" main "$(get stoker/$s '{.status.lastSyncRef}')"
	expect_eq "$s: status.refResolutionStatus" Resolved "$(get stoker/$s '{.status.refResolutionStatus}')"
	expect_eq "$s: metadata gateway" '{"port":8088,"tls":false}' "$(meta $s gateway)"
done
expect_eq "inline: metadata excludePatterns" '["**/.git/","**/tmp/**"]' "$(meta inline excludePatterns)"
expect_eq "ref: default excludePatterns" '["**/.git/","**/.gitkeep","**/.resources/**"]' "$(meta ref excludePatterns)"
expect_cond "no gateways" ref AllGatewaysSynced False NoGatewaysDiscovered "stoker.io/cr-name=ref"
expect_cond "no gateways: Ready" ref Ready False NoGatewaysDiscovered
# git mode publishes the repository URL for the agents.
k patch stokers inline -n "$E2E_NS" --type merge -p '{"spec":{"agent":{"sourceMode":"git"}}}' >/dev/null
check "git mode: metadata gitURL" wait_for 10 bash -c "[ \"\$(k_ get configmap/stoker-metadata-inline -n $E2E_NS -o jsonpath='{.data.gitURL}')\" = '$GIT_DAEMON_URL/site.git' ]"
# Keeping the owned GitSource in step with spec.git.
k patch stokers inline -n "$E2E_NS" --type merge -p "{\"spec\":{\"git\":{\"ref\":\"$COMMIT_RELEASE\"}}}" >/dev/null
check "inline ref change: owned GitSource pinned to the commit" wait_for 10 bash -c \
	"[ \"\$(k_ get gitsource/inline-git -n $E2E_NS -o jsonpath='{.spec.ref.commit}/{.spec.ref.name}')\" = '$COMMIT_RELEASE/' ]"
check "inline ref change: metadata follows" wait_for 20 meta_is inline commit "$COMMIT_RELEASE"
k patch stokers inline -n "$E2E_NS" --type merge -p '{"spec":{"git":{"ref":"main"}}}' >/dev/null
check "inline ref back to main" wait_for 20 meta_is inline commit "$COMMIT_MAIN"
# A requested ref (webhook) overrides the spec's ref until that changes: then the request
# is dropped from the Stoker and its GitSource, and the new spec wins.
# request_on DESC STOKER SOURCE: requests v1.1.0 on STOKER and checks it lands.
request_on() {
	k annotate stokers "$2" -n "$E2E_NS" stoker.io/requested-ref=v1.1.0 stoker.io/requested-by=generic >/dev/null
	check "$1, requested ref: passed to the GitSource" wait_for 10 bash -c \
		"[ \"\$(k_ get gitsource/$3 -n $E2E_NS -o jsonpath='{.metadata.annotations.stoker\.io/requested-ref}')\" = v1.1.0 ]"
	check "$1, requested ref: the metadata follows v1.1.0" wait_for 20 meta_is "$2" commit "$COMMIT_V1_1_0"
}
# request_dropped DESC STOKER SOURCE: after the spec moved to v2.0.0, the spec wins and
# no request is left on the Stoker or the GitSource.
request_dropped() {
	check "$1: the metadata follows the spec (v2.0.0), not the old request" wait_for 20 meta_is "$2" commit "$COMMIT_V2_0_0"
	expect_eq "$1: the request is gone from the Stoker" "" \
		"$(get "stoker/$2" '{.metadata.annotations.stoker\.io/requested-ref}{.metadata.annotations.stoker\.io/requested-by}')"
	expect_eq "$1: and from the GitSource" "" "$(get "gitsource/$3" '{.metadata.annotations.stoker\.io/requested-ref}')"
}
request_on "inline" inline inline-git
k patch stokers inline -n "$E2E_NS" --type merge -p '{"spec":{"git":{"ref":"v2.0.0"}}}' >/dev/null
request_dropped "spec.git.ref changed" inline inline-git
k patch stokers inline -n "$E2E_NS" --type merge -p '{"spec":{"git":{"ref":"main"}}}' >/dev/null
check "inline ref back to main again" wait_for 20 meta_is inline commit "$COMMIT_MAIN"
# The same with sourceRef: a change of the referenced GitSource's spec.ref drops the request.
request_on "sourceRef" ref repo
k patch gitsource repo -n "$E2E_NS" --type json -p '[{"op":"replace","path":"/spec/ref","value":{"tag":"v2.0.0"}}]' >/dev/null
request_dropped "sourceRef, GitSource spec.ref changed" ref repo
k patch gitsource repo -n "$E2E_NS" --type json -p '[{"op":"replace","path":"/spec/ref","value":{"branch":"main"}}]' >/dev/null
check "sourceRef back to main" wait_for 20 meta_is ref commit "$COMMIT_MAIN"

# --- profiles and gateway pods ------------------------------------------------------------
apply <<'Y'
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: site}
spec:
  mappings: [{source: "sites/{{.GatewayName}}/projects", destination: projects}]
---
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: area}
spec:
  mappings: [{source: "areas/{{.Vars.zone}}", destination: projects}]
  vars: {zone: north}
  dependsOn: [{profileName: site}]
Y
pod site-0 site
pod site-1 site
pod area-0 area "" "app.kubernetes.io/name: area"
pod bare site "" "" no
expect_cond "pod without sidecar: SidecarInjected" ref SidecarInjected False SidecarMissing "bare"
expect_cond "pod without sidecar: AllGatewaysSynced" ref AllGatewaysSynced False SyncInProgress "0/4 gateways synced (1 missing sidecar, 1 blocked by dependsOn)"
check "MissingSidecar event" wait_for 10 bash -c \
	"k_ get events -n $E2E_NS --field-selector involvedObject.name=ref,reason=MissingSidecar -o name | grep -q ."
check "GatewaysDiscovered event" wait_for 10 bash -c \
	"k_ get events -n $E2E_NS --field-selector involvedObject.name=ref,reason=GatewaysDiscovered -o name | grep -q ."
expect_eq "missing sidecar gateway state" MissingSidecar "$(get stoker/ref '{.status.discoveredGateways[?(@.podName=="bare")].syncStatus}')"
expect_eq "gateway name from app.kubernetes.io/name" area "$(get stoker/ref '{.status.discoveredGateways[?(@.podName=="area-0")].name}')"
k delete pod bare -n "$E2E_NS" --wait=false >/dev/null
expect_cond "sidecar everywhere again" ref SidecarInjected True SidecarPresent
expect_cond "profiles accepted" ref ProfilesReady True ProfilesAccepted
expect_eq "metadata: site gate at the commit" "$COMMIT_MAIN" "$(gate ref site)"

# Reports, as agents write them; each change shows in status within a second.
report ref site-0 Synced "$COMMIT_MAIN"
expect_cond "some gateways synced" ref AllGatewaysSynced False SyncInProgress "1/3 gateways synced"
expect_eq "report merged into discoveredGateways" "Synced/$COMMIT_MAIN/0.1.0/3" \
	"$(get stoker/ref '{.status.discoveredGateways[?(@.name=="site-0")].syncStatus}/{.status.discoveredGateways[?(@.name=="site-0")].syncedCommit}/{.status.discoveredGateways[?(@.name=="site-0")].agentVersion}/{.status.discoveredGateways[?(@.name=="site-0")].filesChanged}')"
k patch configmap stoker-status-ref -n "$E2E_NS" --type merge \
	-p '{"data":{"site-1":"{\"syncStatus\":\"Error\",\"errorMessage\":\"scan failed: 500\"}"}}' >/dev/null
expect_cond "a gateway in error" ref AllGatewaysSynced False SyncFailed "site-1 (scan failed: 500)"
report ref site-1 Synced "$COMMIT_MAIN"
watch_field "$E2E_WORK/w-status" stoker/ref '{.status.conditions[?(@.type=="AllGatewaysSynced")].message}'
sleep 1
report ref area Synced "$COMMIT_MAIN"
t_report=$(date +%s%3N)
expect_cond "all gateways synced" ref AllGatewaysSynced True SyncSucceeded "3/3 gateways synced"
expect_cond "all synced: Ready" ref Ready True Succeeded
t_seen=$(awk '/3\/3 gateways synced/ { print $1; exit }' "$E2E_WORK/w-status")
if [ -n "$t_seen" ] && [ $((t_seen - t_report)) -lt 1000 ]; then
	ok "report reflected in status within a second ($((t_seen - t_report)) ms)"
else
	not_ok "report reflected in status: ${t_seen:-never} vs $t_report"
fi
expect_eq "Gateways printer column source" "3/3 gateways synced" "$(get stoker/ref '{.status.conditions[?(@.type=="AllGatewaysSynced")].message}')"
check "profile: DependenciesMet" wait_for 10 bash -c \
	"[ \"\$(k_ get syncprofile/area -n $E2E_NS -o jsonpath='{.status.conditions[?(@.type==\"DependenciesMet\")].status}')\" = True ]"

# --- a new commit: propagation and dependsOn gates ---------------------------------------
watch_field "$E2E_WORK/w-src-repo" gitsource/repo '{.status.artifact.commit}'
watch_field "$E2E_WORK/w-src-inline" gitsource/inline-git '{.status.artifact.commit}'
watch_field "$E2E_WORK/w-meta-ref" configmap/stoker-metadata-ref '{.data.commit}'
watch_field "$E2E_WORK/w-meta-inline" configmap/stoker-metadata-inline '{.data.commit}'
sleep 1
new=$("$gs" push --dir "$E2E_WORK/git" site main | tail -n1 | sed 's/.*=//')
k annotate gitsource repo inline-git -n "$E2E_NS" --overwrite stoker.io/reconcile-requested-at="$(date +%s)" >/dev/null
for s in ref inline; do
	if wait_for 20 bash -c "[ \"\$(k_ get configmap/stoker-metadata-$s -n $E2E_NS -o jsonpath='{.data.commit}')\" = '$new' ]"; then
		src=$([ $s = ref ] && echo repo || echo inline)
		a=$(first_ms "$E2E_WORK/w-src-$src" "$new") b=$(first_ms "$E2E_WORK/w-meta-$s" "$new")
		if [ -n "$a" ] && [ -n "$b" ] && [ $((b - a)) -lt 1000 ]; then
			ok "$s: new commit in metadata $((b - a)) ms after the GitSource update"
		else
			not_ok "$s: propagation GitSource ${a:-?} → metadata ${b:-?}"
		fi
	else
		not_ok "$s: new commit never reached the metadata ($(meta $s commit))"
	fi
done
expect_eq "site gate advances at once" "$new" "$(gate ref site)"
expect_eq "area gate held at the old commit" "$COMMIT_MAIN" "$(gate ref area)"
expect_eq "held gateway shows Blocked" Blocked "$(get stoker/ref '{.status.discoveredGateways[?(@.name=="area")].syncStatus}')"
check "profile: DependenciesPending names the site gateways" wait_for 10 bash -c \
	"k_ get syncprofile/area -n $E2E_NS -o jsonpath='{.status.conditions[?(@.type==\"DependenciesMet\")].reason}: {.status.conditions[?(@.type==\"DependenciesMet\")].message}' | grep -q 'DependenciesPending: 2 of 2 dependency gateways not synced: site/site-0'"
report ref site-0 Synced "$new"
sleep 1.5
expect_eq "one site gateway at the new commit: area still held" "$COMMIT_MAIN" "$(gate ref area)"
report ref site-1 Synced "$new"
check "every site gateway synced: area gate advances" wait_for 5 bash -c "[ \"\$(k_ get configmap/stoker-metadata-ref -n $E2E_NS -o jsonpath='{.data.profiles}' | grep -o '\"area\":{\"gate\":\"[0-9a-f]*\"')\" = '\"area\":{\"gate\":\"$new\"' ]"
check "profile: DependenciesMet again" wait_for 10 bash -c \
	"[ \"\$(k_ get syncprofile/area -n $E2E_NS -o jsonpath='{.status.conditions[?(@.type==\"DependenciesMet\")].reason}')\" = DependenciesSynced ]"
report ref area Synced "$new"
expect_cond "fleet synced at the new commit" ref AllGatewaysSynced True SyncSucceeded "3/3 gateways synced"

# --- dry-run diffs reported by agents, aggregated on the profile --------------------------
k patch configmap stoker-status-ref -n "$E2E_NS" --type merge -p '{"data":{"site-0":"{\"syncStatus\":\"Synced\",\"syncedCommit\":\"'"$new"'\",\"dryRun\":true,\"dryRunDiff\":{\"added\":[\"projects/a.json\"],\"modified\":[\"projects/b.json\"],\"deleted\":[],\"addedCount\":1,\"modifiedCount\":1,\"deletedCount\":0}}","site-1":"{\"syncStatus\":\"Synced\",\"syncedCommit\":\"'"$new"'\",\"dryRun\":true,\"dryRunDiff\":{\"added\":[\"projects/c.json\"],\"modified\":[],\"deleted\":[\"projects/d.json\"],\"addedCount\":1,\"modifiedCount\":0,\"deletedCount\":1}}"}}' >/dev/null
check "dry-run diff aggregated on the profile" wait_for 10 bash -c \
	"[ \"\$(k_ get syncprofile/site -n $E2E_NS -o jsonpath='{.status.dryRunDiff.added}/{.status.dryRunDiff.modified}/{.status.dryRunDiff.deleted}')\" = 2/1/1 ]"
expect_eq "dry-run diff files" "projects/a.json projects/b.json projects/c.json projects/d.json" \
	"$(get syncprofile/site '{.status.dryRunDiff.files[*]}')"
report ref site-0 Synced "$new"
report ref site-1 Synced "$new"
check "dry-run diff removed when no longer reported" wait_for 10 bash -c \
	"[ -z \"\$(k_ get syncprofile/site -n $E2E_NS -o jsonpath='{.status.dryRunDiff}')\" ]"
expect_eq "one MissingSidecar event, not one per reconcile" 1 \
	"$(k get events -n "$E2E_NS" --field-selector involvedObject.name=ref,reason=MissingSidecar -o jsonpath='{.items[0].count}')"

# --- profile validation and counts ------------------------------------------------------
apply <<'Y'
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: cyc-a}
spec: {mappings: [{source: a, destination: b}], dependsOn: [{profileName: cyc-b}]}
---
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: cyc-b}
spec: {mappings: [{source: a, destination: b}], dependsOn: [{profileName: cyc-a}]}
---
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: orphan}
spec: {mappings: [{source: a, destination: b}], dependsOn: [{profileName: ghost}]}
---
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: badtmpl}
spec: {mappings: [{source: "x/{{.Nope}}", destination: b}]}
Y
for pair in cyc-a:CycleDetected cyc-b:CycleDetected orphan:DependencyNotFound badtmpl:ValidationFailed; do
	p=${pair%%:*} want=${pair#*:}
	if wait_for 10 bash -c "[ \"\$(k_ get syncprofile/$p -n $E2E_NS -o jsonpath='{.status.conditions[?(@.type==\"Accepted\")].reason}')\" = $want ]"; then
		ok "$p: Accepted=False $want"
	else
		not_ok "$p: Accepted $(spcond $p Accepted reason): $(spcond $p Accepted message)"
	fi
done
expect_contains "missing dependency named" "SyncProfile 'ghost' not found" "$(spcond orphan Accepted message)"
expect_contains "bad template names the field" "spec.mappings[0].source" "$(spcond badtmpl Accepted message)"
expect_eq "invalid profile: Ready copies the reason" "False/CycleDetected" "$(spcond cyc-a Ready status)/$(spcond cyc-a Ready reason)"
check "ValidationFailed event" wait_for 10 bash -c \
	"k_ get events -n $E2E_NS --field-selector involvedObject.name=badtmpl,reason=ValidationFailed -o name | grep -q ."
expect_eq "gatewayCount" 2 "$(get syncprofile/site '{.status.gatewayCount}')"
pod site-2 site
check "gatewayCount follows a new pod" wait_for 5 bash -c "[ \"\$(k_ get syncprofile/site -n $E2E_NS -o jsonpath='{.status.gatewayCount}')\" = 3 ]"
expect_eq "gateways list" "site-0 site-1 site-2" "$(get syncprofile/site '{.status.gateways[*]}')"
k delete pod site-2 -n "$E2E_NS" --wait=false >/dev/null
check "gatewayCount follows a deleted pod" wait_for 10 bash -c "[ \"\$(k_ get syncprofile/site -n $E2E_NS -o jsonpath='{.status.gatewayCount}')\" = 2 ]"
pod rogue orphan
expect_cond "a pod using a profile with a missing dependency" ref ProfilesReady False ProfileNotFound "SyncProfile 'ghost' not found in namespace '$E2E_NS' (dependsOn of 'orphan')"
k delete pod rogue -n "$E2E_NS" --wait=false >/dev/null
pod rogue2 badtmpl
expect_cond "a pod using a rejected profile" ref ProfilesReady False ProfileNotAccepted "SyncProfile 'badtmpl' is not accepted: spec.mappings[0].source"
k delete pod rogue2 -n "$E2E_NS" --wait=false >/dev/null
expect_cond "rejected profile no longer used" ref ProfilesReady True ProfilesAccepted

# --- ref-override and pause ----------------------------------------------------------------
pod canary site "stoker.io/ref-override: release, stoker.io/gateway-name: canary-gw"
expect_cond "ref-override: RefSkew" ref RefSkew True RefOverride "pod canary uses ref 'release'"
report ref canary-gw Synced "$COMMIT_RELEASE" release
expect_cond "override gateway counts as synced at its ref" ref AllGatewaysSynced True SyncSucceeded "4/4 gateways synced"
k delete pod canary -n "$E2E_NS" --wait=false >/dev/null
check "RefSkew removed without overrides" wait_for 10 bash -c \
	"[ -z \"\$(k_ get stoker/ref -n $E2E_NS -o jsonpath='{.status.conditions[?(@.type==\"RefSkew\")].status}')\" ]"
k patch stokers ref -n "$E2E_NS" --type merge -p '{"spec":{"paused":true}}' >/dev/null
expect_cond "paused: Ready" ref Ready False Paused "paused"
expect_eq "paused: agents told" true "$(meta ref paused)"
check "Paused event" wait_for 10 bash -c "k_ get events -n $E2E_NS --field-selector involvedObject.name=ref,reason=Paused -o name | grep -q ."
k patch stokers ref -n "$E2E_NS" --type merge -p '{"spec":{"paused":false}}' >/dev/null
expect_cond "resumed: Ready" ref Ready True Succeeded
expect_eq "resumed: agents told" false "$(meta ref paused)"

# --- metrics --------------------------------------------------------------------------
m=$(curl -fsS "http://127.0.0.1:$leader_m/metrics")
expect_contains "gateways metric" "stoker_gateways{name=\"ref\",namespace=\"$E2E_NS\",state=\"synced\"} 3" "$m"
expect_contains "per-gateway status metric" "stoker_gateway_status{name=\"ref\",namespace=\"$E2E_NS\",gateway=\"area\",status=\"Synced\"} 1" "$m"
expect_contains "condition metric" "stoker_condition{kind=\"Stoker\",name=\"ref\",namespace=\"$E2E_NS\",type=\"Ready\",status=\"True\"} 1" "$m"
expect_contains "reconcile counter" "stoker_reconcile_total{kind=\"Stoker\",name=\"ref\",namespace=\"$E2E_NS\",result=\"success\"}" "$m"
# Samples only (no HELP/TYPE lines); empty if the follower does not answer, which fails.
expect_absent "follower reconciled nothing" "$(curl -fsS "http://127.0.0.1:$follower_m/metrics" | grep -v '^#')" \
	stoker_reconcile_total
expect_absent "follower wrote nothing" "$(cat "$E2E_WORK/$follower_log.log")" "created GitSource"

# --- deletion ----------------------------------------------------------------------------
k delete stokers inline -n "$E2E_NS" --wait=false >/dev/null
check "deleted: Stoker gone (finalizer removed)" wait_for 15 bash -c "! k_ get stoker/inline -n $E2E_NS 2>/dev/null"
check "deleted: metadata ConfigMap gone" wait_for 10 bash -c "! k_ get configmap/stoker-metadata-inline -n $E2E_NS 2>/dev/null"
check "deleted: status ConfigMap gone" wait_for 10 bash -c "! k_ get configmap/stoker-status-inline -n $E2E_NS 2>/dev/null"
check "deleted: owned GitSource gone" wait_for 15 bash -c "! k_ get gitsource/inline-git -n $E2E_NS 2>/dev/null"
m=$(curl -fsS "http://127.0.0.1:$leader_m/metrics")
expect_absent "deleted: its metric series are gone" "$m" "name=\"inline\",namespace=\"$E2E_NS\""

# --- the other replica takes over ---------------------------------------------------------
kill -TERM "$leader"
if wait_for 20 leader_of "$follower_m"; then
	ok "follower took over after the leader stopped"
else
	not_ok "follower did not take over"
fi
apply <<Y
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: after}
spec: {sourceRef: {kind: GitSource, name: repo}}
Y
expect_cond "new leader reconciles" after RefResolved True RefResolved "$new"

# --- a GitSource's spec.ref changed while no sync-controller ran ----------------------------
# The request's GitSource carries the spec.ref it came over (stoker.io/requested-over): a
# sync-controller starting later sees that spec.ref moved, and the request is dropped.
request_on "sourceRef, before a restart" ref repo
expect_eq "the GitSource notes the spec.ref the request came over" "branch:main" \
	"$(get gitsource/repo '{.metadata.annotations.stoker\.io/requested-over}')"
kill -TERM "$follower"
wait "$follower" 2>/dev/null || true
k patch gitsource repo -n "$E2E_NS" --type json -p '[{"op":"replace","path":"/spec/ref","value":{"tag":"v2.0.0"}}]' >/dev/null
sleep 2
expect_eq "no sync-controller running: the request still holds" "v1.1.0" \
	"$(get gitsource/repo '{.metadata.annotations.stoker\.io/requested-ref}')"
start sync-controller sync-c "${elect[@]}" --health-probe-bind-address "127.0.0.1:$(free_port)" \
	--metrics-bind-address "127.0.0.1:$(free_port)"
request_dropped "sourceRef, GitSource spec.ref changed while no sync-controller ran" ref repo
expect_eq "and its note is gone with it" "" \
	"$(get gitsource/repo '{.metadata.annotations.stoker\.io/requested-over}')"
