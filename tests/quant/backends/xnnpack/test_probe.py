"""Artifacts are checked before they run: against the manifest beside them (SHA-256), and a user's
``.pte`` once in a child process, so that bytes that crash the runtime end in one error line."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from quant.backends.xnnpack.probe import probe_program
from quant.backends.xnnpack.runtime import ProgramError

ROOT = Path(__file__).resolve().parents[4]
INT8 = "mobile_former_tiny_xnnpack_int8"
FP32 = "mobile_former_tiny_xnnpack_fp32"


@pytest.fixture
def swapped(tiny_exports, tmp_path) -> Path:
    """An fp32 program under the int8 name, beside the int8 manifest."""
    shutil.copy(tiny_exports / f"{FP32}.pte", tmp_path / f"{INT8}.pte")
    shutil.copy(tiny_exports / f"{INT8}.manifest.json", tmp_path / f"{INT8}.manifest.json")
    return tmp_path / f"{INT8}.pte"


def test_bench_refuses_an_artifact_its_manifest_does_not_describe(swapped, tmp_path, capsys):
    from quant.bench import main as bench_main

    argv = [str(swapped), "--iterations", "1", "--warmup", "0", "--no-operators", "--out", str(tmp_path / "out")]
    assert bench_main(argv) == 2
    err = capsys.readouterr().err
    assert "is not the artifact its manifest" in err and "--no-verify" in err and err.count("\n") == 1
    assert bench_main(argv + ["--no-verify"]) == 0


def test_evaluate_refuses_an_artifact_its_manifest_does_not_describe(swapped, capsys):
    from quant.evaluate import main as evaluate_main

    assert evaluate_main([str(swapped), "--limit", "2", "--no-progress"]) == 2
    assert "is not the artifact its manifest" in capsys.readouterr().err


def _flipped(source: Path, folder: Path, offset: int) -> Path:
    data = bytearray(source.read_bytes())
    data[offset] ^= 0xFF
    path = folder / f"flipped_{offset}.pte"  # no manifest beside it
    path.write_bytes(bytes(data))
    return path


OFFSETS = range(16, 1200, 97)  # the program's header and tables: where flips crash ExecuTorch 1.5.1


def test_flipped_bytes_end_in_one_error_never_a_crash(tiny_exports, tmp_path):
    """Each flip loads and runs, or is one ProgramError; at least one crashed the child (else the test proves nothing)."""
    source = tiny_exports / f"{INT8}.pte"
    crashed = 0
    for offset in OFFSETS:
        try:
            probe_program(_flipped(source, tmp_path, offset), [1, 3, 64, 64])
        except ProgramError as e:
            crashed += "crashed the ExecuTorch runtime" in str(e)
    assert crashed >= 1


def test_bench_of_a_crashing_program_is_one_error_line(tiny_exports, tmp_path):
    source = tiny_exports / f"{INT8}.pte"
    for offset in OFFSETS:
        path = _flipped(source, tmp_path, offset)
        child = subprocess.run([sys.executable, "-m", "quant.backends.xnnpack.probe", str(path), "1,3,64,64"], capture_output=True)
        if child.returncode < 0:
            break
    else:
        pytest.skip("no flipped byte crashed this runtime")
    bench = subprocess.run([sys.executable, "-m", "quant.bench", str(path), "--out", str(tmp_path / "out")],
                           capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert bench.returncode == 2, bench.stderr[-2000:]
    assert bench.stderr.startswith("error: ") and bench.stderr.count("\n") == 1
    assert "crashed the ExecuTorch runtime (SIG" in bench.stderr
