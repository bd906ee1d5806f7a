"""Core ML: an ``.mlpackage`` (ML program, iOS 17+) or an ExecuTorch ``.pte`` with the Core ML delegate.

Core ML runs models on Apple platforms only; on Linux the conversion works but
prediction does not, so the export is validated structurally: the MIL program's op
census says which ops Core ML will run in int8 (those it receives as
``dequantize -> op -> quantize``, which it fuses into int8 kernels) and which weights
are stored as int8 (``constexpr_affine_dequantize``).
"""
from __future__ import annotations

import hashlib
import json
import sys
import uuid
from collections import Counter
from pathlib import Path

import torch

from .files import sha256_of

GEMM_OPS = {"conv": "conv", "linear": "linear", "matmul": "matmul"}
NOT_COMPUTE = {"quantize", "dequantize", "const"}
# Activations the Core ML quantizer fuses into the conv/linear before them: the pair is one
# int8 unit, quantized after the activation (``dq -> conv -> relu -> q``).
FUSED_ACTIVATIONS = {"relu", "relu6", "clip", "gelu", "silu", "sigmoid", "sigmoid_hard", "leaky_relu"}
VALIDATION_NOTE = ("Core ML prediction needs macOS/iOS; on this host the export is validated structurally "
                   "(MIL op census), not numerically")


def _walk(block):
    for op in block.operations:
        yield op
        for inner in op.blocks:
            yield from _walk(inner)


def _source_type(var) -> str | None:
    return var.op.op_type if getattr(var, "op", None) is not None else None


def _quantized(var) -> bool:
    return any(c.op_type == "quantize" for c in var.child_ops)


def _fused_then_quantized(var) -> bool:
    users = list(var.child_ops)
    return len(users) == 1 and users[0].op_type in FUSED_ACTIVATIONS and all(_quantized(o) for o in users[0].outputs)


def mil_census(program) -> dict:
    """Ops of a MIL program, each compute op marked int8 when Core ML receives it as dq -> op -> q
    (for a conv, linear or matmul also dq -> op -> fused activation -> q)."""
    ops: dict[str, Counter] = {}
    weights_int8 = 0
    for function in program.functions.values():
        for op in _walk(function):
            kind = op.op_type
            if kind.startswith("constexpr"):
                weights_int8 += kind in ("constexpr_affine_dequantize", "constexpr_blockwise_shift_scale")
                continue
            if kind in NOT_COMPUTE:
                continue
            inputs = [v for v in op.inputs.values() if _source_type(v) not in (None, "const")]
            inputs = [v for v in inputs if not str(_source_type(v)).startswith("constexpr")]
            if not inputs and kind in GEMM_OPS:  # on weights only (e.g. the learned tokens): no runtime input
                ops.setdefault(kind, Counter())["constant"] += 1
                continue
            int8_in = bool(inputs) and all(_source_type(v) == "dequantize" for v in inputs)
            int8_out = all(_quantized(out) or (kind in GEMM_OPS and _fused_then_quantized(out)) for out in op.outputs)
            ops.setdefault(kind, Counter())["int8" if int8_in and int8_out else "float"] += 1
    gemm = [ops.get(k, Counter()) for k in GEMM_OPS]
    total = sum(c["int8"] + c["float"] for c in gemm)  # constant GEMMs are neither
    return {
        "ops": {k: dict(v) for k, v in sorted(ops.items())},
        "int8_weight_tensors": weights_int8,
        "int8_gemm_pct": round(100.0 * sum(c["int8"] for c in gemm) / total, 2) if total else 0.0,
        "quantize_ops": sum(1 for f in program.functions.values() for op in _walk(f) if op.op_type == "quantize"),
    }


def _deterministic_manifest(package: Path) -> None:
    """Replace the random item identifiers of ``Manifest.json`` with content-derived ones.

    coremltools names each item of an ``.mlpackage`` with a fresh UUID; deriving them
    from the item's path and contents (a file, or a folder such as ``weights/``) makes the
    same export produce the same package.
    """
    manifest_path = package / "Manifest.json"
    manifest = json.loads(manifest_path.read_text())
    renamed = {}
    for old_id, item in manifest["itemInfoEntries"].items():
        content = sha256_of(package / "Data" / item["path"])
        digest = hashlib.sha256(f"{item['path']}\0{content}".encode()).digest()
        renamed[old_id] = str(uuid.UUID(bytes=digest[:16])).upper()
    manifest["itemInfoEntries"] = {renamed[k]: v for k, v in manifest["itemInfoEntries"].items()}
    manifest["rootModelIdentifier"] = renamed[manifest["rootModelIdentifier"]]
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def to_mlpackage(graph: torch.nn.Module, example: torch.Tensor, path: Path):
    """Convert to an ML program (iOS 17) and save it as an ``.mlpackage`` directory."""
    import coremltools as ct

    exported = torch.export.export(graph, (example,)).run_decompositions({})
    mlmodel = ct.convert(exported, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                         skip_model_load=sys.platform != "darwin")
    mlmodel.save(str(path))
    _deterministic_manifest(path)
    return mlmodel


def to_coreml_pte(graph: torch.nn.Module, example: torch.Tensor, path: Path) -> dict:
    """An ExecuTorch program whose graph runs in the Core ML delegate."""
    from executorch.backends.apple.coreml.partition import CoreMLPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from .census import is_op, op_name

    edge = to_edge_transform_and_lower(torch.export.export(graph, (example,)), partitioner=[CoreMLPartitioner()])
    outside = Counter(op_name(n) for n in edge.exported_program().graph_module.graph.nodes if is_op(n))
    delegates = sum("executorch_call_delegate" in str(n.target) for n in edge.exported_program().graph_module.graph.nodes)
    path.write_bytes(edge.to_executorch().buffer)
    return {"delegates": delegates, "outside": dict(outside)}


def export_coreml(graph: torch.nn.Module, example: torch.Tensor, artifact: Path, fmt: str, precision: str) -> tuple[dict, dict]:
    """Write ``artifact`` and return (op census, validation record)."""
    if fmt == "pte":
        census = to_coreml_pte(graph, example, artifact)
    else:
        census = mil_census(to_mlpackage(graph, example, artifact)._mil_program)
    validation = {"images": 0, "note": VALIDATION_NOTE, "precision": precision}
    return census, validation
