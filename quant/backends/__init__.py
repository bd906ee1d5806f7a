"""Backends: every runtime an export targets, in one shape.

Each backend module (:mod:`.xnnpack`, :mod:`.coreml`, :mod:`.tflite`) provides

- ``lower(ctx: LowerContext) -> Lowered``: write ``ctx.artifact`` and describe it (its
  :class:`Census`, the I/O tensors an app must feed, profiling maps);
- ``validate(ctx, lowered) -> dict``: run the artifact on this host and compare it with
  PyTorch (:func:`quant.metrics.validation_record`);
- a census function returning :class:`Census`, the one op-census schema of every manifest.

:data:`BACKENDS` is data (formats, fp32 tolerance, optional packages): choosing and checking a
backend imports none of them; :meth:`Backend.load` imports its module when an export needs it.
"""
from __future__ import annotations

import dataclasses
import importlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import torch

from ..runtime import require_litert

if TYPE_CHECKING:
    from ..recipes import Recipe


@dataclass
class Census:
    """Which ops an artifact runs, int8 or float, and where (the manifest's ``op_census``).

    ``ops``: the backend's op type -> {"int8": n, "float": n} (Core ML also ``constant``:
    a GEMM on weights only); ``kinds``: the same summed over conv / linear / matmul / other;
    ``conversions``: quantize/dequantize conversions, left out of ``ops``; ``int8_gemm_pct``:
    share of convs, linears and matmuls running int8; ``delegates`` / ``outside`` /
    ``delegated_gemm_pct``: delegate partitions, the ops left to the runtime's own kernels and
    the share of GEMMs inside a delegate (``None`` where the artifact has no delegates, an
    ``.mlpackage``, or the figure is not known); ``detail``: what only this backend reports.
    """

    ops: dict[str, dict[str, int]] = field(default_factory=dict)
    kinds: dict[str, dict[str, int]] = field(default_factory=dict)
    conversions: dict[str, int] = field(default_factory=dict)
    int8_gemm_pct: float | None = None
    delegates: int | None = None
    outside: dict[str, int] = field(default_factory=dict)
    delegated_gemm_pct: float | None = None
    detail: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def counted(ops: dict[str, Counter]) -> dict[str, dict[str, int]]:
    """``{op: Counter}`` as plain sorted dicts, the census's ``ops`` and ``kinds``."""
    return {k: dict(v) for k, v in sorted(ops.items())}


def summed_by_kind(ops: dict[str, Counter], kind_of: dict[str, str]) -> dict[str, Counter]:
    """``ops`` summed over GEMM kinds (``kind_of``: op type -> conv / linear / matmul; others: ``other``)."""
    kinds: dict[str, Counter] = {}
    for name, counts in ops.items():
        kinds.setdefault(kind_of.get(name, "other"), Counter()).update(counts)
    return kinds


@dataclass
class LowerContext:
    """What a backend lowers and checks: one export's graph, reference, images and target."""

    graph: torch.nn.Module  # what to lower: the converted PT2E graph (int8) or the fp32 network
    reference: torch.nn.Module  # the fp32 network the artifact is compared with
    images: torch.Tensor  # calibration/validation images; the first is the example input
    artifact: Path  # where to write it (in the export's staging directory)
    precision: str
    fmt: str
    recipe: Recipe
    block_of: Callable[[str], str]  # module path -> paper block (MobileFormer.paper_block)
    profile_blocks: bool = False
    progress: bool = False

    @property
    def quantized(self) -> torch.nn.Module | None:
        """The PT2E int8 graph the artifact is also compared with (fp32 exports: none)."""
        return self.graph if self.precision == "int8" else None


@dataclass
class Lowered:
    """What lowering wrote, for the manifest and for the backend's ``validate``."""

    census: Census
    io: dict = field(default_factory=dict)  # input/output tensors when they differ from float NCHW
    profiling: dict = field(default_factory=dict)
    state: object = None  # what this backend's validate needs from its lowering


@dataclass(frozen=True)
class Backend:
    name: str
    formats: tuple[str, ...]  # artifact formats; the first is the default
    # The most an fp32 artifact's logits may differ from PyTorch's; None: the backend checks fp32
    # itself (Core ML computes in fp16 between ops: by SQNR at every paper block instead).
    fp32_tolerance: float | None
    validator: str  # what validate runs the artifact on (the export's progress line)
    block_profiling: bool = False  # --profile-blocks: one delegate per paper block
    requires: Callable[[], None] | None = None  # raises UserError when an optional extra is missing

    def load(self) -> ModuleType:
        """The backend's module (``lower``, ``validate``), imported on first use."""
        return importlib.import_module(f"{__name__}.{self.name}")


BACKENDS = {
    b.name: b
    for b in (
        Backend("xnnpack", ("pte",), fp32_tolerance=1e-4, validator="the host ExecuTorch runtime",
                block_profiling=True),
        Backend("coreml", ("mlpackage", "pte"), fp32_tolerance=None,
                validator="the MIL reference executor (Core ML itself needs macOS)"),
        Backend("tflite", ("tflite",), fp32_tolerance=1e-4, validator="the host LiteRT interpreter",
                requires=require_litert),
    )
}
