"""The host ExecuTorch runtime a ``.pte`` runs on: the pybindings in the executorch wheel, :class:`Program`,
a loaded program called like the PyTorch model, and its per-operator times (:func:`traced_operators`)."""
from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import torch

from ...errors import UserError, native_logs_silenced
from ...files import OutputError, atomic_path
from ...formats import summarize


MAGIC_PTE = b"ET12"  # the flatbuffer file identifier of an ExecuTorch program, bytes 4..8


class ProgramError(UserError):
    """A ``.pte`` that is missing, truncated, corrupt, or fails to run."""


def set_threads(threads: int) -> None:
    """Size the runtime's XNNPACK thread pool (0 keeps the default: one per core)."""
    _create_threadpool()
    if threads > 0:
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

        with native_logs_silenced():
            _unsafe_reset_threadpool(threads)


@functools.cache
def _create_threadpool() -> None:
    """Create the runtime's thread pool before its first use, without its CPU-probing log lines."""
    from executorch.extension.pybindings.portable_lib import _threadpool_get_thread_count

    with native_logs_silenced():
        _threadpool_get_thread_count()


class Program:
    """A loaded ``.pte``. Holds on to its bytes: the runtime reads them lazily."""

    def __init__(self, source: str | Path | bytes, etdump: bool = False) -> None:
        from executorch.extension.pybindings.portable_lib import _load_for_executorch_from_buffer

        _create_threadpool()
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise ProgramError(f"program not found: {path}")
            self.name = path.name
            self._buffer = path.read_bytes()
        else:
            self.name, self._buffer = "<bytes>", bytes(source)
        if len(self._buffer) < 8 or self._buffer[4:8] != MAGIC_PTE:
            raise ProgramError(f"{self.name} is not an ExecuTorch program (no ET12 header)")
        try:
            self._module = _load_for_executorch_from_buffer(self._buffer, enable_etdump=etdump, debug_buffer_size=0)
        except RuntimeError as e:
            raise ProgramError(f"cannot load {self.name}: {e}") from None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return self._module.forward((x.contiguous(),))[0]
        except RuntimeError as e:
            raise ProgramError(f"{self.name} failed to run (truncated or corrupt?): {e}") from None

    def invoker(self, x: torch.Tensor) -> Callable[[], object]:
        """One inference of ``x`` per call (what ``quant.bench`` times)."""
        return lambda: self(x)

    def write_etdump(self, path: str | Path) -> None:
        """Write the trace of the runs so far; a failed write (full disk) leaves no partial file."""
        with atomic_path(path) as tmp:
            try:
                self._module.write_etdump_result_to_file(str(tmp))
            except RuntimeError:  # the runtime says no more than that it failed (a full disk, say)
                raise OutputError(f"cannot write {path}: the ExecuTorch runtime failed to write it") from None


def traced_operators(program_path: Path, x: torch.Tensor, warmup: int, iterations: int, etdump: Path) -> list[dict]:
    """Per-operator times from an ETDump of ``warmup + iterations`` traced runs."""
    from executorch.devtools import Inspector

    program = Program(program_path, etdump=True)
    for _ in range(warmup + iterations):
        program(x)
    program.write_etdump(etdump)
    inspector = Inspector(etdump_path=str(etdump))
    operators: list[dict] = []
    for block in inspector.event_blocks:
        if block.name != "Execute":
            continue
        delegate_of: dict[int, int] = {}
        for event in block.events:
            if event.name == "DELEGATE_CALL" and event._instruction_id not in delegate_of:
                delegate_of[event._instruction_id] = len(delegate_of)
        for event in block.events:
            if not event.is_delegated_op or event.perf_data is None:
                continue
            raw = list(event.perf_data.raw)[warmup:] or list(event.perf_data.raw)
            operators.append({
                "index": len(operators), "name": event.name, "delegate_index": delegate_of.get(event._instruction_id),
                "block": None, "mean_ms": sum(raw) / len(raw), "p50_ms": summarize(raw)["p50"], "calls": len(raw),
            })
    return operators
