"""Chains of transposes and reshapes in the XNNPACK graph become one move: same output, fewer transposes."""

import numpy as np
import pytest
import torch
from executorch.backends.transforms.remove_clone_ops import RemoveCloneOpsTransform
from executorch.exir import to_edge_transform_and_lower
from torch import nn

from mobileformer.layers import ChannelShuffle
from quant.backends.xnnpack import capture_xnnpack_graphs
from quant.backends.xnnpack.movement import _as_one_transpose
from quant.backends.xnnpack.partition import xnnpack_partitioner
from quant.backends.xnnpack.runtime import Program


@pytest.mark.parametrize("dims, perm", [([1, 56, 56, 12], [0, 3, 1, 2]), ([3136, 4, 9], [0, 2, 1]),
                                        ([5, 6, 7, 8], [2, 0, 3, 1]), ([3, 1, 1, 128], [0, 1, 3, 2])])
def test_a_transpose_is_found_again(dims, perm):
    src = np.arange(int(np.prod(dims))).reshape(dims).transpose(perm).reshape(-1)
    found_dims, found_perm = _as_one_transpose(src)
    assert np.array_equal(np.arange(len(src)).reshape(found_dims).transpose(found_perm).reshape(-1), src)
    assert len(found_dims) <= len(dims)  # merged where dims move together: [3, 1, 1, 128] is a plain reshape


def test_a_shuffle_of_elements_is_not_a_transpose():
    assert _as_one_transpose(np.array([0, 2, 1, 3, 5, 4])) is None


class ShuffleAndBridge(nn.Module):
    """A grouped conv's channel shuffle and a bridge-like read of the map as a matrix: six transposes stock."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 1, groups=1)
        self.shuffle = ChannelShuffle(2)
        self.conv2 = nn.Conv2d(8, 8, 1, groups=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.shuffle(self.conv1(x)))
        b, c, h, w = y.shape
        rows = y.reshape(b * 2, c // 2, h * w).transpose(1, 2)  # pixels as rows, per head
        return y + (rows * 0.5).transpose(1, 2).reshape(b, c, h, w)


def _lower(fused: bool, path) -> tuple[bytes, int]:
    model, example = ShuffleAndBridge().eval(), torch.randn(1, 3, 8, 8)
    with capture_xnnpack_graphs(fuse_moves=fused) as graphs:
        edge = to_edge_transform_and_lower(torch.export.export(model, (example,)), transform_passes=[RemoveCloneOpsTransform()],
                                           partitioner=[xnnpack_partitioner()])
        buffer = edge.to_executorch().buffer
    path.write_bytes(buffer)
    with torch.no_grad():
        assert (Program(path)(example) - model(example)).abs().max().item() <= 1e-5
    transposes = sum(type(n.xnode_union).__name__ == "XNNStaticTranspose" for g in graphs for n in g.xnodes)
    return buffer, transposes


@pytest.mark.slow
def test_fewer_transposes_same_output_same_bytes(tmp_path):
    torch.manual_seed(0)
    _, before = _lower(False, tmp_path / "stock.pte")
    torch.manual_seed(0)
    first, after = _lower(True, tmp_path / "fused.pte")
    torch.manual_seed(0)
    second, _ = _lower(True, tmp_path / "again.pte")
    assert after < before
    assert first == second
