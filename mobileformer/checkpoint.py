"""Loading weights from the shapes real checkpoints come in.

Accepted: a bare state_dict; ``{"state_dict" | "model" | "state_dict_ema" | "model_ema": ...}``
(timm, DeiT, our own QAT checkpoints); keys prefixed ``module.`` (DDP) or ``_orig_mod.``
(torch.compile); ``.pth``/``.pt``/``.bin`` (torch) and ``.safetensors`` files.

What is loaded is checked: every number finite (a diverged run's NaN weights would give
"results" that mean nothing), and each tensor of the kind the model holds. Floating-point
tensors of any width (f16, bf16, f64) are cast to the model's dtype; integer, bool or complex
tensors where the model holds floats (or floats where it counts) are refused, never cast.
"""
from __future__ import annotations

import argparse
import logging
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .cli import UserError

log = logging.getLogger("mobileformer")

_WRAPPER_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")
_PREFIXES = ("module.", "_orig_mod.")
CLASSIFIER_KEYS = ("classifier.classifier.1.weight", "classifier.classifier.1.bias")


class CheckpointError(UserError):
    """A checkpoint that cannot be read or does not fit the model."""


def _read_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except SafetensorError as e:
        raise ValueError(str(e)) from None


def read_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint file into a plain dict, with one clear error for anything wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            return _read_safetensors(path)
        # timm's saver stores the training args as an argparse.Namespace.
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError,
            IndexError, TypeError, AttributeError, MemoryError, RecursionError) as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {load_error_text(e)}") from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, not a state_dict")
    return dict(obj)


def load_error_text(error: BaseException) -> str:
    """What went wrong reading a file with ``torch.load(weights_only=True)``, in one line, without
    torch's advice to retry with ``weights_only=False`` (that would run whatever the file holds)."""
    text = str(error).strip()
    if "Weights only load failed" in text:
        return "it holds Python objects other than tensors and plain data, which are never unpickled (unsafe)"
    return text.splitlines()[0] if text else type(error).__name__


def check_finite(state: Mapping[str, torch.Tensor], where: str) -> None:
    """Refuse NaN or infinite weights: a model made of them computes nothing."""
    bad = [k for k, v in state.items() if isinstance(v, torch.Tensor) and (v.is_floating_point() or v.is_complex())
           and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{where} holds NaN or infinite values in {len(bad)} tensor(s): {_summarise(bad)} "
                              "(a diverged training run?)")


def check_dtypes(model: nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Each tensor of the kind the model holds: floats for floats (any width, cast), integers for integers."""
    own = model.state_dict()
    bad = [f"{k} {v.dtype}" for k, v in state.items()
           if k in own and (v.is_floating_point() != own[k].is_floating_point() or v.is_complex() or v.dtype == torch.bool)]
    if bad:
        raise CheckpointError(f"{where} holds tensors of another kind than the model's (integer, bool or complex "
                              f"where it holds floats, or the reverse): {_summarise(bad)}")


def checkpoint_filter_fn(checkpoint: Mapping, prefer_ema: bool = False) -> dict[str, torch.Tensor]:
    """Unwrap a checkpoint to a state_dict with our keys. Safe to run twice (idempotent)."""
    order = _WRAPPER_KEYS[2:] + _WRAPPER_KEYS[:2] if prefer_ema else _WRAPPER_KEYS
    state = checkpoint
    for key in order:
        if isinstance(state.get(key), Mapping):
            state = state[key]
            break
    out = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def _summarise(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def match_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor]) -> tuple[list, list, list]:
    """(missing, unexpected, mis-shaped) keys of ``state`` against ``model``."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [
        f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    return missing, unexpected, misshaped


def _guess_variant(state: Mapping[str, torch.Tensor]) -> str | None:
    """Which registered variant has exactly these keys and shapes, if any."""
    from .config import VARIANTS
    from .model import MobileFormer

    classes = state[CLASSIFIER_KEYS[0]].shape[0] if CLASSIFIER_KEYS[0] in state else 1000
    for name, cfg in VARIANTS.items():
        with torch.device("meta"):
            candidate = MobileFormer(cfg, num_classes=classes)
        if not any(match_state_dict(candidate, state)):
            return name
    return None


def checkpoint_num_classes(path: str | Path) -> int | None:
    """The classifier size stored in a checkpoint, if it has one."""
    weight = checkpoint_filter_fn(read_checkpoint(path)).get(CLASSIFIER_KEYS[0])
    if weight is not None and weight.dim() != 2:
        raise CheckpointError(f"checkpoint {path}: {CLASSIFIER_KEYS[0]} has shape {tuple(weight.shape)}, "
                              "not (classes, features)")
    return int(weight.shape[0]) if weight is not None else None


def load_checkpoint(model: nn.Module, path: str | Path, prefer_ema: bool = False) -> None:
    """Load ``path`` into ``model`` strictly; only the classifier may be re-initialised.

    The classifier is re-initialised, with a logged message, when the checkpoint was
    trained for a different number of classes than ``model`` has.
    """
    state = checkpoint_filter_fn(read_checkpoint(path), prefer_ema=prefer_ema)
    if not state:
        raise CheckpointError(f"checkpoint {path} holds no tensors")
    own = model.state_dict()
    ckpt_w = state.get(CLASSIFIER_KEYS[0])
    if ckpt_w is not None and ckpt_w.dim() == 2 and ckpt_w.shape[0] != own[CLASSIFIER_KEYS[0]].shape[0]:
        log.warning(
            "checkpoint %s has %d classes, model has %d: classifier re-initialised",
            path, ckpt_w.shape[0], own[CLASSIFIER_KEYS[0]].shape[0],
        )
        state = {k: v for k, v in state.items() if k not in CLASSIFIER_KEYS}
        state.update({k: own[k] for k in CLASSIFIER_KEYS})
    check_finite(state, f"checkpoint {path}")
    missing, unexpected, misshaped = match_state_dict(model, state)
    if missing or unexpected or misshaped:
        lines = [f"checkpoint {path} does not fit {getattr(getattr(model, 'cfg', None), 'name', 'the model')}:"]
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
            if keys:
                lines.append(f"  {len(keys)} {label} keys: {_summarise(keys)}")
        guess = _guess_variant(state)
        if guess:
            lines.append(f"  it matches {guess}: build that variant instead")
        raise CheckpointError("\n".join(lines))
    check_dtypes(model, state, f"checkpoint {path}")
    model.load_state_dict(state, strict=True)
