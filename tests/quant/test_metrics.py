"""quant.metrics: SQNR, top-1 agreement and the McNemar test that the validation records and quant.evaluate report."""
import math

import pytest
import torch

from quant.metrics import mcnemar_exact, sqnr, top1_agreement


def test_sqnr_and_agreement():
    ref = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    assert sqnr(ref, ref) == math.inf
    assert sqnr(ref, ref * 1.1) == pytest.approx(20.0)
    assert top1_agreement(ref, torch.tensor([[0.0, 5.0], [0.0, 1.0]])) == 0.5


def test_mcnemar_exact_known_values():
    assert mcnemar_exact(0, 10) == pytest.approx(2 / 1024)
    assert mcnemar_exact(10, 0) == mcnemar_exact(0, 10)
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(101, 180) < 1e-5 < mcnemar_exact(144, 168)
