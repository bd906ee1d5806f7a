"""ExecuTorch's patches: a faster lowering with the same program as a result (speed), a faster Core ML
quantizer with the same prepared graph (speed, :func:`fast_pattern_annotation`), and the one hook on the
XNNPACK graphs the delegate serializes (:func:`xnnpack_serialize_hook`).

Lowering an int8 Mobile-Former is slow because ExecuTorch re-traces the whole graph
(26m: about 4,400 nodes, most of them quantize/dequantize) after every pass, and these
framework costs are pure overhead for this model:

* **Provenance.** Every re-trace records where each node came from
  (``node.meta["from_node"]``) and ``torch.fx.traceback.NodeSource`` deep-copies the whole
  history to do it, so the cost grows with the square of the number of passes. The
  history is never changed after it is recorded; sharing it gives the same result.
* **Idle decompositions.** ``to_edge_transform_and_lower`` functionalizes the program,
  then runs the core-ATen decomposition table over it twice more (each a full re-trace,
  about 9 s for 26m int8), even when no op in the graph is in the table. ExecuTorch skips
  such a call itself on one of its code paths; :func:`fast_lowering` skips it on all.
* **Regenerating the same code.** Each pass's checks and each new program regenerate the
  graph's Python code and compile it (26m int8: about 130 times for a 4,400-line function).
  A graph whose nodes are as they were when its code was last generated gets that code
  back, and an identical source reuses its compiled code object.
* **Idle XNNPACK passes.** Pattern passes such as the upsample, SDPA, batch-norm, PReLU
  and conv1d rewrites find nothing in this graph, then re-trace it anyway to refresh
  its metadata. When a pass of :data:`PATTERN_PASSES` left the graph's structure as it
  found it, the re-trace is skipped, but only for a pass proven idle in the re-trace: it
  does its work in its own ``call`` and inherits every per-node hook (``call_operator``,
  ``placeholder``, ...) from ``ExportPass`` (:func:`retrace_is_idle`). A pass that works
  in its hooks, such as ``DimOrderOpsRevertPass``, always runs.
* **Uncached quantize ops.** Each re-trace runs every node on fake tensors, and PyTorch's fake
  tensor cache answers an op it has seen with the same input metadata without running it again,
  but only for ops of its own namespaces: the int8 graph's ~2,000 quantize/dequantize nodes
  (``quantized_decomposed``) run their shape functions in full on every re-trace (26m int8:
  about 40,000 times, 15 to 25 CPU s). :data:`CACHED_QUANTIZE_OPS` are functional, with outputs
  of a shape and dtype fixed by their inputs' metadata and arguments (never by values, never
  aliasing an input), which is what the cache needs; :func:`_cache_quantize_ops` lets them in.
  The cache outlives the patch, refusals included: capture the program within it too.

One more cost is a check, not overhead: ExecuTorch's edge-dialect verifier re-runs the
whole graph after every pass (about 10 s for 26m int8); the XNNPACK wing turns it off during
lowering and runs it once (:func:`quant.backends.xnnpack.verify_edge_program`).

The patches are scoped to :func:`fast_lowering` and applied only on the releases they
were checked against (:data:`PINNED`); elsewhere, or with ``MOBILEFORMER_PATCHES=off``,
lowering runs as shipped (see :mod:`quant.patches`).
``tests/quant/patches/test_executorch.py`` checks that a lowering under :func:`fast_lowering` is
byte-identical to one without it, with each of the project's partitioners.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from unittest import mock

import torch
import torch.fx.graph as fx_graph
import torch.fx.graph_module as fx_graph_module
import torch.fx.traceback as fx_traceback
from executorch.backends.xnnpack import _passes as xnnpack_passes
from executorch.backends.xnnpack import xnnpack_preprocess
from executorch.exir.graph_module import contains_any_call_fn_target_op
from executorch.exir.pass_base import ExportPass, PassResult
from torch._subclasses import fake_tensor
from torch.export import ExportedProgram

from . import CORRECTNESS, SPEED, patches_apply, scoped_patches

# The releases these patches were written and checked against.
PINNED = {"torch": "2.13.0", "executorch": "1.5.1"}

# Passes that only rewrite the graph's structure: if the nodes are unchanged, so is the result
# (each is checked by :func:`retrace_is_idle` before its re-trace is skipped).
PATTERN_PASSES = tuple(getattr(xnnpack_passes, name) for name in (
    "ConvertToUpsampleBilinear2d", "ConvertToSDPAPass", "FuseBatchNormPass", "DecomposeBatchNorm",
    "PReLUReshapePass", "Conv1dUnsqueezePass", "DecomposeConcatenate", "RemoveGetItemPass", "InsertPadQDQPass",
    "ConvertToLinearPass",
))


# The quantize/dequantize ops of an int8 graph, for the fake tensor cache (see the module's docstring).
CACHED_QUANTIZE_OPS = frozenset(getattr(torch.ops.quantized_decomposed, f"{op}_per_{kind}").default
                                for op in ("quantize", "dequantize") for kind in ("tensor", "channel"))


# ExportPass's per-node hooks: a pass that overrides none of them re-traces a graph into the same graph.
_RETRACE_HOOKS = tuple(name for name in dir(ExportPass) if name.startswith("call_") or name in ("placeholder", "output"))


def retrace_is_idle(cls: type) -> bool:
    """Whether a pass does all its work in its own ``call``, so that its re-trace only refreshes metadata."""
    return "call" in vars(cls) and all(getattr(cls, hook) is getattr(ExportPass, hook) for hook in _RETRACE_HOOKS)


def _structure(graph_module) -> list[tuple]:
    return _graph_structure(graph_module.graph)


def _graph_structure(graph) -> list[tuple]:
    return [(n.op, n.target, n.args, n.kwargs) for n in graph.nodes]


def _shared_provenance(original):
    def init(self, node, pass_name: str = "", action=None) -> None:
        history = node.meta.pop("from_node", None) if node is not None else None
        try:
            original(self, node, pass_name, action)  # builds everything but the history copy
        finally:
            if history is not None:
                node.meta["from_node"] = history
        if history is not None:
            self.from_node = list(history)
    return init


def _remember_structure(original):
    def call(self, graph_module):
        self._structure_before = _structure(graph_module)
        try:
            return original(self, graph_module)
        finally:
            vars(self).pop("_structure_before", None)  # not left for a later call of the pass
    return call


def _skip_idle_retrace(retrace):
    def call(self, graph_module):
        before = getattr(self, "_structure_before", None)
        if before is not None and retrace_is_idle(type(self)) and _structure(graph_module) == before:
            return PassResult(graph_module, False)
        return retrace(self, graph_module)
    return call


def _skip_idle_decompositions(original):
    def run_decompositions(self, decomp_table=None, *args, **kwargs):
        # An empty table still functionalizes; a table none of whose ops occur changes nothing.
        if decomp_table and not contains_any_call_fn_target_op(self.graph_module, decomp_table):
            return self
        return original(self, decomp_table, *args, **kwargs)
    return run_decompositions


def _cache_quantize_ops(original):
    def validate_cache_key(self, func, args, kwargs) -> None:
        try:
            original(self, func, args, kwargs)
        except fake_tensor._BypassDispatchCache as bypass:
            # "non-builtin" comes after every other rule but one, for views (these ops are none)
            if not (bypass.reason == "non-builtin" and func in CACHED_QUANTIZE_OPS):
                raise
    return validate_cache_key


def _code_key(graph, args: tuple, kwargs: dict) -> tuple:
    """All that ``Graph.python_code`` reads: the codegen, and each node's name, op, target,
    arguments, type annotation and stack trace (emitted as a comment)."""
    codegen = graph._codegen
    nodes = tuple((n.name, n.op, n.target, n.args, n.kwargs, n.type, n.meta.get("stack_trace")) for n in graph.nodes)
    return type(codegen), repr(getattr(codegen, "pytree_info", None)), args, tuple(sorted(kwargs.items())), nodes


def _reuse_generated_code(original):
    def python_code(self, *args, **kwargs):
        key = _code_key(self, args, kwargs)
        cached = getattr(self, "_mobileformer_code", None)  # kept on the graph: dies with it
        if cached is None or cached[0] != key:
            cached = self._mobileformer_code = (key, original(self, *args, **kwargs))
        return cached[1]
    return python_code


def _reuse_compiled_code(_original):
    compiled: dict[str, object] = {}

    def exec_with_source(src: str, globals: dict, co_fields: dict | None = None) -> None:
        key = fx_graph_module._loader.cache(src, globals, co_fields)  # registers the source, as before
        if src not in compiled:
            compiled[src] = compile(src, key, "exec", dont_inherit=True)
        exec(compiled[src], globals)
    return exec_with_source


# torch.fx's own overheads (provenance copies, regenerated and recompiled code): any library that
# re-traces a large graph pays them; litert-torch's conversion skips them too (quant/patches/litert.py).
FX_OVERHEADS = (
    (fx_traceback.NodeSource, "__init__", _shared_provenance),
    (fx_graph_module, "_exec_with_source", _reuse_compiled_code),
    (fx_graph.Graph, "python_code", _reuse_generated_code),
)


# The fake tensor cache's answers for quantize ops: litert-torch's conversion re-traces an int8 graph too.
FAKE_CACHE_FOR_QUANTIZE_OPS = (fake_tensor.FakeTensorMode, "_validate_cache_key", _cache_quantize_ops)


def fast_lowering() -> AbstractContextManager[bool]:
    """Within it, ``to_edge_transform_and_lower`` and ``to_executorch`` skip the overheads described above.

    Yields whether the patches are in place (see :data:`PINNED` and ``MOBILEFORMER_PATCHES``).
    """
    wrappers = [
        *FX_OVERHEADS,
        (ExportPass, "call", _skip_idle_retrace),
        *[(cls, "call", _remember_structure) for cls in PATTERN_PASSES],
        (ExportedProgram, "run_decompositions", _skip_idle_decompositions),
        FAKE_CACHE_FOR_QUANTIZE_OPS,
    ]
    return scoped_patches([(owner, name, wrap, SPEED) for owner, name, wrap in wrappers], PINNED)


def _nonstrict_pattern_export(original):
    def get_aten_graph_module(pattern, example_inputs, is_cuda=False):
        export = torch.export.export
        with mock.patch.object(torch.export, "export", lambda *a, **k: export(*a, **{**k, "strict": False})):
            return original(pattern, example_inputs, is_cuda)
    return get_aten_graph_module


def _skip_repeated_dead_code_elimination(original):
    def eliminate_dead_code(self, is_impure_node=None):
        # Dead code is a function of the structure alone when no call_module node asks its module
        # (and no subgraph, or tracing context, takes part): the same structure, the same no-op.
        plain = (is_impure_node is None and torch._guards.TracingContext.try_get() is None
                 and not self.find_nodes(op="call_module")
                 and not any(isinstance(m, fx_graph_module.GraphModule) for m in
                             (self.owning_module.children() if self.owning_module is not None else ())))
        if plain and getattr(self, "_mobileformer_dead_code_free", None) == _graph_structure(self):
            return False
        changed = original(self, is_impure_node)
        if plain:
            self._mobileformer_dead_code_free = _graph_structure(self)  # kept on the graph: dies with it
        return changed
    return eliminate_dead_code


def fast_pattern_annotation() -> AbstractContextManager[bool]:
    """Within it, ExecuTorch's Core ML quantizer annotates as shipped, minus three overheads.

    Its annotators match the graph against 405 pattern graphs, one per (op, activation,
    in place or not, ...), each made anew by torchao's ``_get_aten_graph_module_for_pattern``
    with a strict (TorchDynamo) ``torch.export``; before each match they eliminate dead code
    and regenerate the whole model's Python code. For the 26m int8 export that is about
    100 s of its ``prepare``:

    * **Strict pattern exports** (about 50 s): a pattern is a few aten calls in a plain
      ``forward``; exported non-strict it is the same graph (same nodes, names, targets,
      arguments, output spec and name map: checked for all 405 patterns on the pinned
      releases), about 5x sooner.
    * **Regenerating the same code** (about 25 s): the model's graph is unchanged between
      matches (annotation writes only ``node.meta``), so its code is reused as in
      :func:`fast_lowering`.
    * **Repeated dead-code elimination** (about 5 s): a graph whose structure is what it
      was just after a dead-code elimination has no dead code.

    The prepared graph is the same (``tests/quant/patches/test_executorch.py``). Every
    pattern is distinct, so caching the pattern graphs would not help within one prepare.
    """
    from executorch.backends.apple.coreml.quantizer import _coreml_quantizer_utils

    wrappers = [
        (_coreml_quantizer_utils, "_get_aten_graph_module", _nonstrict_pattern_export),
        (fx_graph.Graph, "eliminate_dead_code", _skip_repeated_dead_code_elimination),
        (fx_graph_module, "_exec_with_source", _reuse_compiled_code),
        (fx_graph.Graph, "python_code", _reuse_generated_code),
    ]
    return scoped_patches([(owner, name, wrap, SPEED) for owner, name, wrap in wrappers], PINNED)


@dataclass(frozen=True)
class GraphVisitor:
    """What :func:`xnnpack_serialize_hook` calls with each XNNPACK graph (it may rewrite it in place)."""

    visit: Callable[[object], object]  # the delegate's ``XNNGraph``
    kind: str  # SPEED: left out with MOBILEFORMER_PATCHES=off; CORRECTNESS: always called


def xnnpack_serialize_hook(visitors: Sequence[GraphVisitor]) -> AbstractContextManager[bool]:
    """Within it, every XNNPACK delegate's graph goes through ``visitors``, in order, just before
    ExecuTorch serializes it. ``xnnpack_preprocess.serialize_xnnpack_binary`` is the one hook
    ExecuTorch 1.5.1 offers after its own passes (the XNNPACK backend has no pass list to extend
    past its channels-last pass), so the recording of graphs and the fusing of moves share it.
    Yields whether it is in place (:data:`PINNED`)."""
    active = [v.visit for v in visitors if v.kind == CORRECTNESS or patches_apply(PINNED, SPEED)]
    kind = CORRECTNESS if any(v.kind == CORRECTNESS for v in visitors) else SPEED

    def wrap(original):
        def serialize(xnnpack_graph, constant_data_bytes):
            for visit in active:
                visit(xnnpack_graph)
            return original(xnnpack_graph, constant_data_bytes)
        return serialize
    return scoped_patches([(xnnpack_preprocess, "serialize_xnnpack_binary", wrap, kind)], PINNED)
