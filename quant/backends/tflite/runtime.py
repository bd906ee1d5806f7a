"""The host LiteRT runtime a ``.tflite`` runs on, a loaded model called like the PyTorch model.

``ai-edge-litert``, the successor of ``tflite-runtime``, with the XNNPACK delegate applied by
default as on Android: :class:`TFLiteModel`, :func:`tflite_invoker`, :func:`time_tflite`. It is
an optional extra (``pip install 'mobileformer[tflite]'``), imported only when used.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ...errors import UserError, native_logs_silenced
from .guest import fixed_input


INSTALL_HINT = "pip install 'mobileformer[tflite]'"
MAGIC = b"TFL3"  # the flatbuffer file identifier of a TFLite model, bytes 4..8


class TFLiteError(UserError):
    """The LiteRT extra is missing, or a ``.tflite`` is missing, truncated, corrupt or fails to run."""


def require_litert() -> None:
    """Fail with one clear message when the optional LiteRT packages are not installed.

    The import runs with stderr silenced: TensorFlow's "oneDNN custom operations are on" line,
    with absl's "All log messages before absl::InitializeLog()" before it, ignores
    ``TF_CPP_MIN_LOG_LEVEL`` (which a command sets: :data:`quant.errors.COMMAND_ENVIRONMENT`).
    """
    missing = []
    for module, package in (("litert_torch", "litert-torch"), ("ai_edge_litert", "ai-edge-litert")):
        try:
            with native_logs_silenced():
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

    def invoker(self, x: torch.Tensor | None = None) -> Callable[[], None]:
        """One ``invoke()`` per call on a fixed pseudo-random input (seed 0, of the input tensor's dtype)
        set once; ``x`` is not used: the timing leaves out quantizing it, as an app's loop does."""
        self.interpreter.set_tensor(self._in["index"], fixed_input(self._in))

        def invoke() -> None:
            try:
                self.interpreter.invoke()
            except RuntimeError as e:
                raise TFLiteError(f"{self.name} failed to run: {e}") from None
        return invoke


def tflite_invoker(path: str | Path, threads: int) -> Callable[[], None]:
    """One ``invoke()`` of the loaded model per call, on a fixed pseudo-random input (seed 0,
    of the input tensor's dtype) set once, with the XNNPACK delegate as LiteRT applies it by
    default: what :func:`time_tflite` and ``quant.bench`` time."""
    return TFLiteModel(path, threads).invoker()


def time_tflite(path: str | Path, threads: int, warmup: int, iterations: int) -> list[float]:
    """Whole-model latency: milliseconds of each of ``iterations`` calls of :func:`tflite_invoker`."""
    if warmup < 0 or iterations < 1:
        raise TFLiteError(f"need warmup >= 0 and iterations >= 1, got {warmup} and {iterations}")
    invoke = tflite_invoker(path, threads)
    samples = []
    for i in range(warmup + iterations):
        start = time.perf_counter()
        invoke()
        elapsed = (time.perf_counter() - start) * 1e3
        if i >= warmup:
            samples.append(elapsed)
    return samples
