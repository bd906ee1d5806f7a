"""Tests mirror the layout: every module of quant/ has a test file of its own where its path says."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def expected_test_file(module: Path) -> Path:
    """``quant/backends/xnnpack/movement.py`` -> ``tests/quant/backends/xnnpack/test_movement.py``; a package's
    ``__init__.py`` -> ``test_<package>.py`` in its own test folder (``tests/quant/test_quant.py``)."""
    relative = module.relative_to(ROOT)
    name = relative.parent.name if module.name == "__init__.py" else module.stem
    return ROOT / "tests" / relative.parent / f"test_{name}.py"


def test_every_quant_module_has_its_test_file():
    modules = sorted((ROOT / "quant").rglob("*.py"))
    assert len(modules) > 30
    assert [str(m.relative_to(ROOT)) for m in modules if not expected_test_file(m).is_file()] == []
