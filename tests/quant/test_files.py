"""Atomic writes, staged outputs, hashes, and what is never replaced or deleted."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from quant.files import (
    LEDGER,
    OutputError,
    atomic_path,
    ensure_writable_dir,
    sha256_of,
    staged_outputs,
    write_bytes_atomic,
    write_json_atomic,
)

ROOT = Path(__file__).resolve().parents[2]


def names(folder: Path) -> list[str]:
    """What a folder shows, less the ledger of our outputs."""
    return sorted(p.name for p in folder.iterdir() if p.name != LEDGER)


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "a.bin"
    write_bytes_atomic(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old" and names(tmp_path) == ["a.bin"]
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"


def test_staged_outputs_leave_nothing_on_failure(tmp_path):
    with pytest.raises(ValueError):
        with staged_outputs(tmp_path) as stage:
            (stage / "model.pte").write_bytes(b"x")
            raise ValueError("validation failed")
    assert list(tmp_path.iterdir()) == []
    with staged_outputs(tmp_path) as stage:
        (stage / "model.pte").write_bytes(b"x")
        (stage / "pkg.mlpackage").mkdir()
        (stage / "pkg.mlpackage" / "f").write_bytes(b"y")
    assert names(tmp_path) == ["model.pte", "pkg.mlpackage"]


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot write"):
        ensure_writable_dir(blocker / "sub")


def test_sha256_of_directory_follows_the_documented_scheme(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_bytes(b"1")
    (tmp_path / "a").write_bytes(b"2")
    expected = hashlib.sha256(b"a\x002b/x\x001").hexdigest()
    assert sha256_of(tmp_path) == expected
    assert sha256_of(tmp_path / "a") == hashlib.sha256(b"2").hexdigest()


@pytest.mark.parametrize("kind", ["folder", "link", "cwd"])
def test_atomic_write_refuses_what_is_not_a_file(tmp_path, monkeypatch, kind):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious.txt").write_text("mine")
    target = {"folder": keep, "cwd": Path("."), "link": tmp_path / "link"}[kind]
    if kind == "link":
        target.symlink_to(keep / "precious.txt")
    monkeypatch.chdir(keep if kind == "cwd" else tmp_path)
    with pytest.raises(OutputError, match="refusing to replace"):
        write_json_atomic(target, {"x": 1})
    assert (keep / "precious.txt").read_text() == "mine" and sorted(p.name for p in keep.iterdir()) == ["precious.txt"]


def test_evaluate_json_onto_a_folder_is_an_error_and_deletes_nothing(tmp_path, tiny_variant, tiny_model_factory, capsys):
    from quant.evaluate import main as evaluate_main

    keep = tmp_path / "results"
    keep.mkdir()
    (keep / "a.json").write_text("{}")
    checkpoint = tmp_path / "tiny.pth"
    torch.save(tiny_model_factory().state_dict(), checkpoint)
    assert evaluate_main([str(checkpoint), "--model", tiny_variant, "--limit", "4", "--json", str(keep)]) == 2
    assert "refusing to replace" in capsys.readouterr().err
    assert [p.name for p in keep.iterdir()] == ["a.json"]


def _mlpackage(path: Path, marker: str, author: str = "com.github.apple.coremltools") -> Path:
    (path / "Data" / "com.apple.CoreML").mkdir(parents=True)
    (path / "Data" / "com.apple.CoreML" / "model.mlmodel").write_text(marker)
    manifest = {"fileFormatVersion": "1.0.0", "rootModelIdentifier": "A", "itemInfoEntries": {
        "A": {"author": author, "description": "", "name": "model.mlmodel", "path": "com.apple.CoreML/model.mlmodel"}}}
    (path / "Manifest.json").write_text(json.dumps(manifest))
    return path


def test_only_our_mlpackage_is_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with staged_outputs(out) as stage:
        ours = _mlpackage(stage / "m.mlpackage", "old")
    ours = out / "m.mlpackage"
    with staged_outputs(out) as stage:
        _mlpackage(stage / "m.mlpackage", "new")
    assert (ours / "Data" / "com.apple.CoreML" / "model.mlmodel").read_text() == "new"
    assert names(out) == ["m.mlpackage"]
    foreign = _mlpackage(out / "f.mlpackage", "theirs")  # as coremltools writes it, but not by us
    plain = out / "p.mlpackage"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine")
    for target in (foreign, plain):
        with pytest.raises(OutputError, match="refusing to replace"):
            with staged_outputs(out) as stage:
                (stage / "ok.bin").write_bytes(b"x")  # nothing lands unless everything can
                _mlpackage(stage / target.name, "new")
    assert (foreign / "Data" / "com.apple.CoreML" / "model.mlmodel").read_text() == "theirs"
    assert (plain / "notes.txt").read_text() == "mine"
    assert names(out) == ["f.mlpackage", "m.mlpackage", "p.mlpackage"]


def test_staging_a_killed_run_left_is_removed_by_the_next(tmp_path):
    """Killed runs leave hidden, tagged staging; the next run removes it, a live run's stays."""
    code = ("import sys, os; from quant.files import staged_outputs\n"
            "with staged_outputs(sys.argv[1]) as stage:\n"
            "    (stage / 'model.pte').write_bytes(b'x' * 1000)\n"
            "    (stage / 'model.etrecord').write_bytes(b'half')\n"
            "    os.kill(os.getpid(), 9)\n")
    killed = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert killed.returncode == -9
    left = list(tmp_path.iterdir())
    assert len(left) == 1 and left[0].name.startswith(".mobileformer-staging-")
    alive = tmp_path / f".mobileformer-staging-{left[0].name.split('-')[2]}-{os.getpid()}-live"
    alive.mkdir()  # same tag, a live process: another run in progress
    with staged_outputs(tmp_path) as stage:
        (stage / "model.pte").write_bytes(b"y")
    assert names(tmp_path) == sorted(["model.pte", alive.name])


def test_outputs_written_atomically_into_a_stage_are_recorded_in_the_folder(tmp_path):
    """Export writes its manifest with write_json_atomic inside the stage: the stage's ledger stays there."""
    from quant.files import read_ledger

    for _ in range(2):  # the second run replaces what the first wrote
        with staged_outputs(tmp_path) as stage:
            (stage / "m.pte").write_bytes(b"program")
            write_json_atomic(stage / "m.manifest.json", {"x": 1})
    assert sorted(read_ledger(tmp_path)) == ["m.manifest.json", "m.pte"]
    assert read_ledger(tmp_path)["m.pte"] == [sha256_of(tmp_path / "m.pte")]


def test_a_run_killed_between_rename_and_record_leaves_its_output_recognised(tmp_path, monkeypatch):
    import quant.files

    write_bytes_atomic(tmp_path / "last.pt", b"step 1")
    real = quant.files._replace

    def killed(source, target):
        real(source, target)
        raise KeyboardInterrupt  # after the rename, before the ledger says so
    monkeypatch.setattr(quant.files, "_replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_bytes_atomic(tmp_path / "last.pt", b"step 2")
    monkeypatch.undo()
    assert (tmp_path / "last.pt").read_bytes() == b"step 2"
    write_bytes_atomic(tmp_path / "last.pt", b"step 3")  # the next run may replace it
    assert (tmp_path / "last.pt").read_bytes() == b"step 3"
