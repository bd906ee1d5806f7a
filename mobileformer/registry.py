"""The model registry: ``create_model(name)``, ``list_models()``."""
from __future__ import annotations

import difflib
from pathlib import Path

from .checkpoint import load_checkpoint
from .cli import UserError
from .config import VARIANTS, VariantConfig
from .model import MobileFormer


class UnknownModelError(UserError):
    """Raised for a model name that is not in the registry."""


def list_models() -> list[str]:
    """Names of every registered variant, smallest first."""
    return sorted(VARIANTS, key=lambda n: VARIANTS[n].paper_madds_m)


def get_config(name: str) -> VariantConfig:
    """The config of a variant; a clear error naming the valid ones otherwise."""
    if name in VARIANTS:
        return VARIANTS[name]
    short = f"mobile_former_{name}"  # accept the paper's short names, e.g. "26m"
    if short in VARIANTS:
        return VARIANTS[short]
    hint = difflib.get_close_matches(name, list_models(), n=1)
    did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
    raise UnknownModelError(f"unknown model {name!r}.{did_you_mean} Valid names: {', '.join(list_models())}")


def create_model(
    name: str,
    num_classes: int = 1000,
    checkpoint: str | Path | None = None,
    drop_rate: float = 0.0,
) -> MobileFormer:
    """Build a variant, optionally loading weights (authors' or ours) from ``checkpoint``.

    With ``num_classes != 1000`` and an ImageNet checkpoint the classifier is
    re-initialised (and a message says so); every other mismatch is an error.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    model = MobileFormer(get_config(name), num_classes=num_classes, drop_rate=drop_rate)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model.eval()
