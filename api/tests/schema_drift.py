#!/usr/bin/python3
"""Holds config/crd and the C field tables of api/ to the same shape.

usage: schema_drift.py STOKER_API_BINARY CRD_DIR

Fails (listing every difference) when a schema property has no codec field or a codec
field has no schema property, or when their type, default, enum, bounds, pattern,
format or required-ness differ; also when a schema property has no description (so
`kubectl explain` is useful everywhere).
"""
import json
import subprocess
import sys

import yaml

BOUNDS = ("minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength")
problems = []


def problem(path, what):
    problems.append("%s: %s" % (path, what))


def compare_scalar(path, codec, crd):
    for key in ("default", "enum", "pattern", "format") + BOUNDS:
        if key == "format" and key not in codec:
            continue  # the schema may say more (e.g. int32) than the C type needs
        if codec.get(key) != crd.get(key):
            problem(path, "%s differs: C %r, CRD %r" % (key, codec.get(key), crd.get(key)))


def compare_object(path, codec, crd):
    cprops = codec.get("properties", {})
    sprops = crd.get("properties", {})
    for name in sorted(set(cprops) - set(sprops)):
        problem(path + "." + name, "in the C table but not in the CRD schema")
    for name in sorted(set(sprops) - set(cprops)):
        problem(path + "." + name, "in the CRD schema but not in the C table")
    creq = set(codec.get("required", []))
    sreq = set(crd.get("required", []))
    if creq != sreq:
        problem(path, "required differs: C %s, CRD %s" % (sorted(creq), sorted(sreq)))
    for name in sorted(set(cprops) & set(sprops)):
        compare_field(path + "." + name, cprops[name], sprops[name])


def is_condition_list(s):
    items = s.get("items", {})
    props = items.get("properties", {})
    return s.get("type") == "array" and {"type", "status", "reason", "message",
                                          "lastTransitionTime"} <= set(props)


def compare_field(path, c, s):
    if not s.get("description"):
        problem(path, "has no description")
    ctype = c["type"]
    if ctype == "conditions":
        if not is_condition_list(s):
            problem(path, "C conditions, CRD is not a metav1.Condition list")
        return
    if ctype == "any":
        return
    if s.get("type") != ctype:
        problem(path, "type differs: C %s, CRD %s" % (ctype, s.get("type")))
        return
    compare_scalar(path, c, s)
    if ctype == "object" and "schema" in c:
        compare_object(path, c["schema"], s)
    elif ctype == "object":
        ap = s.get("additionalProperties")
        if not isinstance(ap, dict):
            problem(path, "C map, CRD object without additionalProperties")
        elif c.get("additionalProperties", {}).get("int-or-string"):
            if not ap.get("x-kubernetes-int-or-string"):
                problem(path, "C int-or-string map, CRD values are not int-or-string")
        elif ap.get("type") != "string":
            problem(path, "C string map, CRD values are %r" % ap.get("type"))
    elif ctype == "array":
        items = s.get("items", {})
        citems = c.get("items", {})
        if "properties" in citems:
            if items.get("type") != "object":
                problem(path + "[]", "C objects, CRD items are %r" % items.get("type"))
            else:
                compare_object(path + "[]", citems, items)
        elif items.get("type") != citems.get("type"):
            problem(path + "[]", "item type differs: C %s, CRD %s" % (citems.get("type"),
                                                                       items.get("type")))


def main():
    tables = json.loads(subprocess.run([sys.argv[1], "schema"], check=True,
                                       stdout=subprocess.PIPE).stdout)
    crds = {}
    import glob
    for path in sorted(glob.glob(sys.argv[2] + "/*.yaml")):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    crds[doc["spec"]["names"]["kind"]] = doc
    for kind, table in sorted(tables.items()):
        crd = crds.get(kind)
        if not crd:
            problem(kind, "no CRD in %s" % sys.argv[2])
            continue
        versions = crd["spec"]["versions"]
        root = versions[0]["schema"]["openAPIV3Schema"]["properties"]
        for part in ("spec", "status"):
            if part not in root:
                problem(kind + "." + part, "missing from the CRD schema")
                continue
            if not root[part].get("description"):
                problem(kind + "." + part, "has no description")
            compare_object(kind + "." + part, table[part], root[part])
    for p in problems:
        print("drift: " + p)
    print("schema_drift: %d kinds compared, %d differences" % (len(tables), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
