#!/usr/bin/env bash
# source-controller against real git servers: GitSources over git://, smart HTTP with
# basic auth and a token, and ssh with a key and known_hosts become Ready with the
# right revision and digest; every ref kind resolves to the right commit; a pushed
# commit is picked up at once after the reconcile token; failures say which and keep
# the previous artifact; artifacts are served only to tokens of the namespace; the same
# commit gives the same digest after a restart; deleting a GitSource removes its files.
. "$(dirname "$0")/../lib/testlib.sh"
root=$(cd "$E2E_ROOT/.." && pwd)
bin=${STOKER_BUILD_DIR:-$root/build}/bin/source-controller

k apply -k "$root/config/crd/" >/dev/null
k wait --for=condition=Established --timeout=60s crd/gitsources.source.stoker.io >/dev/null

# Git servers and a repository.
gs="$root/e2e/fixtures/git-servers"
eval "$("$gs" up --dir "$E2E_WORK/git")"
on_exit "'$gs' down --dir '$E2E_WORK/git'"
eval "$("$gs" repo --dir "$E2E_WORK/git" site)"

# The controller, as a host process watching this namespace.
art_port=$(free_port)
health_port=$(free_port)
metrics_port=$(free_port)
start_controller() {
	"$bin" --kubeconfig "$KUBECONFIG" --leader-elect=false --watch-namespaces "$E2E_NS" \
		--storage-path "$E2E_WORK/storage" --artifact-bind-address "127.0.0.1:$art_port" \
		--artifact-base-url "http://127.0.0.1:$art_port" \
		--health-probe-bind-address "127.0.0.1:$health_port" \
		--metrics-bind-address "127.0.0.1:$metrics_port" --log-level debug \
		>>"$E2E_WORK/controller.log" 2>&1 &
	ctl_pid=$!
}
start_controller
on_exit 'kill $ctl_pid'
wait_for 30 curl -fsS "http://127.0.0.1:$health_port/readyz" ||
	{ not_ok "controller did not become ready"; tail -20 "$E2E_WORK/controller.log"; exit 1; }
ok "controller ready"

secret() { # name key=value...
	local name=$1
	shift
	k create secret generic "$name" -n "$E2E_NS" "${@/#/--from-literal=}" >/dev/null
}
secret_file() { # name key file
	k create secret generic "$1" -n "$E2E_NS" --from-file="$2=$3" >/dev/null
}
gitsource() { # name url ref-yaml [auth-yaml]
	k apply -n "$E2E_NS" -f - >/dev/null <<Y
apiVersion: source.stoker.io/v1alpha1
kind: GitSource
metadata: {name: $1}
spec:
  url: $2
  interval: 30s
  ref: $3
${4:+  auth: $4}
Y
}
status() { k get gitsource "$1" -n "$E2E_NS" -o jsonpath="$2"; }
ready() { [ "$(status "$1" '{.status.conditions[?(@.type=="Ready")].status}')" = "${2:-True}" ]; }
expect_ready() { # name commit [ref]
	if wait_for 60 ready "$1"; then
		expect_eq "$1: revision" "${3:-main}@sha1:$2" "$(status "$1" '{.status.artifact.revision}')"
	else
		not_ok "$1 never became Ready: $(status "$1" '{.status.conditions}')"
	fi
}

# --- every transport ------------------------------------------------------------------
gitsource daemon "$GIT_DAEMON_URL/site.git" '{branch: main}'
secret http-basic "username=$GIT_HTTP_USER" "password=$GIT_HTTP_PASSWORD"
gitsource http-basic "$GIT_HTTP_URL/site.git" '{branch: main}' '{basic: {secretRef: {name: http-basic}}}'
secret http-token "token=$GIT_HTTP_TOKEN"
gitsource http-token "$GIT_HTTP_URL/site.git" '{branch: main}' '{token: {secretRef: {name: http-token, key: token}}}'
secret_file ssh-key identity "$GIT_SSH_KEY"
secret_file known-hosts known_hosts "$GIT_KNOWN_HOSTS"
gitsource ssh "$GIT_SSH_URL/site.git" '{branch: main}' \
	'{sshKey: {secretRef: {name: ssh-key, key: identity}}, knownHosts: {secretRef: {name: known-hosts, key: known_hosts}}}'
for s in daemon http-basic http-token ssh; do expect_ready "$s" "$COMMIT_MAIN"; done
expect_eq "ssh: host key verified" True "$(status ssh '{.status.conditions[?(@.type=="HostKeyVerified")].status}')"
expect_eq "git://: host key not applicable" "" "$(status daemon '{.status.conditions[?(@.type=="HostKeyVerified")].status}')"

# The digest is the sha256 of the stored artifact, identical across transports.
digest=$(status daemon '{.status.artifact.digest}')
file="$E2E_WORK/storage/$E2E_NS/daemon/$COMMIT_MAIN.tar.gz"
expect_eq "digest is the sha256 of the stored artifact" "sha256:$(sha256sum "$file" | cut -d' ' -f1)" "$digest"
for s in http-basic http-token ssh; do
	expect_eq "$s: same digest as git://" "$digest" "$(status "$s" '{.status.artifact.digest}')"
done
check "artifact lists the repository's files" bash -c "tar -tzf '$file' | grep -q '^services/'"

# --- every ref kind -------------------------------------------------------------------
gitsource tag-light "$GIT_DAEMON_URL/site.git" '{tag: v1.0.0}'
gitsource tag-annotated "$GIT_DAEMON_URL/site.git" '{tag: v1.1.0}'
gitsource semver "$GIT_DAEMON_URL/site.git" "{semver: '>=1.0.0 <2.0.0'}"
gitsource semver-pre "$GIT_DAEMON_URL/site.git" "{semver: '>=2.0.0-rc.0'}"
gitsource by-commit "$GIT_DAEMON_URL/site.git" "{commit: $COMMIT_RELEASE}"
gitsource by-name "$GIT_DAEMON_URL/site.git" '{name: release}'
expect_ready tag-light "$COMMIT_V1_0_0" v1.0.0
expect_ready tag-annotated "$COMMIT_V1_1_0" v1.1.0
expect_ready semver "$COMMIT_V1_1_0" v1.1.0
expect_ready semver-pre "$COMMIT_V2_0_0" v2.0.0
expect_ready by-commit "$COMMIT_RELEASE" "$COMMIT_RELEASE"
expect_ready by-name "$COMMIT_RELEASE" release

# --- a push, picked up at once after the reconcile token ----------------------------------
new=$("$gs" push --dir "$E2E_WORK/git" site main | tail -n1 | sed 's/.*=//')
k annotate gitsource daemon -n "$E2E_NS" --overwrite stoker.io/reconcile-requested-at="$(date +%s)" >/dev/null
if wait_for 15 bash -c "[ \"\$(\"$STOKER_KUBECTL\" get gitsource daemon -n $E2E_NS -o jsonpath='{.status.artifact.commit}')\" = '$new' ]"; then
	ok "pushed commit picked up after the reconcile token"
else
	not_ok "pushed commit $new not picked up: $(status daemon '{.status.artifact.revision}')"
fi
check "new revision event" bash -c "'$STOKER_KUBECTL' get events -n $E2E_NS --field-selector involvedObject.name=daemon,reason=NewRevision -o name | grep -q ."

# --- a push is picked up within the interval, without any trigger ----------------------
eval "$("$gs" repo --dir "$E2E_WORK/git" other | sed 's/^export COMMIT_/export OTHER_/')"
gitsource fast "$GIT_DAEMON_URL/other.git" '{branch: main}'
k patch gitsource fast -n "$E2E_NS" --type merge -p '{"spec":{"interval":"3s"}}' >/dev/null
expect_ready fast "$OTHER_MAIN"
pushed=$("$gs" push --dir "$E2E_WORK/git" other main | tail -n1 | sed 's/.*=//')
if wait_for 20 bash -c "[ \"\$('$STOKER_KUBECTL' get gitsource fast -n $E2E_NS -o jsonpath='{.status.artifact.commit}')\" = '$pushed' ]"; then
	ok "push picked up within the 3s interval"
else
	not_ok "push not picked up within the interval: $(status fast '{.status.artifact.revision}')"
fi

# --- stoker.io/requested-ref overrides spec.ref until spec.ref catches up ------------------
k annotate gitsource tag-annotated -n "$E2E_NS" stoker.io/requested-ref=release >/dev/null
if wait_for 20 bash -c "[ \"\$('$STOKER_KUBECTL' get gitsource tag-annotated -n $E2E_NS -o jsonpath='{.status.artifact.commit}')\" = '$COMMIT_RELEASE' ]"; then
	ok "requested-ref followed"
else
	not_ok "requested-ref not followed: $(status tag-annotated '{.status.artifact.revision}')"
fi
k patch gitsource tag-annotated -n "$E2E_NS" --type merge -p '{"spec":{"ref":{"tag":null,"branch":"release"}}}' >/dev/null
check "requested-ref cleared once spec.ref caught up" wait_for 20 bash -c \
	"[ -z \"\$('$STOKER_KUBECTL' get gitsource tag-annotated -n $E2E_NS -o jsonpath='{.metadata.annotations.stoker\.io/requested-ref}')\" ]"

# --- metrics ------------------------------------------------------------------------------
metrics=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics")
expect_contains "artifact size metric" "stoker_source_artifact_bytes{name=\"daemon\",namespace=\"$E2E_NS\"}" "$metrics"
expect_contains "Ready condition metric" "stoker_condition{kind=\"GitSource\",name=\"daemon\",namespace=\"$E2E_NS\",type=\"Ready\",status=\"True\"} 1" "$metrics"
expect_contains "fetch duration metric" "stoker_source_fetch_duration_seconds_count{name=\"daemon\"" "$metrics"
expect_contains "reconcile counter" "stoker_reconcile_total{kind=\"GitSource\",name=\"daemon\",namespace=\"$E2E_NS\",result=\"success\"}" "$metrics"

# --- failures say which, and keep the previous artifact ------------------------------------
k create serviceaccount agent -n "$E2E_NS" >/dev/null
token=$(k create token agent -n "$E2E_NS" --audience stoker-source)
prev=$(status http-basic '{.status.artifact.digest}')
prev_url=$(status http-basic '{.status.artifact.url}')
k delete secret http-basic -n "$E2E_NS" >/dev/null
secret http-basic "username=$GIT_HTTP_USER" "password=wrong"
k annotate gitsource http-basic -n "$E2E_NS" --overwrite stoker.io/reconcile-requested-at="x$(date +%s)" >/dev/null
"$gs" push --dir "$E2E_WORK/git" site main >/dev/null
if wait_for 30 ready http-basic False; then
	expect_eq "wrong password: reason" AuthenticationFailed "$(status http-basic '{.status.conditions[?(@.type=="Ready")].reason}')"
	expect_eq "wrong password: previous artifact kept" "$prev" "$(status http-basic '{.status.artifact.digest}')"
	check "wrong password: previous artifact still on disk" test -f "$E2E_WORK/storage/$E2E_NS/http-basic/$COMMIT_MAIN.tar.gz"
	expect_eq "wrong password: previous artifact still served" 200 \
		"$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$prev_url")"
else
	not_ok "wrong password not reported: $(status http-basic '{.status.conditions}')"
fi
# Recovery once the Secret is fixed.
k delete secret http-basic -n "$E2E_NS" >/dev/null
secret http-basic "username=$GIT_HTTP_USER" "password=$GIT_HTTP_PASSWORD"
k annotate gitsource http-basic -n "$E2E_NS" --overwrite stoker.io/reconcile-requested-at="y$(date +%s)" >/dev/null
if wait_for 30 ready http-basic True; then
	check "recovered: new artifact after the fix" test "$(status http-basic '{.status.artifact.digest}')" != "$prev"
else
	not_ok "no recovery after fixing the Secret: $(status http-basic '{.status.conditions}')"
fi
secret_file wrong-hosts known_hosts "$GIT_WRONG_KNOWN_HOSTS"
gitsource ssh-wrong-host "$GIT_SSH_URL/site.git" '{branch: main}' \
	'{sshKey: {secretRef: {name: ssh-key, key: identity}}, knownHosts: {secretRef: {name: wrong-hosts, key: known_hosts}}}'
secret_file wrong-key identity "$GIT_SSH_WRONG_KEY"
gitsource ssh-wrong-key "$GIT_SSH_URL/site.git" '{branch: main}' '{sshKey: {secretRef: {name: wrong-key, key: identity}}}'
gitsource no-such-branch "$GIT_DAEMON_URL/site.git" '{branch: nope}'
gitsource unreachable "git://127.0.0.1:1/site.git" '{branch: main}'
gitsource no-secret "$GIT_HTTP_URL/site.git" '{branch: main}' '{basic: {secretRef: {name: missing}}}'
for pair in ssh-wrong-host:HostKeyMismatch ssh-wrong-key:AuthenticationFailed \
	no-such-branch:RefNotFound unreachable:FetchFailed no-secret:SecretNotFound; do
	s=${pair%%:*} want=${pair#*:}
	if wait_for 30 ready "$s" False; then
		expect_eq "$s: reason" "$want" "$(status "$s" '{.status.conditions[?(@.type=="Ready")].reason}')"
	else
		not_ok "$s: no Ready=False ($(status "$s" '{.status.conditions}'))"
	fi
done
expect_contains "missing Secret named in the message" "Secret 'missing' not found" \
	"$(status no-secret '{.status.conditions[?(@.type=="Ready")].message}')"
expect_absent "no secret value in any condition" "$(k get gitsources -n "$E2E_NS" -o json)" \
	"$GIT_HTTP_PASSWORD" "$GIT_HTTP_TOKEN"
expect_absent "no secret value in events" "$(k get events -n "$E2E_NS" -o json)" \
	"$GIT_HTTP_PASSWORD" "$GIT_HTTP_TOKEN"
expect_absent "no secret value in the controller's log" "$(cat "$E2E_WORK/controller.log")" \
	"$GIT_HTTP_PASSWORD" "$GIT_HTTP_TOKEN" "PRIVATE KEY"

# --- artifact downloads ----------------------------------------------------------------
url=$(status daemon '{.status.artifact.url}')
code() { curl -s -o "$E2E_WORK/dl" -w '%{http_code}' "$@" "$url"; }
expect_eq "download with a token of the namespace" 200 "$(code -H "Authorization: Bearer $token")"
expect_eq "downloaded bytes have the digest" "$(status daemon '{.status.artifact.digest}')" "sha256:$(sha256sum "$E2E_WORK/dl" | cut -d' ' -f1)"
expect_eq "download without a token" 401 "$(code)"
expect_eq "download with a bad token" 401 "$(code -H 'Authorization: Bearer nope')"
other=$E2E_NS-other
k create namespace "$other" >/dev/null
on_exit "'$STOKER_KUBECTL' delete namespace $other --wait=false"
k create serviceaccount agent -n "$other" >/dev/null
expect_eq "download with a token of another namespace" 403 \
	"$(code -H "Authorization: Bearer $(k create token agent -n "$other" --audience stoker-source)")"

# --- restart: same commit, same digest, no rewrite ----------------------------------------
d1=$(status tag-light '{.status.artifact.digest}')
t1=$(status semver '{.status.artifact.lastUpdateTime}')
kill $ctl_pid
wait $ctl_pid 2>/dev/null
rm -rf "$E2E_WORK/storage/$E2E_NS/tag-light"
start_controller
wait_for 30 curl -fsS "http://127.0.0.1:$health_port/readyz"
for s in tag-light semver; do
	k annotate gitsource $s -n "$E2E_NS" --overwrite stoker.io/reconcile-requested-at="r$(date +%s)" >/dev/null
done
wait_for 30 test -f "$E2E_WORK/storage/$E2E_NS/tag-light/$COMMIT_V1_0_0.tar.gz"
wait_for 30 bash -c "[ \"\$('$STOKER_KUBECTL' get gitsource semver -n $E2E_NS -o jsonpath='{.status.lastHandledReconcileAt}')\" != '' ]"
sleep 1
expect_eq "same commit, same digest after a restart and a fresh clone" "$d1" "$(status tag-light '{.status.artifact.digest}')"
expect_eq "artifact intact after a restart: status.artifact not rewritten" "$t1" "$(status semver '{.status.artifact.lastUpdateTime}')"

# --- two replicas: only the leader reconciles ----------------------------------------------
ns2=$E2E_NS-ha
k create namespace "$ns2" >/dev/null
on_exit "'$STOKER_KUBECTL' delete namespace $ns2 --wait=false"
replica() { # n
	"$bin" --kubeconfig "$KUBECONFIG" --leader-elect=true --leader-election-namespace "$ns2" \
		--leader-elect-lease-duration 4s --leader-elect-renew-deadline 3s \
		--leader-elect-retry-period 500ms --watch-namespaces "$ns2" \
		--storage-path "$E2E_WORK/ha$1" --artifact-bind-address "127.0.0.1:$(free_port)" \
		--artifact-base-url http://127.0.0.1 --health-probe-bind-address "127.0.0.1:$(free_port)" \
		--metrics-bind-address "127.0.0.1:$(free_port)" >"$E2E_WORK/ha$1.log" 2>&1 &
	eval "ha$1=\$!"
}
replica 1
replica 2
on_exit 'kill $ha1 $ha2'
k apply -n "$ns2" -f - >/dev/null <<Y
apiVersion: source.stoker.io/v1alpha1
kind: GitSource
metadata: {name: shared}
spec: {url: "$GIT_DAEMON_URL/site.git", ref: {tag: v1.0.0}}
Y
if wait_for 60 bash -c "[ \"\$('$STOKER_KUBECTL' get gitsource shared -n $ns2 -o jsonpath='{.status.artifact.commit}')\" = '$COMMIT_V1_0_0' ]"; then
	ok "two replicas: the GitSource is reconciled"
else
	not_ok "two replicas: GitSource not reconciled"
fi
leaders=$(grep -l '"became leader"' "$E2E_WORK/ha1.log" "$E2E_WORK/ha2.log" | wc -l)
expect_eq "exactly one replica leads" 1 "$leaders"
stored=$(ls "$E2E_WORK"/ha*/"$ns2"/shared/*.tar.gz 2>/dev/null | wc -l)
expect_eq "only the leader stored the artifact" 1 "$stored"
if grep -q '"became leader"' "$E2E_WORK/ha1.log"; then first=$ha1 second=2; else first=$ha2 second=1; fi
kill -TERM "$first"
check "the other replica takes over after SIGTERM" wait_for 15 grep -q '"became leader"' "$E2E_WORK/ha$second.log"

# --- deletion removes the artifacts --------------------------------------------------------
k delete gitsource by-name -n "$E2E_NS" --wait=true --timeout=30s >/dev/null
check "deleted GitSource's artifacts are removed" test ! -e "$E2E_WORK/storage/$E2E_NS/by-name"
check "controller still running" kill -0 $ctl_pid
