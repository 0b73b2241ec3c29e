#!/usr/bin/env bash
# Stoker managing its own install with GitOps (DESIGN.md §9, docs/self-management.md):
# the install kustomization lives in a Git repository tracked by a GitSource; the loop of
# scripts/self-apply.sh applies each new revision with `kubectl apply -k`, so changing the
# repository changes the install; an Alert on the GitSource reports each new revision.
#  - bootstrap (CRDs and the namespace by hand), then the loop installs the rest;
#  - a pushed change (the injector's replicas) reaches the cluster; nothing drifts;
#  - the Alert's sink receives NewRevision for both revisions.
. "$(dirname "$0")/../lib/testlib.sh"
root=$(cd "$E2E_ROOT/.." && pwd)
bindir=${STOKER_BUILD_DIR:-$root/build}/bin
PY=/usr/bin/python3
sys_ns=stoker-system

# The install creates cluster-wide objects; another case may have installed them too.
k apply -k "$root/config/crd/" >/dev/null
k wait --for=condition=Established --timeout=60s crd --all >/dev/null
# Start from no install: what the loop creates must come from the loop. (A GitSource
# left by an interrupted run would hold the namespace with its finalizer.)
for g in $(k get gitsources -n $sys_ns -o name 2>/dev/null); do
	k patch "$g" -n $sys_ns --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null
done
delete_namespaces $sys_ns
wait_for 120 namespaces_gone $sys_ns || { not_ok "namespace $sys_ns is not gone"; exit 1; }
k create namespace $sys_ns >/dev/null 2>&1 || true
k create serviceaccount self-apply -n $sys_ns >/dev/null 2>&1 || true
on_exit "k delete mutatingwebhookconfiguration stoker-injector --ignore-not-found >/dev/null; delete_namespaces $sys_ns"

# --- the install repository ---------------------------------------------------------------
gs="$root/e2e/fixtures/git-servers"
eval "$("$gs" up --dir "$E2E_WORK/git")"
on_exit "'$gs' down --dir '$E2E_WORK/git'"
repo=$E2E_WORK/install
mkdir -p "$repo/config"
cp -r "$root/kustomize" "$repo/kustomize"
cp -r "$root/config/crd" "$repo/config/crd"
git -C "$repo" init -q -b main
git -C "$repo" -c user.name=e2e -c user.email=e2e@stoker.invalid add -A
git -C "$repo" -c user.name=e2e -c user.email=e2e@stoker.invalid commit -q -m "Stoker install"
git init -q --bare "$GIT_REPOS/install.git"
git -C "$repo" push -q "$GIT_REPOS/install.git" main
first=$(git -C "$repo" rev-parse HEAD)

# --- source-controller, notification-controller, the sink, the Alert ---------------------
"$PY" "$root/e2e/fixtures/sink.py" --port-file "$E2E_WORK/sink.port" >>"$E2E_WORK/sink.log" 2>&1 &
pids=("$!")
on_exit 'kill ${pids[@]}'
wait_for 10 test -s "$E2E_WORK/sink.port" || { not_ok "sink did not start"; exit 1; }
sink="http://127.0.0.1:$(cat "$E2E_WORK/sink.port")"
art_port=$(free_port)
for d in source-controller notification-controller; do
	extra=()
	[ $d = source-controller ] && extra=(--storage-path "$E2E_WORK/storage"
		--artifact-bind-address "127.0.0.1:$art_port" --artifact-base-url "http://127.0.0.1:$art_port")
	[ $d = notification-controller ] && extra=(--receiver-bind-address "127.0.0.1:$(free_port)")
	"$bindir/$d" --kubeconfig "$KUBECONFIG" --leader-elect=false --watch-namespaces $sys_ns \
		--health-probe-bind-address "127.0.0.1:$(free_port)" --metrics-bind-address "127.0.0.1:0" \
		"${extra[@]}" >>"$E2E_WORK/$d.log" 2>&1 &
	pids+=("$!")
done
# The Alert first: an event recorded before its Alert exists is not sent (as in Flux).
k apply -n $sys_ns -f - >/dev/null <<Y
apiVersion: notification.stoker.io/v1alpha1
kind: Alert
metadata: {name: install-revisions}
spec:
  provider: {type: generic, address: "$sink/install"}
  eventSources: [{kind: GitSource, name: stoker-install}]
  inclusionList: ["stored"]
Y
check "the Alert is Ready" k wait alert/install-revisions -n $sys_ns --for=condition=Ready --timeout=30s
k apply -n $sys_ns -f - >/dev/null <<Y
apiVersion: source.stoker.io/v1alpha1
kind: GitSource
metadata: {name: stoker-install}
spec: {url: "$GIT_DAEMON_URL/install.git", ref: {branch: main}, interval: 1h}
Y
revision_is() { k get gitsource stoker-install -n $sys_ns -o jsonpath='{.status.artifact.commit}' | grep -q "^$1$"; }
check "the GitSource stores the install's first revision" wait_for 30 revision_is "$first"

# --- the loop -----------------------------------------------------------------------------------
k create token self-apply -n $sys_ns --audience stoker-source --duration 1h >"$E2E_WORK/token"
KUBECTL=$STOKER_KUBECTL bash "$root/scripts/self-apply.sh" --namespace $sys_ns --gitsource stoker-install \
	--path kustomize/base --token-file "$E2E_WORK/token" --interval 1 --server-side \
	>>"$E2E_WORK/self-apply.log" 2>&1 &
pids+=("$!")
deployed() { k get deployment "$1" -n $sys_ns >/dev/null 2>&1; }
for d in source-controller sync-controller profile-controller notification-controller injector; do
	check "the loop installed deployment/$d" wait_for 30 deployed "$d"
done
check "the loop installed the webhook configuration" k get mutatingwebhookconfiguration stoker-injector ||
	tail -5 "$E2E_WORK/self-apply.log"
expect_contains "the loop logged the revision it applied" "$first" "$(cat "$E2E_WORK/self-apply.log")"

# --- a change in the repository changes the install ----------------------------------------
replicas() { k get deployment injector -n $sys_ns -o jsonpath='{.spec.replicas}'; }
before=$(replicas)
"$PY" - "$repo/kustomize/base/injector.yaml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s2 = re.sub(r"(kind: Deployment\n(?:.*\n)*?spec:\n  replicas: )2", r"\g<1>3", s, count=1)
assert s2 != s, "no 'replicas: 2' in the injector Deployment"
open(p, "w").write(s2)
PY
git -C "$repo" -c user.name=e2e -c user.email=e2e@stoker.invalid commit -q -am "Three injector replicas"
git -C "$repo" push -q "$GIT_REPOS/install.git" main
second=$(git -C "$repo" rev-parse HEAD)
k annotate gitsource stoker-install -n $sys_ns "stoker.io/reconcile-requested-at=$second" --overwrite >/dev/null
check "the GitSource stores the new revision" wait_for 30 revision_is "$second"
three() { [ "$(replicas)" = 3 ]; }
if wait_for 30 three; then
	ok "the change reached the cluster (injector replicas $before -> 3)"
else
	not_ok "injector replicas are $(replicas) after the push"; tail -5 "$E2E_WORK/self-apply.log"
fi
if k diff -k "$repo/kustomize/base" >"$E2E_WORK/diff.txt" 2>&1; then
	ok "the cluster matches the repository (kubectl diff is empty)"
else
	not_ok "kubectl diff after the loop: $(head -c 600 "$E2E_WORK/diff.txt")"
fi

# --- the Alert: one notification per new revision ------------------------------------------------
revisions() {
	curl -fsS "$sink/_sink/requests" | "$PY" -c "
import json, sys
for r in json.load(sys.stdin):
    if r['path'] == '/install':
        b = json.loads(r['body'])
        print(b['reason'], b['message'])"
}
both() { revisions | grep -q "${first:0:12}" && revisions | grep -q "${second:0:12}"; }
if wait_for 20 both; then
	ok "the Alert reported both revisions (NewRevision)"
else
	not_ok "Alert notifications: $(revisions)"
fi
expect_eq "every notification is a NewRevision" "" "$(revisions | grep -v '^NewRevision ' || true)"

# Delete the GitSource while the source-controller runs (its finalizer), then the rest.
k delete gitsource stoker-install -n $sys_ns --wait=true --timeout=30s >/dev/null
