"""quant.backends: every backend offers the same verbs, owns its files, writes the one census schema,
and is a wing that imports nothing of another's.

That each backend's census of a real export follows the schema is checked with the whole
manifest where each is exported (test_export.py, xnnpack/, tflite/, coreml/).
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import pytest

from quant.backends import ARTIFACT_SUFFIXES, BACKENDS, Census, backend_for
from quant.errors import UserError
from quant.recipes import RECIPES
from tests.schemas import op_census_violations, validator


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_lowers_and_validates_with_one_call_shape(name):
    backend = BACKENDS[name]
    module = backend.load()
    assert module.__name__ == f"quant.backends.{name}" and backend.formats
    assert list(inspect.signature(module.lower).parameters) == ["ctx"]
    assert list(inspect.signature(module.validate).parameters) == ["ctx", "lowered"]
    assert list(inspect.signature(module.open_artifact).parameters) == ["path", "threads"]
    assert any(r.backend == name and r.name == name for r in RECIPES.values())  # its own recipe bears its name


COUNTER_PARAMETERS = ["artifact", "manifest", "cpu", "warmup", "iterations", "label"]


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_the_wing_functions_a_record_names_exist_with_the_call_shape_commands_use(name):
    backend = BACKENDS[name]
    if backend.probe:
        assert list(inspect.signature(backend.wing(backend.probe)).parameters)[:3] == ["path", "shape", "run"]
    if backend.requires:
        assert callable(backend.wing(backend.requires))
    if backend.arm64_counter:  # quant.bench --arm64 counts it, after its own warm-up
        assert list(inspect.signature(backend.wing(backend.arm64_counter)).parameters) == COUNTER_PARAMETERS
        assert backend.arm64_warmup >= 1
    assert bool(backend.arm64_counter) == (name in ("xnnpack", "tflite"))  # Core ML has no AArch64 runtime here


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


def test_each_artifact_file_finds_its_backend_by_suffix():
    assert len(set(ARTIFACT_SUFFIXES)) == len(ARTIFACT_SUFFIXES)  # one owner each
    assert [backend_for(Path(f"m{s}")).name for s in (".pte", ".mlpackage", ".tflite")] == ["xnnpack", "coreml", "tflite"]
    with pytest.raises(UserError, match=r"unknown artifact type '\.onnx' \(expected \.pte, \.mlpackage, \.tflite\)"):
        backend_for(Path("m.onnx"))
    # what quant.bench can time here: a host runtime, or the reason there is none
    assert all(b.runtime or b.not_timed for b in BACKENDS.values())


WINGS = Path(__file__).resolve().parents[3] / "quant" / "backends"


def _imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, relative imports resolved (``from .. import x`` -> ``quant.backends.x``)."""
    package = ".".join(path.relative_to(WINGS.parents[1]).with_suffix("").parts)
    package = package.removesuffix(".__init__") if path.name == "__init__.py" else package.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            found += [module] + [f"{module}.{a.name}" for a in node.names]
    return found


@pytest.mark.parametrize("wing", sorted(BACKENDS))
def test_no_wing_imports_another_backends_wing(wing):
    others = tuple(f"quant.backends.{name}" for name in BACKENDS if name != wing)
    files = sorted((WINGS / wing).rglob("*.py"))
    assert files
    crossing = [f"{f.name}: {m}" for f in files for m in _imported_modules(f) if m.startswith(others)]
    assert crossing == []


def test_the_contract_imports_no_wing_and_the_import_check_sees_relative_imports():
    assert not [m for m in _imported_modules(WINGS / "__init__.py")
                if m.startswith(tuple(f"quant.backends.{n}" for n in BACKENDS))]
    assert "quant.backends.Census" in _imported_modules(WINGS / "xnnpack" / "__init__.py")
    assert "quant.backends.xnnpack.graph" in _imported_modules(WINGS / "xnnpack" / "arm64.py")


def test_the_gemm_shares_are_worked_out_once_for_every_backend():
    from collections import Counter

    ops = {"Conv": Counter(int8=3, float=1), "Add": Counter(int8=2), "MatMul": Counter(constant=1)}
    kinds = {"Conv": "conv", "MatMul": "matmul"}
    core_ml = Census.of(ops, kinds)  # no delegates; a constant GEMM is neither int8 nor float
    assert (core_ml.int8_gemm_pct, core_ml.delegated_gemm_pct) == (75.0, None)
    assert core_ml.kinds == {"conv": {"int8": 3, "float": 1}, "matmul": {"constant": 1}, "other": {"int8": 2}}
    xnnpack = Census.of(ops, kinds, outside_gemm=1, delegates=1)  # one more conv outside the delegates
    assert (xnnpack.int8_gemm_pct, xnnpack.delegated_gemm_pct, xnnpack.delegates) == (60.0, 80.0, 1)
    litert = Census.of(ops, kinds, outside_gemm=1, outside_in_ops=True)  # one of the four convs left outside
    assert (litert.int8_gemm_pct, litert.delegated_gemm_pct) == (75.0, 75.0)
    assert (Census.of({}, {}).int8_gemm_pct, Census.of({}, {}, 0).delegated_gemm_pct) == (0.0, 100.0)
