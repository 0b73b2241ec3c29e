#!/usr/bin/env bash
# The CRDs in config/crd on a real API server: they install and become Established, every
# sample in config/samples/valid is accepted and reads back with the documented defaults,
# every sample in config/samples/invalid is rejected with the message its first line
# ("# expect: ...") names, the printer columns and `kubectl explain` show what DESIGN.md §3
# promises, the status schema defaults observedGeneration to -1 and enforces the
# metav1.Condition shape, and `kubectl wait --for=condition=Ready` works for every kind.
. "$(dirname "$0")/../lib/testlib.sh"
repo=$(cd "$E2E_ROOT/.." && pwd)
samples=$repo/config/samples
py=/usr/bin/python3 # Debian's, which has PyYAML (python3-yaml); a pyenv python3 may not
ns=$E2E_NS

# Full resource names, so nothing depends on short names or categories resolving.
GS=gitsources.source.stoker.io
SP=syncprofiles.stoker.io
STK=stokers.stoker.io
AL=alerts.notification.stoker.io

get() { k get "$1" "$2" -n "$ns" -o jsonpath="{$3}"; } # RESOURCE NAME JSONPATH

# --- install ---------------------------------------------------------------------------
check "config/crd applies with kubectl apply -k" k apply -k "$repo/config/crd"
for crd in $GS $SP $STK $AL; do
	check "CRD $crd becomes Established" k wait --for=condition=Established --timeout=60s "crd/$crd"
done
for r in $GS $SP $STK $AL; do
	wait_for 30 k get "$r" -n "$ns" || not_ok "$r is served (discovery)"
done
out=$(k apply -k "$repo/config/crd" 2>&1)
expect_eq "re-applying config/crd changes nothing" 4 "$(grep -c ' unchanged$' <<<"$out")"

names() { k get crd "$1" -o jsonpath='{.spec.scope} {.spec.versions[*].name} {.spec.names.shortNames} {.spec.names.categories}'; }
expect_eq "GitSource: namespaced, v1alpha1, gitsrc, category stoker-all" 'Namespaced v1alpha1 ["gitsrc"] ["stoker-all"]' "$(names $GS)"
expect_eq "SyncProfile: namespaced, v1alpha1, sp, category stoker-all" 'Namespaced v1alpha1 ["sp"] ["stoker-all"]' "$(names $SP)"
expect_eq "Stoker: namespaced, v1alpha1, stk, category stoker-all" 'Namespaced v1alpha1 ["stk"] ["stoker-all"]' "$(names $STK)"
expect_eq "Alert: namespaced, v1alpha1, no short name, category stoker-all" 'Namespaced v1alpha1  ["stoker-all"]' "$(names $AL)"

# --- valid samples ---------------------------------------------------------------------
n=0
for f in "$samples"/valid/*.yaml; do
	n=$((n + 1))
	s=$(basename "$f")
	if out=$(k apply -n "$ns" -f "$f" 2>&1); then
		expect_eq "valid sample $s is accepted (one object)" 1 "$(grep -c ' created$' <<<"$out")"
		check "valid sample $s reads back" k get -n "$ns" -f "$f" -o name
	else
		not_ok "valid sample $s is accepted: $out"
	fi
done
[ "$n" -ge 16 ] && ok "$n valid samples" || not_ok "expected at least 16 valid samples, found $n"

# Defaults, on samples that leave the fields out.
expect_eq "GitSource spec.interval defaults to 60s" 60s "$(get $GS publicdemo .spec.interval)"
expect_eq "GitSource spec.timeout defaults to 30s" 30s "$(get $GS publicdemo .spec.timeout)"
expect_eq "GitSource spec.suspend defaults to false" false "$(get $GS publicdemo .spec.suspend)"
expect_eq "GitSource keeps a given interval and timeout" "10m 1m30s" \
	"$(get $GS line3-pinned '.spec.interval} {.spec.timeout')"

expect_eq "SyncProfile mapping type defaults to dir" dir "$(get $SP backend '.spec.mappings[0].type')"
expect_eq "SyncProfile mapping required defaults to false" false "$(get $SP backend '.spec.mappings[0].required')"
expect_eq "SyncProfile syncPeriod defaults to 30" 30 "$(get $SP backend .spec.syncPeriod)"
expect_eq "SyncProfile dryRun and paused default to false" "false false" \
	"$(get $SP backend '.spec.dryRun} {.spec.paused')"
expect_eq "SyncProfile designerSessionPolicy defaults to proceed" proceed \
	"$(get $SP backend .spec.designerSessionPolicy)"
expect_eq "SyncProfile dependsOn condition defaults to Synced" "site Synced" \
	"$(get $SP area '.spec.dependsOn[0].profileName} {.spec.dependsOn[0].condition')"
expect_eq "ProveIt site profile keeps its file mapping and overlay" "file prd-cloud" \
	"$(get $SP site '.spec.mappings[3].type} {.spec.deploymentMode.name')"

# The quick-start Stoker gives neither polling nor gateway port: the parents default to {}
# so their children's defaults show.
expect_eq "Stoker gateway.port defaults to 8088" 8088 "$(get $STK my-sync .spec.gateway.port)"
expect_eq "Stoker gateway.tls defaults to false" false "$(get $STK my-sync .spec.gateway.tls)"
expect_eq "Stoker polling defaults to enabled every 60s" "true 60s" \
	"$(get $STK my-sync '.spec.polling.enabled} {.spec.polling.interval')"
expect_eq "Stoker excludePatterns default" '["**/.git/","**/.gitkeep","**/.resources/**"]' \
	"$(get $STK my-sync .spec.excludePatterns)"
expect_eq "Stoker paused defaults to false" false "$(get $STK my-sync .spec.paused)"
expect_eq "Stoker polling.interval defaults when only enabled is given" "false 60s" \
	"$(get $STK line3 '.spec.polling.enabled} {.spec.polling.interval')"
expect_eq "Stoker keeps given gateway settings and agent.sourceMode" "8043 true artifact" \
	"$(get $STK publicdemo-sync '.spec.gateway.port} {.spec.gateway.tls} {.spec.agent.sourceMode')"
expect_eq "Stoker agent resources accept quantities" '{"cpu":"20m","memory":"32Mi"}' \
	"$(get $STK publicdemo-sync .spec.agent.resources.requests)"
k apply -n "$ns" -f - >/dev/null <<'Y'
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: by-ref}
spec:
  sourceRef: {name: publicdemo}
  agent: {image: {tag: 0.1.0}}
Y
expect_eq "Stoker sourceRef.kind defaults to GitSource" GitSource "$(get $STK by-ref .spec.sourceRef.kind)"
expect_eq "Stoker agent.sourceMode defaults to artifact" artifact "$(get $STK by-ref .spec.agent.sourceMode)"

expect_eq "Alert eventSeverity defaults to info" info "$(get $AL plant-ops-slack .spec.eventSeverity)"
expect_eq "Alert provider.timeout defaults to 15s" 15s "$(get $AL plant-ops-slack .spec.provider.timeout)"
expect_eq "Alert suspend defaults to false" false "$(get $AL plant-ops-slack .spec.suspend)"

# --- invalid samples -------------------------------------------------------------------
n=0
for f in "$samples"/invalid/*.yaml; do
	n=$((n + 1))
	s=$(basename "$f")
	want=$(sed -n '1s/^# expect: //p' "$f")
	if [ -z "$want" ]; then
		not_ok "invalid sample $s starts with '# expect: <message>'"
		continue
	fi
	if out=$(k apply -n "$ns" -f "$f" 2>&1); then
		not_ok "invalid sample $s is rejected, but it was accepted"
	else
		expect_contains "invalid sample $s is rejected" "$want" "$out"
	fi
	expect_contains "invalid sample $s was not stored" "(NotFound)" "$(k get -n "$ns" -f "$f" -o name 2>&1)"
done
[ "$n" -ge 40 ] && ok "$n invalid samples" || not_ok "expected at least 40 invalid samples, found $n"

# --- status: observedGeneration defaults to -1 -----------------------------------------
# The API server does not create .status on create (the status subresource ignores it),
# so there is nothing to default yet. Once a controller writes any status object, even an
# empty one, the schema default -1 is filled in, stored, and read back.
expect_eq "no status before a controller writes one" "" "$(get $GS publicdemo .status)"
for r in "$GS publicdemo" "$SP backend" "$STK by-ref" "$AL plant-ops-slack"; do
	set -- $r
	k patch "$1" "$2" -n "$ns" --subresource status --type merge -p '{"status":{}}' >/dev/null
	expect_eq "${1%%.*}: an empty status reads back with observedGeneration -1" '{"observedGeneration":-1}' \
		"$(get "$1" "$2" .status)"
done

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cond() { # TYPE STATUS REASON MESSAGE
	printf '{"type":"%s","status":"%s","reason":"%s","message":"%s","lastTransitionTime":"%s","observedGeneration":1}' \
		"$1" "$2" "$3" "$4" "$now"
}
status_patch() { # RESOURCE NAME STATUS-JSON
	k patch "$1" "$2" -n "$ns" --subresource status --type merge -p "{\"status\":$3}" 2>&1
}

out=$(status_patch $STK my-sync "{\"conditions\":[$(cond Ready True Succeeded ok)]}")
expect_eq "a status with only conditions still gets observedGeneration -1" -1 \
	"$(get $STK my-sync .status.observedGeneration)"
out=$(status_patch $STK my-sync "{\"conditions\":[$(cond Ready Yes Succeeded ok)]}")
expect_contains "condition status must be True, False or Unknown" \
	'Unsupported value: "Yes": supported values: "True", "False", "Unknown"' "$out"
out=$(status_patch $STK my-sync "{\"conditions\":[$(cond Ready True 'Sync failed' ok)]}")
expect_contains "condition reason must be CamelCase" "status.conditions[0].reason: Invalid value: \"Sync failed\"" "$out"
out=$(status_patch $STK my-sync '{"conditions":[{"type":"Ready","status":"True"}]}')
expect_contains "condition reason, message and lastTransitionTime are required" \
	"status.conditions[0].lastTransitionTime: Required value" "$out"
out=$(status_patch $STK my-sync "{\"conditions\":[$(cond Ready True Succeeded a),$(cond Ready False Failed b)]}")
expect_contains "conditions are a map keyed by type" "status.conditions[1]: Duplicate value" "$out"
out=$(status_patch $STK my-sync '{"conditions":[{"type":"Ready","status":"True","reason":"Succeeded","message":"ok","lastTransitionTime":"'"$now"'","observedGeneration":-1}]}')
expect_contains "condition observedGeneration may not be negative" \
	"conditions[0].observedGeneration in body should be greater than or equal to 0" "$out"
out=$(status_patch $SP backend "{\"dryRunDiff\":{\"files\":[$(seq -s, 1 101 | sed 's/[0-9]\+/"f&"/g')]}}")
expect_contains "dryRunDiff.files holds at most 100 paths" "must have at most 100 items" "$out"

# --- printer columns and kubectl wait --------------------------------------------------
sha=2c6a0646d007574bbb6d7a3ef0c7d4ce9badfafa
status_patch $GS publicdemo "{\"observedGeneration\":1,\"artifact\":{\"revision\":\"main@sha1:$sha\",\"commit\":\"$sha\",\"ref\":\"main\",\"digest\":\"sha256:9f2c\",\"size\":12345,\"lastUpdateTime\":\"$now\"},\"conditions\":[$(cond Ready True Succeeded 'stored artifact for revision main')]}" >/dev/null
status_patch $SP backend "{\"observedGeneration\":1,\"gatewayCount\":2,\"gateways\":[\"backend\",\"backend-1\"],\"conditions\":[$(cond Accepted True ValidationPassed ok),$(cond DependenciesMet True NoDependencies ok),$(cond Ready True Succeeded ok)]}" >/dev/null
status_patch $STK my-sync "{\"observedGeneration\":1,\"lastSyncRef\":\"main\",\"lastSyncCommit\":\"$sha\",\"lastSyncCommitShort\":\"2c6a064\",\"lastSyncTime\":\"$now\",\"discoveredGateways\":[{\"name\":\"gateway\",\"namespace\":\"$ns\",\"podName\":\"gateway-0\",\"syncStatus\":\"Synced\",\"syncedCommit\":\"$sha\",\"filesChanged\":4,\"drift\":{\"detected\":false}}],\"conditions\":[$(cond AllGatewaysSynced True SyncSucceeded '1/1 gateways synced'),$(cond Ready True Succeeded 'synced 2c6a064')]}" >/dev/null
status_patch $AL plant-ops-slack "{\"observedGeneration\":1,\"lastSent\":{\"time\":\"$now\",\"reason\":\"SyncFailed\",\"result\":\"200\"},\"conditions\":[$(cond Ready True Succeeded ok)]}" >/dev/null
status_patch $STK proveit-sync "{\"conditions\":[$(cond Ready False SecretNotFound 'secret git-sync-secret not found')]}" >/dev/null

for r in "$GS publicdemo" "$SP backend" "$STK my-sync" "$AL plant-ops-slack"; do
	set -- $r
	check "kubectl wait --for=condition=Ready works on ${1%%.*}" \
		k wait --for=condition=Ready --timeout=10s "$1/$2" -n "$ns"
done
check "kubectl wait --for=condition=Ready times out while Ready=False" \
	bash -c '! "$STOKER_KUBECTL" wait --for=condition=Ready --timeout=1s "$1" -n "$2" 2>/dev/null' _ "$STK/proveit-sync" "$ns"
check "kubectl wait --for=condition=Ready=False matches Ready=False" \
	k wait --for=condition=Ready=False --timeout=10s "$STK/proveit-sync" -n "$ns"

out=$(k get stk,sp,gitsrc,alerts -n "$ns" 2>&1)
headers=$(grep '^NAME ' <<<"$out" | tr -s ' ' | sed 's/ $//')
has_line() { grep -qxF "$1" <<<"$2"; }
check "Stoker columns: NAME REF COMMIT GATEWAYS READY STATUS AGE" \
	has_line "NAME REF COMMIT GATEWAYS READY STATUS AGE" "$headers"
check "SyncProfile columns: NAME GATEWAYS ACCEPTED DEPENDENCIESMET AGE" \
	has_line "NAME GATEWAYS ACCEPTED DEPENDENCIESMET AGE" "$headers"
check "GitSource columns: NAME URL REVISION READY STATUS AGE" \
	has_line "NAME URL REVISION READY STATUS AGE" "$headers"
check "Alert columns: NAME READY STATUS AGE" has_line "NAME READY STATUS AGE" "$headers"
row() { k get "$1" "$2" -n "$ns" --no-headers | tr -s ' ' | sed 's/ [0-9smhd]*$//'; } # without AGE
expect_eq "GitSource row: URL, revision, Ready, message" \
	"publicdemo https://github.com/example-org/public-demo-ignition.git main@sha1:$sha True stored artifact for revision main" \
	"$(row $GS publicdemo)"
expect_eq "SyncProfile row: gateway count, Accepted, DependenciesMet" "backend 2 True True" "$(row $SP backend)"
expect_eq "Stoker row: ref, short commit, gateways synced, Ready, message" \
	"my-sync main 2c6a064 1/1 gateways synced True synced 2c6a064" "$(row $STK my-sync)"
expect_eq "Alert row: Ready, message" "plant-ops-slack True ok" "$(row $AL plant-ops-slack)"

# --- kubectl explain shows the CRD descriptions ----------------------------------------
# descriptions CRD-FILE FIELD-PATH: the description of the field and of each child, one a
# line, whitespace folded (as `kubectl explain` output is, once folded the same way).
descriptions() {
	"$py" - "$@" <<'PY'
import sys, yaml
crd, path = yaml.safe_load(open(sys.argv[1])), sys.argv[2].split(".")
node = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
for p in path:
    node = node["properties"][p]
print(" ".join(node["description"].split()))
for child in node.get("properties", {}).values():
    print(" ".join(child["description"].split()))
PY
}
explain_has() { # CRD-FILE FIELD-PATH EXPLAIN-ARG
	local text line want i
	want=$(descriptions "$1" "$2")
	# The API server publishes a changed CRD's OpenAPI a moment after it is Established.
	for i in $(seq 1 30); do
		text=$(k explain "$3" 2>&1 | tr -s '[:space:]' ' ')
		[[ $text == *"$(head -n1 <<<"$want")"* ]] && break
		sleep 1
	done
	while IFS= read -r line; do
		expect_contains "kubectl explain $3 shows: ${line:0:40}…" "$line" "$text"
	done <<<"$want"
}
explain_has "$repo/config/crd/stoker.io_stokers.yaml" spec.gateway stoker.spec.gateway
explain_has "$repo/config/crd/source.stoker.io_gitsources.yaml" spec.ref gitsource.spec.ref
