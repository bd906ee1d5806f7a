"""The slow-by-fixture rule of tests/conftest.py is written where a test author sees it: `pytest --markers`."""
import re
import tomllib
from pathlib import Path

from tests.conftest import SLOW_FIXTURES

ROOT = Path(__file__).resolve().parents[1]


def test_every_slow_fixture_is_named_in_the_slow_markers_description():
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    (slow,) = [m for m in markers if m.startswith("slow:")]
    listed = set(re.search(r"SLOW_FIXTURES \(([^)]*)\)", slow).group(1).split(", "))
    assert listed == SLOW_FIXTURES
