"""LiteRT (TensorFlow Lite): a ``.tflite`` of any variant, validated on the host LiteRT interpreter.

Conversion is litert-torch's (``litert_torch.convert``): the PT2E graph that
:mod:`quant.recipes` quantized with LiteRT's own ``PT2EQuantizer`` goes in with
``QuantConfig(pt2e_quantizer=...)``, which tells the converter to fuse every
``dequantize -> op -> quantize`` it finds into an int8 TFLite kernel (without it the
q/dq pairs stay in the file as QUANTIZE/DEQUANTIZE around float kernels: correct but
about 8x slower). The host runtime (:mod:`.runtime`) is ``ai-edge-litert``.

Int8 models have int8 input and output (what the converter produces for a static PT2E
graph): the caller quantizes the normalised image with the input tensor's scale and zero
point and dequantizes the logits with the output's. :func:`.runtime.io_spec` reads
both; the export manifest records them.

Both packages are an optional extra (``pip install 'mobileformer[tflite]'``); nothing in
this module imports them until it is used.
"""
from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ...metrics import compare_logits, logits_of
from ...patches.litert import fast_conversion, layout_pass_fix
from .runtime import TFLiteModel, io_spec, load_tflite_interpreter, require_litert, runtime_version
from .. import Census, LowerContext, Lowered
from ...timing import phase

# What the issue tracks: every conv, linear and matmul, by TFLite builtin.
GEMM_KINDS = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "conv", "TRANSPOSE_CONV": "conv", "CONV_3D": "conv",
              "FULLY_CONNECTED": "linear", "BATCH_MATMUL": "matmul"}
CONVERSIONS = ("QUANTIZE", "DEQUANTIZE")
INTEGER = ("int8", "uint8", "int16")


# --------------------------------------------------------------------------- conversion


class _DropTrainingModeWarning(logging.Filter):
    """litert-torch warns that an exported PT2E graph is 'in training mode'; it is not (PTQ/QAT convert it in eval)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "converted in training mode" not in record.getMessage()


@contextlib.contextmanager
def _quiet_converter() -> Iterator[None]:
    """No training-mode warning from litert-torch (its progress tree: :data:`quant.errors.COMMAND_ENVIRONMENT`)."""
    filt = _DropTrainingModeWarning()
    logging.getLogger().addFilter(filt)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(filt)


def to_tflite(graph: torch.nn.Module, example: torch.Tensor, quantizer=None) -> bytes:
    """The ``.tflite`` flatbuffer of ``graph``: a float model, or a PT2E graph converted after ``quantizer``
    (the recipe's: the converter only reads its mode, static or dynamic, from the config)."""
    require_litert()
    import litert_torch
    from litert_torch.quantize.quant_config import QuantConfig

    quant_config = QuantConfig(pt2e_quantizer=quantizer) if quantizer is not None else None
    with _quiet_converter(), layout_pass_fix(), fast_conversion():
        return litert_torch.convert(graph, (example,), quant_config=quant_config).model_content()


# --------------------------------------------------------------------------- census


def _dtype_name(tensors: dict, index: int) -> str | None:
    return np.dtype(tensors[index]["dtype"]).name if index >= 0 and index in tensors else None


def _op_rows(interpreter) -> list[dict]:
    """Every op: builtin name, tensor indices, data input dtypes and output dtypes (int32 shapes and biases left out)."""
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    rows = []
    for op in interpreter._get_ops_details():  # noqa: SLF001 - the interpreter's only per-op view
        ins = [d for d in (_dtype_name(tensors, i) for i in op["inputs"]) if d not in (None, "int32", "int64")]
        outs = [d for d in (_dtype_name(tensors, i) for i in op["outputs"]) if d is not None]
        rows.append({"name": op["op_name"], "inputs": [int(i) for i in op["inputs"]],
                     "outputs": [int(i) for i in op["outputs"]], "in": ins, "out": outs})
    return rows


def _delegated_ops(rows: list[dict]) -> set[int]:
    """Indices of the ops that a delegate took over.

    After delegation the interpreter still lists every op of the model, followed by one
    DELEGATE op per partition whose inputs and outputs are the partition's boundary
    tensors; the partition is every op between them, found by walking producers back
    from its outputs.
    """
    producer = {t: i for i, row in enumerate(rows) if row["name"] != "DELEGATE" for t in row["outputs"]}
    taken: set[int] = set()
    for row in rows:
        if row["name"] != "DELEGATE":
            continue
        boundary = set(row["inputs"])
        stack = [producer[t] for t in row["outputs"] if t in producer]
        while stack:
            i = stack.pop()
            if i in taken:
                continue
            taken.add(i)
            stack.extend(producer[t] for t in rows[i]["inputs"] if t not in boundary and t in producer)
    return taken


def _precision(ins: list[str], outs: list[str]) -> str:
    data = ins + outs
    return "int8" if data and all(d in INTEGER for d in data) else "float"


def tflite_census(path: str | Path) -> Census:
    """Op census of a ``.tflite``: every op of the flatbuffer, int8 or float.

    An op is int8 when all its data tensors (inputs other than int32 shapes and biases,
    and outputs) are integer. ``ops``: builtin name -> {"int8": n, "float": n};
    ``conversions``: QUANTIZE (float -> int8, or int8 -> int8 requantize) and DEQUANTIZE
    ops; ``delegates`` / ``outside`` / ``delegated_gemm_pct``: what LiteRT's default
    XNNPACK delegate takes at load time and what it leaves to the builtin kernels.
    """
    builtin = load_tflite_interpreter(path, threads=1, delegate=False)
    ops: dict[str, Counter] = {}
    conversions: Counter = Counter()
    for row in _op_rows(builtin):
        name = row["name"]
        if name in CONVERSIONS:
            key = "QUANTIZE (requantize)" if name == "QUANTIZE" and row["in"] and row["in"][0] in INTEGER else name
            conversions[key] += 1
            continue
        ops.setdefault(name, Counter())[_precision(row["in"], row["out"])] += 1

    after = _op_rows(load_tflite_interpreter(path, threads=1, delegate=True))
    taken = _delegated_ops(after)
    outside = Counter(f"{row['name']} ({_precision(row['in'], row['out'])})" for i, row in enumerate(after)
                      if row["name"] != "DELEGATE" and i not in taken)
    gemm_outside = sum(c for key, c in outside.items() if key.split(" ")[0] in GEMM_KINDS)
    return Census.of(ops, GEMM_KINDS, gemm_outside, outside_in_ops=True, conversions=dict(sorted(conversions.items())),
                     delegates=sum(1 for row in after if row["name"] == "DELEGATE"), outside=dict(sorted(outside.items())))


# --------------------------------------------------------------------------- the backend


def lower(ctx: LowerContext) -> Lowered:
    """Write ``ctx.artifact``, the ``.tflite`` of ``ctx.graph`` (the first image is the example input),
    with its op census and I/O tensors."""
    quantizer = ctx.recipe.make_quantizer() if ctx.precision == "int8" else None
    with phase("convert"):
        ctx.artifact.write_bytes(to_tflite(ctx.graph, ctx.images[:1], quantizer))
    with phase("census"):
        io = io_spec(load_tflite_interpreter(ctx.artifact, threads=1, delegate=False))
        return Lowered(census=tflite_census(ctx.artifact), io=io)


def open_artifact(path: Path, threads: int = 1) -> TFLiteModel:
    """The ``.tflite`` loaded on the host LiteRT interpreter, with the XNNPACK delegate as on Android
    (``threads``: 0, the runtime's default)."""
    return TFLiteModel(path, threads)


def validate(ctx: LowerContext, lowered: Lowered) -> dict:
    """Run the images through the ``.tflite`` (XNNPACK delegate, as on Android) and compare with PyTorch."""
    with phase("artifact logits"):
        ours = logits_of(open_artifact(ctx.artifact), ctx.images)
    return {**compare_logits(ours, ctx.reference, ctx.quantized, ctx.images),
            "runtime": f"ai-edge-litert {runtime_version()} (XNNPACK delegate)"}
