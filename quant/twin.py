"""The quantizable twin: the float model with the few ops int8 kernels lack rewritten.

Same modules, same parameters, same state_dict keys; only ``forward`` differs where a
float op has no int8 path in the target runtimes:

* ``DyReLU``: ``max(a1 x, a2 x)`` becomes ``a2 x + relu((a1 - a2) x)``. XNNPACK has no
  int8 ``maximum``; mul, add and relu all run in int8. Identical in exact arithmetic.
* ``Mobile2Former``: the same two matmuls, transposed so that the big operand (the
  feature map) is the left one. XNNPACK's int8 batch-matmul repacks its right operand
  on every call; with the few tokens on the right that costs next to nothing.
* the head's ``BatchNorm1d``: run on a 4-D view, which QAT's train/eval switch handles.

Everything else (Former, Former->Mobile, the Mobile convs) is already written from ops
that quantize (see :mod:`mobileformer.layers`).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from mobileformer.bridges import Mobile2Former
from mobileformer.dyrelu import DyReLU
from mobileformer.model import MobileFormer


class QuantizableDyReLU(DyReLU):
    """``max(a1 x, a2 x) = a2 x + relu((a1 - a2) x)``: the max written as mul/add/relu."""

    def forward(self, x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        a1, a2 = self.slopes(coeffs)
        return x * a2 + F.relu(x * (a1 - a2))


class QuantizableMobile2Former(Mobile2Former):
    """Mobile->Former with both matmuls transposed: ``scores^T = k^T q^T``, ``out^T = k attn^T``."""

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        b, c, hgt, wid = x.shape
        t, h = tokens.shape[1], self.heads
        k = x.reshape(b * h, c // h, hgt * wid)  # pixels are keys and values: B*h, C/h, HW
        q_t = self.q(tokens).reshape(b, t, h, c // h).permute(0, 2, 3, 1).reshape(b * h, c // h, t)
        scores_t = torch.bmm(k.transpose(1, 2), q_t) * self.scale  # B*h, HW, T
        attn = scores_t.transpose(1, 2).softmax(dim=-1)  # B*h, T, HW
        out_t = torch.bmm(k, attn.transpose(1, 2))  # B*h, C/h, T
        out = out_t.reshape(b, h, c // h, t).permute(0, 3, 1, 2).reshape(b, t, c)
        out = out * (self.alpha(tokens) * 2.0)
        return self.layer_norm(tokens + self.proj(out))


class QuantizableBatchNorm1d(nn.BatchNorm1d):
    """The head's BatchNorm1d run as BatchNorm2d on a ``[B, C, 1, 1]`` view.

    Same statistics, same parameters. PT2E's train/eval switch for QAT graphs
    (``move_exported_model_to_eval``) only recognises the 4-D batch norm; a 2-D one
    would stay in training mode after QAT and normalise by the batch.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x[:, :, None, None]).flatten(1)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"expected a [B, C, 1, 1] view, got {x.dim()}-D input")


TWINS = {DyReLU: QuantizableDyReLU, Mobile2Former: QuantizableMobile2Former, nn.BatchNorm1d: QuantizableBatchNorm1d}


def quantizable(model: MobileFormer) -> MobileFormer:
    """A copy of ``model`` whose modules are their quantizable twins (weights copied, keys unchanged)."""
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if type(module) in TWINS:
            module.__class__ = TWINS[type(module)]
    return twin
