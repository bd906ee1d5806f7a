"""``quant.export`` end to end on a tiny variant, and every bad-input path."""
import json
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

import mobileformer as mf
from mobileformer.config import VARIANTS
from quant.data import calibration_batches
from quant.files import sha256_of
from quant.metrics import top1_agreement
from quant import export as export_mod
from quant.backends import xnnpack
from quant.export import main
from quant.recipes import get_recipe
from quant.backends.xnnpack.runtime import Program
from tests.conftest import TINY
from tests.schemas import assert_follows


def _manifest(out, name):
    return json.loads((out / f"{name}.manifest.json").read_text())


def _agreement_of(pte, images: int) -> float:
    """Top-1 agreement of ``pte`` with the float model it came from (the export's seed-0 weights), recomputed."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(VARIANTS, TINY.name, TINY)
        torch.manual_seed(0)
        model = mf.create_model(TINY.name).eval()
    x = calibration_batches("digits", images, TINY.input_size, TINY.mean, TINY.std)
    program = Program(pte)
    with torch.no_grad():
        return top1_agreement(torch.cat([model(i) for i in x.split(1)]), torch.cat([program(i) for i in x.split(1)]))


def test_int8_artifact_manifest_and_census(tiny_exports):
    name = "mobile_former_tiny_xnnpack_int8"
    assert {p.name for p in tiny_exports.iterdir()} >= {f"{name}.pte", f"{name}.manifest.json"}
    assert not list(tiny_exports.glob("*.etrecord")), "an .etrecord is written only with --etrecord"
    m = _manifest(tiny_exports, name)
    assert m["model"] == TINY.name and m["backend"] == "xnnpack" and m["precision"] == "int8" and m["recipe"] == "xnnpack"
    assert m["recipe_fingerprint"]["recipe"] == "xnnpack" and m["recipe_fingerprint"]["dense_grouped_pointwise"]
    assert m["input"]["shape"] == [1, 3, 64, 64] and m["input"]["mean"] == list(TINY.mean)
    assert m["num_classes"] == 1000 and m["size_bytes"] == (tiny_exports / f"{name}.pte").stat().st_size
    assert len(m["sha256"]) == 64 and m["versions"]["executorch"] == "1.5.1"
    census = m["op_census"]
    assert census["delegates"] == 1 and census["delegated_gemm_pct"] == 100.0 and census["int8_gemm_pct"] == 100.0
    assert set(census["ops"]["XNNBatchMatrixMultiply"]) == {"int8"}
    v = m["validation"]
    assert v["images"] == 8 and v["sqnr_db_vs_pytorch_quantized"] > 20
    assert v["top1_agreement_vs_fp32"] == _agreement_of(tiny_exports / f"{name}.pte", 8)
    t = m["timings_s"]
    assert set(t) == {"quantize", "lowering", "validation", "total"} and sum(t.values()) - t["total"] <= t["total"] + 0.2


def test_fp32_artifact_matches_pytorch(tiny_exports):
    m = _manifest(tiny_exports, "mobile_former_tiny_xnnpack_fp32")
    assert m["validation"]["max_abs_diff_vs_fp32"] <= 1e-4
    assert m["op_census"]["delegated_gemm_pct"] == 100.0 and m["recipe"] is None


def test_manifests_follow_the_schema(tiny_exports):
    manifests = sorted(tiny_exports.glob("*.manifest.json"))
    assert len(manifests) == 3
    for path in manifests:
        assert_follows(json.loads(path.read_text()), "manifest")


def test_int8_file_is_smaller_than_fp32(tiny_exports):
    int8 = (tiny_exports / "mobile_former_tiny_xnnpack_int8.pte").stat().st_size
    fp32 = (tiny_exports / "mobile_former_tiny_xnnpack_fp32.pte").stat().st_size
    assert int8 < 0.5 * fp32


def test_profile_blocks_has_one_delegate_per_paper_block(tiny_exports):
    m = _manifest(tiny_exports, "mobile_former_tiny_xnnpack_int8_blocks")
    blocks = m["profiling"]["delegate_blocks"]
    assert m["op_census"]["delegates"] == len(blocks)
    assert blocks[0] == "stem" and blocks[-1] == "head"
    assert {"bneck-lite", "block 1: mobile→former", "block 1: former", "block 1: mobile", "block 1: former→mobile",
            "block 2: mobile"} <= set(blocks)


def test_every_xnnpack_manifest_maps_debug_handles_to_paper_blocks(tiny_exports):
    blocks = _manifest(tiny_exports, "mobile_former_tiny_xnnpack_int8")["profiling"]["debug_handle_blocks"]
    assert set(blocks.values()) == set(_manifest(tiny_exports, "mobile_former_tiny_xnnpack_int8_blocks")
                                       ["profiling"]["delegate_blocks"])
    assert all(handle.isdigit() for handle in blocks)


def test_same_inputs_give_the_same_bytes_with_etrecord_and_profile(tiny_exports, tiny_variant, tmp_path, capsys):
    """--etrecord adds its file and --profile its timings; neither changes the program's bytes."""
    assert main(["--backend", "xnnpack", "--model", tiny_variant, "--calib-images", "8", "--out", str(tmp_path),
                 "--no-progress", "--etrecord", "--profile"]) == 0
    name = "mobile_former_tiny_xnnpack_int8"
    assert (tmp_path / f"{name}.pte").read_bytes() == (tiny_exports / f"{name}.pte").read_bytes()
    assert (tmp_path / f"{name}.etrecord").stat().st_size > 0
    assert_follows(_manifest(tmp_path, name), "manifest")
    profile = _manifest(tmp_path, name)["profile"]
    phases = {tuple(p["path"]): p for p in profile["phases"]}
    for path in [("quantize", "calibrate"), ("quantize", "prepare"), ("lowering", "to_backend", "preprocess"),
                 ("lowering", "to_executorch", "serialize"), ("validation",), ("manifest",)]:
        assert path in phases, path
    assert any(p[-1].startswith("pass ") for p in phases)  # library passes, by name
    assert sum(p["s"] for p in profile["phases"] if len(p["path"]) == 1) <= profile["total_s"]
    assert "load average" in capsys.readouterr().out  # the table after the summary


def _assert_fails_cleanly(argv, out, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir()), "a failed export must leave nothing behind"


@pytest.mark.parametrize("argv, message", [
    (["--backend", "onnx"], "unknown backend 'onnx'"),
    (["--backend", "xnnpack", "--model", "mobile_former_9m"], "unknown model 'mobile_former_9m'"),
    (["--backend", "xnnpack", "--checkpoint", "/nonexistent.pth"], "checkpoint not found"),
    (["--backend", "coreml", "--profile-blocks"], "--profile-blocks is for the xnnpack backend"),
    (["--backend", "tflite", "--etrecord"], "--etrecord is for the xnnpack backend"),
    (["--backend", "xnnpack", "--recipe", "coreml"], "targets coreml, not xnnpack"),
    (["--backend", "xnnpack", "--recipe", "magic"], "unknown recipe 'magic'"),
    (["--backend", "xnnpack", "--format", "mlpackage"], "--format for xnnpack"),
    (["--backend", "xnnpack", "--calib", "/no/such/dir"], "neither a data directory nor a built-in set"),
    (["--backend", "xnnpack", "--calib-images", "0"], "--calib-images must be at least 1"),
    (["--backend", "xnnpack", "--input-size", "100"], "--input-size must be a multiple of 32 from 32 to 1024"),
])
def test_bad_input(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    _assert_fails_cleanly(argv + ["--out", str(out)], out, message, capsys)


def test_corrupt_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    out = tmp_path / "out"
    _assert_fails_cleanly(["--backend", "xnnpack", "--checkpoint", str(bad), "--out", str(out)], out,
                          "cannot read checkpoint", capsys)


def test_qat_checkpoint_of_another_variant(tmp_path, capsys):
    ckpt = tmp_path / "qat.pt"
    torch.save({"format": "mobileformer-qat/1", "config": {"model": "mobile_former_52m", "input_size": 64}, "model": {},
                "recipe": "xnnpack", "num_classes": 10}, ckpt)
    out = tmp_path / "out"
    _assert_fails_cleanly(["--backend", "xnnpack", "--checkpoint", str(ckpt), "--out", str(out)], out,
                          "QAT checkpoint of mobile_former_52m, not of mobile_former_26m", capsys)


def test_unwritable_out_dir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["--backend", "xnnpack", "--out", str(blocker / "out")]) == 2
    assert "cannot write to output directory" in capsys.readouterr().err


@pytest.mark.slow
def test_failed_validation_leaves_nothing(tiny_variant, tmp_path, monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise export_mod.ExportError("validation failed on purpose")

    monkeypatch.setattr(xnnpack, "validate", fail)
    out = tmp_path / "out"
    _assert_fails_cleanly(["--backend", "xnnpack", "--model", tiny_variant, "--precision", "fp32", "--calib-images", "2",
                           "--out", str(out), "--no-progress"], out, "validation failed on purpose", capsys)


@pytest.mark.slow
def test_strict_fails_when_a_gemm_stays_outside(tiny_variant, tmp_path, monkeypatch, capsys):
    import quant.backends.xnnpack.partition as partition

    real = partition.xnnpack_partitioner

    def without_conv(**kwargs):
        from executorch.backends.xnnpack.partition.config.gemm_configs import ConvolutionConfig
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        real(**kwargs)  # same arguments still accepted
        return XnnpackPartitioner(configs=[c for c in partition.CONFIGS if c is not ConvolutionConfig])

    monkeypatch.setattr(partition, "xnnpack_partitioner", without_conv)
    out = tmp_path / "out"
    _assert_fails_cleanly(["--backend", "xnnpack", "--model", tiny_variant, "--precision", "fp32", "--calib-images", "2",
                           "--out", str(out), "--strict", "--no-progress"], out, "--strict", capsys)


@pytest.mark.parametrize("recipe, precision, blocks, name", [
    ("xnnpack", "int8", False, "m_xnnpack_int8.pte"),
    ("xnnpack-stock", "int8", True, "m_xnnpack_int8_stock_blocks.pte"),
    ("xnnpack-per-tensor", "int8", False, "m_xnnpack_int8_per_tensor.pte"),
    ("xnnpack-per-tensor", "fp32", False, "m_xnnpack_fp32.pte"),
    ("xnnpack-stock", "fp32", False, "m_xnnpack_fp32_stock.pte"),
])
def test_artifact_names_mark_recipe_and_profiling(recipe, precision, blocks, name):
    assert export_mod.artifact_name("m", "xnnpack", precision, get_recipe(recipe), "pte", blocks) == name
    assert export_mod.artifact_name("m", "coreml", "int8", get_recipe("coreml"), "mlpackage", False) == "m_coreml_int8.mlpackage"


def test_exporting_never_imports_the_training_loop():
    """A QAT checkpoint is loaded through quant.qat_graph; quant.train and its CLI stay out."""
    import subprocess
    import sys

    code = "import sys, quant.export; print(sorted(m for m in sys.modules if m in ('quant.train', 'quant.qat')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("extra, message", [
    (["--num-classes", "0"], "--num-classes must be at least 1, got 0"),
    (["--input-size", "0"], "--input-size must be a multiple of 32 from 32 to 1024"),
    (["--input-size", "100000"], "--input-size must be a multiple of 32 from 32 to 1024"),
])
def test_export_refuses_nonsense_numbers(tmp_path, capsys, extra, message):
    from quant.export import main

    assert main(["--backend", "xnnpack", "--out", str(tmp_path / "out"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


GOLDEN_BYTES = Path(__file__).resolve().parents[1] / "golden" / "tiny_exports.sha256.json"


def test_exports_keep_their_bytes(tiny_exports):
    """The tiny exports are byte for byte what they were when ``tests/golden/tiny_exports.sha256.json`` was
    recorded (on the pinned library releases it names): a change meant to make exports faster must not
    change a program. Regenerate the file only for a change meant to change the programs, and say so."""
    golden = json.loads(GOLDEN_BYTES.read_text())
    installed = {package: version(package).split("+")[0] for package in golden["versions"]}
    if installed != golden["versions"]:
        pytest.skip(f"recorded with {golden['versions']}, installed {installed}")
    for name, digest in golden["sha256"].items():
        assert sha256_of(tiny_exports / name) == digest, name
