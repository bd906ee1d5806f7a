"""``quant.evaluate``: top-1 of an exported program, and paired comparisons of two results."""
import json

import pytest

from quant.evaluate import compare, main

INT8 = "mobile_former_tiny_xnnpack_int8"


@pytest.fixture
def ten_class_pte(ten_class_exports):
    """The tiny int8 .pte with a 10-class head, the class count of 'digits' (tests/conftest.py)."""
    return ten_class_exports("xnnpack").artifact


def test_pte_result_keeps_per_image_outcomes(ten_class_pte, tmp_path, capsys):
    out = tmp_path / "new" / "folder" / "r.json"  # a missing folder is made, as for every --out
    pte = ten_class_pte
    assert main([str(pte), "--data", "digits", "--limit", "20", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["images"] == 20 and len(r["correct"]) == 20 and set(r["correct"]) <= {"0", "1"}
    assert r["top1"] == r["correct"].count("1") / 20
    assert "top-1" in capsys.readouterr().out


def test_no_progress_leaves_stderr_quiet(ten_class_pte, capsys):
    assert main([str(ten_class_pte), "--limit", "4"]) == 0
    assert "evaluate" in capsys.readouterr().err  # the bar, without the flag
    assert main([str(ten_class_pte), "--limit", "4", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "top-1" in out


def _result(correct: str, images: int | None = None) -> dict:
    return {"data": "digits", "images": images or len(correct), "top1": correct.count("1") / len(correct),
            "correct": correct}


def test_compare_counts_discordant_pairs():
    r = compare(_result("1100"), _result("1010"))
    assert (r["only_a_right"], r["only_b_right"], r["p_value"]) == (1, 1, 1.0)


def test_compare_cli_and_bad_input(tmp_path, capsys):
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    a.write_text(json.dumps(_result("1" * 10)))
    b.write_text(json.dumps(_result("0" * 10)))
    c.write_text(json.dumps(_result("1" * 5)))
    assert main(["--compare", str(a), str(b)]) == 0
    assert "only A right: 10, only B right: 0" in capsys.readouterr().out
    assert main(["--compare", str(a), str(c)]) == 2
    assert "not the same images" in capsys.readouterr().err
    assert main(["--compare", str(a), str(tmp_path / "missing.json")]) == 2
    assert "cannot read result" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([])  # neither a target nor --compare


def test_a_model_with_other_classes_than_the_data_is_refused(tiny_exports, capsys):
    pte = tiny_exports / f"{INT8}.pte"  # a 1000-class head
    assert main([str(pte), "--data", "digits", "--limit", "4"]) == 2
    assert f"{INT8}.pte has 1000 classes, 'digits' has 10" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--limit", "-1"], "--limit must be at least 0, got -1"),
    (["--input-size", "0", "--model", "26m"], "--input-size must be a multiple of 32 from 32 to 1024, got 0"),
    (["--input-size", "96"], "takes 64x64 images, not --input-size 96"),
])
def test_nonsense_options_are_refused(ten_class_pte, capsys, argv, message):
    assert main([str(ten_class_pte), *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("manifest, message", [
    ('{"format": "mobileformer-manifest/1", "model": ', "is not valid JSON (truncated?)"),
    ('{"model": "mobile_former_tiny"}', "is not a mobileformer-manifest/1 manifest"),
    ('[1, 2]', "is not a mobileformer-manifest/1 manifest"),
    ('{"format": "mobileformer-manifest/1", "model": "m", "backend": "xnnpack", "precision": "int8", "num_classes": 10}',
     "missing or invalid input.shape, input.mean and std"),
])
def test_a_bad_manifest_is_named(ten_class_pte, tmp_path, capsys, manifest, message):
    pte = tmp_path / "m.pte"
    pte.write_bytes(ten_class_pte.read_bytes())
    (tmp_path / "m.manifest.json").write_text(manifest)
    assert main([str(pte), "--limit", "2"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(tmp_path / "m.manifest.json") in err


@pytest.mark.parametrize("content, message", [
    ("[1, 2]", "is not a quant.evaluate --json result"),
    (json.dumps({"data": "digits", "images": 4, "correct": "1100"}), "is not a quant.evaluate --json result"),
    (json.dumps({"data": "digits", "images": 10, "top1": 0.5, "correct": "1100"}), "do not match"),
    (json.dumps({"data": "digits", "images": 4, "top1": 0.5, "correct": "11x0"}), "do not match"),
    (json.dumps({"data": "digits", "images": 4, "top1": 0.9, "correct": "1100"}), "do not match"),
])
def test_compare_refuses_results_that_do_not_add_up(tmp_path, capsys, content, message):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(_result("1010")))
    bad.write_text(content)
    assert main(["--compare", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(bad) in err


def test_an_internal_bug_keeps_its_traceback(ten_class_pte, monkeypatch):
    import quant.evaluate

    def bug(*args, **kwargs):
        raise ValueError("a bug of ours")

    monkeypatch.setattr(quant.evaluate, "evaluate", bug)
    with pytest.raises(ValueError, match="a bug of ours"):
        main([str(ten_class_pte)])


@pytest.mark.slow
@pytest.mark.parametrize("backend, artifact, runner", [
    ("coreml", "coreml_int8.mlpackage", " (MIL reference executor, not Core ML)"),
    ("tflite", "tflite_int8.tflite", ""),  # LiteRT's interpreter
])
def test_a_package_or_tflite_is_scored_by_its_host_runner(ten_class_exports, tiny_variant, capsys, backend, artifact,
                                                          runner):
    """The int8 artifact's logits, run by the MIL reference executor (op by op) or LiteRT's interpreter,
    are the float network's up to int8 noise: a wrong layout, normalisation or class order would not
    score 15 dB."""
    import torch

    import mobileformer as mf
    from quant.evaluate import _predictor
    from quant.metrics import sqnr

    target = ten_class_exports(backend).artifact  # the export of test_coreml.py and test_arm64.py (LiteRT's) too
    assert target.name == f"{tiny_variant}_{artifact}"
    predict, size, mean, std, classes, what, _ = _predictor(target, None, None)
    assert (size, classes) == (64, 10) and what == f"{tiny_variant} {backend} int8{runner}"
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the export's random-init weights
        model = mf.create_model(tiny_variant, num_classes=10).eval()
    x = (torch.rand(4, 3, size, size) - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    with torch.no_grad():
        assert sqnr(model(x), predict(x)) > 15
    capsys.readouterr()
    assert main([str(target), "--data", "digits", "--limit", "3"]) == 0
    assert f"{backend} int8{runner}: top-1" in capsys.readouterr().out
