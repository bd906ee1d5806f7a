"""The output policy (quant/files.py) as every command applies it: names are names, outputs stay
in their folder, nothing the project did not write (or that was changed since) is replaced, and
conflicts are found before the long work. Each case was reproduced against the code before it."""
import json
import os
from pathlib import Path

import pytest
import torch

from mobileformer.cli import UserError
from quant.files import LEDGER, OutputError, check_name, staged_outputs, write_bytes_atomic
from quant.report import main as report_main
from tests.quant.test_report import _phone_result


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != LEDGER)


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "sub/x", "/abs/x", "~/notes", ".hidden", "a\\b", "a\0b",
                                  "a\nb", "x" * 252])
def test_a_name_with_a_folder_or_too_long_is_refused(name):
    with pytest.raises(OutputError):
        check_name(name, suffix=".png")


@pytest.mark.parametrize("name", ["report", "my report 2", "résultats", "x" * 251])
def test_plain_names_pass(name):
    assert check_name(name, suffix=".png") == name


@pytest.fixture
def phone_result(tmp_path) -> Path:
    path = tmp_path / "phone.json"
    path.write_text(json.dumps(_phone_result()))
    return path


@pytest.mark.parametrize("name", ["../escaped", "sub/x", "ABSOLUTE"])
def test_report_name_cannot_leave_out(tmp_path, phone_result, capsys, name):
    outside = tmp_path / "outside"
    outside.mkdir()
    name = str(outside / "notes") if name == "ABSOLUTE" else name
    out = tmp_path / "out"
    assert report_main([str(phone_result), "--out", str(out), "--name", name]) == 2
    assert "error: --name must be a plain file name" in capsys.readouterr().err
    assert list(outside.iterdir()) == [] and not (tmp_path / "escaped.csv").exists()
    assert not out.exists() or _visible(out) == []


def test_bench_name_is_checked_before_anything_else(tmp_path, capsys):
    from quant.bench import main as bench_main

    assert bench_main([str(tmp_path / "missing.pte"), "--out", str(tmp_path / "out"), "--name", "../x"]) == 2
    assert "error: --name must be a plain file name" in capsys.readouterr().err


def test_bench_refuses_an_artifact_name_too_long_for_its_result(tmp_path, capsys):
    from quant.bench import main as bench_main

    artifact = tmp_path / ("m" * 246 + ".pte")
    artifact.write_bytes(b"\0\0\0\0ET12" + b"\0" * 64)
    assert bench_main([str(artifact), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "too long" in err and err.count("\n") == 1


def test_report_replaces_its_own_outputs_but_not_the_users(tmp_path, phone_result, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.csv").write_text("my own table\n")
    assert report_main([str(phone_result), "--out", str(out)]) == 2
    assert "report.csv exists and was not written by mobileformer" in capsys.readouterr().err
    assert (out / "report.csv").read_text() == "my own table\n" and _visible(out) == ["report.csv"]
    (out / "report.csv").unlink()
    assert report_main([str(phone_result), "--out", str(out)]) == 0
    assert report_main([str(phone_result), "--out", str(out)]) == 0  # ours, unchanged: replaced
    (out / "report.md").write_text("edited by hand\n")
    assert report_main([str(phone_result), "--out", str(out)]) == 2
    assert "or was changed since" in capsys.readouterr().err
    assert (out / "report.md").read_text() == "edited by hand\n"


def test_a_foreign_ledger_is_neither_trusted_nor_replaced(tmp_path):
    (tmp_path / LEDGER).write_text("my notes")
    with pytest.raises(OutputError, match="not mobileformer's record"):
        with staged_outputs(tmp_path) as stage:
            (stage / "a.csv").write_text("x")
    assert (tmp_path / LEDGER).read_text() == "my notes" and _visible(tmp_path) == []


def test_evaluate_json_cannot_overwrite_what_it_evaluates(tmp_path, tiny_variant, tiny_model_factory, capsys):
    """Even a file of ours (an artifact, a checkpoint written through the policy) is not a place for the result."""
    from quant.evaluate import main as evaluate_main

    checkpoint = tmp_path / "tiny.pt"
    state = tiny_model_factory().state_dict()
    torch.save(state, tmp_path / "plain.pt")
    write_bytes_atomic(checkpoint, (tmp_path / "plain.pt").read_bytes())
    before = checkpoint.read_bytes()
    argv = [str(checkpoint), "--model", tiny_variant, "--limit", "4", "--no-progress", "--json", str(checkpoint)]
    assert evaluate_main(argv) == 2
    assert "is the file being evaluated" in capsys.readouterr().err
    assert checkpoint.read_bytes() == before


def _train_argv(model: str, out: Path) -> list[str]:
    return ["--model", model, "--data", "digits", "--input-size", "64", "--steps", "1", "--batch-size", "4",
            "--eval-images", "4", "--warmup-steps", "0", "--out", str(out), "--no-progress"]


def test_train_leaves_temporaries_it_did_not_create(tmp_path, tiny_variant, capsys):
    from quant.train import main as train_main

    out = tmp_path / "run"
    out.mkdir()
    (out / ".notes.pt.draft.tmp").write_text("mine")
    (out / ".folder.pt.x.tmp").mkdir()
    assert train_main(_train_argv(tiny_variant, out)) == 0
    assert (out / ".notes.pt.draft.tmp").read_text() == "mine" and (out / ".folder.pt.x.tmp").is_dir()


@pytest.mark.parametrize("kind", ["link", "file"])
def test_train_refuses_a_foreign_final_pt_before_training(tmp_path, tiny_variant, monkeypatch, capsys, kind):
    import quant.train

    out = tmp_path / "run"
    out.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    if kind == "link":
        os.symlink(precious, out / "final.pt")
    else:
        (out / "final.pt").write_text("mine")

    def too_late(*args, **kwargs):
        raise AssertionError("the conflict must be found before the data is loaded")
    monkeypatch.setattr(quant.train, "datasets", too_late)
    assert quant.train.main(_train_argv(tiny_variant, out)) == 2
    assert "final.pt exists and" in capsys.readouterr().err
    assert precious.read_text() == "mine" and (out / "final.pt").read_text() == "mine"


def test_export_refuses_a_foreign_artifact_before_the_long_work(tmp_path, tiny_variant, monkeypatch, capsys):
    import quant.export

    out = tmp_path / "out"
    out.mkdir()
    (out / f"{tiny_variant}_xnnpack_int8.pte").symlink_to(tmp_path / "elsewhere.pte")

    def too_late(*args, **kwargs):
        raise AssertionError("the conflict must be found before the model is built")
    monkeypatch.setattr(quant.export, "_build_model", too_late)
    assert quant.export.main(["--backend", "xnnpack", "--model", tiny_variant, "--out", str(out), "--no-progress"]) == 2
    assert "exists and is a link: refusing to replace it" in capsys.readouterr().err


def test_bench_arm64_refuses_a_broken_tflite_before_counting_anything(tmp_path, monkeypatch, capsys):
    import quant.backends.xnnpack.probe
    import quant.bench

    pte, tflite = tmp_path / "a.pte", tmp_path / "b.tflite"
    pte.write_bytes(b"\0\0\0\0ET12" + b"\0" * 64)
    tflite.write_bytes(b"\0\0\0\0TFL3" + b"\0" * 64)
    monkeypatch.setattr(quant.backends.xnnpack.probe, "probe_program", lambda *a, **k: None)  # the .pte passes

    def too_late(*args, **kwargs):
        raise AssertionError("counted before every artifact was checked")
    monkeypatch.setattr(quant.bench, "count_artifact", too_late)
    assert quant.bench.main([str(pte), str(tflite), "--arm64", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "b.tflite" in err


def test_bench_arm64_refuses_bytes_that_are_not_a_program(tmp_path, monkeypatch, capsys):
    import quant.bench

    fake = tmp_path / "notes.pte"
    fake.write_bytes(bytes(range(256)) * 4)
    monkeypatch.setattr(quant.bench, "count_artifact", lambda *a, **k: pytest.fail("counted a non-program"))
    assert quant.bench.main([str(fake), "--arm64", "--out", str(tmp_path / "out")]) == 2
    assert "notes.pte is not an ExecuTorch program" in capsys.readouterr().err


def test_a_path_beyond_path_max_is_one_error(tmp_path, phone_result, capsys):
    long_out = tmp_path / "/".join(["d" * 200] * 25)  # 5,000 characters: over Linux's PATH_MAX
    assert report_main([str(phone_result), "--out", str(long_out)]) == 2
    assert report_main([str(long_out / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("error: ") == 2 and "Traceback" not in err


def test_a_cache_that_is_a_file_is_one_error(tmp_path, monkeypatch, capsys):
    from quant.aarch64.qemu import cached as _cached

    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setenv("MOBILEFORMER_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="cannot use .* as the cache"):
        _cached("sdk", lambda tmp: None)


MANIFEST = {"format": "mobileformer-manifest/1", "artifact": "m.pte", "model": "mobile_former_tiny",
            "backend": "xnnpack", "precision": "int8", "num_classes": 10, "sha256": "0" * 64,
            "input": {"shape": [1, 3, 32, 32], "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]}}


def _exported(folder: Path) -> tuple[Path, Path]:
    """An artifact and its manifest as an export leaves them: written through the policy, so in the ledger."""
    folder.mkdir(exist_ok=True)
    write_bytes_atomic(folder / "m.pte", b"\0\0\0\0ET12" + b"\0" * 64)
    write_bytes_atomic(folder / "m.manifest.json", json.dumps(MANIFEST).encode())
    return folder / "m.pte", folder / "m.manifest.json"


def test_evaluate_json_cannot_replace_the_manifest_it_reads(tmp_path, monkeypatch, capsys):
    """The manifest is ours and unchanged, so the ledger alone let --json replace it: the artifact lost its record."""
    import quant.evaluate

    artifact, manifest = _exported(tmp_path)
    before = manifest.read_bytes()
    monkeypatch.setattr(quant.evaluate, "evaluate", lambda *a, **k: pytest.fail("conflict found after the work"))
    assert quant.evaluate.main([str(artifact), "--json", str(manifest)]) == 2
    assert "is the manifest of the file being evaluated" in capsys.readouterr().err
    assert manifest.read_bytes() == before


@pytest.mark.parametrize("given", [True, False], ids=["--manifest", "beside the result"])
def test_report_trace_cannot_replace_a_manifest_it_reads(tmp_path, capsys, given):
    _, manifest = _exported(tmp_path / "export")
    result = tmp_path / ("phone.json" if given else "export/r.json")
    result.write_text(json.dumps(_phone_result()))
    before = manifest.read_bytes()
    argv = [str(result), "--out", str(tmp_path / "out"), "--trace", str(manifest)]
    assert report_main(argv + (["--manifest", str(manifest)] if given else [])) == 2
    assert "is a manifest read" in capsys.readouterr().err
    assert manifest.read_bytes() == before
    assert not (tmp_path / "out").exists() or _visible(tmp_path / "out") == []


def test_report_trace_conflict_is_found_before_any_output(tmp_path, phone_result, capsys):
    (tmp_path / "mine.json").write_text("my trace\n")
    out = tmp_path / "out"
    assert report_main([str(phone_result), "--out", str(out), "--trace", str(tmp_path / "mine.json")]) == 2
    assert "mine.json exists and was not written by mobileformer" in capsys.readouterr().err
    assert (tmp_path / "mine.json").read_text() == "my trace\n"
    assert not out.exists() or _visible(out) == []  # outputs appear together or not at all


@pytest.mark.parametrize("command", ["train", "qat"])
@pytest.mark.parametrize("name", ["final.pt", "last.pt"])
def test_a_run_cannot_replace_the_checkpoint_it_starts_from(tmp_path, tiny_variant, tiny_model_factory, monkeypatch,
                                                            capsys, command, name):
    """A run's earlier checkpoint is ours and unchanged, so the ledger alone let the run replace its own --init."""
    import importlib

    module = importlib.import_module(f"quant.{command}")
    out = tmp_path / "run"
    out.mkdir()
    torch.save(tiny_model_factory().state_dict(), tmp_path / "plain.pt")
    write_bytes_atomic(out / name, (tmp_path / "plain.pt").read_bytes())
    before = (out / name).read_bytes()
    monkeypatch.setattr(module, "datasets", lambda *a, **k: pytest.fail("conflict found after reading the data"))
    assert module.main(_train_argv(tiny_variant, out) + ["--init", str(out / name)]) == 2
    assert f"{name} is the --init checkpoint" in capsys.readouterr().err
    assert (out / name).read_bytes() == before


def test_a_full_disk_while_a_run_saves_is_one_error_and_keeps_its_checkpoints(tmp_path, tiny_variant, monkeypatch, capsys):
    """torch's writer reports a full disk as RuntimeError, not OSError: it was a traceback."""
    from quant.train import main as train_main

    out = tmp_path / "run"
    assert train_main(_train_argv(tiny_variant, out)) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full(obj, f, *args, **kwargs):  # what torch.save does when the disk fills: part written, then this
        Path(f).write_bytes(b"PK\x03\x04cut")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 99904 vs 99792")
    monkeypatch.setattr(torch, "save", full)
    capsys.readouterr()
    assert train_main(_train_argv(tiny_variant, out)) == 2
    err = capsys.readouterr().err
    assert err.count("error: ") == 1 and "Traceback" not in err and "last.pt (disk full?)" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
