"""``quant.bench`` on real exports: interleaved rounds, per-operator times, results in the latency format; damaged artifacts, bad numbers and full disks refused before anything is written."""
import errno
import json
import shutil
from pathlib import Path

import pytest

from quant.bench import interleaved_runs, main as bench_main
from quant.formats import read_result
from quant.backends.xnnpack.runtime import Program
from tests.conftest import BLOCKS, FP32, INT8
from tests.schemas import assert_follows

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


@pytest.mark.parametrize("arm64", [[], ["--arm64"]])
def test_an_mlpackage_is_named_for_what_it_is_not_as_missing(tmp_path, capsys, arm64):
    """A Core ML package is a folder: it was reported as 'artifact not found'."""
    (tmp_path / "m.mlpackage" / "Data").mkdir(parents=True)
    assert bench_main([str(tmp_path / "m.mlpackage"), *arm64, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: m.mlpackage: ") and err.count("\n") == 1 and "not found" not in err
