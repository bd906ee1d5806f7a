"""Quantization recipes: which quantizer, on which model, for which backend.

A recipe is data (the table imports no quantization library: reading it, as
:mod:`quant.bench` does for row labels, is cheap); :func:`prepare`, :func:`calibrate`
and :func:`convert` act on it (the PT2E flow: ``torch.export`` -> ``prepare_pt2e`` /
``prepare_qat_pt2e`` -> observe -> ``convert_pt2e``).
"""
from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from mobileformer.model import MobileFormer

from .errors import UserError
from .timing import phase
from .twin import quantizable

if TYPE_CHECKING:
    from torchao.quantization.pt2e.quantizer import Quantizer


@dataclass(frozen=True)
class Recipe:
    name: str
    backend: str  # the runtime it targets: "xnnpack", "coreml" or "tflite"
    description: str
    # The function of quant/quantizer.py that makes its quantizer, called as (qat, **quantizer_options):
    # a name, imported on the first make_quantizer call.
    quantizer: str
    twin: bool  # quantize the quantizable twin (True) or the float model as it is
    label: str  # its int8 rows in tables and latency results: "<model> <backend> int8 (<label>)"
    # Its fp32 rows' label: for a recipe whose fp32 export differs from ours (not on the twin).
    fp32_label: str | None = None
    quantizer_options: tuple[tuple[str, object], ...] = ()
    # convert_pt2e's fold_quantize: store weights as int8 constants (True) or keep float weights
    # behind quantize -> dequantize (False), which is what litert-torch's converter reads.
    fold_quantize: bool = True
    # The baseline rows: ExecuTorch's own partitioner as shipped, none of our graph rewrites.
    stock_lowering: bool = False
    # DyReLU's elementwise ops stay float (inside the delegate) in the float model's form,
    # max(a1 x, a2 x): on an A76 core that is fewer instructions than the twin's int8
    # mul/mul-relu/add, whose int8 ops cost 2 to 4 instructions per element (docs/export.md).
    float_dyrelu: bool = False
    # The precisions whose exports rewrite the bridges as the twin does (pixels as the left
    # operand of the attention matmuls, for XNNPACK's int8 batch matmul). Our fp32 keeps the
    # float model's: fewer AArch64 instructions and faster on x86 (CHANGELOG.md, 2026-12-07).
    twin_bridges: tuple[str, ...] = ("int8", "fp32")

    def make_quantizer(self, qat: bool = False) -> Quantizer:
        factory = getattr(importlib.import_module("quant.quantizer"), self.quantizer)
        options = dict(self.quantizer_options) | ({"float_dyrelu": True} if self.float_dyrelu else {})
        return factory(qat, **options)

    def source(self, model: MobileFormer, precision: str = "int8") -> MobileFormer:
        """What this recipe quantizes (``int8``) or exports in ``fp32``: a twin of ``model`` (a
        copy), or ``model`` itself."""
        if not self.twin:
            return model
        return quantizable(model, int8_dyrelu=not self.float_dyrelu, bridges=precision in self.twin_bridges)

    def fingerprint(self, precision: str, rewrites: dict[str, bool]) -> dict:
        """What makes this recipe's ``precision`` program what it is: its name and every option that
        changes the graph (``rewrites``: the backend's own, :data:`quant.backends.Backend.rewrites`).
        Accuracy figures of different fingerprints are of different programs: never one table."""
        int8 = precision == "int8"
        return {"recipe": self.name, "precision": precision,
                "quantizer": self.quantizer if int8 else None,
                "quantizer_options": dict(self.quantizer_options) if int8 else {},
                "twin": self.twin, "float_dyrelu": self.float_dyrelu if int8 else None,
                "twin_bridges": self.twin and precision in self.twin_bridges,
                "fold_quantize": self.fold_quantize if int8 else None,
                "stock_lowering": self.stock_lowering, **rewrites}

    def row_label(self, precision: str) -> str | None:
        """What a table calls an artifact of this recipe at ``precision`` (None: nothing to add)."""
        return self.label if precision == "int8" else self.fp32_label


RECIPES = {
    r.name: r
    for r in (
        Recipe("xnnpack", "xnnpack", "this project's int8: stock XNNPACK quantizer + int8 attention matmuls, "
               "DyReLU float inside the delegate, quantizable twin", "xnnpack_quantizer", twin=True,
               label="mobileformer", float_dyrelu=True, twin_bridges=("int8",)),
        Recipe("xnnpack-per-tensor", "xnnpack", "this project's int8 with one scale per weight tensor instead of "
               "one per channel, as accelerators without per-channel scales need, and int8 DyReLU",
               "xnnpack_quantizer", twin=True, label="mobileformer", quantizer_options=(("per_channel", False),)),
        Recipe("xnnpack-sym-per-tensor", "xnnpack", "this project's int8 with symmetric activations (zero point 0) "
               "and one scale per weight tensor, and int8 DyReLU: the strictest accelerators' int8",
               "xnnpack_quantizer", twin=True,
               label="mobileformer, sym. act., per-tensor w.",
               quantizer_options=(("per_channel", False), ("symmetric_activations", True))),
        Recipe("xnnpack-stock", "xnnpack", "ExecuTorch's XNNPACKQuantizer as shipped, on the float model",
               "stock_xnnpack_quantizer", twin=False, label="stock quantizer", fp32_label="stock", stock_lowering=True),
        Recipe("coreml", "coreml", "ExecuTorch's CoreMLQuantizer W8A8 + uint8 attention matmuls, on the quantizable twin",
               "extended_coreml_quantizer", twin=True, label="mobileformer"),
        # The float model, not the twin: LiteRT has an int8 MAXIMUM for DyReLU, while the twin's
        # a1 - a2 and relu are ops LiteRT's quantizer leaves float (measured: 65 more float ops).
        Recipe("tflite", "tflite", "LiteRT's PT2EQuantizer (litert-torch) as shipped, per-channel int8 weights, "
               "on the float model", "litert_quantizer", twin=False, label="LiteRT quantizer",
               fp32_label="LiteRT quantizer", fold_quantize=False),
    )
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}; valid: {', '.join(RECIPES)}")
    return RECIPES[name]


def example_input(model: MobileFormer, input_size: int | None = None, batch: int = 1) -> torch.Tensor:
    size = input_size or model.cfg.input_size
    return torch.zeros(batch, 3, size, size)


def prepare(model: MobileFormer, recipe: Recipe, example: torch.Tensor, qat: bool = False) -> torch.fx.GraphModule:
    """Export ``model`` (or its quantizable twin) and insert observers (PTQ) or fake-quant (QAT).

    The global RNG is left as it was: LiteRT's quantizer draws from it to build its
    patterns, less once they are cached, so a QAT run's dropout and augmentation would
    depend on what the process prepared before (a resumed run then missed the straight one).
    """
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e, prepare_qat_pt2e

    from .patches.executorch import fast_pattern_annotation

    source = recipe.source(model)
    source = source.train() if qat else source.eval()
    # QAT trains and evaluates on batches of any size; PTQ exports at the deployment batch of 1.
    dynamic = {"x": {0: torch.export.Dim("batch", min=2, max=4096)}} if qat else None
    with torch.random.fork_rng():
        with phase("capture"):
            graph = torch.export.export(source, (example,), dynamic_shapes=dynamic).module()
        with phase("prepare"), fast_pattern_annotation():  # the same graph, sooner (quant/patches/executorch.py)
            quantizer = recipe.make_quantizer(qat)
            return prepare_qat_pt2e(graph, quantizer) if qat else prepare_pt2e(graph, quantizer)


@torch.no_grad()
def calibrate(prepared: torch.fx.GraphModule, batches: Iterable[torch.Tensor], total: int | None = None,
              progress: bool = True) -> int:
    """Run calibration batches through the observers; returns the number of images seen."""
    seen = 0
    for x in tqdm(batches, total=total, desc="calibrate", unit="batch", disable=not progress, leave=False):
        prepared(x)
        seen += x.shape[0]
    return seen


def convert(prepared: torch.fx.GraphModule, recipe: Recipe | None = None) -> torch.fx.GraphModule:
    """Observers -> quantize/dequantize pairs with the calibrated parameters."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    from .patches.torchao import fast_histogram_search

    with fast_histogram_search():  # same ranges, about 10x faster (quant/patches/torchao.py)
        return convert_pt2e(prepared, fold_quantize=recipe.fold_quantize if recipe else True)

