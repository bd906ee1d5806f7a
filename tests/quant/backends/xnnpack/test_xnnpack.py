"""The XNNPACK wing's lowering: the graph rewrites before ExecuTorch lowers are exact (the census and the
whole export: test_export.py)."""
from __future__ import annotations


def test_only_expands_that_change_nothing_are_dropped_before_xnnpack_lowering():
    """The learned tokens' expand of a QAT graph, exported at batch 1, copies; to 2 images it does not."""
    import torch
    from executorch.exir import to_edge

    from quant.backends.xnnpack import drop_noop_expands

    class Tokens(torch.nn.Module):
        def __init__(self, batch: int) -> None:
            super().__init__()
            self.batch, self.tokens = batch, torch.nn.Parameter(torch.randn(1, 3, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.tokens.expand(self.batch, -1, -1) * x

    x = torch.randn(1, 3, 4)
    for batch, expands_left in ((1, 0), (2, 1)):
        program = to_edge(torch.export.export(Tokens(batch), (x,))).exported_program()
        expected = program.module()(x)
        drop_noop_expands(program.graph_module)
        assert sum("expand" in str(n.target) for n in program.graph.nodes) == expands_left
        assert torch.equal(program.module()(x), expected)


def test_small_grouped_pointwise_convs_become_dense_and_the_pte_computes_the_same_bytes():
    """26m's grouped 1x1 convs (4 groups of a few channels) lower as dense ones with
    block-diagonal int8 weights; larger groups and depthwise convs stay as they are, and
    the int8 program's outputs do not change by one bit."""
    import torch
    from executorch.exir import to_edge_transform_and_lower
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from quant.backends.xnnpack import dense_grouped_pointwise
    from quant.backends.xnnpack.partition import xnnpack_partitioner
    from quant.quantizer import xnnpack_quantizer
    from quant.backends.xnnpack.runtime import Program

    torch.manual_seed(0)
    toy = torch.nn.Sequential(torch.nn.Conv2d(12, 36, 1, groups=4), torch.nn.ReLU(),  # 3x9 per group: dense
                              torch.nn.Conv2d(36, 36, 3, padding=1, groups=36),  # depthwise: stays
                              torch.nn.Conv2d(36, 96, 1, groups=2)).eval()  # 18x48 per group: stays grouped
    x = torch.randn(1, 12, 16, 16)
    prepared = prepare_pt2e(torch.export.export(toy, (x,)).module(), xnnpack_quantizer())
    prepared(x)
    grouped = convert_pt2e(prepared)
    dense = dense_grouped_pointwise(grouped)
    groups = [n.args[6] for n in dense.graph.nodes if n.target == torch.ops.aten.conv2d.default]
    assert groups == [1, 36, 2]
    assert [n.args[6] for n in grouped.graph.nodes if n.target == torch.ops.aten.conv2d.default] == [4, 36, 2]

    def run(graph):
        lowered = to_edge_transform_and_lower(torch.export.export(graph, (x,)), partitioner=[xnnpack_partitioner()])
        return Program(lowered.to_executorch().buffer)(x)

    assert torch.equal(run(dense), run(grouped))
