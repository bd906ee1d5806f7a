"""Faster ExecuTorch lowering, with the same program as a result.

Lowering an int8 Mobile-Former is slow because ExecuTorch re-traces the whole graph
(26m: about 4,400 nodes, most of them quantize/dequantize) after every pass, and two
framework costs are pure overhead for this model:

* **Provenance.** Every re-trace records where each node came from
  (``node.meta["from_node"]``) and ``torch.fx.traceback.NodeSource`` deep-copies the whole
  history to do it, so the cost grows with the square of the number of passes. The
  history is never changed after it is recorded; sharing it gives the same result.
* **Idle XNNPACK passes.** Pattern passes such as the upsample, SDPA, batch-norm, PReLU
  and conv1d rewrites find nothing in this graph, then re-trace it anyway to refresh
  its metadata. When a pass of :data:`PATTERN_PASSES` left the graph's structure as it
  found it, the re-trace is skipped.

``tests/quant/test_export.py`` checks that a lowering under :func:`fast_lowering` is
byte-identical to one without it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch.fx.traceback as fx_traceback
from executorch.backends.xnnpack import _passes as xnnpack_passes
from executorch.exir.pass_base import ExportPass, PassResult

# Passes that only rewrite the graph's structure: if the nodes are unchanged, so is the result.
PATTERN_PASSES = tuple(getattr(xnnpack_passes, name) for name in (
    "ConvertToUpsampleBilinear2d", "ConvertToSDPAPass", "FuseBatchNormPass", "DecomposeBatchNorm",
    "PReLUReshapePass", "Conv1dUnsqueezePass", "DecomposeConcatenate", "RemoveGetItemPass", "InsertPadQDQPass",
    "DimOrderOpsRevertPass", "ConvertToLinearPass",
))


def _structure(graph_module) -> list[tuple]:
    return [(n.op, n.target, n.args, n.kwargs) for n in graph_module.graph.nodes]


@contextlib.contextmanager
def _shared_provenance() -> Iterator[None]:
    original = fx_traceback.NodeSource.__init__

    def init(self, node, pass_name: str = "", action=None) -> None:
        history = node.meta.pop("from_node", None) if node is not None else None
        try:
            original(self, node, pass_name, action)  # builds everything but the history copy
        finally:
            if history is not None:
                node.meta["from_node"] = history
        if history is not None:
            self.from_node = list(history)

    fx_traceback.NodeSource.__init__ = init
    try:
        yield
    finally:
        fx_traceback.NodeSource.__init__ = original


@contextlib.contextmanager
def _skip_idle_retraces() -> Iterator[None]:
    retrace = ExportPass.call
    originals = {cls: cls.call for cls in PATTERN_PASSES}

    def remember_structure(original):
        def call(self, graph_module):
            self._structure_before = _structure(graph_module)
            return original(self, graph_module)
        return call

    def call(self, graph_module):
        before = getattr(self, "_structure_before", None)
        if before is not None and _structure(graph_module) == before:
            return PassResult(graph_module, False)
        return retrace(self, graph_module)

    ExportPass.call = call
    for cls, original in originals.items():
        cls.call = remember_structure(original)
    try:
        yield
    finally:
        ExportPass.call = retrace
        for cls, original in originals.items():
            cls.call = original


@contextlib.contextmanager
def fast_lowering() -> Iterator[None]:
    """Within it, ``to_edge_transform_and_lower`` skips the overheads described above."""
    with _shared_provenance(), _skip_idle_retraces():
        yield
