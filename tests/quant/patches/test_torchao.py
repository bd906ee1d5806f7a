"""The fast HistogramObserver range search returns exactly what torchao's returns."""
import pytest
import torch
from torchao.quantization.pt2e.observer import HistogramObserver

from quant.patches.torchao import fast_histogram_search, non_linear_param_search


def _observer(*batches: torch.Tensor) -> HistogramObserver:
    observer = HistogramObserver(dtype=torch.int8, quant_min=-128, quant_max=127)
    for x in batches:
        observer(x)
    return observer


CASES = {
    "normal": lambda g: [torch.randn(4096, generator=g)],
    "heavy tails": lambda g: [torch.randn(4096, generator=g) ** 3],
    "after relu": lambda g: [torch.relu(torch.randn(2000, generator=g))],
    "one outlier": lambda g: [torch.cat([torch.rand(1000, generator=g), torch.tensor([80.0])])],
    "spike": lambda g: [torch.full((100,), 0.5), torch.tensor([0.0, 1.0])],
    "ranges widen": lambda g: [torch.randn(500, generator=g) * s for s in (0.1, 1.0, 7.0)],
    "skewed": lambda g: [torch.distributions.Exponential(3.0).sample((3000,))],
    # A million values: one step of the bounds (1e-5 of the count) crosses several tail bins.
    "many values, sparse tails": lambda g: [torch.randn(1_000_000, generator=g) ** 3],
}


def _search_recording_candidates(search, observer: HistogramObserver) -> tuple[tuple, list]:
    """The range found, and every (start bin, end bin) whose error the search computed."""
    candidates = []
    compute = observer._compute_quantization_error

    def recording(start: int, end: int) -> float:
        candidates.append((start, end))
        return compute(start, end)

    observer._compute_quantization_error = recording
    try:
        return search(observer), candidates
    finally:
        del observer._compute_quantization_error


def _crafted(gap_bin_count: int) -> HistogramObserver:
    """A histogram whose walk has a long run of idle steps ending on a bin smaller than
    one step: where skipping one step too many or too few changes the walk."""
    observer = _observer(torch.tensor([0.0, 1.0]))
    histogram = torch.zeros(observer.bins)
    histogram[:1500] = 400.0
    histogram[-7] = gap_bin_count
    histogram[-6] = 5000.0  # crossing it takes ~800 idle steps of the upper bound
    histogram[-1] = 1.0
    observer.histogram = histogram
    return observer


@pytest.mark.parametrize("case", sorted(CASES) + [f"crafted {n}" for n in (1, 3, 7)])
@pytest.mark.parametrize("seed", range(3))
def test_same_walk_and_range_as_torchao(case: str, seed: int) -> None:
    if case.startswith("crafted"):
        observer = _crafted(int(case.split()[1]) + seed)
    else:
        observer = _observer(*CASES[case](torch.Generator().manual_seed(seed)))
    expected, expected_walk = _search_recording_candidates(HistogramObserver._non_linear_param_search, observer)
    got, walk = _search_recording_candidates(non_linear_param_search, observer)
    assert walk == expected_walk and len(walk) > 0
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_context_swaps_the_search_in_and_out() -> None:
    observer = _observer(torch.randn(1000, generator=torch.Generator().manual_seed(0)))
    original = HistogramObserver._non_linear_param_search
    expected = observer.calculate_qparams()
    with fast_histogram_search():
        assert HistogramObserver._non_linear_param_search is non_linear_param_search
        got = observer.calculate_qparams()
    assert HistogramObserver._non_linear_param_search is original
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
