"""``python -m quant.backends.xnnpack.probe PROGRAM.pte N,C,H,W``: load and run a ``.pte`` of unknown origin once,
in a child process, before it runs in ours.

ExecuTorch's runtime trusts the program it is given: bytes flipped past the header can make it
read out of bounds, and it dies by SIGSEGV or SIGABRT with no message. ``quant.bench`` and
``quant.evaluate`` take ``.pte`` files from the user, so they run each one here first, on a
zero input of its shape: a crash becomes one ``error:`` line in the parent. The probe costs a
second Python with torch and ExecuTorch (13 s per tiny artifact on 2 shared cores, 2026-12-07); the artifact that
``quant.export`` has just written and validated is not probed. A program that loads and runs
once here may still crash later on other inputs; none of the corrupted files we tried did.
"""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from ...errors import command
from .runtime import MAGIC_PTE, Program, ProgramError


def check_header(path: Path) -> None:
    """A ``.pte`` starts with the ExecuTorch identifier (what other bytes named ``.pte`` lack)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise ProgramError(f"cannot read {path}: {e.strerror}") from None
    if len(head) < 8 or head[4:8] != MAGIC_PTE:
        raise ProgramError(f"{path.name} is not an ExecuTorch program (no {MAGIC_PTE.decode()} header)")


def probe_program(path: Path, shape: list[int], run: bool = True) -> None:
    """Raise :class:`ProgramError` unless ``path`` has the header and (if ``run``) loads and runs
    once on zeros of ``shape`` in a child process, crash included."""
    check_header(path)
    if not run:
        return
    child = subprocess.run([sys.executable, "-m", "quant.backends.xnnpack.probe", str(path), ",".join(map(str, shape))],
                           capture_output=True, text=True)
    if child.returncode == 0:
        return
    errors = [line for line in child.stderr.splitlines() if line.startswith("error: ")]
    if child.returncode == 2 and errors:
        raise ProgramError(errors[-1].removeprefix("error: "))
    if child.returncode < 0:
        name = signal.Signals(-child.returncode).name
        raise ProgramError(f"{path.name} crashed the ExecuTorch runtime ({name}) when loaded and run once: "
                           "it is corrupt, or not a program this runtime can run")
    raise ProgramError(f"{path.name} could not be loaded and run once (exit {child.returncode}): "
                       f"{(child.stderr.strip().splitlines() or ['no message'])[-1]}")


@command
def main(argv: list[str] | None = None) -> int:
    import torch

    path, shape = (argv if argv is not None else sys.argv[1:])
    Program(path)(torch.zeros([int(d) for d in shape.split(",")]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
