"""quant.backends: every backend offers the same verbs and writes the one census schema.

That each backend's census of a real export follows the schema is checked with the whole
manifest where each is exported (test_export.py, test_tflite.py, test_coreml.py).
"""
from __future__ import annotations

import dataclasses
import inspect

import pytest

from quant.backends import BACKENDS, Census
from quant.recipes import RECIPES
from tests.schemas import op_census_violations, validator


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_lowers_and_validates_with_one_call_shape(name):
    backend = BACKENDS[name]
    module = backend.load()
    assert module.__name__ == f"quant.backends.{name}" and backend.formats
    assert list(inspect.signature(module.lower).parameters) == ["ctx"]
    assert list(inspect.signature(module.validate).parameters) == ["ctx", "lowered"]
    assert any(r.backend == name and r.name == name for r in RECIPES.values())  # its own recipe bears its name


def test_the_census_dataclass_is_the_manifest_schema():
    schema = validator("manifest").schema["properties"]["op_census"]
    assert set(schema["required"]) == set(schema["properties"]) == {f.name for f in dataclasses.fields(Census)}
    assert op_census_violations(Census().to_json()) == []  # what a Core ML .pte knows: delegates and outside only
    full = Census(ops={"XNNConv2d": {"int8": 3}}, kinds={"conv": {"int8": 3}}, conversions={"XNNConvert": 2},
                  int8_gemm_pct=100.0, delegates=1, outside={}, delegated_gemm_pct=100.0, detail={"note": "x"})
    assert op_census_violations(full.to_json()) == []


@pytest.mark.parametrize("field, value", [("kinds", {"attention": {"int8": 1}}), ("int8_gemm_pct", 101.0),
                                          ("ops", {"conv": {"int8": -1}}), ("delegates", -1)])
def test_a_census_readers_would_misread_is_refused(field, value):
    assert op_census_violations({**Census().to_json(), field: value})



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
    from quant.partition import xnnpack_partitioner
    from quant.quantizer import xnnpack_quantizer
    from quant.runtime import Program

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
