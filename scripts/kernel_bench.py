"""Is XNNPACK's int8 faster than its fp32 on this CPU, layer by layer, at which sizes?

An experiment, not a test: single layers at ResNet-like sizes and at Mobile-Former 26m's
sizes, each exported fp32 and int8 (ExecuTorch's XNNPACKQuantizer, per-channel weights),
timed by the host ExecuTorch runtime as ``quant.bench`` times whole models (batch 1,
warm-up, then the median of the timed runs), or with ``--arm64`` counted in AArch64
instructions per inference under qemu as ``quant.bench --arm64`` counts them (the
phone core's view; one thread). Prints a Markdown table.

    PYTHONPATH=. .venv/bin/python scripts/kernel_bench.py [--threads 1] [--iterations 300]
    PYTHONPATH=. .venv/bin/python scripts/kernel_bench.py --arm64 [--cpu cortex-a76]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from quant.backends.xnnpack.arm64 import CPUS, DEFAULT_CPU, count_instructions
from quant.bench import interleaved_runs
from quant.formats import summarize
from quant.backends.xnnpack import lower_layer
from quant.backends.xnnpack.runtime import Program, set_threads

# name: (layer, input shape). The "26m" rows are the layers of mobile_former_26m's first
# Mobile sub-block (56x56, 12 -> 36 -> 12 channels, pointwise convs in 4 groups).
CASES = {
    "1x1 conv 64->256, 56x56": (lambda: torch.nn.Conv2d(64, 256, 1), (1, 64, 56, 56)),
    "3x3 conv 64->64, 56x56": (lambda: torch.nn.Conv2d(64, 64, 3, padding=1), (1, 64, 56, 56)),
    "3x3 depthwise 256, 56x56": (lambda: torch.nn.Conv2d(256, 256, 3, padding=1, groups=256), (1, 256, 56, 56)),
    "linear 512->512, 196 tokens": (lambda: torch.nn.Linear(512, 512), (1, 196, 512)),
    "26m: 1x1 conv 12->36 (4 groups), 56x56": (lambda: torch.nn.Conv2d(12, 36, 1, groups=4), (1, 12, 56, 56)),
    "26m: 3x3 depthwise 36, 56x56": (lambda: torch.nn.Conv2d(36, 36, 3, padding=1, groups=36), (1, 36, 56, 56)),
    "26m: 1x1 conv 36->12 (4 groups), 56x56": (lambda: torch.nn.Conv2d(36, 12, 1, groups=4), (1, 36, 56, 56)),
}


def p50_ms(buffer: bytes, x: torch.Tensor, iterations: int) -> float:
    program = Program(buffer)
    return summarize(interleaved_runs([lambda: program(x)], warmup=20, iterations=iterations)[0])["p50"]


def m_instructions(buffer: bytes, cpu: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "layer.pte"
        path.write_bytes(buffer)
        return count_instructions(path, cpu)["instructions"]["per_inference"] / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--arm64", action="store_true", help="AArch64 instructions under qemu instead of host time")
    parser.add_argument("--cpu", default=DEFAULT_CPU, choices=CPUS, help="with --arm64: the named phone core (quant.aarch64.cores)")
    args = parser.parse_args()
    set_threads(args.threads)
    if args.arm64:
        measure, unit, where = (lambda b, x: m_instructions(b, args.cpu)), "M instructions", f"{args.cpu}, qemu"
    else:
        measure, unit, where = (lambda b, x: p50_ms(b, x, args.iterations)), "p50 ms", f"{args.threads} thread"
    print(f"| layer ({where}) | fp32 {unit} | int8 {unit} | fp32 / int8 |\n|---|---|---|---|")
    for name, (make, shape) in CASES.items():
        torch.manual_seed(0)
        layer, x = make(), torch.randn(shape)
        fp32, int8 = (measure(lower_layer(layer, x, q), x) for q in (False, True))
        print(f"| {name} | {fp32:.3f} | {int8:.3f} | {fp32 / int8:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
