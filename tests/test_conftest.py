"""tests/conftest.py: the slow-by-fixture rule is written where a test author sees it (`pytest --markers`), and
under pytest-xdist a session's export is made once for both workers."""
import re
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import SLOW_FIXTURES, made_once

ROOT = Path(__file__).resolve().parents[1]


def test_every_slow_fixture_is_named_in_the_slow_markers_description():
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    (slow,) = [m for m in markers if m.startswith("slow:")]
    listed = set(re.search(r"SLOW_FIXTURES \(([^)]*)\)", slow).group(1).split(", "))
    assert listed == SLOW_FIXTURES


class _Worker:
    """A pytest-xdist worker's tmp_path_factory, as made_once uses it: its basetemp is inside the run's folder."""

    def __init__(self, run: Path, name: str):
        self.base = run / name

    def getbasetemp(self) -> Path:
        return self.base


def test_a_folder_is_made_by_one_worker_and_reused_by_the_other(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    makers = []

    def make(out: Path) -> None:
        makers.append(out)
        time.sleep(0.2)  # the other worker asks meanwhile
        (out / "made").write_text("")

    with ThreadPoolExecutor(2) as pool:
        folders = list(pool.map(lambda name: made_once(_Worker(tmp_path, name), "thing", make), ["gw0", "gw1"]))
    assert folders == [tmp_path / "thing"] * 2 and len(makers) == 1
    assert (tmp_path / "thing" / "made").is_file()


def test_what_a_failed_worker_left_is_made_again(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")

    def fail(out: Path) -> None:
        (out / "half").write_text("")
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError):
        made_once(_Worker(tmp_path, "gw0"), "thing", fail)
    folder = made_once(_Worker(tmp_path, "gw1"), "thing", lambda out: (out / "made").write_text(""))
    assert sorted(p.name for p in folder.iterdir()) == ["made"]
