"""litert-torch's patch (correctness): its NCHW -> NHWC layout pass keeps a dequantize node's shape."""
from __future__ import annotations

from contextlib import AbstractContextManager

from . import CORRECTNESS, scoped_patches

# The litert-torch release :func:`_keep_dequantize_meta` was written and checked against.
PINNED = {"litert-torch": "0.10.0"}


def _keep_dequantize_meta(original):
    """Work around a litert-torch 0.10.0 bug in its NCHW -> NHWC layout pass.

    ``OptimizeLayoutTransposesPass.insert_t_q_dq`` overwrites the metadata of the
    dequantize node it starts from (``input_dq.meta = transpose_node_meta``), dropping its
    shape. When that int8 tensor has a second consumer that the pass puts in the other
    layout, the pass then sees a tensor of unknown rank and fails with ``AssertionError:
    Attempting to convert non-NHWC compatible node to NHWC: dequantize_per_tensor_N``.
    Int8 mobile_former_26m hits it in its first block. The fix keeps the original
    node's metadata; the inserted transpose, quantize and dequantize nodes are built
    exactly as before.
    """
    def insert_t_q_dq(self, graph, input_dq, target, transpose_func, transpose_node_meta):
        meta = input_dq.meta
        try:
            return original(self, graph, input_dq, target, transpose_func, transpose_node_meta)
        finally:
            input_dq.meta = meta
    return insert_t_q_dq


def layout_pass_fix() -> AbstractContextManager[bool]:
    """:func:`_keep_dequantize_meta` for the duration of a conversion (see :mod:`quant.patches`)."""
    from litert_torch._convert.fx_passes.optimize_layout_transposes_pass import pass_body

    patch = (pass_body.OptimizeLayoutTransposesPass, "insert_t_q_dq", _keep_dequantize_meta, CORRECTNESS)
    return scoped_patches([patch], PINNED)
