"""The Mobile-Former block: Mobile and Former in parallel, joined by the two bridges."""
from __future__ import annotations

import torch

from .bridges import Former2Mobile, Mobile2Former
from .config import BlockRow, VariantConfig
from .former import FormerSubBlock
from .layers import first_token
from .mobile import MobileSubBlock


class MobileFormerBlock(MobileSubBlock):
    """Mobile -> Former bridge, Former sub-block, Mobile sub-block, Former -> Mobile bridge.

    The block *is* its Mobile sub-block plus three named parts, because the authors'
    checkpoints keep the Mobile layers at the block's top level (``features.3.conv1``)
    next to ``local_global`` (Mobile->Former), ``global_block`` (Former) and
    ``global_local`` (Former->Mobile).
    """

    def __init__(self, in_channels: int, row: BlockRow, cfg: VariantConfig) -> None:
        if row.kind == "down" and row.stride != 2:
            raise ValueError("a 'down' block must have stride 2")
        super().__init__(in_channels, row, cfg.token_dim, cfg.groups, cfg.hyper_reduction)
        self.local_global = Mobile2Former(in_channels, cfg.token_dim, cfg.bridge_heads)
        self.global_block = FormerSubBlock(cfg.token_dim, cfg.former_heads, cfg.ffn_expansion)
        self.global_local = Former2Mobile(row.out_channels, cfg.token_dim, cfg.bridge_heads)
        self.has_residual = row.stride == 1 and in_channels == row.out_channels

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.global_block(self.local_global(x, tokens))
        out = super().forward(x, first_token(tokens))
        if self.has_residual:
            out = out + x
        return self.global_local(out, tokens), tokens
