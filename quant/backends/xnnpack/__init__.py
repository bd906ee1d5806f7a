"""XNNPACK through ExecuTorch: a ``.pte`` (and, asked, its ``.etrecord``), validated on the host ExecuTorch runtime.

Lowering is ExecuTorch's ``to_edge_transform_and_lower`` with our partitioner
(:mod:`.partition`; the stock one for a recipe with ``stock_lowering``), ExecuTorch's speed
patches (:func:`quant.patches.executorch.fast_lowering`) and, for our fp32 program, fused data
moves (:mod:`.movement`), with expands that change nothing dropped first
(:func:`drop_noop_expands`) and, for our int8 program, small grouped 1x1 convs made dense
(:func:`dense_grouped_pointwise`). The census is the ground truth after lowering: the XNNPACK
graphs the delegate serializes, recorded as it does (:func:`quant.patches.executorch.xnnpack_serialize_hook`),
each node with the data type of its output. The rest of the wing: the ``.pte`` read back
(:mod:`.graph`), its host runtime (:mod:`.runtime`) and its AArch64 instruction counts (:mod:`.arm64`).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ...census import is_op, op_kind, op_name
from ...errors import UserError
from ...metrics import compare_logits, logits_of
from ...timing import phase
from .. import Census, LowerContext, Lowered
from .runtime import Program, set_threads, traced_operators

if TYPE_CHECKING:
    from ...recipes import Recipe

__all__ = ["capture_xnnpack_graphs", "lower", "lower_layer", "open_artifact", "traced_operators", "validate", "xnnpack_census"]

XNN_KINDS = {"XNNConv2d": "conv", "XNNDepthwiseConv2d": "conv", "XNNFullyConnected": "linear",
             "XNNBatchMatrixMultiply": "matmul"}
CONVERT = "XNNConvert"  # q/dq between int8 and float islands


@contextlib.contextmanager
def capture_xnnpack_graphs(fuse_moves: bool = False) -> Iterator[list]:
    """Record the XNNPACK graph of every delegate lowered inside the ``with`` block, as serialized:
    with ``fuse_moves``, after :func:`.movement.fuse_data_movement` rewrote it (a speed patch, off with
    ``MOBILEFORMER_PATCHES=off``)."""
    from ...patches import CORRECTNESS, SPEED
    from ...patches.executorch import GraphVisitor, xnnpack_serialize_hook
    from .movement import fuse_data_movement

    graphs: list = []
    visitors = [GraphVisitor(fuse_data_movement, SPEED)] if fuse_moves else []
    with xnnpack_serialize_hook([*visitors, GraphVisitor(graphs.append, CORRECTNESS)]) as hooked:
        if not hooked:
            raise UserError("the XNNPACK census reads the graphs ExecuTorch serializes, through a hook checked on "
                            "executorch 1.5.1 only (quant.patches.executorch); install that release")
        yield graphs


def _datatype(graph, value_id: int) -> str:
    for value in graph.xvalues:
        union = value.xvalue_union
        tensor = getattr(union, "tensor_value", union)
        if tensor.id_out == value_id:
            return "float" if tensor.datatype.name in ("xnn_datatype_fp32", "xnn_datatype_fp16") else "int8"
    return "float"


def xnnpack_census(graphs: list, edge_program: torch.export.ExportedProgram) -> Census:
    """Census of a lowered program from its captured XNNPACK graphs.

    ``ops``: XNNPACK node type -> {"int8": n, "float": n}; ``conversions``: its Convert
    nodes; ``outside``: ops left to the portable runtime.
    """
    ops: dict[str, Counter] = {}
    conversions: Counter = Counter()
    for graph in graphs:
        for xnode in graph.xnodes:
            union = xnode.xnode_union
            kind = type(union).__name__
            if kind == CONVERT:
                conversions[kind] += 1
                continue
            ops.setdefault(kind, Counter())[_datatype(graph, getattr(union, "output_id", -1))] += 1
    outside = Counter(op_name(n) for n in edge_program.graph_module.graph.nodes if is_op(n))
    outside_gemm = sum(c for name, c in outside.items() if op_kind(name) != "other")
    return Census.of(ops, XNN_KINDS, outside_gemm, conversions=dict(conversions), delegates=len(graphs),
                     outside=dict(sorted(outside.items())))


# A grouped 1x1 conv becomes dense where one group's weights hold at most this many numbers
# (inputs x outputs per group). Counted on 26m (cortex-a76): dense was cheaper at 3x9 to 24x6
# (18 to 144) and dearer from 36x12 (432) on.
DENSE_GROUP_WEIGHTS = 256


def dense_grouped_pointwise(graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A copy of the converted int8 ``graph`` whose grouped 1x1 convs with small groups
    (:data:`DENSE_GROUP_WEIGHTS`) are dense ones with block-diagonal int8 weights (zeros
    outside the groups' blocks).

    Exact: the zeros add nothing to the int32 sums, and each output channel keeps its weights
    and scale. XNNPACK runs a grouped 1x1 conv as one GEMM per group, and a group of a few
    channels fills a small part of its int8 kernels' tiles; the dense GEMM does 4x the
    multiply-adds of 26m's 4 groups in fewer instructions (CHANGELOG.md, 2026-12-07).
    """
    graph = copy.deepcopy(graph)
    for node in list(graph.graph.nodes):
        if not (node.op == "call_function" and node.target == torch.ops.aten.conv2d.default and len(node.args) > 6
                and node.args[6] > 1):
            continue
        dequantize = node.args[1]
        if not (isinstance(dequantize, torch.fx.Node) and dequantize.op == "call_function"
                and dequantize.target == torch.ops.quantized_decomposed.dequantize_per_channel.default
                and dequantize.args[0].op == "get_attr"):
            continue
        weight = getattr(graph, dequantize.args[0].target)
        groups, (out_channels, group_in) = node.args[6], weight.shape[:2]
        group_out = out_channels // groups
        if weight.shape[2:] != (1, 1) or group_in == 1 or group_in * group_out > DENSE_GROUP_WEIGHTS:
            continue  # not pointwise, depthwise, or groups large enough for XNNPACK's grouped GEMM
        dense = torch.zeros(out_channels, group_in * groups, 1, 1, dtype=weight.dtype)
        for g in range(groups):
            rows = slice(g * group_out, (g + 1) * group_out)
            dense[rows, g * group_in:(g + 1) * group_in] = weight[rows]
        grouped = dequantize.args[0]
        graph.register_buffer(f"{grouped.target}_dense", dense)
        with graph.graph.inserting_before(dequantize):
            dequantize.replace_input_with(grouped, graph.graph.get_attr(f"{grouped.target}_dense"))
        node.args = (*node.args[:6], 1)
        if not grouped.users:
            graph.graph.erase_node(grouped)
            delattr(graph, grouped.target)
    graph.recompile()
    return graph


def drop_noop_expands(graph_module: torch.fx.GraphModule) -> None:
    """Remove every ``expand_copy`` whose output has its input's shape (exact: it copies).

    A QAT graph is captured at batch 2, so it keeps the learned tokens' expand to the batch
    that ``MobileFormer.forward`` skips for one image; exported at batch 1 it is a copy, and
    XNNPACK, which lacks expand, would leave it outside and split the program in two delegates.
    """
    from executorch.exir.dialects._ops import ops as exir_ops

    for node in list(graph_module.graph.nodes):
        if (node.op == "call_function" and node.target == exir_ops.edge.aten.expand_copy.default
                and node.args[0].meta["val"].shape == node.meta["val"].shape):
            node.replace_all_uses_with(node.args[0])
            graph_module.graph.erase_node(node)
    graph_module.recompile()


def edge_compile_config():
    """ExecuTorch's defaults, less the verifier after every pass: see :func:`verify_edge_program`."""
    from executorch.exir import EdgeCompileConfig

    return EdgeCompileConfig(_check_ir_validity=False)


def verify_edge_program(program: torch.export.ExportedProgram | torch.fx.GraphModule
                        | dict[str, torch.export.ExportedProgram], config) -> None:
    """ExecuTorch's edge-dialect check (edge ops only, their dtypes, contiguous tensors), once.

    ``config`` is the one lowering used: by then it lists the ops the partitioner kept
    whole. Raises ``SpecViolationError`` on a program that breaks a rule.
    """
    from executorch.exir.verification.verifier import EXIREdgeDialectVerifier

    verifier = EXIREdgeDialectVerifier(edge_compile_config=dataclasses.replace(config, _check_ir_validity=True))
    for method in program.values() if isinstance(program, dict) else [program]:
        verifier(method)


def rewrites(recipe: Recipe, precision: str) -> dict[str, bool]:
    """What :func:`lower` rewrites in our programs (a stock recipe's none): small grouped 1x1 convs dense in
    int8 only (in fp32 the dense GEMM costs more than the grouped ones), moves fused into their neighbours in
    fp32 only (on 26m 9 M fewer instructions in fp32, 0.9 M more in int8; CHANGELOG.md)."""
    ours = not recipe.stock_lowering
    return {"dense_grouped_pointwise": ours and precision == "int8", "fused_moves": ours and precision == "fp32"}


def lower(ctx: LowerContext) -> Lowered:
    """Write ``ctx.artifact`` (the ``.pte``; with ``ctx.etrecord`` its ``.etrecord`` too); the census and the
    paper block of every debug handle (with ``profile_blocks``: one delegate per paper block, and their names)."""
    from executorch.backends.transforms.remove_clone_ops import RemoveCloneOpsTransform
    from executorch.exir import to_edge_transform_and_lower

    from ...patches.executorch import fast_lowering
    from .partition import debug_handle_blocks, delegate_blocks, xnnpack_partitioner

    stock = ctx.recipe.stock_lowering
    rewrite = rewrites(ctx.recipe, ctx.precision)
    partitioner = xnnpack_partitioner(block_of=ctx.block_of if ctx.profile_blocks else None,
                                      stock=stock and not ctx.profile_blocks)
    with phase("dense grouped pointwise"):
        graph = dense_grouped_pointwise(ctx.graph) if rewrite["dense_grouped_pointwise"] else ctx.graph
    config = edge_compile_config()

    def verify(graph_module: torch.fx.GraphModule) -> None:
        """The edge program as it is partitioned, checked once (:func:`verify_edge_program`)."""
        with phase("verify edge program"):
            verify_edge_program(graph_module, config)

    with fast_lowering():
        with phase("capture"):  # in the patches too: its fake tensor cache entries are the lowering's
            exported = torch.export.export(graph, (ctx.images[:1],))
        with capture_xnnpack_graphs(rewrite["fused_moves"]) as graphs:
            edge = to_edge_transform_and_lower(exported,
                                               transform_passes=[RemoveCloneOpsTransform(), drop_noop_expands, verify],
                                               partitioner=[partitioner], compile_config=config,
                                               generate_etrecord=ctx.etrecord)
        program = edge.to_executorch()
    with phase("census"):
        census = xnnpack_census(graphs, edge.exported_program())
        profiling = {"debug_handle_blocks": debug_handle_blocks(edge.exported_program(), ctx.block_of)}
        if ctx.profile_blocks:
            profiling["delegate_blocks"] = delegate_blocks(edge.exported_program(), ctx.block_of)
    with phase("write"):
        ctx.artifact.write_bytes(program.buffer)
        if ctx.etrecord:
            program.get_etrecord().save(str(ctx.artifact.with_suffix(".etrecord")))
    return Lowered(census=census, profiling=profiling)


def open_artifact(path: Path, threads: int = 1) -> Program:
    """The ``.pte`` loaded on the host ExecuTorch runtime, whose XNNPACK thread pool gets ``threads``
    (0: one per core)."""
    set_threads(threads)
    return Program(path)


def lower_layer(layer: torch.nn.Module, x: torch.Tensor, int8: bool) -> bytes:
    """One layer (or a toy model) as an XNNPACK ``.pte``: fp32, or int8 by ExecuTorch's quantizer
    as shipped (``xnnpack-stock``). What ``scripts/kernel_bench.py`` and the instruction tests compare."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from ...recipes import calibrate, convert, get_recipe, prepare

    graph = layer.eval()
    if int8:
        stock = get_recipe("xnnpack-stock")
        graph = prepare(layer, stock, x)
        calibrate(graph, [x], progress=False)
        graph = convert(graph, stock)
    program = to_edge_transform_and_lower(torch.export.export(graph, (x,)), partitioner=[XnnpackPartitioner()])
    return program.to_executorch().buffer


def validate(ctx: LowerContext, lowered: Lowered) -> dict:
    """Run the images through the ``.pte`` on the host ExecuTorch runtime and compare with PyTorch."""
    with phase("artifact logits"):
        logits = logits_of(open_artifact(ctx.artifact), ctx.images)
    return compare_logits(logits, ctx.reference, ctx.quantized, ctx.images)
