"""MobileNet v1, v2 and v3 (Large, Small) at 224x224, written from their papers, as inference graphs.

Only to check the cycle estimate (``scripts/validate_cycle_model.py``) against XNNPACK's
published MobileNet latencies, which were measured with randomized weights: batch norms are
left out (folded into the convolutions' biases at inference, so the graph XNNPACK runs is the
same), and weights are whatever the seed gives.

Papers: Howard et al. 2017, "MobileNets" (Table 1); Sandler et al. 2018, "MobileNetV2"
(Table 2); Howard et al. 2019, "Searching for MobileNetV3" (Tables 1 and 2; squeeze-and-excite
to a quarter of the expansion, rounded to 8, hard-sigmoid gate).
"""
from __future__ import annotations

import torch
from torch import nn


def _divisible(value: float, divisor: int = 8) -> int:
    """Channels rounded to a multiple of 8, never below 90% of ``value`` (MobileNetV2/V3's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: type[nn.Module] | None = nn.ReLU6):
    """A convolution with its folded batch norm (a bias) and activation."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=True)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class Classifier(nn.Sequential):
    """Features, global average pool, the classifier; ``forward`` takes NCHW images."""


def mobilenet_v1() -> nn.Module:
    """MobileNet v1 1.0x: a 3x3 stem, 13 depthwise-separable pairs, 1000 classes (569 M multiply-adds)."""
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    layers, cin = [conv(3, 32, 3, 2)], 32
    for cout, stride in plan:
        layers += [conv(cin, cin, 3, stride, groups=cin), conv(cin, cout, 1)]
        cin = cout
    return Classifier(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, 1000))


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise (k x k), optional squeeze-and-excite, project (1x1, linear); residual
    when the shape is kept."""

    def __init__(self, cin: int, expand: int, cout: int, kernel: int, stride: int, se: bool,
                 act: type[nn.Module]):
        super().__init__()
        layers: list[nn.Module] = [] if expand == cin else [conv(cin, expand, 1, act=act)]
        layers.append(conv(expand, expand, kernel, stride, groups=expand, act=act))
        if se:
            layers.append(SqueezeExcite(expand))
        layers.append(conv(expand, cout, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        squeezed = _divisible(channels / 4)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, squeezed, 1), nn.ReLU(),
                                  nn.Conv2d(squeezed, channels, 1), nn.Hardsigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


def mobilenet_v2() -> nn.Module:
    """MobileNet v2 1.0x: Table 2 of the paper (t, c, n, s), ReLU6, 1000 classes (300 M multiply-adds)."""
    table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    layers, cin = [conv(3, 32, 3, 2)], 32
    for t, c, n, s in table:
        for i in range(n):
            layers.append(InvertedResidual(cin, cin * t, c, 3, s if i == 0 else 1, False, nn.ReLU6))
            cin = c
    layers.append(conv(cin, 1280, 1))
    return Classifier(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1280, 1000))


# (kernel, expansion, out, squeeze-excite, hard-swish, stride): Tables 1 and 2 of the MobileNetV3 paper
V3_LARGE = [(3, 16, 16, False, False, 1), (3, 64, 24, False, False, 2), (3, 72, 24, False, False, 1),
            (5, 72, 40, True, False, 2), (5, 120, 40, True, False, 1), (5, 120, 40, True, False, 1),
            (3, 240, 80, False, True, 2), (3, 200, 80, False, True, 1), (3, 184, 80, False, True, 1),
            (3, 184, 80, False, True, 1), (3, 480, 112, True, True, 1), (3, 672, 112, True, True, 1),
            (5, 672, 160, True, True, 2), (5, 960, 160, True, True, 1), (5, 960, 160, True, True, 1)]
V3_SMALL = [(3, 16, 16, True, False, 2), (3, 72, 24, False, False, 2), (3, 88, 24, False, False, 1),
            (5, 96, 40, True, True, 2), (5, 240, 40, True, True, 1), (5, 240, 40, True, True, 1),
            (5, 120, 48, True, True, 1), (5, 144, 48, True, True, 1), (5, 288, 96, True, True, 2),
            (5, 576, 96, True, True, 1), (5, 576, 96, True, True, 1)]


def _mobilenet_v3(table: list, last: int, head: int) -> nn.Module:
    layers, cin = [conv(3, 16, 3, 2, act=nn.Hardswish)], 16
    for kernel, expand, cout, se, hswish, stride in table:
        layers.append(InvertedResidual(cin, expand, cout, kernel, stride, se, nn.Hardswish if hswish else nn.ReLU))
        cin = cout
    layers.append(conv(cin, last, 1, act=nn.Hardswish))
    return Classifier(*layers, nn.AdaptiveAvgPool2d(1), conv(last, head, 1, act=nn.Hardswish), nn.Flatten(),
                      nn.Linear(head, 1000))


def mobilenet_v3_large() -> nn.Module:
    """MobileNet v3 Large 1.0x (217 M multiply-adds)."""
    return _mobilenet_v3(V3_LARGE, 960, 1280)


def mobilenet_v3_small() -> nn.Module:
    """MobileNet v3 Small 1.0x (56 M multiply-adds)."""
    return _mobilenet_v3(V3_SMALL, 576, 1024)


MODELS = {"mobilenet_v1": mobilenet_v1, "mobilenet_v2": mobilenet_v2,
          "mobilenet_v3_large": mobilenet_v3_large, "mobilenet_v3_small": mobilenet_v3_small}
