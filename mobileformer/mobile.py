"""The Mobile side: MicroNet's bottleneck-lite and the Mobile sub-block."""
from __future__ import annotations

import torch
from torch import nn

from .config import BlockRow
from .dyrelu import DyReLU, HyperFunction
from .layers import conv_bn, shuffle


class BottleneckLite(nn.Module):
    """MicroNet's bottleneck-lite on the stem output: dw3x3 (expanding) -> ReLU6 -> pw.

    Attribute ``conv`` with the authors' indices (dw, BN, ReLU6, shuffle, pw, BN).
    """

    def __init__(self, in_channels: int, row: BlockRow, groups: int = 1) -> None:
        super().__init__()
        hidden = in_channels * row.expansion
        self.conv = nn.Sequential(
            *conv_bn(in_channels, hidden, 3, row.stride, groups=in_channels),
            nn.ReLU6(),
            shuffle(in_channels, groups > 1),
            *conv_bn(hidden, row.out_channels, 1, groups=groups),
        )
        self.has_residual = row.stride == 1 and in_channels == row.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return out + x if self.has_residual else out


class MobileSubBlock(nn.Module):
    """The Mobile sub-block: convs on the feature map with DyReLUs driven by the first token.

    ``block`` rows: the inverted residual pw -> DyReLU -> dw -> DyReLU -> pw.
    ``down`` rows: dw -> DyReLU -> pw, then dw -> DyReLU -> pw added back (the stride-2 block).
    Layer names (conv1, hyper1, ...) are the authors' checkpoint keys.
    """

    def __init__(self, in_channels: int, row: BlockRow, token_dim: int, groups: int = 1, reduction: int = 4) -> None:
        super().__init__()
        if row.kind not in ("block", "down"):
            raise ValueError(f"a Mobile sub-block is built from a 'block' or 'down' row, got {row.kind!r}")
        self.kind = row.kind
        out, grouped = row.out_channels, groups > 1
        if row.kind == "block":
            hidden = in_channels * row.expansion
            self.conv1 = nn.Sequential(*conv_bn(in_channels, hidden, 1, groups=groups), shuffle(groups, grouped))
            self.act1, self.hyper1 = DyReLU(), HyperFunction(token_dim, hidden, reduction)
            self.conv2 = nn.Sequential(*conv_bn(hidden, hidden, 3, row.stride, groups=hidden))
            self.act2, self.hyper2 = DyReLU(), HyperFunction(token_dim, hidden, reduction)
            self.conv3 = nn.Sequential(*conv_bn(hidden, out, 1, groups=groups), shuffle(groups, grouped))
        else:
            hidden1, hidden2 = in_channels * row.expansion, out * row.expansion2
            self.conv1 = nn.Sequential(
                *conv_bn(in_channels, hidden1, 3, row.stride, groups=in_channels), shuffle(in_channels, grouped)
            )
            self.act1, self.hyper1 = DyReLU(), HyperFunction(token_dim, hidden1, reduction)
            self.conv2 = nn.Sequential(*conv_bn(hidden1, out, 1, groups=groups))
            self.conv3 = nn.Sequential(*conv_bn(out, hidden2, 3, groups=out), shuffle(out, grouped))
            self.act3, self.hyper3 = DyReLU(), HyperFunction(token_dim, hidden2, reduction)
            self.conv4 = nn.Sequential(*conv_bn(hidden2, out, 1, groups=groups))

    def forward(self, x: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        """``x``: the feature map; ``token``: the first global token ``[B, D]``."""
        if self.kind == "block":
            x = self.act1(self.conv1(x), self.hyper1(token))
            x = self.act2(self.conv2(x), self.hyper2(token))
            return self.conv3(x)
        x = self.conv2(self.act1(self.conv1(x), self.hyper1(token)))
        return x + self.conv4(self.act3(self.conv3(x), self.hyper3(token)))
