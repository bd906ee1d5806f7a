"""Quantizers: the stock ones as shipped, and ours composed on top of XNNPACK's and Core ML's.

The stock ``XNNPACKQuantizer`` annotates conv, linear, add, mul, cat and pooling, and
lets shape ops and relu/hardtanh share their input's parameters. On Mobile-Former it
leaves in float the parts that matter most: the attention matmuls (``bmm``), the
subtractions in DyReLU's slopes, and, through LayerNorm's internals, a scattering of
half-quantized ops. :class:`MobileFormerAnnotator` fills those gaps:

* ``bmm``: both inputs and the output int8. XNNPACK's int8 batch-matmul wants its
  right operand symmetric (zero point 0), so that operand is quantized symmetrically,
  and a Linear that feeds it (the bridges' k/v/q projections) emits symmetric int8
  directly instead of paying a requantize;
* ``sub``: int8 like add;
* LayerNorm stays float (inside the delegate): measured more accurate than its
  int8 decomposition at no speed cost, see docs/export.md;
* with ``float_dyrelu``, so does DyReLU's ``max(a1 x, a2 x)``: fewer AArch64
  instructions than its int8 form, see docs/export.md.

Softmax stays float too: XNNPACK has no int8 softmax (creating one fails); that
includes :class:`~mobileformer.layers.TokenSoftmax`, Former->Mobile's softmax over
the tokens written from elementwise ops.

ExecuTorch's ``CoreMLQuantizer`` leaves the same attention matmuls and DyReLU's
``sub``/``relu`` float; :class:`CoreMLGapsAnnotator` annotates them (and the head's
hardswish) in Core ML's uint8 before it runs. Under QAT it also keeps the Core ML
quantizer off integer tensors: the training-mode graph counts BatchNorm batches with
``num_batches_tracked.add_(1)``, which its ``add`` pattern would fake-quantize.

For QAT, :class:`ConvBatchNormAnnotator` annotates conv + BatchNorm [+ relu] with the
pattern matcher XNNPACK's quantizer uses, for quantizers whose own conv+BN annotator
cannot run (LiteRT's, :func:`litert_quantizer`).
"""
from __future__ import annotations

import dataclasses

import torch
from torch.fx import Node
from torchao.quantization.pt2e.quantizer import (
    ComposableQuantizer,
    QuantizationAnnotation,
    QuantizationSpec,
    Quantizer,
    SharedQuantizationSpec,
)
from torchao.quantization.pt2e.quantizer.utils import QuantizationConfig

from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
    XNNPACKQuantizer,
    get_symmetric_quantization_config,
)
from executorch.backends.xnnpack.quantizer.xnnpack_quantizer_utils import OP_TO_ANNOTATOR

from .backends import BACKENDS


Q_KEY = "quantization_annotation"
BMM = torch.ops.aten.bmm.default
SUB = torch.ops.aten.sub.Tensor
HARDSWISH = torch.ops.aten.hardswish.default
RELU = torch.ops.aten.relu.default
LINEAR = torch.ops.aten.linear.default
CAT = torch.ops.aten.cat.default
# Ops that only move data: a tensor keeps its quantization parameters through them.
SHAPE_OPS = {
    torch.ops.aten.reshape.default, torch.ops.aten.view.default, torch.ops.aten.permute.default,
    torch.ops.aten.transpose.int, torch.ops.aten.slice.Tensor, torch.ops.aten.flatten.using_ints,
}
FLOAT_MODULES = ("mobileformer.layers.LayerNorm", "mobileformer.layers.TokenSoftmax")
DYRELU = "mobileformer.dyrelu.DyReLU"  # the float model's, not the twin's QuantizableDyReLU


def _in_float_module(node: Node, modules: tuple[str, ...] = FLOAT_MODULES) -> bool:
    """True for ops inside a module kept float on purpose (LayerNorm, and ``modules``)."""
    return any(str(cls) in modules for _, cls in node.meta.get("nn_module_stack", {}).values())


def _in_dyrelu(node: Node) -> bool:
    return any("DyReLU" in str(cls) for _, cls in node.meta.get("nn_module_stack", {}).values())


def _annotate_inputs_and_output(node: Node, inputs: QuantizationSpec, output: QuantizationSpec) -> None:
    """Quantize a unary or binary op's tensor inputs and its output."""
    node.meta[Q_KEY] = QuantizationAnnotation(
        input_qspec_map={a: inputs for a in node.args[:2] if isinstance(a, Node)}, output_qspec=output, _annotated=True,
    )


def _integer_valued(node: Node) -> bool:
    """True for an op whose output is an integer tensor (BatchNorm's batch counter), never quantized."""
    value = node.meta.get("val")
    return isinstance(value, torch.Tensor) and not value.dtype.is_floating_point


def _annotated(node: Node) -> bool:
    return Q_KEY in node.meta and node.meta[Q_KEY]._annotated


def _source(node: Node) -> Node:
    """Follow shape ops back to the node that produced the data."""
    while node.op == "call_function" and node.target in SHAPE_OPS:
        node = node.args[0]
    return node


def symmetric_activation(config: QuantizationConfig) -> QuantizationSpec:
    """The activation spec of ``config`` made symmetric: int8 in [-127, 127], zero point 0."""
    act = config.input_activation
    return dataclasses.replace(act, qscheme=torch.per_tensor_symmetric, quant_min=-127, quant_max=127)


class MobileFormerAnnotator(Quantizer):
    """Annotates what the stock XNNPACK quantizer leaves float (see the module docstring)."""

    def __init__(self, config: QuantizationConfig, float_modules: tuple[str, ...] = FLOAT_MODULES) -> None:
        super().__init__()
        self.config = config
        self.symmetric = symmetric_activation(config)
        self.float_modules = float_modules

    def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        for node in model.graph.nodes:
            if node.op != "call_function":
                continue
            if _in_float_module(node, self.float_modules):
                # An empty annotation marks the node as decided: nothing propagates into it.
                node.meta[Q_KEY] = QuantizationAnnotation(_annotated=True)
            elif node.target == BMM:
                self._annotate_bmm(model, node)
            elif node.target == SUB and not _annotated(node):
                _annotate_inputs_and_output(node, self.config.input_activation, self.config.output_activation)
        return model

    def _annotate_bmm(self, model: torch.fx.GraphModule, node: Node) -> None:
        left, right = node.args[0], node.args[1]
        right_spec = self.symmetric
        producer = _source(right)
        if producer.op == "call_function" and producer.target == LINEAR and len(producer.users) == 1:
            sym_output = dataclasses.replace(self.config, output_activation=self.symmetric)
            OP_TO_ANNOTATOR["linear"](model, sym_output, lambda n: n is producer)
            right_spec = SharedQuantizationSpec(right) if right is not producer else SharedQuantizationSpec(producer)
        node.meta[Q_KEY] = QuantizationAnnotation(
            input_qspec_map={left: self.config.input_activation, right: right_spec},
            output_qspec=self.config.output_activation,
            _annotated=True,
        )

    def validate(self, model: torch.fx.GraphModule) -> None:
        pass


class CoreMLGapsAnnotator(Quantizer):
    """What CoreMLQuantizer leaves float: every attention ``bmm`` (both operands and output),
    DyReLU's ``sub`` and ``relu`` (its max rewritten by the twin), and the head's hardswish
    (so that the Linear before it hands over int8). Integer-valued ops are marked as
    decided, so that the Core ML quantizer leaves them alone (the QAT graph's BatchNorm
    batch counters: fake-quantized, the first forward fails with "not implemented for 'Long'").

    And what it quantizes twice: the ``cat`` of copies of one tensor that feeds the twin's
    channel-multiplier depthwise convs. CoreMLQuantizer gives it its own symmetric range,
    about twice its input's, so every other input level lands on a rounding midpoint, which
    the fp16 Core ML program and the fp32 PyTorch graph round in opposite directions (26m,
    trained: 44.5 dB between the two after the first ``cat``, 28.4 dB after its depthwise
    conv). Here it keeps its input's parameters, as XNNPACK's quantizer does for ``cat``."""

    def __init__(self, activation: QuantizationSpec) -> None:
        super().__init__()
        self.activation = activation

    def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        for node in model.graph.nodes:
            if node.op != "call_function" or _annotated(node) or _in_float_module(node):
                continue
            if _integer_valued(node):
                node.meta[Q_KEY] = QuantizationAnnotation(_annotated=True)
            elif node.target == BMM or node.target == HARDSWISH or (node.target in (SUB, RELU) and _in_dyrelu(node)):
                _annotate_inputs_and_output(node, self.activation, self.activation)
            elif node.target == CAT and len(set(node.args[0])) == 1:
                (copied,) = set(node.args[0])
                node.meta[Q_KEY] = QuantizationAnnotation(input_qspec_map={copied: SharedQuantizationSpec(copied)},
                                                          output_qspec=SharedQuantizationSpec(copied), _annotated=True)
        return model

    def validate(self, model: torch.fx.GraphModule) -> None:
        pass


def coreml_quantizer(qat: bool = False) -> Quantizer:
    """ExecuTorch's Core ML quantizer, W8A8: per-channel symmetric int8 weights, uint8 activations.

    For PTQ its ranges are min/max over all calibration images, not coremltools' default
    moving average (1% per image): ``quant.export`` calibrates image by image, and the average
    clipped what one image has larger than the rest (seed 0's Fashion-MNIST network: 8.8 dB
    at the output instead of 19.8 dB). QAT keeps the moving average, which follows the
    weights as they train.

    On its own it cannot prepare a QAT graph (it fake-quantizes BatchNorm's integer batch
    counters); :func:`extended_coreml_quantizer` runs :class:`CoreMLGapsAnnotator` first, which can.
    """
    import coremltools as ct
    from executorch.backends.apple.coreml.quantizer import CoreMLQuantizer

    opt = ct.optimize.torch.quantization
    observer = "moving_average_min_max" if qat else "min_max"
    config = opt.LinearQuantizerConfig(global_config=opt.ModuleLinearQuantizerConfig(
        quantization_scheme="symmetric", activation_dtype=torch.quint8, weight_dtype=torch.qint8,
        weight_per_channel=True, activation_observer=observer, weight_observer=observer,
    ))
    return CoreMLQuantizer(config)


class ConvBatchNormAnnotator(Quantizer):
    """QAT's conv + BatchNorm [+ relu] patterns, annotated as XNNPACK's quantizer does (input,
    per-channel weight, output after the BatchNorm or relu), so that ``prepare_qat_pt2e``
    simulates the BatchNorm folded into the conv as the backend will run it."""

    def __init__(self, config: QuantizationConfig) -> None:
        super().__init__()
        self.config = config

    def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        for pattern in ("conv_bn_relu", "conv_bn"):  # the longer pattern first, as XNNPACK's quantizer does
            OP_TO_ANNOTATOR[pattern](model, self.config, None)
        return model

    def validate(self, model: torch.fx.GraphModule) -> None:
        pass


def extended_coreml_quantizer(qat: bool = False) -> Quantizer:
    """``CoreMLGapsAnnotator`` in uint8 (Core ML's own activation type), then the Core ML quantizer."""
    act = get_symmetric_quantization_config(is_per_channel=True, is_qat=qat).input_activation
    uint8 = dataclasses.replace(act, dtype=torch.uint8, quant_min=0, quant_max=255, qscheme=torch.per_tensor_affine)
    return ComposableQuantizer([CoreMLGapsAnnotator(uint8), coreml_quantizer(qat)])


def stock_xnnpack_quantizer(qat: bool = False) -> XNNPACKQuantizer:
    """ExecuTorch's XNNPACK quantizer as shipped: per-channel int8 weights, int8 activations."""
    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_qat=qat))


def xnnpack_quantizer(qat: bool = False, per_channel: bool = True, symmetric_activations: bool = False,
                      float_dyrelu: bool = False) -> Quantizer:
    """This project's XNNPACK quantizer: ours first, then the stock one for everything else.

    ``float_dyrelu=True`` leaves the float model's DyReLU float, like LayerNorm (the
    ``xnnpack`` recipe, :attr:`quant.recipes.Recipe.float_dyrelu`).
    ``per_channel=False`` gives every weight one scale, as accelerators without
    per-channel support need (folded-BN depthwise channels then share one scale).
    ``symmetric_activations=True`` gives every activation zero point 0 (int8 in [-127, 127]),
    as TensorRT and several NPUs require: a non-negative tensor (after relu, softmax,
    hard-sigmoid) keeps only half of the 255 levels.
    """
    config = get_symmetric_quantization_config(is_per_channel=per_channel, is_qat=qat)
    if symmetric_activations:
        act = symmetric_activation(config)
        config = dataclasses.replace(config, input_activation=act, output_activation=act)
    modules = FLOAT_MODULES + ((DYRELU,) if float_dyrelu else ())
    stock = XNNPACKQuantizer().set_global(config).set_filter_function(lambda n: not _in_float_module(n, modules))
    return ComposableQuantizer([MobileFormerAnnotator(config, modules), stock])


def litert_quantizer(qat: bool = False) -> Quantizer:
    """LiteRT's PT2E quantizer: per-channel symmetric int8 weights, int8 activations.

    It annotates conv, linear, add, mul and cat (and lets shape ops share their input's
    parameters); everything else stays float between DEQUANTIZE and QUANTIZE. For QAT,
    conv + BatchNorm [+ relu] is annotated by our :class:`ConvBatchNormAnnotator`
    instead of LiteRT's own: litert-torch 0.10.0's hands torch.export a plain function,
    which torchao 0.18 refuses ("Expected `mod` to be an instance of `torch.nn.Module`").
    """
    BACKENDS["tflite"].check_installed()
    from litert_torch.quantize import pt2e_quantizer

    config = pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_qat=qat)
    if not qat:
        return pt2e_quantizer.PT2EQuantizer().set_global(config)

    class WithoutConvBatchNorm(pt2e_quantizer.PT2EQuantizer):
        """LiteRT's quantizer minus its QAT-only conv+BN patterns (annotated before it runs)."""

        STATIC_QAT_ONLY_OPS: list[str] = []

    return ComposableQuantizer([ConvBatchNormAnnotator(config), WithoutConvBatchNorm().set_global(config)])
