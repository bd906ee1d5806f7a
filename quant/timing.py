"""Where a command's time goes: wall time by phase and, inside the libraries, by pass.

``python -m quant.export --profile`` (or ``MOBILEFORMER_TIMING=1``) records a :class:`Timing`
for its run. Our own steps mark themselves with :func:`phase` (a no-op when no timing is
active, so the code paths are the same either way); :func:`quant.patches.timers.library_timers`
puts timers around the libraries' own steps (ExecuTorch's to_edge, partition, preprocess, emit
and serialize; coremltools' and litert-torch's conversion steps) and around every graph pass
for the duration of the command. A timer calls what it wraps and returns its result: it
measures, it changes nothing.

Phases nest (``lower / to_backend / preprocess / pass FuseBatchNormPass``); a phase entered
several times (a pass run per delegate) adds up, with its number of calls. The manifest keeps
every phase (``profile``, docs/schemas/manifest.schema.json); :meth:`Timing.table` prints the
ones that matter. The machine's load average is recorded beside the figures: a busy machine
stretches every phase.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

SWITCH = "MOBILEFORMER_TIMING"
ON = ("1", "on", "yes", "true")

_active: ContextVar[Timing | None] = ContextVar("quant_timing", default=None)


def requested(flag: bool = False) -> bool:
    """Whether a command times itself: its ``--profile`` flag or ``MOBILEFORMER_TIMING=1``."""
    return flag or os.environ.get(SWITCH, "").strip().lower() in ON


@dataclass
class Span:
    seconds: float = 0.0  # wall time
    cpu: float = 0.0  # this process's CPU time, all its threads: what other jobs on the machine stretch least
    calls: int = 0


class Timing:
    """The phases of one run, in the order first entered, each keyed by its path of nested phases."""

    def __init__(self) -> None:
        self.spans: dict[tuple[str, ...], Span] = {}
        self._path: list[str] = []
        self._started, self._cpu = time.perf_counter(), time.process_time()
        self._load_before = os.getloadavg()[0]
        self.total = self.total_cpu = 0.0
        self.load = (self._load_before, self._load_before)

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[None]:
        self._path.append(name)
        span = self.spans.setdefault(tuple(self._path), Span())
        started, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            span.seconds += time.perf_counter() - started
            span.cpu += time.process_time() - cpu
            span.calls += 1
            self._path.pop()

    def stop(self) -> None:
        self.total = time.perf_counter() - self._started
        self.total_cpu = time.process_time() - self._cpu
        self.load = (self._load_before, os.getloadavg()[0])

    def to_json(self) -> dict:
        """The manifest's ``profile``: every phase with its wall and CPU seconds and calls, and the load it ran under."""
        return {
            "total_s": round(self.total, 3),
            "total_cpu_s": round(self.total_cpu, 3),
            "load_average_1min": {"start": round(self.load[0], 2), "end": round(self.load[1], 2)},
            "cpus": os.cpu_count(),
            "phases": [{"path": list(path), "s": round(span.seconds, 3), "cpu_s": round(span.cpu, 3), "calls": span.calls}
                       for path, span in self.spans.items()],
        }

    def table(self, min_share: float = 0.01) -> str:
        """The phases taking at least ``min_share`` of the total, indented by nesting."""
        total = self.total or 1e-9
        shown = [(p, s) for p, s in self.spans.items() if s.seconds >= min_share * total]
        width = max([len("  " * (len(p) - 1) + p[-1]) for p, _ in shown] + [5])
        lines = [f"{'phase':<{width}}  {'wall s':>7}  {'cpu s':>7}  {'calls':>5}  share",
                 *(f"{'  ' * (len(p) - 1) + p[-1]:<{width}}  {s.seconds:>7.2f}  {s.cpu:>7.2f}  {s.calls:>5}  "
                   f"{100 * s.seconds / total:>4.0f}%" for p, s in shown),
                 f"{'total':<{width}}  {self.total:>7.2f}  {self.total_cpu:>7.2f}",
                 f"(load average {self.load[0]:.1f} -> {self.load[1]:.1f} on {os.cpu_count()} CPUs; "
                 f"phases under {100 * min_share:.0f}% of the wall time not shown)"]
        return "\n".join(lines)


def phase(name: str) -> contextlib.AbstractContextManager[None]:
    """Time the ``with`` block as ``name`` within the current phase, when a :class:`Timing` is active."""
    timing = _active.get()
    return timing.span(name) if timing is not None else contextlib.nullcontext()


@contextlib.contextmanager
def timed(enabled: bool, libraries: tuple[str, ...] = ()) -> Iterator[Timing | None]:
    """A :class:`Timing` for the block (``None`` when not ``enabled``), with the library timers of ``torch``
    and ``libraries`` (top-level packages) in place. Importing them is a phase of its own."""
    if not enabled:
        yield None
        return
    from .patches.timers import library_timers

    timing = Timing()
    token = _active.set(timing)
    try:
        with timing.span("import libraries"):
            timers = library_timers(("torch", *libraries), phase)
        with timers:
            yield timing
    finally:
        timing.stop()
        _active.reset(token)
