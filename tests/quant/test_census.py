"""The PT2E graph census: what is a quantize or a dequantize (decided once, for the census and the
XNNPACK partitioner), and which ops of a converted graph would run int8."""
import pytest
import torch
from torch.fx import Graph

import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401 - registers the quantized_decomposed ops

from quant.census import graph_census, is_dequantize, is_quantize, op_kind

qd = torch.ops.quantized_decomposed


def _call(target):
    graph = Graph()
    x = graph.placeholder("x")
    return graph.call_function(target, (x,)), x


@pytest.mark.parametrize("target, quantize, dequantize", [
    (qd.quantize_per_tensor.default, True, False),
    (qd.quantize_per_tensor.tensor, True, False),
    (qd.quantize_per_channel.default, True, False),  # per channel: a quantize all the same
    (qd.dequantize_per_tensor.default, False, True),
    (qd.dequantize_per_channel.default, False, True),
    (torch.ops.aten.relu.default, False, False),
])
def test_quantize_and_dequantize_per_tensor_and_per_channel(target, quantize, dequantize):
    node, placeholder = _call(target)
    assert (is_quantize(node), is_dequantize(node)) == (quantize, dequantize)
    assert not is_quantize(placeholder) and not is_dequantize(placeholder) and not is_dequantize(3)


def test_edge_dialect_ops_are_recognised_as_the_partitioner_sees_them():
    from executorch.exir.dialects._ops import ops as exir_ops

    edge = exir_ops.edge.quantized_decomposed
    assert is_quantize(_call(edge.quantize_per_tensor.default)[0])
    assert is_quantize(_call(edge.quantize_per_channel.default)[0])
    assert is_dequantize(_call(edge.dequantize_per_channel.default)[0])


def test_a_converted_conv_is_int8_and_a_softmax_float():
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from quant.quantizer import xnnpack_quantizer

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Softmax(dim=1)).eval()
    x = torch.randn(1, 3, 8, 8)
    prepared = prepare_pt2e(torch.export.export(model, (x,)).module(), xnnpack_quantizer())
    prepared(x)
    rows = {row["kind"] if row["kind"] != "other" else row["op"]: row["precision"] for row in graph_census(convert_pt2e(prepared))}
    assert rows["conv"] == "int8" and any("softmax" in k and v == "float" for k, v in rows.items())
    assert op_kind("aten.convolution.default") == "conv" and op_kind("aten.bmm.default") == "matmul"
