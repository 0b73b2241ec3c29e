#!/usr/bin/env bash
# Admission latency of the injector (DESIGN.md §8: ≤ 2 ms p99 at 200 pods/s), over TLS on
# loopback with keep-alive connections as the API server uses them, for annotated pods
# (full decision and patch) and pods without the annotation, beside a baseline measured
# in the same run: the same server answering a path it has no route for (TLS + HTTP only).
#   bench/injector/run.sh BUILD_DIR      (BENCH_RATE=200 BENCH_SECONDS=10)
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
rate=${BENCH_RATE:-200}
secs=${BENCH_SECONDS:-10}
py=/usr/bin/python3
work=$(mktemp -d /tmp/stoker-bench-injector.XXXXXX)
name=bench-inj-$$
cleanup() {
	[ -n "${inj:-}" ] && kill "$inj" 2>/dev/null
	"$root/e2e/cluster" down --name "$name" --quiet >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
"$root/e2e/cluster" up --name "$name" --quiet >/dev/null
eval "$("$root/e2e/cluster" env --name "$name")"
k() { "$STOKER_KUBECTL" "$@"; }
k apply -k "$root/config/crd" >/dev/null
k wait --for=condition=Established --timeout=60s crd --all >/dev/null
k create namespace site1 >/dev/null
k apply -n site1 -f - >/dev/null <<'Y'
apiVersion: stoker.io/v1alpha1
kind: Stoker
metadata: {name: plant}
spec:
  sourceRef: {kind: GitSource, name: repo}
  gateway: {apiKeySecretRef: {name: gw-key, key: apiKey}}
---
apiVersion: stoker.io/v1alpha1
kind: SyncProfile
metadata: {name: site}
spec: {mappings: [{source: sites/a, destination: projects}]}
Y
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
port=$("$py" "$root/scripts/free-ports")
"$build/bin/injector" --kubeconfig "$KUBECONFIG" --leader-elect=false --log-level warn \
	--webhook-bind-address "127.0.0.1:$port" --tls-cert-file "$work/cert.pem" \
	--tls-key-file "$work/key.pem" --health-probe-bind-address 127.0.0.1:0 \
	--metrics-bind-address 127.0.0.1:0 >"$work/injector.log" 2>&1 &
inj=$!
for _ in $(seq 100); do
	curl -sk -o /dev/null "https://127.0.0.1:$port/" && break
	sleep 0.1
done
sleep 1 # caches

"$py" - "$port" "$rate" "$secs" "$work/cert.pem" <<'PY'
import http.client, json, ssl, sys, threading, time
port, rate, secs, ca = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]

def review(annotated):
    ann = {"stoker.io/inject": "true", "stoker.io/sync-profile": "site"} if annotated else {"team": "x"}
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE", "namespace": "site1",
            "object": {"metadata": {"name": "gw-0", "namespace": "site1", "annotations": ann},
                "spec": {"volumes": [{"name": "data", "emptyDir": {}}],
                    "containers": [{"name": "gateway", "image": "ignition",
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}}}).encode()

def run(path, body, expect):
    ctx = ssl.create_default_context(cafile=ca)
    n = int(rate * secs)
    threads = 8
    lat, lock = [], threading.Lock()
    start = time.monotonic() + 0.2
    def worker(w):
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
        conn.connect()
        for i in range(w, n, threads):
            t = start + i / rate          # fixed arrival schedule: 200 requests/s
            d = t - time.monotonic()
            if d > 0:
                time.sleep(d)
            t0 = time.monotonic()
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            r = conn.getresponse(); data = r.read()
            dt = time.monotonic() - t0
            if r.status != expect[0] or (expect[1] and expect[1] not in data):
                raise SystemExit("unexpected answer %d %r" % (r.status, data[:200]))
            with lock:
                lat.append(dt * 1000)
    ts = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
    [t.start() for t in ts]; [t.join() for t in ts]
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
    return len(lat), pct(50), pct(99), lat[-1]

rows = [("annotated pod (injected)", run("/mutate-v1-pod", review(True), (200, b'"patch"'))),
        ("pod without annotation", run("/mutate-v1-pod", review(False), (200, b'"allowed":true'))),
        ("baseline: no route (404)", run("/none", review(True), (404, None)))]
print("\nAdmission reviews over TLS, %d/s for %.0f s each, 8 keep-alive connections" % (rate, secs))
print("%-28s %8s %10s %10s %10s %14s" % ("", "reviews", "p50 (ms)", "p99 (ms)", "max (ms)", "DESIGN p99"))
for name, (n, p50, p99, mx) in rows:
    print("%-28s %8d %10.3f %10.3f %10.3f %14s" % (name, n, p50, p99, mx, "2 ms" if "pod" in name else ""))
PY
printf 'injector RSS: %s\n' "$(awk '/^VmRSS/ {print $2 " kB"}' /proc/$inj/status)"
