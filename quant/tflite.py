"""LiteRT (TensorFlow Lite): a ``.tflite`` of any variant, validated on the host LiteRT interpreter.

Conversion is litert-torch's (``litert_torch.convert``): the PT2E graph that
:mod:`quant.recipes` quantized with LiteRT's own ``PT2EQuantizer`` goes in with
``QuantConfig(pt2e_quantizer=...)``, which tells the converter to fuse every
``dequantize -> op -> quantize`` it finds into an int8 TFLite kernel (without it the
q/dq pairs stay in the file as QUANTIZE/DEQUANTIZE around float kernels: correct but
about 8x slower). The host runtime is ``ai-edge-litert``, the successor of
``tflite-runtime``: the same interpreter, with the XNNPACK delegate applied by default
as on Android.

Int8 models have int8 input and output (what the converter produces for a static PT2E
graph): the caller quantizes the normalised image with the input tensor's scale and zero
point and dequantizes the logits with the output's. :func:`io_spec` reads both; the
export manifest records them.

Both packages are an optional extra (``pip install 'mobileformer[tflite]'``); nothing in
this module imports them until it is used.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .cli import UserError, native_logs_silenced
from .metrics import validation_record
from .patches import scoped_patches

INSTALL_HINT = "pip install 'mobileformer[tflite]'"
MAGIC = b"TFL3"  # the flatbuffer file identifier of a TFLite model, bytes 4..8
# What the issue tracks: every conv, linear and matmul, by TFLite builtin.
GEMM_KINDS = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "conv", "TRANSPOSE_CONV": "conv", "CONV_3D": "conv",
              "FULLY_CONNECTED": "linear", "BATCH_MATMUL": "matmul"}
CONVERSIONS = ("QUANTIZE", "DEQUANTIZE")
INTEGER = ("int8", "uint8", "int16")


class TFLiteError(UserError):
    """The LiteRT extra is missing, or a ``.tflite`` is missing, truncated, corrupt or fails to run."""


def require_litert() -> None:
    """Fail with one clear message when the optional LiteRT packages are not installed.

    Also keeps the converter's C++ INFO logs (one line per folded op) off stderr unless
    ``TF_CPP_MIN_LOG_LEVEL`` says otherwise; it has to be set before the first import.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    missing = []
    for module, package in (("litert_torch", "litert-torch"), ("ai_edge_litert", "ai-edge-litert")):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise TFLiteError(f"the tflite backend needs {' and '.join(missing)}, an optional extra: {INSTALL_HINT}")


def runtime_version() -> str | None:
    try:
        return importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------- quantizer


def litert_quantizer(qat: bool = False):
    """LiteRT's PT2E quantizer: per-channel symmetric int8 weights, int8 activations.

    It annotates conv, linear, add, mul and cat (and lets shape ops share their input's
    parameters); everything else stays float between DEQUANTIZE and QUANTIZE. For QAT,
    conv + BatchNorm [+ relu] is annotated by our :class:`~quant.quantizer.ConvBatchNormAnnotator`
    instead of LiteRT's own: litert-torch 0.10.0's hands torch.export a plain function,
    which torchao 0.18 refuses ("Expected `mod` to be an instance of `torch.nn.Module`").
    """
    require_litert()
    from litert_torch.quantize import pt2e_quantizer

    config = pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_qat=qat)
    if not qat:
        return pt2e_quantizer.PT2EQuantizer().set_global(config)
    from torchao.quantization.pt2e.quantizer import ComposableQuantizer

    from .quantizer import ConvBatchNormAnnotator

    class WithoutConvBatchNorm(pt2e_quantizer.PT2EQuantizer):
        """LiteRT's quantizer minus its QAT-only conv+BN patterns (annotated before it runs)."""

        STATIC_QAT_ONLY_OPS: list[str] = []

    return ComposableQuantizer([ConvBatchNormAnnotator(config), WithoutConvBatchNorm().set_global(config)])


# --------------------------------------------------------------------------- conversion


# The litert-torch release :func:`_keep_dequantize_meta` was written and checked against.
LAYOUT_FIX_PINNED = {"litert-torch": "0.10.0"}


def _keep_dequantize_meta(original):
    """Work around a litert-torch 0.10.0 bug in its NCHW -> NHWC layout pass.

    ``OptimizeLayoutTransposesPass.insert_t_q_dq`` overwrites the metadata of the
    dequantize node it starts from (``input_dq.meta = transpose_node_meta``), dropping its
    shape. When that int8 tensor has a second consumer that the pass puts in the other
    layout, the pass then sees a tensor of unknown rank and fails with ``AssertionError:
    Attempting to convert non-NHWC compatible node to NHWC: dequantize_per_tensor_N``.
    Int8 mobile_former_26m hits it in its first block. The fix keeps the original
    node's metadata; the inserted transpose, quantize and dequantize nodes are built
    exactly as before.
    """
    def insert_t_q_dq(self, graph, input_dq, target, transpose_func, transpose_node_meta):
        meta = input_dq.meta
        try:
            return original(self, graph, input_dq, target, transpose_func, transpose_node_meta)
        finally:
            input_dq.meta = meta
    return insert_t_q_dq


def layout_pass_fix() -> contextlib.AbstractContextManager[bool]:
    """:func:`_keep_dequantize_meta` for the duration of a conversion (see :mod:`quant.patches`)."""
    from litert_torch._convert.fx_passes.optimize_layout_transposes_pass import pass_body

    return scoped_patches([(pass_body.OptimizeLayoutTransposesPass, "insert_t_q_dq", _keep_dequantize_meta)],
                          LAYOUT_FIX_PINNED)


class _DropTrainingModeWarning(logging.Filter):
    """litert-torch warns that an exported PT2E graph is 'in training mode'; it is not (PTQ/QAT convert it in eval)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "converted in training mode" not in record.getMessage()


@contextlib.contextmanager
def _quiet_converter() -> Iterator[None]:
    """No progress tree from litert-torch (our own stage lines say what happens)."""
    previous = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    filt = _DropTrainingModeWarning()
    logging.getLogger().addFilter(filt)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(filt)
        if previous is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = previous


def to_tflite(graph: torch.nn.Module, example: torch.Tensor, precision: str) -> bytes:
    """The ``.tflite`` flatbuffer of ``graph``: a float model (fp32) or a converted PT2E graph (int8)."""
    require_litert()
    import litert_torch
    from litert_torch.quantize.quant_config import QuantConfig

    # The converter only reads the quantizer's mode (static, not dynamic) from the config.
    quant_config = QuantConfig(pt2e_quantizer=litert_quantizer()) if precision == "int8" else None
    with _quiet_converter(), layout_pass_fix():
        return litert_torch.convert(graph, (example,), quant_config=quant_config).model_content()


# --------------------------------------------------------------------------- runtime


def load_tflite_interpreter(path: str | Path, threads: int = 1, delegate: bool = True):
    """A LiteRT interpreter for ``path``, tensors allocated.

    ``threads``: 0 leaves the runtime's default. ``delegate``: apply the XNNPACK delegate
    (the default on Android and in LiteRT's Python package); ``False`` runs the builtin
    kernels only, which keeps every op of the flatbuffer visible (the op census).
    Raises :class:`TFLiteError` for a missing, truncated or corrupt file.
    """
    require_litert()
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    path = Path(path)
    if not path.is_file():
        raise TFLiteError(f"model not found: {path}")
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:8] != MAGIC:
        raise TFLiteError(f"{path.name} is not a TFLite model (no {MAGIC.decode()} identifier)")
    if threads < 0:
        raise TFLiteError(f"threads must be 0 (runtime default) or more, got {threads}")
    resolver = OpResolverType.AUTO if delegate else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        with native_logs_silenced():  # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            interpreter = Interpreter(model_path=str(path), num_threads=threads or None,
                                      experimental_op_resolver_type=resolver)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise TFLiteError(f"cannot load {path.name} (truncated or corrupt?): {e}") from None
    return interpreter


def _quantization(detail: dict) -> dict | None:
    scale, zero_point = detail["quantization"]
    if np.dtype(detail["dtype"]).kind == "f" or scale == 0.0:
        return None
    return {"scale": float(scale), "zero_point": int(zero_point)}


def io_spec(interpreter) -> dict:
    """The input and output tensors: shape, dtype and (for int8) scale and zero point."""
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    spec = {}
    for key, detail in (("input", inp), ("output", out)):
        entry = {"shape": [int(d) for d in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name}
        quant = _quantization(detail)
        if quant:
            entry["quantization"] = quant
        spec[key] = entry
    if "quantization" in spec["input"]:
        spec["input"]["quantization"]["formula"] = "q = clamp(round(x / scale) + zero_point, -128, 127), x normalised"
    if "quantization" in spec["output"]:
        spec["output"]["quantization"]["formula"] = "logits = (q - zero_point) * scale"
    return spec


class TFLiteModel:
    """A loaded ``.tflite`` called like the PyTorch model: float ``[1, 3, H, W]`` in, float logits out.

    Int8 input and output are quantized and dequantized here with the tensors' own
    parameters, as an app would.
    """

    def __init__(self, path: str | Path, threads: int = 1, delegate: bool = True) -> None:
        self.name = Path(path).name
        self.interpreter = load_tflite_interpreter(path, threads, delegate)
        (self._in,), (self._out,) = self.interpreter.get_input_details(), self.interpreter.get_output_details()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        data = x.detach().float().numpy()
        dtype = np.dtype(self._in["dtype"])
        expected = [int(d) for d in self._in["shape"]]
        if list(data.shape) != expected:
            raise TFLiteError(f"{self.name} takes {expected}, got {list(data.shape)}")
        quant = _quantization(self._in)
        if quant:
            info = np.iinfo(dtype)
            scaled = data / quant["scale"]  # rounded half away from zero, as LiteRT's QUANTIZE does
            data = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + quant["zero_point"], info.min, info.max)
        self.interpreter.set_tensor(self._in["index"], data.astype(dtype))
        try:
            self.interpreter.invoke()
        except RuntimeError as e:
            raise TFLiteError(f"{self.name} failed to run: {e}") from None
        y = self.interpreter.get_tensor(self._out["index"]).astype(np.float32)
        quant = _quantization(self._out)
        if quant:
            y = (y - quant["zero_point"]) * quant["scale"]
        return torch.from_numpy(y.copy())


def _fixed_input(detail: dict) -> np.ndarray:
    rng = np.random.default_rng(0)
    dtype = np.dtype(detail["dtype"])
    shape = tuple(int(d) for d in detail["shape"])
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def time_tflite(path: str | Path, threads: int, warmup: int, iterations: int) -> list[float]:
    """Whole-model latency: milliseconds of each of ``iterations`` ``invoke()`` calls.

    A fixed pseudo-random input (seed 0, of the input tensor's dtype) is set once; only
    ``invoke()`` is timed, with the XNNPACK delegate as LiteRT applies it by default.
    """
    if warmup < 0 or iterations < 1:
        raise TFLiteError(f"need warmup >= 0 and iterations >= 1, got {warmup} and {iterations}")
    interpreter = load_tflite_interpreter(path, threads)
    (inp,) = interpreter.get_input_details()
    interpreter.set_tensor(inp["index"], _fixed_input(inp))
    samples = []
    try:
        for i in range(warmup + iterations):
            start = time.perf_counter()
            interpreter.invoke()
            elapsed = (time.perf_counter() - start) * 1e3
            if i >= warmup:
                samples.append(elapsed)
    except RuntimeError as e:
        raise TFLiteError(f"{Path(path).name} failed to run: {e}") from None
    return samples


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


def tflite_census(path: str | Path) -> dict:
    """Op census of a ``.tflite``: every op of the flatbuffer, int8 or float.

    An op is int8 when all its data tensors (inputs other than int32 shapes and biases,
    and outputs) are integer. ``ops``: builtin name -> {"int8": n, "float": n};
    ``kinds``: the same summed over conv / linear / matmul / other; ``conversions``:
    QUANTIZE (float -> int8, or int8 -> int8 requantize) and DEQUANTIZE ops, left out of
    ``ops`` like XNNPACK's Convert nodes; ``int8_gemm_pct``: share of convs, fully
    connected and batch matmuls running int8. ``delegates`` / ``outside`` /
    ``delegated_gemm_pct``: what LiteRT's default XNNPACK delegate takes at load time
    and what it leaves to the builtin kernels.
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
    kinds: dict[str, Counter] = {}
    for name, counts in ops.items():
        kinds.setdefault(GEMM_KINDS.get(name, "other"), Counter()).update(counts)
    gemm_total = sum(sum(c.values()) for name, c in ops.items() if name in GEMM_KINDS)
    gemm_int8 = sum(c["int8"] for name, c in ops.items() if name in GEMM_KINDS)

    after = _op_rows(load_tflite_interpreter(path, threads=1, delegate=True))
    taken = _delegated_ops(after)
    outside = Counter(f"{row['name']} ({_precision(row['in'], row['out'])})" for i, row in enumerate(after)
                      if row["name"] != "DELEGATE" and i not in taken)
    gemm_outside = sum(c for key, c in outside.items() if key.split(" ")[0] in GEMM_KINDS)
    return {
        "ops": {k: dict(v) for k, v in sorted(ops.items())},
        "kinds": {k: dict(v) for k, v in sorted(kinds.items())},
        "conversions": dict(sorted(conversions.items())),
        "int8_gemm_pct": round(100.0 * gemm_int8 / gemm_total, 2) if gemm_total else 0.0,
        "delegates": sum(1 for row in after if row["name"] == "DELEGATE"),
        "outside": dict(sorted(outside.items())),
        "delegated_gemm_pct": round(100.0 * (gemm_total - gemm_outside) / gemm_total, 2) if gemm_total else 100.0,
    }


# --------------------------------------------------------------------------- export


def validate_tflite(path: str | Path, reference: torch.nn.Module, quantized: torch.nn.Module | None,
                    images: torch.Tensor) -> dict:
    """Run ``images`` through the ``.tflite`` and compare with PyTorch (the keys of the ``.pte`` validation)."""
    model = TFLiteModel(path)
    with torch.no_grad():
        ref = torch.cat([reference(x) for x in images.split(1)])
        ours = torch.cat([model(x) for x in images.split(1)])
        pt2e = torch.cat([quantized(x) for x in images.split(1)]) if quantized is not None else None
    return {**validation_record(ref, ours, pt2e), "runtime": f"ai-edge-litert {runtime_version()} (XNNPACK delegate)"}


def export_tflite(reference: torch.nn.Module, graph: torch.nn.Module, images: torch.Tensor, artifact: Path,
                  precision: str) -> tuple[dict, dict, dict]:
    """Write ``artifact`` (the ``.tflite`` of ``graph``) and return (op census, validation record, I/O spec).

    ``reference``: the fp32 model; ``graph``: what to convert, the reference itself for
    fp32 or the converted PT2E graph for int8. ``images``: calibration/validation images;
    the first one is the example input of the conversion.
    """
    artifact.write_bytes(to_tflite(graph, images[:1], precision))
    census = tflite_census(artifact)
    validation = validate_tflite(artifact, reference, graph if precision == "int8" else None, images)
    io = io_spec(load_tflite_interpreter(artifact, threads=1, delegate=False))
    return census, validation, io
