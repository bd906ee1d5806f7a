"""The quantizable twin: the float model with the few ops int8 kernels lack rewritten.

Same modules, same parameters, same state_dict keys; only ``forward`` differs where a
float op has no int8 path in the target runtimes:

* ``DyReLU``, where a recipe quantizes it: ``max(a1 x, a2 x)`` becomes
  ``a2 x + relu((a1 - a2) x)``. XNNPACK has no int8 ``maximum``; mul, add and relu all run
  in int8. Identical in exact arithmetic. Where DyReLU stays float (the ``xnnpack``
  recipe), the float model's form is kept: three float ops instead of five.
* ``Mobile2Former`` and ``Former2Mobile``: the same two matmuls each, arranged so that
  the big operand (the feature map) is the left one. XNNPACK's int8 batch-matmul
  repacks its right operand on every call; with the few tokens on the right that
  costs next to nothing. Our fp32 export keeps the float model's bridges, which count
  fewer AArch64 instructions in fp32 (``Recipe.twin_bridges``).
* the head's ``BatchNorm1d``: folded into the Linear before it (its statistics stay as
  trained; QAT fine-tunes the folded Linear).
* depthwise convs with a channel multiplier: ``cat([x] * m)`` + a true depthwise conv
  (:class:`CatDepthwiseConv2d`), with the weights of the conv and of the layers that
  read its channels permuted to the new channel order.

The twin keeps the float model's state_dict keys and shapes; where channels are
re-ordered it holds the same numbers in that order.

Everything else (Former, Former->Mobile, the Mobile convs) is already written from ops
that quantize (see :mod:`mobileformer.layers`).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from mobileformer.bridges import Former2Mobile, Mobile2Former
from mobileformer.dyrelu import DyReLU
from mobileformer.layers import ChannelShuffle
from mobileformer.mobile import BottleneckLite, MobileSubBlock
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


class CatDepthwiseConv2d(nn.Conv2d):
    """A depthwise conv with channel multiplier m, computed as ``cat([x] * m)`` + a true depthwise conv.

    XNNPACK runs ``groups=in, out=in*m`` convs as a grouped GEMM with one input channel
    per group; the repeated input turns it into its fast depthwise kernel. The copies
    come out in the order ``j * in + g`` (copy j of channel g) instead of ``g * m + j``,
    so :func:`reorder_multiplier_convs` permutes this conv's weights to match and
    either drops the ChannelShuffle that followed (it did exactly this reordering) or
    permutes the weights of the layers that read these channels.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        copies = torch.cat([x] * (self.out_channels // x.shape[1]), dim=1)
        return F.conv2d(copies, self.weight, self.bias, self.stride, self.padding, self.dilation, self.out_channels)


def _copy_order(in_channels: int, multiplier: int) -> torch.Tensor:
    """Channel ``j * in + g`` of ``cat([x] * m)`` holds what output ``g * m + j`` of the grouped conv held."""
    return torch.tensor([g * multiplier + j for j in range(multiplier) for g in range(in_channels)])


@torch.no_grad()
def _to_cat_depthwise(seq: nn.Sequential) -> tuple[torch.Tensor, bool]:
    """``seq = [dw conv, BN, ...]`` in copy order; returns the order and whether a shuffle absorbed it."""
    conv, bn = seq[0], seq[1]
    order = _copy_order(conv.in_channels, conv.out_channels // conv.in_channels)
    conv.weight.copy_(conv.weight[order])
    conv.__class__ = CatDepthwiseConv2d
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(bn, name).copy_(getattr(bn, name)[order])
    for i in range(2, len(seq)):
        if isinstance(seq[i], ChannelShuffle) and seq[i].groups == conv.in_channels:
            seq[i] = nn.Identity()  # the shuffle put the channels in copy order; they already are
            return order, True
    return order, False


@torch.no_grad()
def _read_in_order(consumer: nn.Conv2d, order: torch.Tensor) -> None:
    consumer.weight.copy_(consumer.weight[:, order])


@torch.no_grad()
def _slopes_in_order(hyper: nn.Module, order: torch.Tensor) -> None:
    last = hyper.hyper[2]  # rows [0, C) give DyReLU's a1, rows [C, 2C) its a2
    rows = torch.cat([order, order + len(order)])
    last.weight.copy_(last.weight[rows])
    last.bias.copy_(last.bias[rows])


def reorder_multiplier_convs(model: MobileFormer) -> None:
    """Every depthwise conv with a channel multiplier becomes a :class:`CatDepthwiseConv2d` (in place, exact)."""
    for module in model.modules():
        if isinstance(module, BottleneckLite) and module.conv[0].out_channels > module.conv[0].in_channels:
            order, absorbed = _to_cat_depthwise(module.conv)  # dw, BN, ReLU6, shuffle, pw, BN
            if not absorbed:
                _read_in_order(module.conv[4], order)
        elif isinstance(module, MobileSubBlock) and module.kind == "down":
            for dw, hyper, pointwise in ((module.conv1, module.hyper1, module.conv2), (module.conv3, module.hyper3, module.conv4)):
                order, absorbed = _to_cat_depthwise(dw)
                if not absorbed:
                    _slopes_in_order(hyper, order)
                    _read_in_order(pointwise[0], order)


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


class QuantizableFormer2Mobile(Former2Mobile):
    """Former->Mobile with the pixels as the left operand of both matmuls.

    The float bridge reads the feature map in place as the right operand; in int8 that
    operand would be repacked on every call. Here ``scores = q k^T`` and ``out = attn v``
    take the pixels on the left and the few tokens on the right, at the price of two
    int8 transposes of the feature map. The softmax over the tokens stays float.
    """

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        b, c, hgt, wid = x.shape
        t, h = tokens.shape[1], self.heads
        d = c // h
        q = x.reshape(b * h, d, hgt * wid).transpose(1, 2)  # pixels query: B*h, HW, C/h
        k_t = self.k(tokens).reshape(b, t, h, d).permute(0, 2, 3, 1).reshape(b * h, d, t)
        v = self.proj(tokens).reshape(b, t, h, d).transpose(1, 2).reshape(b * h, t, d)
        scores = torch.bmm(q, k_t) * self.scale  # B*h, HW, T
        attn = self.softmax(scores.transpose(1, 2)).transpose(1, 2)
        out = torch.bmm(attn, v)  # B*h, HW, C/h
        return x + out.transpose(1, 2).reshape(b, c, hgt, wid)


TWINS = {DyReLU: QuantizableDyReLU, Mobile2Former: QuantizableMobile2Former, Former2Mobile: QuantizableFormer2Mobile}


def quantizable(model: MobileFormer, int8_dyrelu: bool = True, bridges: bool = True) -> MobileFormer:
    """A copy of ``model`` whose modules are their quantizable twins (keys and shapes unchanged);
    with ``int8_dyrelu=False`` its DyReLUs, with ``bridges=False`` its bridges keep the float
    model's form.

    The result computes what ``model`` computes in eval mode.
    """
    kept = ({DyReLU} if not int8_dyrelu else set()) | ({Mobile2Former, Former2Mobile} if not bridges else set())
    twins = {k: v for k, v in TWINS.items() if k not in kept}
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if type(module) in twins:
            module.__class__ = twins[type(module)]
    fc = twin.classifier.fc
    if type(fc[1]) is nn.BatchNorm1d:
        fold_into_linear(fc[0], fc[1])
        fc[1].__class__ = FoldedBatchNorm1d
    reorder_multiplier_convs(twin)
    return twin
