#!/usr/bin/env python3
"""Validates a FHIR R4 resource (JSON on stdin) with fhir.resources 6.4.0, an
independent implementation of the R4 (4.0.1) structure definitions: element
names, types, cardinalities, required elements, primitive formats and choice
types; unknown elements are errors. For a Bundle it also checks what the
models leave to the spec's invariants: entry ids unique per type, every
fullUrl ending in its resource's Type/id, and every literal reference
(`Type/id`) resolving to an entry of the Bundle.

Prints one line per error and exits 1 on any; prints a summary and exits 0
otherwise. Run with the venv's python (scripts/fhir-venv.sh prints its path).
"""

import json
import sys

import fhir.resources
from fhir.resources import construct_fhir_element
from pydantic import ValidationError


def literal_references(node, path="$"):
    """Yields (path, reference) for every Reference.reference below node."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            yield path, ref
        for key, value in node.items():
            yield from literal_references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from literal_references(value, f"{path}[{i}]")


def main() -> int:
    if fhir.resources.__fhir_version__ != "4.0.1":
        print(f"expected FHIR 4.0.1 models, got {fhir.resources.__fhir_version__}")
        return 2
    data = json.load(sys.stdin)
    errors = []
    try:
        construct_fhir_element(data.get("resourceType", ""), data)
    except ValidationError as e:
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            errors.append(f"{loc}: {err['msg']}")
    except Exception as e:  # an unknown resourceType, not a JSON object, ...
        errors.append(f"$: {e}")
    if data.get("resourceType") == "Bundle":
        seen = set()
        for i, entry in enumerate(data.get("entry", [])):
            resource = entry.get("resource", {})
            key = f"{resource.get('resourceType')}/{resource.get('id')}"
            if key in seen:
                errors.append(f"entry[{i}]: duplicate {key}")
            seen.add(key)
            if not str(entry.get("fullUrl", "")).endswith("/" + key):
                errors.append(f"entry[{i}].fullUrl: {entry.get('fullUrl')} does not name {key}")
        for path, ref in literal_references(data):
            if ref not in seen:
                errors.append(f"{path}: reference {ref} does not resolve in the Bundle")
    for e in errors:
        print(e)
    if errors:
        return 1
    print(f"valid FHIR R4 {data.get('resourceType')} ({len(data.get('entry', []))} entries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
