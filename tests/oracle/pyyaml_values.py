"""The independent YAML 1.1 reader for the values vectors (tests/values_vectors.rs).

Reads a JSON list of cases from stdin: {"id", "old", "new", "sets": [[segments, value]]}, where a
segment is {"key": k}, {"index": i} or {"select": [k, v]}. For each, loads old and new with PyYAML's
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


def main():
    failures = []
    for case in json.load(sys.stdin):
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
