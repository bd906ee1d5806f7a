"""quant.train (and quant.qat, which shares its options): nonsense numbers and unwritable outputs refused before any work."""
import pytest


def _train_argv(out, *extra):
    return ["--model", "mobile_former_26m", "--data", "digits", "--input-size", "64", "--steps", "2",
            "--batch-size", "4", "--out", str(out), *extra]


@pytest.mark.parametrize("command, extra, message", [
    ("train", ["--eval-images", "-1"], "--eval-images must be at least 0, got -1"),
    ("train", ["--eval-every", "-5"], "--eval-every must be at least 0"),
    ("train", ["--warmup-steps", "-1"], "--warmup-steps must be at least 0"),
    ("train", ["--input-size", "4096"], "--input-size must be a multiple of 32 from 32 to 1024"),
    ("train", ["--label-smoothing", "1.5"], "--label-smoothing must be between 0 and 1"),
    ("train", ["--lr", "nan"], "--lr must be a positive finite number"),
    ("train", ["--lr", "inf"], "--lr must be a positive finite number, got inf"),
    ("train", ["--weight-decay", "inf"], "--weight-decay must be finite, got inf"),
    ("train", ["--batch-size", "1"], "--batch-size must be at least 2, got 1"),
    ("train", ["--seed", "-1"], "--seed must be at least 0, got -1"),
    ("train", ["--seed", str(2**40)], "--seed must be below 2**32"),
    ("qat", ["--distill-temperature", "0"], "--distill-temperature must be a positive finite number, got 0.0"),
    ("qat", ["--distill-alpha", "-0.1"], "--distill-alpha must be between 0 and 1"),
    ("qat", ["--freeze-bn-step", "-1"], "--freeze-bn-step must be at least 0"),
])
def test_nonsense_numbers_are_refused_before_any_work(tmp_path, capsys, command, extra, message):
    import importlib

    main = importlib.import_module(f"quant.{command}").main
    assert main(_train_argv(tmp_path / "out", *extra)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["train", "qat"])
def test_out_onto_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch, command):
    import importlib

    module = importlib.import_module(f"quant.{command}")

    def no_work(*args, **kwargs):
        raise AssertionError("the output must be checked before the data is read and the model built")

    monkeypatch.setattr(module, "datasets", no_work)
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    for out in (blocker, blocker / "sub"):
        assert module.main(_train_argv(out)) == 2
        assert "cannot write to output directory" in capsys.readouterr().err
    assert blocker.read_text() == "mine"
