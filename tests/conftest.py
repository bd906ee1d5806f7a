"""Shared fixtures: a tiny registered variant for fast end-to-end tests; and the one rule that marks tests slow
without a marker in their file: a test that uses a fixture of :data:`SLOW_FIXTURES` (they export, train or
build) is ``slow`` (listed in the marker's description too: ``pytest --markers``)."""
from __future__ import annotations

import dataclasses

import pytest

import mobileformer as mf
from mobileformer.config import VARIANTS, BlockRow, VariantConfig
from quant.export import main as export_main

TINY = VariantConfig(
    "mobile_former_tiny", stem_channels=8, token_num=3, token_dim=32, head_features=64, paper_madds_m=1,
    paper_params_m=0.1, input_size=64,
    blocks=(BlockRow("bneck-lite", 2, 8, 1), BlockRow("down", 4, 16, 2, 2), BlockRow("block", 3, 16, 1)),
)
# 26m's structure in small: grouped pointwise convs with channel shuffles (groups=4), the ops
# that the other variants lack, so that whole-graph checks need not lower 26m itself.
TINY_GROUPED = dataclasses.replace(TINY, name="mobile_former_tiny_grouped", groups=4)


@pytest.fixture
def tiny_variant(monkeypatch) -> str:
    """``mobile_former_tiny``: three blocks at 64x64, registered for the duration of a test."""
    monkeypatch.setitem(VARIANTS, TINY.name, TINY)
    return TINY.name


@pytest.fixture(scope="session")
def tiny_model_factory():
    def make(num_classes: int = 10, grouped: bool = False):
        return mf.MobileFormer(TINY_GROUPED if grouped else TINY, num_classes=num_classes).eval()

    return make


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory):
    """int8 (ours), int8 with one delegate per block, and fp32 exports of the tiny variant."""
    out = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(VARIANTS, TINY.name, TINY)
        common = ["--backend", "xnnpack", "--model", TINY.name, "--calib-images", "8", "--out", str(out), "--no-progress"]
        assert export_main(common) == 0
        assert export_main(common + ["--profile-blocks"]) == 0
        assert export_main(common + ["--precision", "fp32"]) == 0
    return out


INT8, BLOCKS, FP32 = (f"mobile_former_tiny_xnnpack_{kind}" for kind in ("int8", "int8_blocks", "fp32"))


@pytest.fixture(scope="session")
def bench_results(tiny_exports, tmp_path_factory):
    """quant.bench's results of the three tiny exports (5 rounds)."""
    from quant.bench import main as bench_main

    out = tmp_path_factory.mktemp("bench")
    argv = [str(tiny_exports / f"{n}.pte") for n in (FP32, INT8, BLOCKS)]
    assert bench_main(argv + ["--iterations", "5", "--warmup", "2", "--out", str(out)]) == 0
    return out


# Fixtures that export, train or build: a test that uses one is part of the slow set, which
# `pytest -m "not slow"` (the everyday subset, README) leaves out and `make test` runs.
SLOW_FIXTURES = {"tiny_exports", "bench_results", "ten_class_pte", "float_checkpoint", "toys", "classpath", "mfbench",
                 "mfbench_no_tracer"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
