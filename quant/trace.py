"""A latency result as a Chrome Trace Event file (``quant.report --trace``), for Perfetto's UI
and ``chrome://tracing``: the timeline Android and iOS engineers already read.

Each result is one process of the trace, with three threads: the whole model (p50, or
instructions per inference), the timed runs one after another, and one inference's paper
blocks in execution order with their operators nested inside. The events are laid end
to end from the result's figures, which are means per inference: the timeline is a
picture of where the time goes, not a recording. A block's event lasts exactly the
result's figure for that block (``blocks[].ms``, or ``blocks[].instructions`` for an
AArch64 count), so the events of one block sum to it; its operators fill it in order.

Instruction counts have no time: their timeline shows 1,000 instructions per microsecond
(so a millisecond on the ruler is a million instructions), and every event carries its
exact count in ``args``. Format: the JSON object form of the Trace Event Format
(``traceEvents`` of complete ``"X"`` and metadata ``"M"`` events, timestamps in microseconds).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .files import check_not_an_input, ensure_writable_dir, write_json_atomic

WHOLE, RUNS, BLOCKS = 1, 2, 3  # thread ids of each result's three tracks
INSTRUCTIONS_PER_US = 1000


def _counted(result: dict) -> bool:
    return "instructions" in result


def _duration_us(result: dict, item: dict) -> float:
    """An operator's or a block's figure on the timeline (0 when it has none)."""
    if _counted(result):
        return float(item.get("instructions") or 0) / INSTRUCTIONS_PER_US
    return float(item.get("ms", item.get("mean_ms")) or 0.0) * 1000.0


def _event(name: str, pid: int, tid: int, ts: float, dur: float, cat: str, **args) -> dict:
    return {"name": name, "ph": "X", "pid": pid, "tid": tid, "ts": ts, "dur": dur, "cat": cat, "args": args}


def _metadata(pid: int, label: str, threads: dict[int, str]) -> list[dict]:
    events = [{"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": label}}]
    for tid, name in threads.items():
        events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": name}})
        events.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid, "args": {"sort_index": tid}})
    return events


def _block_groups(result: dict) -> list[tuple[dict | None, list[dict]]]:
    """Each block of the result with its operators (execution order), then the operators no block took."""
    groups = [(block, [op for op in result["operators"] if op.get("block") == block["name"]])
              for block in result["blocks"]]
    named = {block["name"] for block in result["blocks"]}
    rest = [op for op in result["operators"] if op.get("block") not in named]
    return groups + ([(None, rest)] if rest else [])


def _operator_events(result: dict, pid: int, start: float, ops: list[dict], cat: str) -> list[dict]:
    events, ts = [], start
    for op in ops:
        dur = _duration_us(result, op)
        figures = {k: op[k] for k in ("index", "delegate_index", "mean_ms", "p50_ms", "instructions") if k in op}
        events.append(_event(op["name"], pid, BLOCKS, ts, dur, cat, **figures))
        ts += dur
    return events


def result_events(result: dict, pid: int) -> list[dict]:
    """The trace events of one result (process ``pid``)."""
    counted = _counted(result)
    unit = "instructions" if counted else "ms"
    events = _metadata(pid, f"{result['label']} ({result['device'].get('name', '?')})", {
        WHOLE: "whole model, " + ("instructions per inference" if counted else "p50"),
        RUNS: "timed runs" + (" (wall clock under emulation)" if counted else ""),
        BLOCKS: "one inference: blocks > operators" + (" (mean per operator)" if not counted else "")})
    traced = result.get("traced")
    if counted:
        whole = result["instructions"]["per_inference"]
        events.append(_event("forward", pid, WHOLE, 0.0, whole / INSTRUCTIONS_PER_US, "model",
                             instructions=whole, traced=traced))
    else:
        p50 = result["latency_ms"]["p50"]
        events.append(_event("forward", pid, WHOLE, 0.0, p50 * 1000.0, "model", p50_ms=p50,
                             p90_ms=result["latency_ms"]["p90"], traced=traced))
    ts = 0.0
    for i, ms in enumerate(result["samples_ms"]):
        events.append(_event(f"run {i}", pid, RUNS, ts, ms * 1000.0, "run", ms=ms))
        ts += ms * 1000.0
    ts = 0.0
    for block, ops in _block_groups(result):
        if block is None:  # operators outside every block: top level, after the blocks
            events += _operator_events(result, pid, ts, ops, "operator")
            break
        dur = _duration_us(result, block)
        events.append(_event(block["name"], pid, BLOCKS, ts, dur, "block", **{unit: block.get(unit)}))
        events += _operator_events(result, pid, ts, ops, "operator")
        ts += dur
    return events


def trace_document(results: list[dict]) -> dict:
    """The Trace Event Format object of ``results`` (each one process)."""
    events = [e for pid, result in enumerate(results, start=1) for e in result_events(result, pid)]
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"source": "python -m quant.report --trace (docs/latency-format.md)",
                          "instructions_per_us": INSTRUCTIONS_PER_US}}


def check_trace_target(path: Path, inputs: Mapping[Path, str]) -> None:
    """Refuse, before any output is written, a trace path that is one of the files read (path -> what it is),
    or in a folder that cannot be written; the caller checks it with its other outputs (``check_outputs``)."""
    check_not_an_input(path, inputs, "--trace")
    ensure_writable_dir(path.parent)


def write_trace(results: list[dict], path: Path) -> Path:
    """Write the trace of ``results`` to ``path`` atomically."""
    write_json_atomic(path, trace_document(results))
    return path
