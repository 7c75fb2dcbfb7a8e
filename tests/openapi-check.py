#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Check answers the daemon gave against doc/openapi.yaml, for test-api.

Run with /usr/bin/python3 -I (Debian's interpreter and its python3-yaml and
python3-jsonschema). argv[1] is the OpenAPI file, argv[2] a file with one JSON
object a line: {"method": "GET", "path": "/positions?assessmentId=…",
"status": 200, "body": {…}}. Each answer is matched to the operation whose path
template fits its path, and its body is validated against the schema the file
gives for its status, strictly: an object may carry only the members the file
declares (an undocumented member fails as a missing one does). OpenAPI 3.0's
`nullable` is turned into JSON Schema first.

An answer to a path the file does not have (a test asking for /nope) or to a
method it does not list (a 405) is counted and skipped; an answer with a
status the operation does not list fails. Prints one line per failure and a
summary; exits 1 when anything failed.
"""
import json
import re
import sys

import jsonschema
import yaml


def openapi_to_jsonschema(node):
    """nullable → a null alternative; objects with properties → closed."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_to_jsonschema(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if out.pop("nullable", False):
        if "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
        if "type" in out and "$ref" not in out and "allOf" not in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def fail(failures, message):
    failures[message] = failures.get(message, 0) + 1


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = spec
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def template_regex(template):
    return re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")) + "$")


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    spec = openapi_to_jsonschema(raw)
    resolver = jsonschema.RefResolver.from_schema(spec)
    templates = [(template_regex(t), t) for t in raw["paths"]]
    checked = skipped = 0
    failures = {}  # message -> how many answers gave it
    seen_ops = set()

    with open(sys.argv[2], encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            s = json.loads(line)
            path = s["path"].split("?", 1)[0]
            method = s["method"].lower()
            status = str(s["status"])
            template = next((t for rx, t in templates if rx.match(path)), None)
            if template is None or method not in raw["paths"][template]:
                skipped += 1
                continue
            responses = raw["paths"][template][method]["responses"]
            where = "%s %s -> %s" % (s["method"], template, status)
            if status not in responses:
                code = s["body"].get("error", {}).get("code") if isinstance(s["body"], dict) else None
                fail(failures, "%s: status not documented (documented: %s)%s"
                     % (where, ", ".join(sorted(responses)), "; error code %s" % code if code else ""))
                continue
            response = resolve(raw, responses[status])
            content = response.get("content", {}).get("application/json")
            if content is None:
                fail(failures, "%s: documented without a JSON body" % where)
                continue
            schema = openapi_to_jsonschema(content["schema"])
            validator = jsonschema.Draft4Validator(schema, resolver=resolver)
            errors = sorted(validator.iter_errors(s["body"]), key=lambda e: list(e.absolute_path))
            for e in errors[:3]:
                at = "/".join(str(p) for p in e.absolute_path) or "(the body)"
                fail(failures, "%s: at %s: %s" % (where, re.sub(r"/[0-9]+", "/N", at), e.message[:300]))
            checked += 1
            seen_ops.add(where)

    for f, n in failures.items():
        print("FAIL %s%s" % (f, " (%d answers)" % n if n > 1 else ""))
    print("openapi-check: %d answers checked (%d operation-statuses), %d skipped, %d failures"
          % (checked, len(seen_ops), skipped, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
