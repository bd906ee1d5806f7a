"""litert-torch's layout-pass fix: scoped to a conversion, on the pinned release, on even with the switch off."""
import pytest

pass_body = pytest.importorskip("litert_torch._convert.fx_passes.optimize_layout_transposes_pass.pass_body")

from quant.patches import SWITCH, litert  # noqa: E402


def test_layout_fix_is_scoped_to_a_conversion_on_the_pinned_release(monkeypatch):
    stock = pass_body.OptimizeLayoutTransposesPass.insert_t_q_dq
    with pytest.raises(RuntimeError), litert.layout_pass_fix() as applied:
        assert applied and pass_body.OptimizeLayoutTransposesPass.insert_t_q_dq is not stock
        raise RuntimeError("conversion failed")
    assert pass_body.OptimizeLayoutTransposesPass.insert_t_q_dq is stock  # undone, on error too
    monkeypatch.setattr(litert, "PINNED", {"litert-torch": "0.11.0"})
    with litert.layout_pass_fix() as applied:
        assert not applied and pass_body.OptimizeLayoutTransposesPass.insert_t_q_dq is stock


def test_the_switch_leaves_the_correctness_fix_on(monkeypatch):
    """Without it int8 .tflite export fails; ``MOBILEFORMER_PATCHES=off`` turns off speed patches only."""
    monkeypatch.setenv(SWITCH, "off")
    stock = pass_body.OptimizeLayoutTransposesPass.insert_t_q_dq
    with litert.layout_pass_fix() as applied:
        assert applied and pass_body.OptimizeLayoutTransposesPass.insert_t_q_dq is not stock
