"""The LiteRT backend: ``quant.export --backend tflite``, the interpreter helpers (:mod:`quant.backends.tflite.runtime`), the op census.

One int8 and one fp32 export of the grouped tiny variant (tests/conftest.py: 26m's grouped
pointwise convs and channel shuffles in small; random weights, 8 digits images) are shared by
the tests of this module.
"""
from __future__ import annotations

import json
import math
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

import mobileformer as mf
from mobileformer.config import VARIANTS
from quant import export as ex
from quant.data import calibration_batches
from quant.files import sha256_of
from quant.metrics import top1_agreement
from quant.backends import BACKENDS
from quant.backends.tflite import GEMM_KINDS, tflite_census
from quant.quantizer import litert_quantizer
from quant.backends.tflite.runtime import INSTALL_HINT, TFLiteError, TFLiteModel, load_tflite_interpreter, time_tflite
from tests.conftest import TINY_GROUPED
from tests.schemas import assert_follows

pytest.importorskip("litert_torch", reason=f"the tflite extra is not installed: {INSTALL_HINT}")
pytest.importorskip("ai_edge_litert", reason=f"the tflite extra is not installed: {INSTALL_HINT}")

pytestmark = pytest.mark.slow
MODEL = TINY_GROUPED.name
SIZE = 64
IMAGES = 8


def _export(out, precision: str) -> ex.ExportResult:
    # one thread: calibration's float sums, so the bytes, are the same alone and under make test's workers
    cfg = ex.ExportConfig(backend="tflite", model=MODEL, precision=precision, calib="digits",
                          calib_images=IMAGES, input_size=SIZE, out=out, progress=False, threads=1)
    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(VARIANTS, MODEL, TINY_GROUPED)
        return ex.export(cfg)


@pytest.fixture(scope="module")
def int8(tmp_path_factory) -> ex.ExportResult:
    return _export(tmp_path_factory.mktemp("int8"), "int8")


@pytest.fixture(scope="module")
def fp32(tmp_path_factory) -> ex.ExportResult:
    return _export(tmp_path_factory.mktemp("fp32"), "fp32")


def test_int8_files_and_manifest(int8):
    assert int8.artifact.name == f"{MODEL}_tflite_int8.tflite"
    assert int8.artifact.read_bytes()[4:8] == b"TFL3"
    on_disk = json.loads(int8.manifest_path.read_text())
    assert on_disk == json.loads(json.dumps(int8.manifest))
    assert_follows(on_disk, "manifest")
    m = int8.manifest
    assert (m["backend"], m["format_kind"], m["precision"], m["recipe"]) == ("tflite", "tflite", "int8", "tflite")
    assert m["sha256"] == sha256_of(int8.artifact) and m["size_bytes"] == int8.artifact.stat().st_size
    assert m["versions"]["litert-torch"] == "0.10.0" and m["versions"]["ai-edge-litert"] == "2.3.0"
    # int8 in, int8 out: the app quantizes the normalised image and dequantizes the logits.
    inp, out = m["input"], m["output"]
    assert inp["shape"] == [1, 3, SIZE, SIZE] and inp["layout"] == "NCHW" and inp["dtype"] == "int8"
    assert inp["quantization"]["scale"] > 0 and -128 <= inp["quantization"]["zero_point"] <= 127
    assert out["shape"] == [1, m["num_classes"]] and out["dtype"] == "int8" and out["quantization"]["scale"] > 0
    # nothing else left in the output directory (staging removed)
    assert sorted(p.name for p in int8.artifact.parent.iterdir()) == sorted(
        [int8.artifact.name, int8.manifest_path.name, ".mobileformer-outputs.json"])  # and the ledger of our outputs


def test_int8_export_with_speed_patches_off_works_and_says_so(int8, tmp_path, monkeypatch, capsys):
    """MOBILEFORMER_PATCHES=off turns off the speed patches only: the layout-pass fix an int8 .tflite
    needs stays on, and torchao's range search as shipped finds the same ranges: the same file."""
    from quant.patches import SWITCH, _say_speed_patches_off

    monkeypatch.setenv(SWITCH, "off")
    _say_speed_patches_off.cache_clear()
    off = _export(tmp_path, "int8")
    assert f"{SWITCH}=off" in capsys.readouterr().err
    assert off.manifest["sha256"] == int8.manifest["sha256"]


GOLDEN_BYTES = Path(__file__).resolve().parents[3] / "golden" / "tiny_tflite.sha256.json"


def test_int8_tflite_keeps_its_bytes(int8):
    """The int8 ``.tflite`` is byte for byte what main wrote before the conversion's speed patches
    (``tests/golden/tiny_tflite.sha256.json``, on the releases it names)."""
    golden = json.loads(GOLDEN_BYTES.read_text())
    installed = {package: version(package).split("+")[0] for package in golden["versions"]}
    if installed != golden["versions"]:
        pytest.skip(f"recorded with {golden['versions']}, installed {installed}")
    assert {int8.artifact.name: sha256_of(int8.artifact)} == golden["sha256"]


def test_int8_census_convs_and_fully_connected_are_int8(int8):
    census = int8.manifest["op_census"]
    assert census["kinds"]["conv"].get("float", 0) == 0 and census["kinds"]["conv"]["int8"] > 0
    assert census["kinds"]["linear"].get("float", 0) == 0 and census["kinds"]["linear"]["int8"] > 0
    assert census["ops"]["CONV_2D"]["int8"] > 0 and census["ops"]["DEPTHWISE_CONV_2D"]["int8"] > 0
    assert census["ops"]["FULLY_CONNECTED"]["int8"] > 0
    assert 50.0 < census["int8_gemm_pct"] <= 100.0
    assert census["conversions"]["QUANTIZE"] > 0 and census["conversions"]["DEQUANTIZE"] > 0
    # XNNPACK takes partitions at load time; the conv/linear/matmul it leaves are those listed outside
    assert census["delegates"] >= 1
    gemm_total = sum(sum(census["kinds"][kind].values()) for kind in ("conv", "linear", "matmul"))
    gemm_outside = sum(n for key, n in census["outside"].items() if key.split(" ")[0] in GEMM_KINDS)
    assert census["delegated_gemm_pct"] == round(100.0 * (gemm_total - gemm_outside) / gemm_total, 2)
    # the census read back from the file is the one in the manifest
    assert tflite_census(int8.artifact).to_json() == census


def test_int8_validation_numbers_are_sane(int8):
    val = int8.manifest["validation"]
    assert val["images"] == IMAGES
    # random weights: logits are small and close together; the int8 model still tracks them
    assert 15.0 < val["sqnr_db_vs_fp32"] < 80.0
    assert val["sqnr_db_vs_pytorch_quantized"] > 15.0  # LiteRT's int8 kernels are not bit-exact with PT2E's simulation
    # the agreement is the one found by running the file against the float model it came from
    torch.manual_seed(0)
    reference = mf.MobileFormer(TINY_GROUPED).eval()  # the export's random weights (seed 0)
    images = calibration_batches("digits", IMAGES, SIZE, reference.cfg.mean, reference.cfg.std)
    with torch.no_grad():
        ref = torch.cat([reference(x) for x in images.split(1)])
    ours = torch.cat([TFLiteModel(int8.artifact)(x) for x in images.split(1)])
    assert val["top1_agreement_vs_fp32"] == top1_agreement(ref, ours)
    assert math.isfinite(val["max_abs_diff_vs_fp32"])
    assert val["runtime"].startswith("ai-edge-litert 2.3.0")


def test_fp32_matches_pytorch(fp32):
    m = fp32.manifest
    assert fp32.artifact.name == f"{MODEL}_tflite_fp32.tflite"
    assert m["recipe"] == "tflite" and m["input"]["dtype"] == "float32" and "quantization" not in m["input"]
    assert m["output"]["dtype"] == "float32" and "quantization" not in m["output"]
    assert m["validation"]["max_abs_diff_vs_fp32"] <= BACKENDS["tflite"].fp32_tolerance
    assert m["validation"]["top1_agreement_vs_fp32"] == 1.0
    assert m["op_census"]["int8_gemm_pct"] == 0.0 and m["op_census"]["conversions"] == {}


def test_tflite_model_runs_like_pytorch(int8, fp32):
    x = torch.randn(1, 3, SIZE, SIZE)
    for result in (int8, fp32):
        y = TFLiteModel(result.artifact)(x)
        assert y.shape == (1, result.manifest["num_classes"]) and torch.isfinite(y).all()
    with pytest.raises(TFLiteError, match=r"takes \[1, 3, 64, 64\]"):
        TFLiteModel(fp32.artifact)(torch.randn(1, 3, 32, 32))


def test_time_tflite_returns_one_positive_number_per_run(int8):
    for threads in (1, 2):
        samples = time_tflite(int8.artifact, threads=threads, warmup=2, iterations=5)
        assert len(samples) == 5 and all(isinstance(s, float) and s > 0 for s in samples)
    with pytest.raises(TFLiteError, match="iterations"):
        time_tflite(int8.artifact, threads=1, warmup=0, iterations=0)


def test_loading_an_interpreter_prints_nothing(int8, capfd):
    """LiteRT's C++ logging printed "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on
    every load (export validation, bench, make demo): third-party noise on the terminal."""
    capfd.readouterr()
    load_tflite_interpreter(int8.artifact, threads=1)
    assert capfd.readouterr() == ("", "")


def test_interpreter_refuses_missing_empty_corrupt_and_truncated_files(int8, tmp_path):
    with pytest.raises(TFLiteError, match="not found"):
        load_tflite_interpreter(tmp_path / "nothing.tflite", threads=1)
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    with pytest.raises(TFLiteError, match="not a TFLite model"):
        load_tflite_interpreter(empty, threads=1)
    pte = tmp_path / "program.tflite"
    pte.write_bytes(b"\0\0\0\0ET12" + bytes(100))
    with pytest.raises(TFLiteError, match="not a TFLite model"):
        load_tflite_interpreter(pte, threads=1)
    data = int8.artifact.read_bytes()
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(TFLiteError, match="truncated or corrupt"):
        load_tflite_interpreter(truncated, threads=1)
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(data[:8] + b"\xff" * 4096 + data[8 + 4096:])
    with pytest.raises(TFLiteError, match="truncated or corrupt"):
        load_tflite_interpreter(corrupt, threads=1)
    with pytest.raises(TFLiteError, match="threads"):
        load_tflite_interpreter(int8.artifact, threads=-1)


def test_weights_are_per_channel_symmetric_int8():
    weight = litert_quantizer(qat=False).global_config.weight  # as documented
    assert (weight.dtype, weight.qscheme, weight.ch_axis) == (torch.int8, torch.per_channel_symmetric, 0)


@pytest.mark.parametrize("argv, message", [
    (["--backend", "tflite", "--recipe", "xnnpack"], "targets xnnpack, not tflite"),
    (["--backend", "xnnpack", "--recipe", "tflite"], "targets tflite, not xnnpack"),
    (["--backend", "coreml", "--recipe", "tflite"], "targets tflite, not coreml"),
    (["--backend", "tflite", "--format", "pte"], "--format for tflite is one of tflite"),
    (["--backend", "tflite", "--profile-blocks"], "--profile-blocks is for the xnnpack backend"),
    (["--backend", "tflite", "--recipe", "tflite-stock"], "unknown recipe 'tflite-stock'"),
    (["--backend", "tflite", "--model", "mobile_former_27m"], "mobile_former_27m"),
])
def test_cli_bad_combinations_exit_2_and_write_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert ex.main([*argv, "--out", str(out), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_missing_extra_says_how_to_install(monkeypatch, tmp_path, capsys):
    for module in [m for m in sys.modules if m.split(".")[0] in ("litert_torch", "ai_edge_litert")]:
        monkeypatch.delitem(sys.modules, module)
    # None in sys.modules makes ``import`` raise ImportError, as when the package is absent
    monkeypatch.setitem(sys.modules, "litert_torch", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    out = tmp_path / "out"
    assert ex.main(["--backend", "tflite", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "needs litert-torch and ai-edge-litert" in err and INSTALL_HINT in err
    assert not out.exists() or not any(out.iterdir())
    with pytest.raises(TFLiteError, match="pip install"):
        load_tflite_interpreter(tmp_path / "x.tflite", threads=1)
    # the other backends do not need the extra
    assert ex.main(["--backend", "xnnpack", "--recipe", "tflite", "--out", str(out)]) == 2
    assert "targets tflite, not xnnpack" in capsys.readouterr().err
    assert mf.get_config("mobile_former_26m")


def test_bench_times_tflite_and_rejects_a_corrupt_one(int8, tmp_path, capsys):
    from quant.bench import main as bench_main

    out = tmp_path / "bench"
    assert bench_main([str(int8.artifact), "--iterations", "3", "--warmup", "1", "--out", str(out)]) == 0
    result = json.loads((out / f"{int8.artifact.stem}.latency.json").read_text())
    assert result["runtime"]["name"] == "tflite" and result["artifact"]["backend"] == "tflite"
    assert result["label"].endswith("(LiteRT quantizer)")
    assert len(result["samples_ms"]) == 3 and result["latency_ms"]["p50"] > 0
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(int8.artifact.read_bytes()[:100])
    capsys.readouterr()
    assert bench_main([str(bad), "--iterations", "1", "--out", str(tmp_path / "b2")]) == 2
    assert "bad.tflite" in capsys.readouterr().err
