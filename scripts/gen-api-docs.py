#!/usr/bin/python3
"""Generates the API reference in docs/api/ from the CRD schemas in config/crd/.

usage: scripts/gen-api-docs.py           write docs/api/*.md
       scripts/gen-api-docs.py --check   exit 1 if docs/api/ is not what this would write

One page per kind lists every field of spec and status with its type, whether it is
required, its default, its constraints (enum, bounds, pattern) and its description, then
the printer columns and the CEL validation rules; docs/api/README.md indexes the kinds.
A schema property without a description is an error in both modes, so `kubectl explain`
is useful everywhere. Needs PyYAML (Debian: python3-yaml), hence /usr/bin/python3.
"""
import glob
import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRD_DIR = os.path.join(ROOT, "config", "crd")
OUT_DIR = os.path.join(ROOT, "docs", "api")
GENERATOR = "scripts/gen-api-docs.py"


class SchemaError(Exception):
    pass


def text(s):
    """Prose from a description, safe inside a Markdown table cell."""
    s = " ".join(str(s).split())
    for a, b in (("\\", "\\\\"), ("*", "\\*"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|")):
        s = s.replace(a, b)
    return s


def code(v):
    """A literal value as a code span, safe inside a Markdown table cell."""
    if not isinstance(v, str):
        v = json.dumps(v, ensure_ascii=False, separators=(", ", ": "))
    return "`%s`" % v.replace("|", "\\|")


def type_of(s):
    if s.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    t = s.get("type", "")
    if t == "array":
        return "[]" + type_of(s.get("items", {}))
    if t == "object" and isinstance(s.get("additionalProperties"), dict):
        return "map[string]" + type_of(s["additionalProperties"])
    if s.get("format"):
        return "%s (%s)" % (t, s["format"])
    return t


def constraints(s):
    out = []
    if "enum" in s:
        out.append("one of " + ", ".join(code(v) for v in s["enum"]))
    if "minimum" in s and "maximum" in s:
        out.append("%s to %s" % (s["minimum"], s["maximum"]))
    elif "minimum" in s:
        out.append("≥ %s" % s["minimum"])
    elif "maximum" in s:
        out.append("≤ %s" % s["maximum"])
    for key, what, unit in (("minItems", "at least", "item"), ("maxItems", "at most", "item"),
                            ("minLength", "at least", "character"),
                            ("maxLength", "at most", "character"),
                            ("maxProperties", "at most", "entry")):
        if key in s:
            n = s[key]
            plural = unit if n == 1 else ("entries" if unit == "entry" else unit + "s")
            out.append("%s %s %s" % (what, n, plural))
    if "pattern" in s:
        out.append("matches " + code(s["pattern"]))
    if s.get("x-kubernetes-list-type") == "map":
        keys = ", ".join(code(k) for k in s.get("x-kubernetes-list-map-keys", []))
        out.append("list keyed by " + keys)
    for rule in s.get("x-kubernetes-validations", []):
        out.append("rule: “%s”" % text(rule["message"]))
    return "; ".join(out)


def walk(path, s, required, rows, rules):
    """Appends a row for the field at path and every field under it."""
    desc = s.get("description")
    if not desc:
        raise SchemaError("%s has no description" % path)
    desc = text(desc)
    cons = constraints(s)
    # The element schema of a scalar list or a map is described in its parent's row.
    inner = s.get("items") if s.get("type") == "array" else s.get("additionalProperties")
    if isinstance(inner, dict) and "properties" not in inner:
        if not inner.get("description"):
            raise SchemaError("%s has no description" % (path + ("[]" if "items" in s else ".<key>")))
        desc += " " + ("Each item" if "items" in s else "Each value") + ": " + text(inner["description"])
        inner_cons = constraints(inner)
        if inner_cons:
            cons = "; ".join(c for c in (cons, ("items: " if "items" in s else "values: ") + inner_cons) if c)
    rows.append((path, type_of(s), "yes" if required else "",
                 code(s["default"]) if "default" in s else "", cons, desc))
    for rule in s.get("x-kubernetes-validations", []):
        rules.append((path, rule["rule"], rule["message"]))
    if s.get("type") == "array" and "properties" in s.get("items", {}):
        item = s["items"]
        for rule in item.get("x-kubernetes-validations", []):
            rules.append((path + "[]", rule["rule"], rule["message"]))
        walk_children(path + "[]", item, rows, rules)
    elif "properties" in s:
        walk_children(path, s, rows, rules)


def walk_children(path, s, rows, rules):
    req = set(s.get("required", []))
    for name in s["properties"]:  # in schema order, which follows DESIGN.md §3
        walk(path + "." + name, s["properties"][name], name in req, rows, rules)


def first_sentence(s):
    s = " ".join(s.split())
    m = re.search(r"(?<!e\.g)(?<!i\.e)\.(\s|$)", s)
    return s[:m.start() + 1] if m else s


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def page(crd, source):
    spec = crd["spec"]
    names = spec["names"]
    kind = names["kind"]
    if len(spec["versions"]) != 1:
        raise SchemaError("%s: expected exactly one version" % kind)
    version = spec["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    props = schema["properties"]
    for name in ("apiVersion", "kind", "spec", "status"):
        if name not in props or not props[name].get("description"):
            raise SchemaError("%s.%s has no description" % (kind, name))
    facts = ["`%s/%s`" % (spec["group"], version["name"]),
             spec["scope"].lower(),
             "plural `%s`" % names["plural"]]
    if names.get("shortNames"):
        facts.append("short name " + ", ".join("`%s`" % n for n in names["shortNames"]))
    if names.get("categories"):
        facts.append("category " + ", ".join("`%s`" % n for n in names["categories"]))
    if "status" in version.get("subresources", {}):
        facts.append("status subresource")
    out = ["# %s" % kind, "",
           "<!-- Generated by %s from config/crd/%s; do not edit. -->" % (GENERATOR, source),
           "", " · ".join(facts), "", text(schema["description"]), ""]
    out += ["Examples: `config/samples/valid/%s-*.yaml`. `kubectl explain %s.spec` prints "
            "the same descriptions." % (kind.lower(), names["singular"]), ""]
    rules = []
    for part in ("spec", "status"):
        s = props[part]
        rows = []
        for rule in s.get("x-kubernetes-validations", []):
            rules.append((part, rule["rule"], rule["message"]))
        try:
            walk_children(part, s, rows, rules)
        except SchemaError as e:
            raise SchemaError("%s (%s): %s" % (kind, source, e))
        req = " (required)" if part in schema.get("required", []) else ""
        out += ["## %s%s" % (part, req), "", text(s["description"]), ""]
        if part == "status":
            out += ["Written by the controller through the status subresource; users do not "
                    "set it. Once a status exists, `observedGeneration` reads `-1` until the "
                    "controller has acted on a generation.", ""]
        out += table(["Field", "Type", "Required", "Default", "Constraints", "Description"],
                     [("`%s`" % r[0],) + r[1:] for r in rows])
        out.append("")
    out += ["## Validation rules (CEL)", "",
            "Checked by the API server on every create and update; the message is what "
            "`kubectl apply` reports.", ""]
    out += table(["Field", "Rule", "Message"],
                 [("`%s`" % p, code(r), text(m)) for p, r, m in rules])
    out += ["", "## Printer columns", "", "`kubectl get %s` shows:" % names["plural"], ""]
    out += table(["Column", "Type", "JSONPath", "Description"],
                 [(c["name"], c["type"], code(c["jsonPath"]),
                   text(c.get("description", "When the object was created.")))
                  for c in version.get("additionalPrinterColumns", [])])
    out.append("")
    return kind, "\n".join(out)


def render():
    """Returns {file name: content} for docs/api/."""
    pages, index = {}, []
    for path in sorted(glob.glob(os.path.join(CRD_DIR, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f)
                    if d and d.get("kind") == "CustomResourceDefinition"]
        for crd in docs:
            kind, content = page(crd, os.path.basename(path))
            fname = kind.lower() + ".md"
            pages[fname] = content
            n = crd["spec"]["names"]
            index.append((kind, crd["spec"]["group"], ", ".join(n.get("shortNames", [])),
                          fname, text(first_sentence(crd["spec"]["versions"][0]["schema"]
                                                     ["openAPIV3Schema"]["description"]))))
    if not pages:
        raise SchemaError("no CRDs found in %s" % CRD_DIR)
    out = ["# Stoker API reference", "",
           "<!-- Generated by %s from config/crd/; do not edit. -->" % GENERATOR, "",
           "All kinds are namespaced, version `v1alpha1`, with a status subresource and "
           "`kubectl wait --for=condition=Ready` support. Regenerate these pages with "
           "`/usr/bin/python3 %s` after editing a CRD; ctest `api_docs_current` fails "
           "while they are stale." % GENERATOR, ""]
    out += table(["Kind", "Group", "Short name", "Summary"],
                 [("[%s](%s)" % (k, f), "`%s`" % g, "`%s`" % s if s else "", d)
                  for k, g, s, f, d in sorted(index, key=lambda r: r[3])])
    out.append("")
    pages["README.md"] = "\n".join(out)
    return pages


def main(argv):
    check = argv[1:] == ["--check"]
    if argv[1:] and not check:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        pages = render()
    except (SchemaError, KeyError, yaml.YAMLError) as e:
        print("gen-api-docs: %s" % e, file=sys.stderr)
        return 1
    existing = {os.path.basename(p) for p in glob.glob(os.path.join(OUT_DIR, "*.md"))}
    if check:
        stale = []
        for name, content in sorted(pages.items()):
            try:
                with open(os.path.join(OUT_DIR, name), encoding="utf-8") as f:
                    if f.read() != content:
                        stale.append(name + " differs")
            except FileNotFoundError:
                stale.append(name + " is missing")
        stale += [n + " is not generated from any CRD" for n in sorted(existing - set(pages))]
        for s in stale:
            print("gen-api-docs: docs/api/" + s, file=sys.stderr)
        if stale:
            print("gen-api-docs: docs/api is stale; run /usr/bin/python3 %s" % GENERATOR,
                  file=sys.stderr)
            return 1
        print("gen-api-docs: docs/api is current (%d pages)" % len(pages))
        return 0
    os.makedirs(OUT_DIR, exist_ok=True)
    for name in sorted(existing - set(pages)):
        os.remove(os.path.join(OUT_DIR, name))
    for name, content in sorted(pages.items()):
        with open(os.path.join(OUT_DIR, name), "w", encoding="utf-8") as f:
            f.write(content)
    print("gen-api-docs: wrote %d pages to docs/api" % len(pages))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
