"""How close a quantized model is to its float original."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .timing import phase


def sqnr(reference: torch.Tensor, test: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio in dB: ``10 log10(|ref|^2 / |ref - test|^2)``.

    ``inf`` when the two are identical.
    """
    reference, test = reference.detach().float(), test.detach().float()
    noise = (reference - test).pow(2).sum().item()
    signal = reference.pow(2).sum().item()
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def top1_agreement(reference_logits: torch.Tensor, test_logits: torch.Tensor) -> float:
    """Fraction of rows whose arg-max class is the same in both."""
    return (reference_logits.argmax(-1) == test_logits.argmax(-1)).float().mean().item()


def validation_record(reference_logits: torch.Tensor, test_logits: torch.Tensor,
                      quantized_logits: torch.Tensor | None = None) -> dict:
    """What every backend's host validation records: an artifact's logits against the fp32
    network's, and against the PT2E int8 graph's (``quantized_logits``; fp32 exports: the fp32 ones)."""
    pt2e = reference_logits if quantized_logits is None else quantized_logits
    return {"images": len(reference_logits),
            "max_abs_diff_vs_fp32": float((test_logits - reference_logits).abs().max()),
            "sqnr_db_vs_fp32": sqnr(reference_logits, test_logits),
            "top1_agreement_vs_fp32": top1_agreement(reference_logits, test_logits),
            "sqnr_db_vs_pytorch_quantized": sqnr(pt2e, test_logits)}


@torch.no_grad()
def logits_of(model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """``model`` (PyTorch, or an artifact on its host runtime) run on ``images`` one at a time, as a phone runs it."""
    return torch.cat([model(x) for x in images.split(1)])


def compare_logits(artifact_logits: torch.Tensor, reference: torch.nn.Module, quantized: torch.nn.Module | None,
                   images: torch.Tensor) -> dict:
    """The validation record of an artifact's logits on ``images`` against the fp32 ``reference``
    and the PT2E ``quantized`` graph (``None`` for an fp32 export)."""
    with phase("PT2E logits"):
        pt2e = logits_of(quantized, images) if quantized is not None else None
    with phase("fp32 logits"):
        reference_logits = logits_of(reference, images)
    return validation_record(reference_logits, artifact_logits, pt2e)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs of a paired comparison.

    ``only_a``: items model A got right and B wrong; ``only_b``: the reverse. Under "the two
    are equally accurate" each discordant item is a fair coin, so the p-value is a binomial tail.
    """
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
