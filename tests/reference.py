"""The golden-vector recipe of ``shared/reference/README.md``: weights from key names alone."""
from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import torch

# A copy of shared/reference (made from the authors' code), kept here so that CI needs nothing else.
REFERENCE_DIR = Path(__file__).resolve().parent / "golden"


def reference_state_dict(shapes: dict[str, list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic weights for every key, as the reference README prescribes."""
    out = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        g = torch.Generator().manual_seed((zlib.crc32(key.encode()) + seed) & 0x7FFFFFFF)
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            out[key] = torch.tensor(0)
        elif leaf == "running_var":
            out[key] = 0.5 + torch.rand(shape, generator=g)
        elif leaf == "running_mean":
            out[key] = 0.1 * torch.randn(shape, generator=g)
        elif len(shape) >= 2:
            out[key] = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
        elif leaf == "weight":
            out[key] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            out[key] = 0.1 * torch.randn(shape, generator=g)
    return out


def reference_keys(variant: str) -> dict:
    """``{"variant", "params", "state_dict": {key: shape}}`` of the authors' model."""
    return json.loads((REFERENCE_DIR / f"mobile_former_{variant}.keys.json").read_text())


def reference_input(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))
