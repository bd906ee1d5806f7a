"""The Mobile-Former family as data: one row per block, one config per variant.

The numbers are those of the authors' model definitions (AAboys/MobileFormer,
``mobile_former.py``); the network in :mod:`mobileformer.model` is built from
nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BlockKind = Literal["bneck-lite", "down", "block"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BlockRow:
    """One row of the architecture table.

    ``bneck-lite``: MicroNet's dw3x3 -> pw bottleneck on the stem output, no tokens.
    ``down``: a Mobile-Former block whose Mobile sub-block is dw -> pw -> dw -> pw,
    used where the feature map is downsampled (stride 2).
    ``block``: a Mobile-Former block whose Mobile sub-block is the inverted residual
    pw -> dw -> pw.
    """

    kind: BlockKind
    expansion: int  # first expansion (hidden = in_channels * expansion)
    out_channels: int
    stride: int
    expansion2: int = 0  # ``down`` only: hidden of its second dw = out_channels * expansion2


@dataclass(frozen=True)
class VariantConfig:
    """Everything that tells one Mobile-Former variant from another."""

    name: str
    stem_channels: int
    blocks: tuple[BlockRow, ...]
    token_num: int
    token_dim: int
    head_features: int  # width of the classifier's hidden fc layer
    paper_madds_m: int  # the "26m" in the name: MAdds at 224x224, in millions
    paper_params_m: float  # parameters in the paper's table, in millions
    groups: int = 1  # groups of the pointwise convs (26m: 4, with channel shuffles)
    bridge_heads: int = 2  # heads of Mobile->Former and Former->Mobile
    former_heads: int = 4  # heads of the Former's self-attention
    hyper_reduction: int = 4  # squeeze ratio of DyReLU's hyper-function
    ffn_expansion: int = 2
    head_expansion: int = 6
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def _rows(*rows: tuple) -> tuple[BlockRow, ...]:
    return tuple(BlockRow(*row) for row in rows)


# kind, expansion, out_channels, stride[, expansion2]
_TRUNK_26M_52M = _rows(
    ("bneck-lite", 3, 12, 2),
    ("block", 3, 12, 1),
    ("down", 6, 24, 2, 4), ("block", 3, 24, 1),
    ("down", 6, 48, 2, 4), ("block", 4, 48, 1), ("block", 6, 64, 1),
    ("down", 6, 96, 2, 4), ("block", 6, 96, 1),
)

VARIANTS: dict[str, VariantConfig] = {
    cfg.name: cfg
    for cfg in (
        VariantConfig(
            "mobile_former_26m", stem_channels=8, blocks=_TRUNK_26M_52M, token_num=3, token_dim=128,
            head_features=1024, paper_madds_m=26, paper_params_m=3.2, groups=4,
        ),
        VariantConfig(
            "mobile_former_52m", stem_channels=8, blocks=_TRUNK_26M_52M, token_num=3, token_dim=128,
            head_features=1024, paper_madds_m=52, paper_params_m=3.5,
        ),
        VariantConfig(
            "mobile_former_96m", stem_channels=12, token_num=4, token_dim=128, head_features=1280,
            paper_madds_m=96, paper_params_m=4.6,
            blocks=_rows(
                ("bneck-lite", 2, 12, 1),
                ("down", 6, 16, 2, 4),
                ("down", 6, 32, 2, 4), ("block", 3, 32, 1),
                ("down", 6, 64, 2, 4), ("block", 4, 64, 1), ("block", 6, 88, 1),
                ("down", 6, 128, 2, 4), ("block", 6, 128, 1),
            ),
        ),
        VariantConfig(
            "mobile_former_151m", stem_channels=12, token_num=6, token_dim=192, head_features=1280,
            paper_madds_m=151, paper_params_m=7.6,
            blocks=_rows(
                ("bneck-lite", 2, 12, 1),
                ("down", 6, 16, 2, 4), ("block", 3, 16, 1),
                ("down", 6, 32, 2, 4), ("block", 3, 32, 1),
                ("down", 6, 64, 2, 4), ("block", 4, 64, 1), ("block", 6, 88, 1), ("block", 6, 88, 1),
                ("down", 6, 128, 2, 4), ("block", 6, 128, 1), ("block", 6, 128, 1),
            ),
        ),
        VariantConfig(
            "mobile_former_214m", stem_channels=12, token_num=6, token_dim=192, head_features=1600,
            paper_madds_m=214, paper_params_m=9.4,
            blocks=_rows(
                ("bneck-lite", 2, 12, 1),
                ("down", 6, 20, 2, 4), ("block", 3, 20, 1),
                ("down", 6, 40, 2, 4), ("block", 4, 40, 1),
                ("down", 6, 80, 2, 4), ("block", 4, 80, 1), ("block", 6, 112, 1), ("block", 6, 112, 1),
                ("down", 6, 160, 2, 4), ("block", 6, 160, 1), ("block", 6, 160, 1),
            ),
        ),
        VariantConfig(
            "mobile_former_294m", stem_channels=16, token_num=6, token_dim=192, head_features=1920,
            paper_madds_m=294, paper_params_m=11.4,
            blocks=_rows(
                ("bneck-lite", 2, 16, 1),
                ("down", 6, 24, 2, 4), ("block", 4, 24, 1),
                ("down", 6, 48, 2, 4), ("block", 4, 48, 1),
                ("down", 6, 96, 2, 4), ("block", 4, 96, 1), ("block", 6, 128, 1), ("block", 6, 128, 1),
                ("down", 6, 192, 2, 4), ("block", 6, 192, 1), ("block", 6, 192, 1),
            ),
        ),
        VariantConfig(
            "mobile_former_508m", stem_channels=24, token_num=6, token_dim=192, head_features=1920,
            paper_madds_m=508, paper_params_m=14.0,
            blocks=_rows(
                ("bneck-lite", 2, 24, 1),
                ("down", 6, 40, 2, 4), ("block", 3, 40, 1),
                ("down", 6, 72, 2, 4), ("block", 3, 72, 1),
                ("down", 6, 128, 2, 4), ("block", 4, 128, 1), ("block", 6, 176, 1), ("block", 6, 176, 1),
                ("down", 6, 240, 2, 4), ("block", 6, 240, 1), ("block", 6, 240, 1),
            ),
        ),
    )
}
