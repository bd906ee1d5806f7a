"""quant.backends.xnnpack.runtime: a .pte on the host ExecuTorch runtime, called like the PyTorch model; damaged files refused."""
import pytest
import torch

from quant.backends.xnnpack.runtime import Program, ProgramError


def test_program_runs_and_rejects_damaged_files(tiny_exports, tmp_path):
    pte = tiny_exports / "mobile_former_tiny_xnnpack_int8.pte"
    assert Program(pte)(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)
    cut = tmp_path / "cut.pte"
    cut.write_bytes(pte.read_bytes()[: pte.stat().st_size // 2])
    with pytest.raises(ProgramError):
        Program(cut)(torch.zeros(1, 3, 64, 64))
    junk = tmp_path / "junk.pte"
    junk.write_bytes(b"\0" * 100)
    with pytest.raises(ProgramError, match="not an ExecuTorch program"):
        Program(junk)
