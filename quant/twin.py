"""The quantizable twin: the float model with the few ops int8 kernels lack rewritten.

Same modules, same parameters, same state_dict keys; only ``forward`` differs where a
float op has no int8 path in the target runtimes:

* ``DyReLU``: ``max(a1 x, a2 x)`` becomes ``a2 x + relu((a1 - a2) x)``. XNNPACK has no
  int8 ``maximum``; mul, add and relu all run in int8. Identical in exact arithmetic.
* ``Mobile2Former``: the same two matmuls, transposed so that the big operand (the
  feature map) is the left one. XNNPACK's int8 batch-matmul repacks its right operand
  on every call; with the few tokens on the right that costs next to nothing.
* the head's ``BatchNorm1d``: folded into the Linear before it (its statistics stay as
  trained; QAT fine-tunes the folded Linear).

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


class FoldedBatchNorm1d(nn.BatchNorm1d):
    """The head's BatchNorm1d after :func:`fold_into_linear`: an identity that keeps its keys.

    XNNPACK has no int8 batch norm and cannot fuse one into an int8 linear, and PT2E only
    folds batch norms into convs. So the twin folds the head's BatchNorm1d into the
    Linear before it, once, and this module then passes data through. Its parameters
    are set so that a plain BatchNorm1d in eval mode with them is also the identity.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@torch.no_grad()
def fold_into_linear(linear: nn.Linear, bn: nn.BatchNorm1d) -> None:
    """``bn(linear(x)) == linear'(x)`` in eval mode; ``bn`` becomes an exact identity."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    linear.weight.mul_(scale[:, None])
    linear.bias.copy_((linear.bias - bn.running_mean) * scale + bn.bias)
    bn.weight.fill_(1.0)
    bn.bias.zero_()
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0 - bn.eps)


TWINS = {DyReLU: QuantizableDyReLU, Mobile2Former: QuantizableMobile2Former}


def quantizable(model: MobileFormer) -> MobileFormer:
    """A copy of ``model`` whose modules are their quantizable twins (weights copied, keys unchanged).

    The result computes what ``model`` computes in eval mode.
    """
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if type(module) in TWINS:
            module.__class__ = TWINS[type(module)]
    fc = twin.classifier.fc
    if type(fc[1]) is nn.BatchNorm1d:
        fold_into_linear(fc[0], fc[1])
        fc[1].__class__ = FoldedBatchNorm1d
    return twin
