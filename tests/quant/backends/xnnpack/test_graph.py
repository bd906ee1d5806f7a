"""The XNNPACK graph read back from a .pte says how many operator objects each Copy node runs."""
from __future__ import annotations

import torch

from quant.backends.xnnpack import lower_layer
from quant.backends.xnnpack.graph import copy_objects, nodes_per_delegate_call


class CatToy(torch.nn.Module):
    """A ``cat`` of three inputs, then one of two, around a conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(12, 4, 1)

    def forward(self, x):
        y = self.conv(torch.cat([x, torch.relu(x), torch.sigmoid(x)], dim=1))
        return torch.cat([y, x], dim=1)


def test_concatenations_run_one_copy_object_per_input(tmp_path):
    path = tmp_path / "cat.pte"
    path.write_bytes(lower_layer(CatToy().eval(), torch.randn(1, 4, 8, 8), int8=False))
    assert [copy_objects([node.kind for node in call]) for call in nodes_per_delegate_call(path)] == [[3, 2]]
