"""The two light cross-attentions that join the Mobile and Former sides."""
from __future__ import annotations

import torch
from torch import nn

from .layers import HardSigmoid, LayerNorm, TokenSoftmax, attention


class Mobile2Former(nn.Module):
    """Mobile -> Former: the tokens query the feature map.

    Keys and values are the raw features (no projection on the Mobile side, so the
    bridge is cheap); the result is gated per channel by ``2 * alpha(tokens)``,
    projected to token space, added to the tokens and LayerNorm-ed.
    """

    def __init__(self, channels: int, token_dim: int, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (channels // heads) ** -0.5
        self.alpha = nn.Sequential(nn.Linear(token_dim, channels), HardSigmoid())
        self.q = nn.Linear(token_dim, channels)
        self.proj = nn.Linear(channels, token_dim)
        self.layer_norm = LayerNorm(token_dim)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, C, H, W]``, ``tokens``: ``[B, T, D]`` -> new tokens ``[B, T, D]``."""
        b, c, hgt, wid = x.shape
        t, h = tokens.shape[1], self.heads
        q = self.q(tokens).reshape(b, t, h, c // h).transpose(1, 2)  # B, h, T, C/h
        k = x.reshape(b, h, c // h, hgt * wid)  # B, h, C/h, HW
        out = attention(q, k, k.transpose(-1, -2), self.scale)  # B, h, T, C/h
        out = out.transpose(1, 2).reshape(b, t, c) * (self.alpha(tokens) * 2.0)
        return self.layer_norm(tokens + self.proj(out))


class Former2Mobile(nn.Module):
    """Former -> Mobile: every pixel queries the tokens and adds what it reads.

    Queries are the raw features; keys and values are linear maps of the tokens.
    Computed in the transposed layout, ``out^T = v^T softmax_T(k x)``: the feature
    map is used as it lies in memory (no transposes of it) and the softmax runs over
    the T tokens for all pixels at once (:class:`TokenSoftmax`).
    """

    def __init__(self, channels: int, token_dim: int, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (channels // heads) ** -0.5
        self.k = nn.Linear(token_dim, channels)
        self.proj = nn.Linear(token_dim, channels)
        self.softmax = TokenSoftmax()

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, C, H, W]``, ``tokens``: ``[B, T, D]`` -> new feature map ``[B, C, H, W]``."""
        b, c, hgt, wid = x.shape
        t, h = tokens.shape[1], self.heads
        k = self.k(tokens).reshape(b, t, h, c // h).transpose(1, 2).reshape(b * h, t, c // h)  # B*h, T, C/h
        v_t = self.proj(tokens).reshape(b, t, h, c // h).permute(0, 2, 3, 1).reshape(b * h, c // h, t)
        scores_t = torch.bmm(k, x.reshape(b * h, c // h, hgt * wid)) * self.scale  # B*h, T, HW
        out_t = torch.bmm(v_t, self.softmax(scores_t))  # B*h, C/h, HW: the NCHW layout
        return x + out_t.reshape(b, c, hgt, wid)
