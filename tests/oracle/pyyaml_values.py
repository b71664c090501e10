"""The independent YAML 1.1 reader for the values vectors (tests/values_vectors.rs).

Reads a JSON list of cases from stdin: {"id", "old", "new", "sets": [[segments, value]]}, where a
segment is {"key": k}, {"index": i} or {"select": [k, v]}; or {"id", "old", "new", "mode": "strings"}
(the target vectors, tests/target_vectors.rs): every document keeps its shape and every leaf that
changed reads as a string. For each, loads old and new with PyYAML's
safe loader (YAML 1.1, the libyaml family), applies the sets to the old document and requires the
result to equal the new one, with every set value read back as that exact string. Prints one line
per failure and exits 1 if there is any.
"""
import json
import sys

import yaml


def step(node, seg):
    if "key" in seg:
        key = seg["key"]
        for k in node:
            if str(k) == key:
                return node, k
        raise KeyError(key)
    if "index" in seg:
        return node, seg["index"]
    k, v = seg["select"]
    for i, item in enumerate(node):
        if isinstance(item, dict) and str(item.get(k)) == v:
            return node, i
    raise KeyError(f"[{k}={v}]")


def put(doc, segments, value):
    node = doc
    for seg in segments[:-1]:
        parent, k = step(node, seg)
        node = parent[k]
    parent, k = step(node, segments[-1])
    parent[k] = value


def get(doc, segments):
    node = doc
    for seg in segments:
        parent, k = step(node, seg)
        node = parent[k]
    return node


def changed_leaves_are_strings(old, new, where, failures, case_id):
    """The documents have the same shape; every leaf that differs is a string in `new`."""
    if isinstance(old, dict) and isinstance(new, dict):
        if list(map(str, old)) != list(map(str, new)):
            failures.append(f"{case_id}: keys differ at {where}")
            return
        for (k, v), w in zip(old.items(), new.values()):
            changed_leaves_are_strings(v, w, f"{where}.{k}", failures, case_id)
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            failures.append(f"{case_id}: list length differs at {where}")
            return
        for i, (v, w) in enumerate(zip(old, new)):
            changed_leaves_are_strings(v, w, f"{where}[{i}]", failures, case_id)
    elif old != new and not isinstance(new, str):
        failures.append(f"{case_id}: {where} reads as {new!r}, not a string")


def main():
    failures = []
    for case in json.load(sys.stdin):
        if case.get("mode") == "strings":
            try:
                old = list(yaml.safe_load_all(case["old"].lstrip("\ufeff")))
                new = list(yaml.safe_load_all(case["new"].lstrip("\ufeff")))
                if len(old) != len(new):
                    failures.append(f"{case['id']}: {len(new)} documents, not {len(old)}")
                for i, (o, n) in enumerate(zip(old, new)):
                    changed_leaves_are_strings(o, n, f"doc{i}", failures, case["id"])
            except Exception as e:
                failures.append(f"{case['id']}: {type(e).__name__}: {e}")
            continue
        try:
            old = yaml.safe_load(case["old"].lstrip("\ufeff"))
            new = yaml.safe_load(case["new"].lstrip("\ufeff"))
            for segments, value in case["sets"]:
                got = get(new, segments)
                if not (isinstance(got, str) and got == value):
                    failures.append(f"{case['id']}: PyYAML reads {got!r}, not the string {value!r}")
                put(old, segments, value)
            if old != new:
                failures.append(f"{case['id']}: PyYAML reads {new!r}, want {old!r}")
        except Exception as e:  # a reader error is a failure too
            failures.append(f"{case['id']}: {type(e).__name__}: {e}")
    for f in failures:
        print(f)
    sys.exit(1 if failures else 0)


main()
