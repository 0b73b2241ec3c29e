#!/usr/bin/env bash
# The install manifests of kustomize/ (DESIGN.md §9, issue 11) on a real API server.
#  - builds: `kubectl kustomize` of the base and of both overlays gives the same bytes
#    every time (and builds with any other kubectl on PATH); the built objects are what
#    the issue asks for (images, --leader-elect, probes, resources, restricted security
#    contexts, Services, the webhook configuration without caBundle, NetworkPolicies, the
#    PodDisruptionBudget), and every Deployment's args are accepted by its daemon;
#  - base: a server-side dry run (which on a first install fails only because the
#    namespace does not exist yet), the real server-side apply, a client-side apply on
#    top; re-applying either way writes nothing and `kubectl diff` is empty; the
#    ReplicaSets' pods pass Pod Security "restricted";
#  - RBAC: `kubectl auth can-i --as=<service account>` allows every verb each daemon's
#    code uses and denies a sample it must not have; the agents' ClusterRole bound in
#    one namespace grants exactly the agent's needs there and nothing on Secrets;
#  - the daemons themselves, run here with their service accounts' tokens and the
#    Deployments' args: caches sync, Leases are taken, the injector creates its Secret and
#    publishes the caBundle, a GitSource, Stoker, SyncProfile and Alert are reconciled, an
#    artifact is served to a pod token, a webhook is accepted, deletion goes through the
#    finalizers, and no request is forbidden; re-applying the base afterwards keeps the
#    injector's caBundle and `kubectl diff` stays empty;
#  - cert-manager overlay: without cert-manager the dry run fails on exactly its Issuer
#    and Certificate; with stand-in CRDs it applies and re-applies cleanly;
#  - namespaced overlay: applies into site1 and site2, gives Roles there and no
#    cluster-wide grant on namespaced resources, and the daemons run with it.
# Pods never run here (no kubelet): the Deployments are checked as API objects and the
# daemons run as processes on this machine.
. "$(dirname "$0")/../lib/testlib.sh"
repo=$(cd "$E2E_ROOT/.." && pwd)
kz=$repo/kustomize
bindir=${STOKER_BUILD_DIR:-$repo/build}/bin
py=/usr/bin/python3 # Debian's, which has PyYAML
SYS=stoker-system
ns=$E2E_NS
DAEMONS="source-controller sync-controller profile-controller notification-controller injector"

GS=gitsources.source.stoker.io
STK=stokers.stoker.io
SP=syncprofiles.stoker.io
AL=alerts.notification.stoker.io
LEASE=leases.coordination.k8s.io
MWC=mutatingwebhookconfigurations.admissionregistration.k8s.io
TR=tokenreviews.authentication.k8s.io

pids=()
stop_daemons() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	pids=()
}
# Everything this case installs outside its own namespace, but never the Stoker CRDs:
# other cases share them.
uninstall() {
	delete_namespaces $SYS site1 site2
	k delete $MWC stoker-injector --ignore-not-found
	k delete clusterrole,clusterrolebinding -l app.kubernetes.io/part-of=stoker --ignore-not-found
	k delete crd certificates.cert-manager.io issuers.cert-manager.io --ignore-not-found --wait=false
}
# The next case to install Stoker (e2e/cases/self_manage.sh) must not find stoker-system
# still terminating.
on_exit "uninstall; wait_for 90 namespaces_gone $SYS site1 site2"
# Objects with finalizers must not outlive the controllers that remove them.
on_exit "k patch $STK,$GS -n $ns --all --type merge -p '{\"metadata\":{\"finalizers\":null}}'"
on_exit stop_daemons

uninstall >/dev/null 2>&1 # leftovers of an interrupted run
wait_for 90 namespaces_gone $SYS site1 site2 || { not_ok "namespaces of an earlier run are still terminating"; exit 1; }

# --- builds ------------------------------------------------------------------------------
for o in base overlays/cert-manager overlays/namespaced; do
	f=$E2E_WORK/$(basename $o)
	if k kustomize "$kz/$o" >"$f.yaml" 2>"$f.err" && k kustomize "$kz/$o" >"$f.again"; then
		check "kubectl kustomize $o gives the same bytes twice" cmp -s "$f.yaml" "$f.again"
	else
		not_ok "kubectl kustomize $o: $(head -c 300 "$f.err")"
	fi
	other=$(command -v kubectl || true)
	if [ -n "$other" ] && ! cmp -s "$other" "$STOKER_KUBECTL"; then
		check "$o also builds with $other ($("$other" version --client 2>/dev/null | grep -i kustomize))" \
			"$other" kustomize "$kz/$o"
	fi
done

check "no generators (their hash suffixes change with content, not with runs)" \
	bash -c '! grep -rqE "^(configMapGenerator|secretGenerator|generators|helmCharts):" "$1"' _ "$kz"

# What the built manifests hold, checked offline. Prints "ok|not ok<TAB>description".
static_checks() {
	"$py" - "$E2E_WORK" <<'PY'
import sys, yaml, json
work = sys.argv[1]
def load(name):
    return [d for d in yaml.safe_load_all(open(f"{work}/{name}.yaml")) if d]
def res(text, ok, detail=""):
    print(("ok" if ok else "not ok") + "\t" + text + ("" if ok else ": " + str(detail)))
def find(docs, kind, name, ns=None):
    for d in docs:
        m = d["metadata"]
        if d["kind"] == kind and m["name"] == name and (ns is None or m.get("namespace") == ns):
            return d
    return None
def rules_json(obj):
    return json.dumps(sorted(json.dumps(r, sort_keys=True) for r in obj["rules"]))

daemons = ["source-controller", "sync-controller", "profile-controller",
           "notification-controller", "injector"]
base = load("base")

ns = find(base, "Namespace", "stoker-system")
res("base: Namespace stoker-system enforces Pod Security restricted",
    ns and ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") == "restricted", ns)
for kind in ("Deployment", "Service", "ServiceAccount", "Role", "RoleBinding", "NetworkPolicy",
             "PodDisruptionBudget"):
    bad = [d["metadata"]["name"] for d in base if d["kind"] == kind
           and d["metadata"].get("namespace") != "stoker-system"]
    res(f"base: every {kind} is in stoker-system", not bad, bad)

deps = {d["metadata"]["name"]: d for d in base if d["kind"] == "Deployment"}
res("base: one Deployment per daemon", sorted(deps) == sorted(daemons), sorted(deps))
for name in daemons:
    d = deps.get(name)
    if not d:
        continue
    spec = d["spec"]["template"]["spec"]
    c = spec["containers"][0]
    args = c.get("args", [])
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    want_replicas = 1 if name == "source-controller" else 2
    res(f"{name}: {want_replicas} replicas" +
        (" (artifacts live on the leader's own storage; see kustomize/README.md)" if want_replicas == 1 else ""),
        d["spec"].get("replicas") == want_replicas, d["spec"].get("replicas"))
    res(f"{name}: image ghcr.io/stoker/{name}:0.1.0", c["image"] == f"ghcr.io/stoker/{name}:0.1.0", c["image"])
    res(f"{name}: runs as its own ServiceAccount", spec.get("serviceAccountName") == name)
    res(f"{name}: --leader-elect", "--leader-elect" in args, args)
    res(f"{name}: health port 8081 named healthz, as --health-probe-bind-address says",
        ports.get("healthz") == 8081 and "--health-probe-bind-address=:8081" in args, ports)
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        g = c.get(probe, {}).get("httpGet", {})
        res(f"{name}: {probe} GET {path} on the health port",
            g.get("path") == path and g.get("port") in ("healthz", 8081), g)
    r = c.get("resources", {})
    res(f"{name}: cpu and memory requests and limits",
        all(k in r.get(w, {}) for w in ("requests", "limits") for k in ("cpu", "memory")), r)
    psc, sc = spec.get("securityContext", {}), c.get("securityContext", {})
    res(f"{name}: pod runAsNonRoot with a numeric user, seccomp RuntimeDefault",
        psc.get("runAsNonRoot") is True and isinstance(psc.get("runAsUser"), int)
        and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", psc)
    res(f"{name}: container read-only root fs, no privilege escalation, capabilities drop ALL, seccomp RuntimeDefault",
        sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
        and sc.get("runAsNonRoot") is True and sc.get("capabilities", {}).get("drop") == ["ALL"]
        and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", sc)

def service_target(svc_name, port):
    s = find(base, "Service", svc_name, "stoker-system")
    if not s:
        return None
    for p in s["spec"]["ports"]:
        if p["port"] == port:
            for d in deps.values():
                labels = d["spec"]["template"]["metadata"]["labels"]
                if all(labels.get(k) == v for k, v in s["spec"]["selector"].items()):
                    tp = p["targetPort"]
                    if isinstance(tp, str):
                        tp = {q["name"]: q["containerPort"] for q in d["spec"]["template"]["spec"]["containers"][0]["ports"]}.get(tp)
                    return d["metadata"]["name"], tp
    return None
for svc, port, want in (("source-controller", 80, ("source-controller", 9090)),
                        ("webhook-receiver", 80, ("notification-controller", 9292)),
                        ("stoker-injector", 443, ("injector", 9443))):
    got = service_target(svc, port)
    res(f"Service {svc}:{port} reaches {want[0]}:{want[1]}", got == want, got)
for name in daemons:
    got = service_target(f"{name}-metrics", 8080)
    res(f"Service {name}-metrics:8080 reaches {name}:8080", got == (name, 8080), got)

mwc = find(base, "MutatingWebhookConfiguration", "stoker-injector")
hooks = mwc["webhooks"] if mwc else []
res("webhook configuration stoker-injector with one webhook", len(hooks) == 1, hooks)
for h in hooks:
    cc = h["clientConfig"]
    res("webhook: no caBundle in the manifest", "caBundle" not in cc, cc)
    res("webhook: calls Service stoker-injector.stoker-system:443 /mutate-v1-pod",
        cc.get("service") == {"name": "stoker-injector", "namespace": "stoker-system",
                              "path": "/mutate-v1-pod", "port": 443}, cc)
    res("webhook: failurePolicy Ignore, sideEffects None, reinvocationPolicy IfNeeded",
        (h.get("failurePolicy"), h.get("sideEffects"), h.get("reinvocationPolicy")) == ("Ignore", "None", "IfNeeded"), h)
    res("webhook: namespaceSelector stoker.io/injection=enabled",
        h.get("namespaceSelector") == {"matchLabels": {"stoker.io/injection": "enabled"}}, h.get("namespaceSelector"))
    res("webhook: pods CREATE only",
        [(r["operations"], r["resources"], r["apiGroups"]) for r in h["rules"]] == [(["CREATE"], ["pods"], [""])], h["rules"])

want_ports = {"source-controller": {9090, 8080}, "sync-controller": {8080},
              "profile-controller": {8080}, "notification-controller": {9292, 8080},
              "injector": {9443, 8080}}
for name in daemons:
    pols = [d for d in base if d["kind"] == "NetworkPolicy"
            and d["spec"]["podSelector"].get("matchLabels") == {"app.kubernetes.io/name": name}]
    ports = {p["port"] for pol in pols for rule in pol["spec"].get("ingress", []) for p in rule.get("ports", [])}
    unrestricted = [rule for pol in pols for rule in pol["spec"].get("ingress", []) if not rule.get("ports")]
    res(f"NetworkPolicy: {name} accepts ingress on {sorted(want_ports[name])} only",
        len(pols) == 1 and ports == want_ports[name] and not unrestricted
        and pols[0]["spec"].get("policyTypes") == ["Ingress"], (len(pols), ports, unrestricted))

pdb = find(base, "PodDisruptionBudget", "injector", "stoker-system")
res("PodDisruptionBudget: injector minAvailable 1",
    pdb and pdb["spec"].get("minAvailable") == 1
    and pdb["spec"]["selector"] == deps["injector"]["spec"]["selector"], pdb)

agent = find(base, "ClusterRole", "stoker-agent")
res("ClusterRole stoker-agent: configmaps get/list/watch/patch, pods get, events create/patch; nothing else",
    agent and sorted((tuple(r["apiGroups"]), tuple(r["resources"]), tuple(sorted(r["verbs"]))) for r in agent["rules"])
    == sorted([(("",), ("configmaps",), ("get", "list", "patch", "watch")), (("",), ("pods",), ("get",)),
               (("",), ("events",), ("create", "patch"))]), agent and agent["rules"])
for o in ("base", "cert-manager", "namespaced"):
    bad = [(d["kind"], d["metadata"]["name"], r) for d in load(o) if d["kind"] in ("Role", "ClusterRole")
           for r in d["rules"] if "*" in r["verbs"] + r["resources"] + r.get("apiGroups", [])
           or ("secrets" in r["resources"] and set(r["verbs"]) & {"list", "watch"})]
    res(f"{o}: no wildcard rule and no list/watch on Secrets", not bad, bad)

# cert-manager overlay
cm = load("cert-manager")
cert = find(cm, "Certificate", "stoker-injector", "stoker-system")
iss = find(cm, "Issuer", "stoker-selfsigned", "stoker-system")
res("cert-manager: a self-signed Issuer and a Certificate for the injector Service",
    iss and "selfSigned" in iss["spec"] and cert and cert["spec"]["issuerRef"]["name"] == "stoker-selfsigned"
    and "stoker-injector.stoker-system.svc" in cert["spec"]["dnsNames"], cert)
inj = find(cm, "Deployment", "injector", "stoker-system")
ispec = inj["spec"]["template"]["spec"]
c = ispec["containers"][0]
mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
vols = {v["name"]: v.get("secret", {}).get("secretName") for v in ispec.get("volumes", [])}
res("cert-manager: the injector mounts the Certificate's Secret",
    cert and vols.get("webhook-tls") == cert["spec"]["secretName"] and "webhook-tls" in mounts, (vols, mounts))
res("cert-manager: the injector uses the mounted files, not self-managed TLS",
    f"--tls-cert-file={mounts.get('webhook-tls')}/tls.crt" in c["args"]
    and f"--tls-key-file={mounts.get('webhook-tls')}/tls.key" in c["args"]
    and not [a for a in c["args"] if a.split("=")[0] in ("--webhook-config-name", "--cert-dns-names", "--tls-secret-name")]
    and "--leader-elect" in c["args"], c["args"])
res("cert-manager: the Secret's files are readable by the pod's group (fsGroup)",
    ispec["securityContext"].get("fsGroup") == ispec["securityContext"].get("runAsGroup"), ispec["securityContext"])
cmw = find(cm, "MutatingWebhookConfiguration", "stoker-injector")
res("cert-manager: webhook annotated cert-manager.io/inject-ca-from: stoker-system/stoker-injector, still no caBundle",
    cmw["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from") == "stoker-system/stoker-injector"
    and all("caBundle" not in h["clientConfig"] for h in cmw["webhooks"]), cmw["metadata"])
left = [(d["kind"], d["metadata"]["name"]) for d in cm
        if d["metadata"]["name"] in ("stoker-injector-tls", "stoker-injector-webhook-config")]
res("cert-manager: no access to the TLS Secret or the webhook configuration for the injector", not left, left)

# namespaced overlay
nsd = load("namespaced")
for d in nsd:
    if d["kind"] == "Deployment":
        a = d["spec"]["template"]["spec"]["containers"][0]["args"]
        res(f"namespaced: {d['metadata']['name']} --watch-namespaces=site1,site2",
            [x for x in a if x.startswith("--watch-namespaces")] == ["--watch-namespaces=site1,site2"], a)
crs = sorted(d["metadata"]["name"] for d in nsd if d["kind"] == "ClusterRole")
res("namespaced: only cluster-scoped needs keep ClusterRoles",
    crs == ["stoker-agent", "stoker-injector-webhook-config", "stoker-source-controller-tokenreview"], crs)
for name in daemons:
    cr = find(base, "ClusterRole", f"stoker-{name}")
    for site in ("site1", "site2"):
        role = find(nsd, "Role", f"stoker-{name}", site)
        rb = find(nsd, "RoleBinding", f"stoker-{name}", site)
        res(f"namespaced: Role stoker-{name} in {site} has the base ClusterRole's rules, bound to {name}",
            role and cr and rules_json(role) == rules_json(cr) and rb
            and rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"stoker-{name}"}
            and rb["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": "stoker-system"}],
            role and cr and {"Role": role["rules"], "ClusterRole": cr["rules"], "binding": rb and rb["subjects"]})
sel = find(nsd, "MutatingWebhookConfiguration", "stoker-injector")["webhooks"][0]["namespaceSelector"]
res("namespaced: the webhook is called only in labelled site1 and site2",
    sel == {"matchLabels": {"stoker.io/injection": "enabled"},
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["site1", "site2"]}]}, sel)

# every Deployment's args, per build, for the args check below: "<build> <daemon> <arg>..."
with open(f"{work}/args.txt", "w") as out:
    for o in ("base", "cert-manager", "namespaced"):
        for d in load(o):
            if d["kind"] == "Deployment":
                out.write("\t".join([o, d["metadata"]["name"]] + d["spec"]["template"]["spec"]["containers"][0]["args"]) + "\n")
PY
}
while IFS=$'\t' read -r verdict text; do
	if [ "$verdict" = ok ]; then ok "$text"; else not_ok "$text"; fi
done < <(static_checks 2>&1 | sed 's/^\([^\t]*\)$/not ok\tstatic checks: \1/')

# Each daemon accepts its Deployment's args: run with them and a kubeconfig that does not
# exist, it gets past flag parsing (exit 2 is a usage error) and stops at the kubeconfig.
while IFS=$'\t' read -r -a row; do
	out=$("$bindir/${row[1]}" "${row[@]:2}" --kubeconfig /nonexistent 2>&1)
	rc=$?
	expect_eq "${row[0]}: ${row[1]} accepts its args" "1 cannot read kubeconfig" \
		"$rc $(grep -o 'cannot read kubeconfig' <<<"$out" | head -1)"
done <"$E2E_WORK/args.txt"

# --- base: dry run, apply, re-apply ----------------------------------------------------------
# state KUSTOMIZATION: one line per object with its generation where it has one (a
# Deployment's status moves under the controller-manager; its generation does not), else
# its resourceVersion. The same state before and after an apply: the apply wrote nothing.
state() {
	k get -k "$kz/$1" -o go-template='{{range .items}}{{.kind}}/{{.metadata.namespace}}/{{.metadata.name}} {{if .metadata.generation}}g{{.metadata.generation}}{{else}}rv{{.metadata.resourceVersion}}{{end}}{{"\n"}}{{end}}' 2>&1
}
nobjects=$(grep -c '^kind:' "$E2E_WORK/base.yaml")

out=$(k apply -k "$kz/base" --server-side --dry-run=server 2>&1)
rc=$?
# CRDs that other cases applied client-side draw kubectl's (non-fatal) warning that it
# could not migrate their last-applied annotation in a dry run.
others=$(grep -iv "serverside-applied (server dry run)$\|namespaces \"$SYS\" not found\|^Warning: failed to migrate kubectl.kubernetes.io/last-applied-configuration" <<<"$out")
expect_eq "first-install dry run fails only because namespace $SYS does not exist yet" "1 " "$rc $others"
check "a dry run creates nothing" namespaces_gone $SYS
k create namespace $SYS >/dev/null # as kustomize/README.md says, for a dry run of a first install
out=$(k apply -k "$kz/base" --server-side --dry-run=server 2>&1)
rc=$?
expect_eq "server-side dry run of the base succeeds once the namespace exists" "0 $nobjects" \
	"$rc $(grep -c 'serverside-applied (server dry run)$' <<<"$out")"
check "the dry run created nothing in $SYS" bash -c '[ -z "$("$STOKER_KUBECTL" get sa,deploy,svc -n '$SYS' -o name 2>/dev/null | grep -v "serviceaccount/default")" ]'

out=$(k apply -k "$kz/base" --server-side 2>&1)
rc=$?
expect_eq "kubectl apply -k kustomize/base --server-side" "0 $nobjects" "$rc $(grep -c 'serverside-applied$' <<<"$out")"
[ "$rc" -eq 0 ] || echo "$out" | grep -iv 'serverside-applied$' | head -5
check "the CRDs are Established" k wait --for=condition=Established --timeout=30s crd/$GS crd/$STK crd/$SP crd/$AL
s1=$(state base)
out=$(k apply -k "$kz/base" --server-side 2>&1)
expect_eq "re-applying server-side succeeds and writes nothing" "0 0" \
	"$? $(diff <(echo "$s1") <(state base) | grep -c '^[<>]')"
out=$(k diff --server-side -k "$kz/base" 2>&1)
expect_eq "kubectl diff --server-side -k kustomize/base: exit 0, no output" "0 " "$? $out"
# A client-side diff of a server-side install would only add last-applied-configuration:
# the lines "+  annotations:", "+    kubectl.kubernetes.io/last-applied-configuration: |"
# and the JSON under it.
changed=$(k diff -k "$kz/base" 2>&1 | grep '^[-+] ' |
	grep -v '^+  annotations:$\|^+    kubectl.kubernetes.io/last-applied-configuration: |$\|^+      {')
expect_eq "kubectl diff -k (client-side) after a server-side install: nothing but last-applied-configuration" "" "$changed"

# The client-side way works too: it takes the objects over (adding last-applied-configuration)
# and is a no-op from then on.
out=$(k apply -k "$kz/base" 2>&1)
expect_eq "kubectl apply -k kustomize/base (client-side) over the server-side install" 0 "$?"
s2=$(state base)
out=$(k apply -k "$kz/base" 2>&1)
expect_eq "re-applying client-side succeeds and writes nothing" "0 0" \
	"$? $(diff <(echo "$s2") <(state base) | grep -c '^[<>]')"
out=$(k diff -k "$kz/base" 2>&1)
expect_eq "kubectl diff -k kustomize/base: exit 0, no output" "0 " "$? $out"
k apply -k "$kz/base" --server-side >/dev/null 2>&1
out=$(k diff --server-side -k "$kz/base" 2>&1)
expect_eq "back to server-side apply: kubectl diff --server-side stays empty" "0 " "$? $out"

live_mwc=$(k get $MWC stoker-injector -o jsonpath='{.webhooks[0].failurePolicy} {.webhooks[0].namespaceSelector.matchLabels} {.webhooks[0].clientConfig.service.name}/{.webhooks[0].clientConfig.service.namespace} caBundle={.webhooks[0].clientConfig.caBundle}')
expect_eq "live webhook configuration: Ignore, the namespaceSelector, the Service, no caBundle" \
	'Ignore {"stoker.io/injection":"enabled"} stoker-injector/stoker-system caBundle=' "$live_mwc"
# Every Deployment's pod template passes admission in $SYS (Pod Security "restricted", the
# ServiceAccount check): a server-side dry run of the template as a Pod goes through the
# same admission as the ReplicaSets' pods, whenever the controller-manager gets to them.
while IFS=$'\t' read -r dname pod; do
	out=$(k create -n $SYS --dry-run=server -o name -f - <<<"$pod" 2>&1)
	expect_eq "$dname: its pod template is admitted under Pod Security restricted" "pod/$dname-admission" "$out"
done < <(/usr/bin/python3 - "$E2E_WORK/base.yaml" <<'PY'
import json, sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "Deployment":
        t = d["spec"]["template"]
        pod = {"apiVersion": "v1", "kind": "Pod", "spec": t["spec"],
               "metadata": {"name": d["metadata"]["name"] + "-admission", "labels": t["metadata"].get("labels", {})}}
        print(d["metadata"]["name"] + "\t" + json.dumps(pod))
PY
)
# The ReplicaSets create the pods (never scheduled here). Should the controller-manager not
# have created them after 30 s, the case shows what it sees, then gives it more time: the
# assertion is about the install, not about the controller-manager's latency.
npods() { k get pods -n $SYS -o name | wc -l; }
all_pods() { [ "$(npods)" -eq 9 ]; }
if ! wait_for 30 all_pods; then
	echo "# after 30 s, $(npods) of 9 pods exist in $SYS:"
	k get deploy,rs,pods -n $SYS 2>&1 | sed 's/^/#   /'
	k get events -n $SYS 2>&1 | tail -n 20 | sed 's/^/#   /'
	kcm=${STOKER_E2E_DIR:-}/pids/kube-controller-manager
	if [ -f "$kcm" ]; then
		kill -0 "$(cat "$kcm")" 2>/dev/null && echo "# kube-controller-manager is running" ||
			echo "# kube-controller-manager is not running"
		tail -n 30 "$STOKER_E2E_DIR/logs/kube-controller-manager.log" | sed 's/^/#   /'
	fi
	wait_for 300 all_pods
fi
expect_eq "the ReplicaSets create all 9 pods" 9 "$(npods)"
fails=$(k get events -n $SYS --field-selector reason=FailedCreate -o jsonpath='{.items[*].message}' 2>&1) ||
	fails="cannot list events: $fails"
expect_eq "no FailedCreate events in $SYS" "" "$fails"

# --- RBAC: kubectl auth can-i --------------------------------------------------------------
# can SA VERB RESOURCE [ARGS...] / cannot ...: SA is a daemon's service account in stoker-system.
can_i() { k auth can-i --as="system:serviceaccount:$1" "${@:2}" >/dev/null 2>&1; }
can() { if can_i "$SYS:$1" "${@:2}"; then ok "$1 can ${*:2}"; else not_ok "$1 can ${*:2}"; fi; }
cannot() { if can_i "$SYS:$1" "${@:2}"; then not_ok "$1 cannot ${*:2}"; else ok "$1 cannot ${*:2}"; fi; }
# Informers list and watch across the cluster; single objects are read and written in the
# objects' namespace (this case's).
informs() { local sa=$1 r; shift; for r in "$@"; do can $sa list $r -A; can $sa watch $r -A; done; }
leader() { # SA: its own Lease in stoker-system, and not another daemon's
	can $1 create $LEASE -n $SYS
	can $1 get $LEASE/$1-leader-election -n $SYS
	can $1 update $LEASE/$1-leader-election -n $SYS
	cannot $1 update $LEASE/$2-leader-election -n $SYS
	cannot $1 delete $LEASE/$1-leader-election -n $SYS
}
never() { # SA: what no daemon may do
	cannot $1 list secrets -A
	cannot $1 watch secrets -A
	cannot $1 list secrets -n $ns
	cannot $1 create pods --subresource=exec -n $ns
	cannot $1 create deployments.apps -n $ns
	cannot $1 create clusterroles.rbac.authorization.k8s.io
	cannot $1 create rolebindings.rbac.authorization.k8s.io -n $ns
	cannot $1 delete pods -n $ns
}
records() { can $1 create events -n $ns; can $1 patch events -n $ns; }

sa=source-controller
informs $sa $GS
can $sa get $GS -n $ns
can $sa patch $GS -n $ns
can $sa patch $GS --subresource=status -n $ns
can $sa get secrets -n $ns
can $sa create $TR
records $sa
leader $sa sync-controller
never $sa
cannot $sa delete $GS -n $ns
cannot $sa patch $STK -n $ns
cannot $sa get configmaps -n $ns

sa=sync-controller
informs $sa $STK $SP $GS pods configmaps
can $sa patch $STK -n $ns
can $sa patch $STK --subresource=status -n $ns
for v in create patch delete; do can $sa $v $GS -n $ns; can $sa $v configmaps -n $ns; done
can $sa get secrets -n $ns
records $sa
leader $sa source-controller
never $sa
cannot $sa patch pods -n $ns
cannot $sa update $STK -n $ns
cannot $sa create $TR

sa=profile-controller
informs $sa $SP $STK pods configmaps
can $sa patch $SP --subresource=status -n $ns
records $sa
leader $sa sync-controller
never $sa
cannot $sa get secrets -n $ns
cannot $sa patch $SP -n $ns
for v in create patch delete; do cannot $sa $v configmaps -n $ns; done

sa=notification-controller
informs $sa $AL $STK $GS $SP events
can $sa patch $AL --subresource=status -n $ns
can $sa get $STK -n $ns
can $sa patch $STK -n $ns
can $sa get secrets -n $ns
records $sa
leader $sa injector
never $sa
cannot $sa patch $GS -n $ns
cannot $sa delete configmaps -n $ns
cannot $sa get configmaps -n $ns

sa=injector
informs $sa $STK $SP $GS
can $sa list $MWC/stoker-injector
can $sa watch $MWC/stoker-injector
can $sa patch $MWC/stoker-injector
cannot $sa patch $MWC/some-other-webhook
cannot $sa list $MWC
can $sa create secrets -n $SYS
can $sa get secrets/stoker-injector-tls -n $SYS
can $sa update secrets/stoker-injector-tls -n $SYS
cannot $sa get secrets/some-other-secret -n $SYS
cannot $sa get secrets -n $ns
cannot $sa create secrets -n $ns
leader $sa notification-controller
never $sa
cannot $sa create events -n $ns
cannot $sa delete configmaps -n $ns

# The agent runs as the gateway pod's service account; users bind stoker-agent per namespace.
k create serviceaccount gateway -n $ns >/dev/null
k create rolebinding stoker-agent -n $ns --clusterrole=stoker-agent --serviceaccount=$ns:gateway >/dev/null
agent() { if can_i "$ns:gateway" "$@"; then echo yes; else echo no; fi; }
for a in "get configmaps" "list configmaps" "watch configmaps" "patch configmaps" "get pods" \
	"create events" "patch events"; do
	expect_eq "agent (stoker-agent bound in its namespace) can $a" yes "$(agent $a -n $ns)"
done
for a in "get secrets" "list secrets" "watch secrets" "create secrets" "delete configmaps" \
	"create configmaps" "patch pods" "create pods --subresource=exec" "list pods"; do
	expect_eq "agent cannot $a" no "$(agent $a -n $ns)"
done
expect_eq "agent cannot read ConfigMaps of another namespace" no "$(agent get configmaps -n $SYS)"
expect_eq "agent cannot read Secrets anywhere" no "$(agent get secrets -A)"

# --- the daemons, with their service accounts' tokens ----------------------------------------
server=$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')
k config view --raw --minify --flatten -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' |
	base64 -d >"$E2E_WORK/ca.crt"
kubeconfig_for() { # SA: a kubeconfig with a token of stoker-system:SA, namespace stoker-system
	local tok
	tok=$(k create token "$1" -n $SYS --duration 1h)
	cat >"$E2E_WORK/$1.kubeconfig" <<Y
apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: "$server", certificate-authority: "$E2E_WORK/ca.crt"}}]
users: [{name: $1, user: {token: "$tok"}}]
contexts: [{name: $1, context: {cluster: e2e, user: $1, namespace: $SYS}}]
current-context: $1
Y
}
declare -A health dpid
art_port=$(free_port) recv_port=$(free_port)
# run TAG: starts every daemon with its live Deployment's args, then the overrides a process
# on this machine needs (its token, loopback addresses, a storage directory).
run() {
	local d args extra
	for d in $DAEMONS; do
		mapfile -t args < <(k get deploy "$d" -n $SYS -o jsonpath='{range .spec.template.spec.containers[0].args[*]}{@}{"\n"}{end}')
		health[$d]=$(free_port)
		extra=(--kubeconfig "$E2E_WORK/$d.kubeconfig" --health-probe-bind-address "127.0.0.1:${health[$d]}"
			--metrics-bind-address 127.0.0.1:0)
		case $d in
		source-controller) extra+=(--artifact-bind-address "127.0.0.1:$art_port" --storage-path "$E2E_WORK/storage-$1"
			--artifact-base-url "http://127.0.0.1:$art_port") ;;
		notification-controller) extra+=(--receiver-bind-address "127.0.0.1:$recv_port") ;;
		injector) extra+=(--webhook-bind-address "127.0.0.1:$(free_port)") ;;
		esac
		"$bindir/$d" "${args[@]}" "${extra[@]}" >"$E2E_WORK/$1-$d.log" 2>&1 &
		pids+=("$!")
		dpid[$d]=$!
	done
}
ready() { curl -fsS "http://127.0.0.1:${health[$1]}/readyz" >/dev/null; }
holder() { k get lease "$1-leader-election" -n $SYS -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
leads() { [[ $(holder "$1") == *_${dpid[$1]} ]]; } # identity <host>_<pid>
started() { # TAG: every daemon ready (its informers could list with its RBAC) and leading
	local d
	for d in $DAEMONS; do
		if wait_for 20 ready $d && wait_for 20 leads $d; then
			ok "$1: $d is ready and holds its Lease"
		else
			not_ok "$1: $d is ready and holds its Lease: $(tail -3 "$E2E_WORK/$1-$d.log")"
		fi
	done
}
# The daemons log every forbidden request with the API server's message ("... is
# forbidden: User ... cannot ...") — reconciles, informers and the Lease alike.
forbidden() { # TAG
	local f n
	for f in "$E2E_WORK/$1"-*.log; do
		n=$(grep -ci 'forbidden' "$f")
		expect_eq "$1: no request of $(basename "$f" .log) was forbidden" 0 "$n"
		[ "$n" -eq 0 ] || grep -i 'forbidden' "$f" | head -3
	done
}
event() { # NAMESPACE OBJECT REASON: such an Event exists
	[ -n "$(k get events -n "$1" --field-selector "involvedObject.name=$2,reason=$3" -o name)" ]
}

# A service account without any rule: the daemon says what it may not do, in its log and
# on /readyz, instead of waiting silently.
k create serviceaccount nobody -n $SYS >/dev/null
kubeconfig_for nobody
nobody_health=$(free_port)
"$bindir/sync-controller" --kubeconfig "$E2E_WORK/nobody.kubeconfig" --leader-elect=true \
	--leader-election-namespace $SYS --health-probe-bind-address "127.0.0.1:$nobody_health" \
	--metrics-bind-address 127.0.0.1:0 >"$E2E_WORK/nobody.log" 2>&1 &
nobody_pid=$!
pids+=("$nobody_pid")
logged() { grep -q "$1" "$E2E_WORK/nobody.log"; }
check "no RBAC: the informers log the forbidden list" \
	wait_for 20 logged '"msg":"cannot list or watch; retrying".*"resource":"stokers".*forbidden'
check "no RBAC: the Lease failure is logged" \
	wait_for 20 logged '"msg":"cannot acquire or renew the leader lease; retrying".*forbidden'
readyz=$(curl -sS "http://127.0.0.1:$nobody_health/readyz?verbose" 2>&1)
expect_contains "no RBAC: /readyz names the forbidden list" "cache not synced yet (list: " "$readyz"
expect_eq "no RBAC: each message is logged once, not once per retry" "[]" "$(/usr/bin/python3 -c '
import collections, json, sys
seen = collections.Counter()
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("msg", "").startswith("cannot"):
        seen[(r["msg"], r.get("resource", ""), r.get("namespace", ""), r.get("error", ""))] += 1
print(json.dumps([k for k, n in seen.items() if n > 1]))' "$E2E_WORK/nobody.log")"
kill "$nobody_pid"
wait "$nobody_pid" 2>/dev/null

for d in $DAEMONS; do kubeconfig_for $d; done
run base
started base
has_ca() { [ -n "$(k get $MWC stoker-injector -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" ]; }
check "the injector created its Secret stoker-injector-tls" wait_for 10 k get secret stoker-injector-tls -n $SYS
check "the injector published the caBundle" wait_for 10 has_ca

# A repository, the Secrets objects name, and one object of each kind.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
git init -q -b main "$E2E_WORK/work" && mkdir -p "$E2E_WORK/work/services/site/projects/Site" &&
	echo '{}' >"$E2E_WORK/work/services/site/projects/Site/project.json" &&
	git -C "$E2E_WORK/work" add -A && git -C "$E2E_WORK/work" -c user.name=e2e -c user.email=e2e@example.invalid \
	commit -q -m init && git clone -q --bare "$E2E_WORK/work" "$E2E_WORK/site.git"
url=file://$E2E_WORK/site.git
k create secret generic git-token -n $ns --from-literal=token=unused >/dev/null
k create secret generic gw-key -n $ns --from-literal=apiKey=k >/dev/null
k create secret generic hook -n $ns --from-literal=token=s3cret >/dev/null
k apply -n $ns -f - >/dev/null <<Y
apiVersion: source.stoker.io/v1alpha1
kind: GitSource
metadata: {name: src}
spec:
  url: "$url"
  ref: {branch: main}
  auth: {token: {secretRef: {name: git-token, key: token}}}
---
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: plant}
spec:
  git: {repo: "$url", ref: main}
  gateway: {apiKeySecretRef: {name: gw-key, key: apiKey}}
  webhook: {secretRef: {name: hook, key: token}}
---
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: site}
spec:
  mappings: [{source: services/site/projects, destination: projects}]
---
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: broken}
spec:
  mappings: [{source: "services/{{.Nope}}", destination: projects}]
---
apiVersion: notification.stoker.io/v1alpha1
kind: Alert
metadata: {name: ops}
spec:
  provider: {type: generic, address: "http://127.0.0.1:9/hook"}
  eventSources: [{kind: Stoker, name: "*"}]
Y
is() { # RESOURCE NAME CONDITION STATUS [NAMESPACE]
	[ "$(k get "$1" "$2" -n "${5:-$ns}" -o jsonpath="{.status.conditions[?(@.type==\"$3\")].status}")" = "$4" ]
}
check "source-controller: GitSource fetched with its Secret, artifact published (Ready=True)" wait_for 20 is $GS src Ready True
expect_eq "source-controller: finalizer added" source.stoker.io/finalizer "$(k get $GS src -n $ns -o jsonpath='{.metadata.finalizers}' | tr -d '[]"')"
check "source-controller: Event NewRevision recorded" wait_for 10 event $ns src NewRevision
artifact=$(k get $GS src -n $ns -o jsonpath='{.status.artifact.url}')
token=$(k create token default -n $ns --audience stoker-source --duration 10m)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$artifact")
expect_eq "source-controller: artifact served to a pod token of the namespace (TokenReview)" 200 "$code"
check "sync-controller: created the owned GitSource plant-git" wait_for 20 k get $GS plant-git -n $ns
check "sync-controller: created stoker-metadata-plant and stoker-status-plant" \
	wait_for 20 k get configmap stoker-metadata-plant stoker-status-plant -n $ns
check "sync-controller: wrote the Stoker's status" wait_for 20 bash -c '[ -n "$("$STOKER_KUBECTL" get '$STK' plant -n '$ns' -o jsonpath="{.status.conditions}")" ]'
check "profile-controller: SyncProfile Accepted" wait_for 20 is $SP site Accepted True
check "profile-controller: Event ValidationFailed recorded for a broken profile" wait_for 20 event $ns broken ValidationFailed
check "notification-controller: Alert Ready" wait_for 20 is $AL ops Ready True
code=$(curl -s -o "$E2E_WORK/recv.out" -w '%{http_code}' -X POST -H 'Authorization: Bearer s3cret' \
	-H 'Content-Type: application/json' --data '{"ref":"v2"}' "http://127.0.0.1:$recv_port/webhook/$ns/plant")
expect_eq "notification-controller: webhook accepted (Secret read, Stoker patched)" 202 "$code"
expect_eq "the Stoker carries the requested ref" v2 \
	"$(k get $STK plant -n $ns -o jsonpath='{.metadata.annotations.stoker\.io/requested-ref}')"
check "sync-controller: copied the requested ref onto plant-git" wait_for 20 bash -c \
	'[ "$("$STOKER_KUBECTL" get '$GS' plant-git -n '$ns' -o jsonpath="{.metadata.annotations.stoker\.io/requested-ref}")" = v2 ]'
check "notification-controller: Event WebhookReceived recorded" wait_for 10 event $ns plant WebhookReceived
k patch $STK plant -n $ns --type merge -p '{"spec":{"paused":true}}' >/dev/null
check "sync-controller: Event Paused recorded" wait_for 20 event $ns plant Paused
check "deleting the Stoker goes through its finalizer" k delete $STK plant -n $ns --timeout=20s
check "sync-controller: deleted plant-git and both ConfigMaps" wait_for 20 bash -c \
	'! "$STOKER_KUBECTL" get configmap stoker-metadata-plant stoker-status-plant -n '$ns' 2>/dev/null | grep -q stoker-'
check "deleting the GitSource goes through its finalizer" k delete $GS src plant-git -n $ns --ignore-not-found --timeout=20s
k delete $SP site broken -n $ns >/dev/null
k delete $AL ops -n $ns >/dev/null
sleep 1 # one more round of the notification-controller's deliveries and events
stop_daemons
forbidden base

# GitOps: re-applying the base leaves what the injector wrote alone.
bundle=$(k get $MWC stoker-injector -o jsonpath='{.webhooks[0].clientConfig.caBundle}')
out=$(k diff --server-side -k "$kz/base" 2>&1)
expect_eq "with the injector's caBundle and Secret in place, kubectl diff --server-side is empty" "0 " "$? $out"
out=$(k diff -k "$kz/base" 2>&1)
expect_eq "... and kubectl diff -k is empty" "0 " "$? $out"
k apply -k "$kz/base" --server-side >/dev/null 2>&1 && k apply -k "$kz/base" >/dev/null 2>&1
expect_eq "re-applying (server-side, then client-side) keeps the caBundle" "$bundle" \
	"$(k get $MWC stoker-injector -o jsonpath='{.webhooks[0].clientConfig.caBundle}')"
k apply -k "$kz/base" --server-side >/dev/null 2>&1

# --- cert-manager overlay ----------------------------------------------------------------------
if ! k get crd certificates.cert-manager.io >/dev/null 2>&1; then
	out=$(k apply -k "$kz/overlays/cert-manager" --server-side --dry-run=server 2>&1)
	rc=$?
	missing=$(grep -o 'no matches for kind "[A-Za-z]*" in version "cert-manager.io/v1"' <<<"$out" | sort | tr '\n' ';')
	others=$(grep -i 'error' <<<"$out" | grep -vc 'cert-manager.io/v1')
	expect_eq "without cert-manager the dry run fails on exactly Certificate and Issuer" \
		"1 no matches for kind \"Certificate\" in version \"cert-manager.io/v1\";no matches for kind \"Issuer\" in version \"cert-manager.io/v1\"; 0" \
		"$rc $missing $others"
fi
# Stand-ins for cert-manager's CRDs: the kinds, without the schema or the controller.
for kind in Certificate Issuer; do
	plural=$(tr 'A-Z' 'a-z' <<<"${kind}s")
	k apply --server-side -f - >/dev/null <<Y
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: $plural.cert-manager.io}
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {kind: $kind, plural: $plural, singular: $(tr 'A-Z' 'a-z' <<<"$kind"), listKind: ${kind}List}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
Y
done
k wait --for=condition=Established --timeout=30s crd/certificates.cert-manager.io crd/issuers.cert-manager.io >/dev/null
ncm=$(grep -c '^kind:' "$E2E_WORK/cert-manager.yaml")
for i in 1 2 3 4 5 6 7 8 9 10; do # discovery of the new kinds can lag a moment
	out=$(k apply -k "$kz/overlays/cert-manager" --server-side --dry-run=server 2>&1) && break
	sleep 0.5
done
expect_eq "cert-manager overlay: server-side dry run succeeds" "$ncm" "$(grep -c 'serverside-applied (server dry run)$' <<<"$out")"
out=$(k apply -k "$kz/overlays/cert-manager" --server-side 2>&1)
expect_eq "cert-manager overlay: server-side apply" "0 $ncm" "$? $(grep -c 'serverside-applied$' <<<"$out")"
out=$(k diff --server-side -k "$kz/overlays/cert-manager" 2>&1)
expect_eq "cert-manager overlay: kubectl diff --server-side is empty" "0 " "$? $out"
expect_eq "cert-manager overlay: the live webhook configuration asks for CA injection" stoker-system/stoker-injector \
	"$(k get $MWC stoker-injector -o jsonpath='{.metadata.annotations.cert-manager\.io/inject-ca-from}')"
expect_eq "cert-manager overlay: the live injector mounts the Certificate's Secret" stoker-injector-cert \
	"$(k get deploy injector -n $SYS -o jsonpath='{.spec.template.spec.volumes[?(@.name=="webhook-tls")].secret.secretName}')"
check "cert-manager overlay: the new injector pods are admitted (restricted)" wait_for 20 bash -c \
	'"$STOKER_KUBECTL" get pods -n '$SYS' -l app.kubernetes.io/name=injector -o jsonpath="{.items[*].spec.volumes[*].name}" | grep -q webhook-tls'

# --- namespaced overlay ----------------------------------------------------------------------
# A namespaced install is its own install: drop the base's cluster-wide grants first
# (apply never deletes), then apply the overlay.
k create namespace site1 >/dev/null
k create namespace site2 >/dev/null
k delete clusterrole,clusterrolebinding -l app.kubernetes.io/part-of=stoker >/dev/null
nns=$(grep -c '^kind:' "$E2E_WORK/namespaced.yaml")
out=$(k apply -k "$kz/overlays/namespaced" --server-side --dry-run=server 2>&1)
expect_eq "namespaced overlay: server-side dry run succeeds" "0 $nns" "$? $(grep -c 'serverside-applied (server dry run)$' <<<"$out")"
out=$(k apply -k "$kz/overlays/namespaced" --server-side 2>&1)
expect_eq "namespaced overlay: server-side apply" "0 $nns" "$? $(grep -c 'serverside-applied$' <<<"$out")"
s3=$(state overlays/namespaced)
out=$(k apply -k "$kz/overlays/namespaced" --server-side 2>&1)
expect_eq "namespaced overlay: re-applying writes nothing" "0 0" "$? $(diff <(echo "$s3") <(state overlays/namespaced) | grep -c '^[<>]')"
out=$(k diff --server-side -k "$kz/overlays/namespaced" 2>&1)
expect_eq "namespaced overlay: kubectl diff --server-side is empty" "0 " "$? $out"

informs_in() { local sa=$1 r; shift; for r in "$@"; do can $sa list $r -n $site; can $sa watch $r -n $site; done; }
for site in site1 site2; do
	informs_in source-controller $GS
	can source-controller patch $GS --subresource=status -n $site
	can source-controller get secrets -n $site
	informs_in sync-controller $STK $SP $GS pods configmaps
	can sync-controller delete configmaps -n $site
	can sync-controller create $GS -n $site
	informs_in profile-controller $SP $STK pods configmaps
	can profile-controller patch $SP --subresource=status -n $site
	informs_in notification-controller $AL $STK $GS $SP events
	can notification-controller patch $STK -n $site
	informs_in injector $STK $SP $GS
done
for d in $DAEMONS; do
	r=$GS
	[ $d = profile-controller ] && r=$SP
	[ $d = notification-controller ] && r=$AL
	cannot $d list $r -A
	cannot $d list $r -n $ns
	[ $d = injector ] || [ $d = profile-controller ] || cannot $d get secrets -n $ns
done
can source-controller create $TR
can injector patch $MWC/stoker-injector
can injector get secrets/stoker-injector-tls -n $SYS

run namespaced
started namespaced
k apply -n site1 -f - >/dev/null <<Y
apiVersion: source.stoker.io/v1alpha1
kind: GitSource
metadata: {name: src}
spec: {url: "$url", ref: {branch: main}}
Y
k apply -n $ns -f - >/dev/null <<Y
apiVersion: source.stoker.io/v1alpha1
kind: GitSource
metadata: {name: unwatched}
spec: {url: "$url", ref: {branch: main}}
Y
check "namespaced: a GitSource in site1 is reconciled" wait_for 20 is $GS src Ready True site1
expect_eq "namespaced: a GitSource in an unwatched namespace is left alone" "" \
	"$(k get $GS unwatched -n $ns -o jsonpath='{.metadata.finalizers}{.status}')"
check "namespaced: deleting the site1 GitSource goes through its finalizer" k delete $GS src -n site1 --timeout=20s
k delete $GS unwatched -n $ns >/dev/null
stop_daemons
forbidden namespaced
