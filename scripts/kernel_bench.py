"""Is XNNPACK's int8 faster than its fp32 on this CPU, layer by layer, at which sizes?

An experiment, not a test: single layers at ResNet-like sizes and at Mobile-Former 26m's
sizes, each exported fp32 and int8 (ExecuTorch's XNNPACKQuantizer, per-channel weights),
timed by the host ExecuTorch runtime as ``quant.bench`` times whole models (batch 1,
warm-up, then the median of the timed runs). Prints a Markdown table.

    PYTHONPATH=. .venv/bin/python scripts/kernel_bench.py [--threads 1] [--iterations 300]
"""
from __future__ import annotations

import argparse

import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.exir import to_edge_transform_and_lower

from quant.bench import _timed_runs
from quant.latency import summarize
from quant.recipes import calibrate, convert, get_recipe, prepare
from quant.runtime import Program, set_threads

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


def lowered(layer: torch.nn.Module, x: torch.Tensor, int8: bool) -> bytes:
    graph = layer.eval()
    if int8:
        stock = get_recipe("xnnpack-stock")  # ExecuTorch's quantizer as shipped, on the layer itself
        graph = prepare(layer, stock, x)
        calibrate(graph, [x], progress=False)
        graph = convert(graph, stock)
    program = to_edge_transform_and_lower(torch.export.export(graph, (x,)), partitioner=[XnnpackPartitioner()])
    return program.to_executorch().buffer


def p50_ms(buffer: bytes, x: torch.Tensor, iterations: int) -> float:
    return summarize(_timed_runs(Program(buffer), x, warmup=20, iterations=iterations))["p50"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args()
    set_threads(args.threads)
    print(f"| layer ({args.threads} thread) | fp32 p50 ms | int8 p50 ms | int8 speed-up |\n|---|---|---|---|")
    for name, (make, shape) in CASES.items():
        torch.manual_seed(0)
        layer, x = make(), torch.randn(shape)
        fp32, int8 = (p50_ms(lowered(layer, x, q), x, args.iterations) for q in (False, True))
        print(f"| {name} | {fp32:.3f} | {int8:.3f} | {fp32 / int8:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
