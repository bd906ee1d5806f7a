"""quant.bench --arm64: AArch64 instruction counts under qemu-user.

Fast tests check the attribution arithmetic on a plugin log, the cache's all-or-nothing
setup and the error for a missing emulator. The slow ones set up the real path (Debian
packages, aarch64 SDK, cross-built mfbench, plugin; minutes the first time, cached in
$MOBILEFORMER_CACHE or ~/.cache/mobileformer) and count toys under qemu.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from quant.backends.xnnpack import arm64
from quant.bench import main as bench_main
from quant.formats import block_totals
from quant.backends.xnnpack import lower_layer
from quant.backends.xnnpack.graph import NO_HANDLE, GraphNode, match_operators, node_blocks
from tests.schemas import assert_follows

REPO = Path(__file__).resolve().parents[4]

# A plugin log of one untraced and one traced inference; delegate 0 runs 2 operators,
# delegate 1 runs 1. Kinds: 0 timer read, 1/2 inference begin/end, 3 delegate begin,
# 4 operator events logged, 5 pass begin.
LOG = """\
5 0 100
1 0 1000
0 1 1100
0 1 1150
0 1 1400
0 1 1900
0 1 1960
0 1 2300
0 1 2500
2 0 3000
5 1 3100
1 0 4000
0 1 4010
3 0 4100
0 1 4120
0 1 4170
0 1 4420
0 1 4920
4 0 4990
4 0 5000
3 1 5100
0 1 5150
0 1 5200
0 1 5540
4 1 5600
0 1 5700
2 0 6100
end 0 7000
"""


def entries(text: str) -> list[tuple[str, int, int]]:
    return [(k, int(a), int(c)) for k, a, c in (line.split() for line in text.splitlines())]


def test_log_splits_into_passes_and_inferences():
    passes = arm64.split_passes(entries(LOG))
    assert sorted(passes) == [0, 1]
    assert [arm64.inference_count(e) for e in passes[0]] == [2000]
    assert [arm64.inference_count(e) for e in passes[1]] == [2100]


def test_operators_are_the_differences_of_the_last_clock_reads_of_each_delegate_call():
    traced = arm64.split_passes(entries(LOG))[1][0]
    calls = arm64.delegate_counts(traced, [[1, 1], [1]])
    # delegate 0: reads 4120 (profiler), then XNNPACK's 4170 (start), 4420, 4920; delegate 1: 5200, 5540
    assert calls == [(750, [250, 500]), (340, [340])]
    whole = arm64.inference_count(traced)
    assert whole - (750 + 340) == 1010  # the runtime overhead


# One traced inference of one delegate call with three operator events, the second a
# concatenation of three inputs: XNNPACK reads the clock after each of its three copies.
CONCAT_LOG = """\
5 1 0
1 0 100
3 0 200
0 1 210
0 1 300
0 1 1300
0 1 1500
0 1 1800
0 1 2200
0 1 4200
4 0 4300
4 0 4310
4 0 4320
2 0 5000
end 0 6000
"""


def test_a_node_of_k_operator_objects_gets_the_sum_of_its_k_clock_differences():
    traced = arm64.split_passes(entries(CONCAT_LOG))[1][0]
    # start 300; the first operator ends at 1300, the concatenation's copies at 1500, 1800, 2200
    assert arm64.delegate_counts(traced, [[1, 3, 1]]) == [(3900, [1000, 900, 2000])]
    assert arm64.delegate_counts(traced, [[1, 1, 1]]) == [(3900, [None] * 3)]  # reads the graph does not explain
    with pytest.raises(arm64.Arm64Error, match="does not profile"):
        arm64.delegate_counts(traced, [[1] * 6])


def test_copy_events_take_the_operator_objects_of_the_graphs_copy_nodes_in_order():
    from quant.backends.xnnpack.graph import copy_objects

    ops = [{"name": n, "delegate_index": d} for n, d in
           [("Convolution (NHWC, QC8) IGEMM", 0), ("Copy (NC, X8)", 0), ("Add (ND)", 0), ("Copy (NC, X8)", 0),
            ("Copy (NC, X32)", 1)]]
    copies = [copy_objects(["XNNConv2d", "XNNConcatenate5", "XNNAdd", "XNNConcatenate2"]), copy_objects(["XNNCopy"])]
    assert copies == [[5, 2], [1]]
    assert arm64.reads_per_operator(ops, copies) == [[1, 5, 1, 2], [1]]
    assert arm64.reads_per_operator(ops, [[5], [1]]) == [[1, 1, 1, 1], [1]]  # unmatched: left to the read count


def test_blocks_get_the_totals_of_their_delegate_calls():
    result = {"instructions": {"delegate_calls": [750, 340, 60], "operators_total": 1150, "operators_exact": False},
              "operators": [], "blocks": [{"name": "stem", "ms": 0.1}, {"name": "head", "ms": 0.2}]}
    arm64.add_block_counts(result, ["stem", "head", "head"])
    assert [b["instructions"] for b in result["blocks"]] == [750, 400]
    assert result["instructions"]["without_block"] == 0


def xnode(kind: str, handle: int, inputs: tuple = (), outputs: tuple = (), bounded: bool = False) -> GraphNode:
    return GraphNode(kind, handle, inputs, outputs, bounded)


# A delegate graph as XNNPACK 1.5.1 runs it (seen in the tiny variant's int8 .pte): the clamp
# after the conv is fused into it, the square before a mean becomes "Mean Squared", the
# Converts around a float GELU become one int8 unary op, and a bounded int8 multiply runs
# its bounds as a clamp after it. The transpose (no debug handle) feeds the mean.
GRAPH = [xnode("XNNConv2d", 1, (0,), (1,)), xnode("XNNClamp", 2, (1,), (2,)),
         xnode("XNNStaticTranspose", NO_HANDLE, (2,), (3,)), xnode("XNNMultiply", 3, (3, 3), (4,)),
         xnode("XNNGlobalAvgPooling2d", 4, (4,), (5,)), xnode("XNNConvert", 5, (5,), (6,)),
         xnode("XNNGelu", 6, (6,), (7,)), xnode("XNNConvert", 7, (7,), (8,)),
         xnode("XNNMultiply", 8, (8, 8), (9,), bounded=True), xnode("XNNStaticTranspose", NO_HANDLE, (9,), (10,))]
EVENTS = ["Convolution (NHWC, QC8) IGEMM", "Transpose (ND, X8)", "Mean Squared (ND) Reduce2", "Invalid Unary Op",
          "Multiply (ND)", "Clamp (NC)", "Transpose (ND, X8)"]


def test_operator_events_find_the_graph_nodes_they_run():
    assert match_operators(EVENTS, GRAPH) == [0, 2, 4, 6, 8, 8, 9]
    assert match_operators(EVENTS + ["Softmax (NC, F32)"], GRAPH) is None  # an event no node explains
    # out of step: the conv's event missing, so the transpose's would pass over the conv
    assert match_operators(EVENTS[1:], GRAPH) is None
    # the stock int8 LayerNorm: XNNPACK runs the multiply of a value by itself as a square
    layer_norm = [xnode("XNNSubtract", 1), xnode("XNNMultiply", 2), xnode("XNNGlobalAvgPooling2d", 3)]
    assert match_operators(["Subtract (ND)", "Square (NC)", "Mean (ND)"], layer_norm) == [0, 1, 2]


def test_events_follow_xnnpack_when_it_moves_a_rewritten_batch_matmul():
    """Stock int8 96m (seen at its first bridge): XNNPACK rewrites a Convert of the int8 map and
    the fp32 bmm reading it into new nodes, run after every later node that does not need them."""
    graph = [xnode("XNNFullyConnected", 1, (0,), (1,)), xnode("XNNConvert", 2, (9,), (2,)),
             xnode("XNNBatchMatrixMultiply", 3, (1, 2), (3,)), xnode("XNNFullyConnected", 4, (0,), (4,)),
             xnode("XNNAdd", 5, (3, 4), (5,))]
    events = ["Fully Connected (NC, QS8, QC8W) GEMM", "Fully Connected (NC, QS8, QC8W) GEMM", "Convert (NC, QS8, QC8)",
              "Batch Matrix Multiply (NC, F32, QC8W) GEMM", "Add (ND)"]
    assert match_operators(events, graph) == [0, 3, 1, 2, 4]
    assert match_operators(events[:1] + events[2:], graph) is None  # the second projection's event missing
    # no order of the graph runs the add before the matmul it reads
    assert match_operators(events[:2] + ["Add (ND)"] + events[2:4], graph) is None


def test_two_converts_run_as_one_int8_requantization():
    """The float model's bridges (int8 26m): the pixels, int8 with a zero point, requantized to
    zero point 0 for the batch matmul that reads them as its right operand. XNNPACK runs the two
    Converts as one operator that its 1.5.1 profiler names "Invalid Unary Op"."""
    graph = [xnode("XNNStaticReshape", 1, (0,), (1,)), xnode("XNNConvert", 2, (1,), (2,)),
             xnode("XNNConvert", 3, (2,), (3,)), xnode("XNNBatchMatrixMultiply", 4, (9, 3), (4,))]
    events = ["Static Reshape (NC)", "Invalid Unary Op", "Batch Matrix Multiply (NC, QS8) GEMM"]
    assert match_operators(events, graph) == [0, 2, 3]  # the one operator, on the second Convert


def test_nodes_without_a_handle_take_their_readers_block_else_their_writers():
    blocks = node_blocks(GRAPH, {"1": "stem", "2": "stem", "4": "block 1: former", "6": "head", "8": "head"})
    assert blocks[2] == "block 1: former"  # the transpose feeds the mean
    assert blocks[3] == "block 1: former"  # handle 3 has no block: the mean reads it
    assert blocks[5] == "head" and blocks[9] == "head"  # no reader with a block: the writer's


def test_blocks_from_operator_counts_add_up_to_the_operators_total():
    ops = [{"name": name, "delegate_index": 0, "block": None, "instructions": 100 * (i + 1), "mean_ms": 1.0}
           for i, name in enumerate(EVENTS)]
    assert arm64.attribute_blocks(ops, [GRAPH], {"1": "stem", "4": "block 1: former"})
    assert [op["block"] for op in ops] == ["stem"] + ["block 1: former"] * 6
    ops[-1]["block"] = None  # as if no node around it had a block
    result = {"instructions": {"delegate_calls": [2800], "operators_total": 2800, "operators_exact": True},
              "operators": ops, "blocks": block_totals(ops)}
    arm64.add_block_counts(result, [])
    assert [(b["name"], b["instructions"]) for b in result["blocks"]] == [("stem", 100), ("block 1: former", 2000)]
    assert result["instructions"]["without_block"] == 700
    assert not arm64.attribute_blocks(ops[:1] + [dict(ops[0], name="Softmax (NC, F32)")], [GRAPH], {"1": "stem"})


def test_missing_emulator_is_a_clear_error(tmp_path, monkeypatch, capsys):
    pte = tmp_path / "m.pte"
    pte.write_bytes(b"\0\0\0\0ET12" + b"\0" * 56)  # the header of a program: what bench checks before counting
    monkeypatch.setenv("PATH", str(tmp_path))
    assert bench_main(["--arm64", str(pte), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: qemu-aarch64 not found") and "debian-packages.txt" in err
    assert not list((tmp_path / "out").glob("*.json"))


class ConvToy(torch.nn.Module):
    """Three 3x3 convolutions, 32 channels at 56x56: where int8 must beat fp32."""

    def __init__(self):
        super().__init__()
        self.convs = torch.nn.Sequential(*[torch.nn.Conv2d(32, 32, 3, padding=1) for _ in range(3)])

    def forward(self, x):
        return torch.relu(self.convs(x))


@pytest.fixture(scope="module")
def toys(tmp_path_factory) -> dict[str, Path]:
    """The Debian packages, then the conv toy as fp32 and int8 .pte files."""
    installed = subprocess.run(["bash", str(REPO / "scripts" / "install_tools.sh")], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    out = tmp_path_factory.mktemp("arm64")
    torch.manual_seed(0)
    toy, x = ConvToy().eval(), torch.randn(1, 32, 56, 56)
    paths = {"fp32": out / "conv_fp32.pte", "int8": out / "conv_int8.pte"}
    for precision, path in paths.items():
        path.write_bytes(lower_layer(toy, x, int8=precision == "int8"))
    return paths


@pytest.mark.slow
def test_counts_repeat_add_up_and_int8_needs_fewer(toys, tmp_path, capsys):
    out = tmp_path / "out"
    assert bench_main(["--arm64", str(toys["fp32"]), str(toys["int8"]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    fp32, int8 = (json.loads((out / f"conv_{p}.cortex-a76.latency.json").read_text()) for p in ("fp32", "int8"))
    for result in (fp32, int8):
        assert_follows(result, "latency")
        counts = result["instructions"]
        assert result["device"]["kind"] == "emulated" and result["device"]["cpu"] == "cortex-a76"
        assert result["artifact"]["file"] in (toys["fp32"].name, toys["int8"].name)  # not mfbench's model.pte link
        assert counts["per_inference"] > 0 and counts["runtime_overhead"] > 0
        assert counts["operators_exact"]  # the toys have no multi-object nodes
        assert sum(op["instructions"] for op in result["operators"]) == counts["operators_total"]
        assert sum(counts["delegate_calls"]) == counts["operators_total"]
        assert counts["operators_total"] + counts["runtime_overhead"] == counts["per_inference"]
        assert f"{counts['per_inference']:,}" in printed
        cycles = result["cycles"]  # the estimate, cut like the counts (up to rounding each to a whole cycle)
        assert cycles["per_inference"] == cycles["operators_total"] + cycles["runtime_overhead"]
        assert abs(sum(op["cycles"] for op in result["operators"]) - cycles["operators_total"]) <= len(result["operators"])
        assert cycles["estimated_ms"] == pytest.approx(cycles["per_inference"] / 2.42e6, abs=1e-3)
        assert f"{cycles['estimated_ms']:.2f} @ 2.42 GHz" in printed
    assert int8["instructions"]["per_inference"] < fp32["instructions"]["per_inference"]
    assert int8["cycles"]["per_inference"] < fp32["cycles"]["per_inference"]
    again = arm64.count_instructions(toys["fp32"])  # another process, same count
    assert again["instructions"]["per_inference"] == fp32["instructions"]["per_inference"]
    assert again["instructions"]["counted_runs"][-2:] == fp32["instructions"]["counted_runs"][-2:]
    assert [op["instructions"] for op in again["operators"]] == [op["instructions"] for op in fp32["operators"]]
    assert (out / "bench.png").is_file() and "instructions" in (out / "bench.csv").read_text()


def _outside_layout(result: dict, block: str) -> int:
    return sum(op["instructions"] for op in result["operators"]
               if op["block"] == block and not op["name"].startswith(("Transpose", "Copy")))


@pytest.mark.slow
def test_single_delegate_blocks_agree_with_a_profile_blocks_export(tiny_exports, toys, tmp_path):
    """Per-block counts of the ordinary .pte (operators -> graph nodes -> debug handles -> blocks)
    against a --profile-blocks export of the same model (one delegate per block, exact by construction)."""
    single, split = (tiny_exports / f"mobile_former_tiny_xnnpack_int8{s}.pte" for s in ("", "_blocks"))
    assert bench_main(["--arm64", str(single), str(split), "--out", str(tmp_path)]) == 0
    ours, theirs = (json.loads((tmp_path / f"{p.stem}.cortex-a76.latency.json").read_text()) for p in (single, split))
    assert_follows(ours, "latency")
    counts = ours["instructions"]
    assert all(op["block"] for op in ours["operators"]) and counts["without_block"] == 0
    assert sum(b["instructions"] for b in ours["blocks"]) + counts["without_block"] == counts["operators_total"]
    assert sorted(b["name"] for b in ours["blocks"]) == sorted(b["name"] for b in theirs["blocks"])
    # A delegate per block puts the feature map back in NCHW at every boundary, which changes
    # the transposes and the layout the concatenations copy in; every other operator agrees.
    for block in ours["blocks"]:
        assert _outside_layout(ours, block["name"]) == pytest.approx(_outside_layout(theirs, block["name"]), rel=0.01)


def counted_result(label: str, precision: str, whole: int, ops: list) -> dict:
    return {"format": "mobileformer-latency/1", "label": label, "threads": 1,
            "device": {"kind": "emulated", "name": "cortex-a76 (qemu-aarch64 7.2)", "cpu": "cortex-a76"},
            "artifact": {"model": "m", "precision": precision, "size_bytes": 1000},
            "latency_ms": {"p50": 500.0, "p90": 510.0}, "blocks": [],
            "operators": [{"name": "Convolution (NHWC, F32) IGEMM", "instructions": n, "mean_ms": 1.0} for n in ops],
            "instructions": {"per_inference": whole, "operators_total": 900, "runtime_overhead": whole - 900,
                             "operators_exact": None not in ops}}


def test_report_renders_instruction_counts_not_milliseconds(tmp_path):
    from quant.report import render

    results = [counted_result("fp32", "fp32", 2000, [500, 400]), counted_result("int8", "int8", 1000, [None, None])]
    outputs = render(results, tmp_path, "r")
    assert "2,000" in outputs.table and "2.00x" in outputs.table and "500.000" not in outputs.table
    assert "int8: no per-operator counts" in outputs.table
    assert "instructions" in outputs.csv.read_text().splitlines()[0] and outputs.png.is_file()


def test_report_puts_a_pte_count_beside_a_tflite_count(tmp_path):
    """make demo counts our .pte (mfbench, built with the event tracer: traced) and LiteRT's .tflite (untraced) in
    one quant.bench --arm64 call: instruction counts of both go in one table, each row saying whether it was traced
    (the tracer's clock reads are in the .pte's count); it failed with "mix traced and untraced" (a demo bug)."""
    from quant.report import render

    pte, tflite = counted_result("int8", "int8", 1000, [500, 400]), counted_result("litert", "int8", 1200, [])
    pte["traced"], tflite["traced"] = True, False
    table = render([pte, tflite], tmp_path, "r").table
    header, *rows = [line for line in table.splitlines() if line.startswith(("result", "int8", "litert"))]
    assert "traced" in header and "yes" in rows[0] and "no" in rows[1]


def test_report_refuses_to_mix_latencies_and_instruction_counts(tmp_path):
    from quant.formats import ResultError
    from quant.report import render

    latency = counted_result("host", "fp32", 2000, [])
    del latency["instructions"]
    with pytest.raises(ResultError, match="mix"):
        render([latency, counted_result("int8", "int8", 1000, [])], tmp_path, "r")


# Our int8 mobile_former_26m on cortex-a76, as committed in docs/results.md (and CHANGELOG.md, 2026-12-07:
# DyReLU float and small grouped 1x1 convs dense; 32,045,073 with neither, 33,654,977 before issue 13).
INT8_26M_INSTRUCTIONS = 29_064_139
# Its estimated cycles on both named cores (issue 35; CHANGELOG.md, 2026-12-07, "mobile_former_26m on both phone cores").
INT8_26M_CYCLES = {"cortex-a76": 13_696_783, "armv9": 12_142_686}


@pytest.mark.slow
def test_int8_26m_count_does_not_regress(toys, tmp_path):
    """The figures to steer by: a change that makes our int8 26m need 3% more AArch64 work, or 3%
    more estimated cycles on either phone core, fails here."""
    out = tmp_path / "export"
    export = subprocess.run([sys.executable, "-m", "quant.export", "--backend", "xnnpack", "--model", "mobile_former_26m",
                             "--calib", "digits", "--out", str(out), "--no-progress"],
                            cwd=REPO, capture_output=True, text=True, timeout=1800,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert export.returncode == 0, export.stderr[-2000:]
    pte = out / "mobile_former_26m_xnnpack_int8.pte"
    for core, committed in INT8_26M_CYCLES.items():
        result = arm64.count_instructions(pte, core)
        if core == "cortex-a76":
            counted = result["instructions"]["per_inference"]
            assert counted <= 1.03 * INT8_26M_INSTRUCTIONS, f"{counted:,} instructions, committed {INT8_26M_INSTRUCTIONS:,}"
        cycles = result["cycles"]["per_inference"]
        assert cycles <= 1.03 * committed, f"{core}: {cycles:,} estimated cycles, committed {committed:,}"
