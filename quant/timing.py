"""Where a command's time goes: wall time by phase and, inside the libraries, by pass.

``python -m quant.export --profile`` (or ``MOBILEFORMER_TIMING=1``) records a :class:`Timing`
for its run. Our own steps mark themselves with :func:`phase` (a no-op when no timing is
active, so the code paths are the same either way); :func:`library_phases` puts timers
around the libraries' own steps (:data:`LIBRARY_PHASES`: ExecuTorch's to_edge, partition,
preprocess, emit and serialize; coremltools' and litert-torch's conversion steps) and around
every graph pass (:data:`PASS_BASES`) for the duration of the command. A timer calls what
it wraps and returns its result: it measures, it changes nothing.

Phases nest (``lower / to_backend / preprocess / pass FuseBatchNormPass``); a phase entered
several times (a pass run per delegate) adds up, with its number of calls. The manifest keeps
every phase (``profile``, docs/schemas/manifest.schema.json); :meth:`Timing.table` prints the
ones that matter. The machine's load average is recorded beside the figures: a busy machine
stretches every phase.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import os
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from unittest import mock

SWITCH = "MOBILEFORMER_TIMING"
ON = ("1", "on", "yes", "true")

# (module, attribute path, phase): each library step timed by :func:`library_phases`; one that a
# release lacks is left out.
LIBRARY_PHASES = (
    ("torch.export", "export", "torch.export"),
    ("torch.export.exported_program", "ExportedProgram.run_decompositions", "run_decompositions"),
    ("executorch.exir.program._program", "_gen_edge_manager_for_partitioners", "to_edge"),
    ("executorch.exir.program._program", "EdgeProgramManager.transform", "transform"),
    ("executorch.exir.program._program", "EdgeProgramManager.to_backend", "to_backend"),
    ("executorch.exir.backend.partitioner", "Partitioner.__call__", "partition"),
    ("executorch.exir.backend.backend_details", "BackendDetails.preprocess_multimethod", "preprocess"),
    ("executorch.exir.program._program", "EdgeProgramManager.to_executorch", "to_executorch"),
    ("executorch.exir.program._program", "emit_program", "emit"),
    ("executorch.exir.program._program", "serialize_for_executorch", "serialize"),
    ("coremltools.converters.mil.converter", "mil_convert_to_proto", "convert to MIL"),
    ("coremltools.converters.mil.frontend.torch.load", "load", "frontend"),
    ("coremltools.models.model", "MLModel.save", "save"),
    ("litert_torch._convert.core", "_run_convert_passes", "fx passes"),
    ("litert_torch._convert.litert_converter", "exported_programs_to_flatbuffer", "to flatbuffer"),
    ("litert_torch.model", "LiteRTModel.model_content", "model_content"),
)

# (module, class): the base classes whose ``__call__`` runs one graph pass (``pass <class name>``).
PASS_BASES = (
    ("torch.fx.passes.infra.pass_base", "PassBase"),
    ("litert_torch.fx_infra.pass_base", "ExportedProgramPassBase"),
    ("coremltools.converters.mil.mil.passes.graph_pass", "AbstractGraphPass"),
)

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
    """A :class:`Timing` for the block (``None`` when not ``enabled``), with :func:`library_phases` of
    ``torch`` and ``libraries`` (top-level packages) in place. Importing them is a phase of its own."""
    if not enabled:
        yield None
        return
    timing = Timing()
    token = _active.set(timing)
    try:
        with timing.span("import libraries"):
            points = _library_points(("torch", *libraries))
        with library_phases(points):
            yield timing
    finally:
        timing.stop()
        _active.reset(token)


def _timer(original: Callable, name: str | Callable[..., str]) -> Callable:
    @functools.wraps(original)
    def timer(*args, **kwargs):
        label = name(args[0]) if callable(name) else name
        with phase(label):
            return original(*args, **kwargs)
    return timer


def _pass_name(self) -> str:
    return f"pass {getattr(self, '__name__', None) or type(self).__name__}"


def _resolve(module: str, path: str) -> tuple[object, str] | None:
    """(owner, attribute) of ``module.path``, or None where the library or the attribute is missing."""
    try:
        owner = importlib.import_module(module)
    except ImportError:
        return None
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent, None)
    return (owner, name) if owner is not None and name in vars(owner) else None


def _wrapped(owner: object, name: str, label: str | Callable[..., str]) -> object:
    """``owner.name`` behind a timer, a classmethod or staticmethod staying one."""
    raw = vars(owner)[name]
    if isinstance(raw, (classmethod, staticmethod)):
        return type(raw)(_timer(raw.__func__, label))
    return _timer(raw, label)


def _library_points(packages: tuple[str, ...]) -> list[tuple[object, str, str | Callable[..., str]]]:
    """(owner, attribute, label) of every timed step of ``packages`` (importing them)."""
    def ours(module: str) -> bool:
        return module.split(".")[0] in packages

    points = [(*found, label) for module, path, label in LIBRARY_PHASES
              if ours(module) and (found := _resolve(module, path))]
    return points + [(*found, _pass_name) for module, cls in PASS_BASES
                     if ours(module) and (found := _resolve(module, f"{cls}.__call__"))]


@contextlib.contextmanager
def library_phases(points: list[tuple[object, str, str | Callable[..., str]]]) -> Iterator[None]:
    """Timers around ``points`` (:func:`_library_points`), for the block."""
    with contextlib.ExitStack() as stack:
        for owner, name, label in points:
            stack.enter_context(mock.patch.object(owner, name, _wrapped(owner, name, label)))
        yield
