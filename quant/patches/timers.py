"""Timers around other libraries' steps and graph passes, for ``quant.export --profile`` (:mod:`quant.timing`).

Kind :data:`~quant.patches.MEASUREMENT`: a timer calls what it wraps with the same arguments and
returns its result, so it is applied on any release (a step a release lacks is left out) and
whatever ``MOBILEFORMER_PATCHES`` says; it only runs the call within a phase of the active timing.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Callable

from . import MEASUREMENT, scoped_patches

Phase = Callable[[str], contextlib.AbstractContextManager[None]]

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

def _timer(original: Callable, name: str | Callable[..., str], phase: Phase) -> Callable:
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


def _wrapped(owner: object, name: str, label: str | Callable[..., str], phase: Phase) -> Callable[[Callable], object]:
    """The wrap of ``owner.name`` (:data:`quant.patches.Patch`): a timer, a classmethod or staticmethod staying one."""
    def wrap(_original: Callable) -> object:
        raw = vars(owner)[name]  # the descriptor itself, not the method bound to ``owner``
        if isinstance(raw, (classmethod, staticmethod)):
            return type(raw)(_timer(raw.__func__, label, phase))
        return _timer(raw, label, phase)
    return wrap


def library_timers(packages: tuple[str, ...], phase: Phase) -> contextlib.AbstractContextManager[bool]:
    """Timers around every step of :data:`LIBRARY_PHASES` and every pass of :data:`PASS_BASES` that
    ``packages`` (top-level names) have, each running its call within ``phase(label)``; importing
    them here. Kind :data:`~quant.patches.MEASUREMENT`: on any release, whatever the switch."""
    def ours(module: str) -> bool:
        return module.split(".")[0] in packages

    points = [(*found, label) for module, path, label in LIBRARY_PHASES
              if ours(module) and (found := _resolve(module, path))]
    points += [(*found, _pass_name) for module, cls in PASS_BASES
               if ours(module) and (found := _resolve(module, f"{cls}.__call__"))]
    return scoped_patches([(owner, name, _wrapped(owner, name, label, phase), MEASUREMENT)
                           for owner, name, label in points], {})
