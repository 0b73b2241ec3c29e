#!/usr/bin/python3
# Fast API-server client for bench/sync/run.sh: bulk setup, convergence polling, write
# counting and the write-floor baseline. Standard library (+ Debian's yaml) only; one
# persistent HTTPS connection per worker thread, TLS settings taken from $KUBECONFIG
# (file references or embedded base64 data).
#
#   kube.py load NAMESPACES STOKERS PODS_PER_STOKER THREADS
#   kube.py converge SINCE STOKERS PODS_PER_STOKER PID TIMEOUT     -> seconds
#   kube.py metrics-wait SINCE URL STOKERS PID TIMEOUT             -> seconds
#   kube.py snapshot FILE          resourceVersions of Stokers, their ConfigMaps, Events
#   kube.py diff FILE              what changed since the snapshot
#   kube.py touch STOKERS NAMESPACES THREADS                       -> seconds
#   kube.py watch FILE             until killed: one line per write to a Stoker, to a
#                                  ConfigMap labelled stoker.io/cr-name or to an Event in
#                                  bench-* (FILE.ready appears once the watches are open)
#   kube.py writes FILE SINCE      summary of what watch saw
import atexit, base64, concurrent.futures as cf, http.client, json, os, ssl, sys, tempfile
import shutil, signal, threading, time, urllib.parse
import yaml

COMMIT = "2c6a0646d007574bbb6d7a3ef0c7d4ce9badfafa"
DIGEST = "sha256:" + "9f2c" * 16
T0 = "2026-01-01T00:00:00Z"
MERGE = "application/merge-patch+json"


class Kube:
    def __init__(self, path):
        with open(path) as f:
            cfg = yaml.safe_load(f)
        ctx_name = cfg.get("current-context")
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next((u["user"] for u in cfg.get("users", []) if u["name"] == ctx.get("user")), {})
        self.tmp = None
        base = os.path.dirname(os.path.abspath(path))

        def material(obj, key):  # file path for key or key-data, or None
            if obj.get(key + "-data"):
                if not self.tmp:
                    self.tmp = tempfile.mkdtemp(prefix="stoker-bench-kube.")
                    atexit.register(shutil.rmtree, self.tmp, True)
                p = os.path.join(self.tmp, key)
                with open(p, "wb") as f:
                    f.write(base64.b64decode(obj[key + "-data"]))
                return p
            if obj.get(key):
                return os.path.join(base, obj[key])
            return None

        u = urllib.parse.urlsplit(cluster["server"])
        self.host, self.port = u.hostname, u.port or 443
        self.prefix = u.path.rstrip("/")
        ctx_ssl = ssl.create_default_context(cafile=material(cluster, "certificate-authority"))
        if cluster.get("insecure-skip-tls-verify"):
            ctx_ssl.check_hostname = False
            ctx_ssl.verify_mode = ssl.CERT_NONE
        cert, key = material(user, "client-certificate"), material(user, "client-key")
        if cert:
            ctx_ssl.load_cert_chain(cert, key)
        self.ssl = ctx_ssl
        self.headers = {"Accept": "application/json"}
        if user.get("token"):
            self.headers["Authorization"] = "Bearer " + user["token"]
        self.local = threading.local()

    def _conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = self.local.conn = http.client.HTTPSConnection(self.host, self.port,
                                                              context=self.ssl, timeout=60)
        return c

    def request(self, method, path, body=None, ctype="application/json", ok=(200, 201)):
        data = json.dumps(body).encode() if body is not None else None
        h = dict(self.headers)
        if data is not None:
            h["Content-Type"] = ctype
        for attempt in range(2):
            c = self._conn()
            try:
                c.request(method, self.prefix + path, body=data, headers=h)
                r = c.getresponse()
                raw = r.read()
                break
            except (http.client.HTTPException, OSError):
                c.close()
                self.local.conn = None
                if attempt:
                    raise
        if r.status not in ok:
            raise RuntimeError("%s %s: %d %s" % (method, path, r.status, raw[:300].decode(errors="replace")))
        return json.loads(raw) if raw else None

    def retry(self, method, path, body=None, ctype="application/json", tries=60):
        """For writes that may race the namespace's default ServiceAccount and the like."""
        for i in range(tries):
            try:
                return self.request(method, path, body, ctype)
            except RuntimeError:
                if i == tries - 1:
                    raise
                time.sleep(0.5)

    def list(self, path, **q):
        items, cont = [], None
        while True:
            qq = dict(q, limit=500)
            if cont:
                qq["continue"] = cont
            r = self.request("GET", path + "?" + urllib.parse.urlencode(qq))
            items += r["items"]
            cont = r["metadata"].get("continue")
            if not cont:
                return items


def kube():
    return Kube(os.environ["KUBECONFIG"])


def run_all(threads, jobs):
    with cf.ThreadPoolExecutor(threads) as ex:
        for f in [ex.submit(j) for j in jobs]:
            f.result()


def ns_of(i, nns):
    return "bench-%d" % (i % nns)


def load(nns, nstk, npods, threads):
    k = kube()
    t_all = time.monotonic()
    phases = []

    def phase(name, jobs):
        t = time.monotonic()
        run_all(threads, jobs)
        phases.append("%s %d in %.1fs" % (name, len(jobs), time.monotonic() - t))

    nss = ["bench-%d" % n for n in range(nns)]
    phase("namespaces", [lambda n=n: k.request("POST", "/api/v1/namespaces",
                                                 {"apiVersion": "v1", "kind": "Namespace",
                                                  "metadata": {"name": n}}) for n in nss])

    def source(n):
        g = "/apis/source.stoker.io/v1alpha1/namespaces/%s/gitsources" % n
        k.retry("POST", g, {"apiVersion": "source.stoker.io/v1alpha1", "kind": "GitSource",
                            "metadata": {"name": "repo"},
                            "spec": {"url": "https://example.invalid/repo.git",
                                     "ref": {"branch": "main"}}})
        k.request("PATCH", g + "/repo/status", {"status": {
            "observedGeneration": 1,
            "artifact": {"revision": "main@sha1:" + COMMIT, "commit": COMMIT, "ref": "main",
                         "url": "http://src.invalid/gitsource/%s/repo/%s.tar.gz" % (n, COMMIT),
                         "digest": DIGEST},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                            "message": "stored", "lastTransitionTime": T0}]}}, MERGE)
        p = "/apis/stoker.io/v1alpha1/namespaces/%s/syncprofiles" % n
        k.retry("POST", p, {"apiVersion": "stoker.io/v1alpha1", "kind": "SyncProfile",
                            "metadata": {"name": "site"},
                            "spec": {"mappings": [{"source": "sites/{{.GatewayName}}",
                                                   "destination": "projects"}]}})
        # What the profile-controller (not running here) would write, so ProfilesReady holds.
        conds = [{"type": t, "status": "True", "reason": r, "message": m, "observedGeneration": 1,
                  "lastTransitionTime": T0}
                 for t, r, m in (("Accepted", "ValidationPassed", "valid"),
                                 ("DependenciesMet", "NoDependencies", "no dependencies"),
                                 ("Ready", "Succeeded", "accepted"))]
        k.request("PATCH", p + "/site/status",
                  {"status": {"observedGeneration": 1, "conditions": conds}}, MERGE)

    phase("gitsources+syncprofiles", [lambda n=n: source(n) for n in nss])

    phase("stokers", [lambda i=i: k.request(
        "POST", "/apis/stoker.io/v1alpha1/namespaces/%s/stokers" % ns_of(i, nns),
        {"apiVersion": "stoker.io/v1alpha1", "kind": "Stoker", "metadata": {"name": "stk-%d" % i},
         "spec": {"sourceRef": {"kind": "GitSource", "name": "repo"}}}) for i in range(nstk)])

    def pod(i, j):
        cr, gw = "stk-%d" % i, "stk-%d-gw-%d" % (i, j)
        path = "/api/v1/namespaces/%s/pods" % ns_of(i, nns)
        k.retry("POST", path, {  # retried: the namespace's default ServiceAccount may lag
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": gw, "annotations": {
                "stoker.io/inject": "true", "stoker.io/cr-name": cr,
                "stoker.io/sync-profile": "site", "stoker.io/gateway-name": gw}},
            "spec": {"initContainers": [{"name": "stoker-agent", "image": "agent",
                                         "restartPolicy": "Always"}],
                     "containers": [{"name": "gateway", "image": "ignition"}]}})
        k.request("PATCH", path + "/%s/status" % gw, {"status": {"phase": "Running"}}, MERGE)

    phase("pods", [lambda i=i, j=j: pod(i, j) for i in range(nstk) for j in range(npods)])

    report = json.dumps({"syncStatus": "Synced", "syncedCommit": COMMIT, "syncedRef": "main",
                         "syncProfile": "site", "agentVersion": "0.1.0"}, separators=(",", ":"))
    phase("status configmaps", [lambda i=i: k.request(
        "POST", "/api/v1/namespaces/%s/configmaps" % ns_of(i, nns),
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "stoker-status-stk-%d" % i, "labels": {"stoker.io/cr-name": "stk-%d" % i}},
         "data": {"stk-%d-gw-%d" % (i, j): report for j in range(npods)}}) for i in range(nstk)])
    print("%.1f %s" % (time.monotonic() - t_all, "; ".join(phases)))


def alive(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return "\nState:\tZ" not in f.read()
    except OSError:
        return False


def stoker_done(s, npods):
    st = s.get("status") or {}
    if st.get("observedGeneration") != s["metadata"].get("generation"):
        return False
    return any(c.get("type") == "AllGatewaysSynced" and c.get("status") == "True"
               and c.get("message") == "%d/%d gateways synced" % (npods, npods)
               for c in st.get("conditions") or [])


def converge(since, nstk, npods, pid, timeout):
    k = kube()
    last = ""
    while True:
        stks = k.list("/apis/stoker.io/v1alpha1/stokers")
        cms = k.list("/api/v1/configmaps", labelSelector="stoker.io/cr-name")
        meta = {(c["metadata"]["namespace"], c["metadata"]["name"]) for c in cms}
        done = sum(1 for s in stks if stoker_done(s, npods) and
                   (s["metadata"]["namespace"], "stoker-metadata-" + s["metadata"]["name"]) in meta)
        now = time.time()
        if done >= nstk:
            print("%.1f" % (now - since))
            return 0
        last = "%d/%d Stokers converged after %.0f s" % (done, nstk, now - since)
        if not alive(pid):
            print("controller exited; " + last, file=sys.stderr)
            return 1
        if now - since > timeout:
            print("timeout; " + last, file=sys.stderr)
            bad = [s for s in stks if not stoker_done(s, npods)][:3]
            for s in bad:
                print("  e.g. %s/%s: %s" % (s["metadata"]["namespace"], s["metadata"]["name"],
                                             json.dumps((s.get("status") or {}).get("conditions"))),
                      file=sys.stderr)
            return 1
        time.sleep(0.5)


def reconciles(url):
    import urllib.request
    try:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return None
    n = 0.0
    for line in text.splitlines():
        if line.startswith("stoker_reconcile_total{") and 'result="success"' in line and \
                ('kind="' not in line or 'kind="Stoker"' in line):
            n += float(line.rsplit(" ", 1)[1])
    return n


def metrics_wait(since, url, nstk, pid, timeout):
    n = None
    while True:
        n = reconciles(url)
        now = time.time()
        if n is not None and n >= nstk:
            print("%.1f" % (now - since))
            return 0
        if not alive(pid):
            print("controller exited; reconciles=%s" % n, file=sys.stderr)
            return 1
        if now - since > timeout:
            print("timeout; stoker_reconcile_total{result=success}=%s after %.0f s" % (n, now - since),
                  file=sys.stderr)
            return 1
        time.sleep(0.1)


def snapshot_state():
    k = kube()
    rv = {}
    for s in k.list("/apis/stoker.io/v1alpha1/stokers"):
        rv["stoker/%s/%s" % (s["metadata"]["namespace"], s["metadata"]["name"])] = s["metadata"]["resourceVersion"]
    for c in k.list("/api/v1/configmaps", labelSelector="stoker.io/cr-name"):
        rv["configmap/%s/%s" % (c["metadata"]["namespace"], c["metadata"]["name"])] = c["metadata"]["resourceVersion"]
    for e in k.list("/api/v1/events"):
        if e["metadata"]["namespace"].startswith("bench-"):
            rv["event/%s/%s" % (e["metadata"]["namespace"], e["metadata"]["name"])] = e["metadata"]["resourceVersion"]
    return rv


def diff(path):
    with open(path) as f:
        old = json.load(f)
    new = snapshot_state()
    out = {}
    for kind in ("stoker", "configmap", "event"):
        changed = sum(1 for key, v in new.items() if key.startswith(kind + "/") and old.get(key) not in (None, v))
        added = sum(1 for key in new if key.startswith(kind + "/") and key not in old)
        out[kind] = (changed, added)
    print("stokers %d changed; configmaps %d changed, %d created; events %d updated, %d created" %
          (out["stoker"][0], out["configmap"][0], out["configmap"][1], out["event"][0], out["event"][1]))


def touch(nstk, nns, threads):
    k = kube()
    t = time.monotonic()
    run_all(threads, [lambda i=i: k.request(
        "PATCH", "/apis/stoker.io/v1alpha1/namespaces/%s/stokers/stk-%d" % (ns_of(i, nns), i),
        {"metadata": {"annotations": {"bench/touch": "1"}}}, MERGE) for i in range(nstk)])
    print("%.1f" % (time.monotonic() - t))


WATCHES = (("stoker", "/apis/stoker.io/v1alpha1/stokers", {}),
           ("configmap", "/api/v1/configmaps", {"labelSelector": "stoker.io/cr-name"}),
           ("event", "/api/v1/events", {}))


def summary(kind, o):
    """What matters of a written object, for the write log."""
    if kind == "stoker":
        conds = {c["type"]: c for c in (o.get("status") or {}).get("conditions") or []}
        r = conds.get("Ready", {})
        return {"ready": r.get("status"), "reason": r.get("reason"),
                "synced": conds.get("AllGatewaysSynced", {}).get("message")}
    if kind == "configmap":
        return {"commit": (o.get("data") or {}).get("commit")}
    return {"reason": o.get("reason"), "count": o.get("count"),
            "object": o.get("involvedObject", {}).get("name")}


def watch(path):
    k = kube()
    out = open(path, "a", buffering=1)
    lock = threading.Lock()
    opened = []

    def one(kind, api, q):
        rv = k.request("GET", api + "?" + urllib.parse.urlencode(dict(q, limit=1)))["metadata"]["resourceVersion"]
        c = http.client.HTTPSConnection(k.host, k.port, context=k.ssl, timeout=None)
        c.request("GET", k.prefix + api + "?" + urllib.parse.urlencode(
            dict(q, watch=1, resourceVersion=rv, timeoutSeconds=3600)), headers=k.headers)
        r = c.getresponse()
        with lock:
            opened.append(kind)
            if len(opened) == len(WATCHES):
                open(path + ".ready", "w").close()
        while True:
            line = r.readline()
            if not line:
                return
            ev = json.loads(line)
            o = ev["object"]
            ns = o.get("metadata", {}).get("namespace", "")
            if kind == "event" and not ns.startswith("bench-"):
                continue
            rec = {"t": time.time(), "type": ev["type"], "kind": kind,
                   "name": "%s/%s" % (ns, o.get("metadata", {}).get("name")), "s": summary(kind, o)}
            with lock:
                out.write(json.dumps(rec) + "\n")

    ts = [threading.Thread(target=one, args=w, daemon=True) for w in WATCHES]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def writes(path, since):
    recs = [json.loads(l) for l in open(path)]
    by = lambda kind: [r for r in recs if r["kind"] == kind]
    stk, cm, ev = by("stoker"), by("configmap"), by("event")
    bad = [r for r in stk if r["s"]["ready"] not in (None, "True")]
    reasons = sorted({str(r["s"]["reason"]) for r in bad})
    empty = {r["name"] for r in cm if r["type"] != "DELETED" and r["s"]["commit"] == ""}
    final = {}
    for r in stk + cm:
        final[(r["kind"], r["name"])] = r
    still_bad = sum(1 for (kind, _), r in final.items()
                    if kind == "stoker" and r["s"]["ready"] not in (None, "True"))
    still_empty = sum(1 for (kind, _), r in final.items()
                      if kind == "configmap" and r["s"]["commit"] == "")
    ev_reasons = {}
    for r in ev:
        ev_reasons[r["s"]["reason"]] = ev_reasons.get(r["s"]["reason"], 0) + 1
    last = max((r["t"] for r in recs), default=None)
    print("%d Stoker writes (%d Stokers), %d ConfigMap writes (%d created), %d Event writes%s; "
          "Stokers written with Ready!=True: %d%s, of which still so at the end: %d; "
          "metadata ConfigMaps written with commit \"\": %d, still so at the end: %d; "
          "last write %s s after start" %
          (len(stk), len({r["name"] for r in stk}), len(cm),
           sum(1 for r in cm if r["type"] == "ADDED"), len(ev),
           " (%s)" % ", ".join("%s %d" % kv for kv in sorted(ev_reasons.items())) if ev else "",
           len({r["name"] for r in bad}), " (%s)" % ", ".join(reasons) if reasons else "",
           still_bad, len(empty), still_empty, "%.1f" % (last - since) if last else "-"))


def main(a):
    cmd = a[0]
    if cmd == "load":
        load(*map(int, a[1:5]))
    elif cmd == "converge":
        return converge(float(a[1]), int(a[2]), int(a[3]), int(a[4]), float(a[5]))
    elif cmd == "metrics-wait":
        return metrics_wait(float(a[1]), a[2], int(a[3]), int(a[4]), float(a[5]))
    elif cmd == "snapshot":
        with open(a[1], "w") as f:
            json.dump(snapshot_state(), f)
    elif cmd == "diff":
        diff(a[1])
    elif cmd == "watch":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so atexit runs
        watch(a[1])
    elif cmd == "writes":
        writes(a[1], float(a[2]))
    elif cmd == "touch":
        touch(int(a[1]), int(a[2]), int(a[3]))
    else:
        print("kube.py: unknown command " + cmd, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
