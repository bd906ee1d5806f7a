"""litert-torch's layout-pass fix: scoped to a conversion, on the pinned release, on even with the switch off."""
import contextlib
import operator
from unittest import mock

import pytest
import torch

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


class _ConvHead(torch.nn.Module):
    """A conv (which the layout pass moves to NHWC), a reshape and a linear: what 26m's conversion re-traces."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        return self.fc(torch.nn.functional.gelu(self.conv(x)).reshape(1, -1).transpose(0, 1).reshape(1, -1))


def _convert(fast: bool) -> tuple[bytes, list[bool]]:
    """The ``.tflite`` bytes of :class:`_ConvHead`, and for each ``run_decompositions`` call whether
    its graph holds an op of its table or a Python function to re-trace (work to do)."""
    import litert_torch

    work = []
    stock = torch.export.ExportedProgram.run_decompositions

    def record(self, decomp_table=None, *args, **kwargs):
        targets = [n.target for n in self.graph.nodes if n.op == "call_function"]
        work.append(any(t in (decomp_table or {}) or not isinstance(t, (torch._ops.OperatorBase, type(operator.getitem)))
                        for t in targets))
        return stock(self, decomp_table, *args, **kwargs)

    torch.manual_seed(0)
    model = _ConvHead().eval()
    with mock.patch.object(torch.export.ExportedProgram, "run_decompositions", record), litert.layout_pass_fix(), \
            litert.fast_conversion() if fast else contextlib.nullcontext():
        return litert_torch.convert(model, (torch.randn(1, 3, 4, 4),)).model_content(), work


def test_fast_conversion_writes_the_same_bytes_and_skips_no_decomposition():
    fast, work = _convert(fast=True)
    assert fast == _convert(fast=False)[0]
    # litert-torch's three decompositions all have work to do: skipping an "idle" one, as the
    # XNNPACK lowering does, has nothing to skip here (quant/patches/litert.py)
    assert len(work) == 3 and all(work)


def test_fast_conversion_is_scoped_and_a_speed_patch(monkeypatch):
    code = torch.fx.Graph.python_code
    with pytest.raises(RuntimeError), litert.fast_conversion() as applied:
        assert applied and torch.fx.Graph.python_code is not code
        raise RuntimeError("conversion failed")
    assert torch.fx.Graph.python_code is code
    monkeypatch.setenv(SWITCH, "off")
    with litert.fast_conversion() as applied:
        assert not applied and torch.fx.Graph.python_code is code
    monkeypatch.delenv(SWITCH)
    monkeypatch.setattr(litert, "SPEED_PINNED", {**litert.SPEED_PINNED, "torch": "2.14.0"})
    with litert.fast_conversion() as applied:
        assert not applied and torch.fx.Graph.python_code is code
