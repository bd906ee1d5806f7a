"""MAdds counted from the exported graph, attributed to the paper's blocks.

What counts, per node of ``torch.export``'s ATen graph:

* conv: output elements x (input channels / groups) x kernel area;
* linear / matmul: output elements x the contracted dimension;
* DyReLU: one MAdd per output element for each of its two slope multiplications and
  for its max, as the DY-ReLU paper counts it (these are the only elementwise ops
  counted; with them the totals land within 1% of the names 26M ... 508M).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .dyrelu import DyReLU
from .model import MobileFormer


@dataclass(frozen=True)
class NodeCost:
    module_path: str  # innermost module that ran the op, e.g. "features.3.global_block.q"
    op: str
    madds: int


@dataclass(frozen=True)
class BlockSummary:
    name: str  # the paper's name, e.g. "block 3: former"
    params: int
    madds: int
    output_shape: tuple[int, ...]


def _numel(node: torch.fx.Node) -> int:
    return math.prod(node.meta["val"].shape)


def _node_madds(node: torch.fx.Node, in_dyrelu: bool) -> int:
    name = node.target.__name__.split(".")[0] if hasattr(node.target, "__name__") else ""
    if name in ("conv2d", "convolution"):
        weight = node.args[1].meta["val"]
        return _numel(node) * math.prod(weight.shape[1:])
    if name in ("linear", "matmul", "bmm", "mm", "addmm"):
        a = node.args[1] if name == "addmm" else node.args[0]
        return _numel(node) * a.meta["val"].shape[-1]
    if in_dyrelu and name in ("mul", "maximum"):
        return _numel(node)
    return 0


_DYRELU = f"{DyReLU.__module__}.{DyReLU.__qualname__}"


def _module_stack(node: torch.fx.Node) -> list[tuple[str, type | str]]:
    return list(node.meta.get("nn_module_stack", {}).values())


def _walk(model: MobileFormer, input_size: int):
    """(module path, node, MAdds) for every op of the exported graph, in execution order."""
    ep = torch.export.export(model.eval(), (torch.zeros(1, 3, input_size, input_size),))
    for node in ep.graph.nodes:
        if node.op != "call_function" or "val" not in node.meta:
            continue
        stack = _module_stack(node)
        in_dyrelu = any(str(cls).endswith(_DYRELU) for _, cls in stack)
        yield (stack[-1][0] if stack else ""), node, _node_madds(node, in_dyrelu)


def node_costs(model: MobileFormer, input_size: int = 224) -> list[NodeCost]:
    """Every op of the exported graph with its MAdds (zero for ops that do not count)."""
    return [NodeCost(path, str(node.target), madds) for path, node, madds in _walk(model, input_size)]


def count_madds(model: MobileFormer, input_size: int = 224) -> int:
    """Total MAdds of one image at ``input_size`` x ``input_size``."""
    return sum(c.madds for c in node_costs(model, input_size))


def block_summaries(model: MobileFormer, input_size: int = 224) -> list[BlockSummary]:
    """Params, MAdds and output shape of every paper block, in execution order.

    Ops of the network's own forward (token broadcast, token select) have no block
    and no MAdds; they are left out.
    """
    madds: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for path, node, cost in _walk(model, input_size):
        if not path:
            continue
        block = model.paper_block(path)
        madds[block] = madds.get(block, 0) + cost
        if isinstance(node.meta["val"], torch.Tensor):
            shapes[block] = tuple(node.meta["val"].shape)
    params: dict[str, int] = {}
    for key, p in model.named_parameters():
        block = model.paper_block(key.rsplit(".", 1)[0])
        params[block] = params.get(block, 0) + p.numel()
    names = list(dict.fromkeys(name for name, _ in model.paper_blocks()))
    return [BlockSummary(n, params.get(n, 0), madds.get(n, 0), shapes.get(n, ())) for n in names]
