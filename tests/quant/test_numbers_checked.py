"""No silent wrong result: divergence stops training, non-finite or mistyped weights are refused at
load, outputs are strict JSON, validation counts NaN as failure, resumes match their run."""
import json
import math
from pathlib import Path

import pytest
import torch

from mobileformer.checkpoint import CheckpointError, load_checkpoint
from quant.files import write_json_atomic
from quant.train import main as train_main


def _train_argv(model: str, out: Path, steps: int = 2, every: int = 1) -> list[str]:
    return ["--model", model, "--data", "digits", "--input-size", "64", "--steps", str(steps), "--batch-size", "4",
            "--eval-images", "4", "--warmup-steps", "0", "--checkpoint-every", str(every), "--out", str(out),
            "--no-progress"]


def test_divergence_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, tiny_variant, capsys):
    out = tmp_path / "run"
    assert train_main(_train_argv(tiny_variant, out, steps=1)) == 0  # a good run: last.pt and final.pt
    final = (out / "final.pt").read_bytes()
    capsys.readouterr()
    assert train_main(_train_argv(tiny_variant, out, steps=30) + ["--lr", "1e30"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: training diverged at step ") and err.count("\n") == 1, err
    assert (out / "final.pt").read_bytes() == final
    last = torch.load(out / "last.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())


def _tiny_state(factory) -> dict:
    return factory().state_dict()


def test_nan_weights_are_refused_at_load(tmp_path, tiny_model_factory):
    state = _tiny_state(tiny_model_factory)
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = state[key].clone()
    state[key].view(-1)[0] = math.nan
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_checkpoint(tiny_model_factory(), tmp_path / "nan.pth")


@pytest.mark.parametrize("dtype", [torch.int8, torch.bool, torch.complex64])
def test_weights_of_another_kind_are_refused_not_cast(tmp_path, tiny_model_factory, dtype):
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in _tiny_state(tiny_model_factory).items()}
    key = next(k for k, v in state.items() if v.is_floating_point() and v.dim() > 1)
    state[key] = state[key].to(dtype)
    save_file(state, str(tmp_path / "w.safetensors"))
    with pytest.raises(CheckpointError, match="another kind"):
        load_checkpoint(tiny_model_factory(), tmp_path / "w.safetensors")


def test_half_precision_weights_are_cast(tmp_path, tiny_model_factory):
    from safetensors.torch import save_file

    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in _tiny_state(tiny_model_factory).items()}
    save_file(state, str(tmp_path / "w.safetensors"))
    model = tiny_model_factory()
    load_checkpoint(model, tmp_path / "w.safetensors")
    key = next(iter(k for k, v in state.items() if v.dtype == torch.float16))
    assert model.state_dict()[key].dtype == torch.float32
    assert torch.equal(model.state_dict()[key], state[key].float())


class Payload:
    """Any class torch's safe loader does not allow."""


def test_an_unsafe_pickle_gets_no_advice_to_load_it_unsafely(tmp_path, tiny_variant, capsys):
    from quant.evaluate import main as evaluate_main

    torch.save({"model": Payload()}, tmp_path / "evil.pt")
    assert evaluate_main([str(tmp_path / "evil.pt"), "--model", tiny_variant, "--limit", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read checkpoint") and err.count("\n") == 1
    assert "can still be loaded" not in err and "trust the source" not in err and "never unpickled" in err


def test_outputs_are_strict_json(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"sqnr": math.inf, "x": [1.5, -math.inf]})
    assert json.loads((tmp_path / "a.json").read_text(), parse_constant=lambda c: pytest.fail(c)) == {
        "sqnr": "inf", "x": [1.5, "-inf"]}
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "b.json", {"diff": math.nan})
    assert not (tmp_path / "b.json").exists()


def test_fp32_validation_of_nan_fails():
    from quant.backends import BACKENDS
    from quant.export import ExportConfig, ExportError, _check_fp32, _check_numbers

    validation = {"max_abs_diff_vs_fp32": math.nan, "sqnr_db_vs_fp32": math.nan, "blocks": [{"margin_db": 1.0}]}
    with pytest.raises(ExportError):
        _check_fp32(ExportConfig(backend="xnnpack", precision="fp32"), BACKENDS["xnnpack"], validation)
    with pytest.raises(ExportError, match="NaN"):
        _check_numbers(validation)
    _check_numbers({"max_abs_diff_vs_fp32": 0.0, "sqnr_db_vs_fp32": math.inf})


def test_resume_refuses_another_init(tmp_path, tiny_variant, tiny_model_factory, capsys):
    out = tmp_path / "run"
    init_a, init_b = tmp_path / "a.pth", tmp_path / "b.pth"
    torch.save(tiny_model_factory().state_dict(), init_a)
    torch.save(tiny_model_factory().state_dict(), init_b)
    assert train_main(_train_argv(tiny_variant, out, steps=2) + ["--init", str(init_a)]) == 0
    capsys.readouterr()
    argv = _train_argv(tiny_variant, tmp_path / "again", steps=2) + ["--init", str(init_b), "--resume", str(out / "last.pt")]
    assert train_main(argv) == 2
    assert "different settings: init=" in capsys.readouterr().err


def test_resume_of_an_edited_checkpoint_is_an_error(tmp_path, tiny_variant, capsys):
    out = tmp_path / "run"
    assert train_main(_train_argv(tiny_variant, out, steps=2)) == 0
    state = torch.load(out / "last.pt", weights_only=True)
    del state["optimizer"]
    torch.save(state, tmp_path / "cut.pt")
    capsys.readouterr()
    assert train_main(_train_argv(tiny_variant, tmp_path / "again", steps=2) + ["--resume", str(tmp_path / "cut.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "cannot be resumed" in err and err.count("\n") == 1


def test_qat_resume_from_another_recipe_is_refused(tmp_path):
    from dataclasses import asdict

    from quant.train import ResumeError, TrainConfig, World, load_resume

    cfg = TrainConfig()
    torch.save({"format": "mobileformer-qat/1", "config": asdict(cfg), "model": {}, "recipe": "xnnpack",
                "num_classes": 10, "init": None}, tmp_path / "last.pt")
    extra = {"recipe": "coreml", "num_classes": 10, "init": None}
    with pytest.raises(ResumeError, match="recipe='xnnpack' \\(now 'coreml'\\)"):
        load_resume(tmp_path / "last.pt", cfg, "qat", World(), extra)


def test_a_corrupt_mlpackage_is_one_error(tmp_path, capsys):
    from quant.evaluate import main as evaluate_main

    package = tmp_path / "m.mlpackage"
    (package / "Data").mkdir(parents=True)
    (package / "Manifest.json").write_text("{not json")
    manifest = {"format": "mobileformer-manifest/1", "artifact": "m.mlpackage", "model": "mobile_former_tiny",
                "backend": "coreml", "precision": "int8", "num_classes": 10, "sha256": "0" * 64,
                "input": {"shape": [1, 3, 32, 32], "mean": [0.5] * 3, "std": [0.2] * 3}}
    (tmp_path / "m.manifest.json").write_text(json.dumps(manifest))
    assert evaluate_main([str(package), "--no-verify", "--limit", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read m.mlpackage") and err.count("\n") == 1


@pytest.mark.parametrize("command, argv, message", [
    ("bench", ["missing.pte", "--threads", "100000"], "--threads must be at most 256"),
    ("bench", ["missing.pte", "--threads", str(2**40)], "--threads must be at most 256"),
    ("export", ["--backend", "xnnpack", "--num-classes", str(10**9)], "--num-classes must be at most 100000"),
])
def test_numbers_too_large_to_run_are_refused(tmp_path, capsys, command, argv, message):
    import importlib

    main = importlib.import_module(f"quant.{command}").main
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_numerics_refuses_a_foreign_output_before_ptq(tmp_path, monkeypatch, capsys):
    import quant.numerics

    (tmp_path / "mobile_former_26m_xnnpack_ops.csv").write_text("mine")
    monkeypatch.setattr(quant.numerics, "inspect_model", lambda *a, **k: pytest.fail("PTQ ran before the check"))
    monkeypatch.setattr(quant.numerics, "calibration_batches", lambda *a, **k: pytest.fail("data read before the check"))
    assert quant.numerics.main(["--out", str(tmp_path)]) == 2
    assert "ops.csv exists and was not written by mobileformer" in capsys.readouterr().err
    assert (tmp_path / "mobile_former_26m_xnnpack_ops.csv").read_text() == "mine"
