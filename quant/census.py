"""Op census of a converted PT2E graph, before any backend: which ops would run int8.

:func:`graph_census`: every compute op of a converted PT2E graph. An op is int8 when
every activation it reads comes straight from a dequantize and the backend has an int8
kernel for it; conv, linear and matmul also need their output quantized (the
``dq -> op -> q`` pattern backends match) and conv and linear a dequantized int8 weight.
The ground truth after lowering is each backend's own census (:mod:`quant.backends`).
"""
from __future__ import annotations

import torch
from torch.fx import Node

# What the issue tracks: every conv, linear and matmul.
KINDS = {"convolution": "conv", "conv2d": "conv", "linear": "linear", "addmm": "linear", "mm": "linear",
         "bmm": "matmul", "matmul": "matmul"}
# Ops XNNPACK only runs in float: sandwiched between dq and q they still run float, between Converts.
FLOAT_KERNELS = {"softmax", "_softmax", "gelu", "hardswish", "rsqrt", "exp", "div", "sigmoid", "tanh",
                 "maximum", "minimum", "log", "sqrt", "layer_norm", "native_layer_norm"}
BOOKKEEPING = ("quantize_per", "dequantize_per", "getitem", "executorch_call_delegate", "alloc",
               "_assert", "sym_size")
# Ops that only move data: counted as neither int8 nor float work.
SHAPE_OPS = {"reshape", "view", "view_copy", "permute", "permute_copy", "transpose", "slice", "slice_copy",
             "unsqueeze", "unsqueeze_copy", "squeeze", "flatten", "expand", "expand_copy", "clone", "select",
             "_unsafe_view", "contiguous", "dropout"}


def op_name(node: Node) -> str:
    """``aten.convolution.default`` for ATen and edge targets alike."""
    target = node.target
    if isinstance(target, torch._ops.OpOverload):
        return str(target)
    return getattr(target, "__name__", str(target))


def _base(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) >= 2 else name


def op_kind(name: str) -> str:
    return KINDS.get(_base(name), "other")


def is_dequantize(node: object) -> bool:
    """A PT2E dequantize (int8 -> float), per tensor or per channel, as an ATen or an edge op."""
    return isinstance(node, Node) and node.op == "call_function" and "dequantize_per" in op_name(node)


def is_quantize(node: object) -> bool:
    """A PT2E quantize (float -> int8), per tensor or per channel, as an ATen or an edge op. Per channel
    too: a quantize of a weight (a recipe with ``fold_quantize=False``) is a quantize all the same."""
    return (isinstance(node, Node) and node.op == "call_function" and "quantize_per" in op_name(node)
            and not is_dequantize(node))


def is_op(node: Node) -> bool:
    """Any op of the model (not q/dq bookkeeping)."""
    return node.op == "call_function" and not any(b in op_name(node) for b in BOOKKEEPING)


def is_compute(node: Node) -> bool:
    """An op that does arithmetic (not bookkeeping, not a pure data move)."""
    return is_op(node) and _base(op_name(node)) not in SHAPE_OPS


def _output_quantized(node: Node) -> bool:
    """Every consumer is a quantize, possibly after a fused relu/hardtanh."""
    fused = ("relu", "hardtanh", "relu6", "clamp")
    return bool(node.users) and all(
        is_quantize(u) or (_base(op_name(u)) in fused and all(is_quantize(v) for v in u.users)) for u in node.users
    )


def node_precision(node: Node) -> str:
    """``int8`` or ``float`` for a compute node of a converted graph (see module docstring)."""
    inputs = [a for a in node.all_input_nodes if a.op == "call_function"]
    if not inputs or not all(is_dequantize(a) for a in inputs) or _base(op_name(node)) in FLOAT_KERNELS:
        return "float"
    if not _output_quantized(node) and op_kind(op_name(node)) != "other":
        return "float"
    if op_kind(op_name(node)) in ("conv", "linear") and not is_dequantize(node.args[1]):
        return "float"
    return "int8"


def module_path(node: Node) -> str | None:
    """The path of the innermost module a node was traced in (``features.3.global_block.q``)."""
    stack = node.meta.get("nn_module_stack")
    return list(stack.values())[-1][0] if stack else None


def graph_census(gm: torch.fx.GraphModule) -> list[dict]:
    """Every compute op of a converted graph: node, op, kind, precision, module path."""
    return [{"node": node.name, "op": op_name(node), "kind": op_kind(op_name(node)),
             "precision": node_precision(node), "module": module_path(node) or ""}
            for node in gm.graph.nodes if is_compute(node)]
