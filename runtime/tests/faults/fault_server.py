#!/usr/bin/env python3
"""A scripted stand-in for the Kubernetes API server, for transport faults a real server
cannot be made to produce: watch events split mid-line, a stalled stream, a storm of
500s, a line too large to hold, 429 with Retry-After. It serves ConfigMaps of namespace
"ns" only and records every request.

usage: fault_server.py SCENARIO   (prints the port it listens on, then serves)
GET /_requests returns the recorded requests as JSON (["GET /path?query", ...]).
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

scenario = sys.argv[1]
requests = []
lock = threading.Lock()
counters = {"list": 0, "watch": 0}


def cm(name, rv, value="v"):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv),
                         "uid": "uid-" + name},
            "data": {"k": value}}


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": message}


def event(kind, obj):
    return (json.dumps({"type": kind, "object": obj}) + "\n").encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, code, body, extra=None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_GET(self):
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        if url.path == "/_requests":
            with lock:
                self.send_json(200, list(requests))
            return
        with lock:
            requests.append("GET " + self.path)
        if url.path == "/api/v1/namespaces/ns/configmaps/limited":
            self.send_json(429, status(429, "TooManyRequests", "slow down"), {"Retry-After": "7"})
            return
        if url.path == "/api/v1/namespaces/ns/configmaps/broken":
            self.send_json(500, status(500, "InternalError", "etcd is unhappy"))
            return
        if url.path == "/api/v1/namespaces/ns/configmaps/plain-text-error":
            data = b"upstream connect error\nor disconnect"
            self.send_response(502)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if url.path == "/api/v1/namespaces/ns/configmaps/big":
            self.send_json(200, cm("big", 1, "x" * 200000))
            return
        if url.path != "/api/v1/namespaces/ns/configmaps":
            self.send_json(404, status(404, "NotFound", "no such path"))
            return
        if q.get("watch") == ["true"]:
            with lock:
                counters["watch"] += 1
                n = counters["watch"]
            self.watch(n, q)
        else:
            with lock:
                counters["list"] += 1
                n = counters["list"]
            self.list(n)

    def list(self, n):
        if scenario == "storm" and n <= 6:
            self.send_json(500, status(500, "InternalError", "storm %d" % n))
            return
        items = [cm("a", 10)]
        rv = "10"
        if scenario == "hugeline" and n >= 2:
            items.append(cm("b", 20))
            rv = "20"
        self.send_json(200, {"kind": "ConfigMapList", "apiVersion": "v1",
                             "metadata": {"resourceVersion": rv}, "items": items})

    def watch(self, n, q):
        self.start_stream()
        try:
            if scenario == "split":
                data = (event("ADDED", cm("b", 11)) + event("MODIFIED", cm("a", 12, "changed"))
                        + event("BOOKMARK", {"kind": "ConfigMap", "apiVersion": "v1",
                                              "metadata": {"resourceVersion": "13"}})
                        + event("DELETED", cm("b", 14)))
                # Seven-byte chunks: every event arrives cut mid-line, several times.
                for i in range(0, len(data), 7):
                    self.chunk(data[i:i + 7])
                    time.sleep(0.002)
                time.sleep(30)
            elif scenario == "stall":
                if n == 1:
                    self.chunk(event("ADDED", cm("b", 11)))
                    time.sleep(30)  # silent, connection open
                else:
                    self.chunk(event("ADDED", cm("c", 12)))
                    time.sleep(30)
            elif scenario == "hugeline":
                if n == 1:
                    big = event("ADDED", cm("huge", 11, "x" * (9 * 1024 * 1024)))
                    for i in range(0, len(big), 65536):
                        self.chunk(big[i:i + 65536])
                time.sleep(30)
            else:
                time.sleep(30)
            self.end_stream()
        except (BrokenPipeError, ConnectionResetError):
            pass


def exit_with_parent():
    """The server belongs to the test that started it: it never outlives it."""
    parent = os.getppid()
    while True:
        time.sleep(0.2)
        if os.getppid() != parent:
            os._exit(0)


threading.Thread(target=exit_with_parent, daemon=True).start()
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
sys.stdout.write("%d\n" % server.server_address[1])
sys.stdout.flush()
server.serve_forever()
