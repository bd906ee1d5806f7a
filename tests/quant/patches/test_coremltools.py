"""coremltools' op-name patch: a counter of its own per conversion, undone after, on even with the switch off."""
import pytest

from quant.patches import SWITCH, coremltools

Builder = pytest.importorskip("coremltools.converters.mil.mil").Builder


@pytest.mark.parametrize("switch", ["on", "off"])
def test_each_conversion_counts_names_from_zero(monkeypatch, switch):
    monkeypatch.setenv(SWITCH, switch)
    shared = Builder.name_count
    with coremltools.fresh_op_names() as applied:
        assert applied and Builder.name_count is not shared and dict(Builder.name_count) == {}
    assert Builder.name_count is shared


def test_not_on_another_release(monkeypatch):
    monkeypatch.setattr(coremltools, "PINNED", {"coremltools": "8.0"})
    shared = Builder.name_count
    with coremltools.fresh_op_names() as applied:
        assert not applied and Builder.name_count is shared
