"""quant.backends: every backend offers the same verbs and writes the one census schema.

That each backend's census of a real export follows the schema is checked with the whole
manifest where each is exported (test_export.py, test_tflite.py, test_coreml.py).
"""
from __future__ import annotations

import dataclasses
import inspect

import pytest

from quant.backends import BACKENDS, Census
from quant.recipes import RECIPES
from tests.schemas import op_census_violations, validator


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_lowers_and_validates_with_one_call_shape(name):
    backend = BACKENDS[name]
    module = backend.load()
    assert module.__name__ == f"quant.backends.{name}" and backend.formats
    assert list(inspect.signature(module.lower).parameters) == ["ctx"]
    assert list(inspect.signature(module.validate).parameters) == ["ctx", "lowered"]
    assert any(r.backend == name and r.name == name for r in RECIPES.values())  # its own recipe bears its name


def test_the_census_dataclass_is_the_manifest_schema():
    schema = validator("manifest").schema["properties"]["op_census"]
    assert set(schema["required"]) == set(schema["properties"]) == {f.name for f in dataclasses.fields(Census)}
    assert op_census_violations(Census().to_json()) == []  # what a Core ML .pte knows: delegates and outside only
    full = Census(ops={"XNNConv2d": {"int8": 3}}, kinds={"conv": {"int8": 3}}, conversions={"XNNConvert": 2},
                  int8_gemm_pct=100.0, delegates=1, outside={}, delegated_gemm_pct=100.0, detail={"note": "x"})
    assert op_census_violations(full.to_json()) == []


@pytest.mark.parametrize("field, value", [("kinds", {"attention": {"int8": 1}}), ("int8_gemm_pct", 101.0),
                                          ("ops", {"conv": {"int8": -1}}), ("delegates", -1)])
def test_a_census_readers_would_misread_is_refused(field, value):
    assert op_census_violations({**Census().to_json(), field: value})

