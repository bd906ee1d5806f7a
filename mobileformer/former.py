"""The Former sub-block: a post-norm transformer block on the few global tokens."""
from __future__ import annotations

import torch
from torch import nn

from .layers import LayerNorm, attention


class FormerSubBlock(nn.Module):
    """Multi-head self-attention + FFN on ``[B, T, D]`` tokens, each followed by LayerNorm.

    As in the authors' code, keys and values are the tokens themselves (only the query
    has a projection), the attention output goes through ``channel_mlp``, and the FFN
    uses GELU. Attribute order follows their checkpoints.
    """

    def __init__(self, token_dim: int, heads: int = 4, ffn_expansion: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (token_dim // heads) ** -0.5
        self.ffn = nn.Sequential(
            nn.Linear(token_dim, token_dim * ffn_expansion), nn.GELU(), nn.Linear(token_dim * ffn_expansion, token_dim)
        )
        self.ffn_norm = LayerNorm(token_dim)
        self.q = nn.Linear(token_dim, token_dim)
        self.channel_mlp = nn.Linear(token_dim, token_dim)
        self.layer_norm = LayerNorm(token_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, t, d = tokens.shape
        h = self.heads
        kv = tokens.reshape(b, t, h, d // h).transpose(1, 2)  # B, h, T, d/h
        q = self.q(tokens).reshape(b, t, h, d // h).transpose(1, 2)
        out = attention(q, kv.transpose(-1, -2), kv, self.scale).transpose(1, 2).reshape(b, t, d)
        tokens = self.layer_norm(tokens + self.channel_mlp(out))
        return self.ffn_norm(tokens + self.ffn(tokens))
