"""XNNPACK partitioning: int8 batch-matmul, and optionally one delegate per paper block."""
from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch.fx import Node
from torch.fx.passes.infra.partitioner import Partition

from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
from executorch.backends.xnnpack.partition.config.generic_node_configs import BMMConfig
from executorch.backends.xnnpack.partition.config.xnnpack_config import ConfigPrecisionType
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner


class QuantBMMConfig(BMMConfig):
    """``bmm`` in int8 too. ExecuTorch 1.5.1 only offers fp32, while XNNPACK runs
    qint8 x qint8 batch-matmul (right operand with zero point 0, which our quantizer
    guarantees)."""

    def supported_precision_types(self) -> list[ConfigPrecisionType]:
        return [ConfigPrecisionType.FP32, ConfigPrecisionType.STATIC_QUANT]


# Same target names must not appear twice, so the stock BMM config is replaced, not added to.
CONFIGS = [c for c in ALL_PARTITIONER_CONFIGS if c is not BMMConfig] + [QuantBMMConfig]


def _is_q(node: Node) -> bool:
    return node.op == "call_function" and "quantize_per_tensor" in str(node.target) and "dequantize" not in str(node.target)


def _is_dq(node: Node) -> bool:
    return node.op == "call_function" and "dequantize_per" in str(node.target)


def _module_path(node: Node) -> str | None:
    stack = node.meta.get("nn_module_stack")
    return list(stack.values())[-1][0] if stack else None


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

    def _block(self, node: Node, memo: dict[Node, str]) -> str:
        if node in memo:
            return memo[node]
        users = [u for u in node.users if u.op == "call_function"]
        path = _module_path(node)
        if node.op in ("placeholder", "get_attr") or (_is_dq(node) and users):
            block = self._block(users[0], memo)
        elif _is_q(node) and isinstance(node.args[0], Node) and node.args[0].op == "call_function":
            block = self._block(node.args[0], memo)
        elif path:
            block = self.block_of(path)
        elif users:  # ops of the network's own forward (token broadcast): with their consumer
            block = self._block(users[0], memo)
        else:
            block = self._block(node.args[0], memo)
        memo[node] = block
        return block

    def generate_partitions(self, ep: torch.export.ExportedProgram) -> list[Partition]:
        ids, memo, out = itertools.count(), {}, []
        for part in super().generate_partitions(ep):
            groups: dict[str, list[Node]] = {}
            for node in part.nodes:
                groups.setdefault(self._block(node, memo), []).append(node)
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
    gm = edge_program.graph_module
    blocks = []
    for node in gm.graph.nodes:
        if node.op == "call_function" and "executorch_call_delegate" in str(node.target):
            inner = getattr(gm, node.args[0].target).original_module.graph_module.graph
            names = [block_of(p) for p in (_module_path(n) for n in inner.nodes if n.op == "call_function") if p]
            blocks.append(max(set(names), key=names.count) if names else "head")
    return blocks
