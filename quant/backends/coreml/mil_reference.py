"""A reference executor for the MIL programs ``quant.export --backend coreml`` writes: runs an ``.mlpackage`` on Linux.

Core ML predicts only on Apple platforms, but the MIL program inside a package is plain
data. This loads it with its weights (coremltools, no Core ML framework needed) and runs
its ``main`` function op by op:

- with coremltools' own op semantics where it has them: the op is rebuilt with the MIL
  builder on concrete numpy values and coremltools' value inference computes it
  (elementwise, activations, reductions, the other layout ops, GEMMs, int8 weights);
- with PyTorch for the ops coremltools cannot compute (``conv``, ``batch_norm``);
- with numpy for ``quantize``, ``dequantize``, ``reshape`` and ``transpose``, in the formulas of MIL's
  op definitions. They are 70% of an int8 program's ops, and rebuilding an op costs coremltools
  about 0.5 ms, most of the run; the tests check them against PT2E's quantize ops and PyTorch.

Every op computes in fp32 (fp16 inputs widened) and its result is rounded to the dtype the
program declares, so a program in Core ML's default fp16 precision runs with fp16 tensors
between ops, and no sum depends on numpy's memory layout. What this proves: the program, its weights,
scales, zero points and op wiring compute what the PyTorch graph computes. What it does
not: Core ML's kernels, the Neural Engine's or GPU's numerics (their fp16 accumulation,
their int8 fusions) are never exercised. An op outside the families below is refused by
name (:class:`UnsupportedOpError`), never skipped.
"""
from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import numpy as np
import torch

ENGINE = "quant.backends.coreml.mil_reference: the MIL program run op by op in numpy/PyTorch (coremltools op semantics), not Core ML"


class UnsupportedOpError(NotImplementedError):
    """The program has an op this executor does not implement."""


def load_program(package: Path):
    """The MIL program of an ``.mlpackage``, its weights read from the package's weight file.

    Read from a temporary copy: coremltools' ``ModelPackage`` rewrites the ``Manifest.json``
    of a package it opens (in its own JSON layout), which would change the artifact's bytes
    and sha256 after the export wrote them.
    """
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load

    with tempfile.TemporaryDirectory() as tmp:
        copy = shutil.copytree(package, Path(tmp) / Path(package).name)
        model = ct.models.MLModel(str(copy), skip_model_load=True)
        spec = model.get_spec()
        return load(spec, spec.specificationVersion, file_weights_dir=model.weights_dir)


@contextlib.contextmanager
def _quiet_coremltools() -> Iterator[None]:
    """coremltools logs a warning each time its value inference rounds an fp32 result to fp16."""
    logger = logging.getLogger("coremltools")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _out_dtype(op) -> np.dtype:
    return _dtype(op.outputs[0])


def _dtype(var) -> np.dtype:
    """The numpy dtype the program declares for ``var``."""
    from coremltools.converters.mil.mil import types

    return np.dtype(types.nptype_from_builtin(var.dtype))


# --------------------------------------------------------------------------- op families


def _constant(op, args: dict) -> list:
    """``const``: the value stored in the program (weights come from the package's weight file)."""
    return [op.outputs[0].val]


def _coremltools_value(op, args: dict) -> list:
    """The op rebuilt with the MIL builder on concrete inputs; coremltools' value inference computes it,
    in fp32 (:func:`_widened`), each result rounded to the dtype the program declares for it."""
    from coremltools.converters.mil.mil import Builder as mb
    from coremltools.converters.mil.mil import Function

    args = {k: bool(v) if isinstance(v, np.bool_) else _widened(v) for k, v in args.items()}  # keepdims: a bool
    with Function({}, opset_version=op.opset_version):
        outputs = getattr(mb, op.op_type)(**args)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [np.asarray(_materialized(v)).astype(_dtype(var)) for v, var in zip(outputs, op.outputs)]


def _widened(value):
    """An fp16 input (or list of inputs) as fp32. Value inference computes in the inputs' dtype, and in
    fp16 numpy's sum depends on memory layout: along a strided axis (a softmax after a transpose) it
    adds term by term in fp16, and a sum of 12,544 terms near 1 stops at 2048 (the next one rounds
    away). Core ML's kernels are not known to do that, so every op accumulates in fp32 here, as
    ``conv`` and ``batch_norm`` do; fp16 stays between ops."""
    if isinstance(value, list):
        return [_widened(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype == np.float16:
        return value.astype(np.float32)
    return value


def _materialized(var) -> np.ndarray:
    """A var's value; dequantize ops compute theirs on request (``materialized_val_inference``)."""
    if var.val is not None:
        return var.val
    value = var.op.materialized_val_inference()
    if value is None:
        raise AssertionError(f"coremltools computed no value for {var.op.op_type} {var.op.name!r}")
    return value


def _conv(op, args: dict) -> list:
    """``conv`` (iOS 17 semantics): PyTorch's conv2d in fp32, explicit padding ``[top, bottom, left, right]``."""
    pad_type = str(args["pad_type"])
    if pad_type not in ("custom", "valid"):
        raise UnsupportedOpError(f"conv {op.name!r} with pad_type {pad_type!r}")
    x = torch.from_numpy(np.asarray(args["x"], dtype=np.float32))
    if x.dim() != 4:
        raise UnsupportedOpError(f"conv {op.name!r} on a rank-{x.dim()} input (2-D convolution only)")
    if pad_type == "custom":
        top, bottom, left, right = (int(p) for p in args["pad"])
        x = torch.nn.functional.pad(x, (left, right, top, bottom))
    weight = torch.from_numpy(np.asarray(args["weight"], dtype=np.float32))
    bias = torch.from_numpy(np.asarray(args["bias"], dtype=np.float32)) if "bias" in args else None
    y = torch.nn.functional.conv2d(x, weight, bias, stride=tuple(int(s) for s in args["strides"]),
                                   dilation=tuple(int(d) for d in args["dilations"]), groups=int(args["groups"]))
    return [y.numpy().astype(_out_dtype(op))]


def _quantize(op, args: dict) -> list:
    """``quantize`` (iOS 17): ``clip(round(x / scale) + zero_point)`` to the output dtype's range, in fp32,
    rounding half to even (numpy's ``around``, as coremltools' value inference does)."""
    x = np.asarray(args["input"], dtype=np.float32)
    scale, zero_point = _scale_and_zero_point(args, x.ndim)
    q = np.around(x / scale)
    if zero_point is not None:
        q += zero_point
    dtype = _out_dtype(op)
    return [np.clip(q, np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)]


def _dequantize(op, args: dict) -> list:
    """``dequantize`` (iOS 17): ``(q - zero_point) * scale`` in fp32, rounded to the declared dtype."""
    q = np.asarray(args["input"]).astype(np.float32)
    scale, zero_point = _scale_and_zero_point(args, q.ndim)
    if zero_point is not None:
        q = q - zero_point
    return [(q * scale).astype(_out_dtype(op))]


def _reshape(op, args: dict) -> list:
    """``reshape``: numpy's, where ``-1`` is inferred and ``0`` (same rank only) keeps the input's dimension."""
    x, shape = args["x"], [int(d) for d in args["shape"]]
    if 0 in shape and len(shape) == x.ndim:
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return [np.reshape(x, shape).astype(_out_dtype(op))]


def _transpose(op, args: dict) -> list:
    """``transpose``: the input's axes in the order ``perm``."""
    return [np.ascontiguousarray(np.transpose(args["x"], [int(a) for a in args["perm"]])).astype(_out_dtype(op))]


def _scale_and_zero_point(args: dict, rank: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Scale and zero point (if any) as fp32, a per-channel vector shaped to broadcast along ``axis``."""
    shape = (rank * [1]) if "axis" not in args else [-1 if i == int(args["axis"]) % rank else 1 for i in range(rank)]
    scale = np.asarray(args["scale"], dtype=np.float32)
    zero_point = np.asarray(args["zero_point"]).astype(np.float32) if "zero_point" in args else None
    if scale.ndim == 1:
        scale = scale.reshape(shape)
        zero_point = None if zero_point is None else zero_point.reshape(shape)
    return scale, zero_point


def _batch_norm(op, args: dict) -> list:
    """``batch_norm`` (inference): ``(x - mean) / sqrt(variance + epsilon) * gamma + beta`` over axis 1, in fp32."""
    x = np.asarray(args["x"], dtype=np.float32)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    per_channel = {k: np.asarray(args[k], dtype=np.float32).reshape(shape) if k in args else None
                   for k in ("mean", "variance", "gamma", "beta")}
    y = (x - per_channel["mean"]) / np.sqrt(per_channel["variance"] + np.float32(args.get("epsilon", 1e-5)))
    if per_channel["gamma"] is not None:
        y = y * per_channel["gamma"]
    if per_channel["beta"] is not None:
        y = y + per_channel["beta"]
    return [y.astype(_out_dtype(op))]


# Each family: the ops it covers and the one function that computes them. An op in none is refused.
FAMILIES: dict[str, tuple[frozenset[str], Callable]] = {
    "constant": (frozenset({"const"}), _constant),
    "elementwise": (frozenset({"add", "sub", "mul", "real_div", "maximum", "minimum", "exp", "rsqrt", "sqrt"}),
                    _coremltools_value),
    "activation": (frozenset({"relu", "relu6", "clip", "gelu", "sigmoid", "sigmoid_hard", "thresholded_relu",
                              "softmax"}), _coremltools_value),
    "reduction": (frozenset({"reduce_mean"}), _coremltools_value),
    "layout": (frozenset({"concat", "slice_by_index", "expand_dims", "squeeze", "cast"}), _coremltools_value),
    "reshape": (frozenset({"reshape"}), _reshape),
    "transpose": (frozenset({"transpose"}), _transpose),
    "gemm": (frozenset({"linear", "matmul"}), _coremltools_value),
    "weight dequantization": (frozenset({"constexpr_affine_dequantize"}), _coremltools_value),
    "quantize": (frozenset({"quantize"}), _quantize),
    "dequantize": (frozenset({"dequantize"}), _dequantize),
    "convolution": (frozenset({"conv"}), _conv),
    "normalization": (frozenset({"batch_norm"}), _batch_norm),
}
IMPLEMENTED = {op_type: fn for ops, fn in FAMILIES.values() for op_type in ops}


def check_supported(function) -> None:
    """Refuse a program with any op outside :data:`FAMILIES`, naming every such op, before running anything."""
    unknown = sorted({op.op_type for op in function.operations if op.op_type not in IMPLEMENTED})
    if unknown:
        raise UnsupportedOpError(f"the MIL reference executor does not implement: {', '.join(unknown)}")


def _arguments(op, values: dict[str, np.ndarray]) -> dict:
    args = {}
    for name, var in op.inputs.items():
        args[name] = [values[v.name] for v in var] if isinstance(var, (list, tuple)) else values[var.name]
    return args


class Executor:
    """Runs one program's ``main`` on one input at a time.

    Built once per program: the op list, where each value is last used, and the values that
    depend on no input (weights dequantized from int8, shapes), computed here and reused by
    every run, so evaluating 10,000 images does the weights' work once.
    """

    def __init__(self, program) -> None:
        function = program.functions["main"]
        check_supported(function)
        (self.input_name,) = function.inputs
        (output,) = function.outputs
        self.output_name = output.name
        self.input_dtype = _dtype(function.inputs[self.input_name])
        self.constants: dict[str, np.ndarray] = {}
        self.ops = []
        with _quiet_coremltools():
            for op in function.operations:
                if all(v.name in self.constants for v in _input_vars(op)):
                    results = IMPLEMENTED[op.op_type](op, _arguments(op, self.constants))
                    self.constants.update((var.name, value) for var, value in zip(op.outputs, results))
                else:
                    self.ops.append(op)
        self.last_use = {v.name: i for i, op in enumerate(self.ops) for v in _input_vars(op)}

    def __call__(self, x: np.ndarray, keep: Collection[str] = ()) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(the output for ``x``, the values of the vars named in ``keep``).

        Values no later op needs are dropped as the run goes, so memory stays at a few
        activations whatever the program's length.
        """
        values = {**self.constants, self.input_name: np.asarray(x, dtype=self.input_dtype)}
        kept = {name: values[name] for name in keep if name in self.constants}
        with _quiet_coremltools():
            for i, op in enumerate(self.ops):
                results = IMPLEMENTED[op.op_type](op, _arguments(op, values))
                for var, value in zip(op.outputs, results):
                    values[var.name] = value
                    if var.name in keep:
                        kept[var.name] = value
                for var in _input_vars(op):
                    if self.last_use[var.name] == i and var.name not in self.constants and var.name != self.output_name:
                        values.pop(var.name, None)
        return values[self.output_name], kept


def run(program, x: np.ndarray, keep: Collection[str] = ()) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """:class:`Executor` for one input: ``main`` on ``x``, (its output, the values of the vars named in ``keep``)."""
    return Executor(program)(x, keep)


def _input_vars(op) -> Iterator:
    for var in op.inputs.values():
        yield from var if isinstance(var, (list, tuple)) else (var,)
