"""torchao's patch (speed): a faster, exact ``HistogramObserver`` range search for PTQ's convert step.

torchao's ``HistogramObserver._non_linear_param_search`` walks the quantile bounds in
steps of 1e-5 in a Python loop that indexes a tensor at every step: about 10 ms per
activation, 8 s of the 26m int8 export's 21 s of quantization (1,004 observers). This is
the same walk, with the runs of steps that move no bin skipped in one array search. A
tensor-vs-Python-float comparison runs in the tensor's dtype (float32), so the bounds are
rounded to float32 first: the walk takes the same steps, and the error it minimises is
computed by torchao's own code, so the ranges are identical
(``tests/quant/patches/test_torchao.py``).
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch
from torchao.quantization.pt2e.observer import HistogramObserver

from . import SPEED, scoped_patches

STEP = 1e-5  # torchao's granularity
STEPS = 100_002  # alpha + beta cover [0, 1] in 1e5 steps of STEP
PINNED = {"torchao": "0.18.0"}  # the release the search was written and checked against


@functools.cache
def _bounds() -> tuple[np.ndarray, np.ndarray]:
    """Every value torchao's loop gives alpha (0, +STEP, ...) and beta (1, -STEP, ...).

    ``np.cumsum`` adds sequentially, so these are the same doubles as the loop's.
    """
    alpha = np.cumsum(np.r_[0.0, np.full(STEPS, STEP)])
    beta = np.cumsum(np.r_[1.0, np.full(STEPS, -STEP)])
    return alpha, beta


def non_linear_param_search(observer: HistogramObserver) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop-in for ``HistogramObserver._non_linear_param_search``, same result.

    torchao's loop takes one step of alpha or beta per iteration, and almost every
    step moves neither bin (only beta moves, while no bin's count crosses its bound).
    Those runs are skipped in one search over the precomputed bounds.
    """
    assert observer.histogram.size()[0] == observer.bins, "bins mismatch"
    bin_width = (observer.max_val - observer.min_val) / observer.bins
    total = torch.sum(observer.histogram).item()
    cumulative = torch.cumsum(observer.histogram, dim=0).tolist()  # float32 values, exactly
    alpha, beta = _bounds()
    # A float32 tensor compared with a Python float compares in float32.
    low = (alpha * total).astype(np.float32).astype(np.float64)
    high = (beta * total).astype(np.float32).astype(np.float64)
    a = b = 0  # alpha = alpha[a], beta = beta[b]
    start_bin, end_bin = 0, observer.bins - 1
    norm_min = float("inf")
    while alpha[a] < beta[b]:
        left, right = start_bin, end_bin
        while left < end_bin and cumulative[left] < low[a + 1]:
            left += 1
        while right > start_bin and cumulative[right] > high[b + 1]:
            right -= 1
        if (left - start_bin) > (end_bin - right):
            a, next_start_bin, next_end_bin = a + 1, left, end_bin
        else:
            b, next_start_bin, next_end_bin = b + 1, start_bin, right
        if next_start_bin == start_bin and next_end_bin == end_bin:
            b = _skip_idle_steps(alpha[a], beta, high, b, cumulative[end_bin] if end_bin > start_bin else None)
            continue
        norm = observer._compute_quantization_error(next_start_bin, next_end_bin)
        if norm > norm_min:
            break
        norm_min, start_bin, end_bin = norm, next_start_bin, next_end_bin
    return observer.min_val + bin_width * start_bin, observer.min_val + bin_width * (end_bin + 1)


def _skip_idle_steps(alpha: float, beta: np.ndarray, high: np.ndarray, b: int, end_count: float | None) -> int:
    """The first beta index from ``b`` at which the loop ends or the end bin moves.

    The left bound is unchanged, so the loop steps only beta until ``alpha < beta``
    fails or the end bin's count rises above the upper bound (never, when the end bin
    is the start bin).
    """
    ends = np.flatnonzero(~(alpha < beta[b:]))
    stop = b + int(ends[0]) if len(ends) else len(beta) - 1
    if end_count is not None:
        moves = np.flatnonzero(end_count > high[b + 1:stop + 1])
        if len(moves):
            stop = min(stop, b + int(moves[0]))
    return stop


def fast_histogram_search() -> contextlib.AbstractContextManager[bool]:
    """Within it, every ``HistogramObserver`` uses :func:`non_linear_param_search` (see :mod:`quant.patches`)."""
    patch = (HistogramObserver, "_non_linear_param_search", lambda _: non_linear_param_search, SPEED)
    return scoped_patches([patch], PINNED)
