"""XNNPACK partitioning: int8 batch-matmul, and optionally one delegate per paper block."""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import torch
from torch.fx import Node
from torch.fx.passes.infra.partitioner import Partition

from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
from executorch.backends.xnnpack.partition.config.generic_node_configs import BMMConfig, CatConfig, MulConfig
from executorch.backends.xnnpack.partition.config.xnnpack_config import ConfigPrecisionType
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

from ...census import is_dequantize, is_quantize, module_path


class QuantBMMConfig(BMMConfig):
    """``bmm`` in int8 too. ExecuTorch 1.5.1 only offers fp32, while XNNPACK runs
    qint8 x qint8 batch-matmul (right operand with zero point 0, which our quantizer
    guarantees)."""

    def supported_precision_types(self) -> list[ConfigPrecisionType]:
        return [ConfigPrecisionType.FP32, ConfigPrecisionType.STATIC_QUANT]


class RepeatedCatConfig(CatConfig):
    """``cat`` whose inputs repeat one tensor (``cat([x] * m)``, see ``CatDepthwiseConv2d``).

    The stock check counts distinct input nodes and turns it away; XNNPACK itself takes
    the same value for several inputs.
    """

    def check_constraints(self, node: torch.fx.Node, ep: torch.export.ExportedProgram) -> bool:
        return self.check_common_constraints(node, ep) and len(node.args[0]) >= 2


class MulReluConfig(MulConfig):
    """``mul`` with the ``relu`` after it fused, as ExecuTorch already does for ``add``.

    DyReLU's ``relu((a1 - a2) x)`` is quantized as one mul-relu pattern (no quantize
    between the two); the stock config does not take the relu with the mul, sees a mul
    whose output is not quantized and lowers it in float, with a Convert of the whole
    feature map on each side. Fused, it is one int8 multiply with its output clamped
    (the XNNPACK multiply node carries the activation's bounds).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(fused_act=["relu.default"], **kwargs)


# Same target names must not appear twice, so stock configs are replaced, not added to.
CONFIGS = [c for c in ALL_PARTITIONER_CONFIGS if c not in (BMMConfig, CatConfig, MulConfig)] + [
    QuantBMMConfig, RepeatedCatConfig, MulReluConfig]


class BlockPartitioner(XnnpackPartitioner):
    """XNNPACK partitions cut further so that each paper block is its own delegate.

    XNNPACK's profiling events name kernels, not modules; with one delegate per block,
    the delegate an event comes from names its block. ``block_of`` maps a module path
    to a block name. Quantize nodes go with the op that produced their input,
    dequantize nodes with the op that consumes their output, weights with their user.
    """

    def __init__(self, block_of: Callable[[str], str], **kwargs) -> None:
        super().__init__(configs=CONFIGS, **kwargs)
        self.block_of = block_of

    def _block(self, node: Node, memo: dict[Node, str | None]) -> str | None:
        """The block of ``node``; None while undecided (a node already being resolved)."""
        if node in memo:
            return memo[node]
        memo[node] = None  # guards against cycles through q/dq pairs of pathless ops
        users = [u for u in node.users if u.op == "call_function"]
        producer = node.args[0] if node.args and isinstance(node.args[0], Node) else None
        path = module_path(node)
        if path and not (is_quantize(node) or is_dequantize(node)):
            candidates = []
            block = self.block_of(path)
        elif is_quantize(node):  # quantize: with the op that produced its input
            candidates = [producer, *users]
            block = None
        else:  # dequantize, weights, and ops of the network's own forward: with their consumer
            candidates = [*users, producer]
            block = None
        for other in candidates:
            if block is None and other is not None and other.op != "output":
                block = self._block(other, memo)
        memo[node] = block
        return block

    def generate_partitions(self, ep: torch.export.ExportedProgram) -> list[Partition]:
        ids, memo, out = itertools.count(), {}, []
        for part in super().generate_partitions(ep):
            groups: dict[str, list[Node]] = {}
            for node in part.nodes:
                groups.setdefault(self._block(node, memo) or "head", []).append(node)
            out += [Partition(id=next(ids), nodes=nodes) for nodes in groups.values()]
        return out


def xnnpack_partitioner(block_of: Callable[[str], str] | None = None, stock: bool = False) -> XnnpackPartitioner:
    """The partitioner for an export: stock as shipped, ours (int8 bmm), or ours split by block."""
    if stock:
        return XnnpackPartitioner()
    if block_of is not None:
        return BlockPartitioner(block_of)
    return XnnpackPartitioner(configs=CONFIGS)


def delegate_blocks(edge_program: torch.export.ExportedProgram, block_of: Callable[[str], str]) -> list[str]:
    """The paper block of every delegate call, in execution order.

    Written into the manifest of a ``--profile-blocks`` export: an operator's
    ``delegate_index`` in a latency result indexes this list.
    """
    blocks = []
    for inner in _delegated_graphs(edge_program):
        names = [block_of(p) for p in (module_path(n) for n in inner.nodes if n.op == "call_function") if p]
        blocks.append(max(set(names), key=names.count) if names else "head")
    return blocks


def _delegated_graphs(edge_program: torch.export.ExportedProgram) -> Iterator[torch.fx.Graph]:
    """The edge graph of each delegate call, in execution order, as it was before lowering."""
    gm = edge_program.graph_module
    for node in gm.graph.nodes:
        if node.op == "call_function" and "executorch_call_delegate" in str(node.target):
            yield getattr(gm, node.args[0].target).original_module.graph_module.graph


def debug_handle_blocks(edge_program: torch.export.ExportedProgram, block_of: Callable[[str], str]) -> dict[str, str]:
    """The paper block of every debug handle inside the XNNPACK delegates.

    XNNPACK serializes each node's ``debug_handle`` (given by ``to_edge``) with the XNode it
    becomes, so a counted operator finds its block through its XNode's handle; this map is
    written into every xnnpack export's manifest (JSON keys are strings). Nodes without a
    module (the graph's own glue) are left out.
    """
    blocks: dict[str, str] = {}
    for inner in _delegated_graphs(edge_program):
        for node in inner.nodes:
            path = module_path(node) if node.op == "call_function" else None
            if path and isinstance(node.meta.get("debug_handle"), int):
                blocks[str(node.meta["debug_handle"])] = block_of(path)
    return blocks
