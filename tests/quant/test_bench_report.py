"""``quant.bench`` on real exports, ``quant.report`` on its results and on phone-style ones."""
import errno
import json
import shutil
from pathlib import Path

import pytest

from quant import report
from quant.bench import interleaved_runs, main as bench_main
from quant.latency import ResultError, apply_manifest, read_result
from quant.report import main as report_main
from quant.runtime import Program
from tests.schemas import assert_follows

INT8 = "mobile_former_tiny_xnnpack_int8"
BLOCKS = "mobile_former_tiny_xnnpack_int8_blocks"
FP32 = "mobile_former_tiny_xnnpack_fp32"


@pytest.fixture(scope="module")
def bench_results(tiny_exports, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    argv = [str(tiny_exports / f"{n}.pte") for n in (FP32, INT8, BLOCKS)]
    assert bench_main(argv + ["--iterations", "5", "--warmup", "2", "--out", str(out)]) == 0
    return out


def test_results_follow_the_format(bench_results):
    for name in (FP32, INT8, BLOCKS):
        r = read_result(bench_results / f"{name}.latency.json")
        assert_follows(r, "latency")
        assert r["iterations"] == 5 and len(r["samples_ms"]) == 5 and r["threads"] == 1
        assert r["traced"] is True  # the package's runtime times every XNNPACK operator (issue 32)
        assert 0 < r["latency_ms"]["min"] <= r["latency_ms"]["p50"] <= r["latency_ms"]["p90"] <= r["latency_ms"]["max"]
        assert r["artifact"]["model"] == "mobile_former_tiny" and r["runtime"]["name"] == "executorch"
        assert r["operators"] and all(op["calls"] == 5 for op in r["operators"])
        assert (bench_results / r["etdump"]).is_file()
    int8 = read_result(bench_results / f"{INT8}.latency.json")
    assert any("QS8" in op["name"] or "QC8" in op["name"] for op in int8["operators"])
    assert {op["delegate_index"] for op in int8["operators"]} == {0}
    assert int8["blocks"] == []  # one delegate: kernels cannot be told apart by block


def test_artifacts_are_timed_in_rounds_each_starting_one_further_along_each_rewarmed():
    calls = []
    runs = [lambda name=name: calls.append(name) for name in "abc"]
    samples = interleaved_runs(runs, warmup=1, iterations=4)
    assert calls == list("abc") + list("aabbcc" "bbccaa" "ccaabb" "aabbcc")
    assert [len(s) for s in samples] == [4, 4, 4] and all(t >= 0 for s in samples for t in s)


def test_profile_build_maps_operators_to_blocks(bench_results, tiny_exports):
    r = read_result(bench_results / f"{BLOCKS}.latency.json")
    manifest = json.loads((tiny_exports / f"{BLOCKS}.manifest.json").read_text())
    assert all(op["block"] == manifest["profiling"]["delegate_blocks"][op["delegate_index"]] for op in r["operators"])
    names = [b["name"] for b in r["blocks"]]
    assert names[0] == "stem" and names[-1] == "head" and "block 1: former" in names
    assert sum(b["ms"] for b in r["blocks"]) == pytest.approx(sum(op["mean_ms"] for op in r["operators"]))


def test_bench_writes_table_csv_and_chart(bench_results):
    assert (bench_results / "bench.png").stat().st_size > 1000
    csv = (bench_results / "bench.csv").read_text()
    assert "mobile_former_tiny xnnpack fp32" in csv and "(mobileformer)" in csv and "x" in csv


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


def test_apply_manifest_is_idempotent(bench_results, tiny_exports):
    r = read_result(bench_results / f"{BLOCKS}.latency.json")
    manifest = json.loads((tiny_exports / f"{BLOCKS}.manifest.json").read_text())
    assert apply_manifest(json.loads(json.dumps(r)), manifest) == r


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


def test_bench_rejects_damaged_artifacts(tiny_exports, tmp_path, capsys):
    cut = tmp_path / "cut.pte"
    data = (tiny_exports / f"{INT8}.pte").read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    for argv, message in (([str(cut)], "cut.pte"), ([str(tmp_path / "missing.pte")], "artifact not found"),
                          ([str(tmp_path / "m.onnx")], "artifact not found")):
        assert bench_main(argv + ["--iterations", "1", "--out", str(tmp_path / "b")]) == 2
        assert message in capsys.readouterr().err
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    assert bench_main([str(onnx), "--out", str(tmp_path / "b")]) == 2
    assert "unknown artifact type" in capsys.readouterr().err


def test_bench_bad_numbers(tiny_exports, capsys):
    assert bench_main([str(tiny_exports / f"{INT8}.pte"), "--iterations", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--iterations" in err


def test_bench_unwritable_out(tiny_exports, tmp_path, capsys):
    blocker = tmp_path / "f"
    blocker.write_text("")
    shutil.copy(tiny_exports / f"{INT8}.pte", tmp_path / "a.pte")
    assert bench_main([str(tmp_path / "a.pte"), "--out", str(blocker / "x")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_same_named_artifacts_keep_their_own_results(tiny_exports, tmp_path):
    copy = tmp_path / "other"
    copy.mkdir()
    for suffix in (".pte", ".manifest.json"):
        shutil.copy(tiny_exports / f"{INT8}{suffix}", copy / f"{INT8}{suffix}")
    out = tmp_path / "bench"
    argv = [str(tiny_exports / f"{INT8}.pte"), str(copy / f"{INT8}.pte"), "--no-operators", "--iterations", "2"]
    assert bench_main(argv + ["--out", str(out)]) == 0
    results = sorted(p.name for p in out.glob("*.latency.json"))
    assert results == sorted([f"{tiny_exports.name}_{INT8}.latency.json", f"other_{INT8}.latency.json"])


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_report_on_a_full_disk_writes_nothing(bench_results, tmp_path, monkeypatch, capsys):
    """The chart fails to write: no CSV or Markdown without it, one error line."""
    monkeypatch.setattr(report, "_chart", _disk_full)
    out = tmp_path / "report"
    assert report_main([str(bench_results / f"{INT8}.latency.json"), "--out", str(out)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_bench_on_a_full_disk_writes_nothing(tiny_exports, tmp_path, monkeypatch, capsys):
    """The ETDump is cut short by a full disk: no truncated .etdp, no results of the other artifacts."""
    write, calls = Program.write_etdump, []

    def write_half_the_second(self, path):
        calls.append(path)
        if len(calls) == 1:
            return write(self, path)
        Path(path).write_bytes(b"\0" * 10)
        _disk_full()

    monkeypatch.setattr(Program, "write_etdump", write_half_the_second)
    out = tmp_path / "bench"
    argv = [str(tiny_exports / f"{n}.pte") for n in (FP32, INT8)]
    assert bench_main(argv + ["--iterations", "1", "--warmup", "0", "--out", str(out)]) == 2
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


@pytest.mark.parametrize("manifest, message", [
    ('{"format": "mobileformer-manifest/1", "input": {"shape": [1, 3, ', "is not valid JSON (truncated?)"),
    ('{"input": {"shape": [1, 3, 64, 64]}}', "is not a mobileformer-manifest/1 manifest"),
])
def test_bench_names_a_bad_manifest(tiny_exports, tmp_path, capsys, manifest, message):
    shutil.copy(tiny_exports / f"{INT8}.pte", tmp_path / "m.pte")
    (tmp_path / "m.manifest.json").write_text(manifest)
    assert bench_main([str(tmp_path / "m.pte"), "--iterations", "1", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert message in err and str(tmp_path / "m.manifest.json") in err


def test_a_broken_second_artifact_leaves_no_result_of_the_first(tiny_exports, tmp_path, capsys):
    (tmp_path / "a").mkdir()
    for suffix in (".pte", ".manifest.json"):
        shutil.copy(tiny_exports / f"{INT8}{suffix}", tmp_path / "a" / f"{INT8}{suffix}")
    good, cut = tmp_path / "a" / f"{INT8}.pte", tmp_path / "cut.pte"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert bench_main([str(good), "--iterations", "1", "--no-operators", "--out", str(tmp_path / "ok")]) == 0
    out = tmp_path / "b"
    assert bench_main([str(good), str(cut), "--iterations", "1", "--out", str(out)]) == 2
    assert "cut.pte" in capsys.readouterr().err
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["--iterations", "0"], "--iterations must be at least 1, got 0"),
    (["--warmup", "-1"], "--warmup must be at least 0, got -1"),
    (["--threads", "-2"], "--threads must be at least 0, got -2"),
])
def test_bench_refuses_nonsense_numbers(tmp_path, capsys, argv, message):
    assert bench_main([str(tmp_path / "any.pte"), *argv]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


@pytest.mark.parametrize("backend, precision, recipe, blocks, label", [
    ("xnnpack", "int8", "xnnpack", False, "m xnnpack int8 (mobileformer)"),
    ("xnnpack", "int8", "xnnpack-per-tensor", True, "m xnnpack int8 (mobileformer) [blocks]"),
    ("xnnpack", "fp32", None, False, "m xnnpack fp32"),
    ("xnnpack", "int8", "xnnpack-stock", False, "m xnnpack int8 (stock quantizer)"),
    ("xnnpack", "fp32", "xnnpack-stock", False, "m xnnpack fp32 (stock)"),
    ("coreml", "int8", "coreml", False, "m coreml int8 (mobileformer)"),
    ("tflite", "int8", "tflite", False, "m tflite int8 (LiteRT quantizer)"),
    ("tflite", "fp32", "tflite", False, "m tflite fp32 (LiteRT quantizer)"),
])
def test_row_labels_come_from_the_recipe(backend, precision, recipe, blocks, label):
    from quant.bench import _label

    manifest = {"model": "m", "backend": backend, "precision": precision, "recipe": recipe,
                "profiling": {"delegate_blocks": ["stem"]} if blocks else {}}
    assert _label(Path("m.pte"), manifest) == label
    assert _label(Path("m.pte"), None) == "m"
