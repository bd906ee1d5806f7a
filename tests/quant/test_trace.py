"""``quant.report --trace``: results as Chrome Trace Event files, checked against the format
(no Perfetto trace processor here: its Python package downloads a binary when it runs) and
against the results' own block figures."""
from __future__ import annotations

import json
import math
from collections import defaultdict

import pytest

from quant.report import main as report_main


def _result(counted: bool = False) -> dict:
    """A phone-style result with blocks (as quant.report has them after the manifest), or an AArch64 count."""
    ops = [("Convolution (NHWC, QS8)", "stem", 0.40, 4_000_000), ("Clamp (NC, S8)", "stem", 0.05, 100_000),
           ("Fully Connected (NC, QS8)", "head", 0.25, 2_500_000), ("Copy (NC, X8)", None, 0.01, 12_345)]
    doc = {
        "format": "mobileformer-latency/1", "created": "2026-12-07T00:00:00Z", "tool": "android_demo 0.1.0",
        "label": "int8", "device": {"kind": "android", "name": "Pixel 8", "os": "Android 15", "cpu": "x", "cores": 9},
        "runtime": {"name": "executorch", "version": None, "compute_units": None},
        "artifact": {"file": "m.pte", "sha256": "0" * 64, "size_bytes": 1000, "model": None, "backend": None,
                     "precision": None},
        "threads": 4, "warmup": 1, "iterations": 3, "traced": True,
        "latency_ms": {"p50": 0.8, "p90": 0.9, "mean": 0.83, "min": 0.78, "max": 0.91},
        "samples_ms": [0.78, 0.8, 0.91],
        "operators": [{"index": i, "name": n, "delegate_index": 0, "block": b, "mean_ms": ms, "p50_ms": ms,
                       "calls": 3, **({"instructions": c} if counted else {})} for i, (n, b, ms, c) in enumerate(ops)],
        "blocks": [{"name": "stem", "ms": 0.45}, {"name": "head", "ms": 0.25}], "etdump": None,
    }
    if counted:
        doc["blocks"] = [{"name": "stem", "ms": 0.45, "instructions": 4_100_000},
                         {"name": "head", "ms": 0.25, "instructions": 2_500_000}]
        doc["instructions"] = {"per_inference": 7_000_000, "operators_total": 6_612_345, "runtime_overhead": 387_655,
                               "counted_runs": [7_000_000, 7_000_000], "delegate_calls": [6_612_345],
                               "operators_exact": True, "counter": "qemu-aarch64 plugin native/arm64/icount.c"}
    return doc


def check_trace_event_format(doc: dict) -> list[dict]:
    """Raise AssertionError where ``doc`` breaks the Trace Event Format's JSON object form as
    chrome://tracing and Perfetto read it; returns the complete ("X") events."""
    assert isinstance(doc, dict) and isinstance(doc["traceEvents"], list)
    assert doc.get("displayTimeUnit", "ms") in ("ms", "ns")
    complete = []
    for e in doc["traceEvents"]:
        assert isinstance(e["name"], str) and e["ph"] in ("X", "M"), e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int), e
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name", "thread_sort_index") and isinstance(e["args"], dict)
            continue
        assert all(isinstance(e[k], (int, float)) and math.isfinite(e[k]) and e[k] >= 0 for k in ("ts", "dur")), e
        assert isinstance(e.get("args", {}), dict) and isinstance(e.get("cat", ""), str)
        complete.append(e)
    # complete events on one thread nest: each starts after, and ends before, the one that encloses it
    by_thread = defaultdict(list)
    for e in complete:
        by_thread[e["pid"], e["tid"]].append(e)
    for events in by_thread.values():
        stack: list[dict] = []
        for e in sorted(events, key=lambda e: (e["ts"], -e["dur"])):
            while stack and e["ts"] >= stack[-1]["ts"] + stack[-1]["dur"] - 1e-6:
                stack.pop()
            if stack:
                assert e["ts"] + e["dur"] <= stack[-1]["ts"] + stack[-1]["dur"] + 1e-6, (e, stack[-1])
            stack.append(e)
    return complete


def _children(events: list[dict], parent: dict) -> list[dict]:
    end = parent["ts"] + parent["dur"]
    return [e for e in events if e is not parent and e["tid"] == parent["tid"] and e["pid"] == parent["pid"]
            and parent["ts"] - 1e-9 <= e["ts"] and e["ts"] + e["dur"] <= end + 1e-6 and e["cat"] == "operator"]


@pytest.mark.parametrize("counted", [False, True], ids=["latency", "arm64-count"])
def test_trace_events_sum_per_block_to_the_results_figures(tmp_path, counted):
    path, out = tmp_path / "r.json", tmp_path / "trace.json"
    result = _result(counted)
    path.write_text(json.dumps(result))
    assert report_main([str(path), "--out", str(tmp_path / "report"), "--trace", str(out)]) == 0
    events = check_trace_event_format(json.loads(out.read_text()))
    scale = 1 / 1000 if counted else 1000.0  # instructions -> us (1000 per us), ms -> us
    key = "instructions" if counted else "ms"
    blocks = [e for e in events if e["cat"] == "block"]
    assert [b["name"] for b in blocks] == ["stem", "head"]
    for block, figure in zip(blocks, result["blocks"]):
        assert block["dur"] == pytest.approx(figure[key] * scale)
        ops = _children(events, block)
        assert [o["name"] for o in ops] == [op["name"] for op in result["operators"] if op["block"] == block["name"]]
        if not counted:  # a latency block is its operators' sum; a counted one may hold per-call overhead too
            assert sum(o["dur"] for o in ops) == pytest.approx(block["dur"])
    loose = [e for e in events if e["cat"] == "operator" and not any(e in _children(events, b) for b in blocks)]
    assert [e["name"] for e in loose] == ["Copy (NC, X8)"]
    whole = next(e for e in events if e["cat"] == "model")
    expected = result["instructions"]["per_inference"] * scale if counted else result["latency_ms"]["p50"] * scale
    assert whole["dur"] == pytest.approx(expected) and whole["args"]["traced"] is True
    runs = [e for e in events if e["cat"] == "run"]
    assert [r["dur"] for r in runs] == pytest.approx([ms * 1000 for ms in result["samples_ms"]])


def test_format_check_can_fail():
    bad = {"traceEvents": [{"name": "a", "ph": "X", "pid": 1, "tid": 1, "ts": 0, "dur": 10},
                           {"name": "b", "ph": "X", "pid": 1, "tid": 1, "ts": 5, "dur": 10}]}  # overlaps, not nested
    with pytest.raises(AssertionError):
        check_trace_event_format(bad)
    with pytest.raises(AssertionError):
        check_trace_event_format({"traceEvents": [{"name": "a", "ph": "B", "pid": 1, "tid": 1, "ts": 0}]})


def test_trace_never_replaces_a_result_read(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_result()))
    before = path.read_text()
    assert report_main([str(path), "--out", str(tmp_path / "report"), "--trace", str(path)]) == 2
    assert "error:" in capsys.readouterr().err and path.read_text() == before
    assert not (tmp_path / "report").exists()  # refused before any output
