#!/usr/bin/env python3
"""Validate custom resources against CRD schemas, offline, as the API server would.

usage: validate-crs.py [--strict] [--require-all] CRDS.yaml RESOURCES.yaml...

Every document of RESOURCES whose apiVersion/kind a CRD in CRDS defines is
checked against that version's openAPIV3Schema with openapi-schema-validator
(OAS 3.0: `nullable`, int-or-string's `anyOf`), then against the schema's CEL
rules (`x-kubernetes-validations`) with cel-python. `metadata` is the API
server's business: its schema is replaced by `{type: object}`. With --strict,
objects that list properties get `additionalProperties: false` (unless they
preserve unknown fields): an unknown field is an error instead of being
pruned. Documents of other kinds are skipped; with --require-all, a document
no CRD defines is an error.

Prints one line per checked document (`ok`/`FAIL`, file#index, kind/name,
the reasons) and a `N passed, N failed` summary; exits 1 if any failed.
Needs the venv of scripts/k8s-tools.sh (openapi-schema-validator, pyyaml,
cel-python).
"""

import argparse
import copy
import sys

import yaml

try:
    from openapi_schema_validator import OAS30Validator
except ImportError:  # pragma: no cover - reported below
    OAS30Validator = None
try:
    import celpy
except ImportError:  # pragma: no cover - reported below
    celpy = None


def load_documents(path):
    with open(path, encoding="utf-8") as file:
        return [document for document in yaml.safe_load_all(file) if document]


def prepare(schema, strict):
    """A copy of a CRD schema for the validator: metadata free, strict objects."""
    schema = copy.deepcopy(schema)
    properties = schema.get("properties", {})
    if "metadata" in properties:
        properties["metadata"] = {"type": "object"}
    if strict:
        close_objects(schema)
    return schema


def close_objects(schema):
    """additionalProperties: false on every object schema that lists properties."""
    if not isinstance(schema, dict):
        return
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        schema["additionalProperties"] = False
    for child in schema.get("properties", {}).values():
        close_objects(child)
    for keyword in ("items", "additionalProperties"):
        if isinstance(schema.get(keyword), dict):
            close_objects(schema[keyword])


class Cel:
    """Evaluates x-kubernetes-validations rules, compiling each rule once."""

    def __init__(self):
        self.environment = celpy.Environment()
        self.programs = {}

    def holds(self, rule, value):
        program = self.programs.get(rule)
        if program is None:
            program = self.environment.program(self.environment.compile(rule))
            self.programs[rule] = program
        result = program.evaluate({"self": celpy.json_to_cel(value)})
        if isinstance(result, Exception):
            raise result
        return bool(result)

    def violations(self, schema, value, path):
        """Messages of the rules `value` breaks, under `schema`, by path."""
        if not isinstance(schema, dict) or value is None:
            return []
        found = []
        for validation in schema.get("x-kubernetes-validations", []):
            rule = validation["rule"]
            message = validation.get("message", rule)
            try:
                if not self.holds(rule, value):
                    found.append(f"{path}: {message}")
            except Exception as error:  # a rule that fails to evaluate fails
                found.append(f"{path}: {message} (rule error: {error})")
        if isinstance(value, dict):
            for name, child in value.items():
                child_schema = schema.get("properties", {}).get(name)
                if child_schema is None and isinstance(schema.get("additionalProperties"), dict):
                    child_schema = schema["additionalProperties"]
                found += self.violations(child_schema, child, f"{path}.{name}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                found += self.violations(schema.get("items"), item, f"{path}[{index}]")
        return found


def schema_errors(validator, document):
    errors = []
    for error in validator.iter_errors(document):
        path = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
        )
        errors.append(f"{path or '.'}: {error.message}")
    return sorted(errors)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="unknown fields are errors")
    parser.add_argument(
        "--require-all", action="store_true", help="documents no CRD defines are errors"
    )
    parser.add_argument("crds")
    parser.add_argument("resources", nargs="+")
    arguments = parser.parse_args()
    missing = [name for name, module in [("openapi-schema-validator", OAS30Validator), ("cel-python", celpy)] if module is None]
    if missing:
        print(f"validate-crs.py: {', '.join(missing)} missing: run scripts/k8s-tools.sh", file=sys.stderr)
        return 2

    schemas = {}
    for crd in load_documents(arguments.crds):
        if crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                api_version = f"{spec['group']}/{version['name']}"
                schema = version["schema"]["openAPIV3Schema"]
                schemas[(api_version, spec["names"]["kind"])] = schema
    cel = Cel()
    passed = failed = 0
    for path in arguments.resources:
        for index, document in enumerate(load_documents(path)):
            key = (document.get("apiVersion"), document.get("kind"))
            name = (document.get("metadata") or {}).get("name", "?")
            where = f"{path}#{index} {key[1]}/{name}"
            schema = schemas.get(key)
            if schema is None:
                if arguments.require_all:
                    print(f"FAIL {where}: no CRD defines {key[0]} {key[1]}")
                    failed += 1
                continue
            prepared = prepare(schema, arguments.strict)
            problems = schema_errors(OAS30Validator(prepared), document)
            if not problems:
                problems = cel.violations(schema, document, "")
            if problems:
                print(f"FAIL {where}: " + "; ".join(problems))
                failed += 1
            else:
                print(f"ok {where}")
                passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
