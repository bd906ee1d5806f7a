"""The Mobile-Former network: stem, bottleneck-lite, Mobile-Former blocks, head."""
from __future__ import annotations

import math

import torch
from torch import nn

from .block import MobileFormerBlock
from .bridges import Mobile2Former
from .config import VariantConfig
from .layers import conv_bn, first_token, shuffle
from .mobile import BottleneckLite


class MobileFormerHead(nn.Module):
    """Pool the features, concatenate the first token, classify.

    pw conv (x6) -> ReLU6 -> global average pool -> h-swish, cat token 0,
    fc -> BN -> h-swish -> dropout -> linear.
    """

    def __init__(self, in_channels: int, cfg: VariantConfig, num_classes: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        hidden = in_channels * cfg.head_expansion
        self.conv = nn.Sequential(shuffle(cfg.groups, cfg.groups > 1), *conv_bn(in_channels, hidden, 1, groups=cfg.groups))
        self.act = nn.ReLU6()
        self.avgpool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Hardswish())
        self.fc = nn.Sequential(
            nn.Linear(hidden + cfg.token_dim, cfg.head_features), nn.BatchNorm1d(cfg.head_features), nn.Hardswish()
        )
        self.classifier = nn.Sequential(nn.Dropout(drop_rate), nn.Linear(cfg.head_features, num_classes))

    def forward(self, x: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        pooled = self.avgpool(self.act(self.conv(x))).flatten(1)
        return self.classifier(self.fc(torch.cat([pooled, token], dim=1)))


class MobileFormer(nn.Module):
    """Mobile-Former (Chen et al., CVPR 2022), state_dict-compatible with the authors' checkpoints.

    Tokens are kept batch-first, ``[B, T, D]``.
    """

    def __init__(self, cfg: VariantConfig, num_classes: int = 1000, drop_rate: float = 0.0) -> None:
        super().__init__()
        rows = cfg.blocks
        if rows[0].kind != "bneck-lite" or any(r.kind == "bneck-lite" for r in rows[1:]):
            raise ValueError(f"{cfg.name}: the first row, and only it, must be the bneck-lite")
        self.cfg = cfg
        self.num_classes = num_classes
        self.tokens = nn.Embedding(cfg.token_num, cfg.token_dim)
        self.stem = nn.Sequential(*conv_bn(3, cfg.stem_channels, 3, stride=2), nn.ReLU6())
        blocks: list[nn.Module] = [BottleneckLite(cfg.stem_channels, rows[0], cfg.groups)]
        channels = rows[0].out_channels
        for row in rows[1:]:
            blocks.append(MobileFormerBlock(channels, row, cfg))
            channels = row.out_channels
        self.features = nn.ModuleList(blocks)
        self.local_global = Mobile2Former(channels, cfg.token_dim, cfg.bridge_heads)
        self.classifier = MobileFormerHead(channels, cfg, num_classes, drop_rate)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The authors' initialisation (He-normal convs, N(0, 0.01) linears, unit BN)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Image ``[B, 3, H, W]`` -> (last feature map, tokens after the last bridge)."""
        tokens = self.tokens.weight.reshape(1, *self.tokens.weight.shape)  # a view: XNNPACK takes it in
        if x.shape[0] != 1:  # one image (the phone's case, exported) needs no expand, which XNNPACK lacks
            tokens = tokens.expand(x.shape[0], -1, -1)
        x = self.features[0](self.stem(x))
        for block in self.features[1:]:
            x, tokens = block(x, tokens)
        return x, self.local_global(x, tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, tokens = self.forward_features(x)
        return self.classifier(x, first_token(tokens))

    def paper_blocks(self) -> list[tuple[str, tuple[str, ...]]]:
        """(paper name, module prefixes) for every part of the network, in execution order.

        Names follow the paper: ``stem``, ``bneck-lite``, ``block i: mobile→former``,
        ``block i: former``, ``block i: mobile``, ``block i: former→mobile``, ``head``.
        The Mobile sub-block owns the block's top-level layers (prefix ``features.i``);
        ``head`` includes the last Mobile→Former bridge (``local_global``).
        """
        parts: list[tuple[str, tuple[str, ...]]] = [("stem", ("stem", "tokens")), ("bneck-lite", ("features.0",))]
        for i in range(1, len(self.features)):
            p = f"features.{i}"
            parts += [
                (f"block {i}: mobile→former", (f"{p}.local_global",)),
                (f"block {i}: former", (f"{p}.global_block",)),
                (f"block {i}: mobile", (p,)),
                (f"block {i}: former→mobile", (f"{p}.global_local",)),
            ]
        return parts + [("head", ("local_global", "classifier"))]

    def paper_block(self, module_path: str) -> str:
        """The paper block a module path (e.g. ``features.3.global_block.q``) belongs to."""
        best, best_len = "", -1
        for name, prefixes in self.paper_blocks():
            for prefix in prefixes:
                if (module_path == prefix or module_path.startswith(prefix + ".")) and len(prefix) > best_len:
                    best, best_len = name, len(prefix)
        if best_len < 0:
            raise KeyError(f"{module_path!r} is not part of {self.cfg.name}")
        return best
