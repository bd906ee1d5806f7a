"""docs/schemas: valid JSON Schemas, strict where readers rely on a field, and documented.

What each writer produces is checked where the writer is tested: quant.bench
(tests/quant/test_bench.py), the AArch64 counter (tests/quant/backends/xnnpack/test_arm64.py), mfbench
(tests/native/test_mfbench.py), the Kotlin engine (tests/apps/test_android_jvm.py), the Swift
Core ML writer (tests/apps/test_app_sources.py), and the export manifests
(tests/quant/test_export.py, tests/quant/backends/tflite/test_tflite.py).
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from tests.schemas import SCHEMAS, validator, violations

DOCS = SCHEMAS.parent

LATENCY = {
    "format": "mobileformer-latency/1", "created": "2026-11-30T12:00:00Z", "tool": "mfbench 0.1.0", "label": "x",
    "device": {"kind": "android", "name": "Pixel 8", "os": "Android 15", "cpu": "Tensor G3", "cores": 9},
    "runtime": {"name": "executorch", "version": "1.5.1", "compute_units": None},
    "artifact": {"file": "m.pte", "sha256": "0" * 64, "size_bytes": 10, "model": None, "backend": None, "precision": None},
    "threads": 2, "warmup": 1, "iterations": 2, "traced": False, "latency_ms": {"p50": 1.0, "p90": 1.5, "mean": 1.2, "min": 0.9, "max": 1.6},
    "samples_ms": [1.0, 1.5],
    "operators": [{"index": 0, "name": "Convolution (NHWC, QC8) IGEMM", "delegate_index": 0, "block": None,
                   "mean_ms": 0.1, "p50_ms": 0.1, "calls": 2}],
    "blocks": [], "etdump": None,
}


def _broken(path: str, value: object) -> dict:
    """LATENCY with the field at ``a/b/0/c`` set to ``value`` (``...`` deletes it)."""
    doc = copy.deepcopy(LATENCY)
    *parents, last = path.split("/")
    node = doc
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return doc


def test_schemas_are_valid_and_a_good_document_passes():
    assert {p.name for p in SCHEMAS.glob("*.schema.json")} == {"latency.schema.json", "manifest.schema.json"}
    assert violations(LATENCY, "latency") == []


@pytest.mark.parametrize("path, value", [
    ("format", "mobileformer-latency/2"), ("artifact/file", ...), ("artifact/size_bytes", -1),
    ("latency_ms/p50", 0), ("blocks", [{"name": "stem"}]), ("operators/0/name", ...), ("device/kind", "phone"),
    ("created", "yesterday"), ("artifact/file", "dir/m.pte"), ("surprise", 1),
    # issue 32: the thread count the runtime ran with, never 0; whether the figures are traced
    ("threads", 0), ("traced", ...), ("traced", "no"),
])
def test_what_readers_refuse_the_schema_refuses(path, value):
    assert violations(_broken(path, value), "latency")


def _schema_fields(schema: dict, root: dict, prefix: str = "") -> set[str]:
    """Dotted names of every leaf property (``operators[].name``), $refs followed."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    names = set()
    for key, sub in schema.get("properties", {}).items():
        name = f"{prefix}{key}"
        inner = _schema_fields(sub, root, f"{name}.")
        if sub.get("type") == "array" and isinstance(sub.get("items"), dict):
            inner |= _schema_fields(sub["items"], root, f"{name}[].")
        names |= inner or {name}
    return names


def _documented_fields(markdown: str) -> set[str]:
    """Field names in the first column of the doc's tables: "`device.name`, `os`" names both."""
    names = set()
    for row in re.findall(r"^\| (`[^|]+) \|", markdown, re.M):
        first, *rest = re.findall(r"`([^`]+)`", row)
        names.add(first)
        names |= {first.rsplit(".", 1)[0] + "." + n if "." in first else n for n in rest}
    return names


def test_every_latency_field_is_documented():
    schema = validator("latency").schema
    undocumented = _schema_fields(schema, schema) - _documented_fields((DOCS / "latency-format.md").read_text())
    assert not undocumented, f"docs/latency-format.md does not describe {sorted(undocumented)}"
