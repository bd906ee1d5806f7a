"""The JSON Schemas of ``docs/schemas``, to check what every writer of a format produces."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    """``latency`` or ``manifest``: the checked schema ``docs/schemas/<name>.schema.json``."""
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def violations(doc: object, name: str, checker: type | None = None) -> list[str]:
    """Every place where ``doc`` breaks the schema, as ``path: message`` (``checker``: a validator
    class extended from the schema's, for documents with placeholder values)."""
    schema_validator = validator(name) if checker is None else checker(validator(name).schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in schema_validator.iter_errors(doc)]


def op_census_violations(census: dict) -> list[str]:
    """Where ``census`` breaks the manifest's ``op_census`` schema (every backend's one census)."""
    schema = validator("manifest").schema
    checker = jsonschema.Draft202012Validator({**schema["properties"]["op_census"], "$defs": schema["$defs"]})
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in checker.iter_errors(census)]


def assert_follows(doc: object, name: str) -> None:
    problems = violations(doc, name)
    assert not problems, f"not a valid {name} document:\n" + "\n".join(problems)
