"""litert-torch's patches: its NCHW -> NHWC layout pass keeps a dequantize node's shape (correctness),
and its conversion skips torch.fx's own overheads (speed).

Speed: litert-torch 0.10.0's ``convert`` re-traces the whole graph four times (torch.export,
then ``run_decompositions`` with the core-ATen table, in its ``CanonicalizePass`` and before
lowering: int8 mobile_former_26m, about 4,000-5,000 nodes). None of those three decomposition
calls is idle: the first decomposes linear, transpose, softmax, relu6 and pooling, the second
retraces the Python functions of the layout pass (``conv_nhwc``, ``tensor_to_nhwc``, ...) and
the 414 views it rewrites as ``reshape(x.contiguous())`` (92 of them of non-contiguous
tensors), the third decomposes conv2d and addmm and retraces gelu and hardswish. So the rule
of :func:`quant.patches.executorch.fast_lowering` that skips an idle call would here skip
work (the second call's table, litert-torch's one-entry dummy, holds no op of the graph).
What each re-trace pays for nothing is torch.fx's: the provenance copies and the regenerated
and recompiled code (:data:`quant.patches.executorch.FX_OVERHEADS`); :func:`fast_conversion`
skips them, the same functions as the XNNPACK lowering's, and lets the quantize ops into
PyTorch's fake tensor cache (:data:`quant.patches.executorch.FAKE_CACHE_FOR_QUANTIZE_OPS`).
Measured on int8 26m (2-core EPYC, 2026-12-08): 63 CPU s (shared machine) -> 36 CPU s (idle)
for ``convert``, the same ``.tflite`` bytes.
"""
from __future__ import annotations

from contextlib import AbstractContextManager

from . import CORRECTNESS, SPEED, scoped_patches

# The litert-torch release :func:`_keep_dequantize_meta` was written and checked against.
PINNED = {"litert-torch": "0.10.0"}
# The releases :func:`fast_conversion` was checked against (the .tflite bytes with and without it).
SPEED_PINNED = {"litert-torch": "0.10.0", "torch": "2.13.0"}


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


def fast_conversion() -> AbstractContextManager[bool]:
    """Within it, ``litert_torch.convert`` skips torch.fx's overheads (see above); yields whether it does."""
    from .executorch import FAKE_CACHE_FOR_QUANTIZE_OPS, FX_OVERHEADS

    patches = (*FX_OVERHEADS, FAKE_CACHE_FOR_QUANTIZE_OPS)
    return scoped_patches([(owner, name, wrap, SPEED) for owner, name, wrap in patches], SPEED_PINNED)
