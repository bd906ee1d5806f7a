"""Small building blocks shared by the Mobile and Former sides."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    """A bias-free conv followed by BatchNorm, the unit every Mobile-Former conv is made of."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups, bias=False)
    return [conv, nn.BatchNorm2d(out_channels)]


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle, written from reshape/transpose so that it lowers to one permute."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x.reshape(b, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(b, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


def shuffle(groups: int, active: bool) -> nn.Module:
    """A channel shuffle where the variant uses grouped convs, otherwise a stateless placeholder.

    The placeholder keeps the position in the ``nn.Sequential`` so that state_dict
    indices stay those of the authors' checkpoints.
    """
    return ChannelShuffle(groups) if active else nn.Identity()


class HardSigmoid(nn.Module):
    """``relu6(x + 3) / 6``, the authors' h_sigmoid.

    Not ``nn.Hardsigmoid``: its decomposition leaves int64 constants whose casts run
    outside the XNNPACK delegate.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + 3.0) * (1.0 / 6.0)


def first_token(tokens: torch.Tensor) -> torch.Tensor:
    """``tokens[:, 0]`` as a slice + reshape (``select`` does not delegate to XNNPACK)."""
    return tokens[:, :1].reshape(tokens.shape[0], tokens.shape[2])


def attention(q: torch.Tensor, k_t: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """``softmax(q @ k_t * scale) @ v`` over heads: ``[B, h, M, K] x [B, h, K, N] x [B, h, N, c]``.

    Written with two 3-D ``bmm`` (heads folded into the batch) and a last-dim softmax:
    the ops XNNPACK delegates, in int8 too. ``k_t`` comes already transposed because
    every Mobile-Former attention gets its keys in that layout for free.
    """
    b, h, m, k = q.shape
    n = k_t.shape[-1]
    scores = torch.bmm(q.reshape(b * h, m, k), k_t.reshape(b * h, k, n)) * scale
    out = torch.bmm(scores.softmax(dim=-1), v.reshape(b * h, n, v.shape[-1]))
    return out.reshape(b, h, m, v.shape[-1])


class TokenSoftmax(nn.Module):
    """Softmax over dim 1 of ``[N, T, L]``: over the few tokens, for each of the L pixels.

    Written from T row slices (max, subtract, exp, sum, divide; the max is subtracted
    as ``torch.softmax`` does, so it is exact). XNNPACK's softmax works on rows of the
    last dim and costs about 60 ns per row, which for rows of 3 to 6 tokens at every
    pixel of a 56x56 map is most of a Former->Mobile bridge. Stateless.
    """

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        tokens = scores.shape[1]
        peak = scores[:, :1]
        for i in range(1, tokens):
            peak = torch.maximum(peak, scores[:, i : i + 1])
        e = torch.exp(scores - peak)
        total = e[:, :1]
        for i in range(1, tokens):
            total = total + e[:, i : i + 1]
        return e / total


class LayerNorm(nn.LayerNorm):
    """LayerNorm over the last dim, written from ops the XNNPACK delegate runs.

    ExecuTorch's XNNPACK partitioner has no layer_norm, and each one left outside
    splits the graph into another delegate. Viewing ``[..., D]`` as ``[N, 1, 1, D]``
    turns both means into the global average pooling XNNPACK does have. Same
    parameters (``weight``, ``bias``) and result as ``nn.LayerNorm``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x4 = x.reshape(-1, 1, 1, x.shape[-1])
        centred = x4 - x4.mean(dim=(2, 3), keepdim=True)
        var = (centred * centred).mean(dim=(2, 3), keepdim=True)
        y = centred * torch.rsqrt(var + self.eps) * self.weight + self.bias
        return y.reshape(x.shape)
