#!/usr/bin/python3
"""Checks that metrics_dump's output is valid Prometheus text exposition 0.0.4.

Usage: check_prometheus.py [PROGRAM]: runs PROGRAM (metrics_dump) and checks its output,
or reads the exposition on stdin when no program is given. Two independent checks:
  1. every line matches the format's grammar (the client library's parser is lenient, so
     this catches what it would silently accept), HELP/TYPE come once per family and before
     its samples, and a family's samples are contiguous;
  2. prometheus_client.parser (python3-prometheus-client) parses it into exactly the
     expected families and samples, escaped label values decoding to the originals.
Exit status 0 on success; otherwise the first problem is printed.
"""
import math
import re
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
NUMBER = r"(?:[+-]?Inf|NaN|[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
SAMPLE_RE = re.compile(
    rf"^({NAME})(?:\{{(?:{LABEL}={VALUE}(?:,{LABEL}={VALUE})*)?\}})? {NUMBER}$")
HELP_RE = re.compile(rf"^# HELP ({NAME}) (?:[^\\\n]|\\[\\n])*$")
TYPE_RE = re.compile(rf"^# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)$")

EXPECTED = {
    # family name as the parser reports it -> (type, {(sample name, labels tuple): value})
    "stoker_reconcile": ("counter", {
        ("stoker_reconcile_total", (("kind", "GitSource"), ("name", "repo"),
                                    ("namespace", "site1"), ("result", "error"))): 1,
        ("stoker_reconcile_total", (("kind", "Stoker"), ("name", "plant"),
                                    ("namespace", "site1"), ("result", "success"))): 5,
        ("stoker_reconcile_total", (("kind", "Stoker"), ("name", 'we"ird\\na\nme'),
                                    ("namespace", "s\u00e9"), ("result", "error"))): 1,
    }),
    "stoker_condition": ("gauge", {
        ("stoker_condition", (("kind", "Stoker"), ("name", "plant"), ("namespace", "site1"),
                              ("type", "Ready"), ("status", "True"))): 1,
        ("stoker_condition", (("kind", "Stoker"), ("name", "plant"), ("namespace", "site1"),
                              ("type", "Synced"), ("status", "True"))): 1,
    }),
    "stoker_build_info": ("gauge", {
        ("stoker_build_info", (("version", "0.1.0"),)): 1,
    }),
    "stoker_leader": ("gauge", {("stoker_leader", ()): 1}),
    "stoker_artifact_bytes": ("counter", {
        ("stoker_artifact_bytes_total", ()): 9007199254740992,
    }),
    "test_special_values": ("gauge", {
        ("test_special_values", (("case", "inf"),)): math.inf,
        ("test_special_values", (("case", "neginf"),)): -math.inf,
        ("test_special_values", (("case", "nan"),)): "nan",
        ("test_special_values", (("case", "tiny"),)): 1e-300,
        ("test_special_values", (("case", "third"),)): 1.0 / 3,
    }),
}

BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
           "20", "30", "45", "60"]


def histogram_expectation():
    samples = {}
    observed = {"Stoker": [0.003, 0.2, 1.5, 120], "GitSource": [0.05]}
    for kind, values in observed.items():
        for le in BUCKETS + ["+Inf"]:
            bound = math.inf if le == "+Inf" else float(le)
            count = sum(1 for v in values if v <= bound)
            samples[("stoker_reconcile_duration_seconds_bucket",
                     (("kind", kind), ("le", le)))] = count
        samples[("stoker_reconcile_duration_seconds_sum", (("kind", kind),))] = sum(values)
        samples[("stoker_reconcile_duration_seconds_count", (("kind", kind),))] = len(values)
    return ("histogram", samples)


EXPECTED["stoker_reconcile_duration_seconds"] = histogram_expectation()
EXPECTED_HELP = {
    "stoker_reconcile_duration_seconds": "Reconcile duration.\nSecond line with a \\ backslash.",
}


def fail(msg):
    print("check_prometheus: " + msg)
    sys.exit(1)


def check_grammar(text):
    if not text.endswith("\n"):
        fail("exposition does not end with a newline")
    seen_help, seen_type, finished = set(), set(), set()
    current = None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        if line.startswith("# HELP "):
            m = HELP_RE.match(line)
            if not m:
                fail(f"line {n}: malformed HELP: {line!r}")
            name = m.group(1)
            if name in seen_help:
                fail(f"line {n}: second HELP for {name}")
            seen_help.add(name)
            if current and current != name:
                finished.add(current)
            current = name
        elif line.startswith("# TYPE "):
            m = TYPE_RE.match(line)
            if not m:
                fail(f"line {n}: malformed TYPE: {line!r}")
            name = m.group(1)
            if name in seen_type or name != current:
                fail(f"line {n}: TYPE for {name} not right after its HELP")
            seen_type.add(name)
        elif line.startswith("#") or not line:
            fail(f"line {n}: unexpected line {line!r}")
        else:
            m = SAMPLE_RE.match(line)
            if not m:
                fail(f"line {n}: malformed sample: {line!r}")
            sample = m.group(1)
            if not current or not sample.startswith(current) or current not in seen_type:
                fail(f"line {n}: sample {sample} outside its family's block")
            if current in finished:
                fail(f"line {n}: family {current} is not contiguous")


def as_number(v):
    return "nan" if isinstance(v, float) and math.isnan(v) else v


def check_parsed(text):
    families = {f.name: f for f in text_string_to_metric_families(text)}
    if set(families) != set(EXPECTED):
        fail(f"families {sorted(families)} != expected {sorted(EXPECTED)}")
    for name, (mtype, samples) in EXPECTED.items():
        fam = families[name]
        if fam.type != mtype:
            fail(f"{name}: type {fam.type}, expected {mtype}")
        if name in EXPECTED_HELP and fam.documentation != EXPECTED_HELP[name]:
            fail(f"{name}: help {fam.documentation!r}")
        got = {}
        for s in fam.samples:
            key = (s.name, tuple(s.labels.items()))
            if key in got:
                fail(f"{name}: duplicate sample {key}")
            got[key] = as_number(s.value)
        if set(got) != set(samples):
            fail(f"{name}: missing {sorted(set(samples) - set(got))}, "
                 f"unexpected {sorted(set(got) - set(samples))}")
        for key, want in samples.items():
            have = got[key]
            if want == "nan" or have == "nan":
                if want != have:
                    fail(f"{name} {key}: {have} != {want}")
            elif have != want and not math.isclose(have, want, rel_tol=1e-15):
                fail(f"{name} {key}: {have!r} != {want!r}")


def main():
    if len(sys.argv) > 1:
        run = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, timeout=60, check=False)
        if run.returncode != 0:
            fail(f"{sys.argv[1]} exited with {run.returncode}")
        text = run.stdout.decode("utf-8")
    else:
        text = sys.stdin.read()
    if not text:
        fail("no input")
    check_grammar(text)
    check_parsed(text)
    print("check_prometheus: ok")


if __name__ == "__main__":
    main()
