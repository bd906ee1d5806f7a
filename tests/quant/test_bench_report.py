"""``quant.bench`` on real exports, ``quant.report`` on its results and on phone-style ones."""
import errno
import json
import shutil
from pathlib import Path

import pytest

from quant import report
from quant.bench import main as bench_main
from quant.latency import ResultError, apply_manifest, read_result
from quant.report import main as report_main
from quant.runtime import Program

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
        assert r["iterations"] == 5 and len(r["samples_ms"]) == 5 and r["threads"] == 1
        assert 0 < r["latency_ms"]["min"] <= r["latency_ms"]["p50"] <= r["latency_ms"]["p90"] <= r["latency_ms"]["max"]
        assert r["artifact"]["model"] == "mobile_former_tiny" and r["runtime"]["name"] == "executorch"
        assert r["operators"] and all(op["calls"] == 5 for op in r["operators"])
        assert (bench_results / r["etdump"]).is_file()
    int8 = read_result(bench_results / f"{INT8}.latency.json")
    assert any("QS8" in op["name"] or "QC8" in op["name"] for op in int8["operators"])
    assert {op["delegate_index"] for op in int8["operators"]} == {0}
    assert int8["blocks"] == []  # one delegate: kernels cannot be told apart by block


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
