"""Fewer data moves in the XNNPACK graph: each chain of transposes and reshapes becomes one move.

ExecuTorch's XNNPACK lowering keeps feature maps in NHWC for the convolutions and
converts them back to NCHW wherever an op reads them in PyTorch's layout (a reshape, a
batch-matmul); each conversion is a transpose of the whole map. A channel shuffle costs
three (to NCHW, the shuffle itself, back to NHWC), a bridge that reads the map as a
matrix two, LayerNorm's pooling trick a handful of tiny ones. Chained, those moves often
amount to one transpose, or to none.

:func:`fuse_data_movement` rewrites the serialized XNNPACK graph: for every chain of
``StaticTranspose``/``StaticReshape`` nodes whose intermediate values nobody else reads,
it works out where each element of the chain's output comes from in its input (an index
simulation, so the result is exact by construction: the same bytes land in the same
places), finds the single ``reshape -> transpose -> reshape`` that does the same, and
keeps it when it has fewer moves (XNNPACK copies the data at each one, reshapes
included). Moves that undo each other are dropped, their readers reading the chain's
input. Bytes are only copied, never converted, so quantized tensors are handled like
float ones.

The lowering (:func:`quant.backends.xnnpack.lower`) applies it to every XNNPACK delegate of our
fp32 program, through the one hook ExecuTorch 1.5.1 offers after its own passes
(:func:`quant.patches.executorch.xnnpack_serialize_hook`), as a speed patch.
"""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
from executorch.backends.xnnpack.serialization.xnnpack_graph_schema import (
    XNNGraph,
    XNNStaticReshape,
    XNNStaticTranspose,
    XNode,
)
from executorch.backends.xnnpack.utils.xnnpack_constants import XNN_INVALID_VALUE_ID

MOVES = (XNNStaticTranspose, XNNStaticReshape)
MAX_DIMS = 6  # XNNPACK's XNN_MAX_TENSOR_DIMS


def _tensor(value):
    union = value.xvalue_union
    return getattr(union, "tensor_value", union)


def _source_of_each_element(in_dims: list[int], chain: list, dims_of: dict[int, list[int]]) -> np.ndarray:
    """For each element of the chain's output (flat), its flat index in the chain's input."""
    index = np.arange(int(np.prod(in_dims, dtype=np.int64))).reshape(in_dims)
    for node in chain:
        op = node.xnode_union
        index = index.transpose(op.perm) if isinstance(op, XNNStaticTranspose) else index.reshape(dims_of[op.output_id])
    return index.reshape(-1)


def _as_one_transpose(src: np.ndarray) -> tuple[list[int], list[int]] | None:
    """``(dims, perm)`` such that ``arange(N).reshape(dims).transpose(perm).flatten() == src``, or None.

    Peels the output's digits from the innermost: each is the longest run that steps
    through the input with one stride and repeats identically over the rest.
    """
    n = len(src)
    digits = []  # (size, input stride), innermost output digit first
    rest = src
    while len(rest) > 1:
        step = int(rest[1] - rest[0])
        if step <= 0:
            return None
        run = 1
        while run < len(rest) and rest[run] - rest[0] == run * step:
            run += 1
        while run > 1:  # the longest run that tiles the rest
            if len(rest) % run == 0:
                blocks = rest.reshape(-1, run)
                if np.array_equal(blocks - blocks[:, :1], np.broadcast_to(np.arange(run) * step, blocks.shape)):
                    break
            run -= 1
        if run == 1:
            return None
        digits.append((run, step))
        rest = rest.reshape(-1, run)[:, 0]
    by_stride = sorted(range(len(digits)), key=lambda i: digits[i][1])
    expected = 1
    for i in by_stride:  # the digits must be a mixed radix of the input's flat index
        if digits[i][1] != expected:
            return None
        expected *= digits[i][0]
    if expected != n:
        return None
    outer_first = by_stride[::-1]  # the input's dims, outermost first
    dims = [digits[i][0] for i in outer_first]
    perm = [outer_first.index(i) for i in reversed(range(len(digits)))]  # output digits, outermost first
    if np.array_equal(np.arange(n).reshape(dims).transpose(perm).reshape(-1), src):
        return dims, perm
    return None


def _transposes(chain: list) -> int:
    return sum(isinstance(node.xnode_union, XNNStaticTranspose) for node in chain)


class _Rewriter:
    """Holds the graph's value table; builds the replacement of one chain."""

    def __init__(self, graph: XNNGraph) -> None:
        self.graph = graph
        self.values = {_tensor(v).id_out: v for v in graph.xvalues}
        self.dims_of = {i: list(_tensor(v).dims) for i, v in self.values.items()}
        self.next_id = max(self.values, default=-1) + 1

    def _new_value(self, like: int, dims: list[int]) -> int:
        value = copy.deepcopy(self.values[like])
        tensor = _tensor(value)
        tensor.id_out, tensor.dims, tensor.num_dims = self.next_id, list(dims), len(dims)
        tensor.external_id, tensor.flags, tensor.constant_buffer_idx = XNN_INVALID_VALUE_ID, 0, 0
        self.graph.xvalues.append(value)
        self.values[self.next_id], self.dims_of[self.next_id] = value, list(dims)
        self.next_id += 1
        return self.next_id - 1

    def replacement(self, chain: list) -> list | None:
        """The nodes that move the data as ``chain`` does with fewer transposes, or None."""
        first, last = chain[0].xnode_union, chain[-1].xnode_union
        in_dims, out_dims = self.dims_of[first.input_id], self.dims_of[last.output_id]
        found = _as_one_transpose(_source_of_each_element(in_dims, chain, self.dims_of))
        if found is None:
            return None
        dims, perm = found
        handle = chain[-1].debug_handle
        if perm == sorted(perm) and in_dims == out_dims and last.output_id not in self.graph.output_ids:
            nodes = []  # moves that undo each other: the readers take the input as it is
            self._read_instead(last.output_id, first.input_id)
        elif perm == sorted(perm):
            nodes = [_reshape(first.input_id, last.output_id, out_dims, handle)]
        elif len(dims) > MAX_DIMS:
            return None
        else:
            nodes, source = [], first.input_id
            if dims != in_dims:
                source_dims = dims
                reshaped = self._new_value(first.input_id, source_dims)
                nodes.append(_reshape(source, reshaped, dims, handle))
                source = reshaped
            moved = [dims[p] for p in perm]
            target = last.output_id if moved == out_dims else self._new_value(first.input_id, moved)
            nodes.append(XNode(XNNStaticTranspose(len(perm), list(perm), source, target, 0), handle))
            if target != last.output_id:
                nodes.append(_reshape(target, last.output_id, out_dims, handle))
        if (len(nodes), _transposes(nodes)) >= (len(chain), _transposes(chain)):
            return None  # every move is a copy in XNNPACK, reshapes included: count them all
        return nodes

    def _read_instead(self, old: int, new: int) -> None:
        """Every node that read value ``old`` reads ``new``."""
        for node in self.graph.xnodes:
            op = node.xnode_union
            for field in dataclasses.fields(op):
                if field.name.endswith("_id") and field.name != "output_id" and getattr(op, field.name) == old:
                    setattr(op, field.name, new)


def _reshape(source: int, target: int, dims: list[int], handle: int) -> XNode:
    return XNode(XNNStaticReshape(len(dims), list(dims), source, target, 0), handle)


def _chains(graph: XNNGraph) -> list[list]:
    """Maximal runs of moves whose intermediate values have exactly one reader, each a list of nodes."""
    readers: dict[int, int] = {}
    for node in graph.xnodes:
        for field in dataclasses.fields(node.xnode_union):
            if field.name.endswith("_id") and field.name != "output_id":
                vid = getattr(node.xnode_union, field.name)
                readers[vid] = readers.get(vid, 0) + 1
    for vid in graph.output_ids:
        readers[vid] = readers.get(vid, 0) + 1
    chain_ending_at: dict[int, list] = {}  # output value id -> chain that produced it
    chains = []
    for node in graph.xnodes:
        op = node.xnode_union
        if not isinstance(op, MOVES):
            continue
        before = chain_ending_at.pop(op.input_id, None)
        if before is not None and readers.get(op.input_id) == 1 and op.input_id not in graph.output_ids:
            chains.remove(before)
            chain = before + [node]
        else:
            chain = [node]
        chains.append(chain)
        chain_ending_at[op.output_id] = chain
    return chains


def fuse_data_movement(graph: XNNGraph) -> int:
    """Rewrite ``graph`` in place (see the module docstring); returns the number of transposes removed."""
    rewriter = _Rewriter(graph)
    removed = 0
    for chain in _chains(graph):
        if len(chain) < 2 and not isinstance(chain[0].xnode_union, XNNStaticTranspose):
            continue
        nodes = rewriter.replacement(chain)
        if nodes is None:
            continue
        at = graph.xnodes.index(chain[-1])
        graph.xnodes[at:at + 1] = nodes
        for node in chain[:-1]:
            graph.xnodes.remove(node)
        removed += _transposes(chain) - _transposes(nodes)
    return removed

