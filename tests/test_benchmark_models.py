"""benchmarks/mobilenets.py: the MobileNets the cycle estimate is checked on are the papers' networks."""
from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.mobilenets import MODELS

# Multiply-adds at 224x224 as the papers give them (v1: 569 M, v2: 300 M, v3-Large: 219 M, v3-Small: 56 M),
# and parameters in millions (4.2, 3.4, 5.4, 2.5).
PUBLISHED = {"mobilenet_v1": (569, 4.2), "mobilenet_v2": (300, 3.4), "mobilenet_v3_large": (219, 5.4),
             "mobilenet_v3_small": (56, 2.5)}


@pytest.mark.parametrize("name", list(MODELS))
def test_multiply_adds_and_parameters_match_the_paper(name):
    model, x = MODELS[name]().eval(), torch.randn(1, 3, 224, 224)
    with FlopCounterMode(display=False) as flops, torch.no_grad():
        assert model(x).shape == (1, 1000)
    macs, params = PUBLISHED[name]
    assert flops.get_total_flops() / 2e6 == pytest.approx(macs, rel=0.02)
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(params, rel=0.05)
