"""Backends: every runtime an export targets, in one shape; each one a wing of its own.

Each backend package (:mod:`.xnnpack`, :mod:`.coreml`, :mod:`.tflite`) holds everything of its
backend and imports nothing of another's. Its ``__init__`` provides

- ``lower(ctx: LowerContext) -> Lowered``: write ``ctx.artifact`` and describe it (its
  :class:`Census`, the I/O tensors an app must feed, profiling maps);
- ``validate(ctx, lowered) -> dict``: run the artifact on this host and compare it with
  PyTorch (:func:`quant.metrics.compare_logits`);
- ``open_artifact(path, threads) -> Runner``: the artifact loaded on this host, called like the
  PyTorch model (what ``validate``, ``quant.evaluate`` and ``quant.bench`` run);
- a census function returning :class:`Census`, the one op-census schema of every manifest.

:data:`BACKENDS` is data (formats, the file suffixes each owns, fp32 tolerance, optional
packages, which of the wing's functions probe and count its artifacts): choosing and checking a backend
imports none of them; :meth:`Backend.load` imports
its package when an export or a run needs it, :func:`backend_for` finds an artifact's backend.
"""
from __future__ import annotations

import dataclasses
import importlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

import torch

from ..errors import UserError

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

    @classmethod
    def of(cls, ops: dict[str, Counter], kind_of: dict[str, str], outside_gemm: int | None = None,
           outside_in_ops: bool = False, **fields) -> Census:
        """The census of ``ops`` (op type -> Counter of int8 / float / constant), summed by kind (``kind_of``:
        op type -> conv / linear / matmul), with the GEMM shares worked out here for every backend.

        ``outside_gemm``: the GEMMs left outside a delegate (None: no delegates), counted in ``ops`` too
        (``outside_in_ops``: LiteRT lists every op, delegated or not) or besides (XNNPACK's graphs hold
        only what the delegates run). Constant GEMMs (on weights only) are in neither share.
        """
        kinds = summed_by_kind(ops, kind_of)
        gemm = [kinds.get(kind, Counter()) for kind in SHARED_KINDS]
        int8, inside = sum(c["int8"] for c in gemm), sum(c["int8"] + c["float"] for c in gemm)
        total = inside if outside_gemm is None or outside_in_ops else inside + outside_gemm
        delegated = None if outside_gemm is None else inside - outside_gemm if outside_in_ops else inside
        return cls(ops=counted(ops), kinds=counted(kinds), int8_gemm_pct=_share(int8, total, 0.0),
                   delegated_gemm_pct=None if delegated is None else _share(delegated, total, 100.0), **fields)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


SHARED_KINDS = ("conv", "linear", "matmul")  # the kinds whose shares a census gives


def _share(part: int, whole: int, empty: float) -> float:
    """``part`` of ``whole`` in percent, to two decimals; ``empty`` where there is no whole."""
    return round(100.0 * part / whole, 2) if whole else empty


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
    etrecord: bool = False  # xnnpack: also write ExecuTorch's .etrecord beside the .pte

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


class Runner(Protocol):
    """An artifact loaded on this host (a wing's ``open_artifact``)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of a float NCHW batch of one, as the PyTorch model gives them."""

    def invoker(self, x: torch.Tensor) -> Callable[[], object]:
        """One inference per call on an input set once (``x``, or the runtime's own of its input's
        dtype): what ``quant.bench`` times."""


@dataclass(frozen=True)
class Backend:
    name: str
    formats: tuple[str, ...]  # artifact formats; the first is the default
    # The most an fp32 artifact's logits may differ from PyTorch's; None: the backend checks fp32
    # itself (Core ML computes in fp16 between ops: by SQNR at every paper block instead).
    fp32_tolerance: float | None
    validator: str  # what validate runs the artifact on (the export's progress line)
    suffixes: tuple[str, ...] = ()  # the artifact files it opens on this host (quant.bench, quant.evaluate)
    runtime: tuple[str, str] | None = None  # the host runtime's name in results, and its package; None: none here
    not_timed: str = ""  # why quant.bench cannot time its artifacts on this host (with no runtime)
    emulated: str = ""  # what runs its artifacts here when it is not the backend's own runtime
    block_profiling: bool = False  # --profile-blocks: one delegate per paper block
    # quant.bench's traced pass gives per-operator times (its host runtime times every operator in every run)
    operator_profiling: bool = False
    requires: str = ""  # the wing's module:function raising UserError when an optional extra is missing
    # the wing's module:function(artifact, shape, run) that loads an artifact, and with run runs it once, in a child
    # process, so that bytes that crash the runtime end in one error; "": quant.bench loads it in its own process
    probe: str = ""
    # the wing's module:function(artifact, manifest, cpu, warmup, iterations, label) -> the latency result of the
    # artifact's AArch64 instructions and estimated cycles under qemu (quant.bench --arm64); "": not countable
    arm64_counter: str = ""
    arm64_warmup: int = 0  # quant.bench --arm64's default inferences before the counted ones

    def wing(self, name: str) -> Callable:
        """The wing's function ``name`` (``module:function``), its module imported on first use."""
        module, function = name.split(":")
        return getattr(importlib.import_module(f"{__name__}.{self.name}.{module}"), function)

    def load(self) -> ModuleType:
        """The backend's package (``lower``, ``validate``, ``open_artifact``), imported on first use."""
        return importlib.import_module(f"{__name__}.{self.name}")

    def check_installed(self) -> None:
        """Raise :class:`UserError` naming the optional extra this backend needs, if it is missing."""
        if self.requires:
            self.wing(self.requires)()

    def rewrites(self, recipe: Recipe, precision: str) -> dict[str, bool]:
        """The graph rewrites the wing makes to ``recipe``'s program at ``precision`` beyond what the recipe
        says (its ``rewrites`` function; none where it has none): part of the recipe's fingerprint."""
        rewrites = getattr(self.load(), "rewrites", None)
        return rewrites(recipe, precision) if rewrites else {}

    def open(self, artifact: Path, threads: int = 1) -> Runner:
        """``artifact`` loaded on this host's runtime (``threads``: 0, the runtime's default)."""
        self.check_installed()
        return self.load().open_artifact(Path(artifact), threads)


BACKENDS = {
    b.name: b
    for b in (
        Backend("xnnpack", ("pte",), fp32_tolerance=1e-4, validator="the host ExecuTorch runtime",
                suffixes=(".pte",), runtime=("executorch", "executorch"), block_profiling=True,
                operator_profiling=True, probe="probe:probe_program",
                # mfbench's count settles after one warm-up
                arm64_counter="arm64:counted_result", arm64_warmup=1),
        Backend("coreml", ("mlpackage", "pte"), fp32_tolerance=None,
                validator="the MIL reference executor (Core ML itself needs macOS)", suffixes=(".mlpackage",),
                not_timed="Core ML prediction needs macOS or iOS; measure it with ios_demo",
                emulated="MIL reference executor, not Core ML"),
        Backend("tflite", ("tflite",), fp32_tolerance=1e-4, validator="the host LiteRT interpreter",
                suffixes=(".tflite",), runtime=("tflite", "ai-edge-litert"), requires="runtime:require_litert",
                # the count of LiteRT's Python call settles over the first ~10 inferences (CHANGELOG.md, 2026-12-07)
                arm64_counter="arm64:counted_result", arm64_warmup=20),
    )
}

ARTIFACT_SUFFIXES = tuple(suffix for backend in BACKENDS.values() for suffix in backend.suffixes)


def backend_for(artifact: Path) -> Backend:
    """The backend that opens ``artifact`` on this host, by its file suffix (a ``.pte`` runs on ExecuTorch's
    runtime with XNNPACK: a Core ML ``.pte`` has no host runtime)."""
    for backend in BACKENDS.values():
        if Path(artifact).suffix in backend.suffixes:
            return backend
    raise UserError(f"{Path(artifact).name}: unknown artifact type {Path(artifact).suffix!r} "
                    f"(expected {', '.join(ARTIFACT_SUFFIXES)})")
