"""quant.report: latency results and instruction counts as a table, CSV, Markdown and chart; bad results and manifests named."""
import errno
import json

import pytest

from quant import report
from quant.formats import ResultError, read_result
from quant.report import main as report_main
from tests.conftest import BLOCKS, INT8


def test_report_fills_phone_results_from_the_manifest(bench_results, tiny_exports, tmp_path, capsys):
    phone = json.loads((bench_results / f"{BLOCKS}.latency.json").read_text())
    phone["tool"], phone["device"] = "android_demo 0.1.0 (mfbench core)", {"kind": "android", "name": "Pixel 8"}
    phone["artifact"].update(model=None, backend=None, precision=None)
    phone["blocks"] = []
    for op in phone["operators"]:
        op["block"] = None
    path = tmp_path / "phone.json"
    path.write_text(json.dumps(phone))
    out = tmp_path / "report"
    assert report_main([str(path), "--manifest", str(tiny_exports / f"{BLOCKS}.manifest.json"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Pixel 8" in printed and "block 1: former" in printed
    assert (out / "report.png").is_file() and (out / "report.md").is_file()


@pytest.mark.parametrize("content, message", [
    ("{\"format\": \"mobileformer-latency/1\", \"created\": ", "not valid JSON"),
    ("[1, 2, 3]", "not a mobileformer-latency/1 result"),
    ("{\"format\": \"mobileformer-latency/1\"}", "field 'created' is missing"),
])
def test_report_rejects_bad_results(tmp_path, capsys, content, message):
    path = tmp_path / "r.json"
    path.write_text(content)
    assert report_main([str(path), "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    with pytest.raises(ResultError):
        read_result(path)


def test_report_missing_file(tmp_path, capsys):
    assert report_main([str(tmp_path / "nope.json")]) == 2
    assert "result not found" in capsys.readouterr().err


def test_report_on_a_full_disk_writes_nothing(bench_results, tmp_path, monkeypatch, capsys):
    """The chart fails to write: no CSV or Markdown without it, one error line."""
    def _disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report, "_chart", _disk_full)
    out = tmp_path / "report"
    assert report_main([str(bench_results / f"{INT8}.latency.json"), "--out", str(out)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def _phone_result(**artifact) -> dict:
    """A small valid result, as a phone app writes one."""
    return {"format": "mobileformer-latency/1", "created": "2026-11-30T00:00:00Z", "tool": "android_demo 0.1.0",
            "label": "phone", "device": {"kind": "android", "name": "Pixel 8"}, "runtime": {"name": "executorch"},
            "artifact": {"file": "m.pte", "size_bytes": 1000, **artifact}, "threads": 1, "warmup": 1, "iterations": 2,
            "latency_ms": {"p50": 1.0, "p90": 1.5, "mean": 1.25, "min": 1.0, "max": 1.5}, "samples_ms": [1.0, 1.5],
            "operators": [{"name": "Convolution (NHWC, QS8)", "mean_ms": 0.5}], "blocks": [{"name": "stem", "ms": 0.5}]}


def _without(path: str):
    def edit(r):
        *parents, last = path.split(".")
        node = r
        for key in parents:
            node = node[key]
        del node[last]
    return edit


def test_report_trace_of_a_host_result(bench_results, tmp_path):
    """--trace on a real quant.bench result of a --profile-blocks export: a valid Trace Event
    file whose block events last the result's block figures, their operators inside."""
    from tests.quant.test_trace import check_trace_event_format

    path = bench_results / f"{BLOCKS}.latency.json"
    out = tmp_path / "trace.json"
    assert report_main([str(path), "--out", str(tmp_path / "report"), "--trace", str(out)]) == 0
    events = check_trace_event_format(json.loads(out.read_text()))
    blocks = read_result(path)["blocks"]
    block_events = [e for e in events if e["cat"] == "block"]
    assert blocks and [e["name"] for e in block_events] == [b["name"] for b in blocks]
    for event, block in zip(block_events, blocks):
        assert event["dur"] == pytest.approx(block["ms"] * 1000)
    operators = [e for e in events if e["cat"] == "operator"]
    assert sum(e["dur"] for e in operators) == pytest.approx(1000 * sum(b["ms"] for b in blocks))


def test_report_refuses_to_mix_traced_and_untraced(tmp_path, capsys):
    """A profiling build's figures next to a release build's would compare unlike things (issue 32)."""
    paths = []
    for traced in (True, False):
        paths.append(tmp_path / f"{traced}.json")
        paths[-1].write_text(json.dumps({**_phone_result(), "traced": traced}))
    assert report_main([str(paths[0]), "--out", str(tmp_path / "one")]) == 0
    capsys.readouterr()
    assert report_main([*map(str, paths), "--out", str(tmp_path / "both")]) == 2
    assert "mix traced and untraced" in capsys.readouterr().err


@pytest.mark.parametrize("edit, message", [
    (_without("artifact.file"), "artifact.file"),
    (_without("artifact.size_bytes"), "artifact.size_bytes"),
    (lambda r: r["latency_ms"].update(p50=0), "latency_ms.p50 and p90 (> 0)"),
    (lambda r: r["blocks"][0].pop("name"), "blocks[].name and ms"),
    (lambda r: r["operators"].append(7), "operators[].name"),
])
def test_report_rejects_results_lacking_what_it_reads(tmp_path, capsys, edit, message):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(_phone_result()))
    assert report_main([str(good), "--out", str(tmp_path / "ok")]) == 0
    result = _phone_result()
    edit(result)
    bad.write_text(json.dumps(result))
    capsys.readouterr()
    assert report_main([str(good), str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: missing or invalid") and message in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("manifest, message", [
    ("[]", "is not a mobileformer-manifest/1 manifest"),
    ('{"format": "mobileformer-manifest/1"', "is not valid JSON (truncated?)"),
    ('{"format": "mobileformer-manifest/1"}', "missing or invalid model, backend, precision"),
    (json.dumps({"format": "mobileformer-manifest/1", "model": "m", "backend": "xnnpack", "precision": "int8",
                 "num_classes": 10, "input": {"shape": [1, 3, 8, 8], "mean": [0, 0, 0], "std": [1, 1, 1]},
                 "profiling": {"debug_handle_blocks": [1, 2]}}), "missing or invalid profiling"),
])
def test_report_names_a_bad_manifest(tmp_path, capsys, manifest, message):
    result, given = tmp_path / "r.json", tmp_path / "given.json"
    result.write_text(json.dumps(_phone_result()))
    given.write_text(manifest)
    assert report_main([str(result), "--manifest", str(given), "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    (tmp_path / "m.manifest.json").write_text(manifest)  # the same, found beside the result
    assert report_main([str(result), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and str(tmp_path / "m.manifest.json") in err
