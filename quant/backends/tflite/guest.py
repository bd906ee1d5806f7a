"""The guest of ``quant.bench --arm64 X.tflite``: LiteRT inferences between marker syscalls.

Run by an AArch64 Python under qemu-user (:mod:`quant.backends.tflite.arm64`), as a file,
with only the standard library, numpy and ai-edge-litert there: it imports nothing of ours.

    python3 guest.py MODEL WARMUP ITERATIONS

loads MODEL in LiteRT's interpreter as :func:`quant.backends.tflite.runtime.tflite_invoker` does (the
XNNPACK delegate LiteRT applies by default, one thread, a fixed pseudo-random input set
once), runs WARMUP uncounted inferences, then ITERATIONS counted ones, each between the
markers that mfbench issues around its inferences (``native/mfbench/src/markers.h``), so
that the counting plugin cuts the count the same way for a ``.tflite`` as for a ``.pte``.
It prints one JSON line: the ISA features the guest saw, the runtime's version and the
wall-clock milliseconds of each counted inference (under emulation: no phone figure).

LiteRT's Python API reaches no profiler (the interpreter has no per-operator timing call,
and the wheel ships no ``benchmark_model``), so only whole inferences are counted.
"""
from __future__ import annotations

import ctypes
import json
import sys
import time
from collections.abc import Callable

MARKER_SYSCALL = 0x4D46
INFERENCE_BEGIN, INFERENCE_END, PASS_BEGIN = 1, 2, 5  # markers.h's kinds
UNTRACED_PASS = 0
AT_HWCAP, AT_HWCAP2 = 16, 26
# mfbench's names for the hwcaps that decide XNNPACK's kernels (native/mfbench/src/platform.cpp):
# (name, AT_HWCAP bits that must all be set, AT_HWCAP2 bits).
FEATURES = (("dotprod", 1 << 20, 0), ("fp16", (1 << 9) | (1 << 10), 0), ("i8mm", 0, 1 << 13),
            ("bf16", 0, 1 << 14), ("sve", 1 << 22, 0), ("sve2", 0, 1 << 1), ("sme", 0, 1 << 23))


def marker(libc: ctypes.CDLL) -> Callable[[int, int], object]:
    """``mark(kind, argument)``: the marker syscall (a real kernel answers ENOSYS, harmlessly)."""
    syscall = libc.syscall
    syscall.restype, syscall.argtypes = ctypes.c_long, [ctypes.c_long] * 3
    return lambda kind, argument: syscall(MARKER_SYSCALL, kind, argument)


def counted_inferences(invoke: Callable[[], object], mark: Callable[[int, int], object],
                       clock: Callable[[], float], warmup: int, iterations: int) -> list[float]:
    """``warmup`` inferences, then the untraced pass's ``iterations``, each between begin and end
    markers; the milliseconds of each (``clock`` in seconds, read outside the markers)."""
    for _ in range(warmup):
        invoke()
    mark(PASS_BEGIN, UNTRACED_PASS)
    samples = []
    for i in range(iterations):
        start = clock()
        mark(INFERENCE_BEGIN, i)
        invoke()
        mark(INFERENCE_END, i)
        samples.append((clock() - start) * 1e3)
    return samples


def isa_features(hwcap: int, hwcap2: int) -> list[str]:
    """The features as mfbench names them, from the auxiliary vector's hwcaps."""
    return [name for name, bits, bits2 in FEATURES if hwcap & bits == bits and hwcap2 & bits2 == bits2]


def fixed_input(detail: dict):
    """The input every LiteRT run of ours feeds: pseudo-random (seed 0) values of the tensor's dtype."""
    import numpy as np

    rng = np.random.default_rng(0)
    dtype = np.dtype(detail["dtype"])
    shape = tuple(int(d) for d in detail["shape"])
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def main(argv: list[str]) -> int:
    import ai_edge_litert
    from ai_edge_litert.interpreter import Interpreter

    model, warmup, iterations = argv[0], int(argv[1]), int(argv[2])
    interpreter = Interpreter(model_path=model, num_threads=1)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    interpreter.set_tensor(inp["index"], fixed_input(inp))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.getauxval.restype, libc.getauxval.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
    samples = counted_inferences(interpreter.invoke, marker(libc), time.perf_counter, warmup, iterations)
    features = isa_features(libc.getauxval(AT_HWCAP), libc.getauxval(AT_HWCAP2))
    print(json.dumps({"features": features, "litert": ai_edge_litert.__version__, "samples_ms": samples}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
