"""Atomic writes, staged outputs, hashes, metrics."""
import hashlib
import math

import pytest
import torch

from quant.files import OutputError, atomic_path, ensure_writable_dir, sha256_of, staged_outputs
from quant.metrics import sqnr, top1_accuracy, top1_agreement


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pte", "pkg.mlpackage"]


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


def test_sqnr_and_agreement():
    ref = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    assert sqnr(ref, ref) == math.inf
    assert sqnr(ref, ref * 1.1) == pytest.approx(20.0)
    assert top1_agreement(ref, torch.tensor([[0.0, 5.0], [0.0, 1.0]])) == 0.5
    assert top1_accuracy(ref, torch.tensor([1, 0])) == 1.0
