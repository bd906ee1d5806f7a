"""Our quantizers make the right ops int8: every GEMM of our recipes, attention matmuls, DyReLU, scales and zero points."""
import pytest
import torch

from mobileformer.dyrelu import HyperFunction
from quant.census import graph_census
from quant.recipes import calibrate, convert, example_input, get_recipe, prepare
from quant.twin import QuantizableDyReLU


def _ptq_census(model, recipe):
    prepared = prepare(model, get_recipe(recipe), example_input(model))
    calibrate(prepared, [torch.randn(1, 3, 64, 64) for _ in range(2)], progress=False)
    return graph_census(convert(prepared))


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["xnnpack", "xnnpack-per-tensor"])
def test_our_recipe_makes_every_gemm_int8(tiny_model_factory, recipe):
    """``xnnpack`` keeps DyReLU float in the float model's form (mul, mul, maximum); the
    accelerator recipes make it int8 through the twin's ``a2 x + relu((a1 - a2) x)``."""
    rows = _ptq_census(tiny_model_factory(), recipe)
    gemm = [r for r in rows if r["kind"] in ("conv", "linear", "matmul")]
    assert {r["kind"] for r in gemm} == {"conv", "linear", "matmul"}
    assert all(r["precision"] == "int8" for r in gemm), [r for r in gemm if r["precision"] != "int8"]
    dyrelu = [r for r in rows if ".act" in r["module"] and r["op"] in ("aten.mul.Tensor", "aten.add.Tensor",
                                                                       "aten.maximum.default")]
    ops = {r["op"] for r in dyrelu}
    if recipe == "xnnpack":
        assert "aten.maximum.default" in ops and all(r["precision"] == "float" for r in dyrelu)
    else:
        assert "aten.maximum.default" not in ops, "DyReLU's max must be rewritten"
        assert all(r["precision"] == "int8" for r in dyrelu)
    arithmetic = ("mean", "sub", "mul", "add", "rsqrt")
    layernorm = [r for r in rows if "layer_norm" in r["module"] and any(f".{a}." in r["op"] for a in arithmetic)]
    assert layernorm and all(r["precision"] == "float" for r in layernorm)
    token_softmax = [r for r in rows if r["module"].endswith("global_local.softmax")]
    assert token_softmax and all(r["precision"] == "float" for r in token_softmax)


@pytest.mark.slow
@pytest.mark.parametrize("recipe, per_channel", [("xnnpack", True), ("xnnpack-per-tensor", False)])
def test_weight_scales_per_channel_or_per_tensor(tiny_model_factory, recipe, per_channel):
    prepared = prepare(tiny_model_factory(), get_recipe(recipe), example_input(tiny_model_factory()))
    calibrate(prepared, [torch.randn(1, 3, 64, 64)], progress=False)
    targets = [str(n.target) for n in convert(prepared).graph.nodes if n.op == "call_function"]
    assert any("dequantize_per_channel" in t for t in targets) == per_channel


def _lowered_census(model, recipe):
    from executorch.backends.transforms.remove_clone_ops import RemoveCloneOpsTransform
    from executorch.exir import to_edge_transform_and_lower

    from quant.backends.xnnpack import capture_xnnpack_graphs, xnnpack_census
    from quant.backends.xnnpack.partition import xnnpack_partitioner

    prepared = prepare(model, get_recipe(recipe), example_input(model))
    calibrate(prepared, [torch.randn(1, 3, 64, 64) for _ in range(2)], progress=False)
    exported = torch.export.export(convert(prepared), (example_input(model),))
    with capture_xnnpack_graphs() as graphs:
        edge = to_edge_transform_and_lower(exported, transform_passes=[RemoveCloneOpsTransform()],
                                           partitioner=[xnnpack_partitioner(stock=recipe.endswith("stock"))])
    return xnnpack_census(graphs, edge.exported_program()).to_json()


# The tiny variant's two Former->Mobile bridges take a max over 3 tokens each in their (float)
# softmax: 4 maxima. DyReLU's float max adds one per DyReLU (4), except where the twin rewrites it.
@pytest.mark.slow
@pytest.mark.parametrize("recipe, bmm, maxima", [("xnnpack", "int8", 4 + 4), ("xnnpack-per-tensor", "int8", 4),
                                                 ("xnnpack-stock", "float", 4 + 4)])
def test_lowered_precision_of_attention_and_dyrelu(tiny_model_factory, recipe, bmm, maxima):
    """What XNNPACK really runs: our recipes have int8 batch-matmuls, the stock one float ones;
    DyReLU's max is float in ``xnnpack`` and the stock recipe, rewritten away in the int8 DyReLU recipe."""
    census = _lowered_census(tiny_model_factory(), recipe)
    assert set(census["ops"]["XNNBatchMatrixMultiply"]) == {bmm}
    assert census["delegated_gemm_pct"] == 100.0
    assert census["ops"]["XNNMaximum"] == {"float": maxima}
    if recipe != "xnnpack-stock":
        assert census["int8_gemm_pct"] == 100.0


@pytest.mark.slow
def test_coreml_recipe_makes_attention_matmuls_and_dyrelu_int8(tiny_model_factory):
    """ExecuTorch's CoreMLQuantizer leaves every bmm and DyReLU's sub/relu float; our recipe annotates them."""
    rows = _ptq_census(tiny_model_factory(), "coreml")
    bmm = [r for r in rows if r["kind"] == "matmul"]
    assert len(bmm) == 14 and all(r["precision"] == "int8" for r in bmm)
    dyrelu = [r for r in rows if ".act" in r["module"] and r["op"].split(".")[1] in ("mul", "add", "sub", "relu")]
    assert len(dyrelu) == 40 and all(r["precision"] == "int8" for r in dyrelu)


class DyReLUToy(torch.nn.Module):
    """conv -> the twin's DyReLU (driven by a hyper-function of the pooled input) -> conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = torch.nn.Conv2d(8, 16, 1), torch.nn.Conv2d(16, 8, 1)
        self.hyper, self.act = HyperFunction(8, 16), QuantizableDyReLU()

    def forward(self, x):
        return self.conv2(self.act(self.conv1(x), self.hyper(x.mean((2, 3)))))


def test_dyrelu_multiplies_of_the_feature_map_run_int8_with_the_relu_fused():
    """``relu((a1 - a2) x)`` is one int8 multiply with its output clamped, not a float island
    with a Convert of the whole map on each side (the stock partitioner's mul config)."""
    from executorch.exir import to_edge_transform_and_lower

    from quant.backends.xnnpack import _datatype, capture_xnnpack_graphs
    from quant.backends.xnnpack.partition import xnnpack_partitioner
    from quant.quantizer import xnnpack_quantizer
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    torch.manual_seed(0)
    x = torch.randn(1, 8, 16, 16)
    prepared = prepare_pt2e(torch.export.export(DyReLUToy().eval(), (x,)).module(), xnnpack_quantizer())
    prepared(x)
    with capture_xnnpack_graphs() as graphs:
        to_edge_transform_and_lower(torch.export.export(convert_pt2e(prepared), (x,)), partitioner=[xnnpack_partitioner()])
    (graph,) = graphs
    dims = {getattr(v.xvalue_union, "tensor_value", v.xvalue_union).id_out:
            list(getattr(v.xvalue_union, "tensor_value", v.xvalue_union).dims) for v in graph.xvalues}
    on_map = [n for n in graph.xnodes if type(n.xnode_union).__name__ == "XNNMultiply"
              and dims[n.xnode_union.output_id][-2:] == [16, 16]]
    assert len(on_map) == 2 and all(_datatype(graph, n.xnode_union.output_id) == "int8" for n in on_map)
    assert [n.output_min_max is not None for n in on_map].count(True) == 1


@pytest.mark.slow
@pytest.mark.parametrize("recipe, symmetric", [("xnnpack", False), ("xnnpack-sym-per-tensor", True)])
def test_symmetric_activations_have_zero_point_zero(tiny_model_factory, recipe, symmetric):
    """What TensorRT and several NPUs require: every activation int8 in [-127, 127] around 0."""
    prepared = prepare(tiny_model_factory(), get_recipe(recipe), example_input(tiny_model_factory()))
    calibrate(prepared, [torch.randn(1, 3, 64, 64) for _ in range(2)], progress=False)
    converted = convert(prepared)
    activations = [n for n in converted.graph.nodes if n.op == "call_function" and "quantize_per_tensor" in str(n.target)
                   and "dequantize" not in str(n.target)]
    zero_points = {int(n.args[2]) for n in activations}
    assert activations and (zero_points == {0}) == symmetric, zero_points
    assert all(n.args[3] == -127 for n in activations) or not symmetric


def _coreml_prepared(model: torch.nn.Module, x: torch.Tensor, qat: bool) -> torch.fx.GraphModule:
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e, prepare_qat_pt2e

    from quant.patches.executorch import fast_pattern_annotation
    from quant.quantizer import extended_coreml_quantizer

    graph = torch.export.export(model, (x,)).module()
    with fast_pattern_annotation():  # as quant.recipes.prepare runs it: the same graph, sooner
        return (prepare_qat_pt2e if qat else prepare_pt2e)(graph, extended_coreml_quantizer(qat))


def _conv_relu_conv() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 1))


def test_coreml_ptq_ranges_cover_the_calibration_image_with_the_largest_values():
    """PTQ with the coreml recipe kept coremltools' default observer, a moving average of each
    image's range (1% per image); calibrated image by image, as quant.export does, an activation
    larger on one image than on the others was clipped: seed 0's Fashion-MNIST network measured
    8.8 dB at the output instead of 19.8 dB (quant.numerics). PTQ now takes min/max over all images."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    from quant.metrics import sqnr

    model = _conv_relu_conv().eval()
    images = [torch.randn(1, 3, 4, 4) for _ in range(20)] + [10 * torch.randn(1, 3, 4, 4)]
    prepared = _coreml_prepared(model, images[0], qat=False)
    with torch.no_grad():
        for x in images:
            prepared(x)
        converted = convert_pt2e(prepared)
        assert sqnr(model(images[-1]), converted(images[-1])) > 25


def test_coreml_qat_keeps_moving_average_ranges():
    """QAT's ranges follow the weights as they train: coremltools' moving average, as before."""
    prepared = _coreml_prepared(_conv_relu_conv().train(), torch.randn(2, 3, 4, 4), qat=True)
    observers = {type(m).__name__ for m in prepared.modules() if "Observer" in type(m).__name__}
    assert observers and all(name.startswith("MovingAverage") for name in observers), observers


class CopiesToDepthwise(torch.nn.Module):
    """conv -> relu6 -> three copies concatenated -> depthwise conv: the twin's channel multiplier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.depthwise = torch.nn.Conv2d(3, 4, 1), torch.nn.Conv2d(12, 12, 3, padding=1, groups=12)

    def forward(self, x):
        y = torch.nn.functional.relu6(self.conv(x))
        return self.depthwise(torch.cat([y, y, y], 1))


def test_coreml_cat_of_copies_keeps_its_input_quantization():
    """CoreMLQuantizer requantized such a cat to its own range, twice its input's step, so every other
    level sat on a rounding midpoint that the fp16 Core ML program and the fp32 graph round apart."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    torch.manual_seed(0)
    model = CopiesToDepthwise().eval()
    prepared = _coreml_prepared(model, torch.randn(1, 3, 6, 6), qat=False)
    with torch.no_grad():
        for _ in range(4):
            prepared(torch.randn(1, 3, 6, 6))
    converted = convert_pt2e(prepared)
    quantize = torch.ops.quantized_decomposed.quantize_per_tensor.default
    params = {n.args[0].name: tuple(n.args[1:3]) for n in converted.graph.nodes if n.target == quantize}
    cat = next(n for n in converted.graph.nodes if n.target == torch.ops.aten.cat.default)
    producer = cat.args[0][0].args[0].args[0]  # cat <- dequantize <- quantize <- relu6
    assert params[cat.name] == params[producer.name]
