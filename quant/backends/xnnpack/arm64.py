"""AArch64 instruction counts of a ``.pte``: the real AArch64 runtime and XNNPACK under qemu-user.

A phone core we cannot hold is stood in for by ``qemu-aarch64 -cpu <core>``: it runs the
aarch64 build of ``mfbench`` (the project's benchmark core) against the aarch64 ExecuTorch
SDK of the pinned executorch version, and a qemu plugin built from ``native/arm64/icount.c``
counts the guest instructions. The count is exact and repeats run to run, unlike
wall-clock time on a shared machine.

Attribution. ``mfbench --instruction-markers`` issues a marker syscall around each measured
inference and at the start of each delegate call; the plugin logs the instruction count at
every marker and at every ``clock_gettime`` after the first one. In a delegate call of N
operators the clock is read exactly N + 2 times before its operator events are logged: once
by ExecuTorch's XNNPACK profiler as the call starts, once by XNNPACK before its first
operator and once after each operator. The differences between the last N + 1 reads are the
operators' counts (the operator's work plus one clock read). A node that XNNPACK runs as k
operator objects (a concatenation of k inputs, reported under its first object's name,
``Copy``) reads the clock k times but reports one event: the delegate's graph, read back
from the ``.pte`` (:mod:`quant.backends.xnnpack.graph`), says k, and the node's count is the sum of its k
differences. The call's reads must then number exactly N + 2 + the extra objects; where
they do not, the call's total stays exact and its operators get no count rather than a
guess. The operator counts come from a traced inference (the event tracer
names the operators); XNNPACK profiles and runs the same code with or without the tracer,
so they hold for the untraced inference that gives the whole count. Everything else in it
(ExecuTorch's method execution, operators outside the delegate, XNNPACK's setup of each
call, input and output copies) is the runtime overhead, and
``per_inference = sum(operators) + runtime_overhead`` exactly.

First use sets up, in ``$MOBILEFORMER_CACHE`` (default ``~/.cache/mobileformer``) ``/arm64``:
the SDK from the executorch aarch64 wheel (``pip download``), the cross-built ``mfbench``
and the plugin; each appears whole or not at all (built in a temporary folder, renamed).
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import zipfile
from itertools import accumulate
from pathlib import Path

from ... import __version__
from ...aarch64.cores import CORES, DEFAULT_CORE, Core, core
from ...aarch64.cycles import cycle_entries, estimate
from ...aarch64.qemu import (
    DELEGATE_BEGIN, OPERATORS_LOGGED, REPO, TIMER, Arm64Error, GuestLog,
    cached, digest, emulated_device, inference_count, run, run_guest, split_passes, tool,
)
from ...formats import apply_manifest, now_utc
from .graph import GraphNode, copy_objects, match_operators, node_blocks, nodes_per_delegate_call

NATIVE = REPO / "native"
TOOLCHAIN = NATIVE / "arm64" / "aarch64-linux-gnu.cmake"
SYSROOT = Path("/usr/aarch64-linux-gnu")
DEFAULT_CPU = DEFAULT_CORE
CPUS = tuple(CORES)  # the named phone cores (quant.aarch64.cores; docs/benchmarking.md says which)
# The SDK pieces mfbench builds and runs against (the wheel also holds Python and AOT code).
SDK_PARTS = ("executorch/include/", "executorch/lib/", "executorch/share/")


def executorch_version() -> str:
    return importlib.metadata.version("executorch")


def sdk() -> Path:
    """The aarch64 ExecuTorch SDK (``.../executorch``) of the installed executorch version."""
    version = executorch_version()
    py = f"{sys.version_info.major}.{sys.version_info.minor}"

    def build(tmp: Path) -> None:
        print(f"[arm64] downloading the aarch64 executorch {version} wheel (once)", flush=True)
        run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
              "--platform", "manylinux_2_28_aarch64", "--python-version", py, f"executorch=={version}",
              "--dest", str(tmp / "wheel")], "pip download of the aarch64 executorch wheel")
        wheel = next((tmp / "wheel").glob("executorch-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tmp / "sdk", [n for n in z.namelist() if n.startswith(SDK_PARTS)])
        shutil.rmtree(tmp / "wheel")

    return cached(f"sdk-executorch-{version}", build) / "sdk" / "executorch"


def mfbench() -> Path:
    """The aarch64 ``mfbench``, cross-built from this checkout's sources (rebuilt when they change)."""
    sources = [p for p in (NATIVE / "mfbench").rglob("*") if p.is_file()] + [TOOLCHAIN]
    root = sdk()
    tool("aarch64-linux-gnu-g++")
    cmake = tool("cmake")

    def build(tmp: Path) -> None:
        print("[arm64] cross-compiling mfbench for aarch64 (once per source change, about a minute)", flush=True)
        run([cmake, "-S", str(NATIVE / "mfbench"), "-B", str(tmp / "build"), "-DCMAKE_BUILD_TYPE=Release",
              f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN}", f"-DEXECUTORCH_ROOT={root}"], "cmake configure (aarch64)")
        run([cmake, "--build", str(tmp / "build"), "--parallel", str(os.cpu_count() or 2)], "aarch64 build of mfbench")
        shutil.copy2(tmp / "build" / "mfbench", tmp / "mfbench")
        shutil.rmtree(tmp / "build")

    name = f"mfbench-{executorch_version()}-{digest(sources)}"
    return cached(name, build) / "mfbench"


def run_counted(artifact: Path, cpu: str, warmup: int, iterations: int, work: Path,
                blocks: bool = False) -> tuple[dict, GuestLog]:
    """Run mfbench on ``artifact`` under qemu as the named core with the plugin (logging the
    executed blocks too with ``blocks``); its JSON result and the plugin's log."""
    tool("qemu-aarch64"), tool("setarch")
    binary = mfbench()
    if not SYSROOT.is_dir():
        raise Arm64Error(f"{SYSROOT} not found: install g++-aarch64-linux-gnu (scripts/debian-packages.txt)")
    # The guest sees the same argv, environment and paths whatever the artifact's location
    # or the caller's environment: their lengths move the stack, and with it the alignment
    # of buffers and the instructions that copy them.
    (work / "mfbench").symlink_to(binary)
    (work / "model.pte").symlink_to(artifact.resolve())
    argv = ["./mfbench", "--model", "model.pte", "--threads", "1", "--warmup", str(warmup),
            "--iterations", str(iterations), "--instruction-markers", "--out", "result.json"]
    done, log = run_guest(argv, core(cpu), work, SYSROOT, blocks=blocks)
    if done.returncode == 2:  # mfbench's own bad-input exit: the message is for the user
        message = [line for line in done.stderr.splitlines() if line.startswith("mfbench:")]
        text = message[-1] if message else done.stderr.strip()[-500:]
        raise Arm64Error(text.replace("model.pte", artifact.name))
    if done.returncode != 0:
        raise Arm64Error(f"mfbench under qemu-aarch64 failed (exit {done.returncode}):\n{done.stderr.strip()[-2000:]}")
    return json.loads((work / "result.json").read_text()), log


def delegate_counts(events: list[tuple[int, int, int]], reads_per_delegate: list[list[int]]) -> list[tuple[int, list]]:
    """Per delegate call of one traced inference: its operators' total, and each operator's count.

    ``reads_per_delegate[d]`` holds, for each operator event of delegate d, the clock reads
    it makes (its operator objects: 1, or k for a concatenation of k inputs). The total runs
    from XNNPACK's clock read before its first operator to the read after its last one, and
    is always exact. Each operator's count, the sum of its reads' differences, is exact when
    the call read the clock ``sum(reads) + 2`` times; otherwise the call's operators get
    ``None`` rather than a guess.
    """
    calls: list[tuple[int, list]] = []
    delegate, reads = -1, []
    for kind, arg, count in events:
        if kind == DELEGATE_BEGIN:
            delegate, reads = arg, []
        elif kind == TIMER and delegate >= 0:
            reads.append(count)
        elif kind == OPERATORS_LOGGED and delegate >= 0:
            per_op = reads_per_delegate[delegate]
            if len(reads) < len(per_op) + 2:
                raise Arm64Error(f"delegate call {delegate}: {len(reads)} clock reads for {len(per_op)} operators (at "
                                 f"least {len(per_op) + 2} expected); this XNNPACK build does not profile its operators")
            ends = reads[1:]
            counts: list = [None] * len(per_op)
            if len(reads) == sum(per_op) + 2:
                bounds = [0, *accumulate(per_op)]
                counts = [ends[b] - ends[a] for a, b in zip(bounds, bounds[1:])]
            calls.append((ends[-1] - ends[0], counts))
            delegate = -1
    return calls


def reads_per_operator(operators: list[dict], copies_per_delegate: list[list[int]]) -> list[list[int]]:
    """The clock reads of each operator event, per delegate: 1, or the operator objects that the
    graph gives the delegate's ``Copy`` nodes, in order (when their numbers do not match, 1 each,
    and :func:`delegate_counts` then withholds that call's operator counts)."""
    per_delegate: list[list[str]] = [[] for _ in range(1 + max((op["delegate_index"] for op in operators
                                                                 if op["delegate_index"] is not None), default=-1))]
    for op in operators:
        per_delegate[op["delegate_index"]].append(op["name"])
    reads = []
    for index, names in enumerate(per_delegate):
        copies = copies_per_delegate[index] if index < len(copies_per_delegate) else []
        slots = [i for i, name in enumerate(names) if name.startswith("Copy (")]
        counts = [1] * len(names)
        if len(slots) == len(copies):
            for i, k in zip(slots, copies):
                counts[i] = k
        reads.append(counts)
    return reads


def attribute_blocks(operators: list[dict], nodes_per_call: list[list[GraphNode]], handle_blocks: dict[str, str]) -> bool:
    """Give each operator the paper block of the graph node it runs (:func:`quant.backends.xnnpack.graph.match_operators`,
    :func:`~quant.backends.xnnpack.graph.node_blocks`); False, and no blocks, where a delegate call's events
    and nodes do not line up."""
    per_call: dict[int, list[dict]] = {}
    for op in operators:
        per_call.setdefault(op["delegate_index"], []).append(op)
    found = {}
    for index, ops in per_call.items():
        nodes = nodes_per_call[index] if isinstance(index, int) and index < len(nodes_per_call) else []
        matched = match_operators([op["name"] for op in ops], nodes)
        if matched is None:
            return False
        blocks = node_blocks(nodes, handle_blocks)
        found.update({id(op): blocks[j] for op, j in zip(ops, matched)})
    for op in operators:
        op["block"] = found[id(op)]
    return True


def add_block_counts(result: dict, delegate_blocks: list[str]) -> dict:
    """Each paper block's instructions (and estimated cycles), exact: the totals of the delegate
    calls that ran it (``--profile-blocks`` exports run one delegate per block), else the sum of
    its operators' counts. The operators of no block make ``without_block``, so that the blocks
    and it add up to ``operators_total``. ``apply_manifest`` made ``blocks``."""
    exact = result["instructions"]["operators_exact"]
    for measure in ("instructions", "cycles"):
        if measure not in result:
            continue
        counts = result[measure]
        totals: dict[str, int] = {}
        if delegate_blocks:
            for index, total in enumerate(counts["delegate_calls"][:len(delegate_blocks)]):
                totals[delegate_blocks[index]] = totals.get(delegate_blocks[index], 0) + total
        elif exact and any(op.get("block") for op in result["operators"]):
            for op in result["operators"]:
                if op.get("block"):
                    totals[op["block"]] = totals.get(op["block"], 0) + op[measure]
        else:
            return result
        for block in result["blocks"]:
            if block["name"] in totals:
                block[measure] = totals[block["name"]]
        counts["without_block"] = counts["operators_total"] - sum(totals.values())
    return result


def estimated_cycles(log: GuestLog, spec: Core, reads: list[list[int]], operators: list[dict]) -> dict:
    """The ``cycles`` of a counted result (:mod:`quant.aarch64.cycles`): the last inference's
    estimate, whole and per delegate call, with each operator's put on it as ``cycles``,
    attributed exactly as the instruction counts are; and ``estimated_ms`` at the core's clock."""
    passes = split_passes(cycle_entries(log, spec))
    whole = estimate(inference_count(passes[0][-1]), spec)
    calls = delegate_counts(passes[1][-1], reads)
    for op, value in zip(operators, [value for _, values in calls for value in values]):
        op["cycles"] = None if value is None else round(value)
    operators_total = round(sum(total for total, _ in calls))
    return {**whole, "operators_total": operators_total, "runtime_overhead": whole["per_inference"] - operators_total,
            "delegate_calls": [round(total) for total, _ in calls]}


def _settled(runs: list) -> bool:
    """The last two counted inferences agree. Earlier ones may differ, for reasons not found:
    by 185 instructions of 44 million after one warm-up for 26m fp32, and for our int8 26m
    (DyReLU float) by up to 231 with 3 counted inferences whatever the warm-up, never with 4
    or 5: the count of counted inferences sizes an allocation made before them."""
    return len(runs) >= 2 and runs[-1] == runs[-2]


def count_instructions(artifact: Path, cpu: str = DEFAULT_CPU, warmup: int = 1, iterations: int = 4,
                       handle_blocks: dict[str, str] | None = None) -> dict:
    """A ``mobileformer-latency/1`` result of ``artifact`` with the ``instructions`` extension.

    ``latency_ms`` is the wall-clock under emulation (no phone figure); the instruction
    counts are those of the last counted inference, whole and per XNNPACK operator. With
    ``handle_blocks`` (the manifest's ``profiling.debug_handle_blocks``) operators get their
    paper block (:func:`attribute_blocks`). Raises :class:`Arm64Error` unless the last two
    counted inferences agree, whole and per operator.
    """
    if cpu not in CPUS:
        raise Arm64Error(f"unknown --cpu {cpu!r}; the named cores: {', '.join(CPUS)}")
    with tempfile.TemporaryDirectory(prefix="mf-arm64-") as tmp:
        result, log = run_counted(artifact, cpu, warmup, iterations, Path(tmp), blocks=True)
    entries = log.entries
    passes = split_passes(entries)
    untraced = [inference_count(events) for events in passes.get(0, [])]
    nodes = nodes_per_delegate_call(artifact)
    reads = reads_per_operator(result["operators"], [copy_objects([node.kind for node in call]) for call in nodes])
    per_run = [delegate_counts(events, reads) for events in passes.get(1, [])]
    if len(untraced) != iterations or not _settled(untraced):
        raise Arm64Error(f"{artifact.name}: the last two counted inferences differ ({untraced}); "
                         "count again with more --warmup or another --iterations")
    if not _settled(per_run):
        totals = [sum(total for total, _ in calls) for calls in per_run]
        raise Arm64Error(f"{artifact.name}: the operator counts of the last two traced inferences differ "
                         f"(operators in total: {totals}); count again with more --warmup or another --iterations")
    calls = per_run[-1]
    op_counts = [count for _, counts in calls for count in counts]
    if len(op_counts) != len(result["operators"]):
        raise Arm64Error(f"{artifact.name}: {len(op_counts)} operator counts for {len(result['operators'])} operators")
    for op, count in zip(result["operators"], op_counts):
        op["instructions"] = count
    if handle_blocks:
        attribute_blocks(result["operators"], nodes, handle_blocks)
    result["device"] = emulated_device(core(cpu), result["device"].get("features", []))
    result["artifact"]["file"] = artifact.name  # mfbench ran it as model.pte (a link in the work folder)
    result["cycles"] = estimated_cycles(log, core(cpu), reads, result["operators"])
    result["instructions"] = {
        "per_inference": untraced[-1],
        "operators_total": sum(total for total, _ in calls),
        "runtime_overhead": untraced[-1] - sum(total for total, _ in calls),
        "delegate_calls": [total for total, _ in calls],
        "operators_exact": all(count is not None for count in op_counts),
        "counted_runs": untraced,
        "counter": "qemu-aarch64 plugin native/arm64/icount.c",
    }
    return result


def counted_result(artifact: Path, manifest: dict | None, cpu: str, warmup: int, iterations: int, label: str) -> dict:
    """``quant.bench --arm64``'s latency result of a ``.pte`` (the backend's ``arm64_counter``): instructions
    and estimated cycles per inference, per XNNPACK operator and, with a manifest, per paper block."""
    profiling = (manifest or {}).get("profiling") or {}
    # a --profile-blocks export's blocks are its delegate calls, exact without matching operators to nodes
    handle_blocks = None if profiling.get("delegate_blocks") else profiling.get("debug_handle_blocks")
    result = count_instructions(artifact, cpu, warmup, iterations, handle_blocks)
    if handle_blocks and not any(op["block"] for op in result["operators"]):
        print(f"[bench] {artifact.name}: its operator events do not line up with its XNNPACK graph; no block counts",
              file=sys.stderr)
    result.update(created=now_utc(), tool=f"quant.bench {__version__} (mfbench aarch64, qemu-user)", label=label)
    if manifest:
        apply_manifest(result, manifest)
        add_block_counts(result, profiling.get("delegate_blocks") or [])
    return result
