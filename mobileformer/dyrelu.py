"""Dynamic ReLU and the hyper-function that feeds it from the first global token."""
from __future__ import annotations

import torch
from torch import nn

from .layers import HardSigmoid


class HyperFunction(nn.Module):
    """The paper's hyper-function: token -> two coefficients per channel, in [0, 1].

    Linear -> ReLU -> Linear -> hard-sigmoid, squeezing the token by ``reduction``.
    """

    def __init__(self, token_dim: int, channels: int, reduction: int = 4) -> None:
        super().__init__()
        squeeze = token_dim // reduction
        self.hyper = nn.Sequential(
            nn.Linear(token_dim, squeeze), nn.ReLU(), nn.Linear(squeeze, 2 * channels), HardSigmoid()
        )

    def forward(self, token: torch.Tensor) -> torch.Tensor:
        """``token``: ``[B, D]`` -> coefficients ``[B, 2C, 1, 1]``."""
        return self.hyper(token)[:, :, None, None]


class DyReLU(nn.Module):
    """Dynamic ReLU: ``max(a1 * x, a2 * x)`` with per-channel slopes from the hyper-function.

    The hyper-function's outputs ``h1, h2`` in [0, 1] become slopes ``a1 = 2 * h1`` in
    [0, 2] and ``a2 = 2 * h2 - 1`` in [-1, 1] (the authors' ``(h - 0.5) * 2 + 1`` and
    ``(h - 0.5) * 2``).
    """

    def slopes(self, coeffs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = coeffs.shape[1] // 2  # slicing, not chunk: split_with_sizes does not delegate
        h1, h2 = coeffs[:, :c], coeffs[:, c:]
        return (h1 - 0.5) * 2.0 + 1.0, (h2 - 0.5) * 2.0

    def forward(self, x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        a1, a2 = self.slopes(coeffs)
        return torch.maximum(x * a1, x * a2)
