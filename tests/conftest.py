"""Shared fixtures: a tiny registered variant for fast end-to-end tests; and the one rule that marks tests slow
without a marker in their file: a test that uses a fixture of :data:`SLOW_FIXTURES` (they export, train or
build) is ``slow`` (listed in the marker's description too: ``pytest --markers``)."""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

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


def made_once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """A folder that ``make`` fills, made once per test run: by the session alone, or under pytest-xdist by
    the first worker that needs it, in the run's shared temp folder under a file lock (the others wait,
    then reuse it), so that both workers of ``make test`` do not each export the same thing."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        out = tmp_path_factory.mktemp(name)
        make(out)
        return out
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent  # the run's folder; each worker's basetemp is inside
    out, done = shared / name, shared / f"{name}.done"
    with FileLock(shared / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)  # what a worker that failed to make it left
            out.mkdir()
            make(out)
            done.touch()
    return out


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory):
    """int8 (ours), int8 with one delegate per block, and fp32 exports of the tiny variant."""
    return made_once(tmp_path_factory, "export", _export_tiny)


def _export_tiny(out: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(VARIANTS, TINY.name, TINY)
        common = ["--backend", "xnnpack", "--model", TINY.name, "--calib-images", "8", "--out", str(out), "--no-progress"]
        assert export_main(common) == 0
        assert export_main(common + ["--profile-blocks"]) == 0
        assert export_main(common + ["--precision", "fp32"]) == 0


INT8, BLOCKS, FP32 = (f"mobile_former_tiny_xnnpack_{kind}" for kind in ("int8", "int8_blocks", "fp32"))


@dataclasses.dataclass(frozen=True)
class Exported:
    """An export's artifact, and what the command printed on stdout and stderr."""

    artifact: Path
    out: str
    err: str


@pytest.fixture(scope="session")
def ten_class_exports(tmp_path_factory):
    """backend -> the tiny variant's int8 export for it with a 10-class head (the class count of 'digits'),
    4 calibration images: made on first use, once per session, for every test module that needs one."""
    made: dict[str, Exported] = {}

    def export(backend: str) -> Exported:
        if backend not in made:
            folder = made_once(tmp_path_factory, f"ten_{backend}", functools.partial(_export_ten_classes, backend))
            out = folder / "export"
            (manifest,) = out.glob("*.manifest.json")
            artifact = out / json.loads(manifest.read_text())["artifact"]
            made[backend] = Exported(artifact, *((folder / f"{name}.txt").read_text() for name in ("out", "err")))
        return made[backend]

    return export


def _export_ten_classes(backend: str, folder: Path) -> None:
    """The export into ``folder/export``; what it printed on stdout and stderr beside it (out.txt, err.txt)."""
    out = folder / "export"
    argv = ["--backend", backend, "--model", TINY.name, "--num-classes", "10", "--calib-images", "4",
            "--out", str(out), "--no-progress"]
    printed, errors = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors):
        mp.setitem(VARIANTS, TINY.name, TINY)
        code = export_main(argv)
    assert code == 0, errors.getvalue()[-2000:]
    (folder / "out.txt").write_text(printed.getvalue())
    (folder / "err.txt").write_text(errors.getvalue())


@pytest.fixture(scope="session")
def bench_results(tiny_exports, tmp_path_factory):
    """quant.bench's results of the three tiny exports (5 rounds)."""
    from quant.bench import main as bench_main

    argv = [str(tiny_exports / f"{n}.pte") for n in (FP32, INT8, BLOCKS)]

    def bench(out: Path) -> None:
        assert bench_main(argv + ["--iterations", "5", "--warmup", "2", "--out", str(out)]) == 0

    return made_once(tmp_path_factory, "bench", bench)


# Fixtures that export, train or build: a test that uses one is part of the slow set, which
# `pytest -m "not slow"` (the everyday subset, README) leaves out and `make test` runs.
SLOW_FIXTURES = {"tiny_exports", "bench_results", "ten_class_exports", "float_checkpoint", "toys", "classpath",
                 "mfbench", "mfbench_no_tracer"}


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test``: one worker per core) each worker computes on one thread, it and
    the programs it starts, so that the workers do not take each other's cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
        os.environ["OMP_NUM_THREADS"] = "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
