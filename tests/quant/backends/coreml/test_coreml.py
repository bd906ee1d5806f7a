"""Core ML export: the .mlpackage end to end (tiny variant), its MIL census, content-derived item ids,
and the numeric validation by the MIL reference executor, with packages corrupted on purpose."""
import json
import re

import numpy as np
import pytest
import torch

from quant.backends.coreml import _deterministic_manifest
from quant.files import LEDGER
from tests.schemas import assert_follows, op_census_violations


def _package(root, ids, weights=b"w1"):
    data = root / "Data" / "com.apple.CoreML"
    (data / "weights").mkdir(parents=True)
    (data / "model.mlmodel").write_bytes(b"model")
    (data / "weights" / "weight.bin").write_bytes(weights)  # real models keep weights in a folder
    entries = {ids[0]: {"path": "com.apple.CoreML/model.mlmodel", "name": "model.mlmodel"},
               ids[1]: {"path": "com.apple.CoreML/weights", "name": "weights"}}
    (root / "Manifest.json").write_text(json.dumps({"itemInfoEntries": entries, "rootModelIdentifier": ids[0]}))
    _deterministic_manifest(root)
    return json.loads((root / "Manifest.json").read_text())


def test_same_content_same_identifiers_whatever_uuids_coremltools_drew(tmp_path):
    a = _package(tmp_path / "a", ["UUID-1", "UUID-2"])
    b = _package(tmp_path / "b", ["UUID-3", "UUID-4"])
    assert a == b and a["rootModelIdentifier"] in a["itemInfoEntries"]
    assert not {"UUID-1", "UUID-2"} & set(a["itemInfoEntries"])


def test_other_weights_other_identifier(tmp_path):
    a = _package(tmp_path / "a", ["U1", "U2"])
    b = _package(tmp_path / "b", ["U1", "U2"], weights=b"w2")
    assert a["rootModelIdentifier"] == b["rootModelIdentifier"] and a != b


def _rounded(u: torch.Tensor, step: float, other_way_beyond: float = 0.5) -> torch.Tensor:
    """``u`` rounded to multiples of ``step``; values further than ``other_way_beyond`` steps from their
    nearest level go to the level on their other side (as fp16 and fp32 round near a midpoint apart)."""
    level = torch.round(u / step)
    residual = u / step - level
    return step * torch.where(residual.abs() > other_way_beyond, level + residual.sign(), level)


def test_an_int8_block_rounded_otherwise_than_pt2e_passes_and_a_wrong_one_fails():
    """Seed 0's Fashion-MNIST network was refused at block 4 (19.6 dB against its PT2E graph, floor 20 dB)
    though its package is as close to the unrounded network as PT2E (19.2 vs 19.3 dB): fp16 rounds the values
    near a midpoint the other way. Here one value in five is rounded the other way: 16.2 dB against PT2E, 19.1
    against the unrounded values where PT2E has 20.0, and the block passes; the same with two rows swapped
    (5.1 dB) does not."""
    from quant.backends.coreml import _judged
    from quant.metrics import sqnr

    torch.manual_seed(0)
    unrounded = torch.randn(16, 64)
    pt2e, ours = _rounded(unrounded, 0.35), _rounded(unrounded, 0.35, other_way_beyond=0.4)
    assert sqnr(pt2e, ours) < 17  # refused by the former floor of 20 dB against PT2E
    assert _judged("block", "node", ours, pt2e, unrounded)["margin_db"] > 0
    swapped = ours.clone()
    swapped[[0, 1]] = swapped[[1, 0]]
    assert _judged("block", "node", swapped, pt2e, unrounded)["margin_db"] < 0


def test_the_unrounded_graph_skips_the_activations_rounding_only():
    """The graph without activation rounding is the float network up to its int8 weights: closer to it than
    the PT2E graph, not equal to it."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from quant.backends.coreml import _Recorder
    from quant.metrics import sqnr
    from quant.patches.executorch import fast_pattern_annotation
    from quant.quantizer import extended_coreml_quantizer

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 1)).eval()
    x = torch.randn(1, 3, 8, 8)
    with fast_pattern_annotation():  # as quant.recipes.prepare runs it: the same graph, sooner
        prepared = prepare_pt2e(torch.export.export(model, (x,)).module(), extended_coreml_quantizer(False))
    prepared(x)
    graph = torch.export.export(convert_pt2e(prepared), (x,)).run_decompositions({}).module()
    with torch.no_grad():
        float_out, pt2e_out = model(x), _Recorder(graph, set()).run(x)[0]
        unrounded_out = _Recorder(graph, set(), unrounded=True).run(x)[0]
    assert sqnr(float_out, unrounded_out) > sqnr(float_out, pt2e_out) + 3  # measured 45.1 vs 38.7 dB
    assert not torch.equal(float_out, unrounded_out)  # the weights stay int8


@pytest.mark.slow
def test_mlpackage_export_is_int8_described_and_validated(ten_class_exports, tiny_variant):
    """The session's int8 export for Core ML (tests/conftest.py; test_evaluate.py scores it too). That the
    same program gives the same bytes is checked on the conversion alone
    (:func:`test_the_same_program_converts_to_the_same_bytes`)."""
    from quant.files import sha256_of

    exported = ten_class_exports("coreml")
    assert "validated on 4 images by the MIL reference executor" in exported.out
    assert "Running MIL" not in exported.err  # coremltools' progress bars stay quiet
    package, out = exported.artifact, exported.artifact.parent
    assert package.name == f"{tiny_variant}_coreml_int8.mlpackage"
    assert (package / "Manifest.json").is_file()
    # exactly what Core ML reads: no ExecuTorch debug-handle map inside, nor left beside it
    assert {p.name for p in package.iterdir()} == {"Manifest.json", "Data"}
    assert {p.name for p in out.iterdir()} == {package.name, f"{tiny_variant}_coreml_int8.manifest.json", LEDGER}
    manifest = json.loads((out / f"{tiny_variant}_coreml_int8.manifest.json").read_text())
    assert manifest["sha256"] == sha256_of(package)
    assert_follows(manifest, "manifest")
    census = manifest["op_census"]
    assert census["detail"]["int8_weight_tensors"] > 0 and census["int8_gemm_pct"] == 100.0
    # every attention matmul int8 (the stock Core ML quantizer leaves them float); the only
    # GEMMs without a runtime input are the Linears on the learned tokens
    assert census["ops"]["matmul"] == {"int8": 14} and census["ops"]["linear"].get("float", 0) == 0
    validation = manifest["validation"]  # numeric, by the MIL reference executor
    assert "not Core ML" in validation["engine"] and validation["images"] == 4
    assert validation["sqnr_db_vs_pytorch_quantized"] > 20 and validation["blocks"][-1]["block"] == "head"


@pytest.mark.slow
def test_an_fp32_package_whose_first_bridge_attends_over_4096_positions_is_validated(tiny_variant, tmp_path):
    """mobile_former_96m's fp32 package was refused at its first Mobile->Former bridge (22.4 dB, a
    softmax over 12,544 positions): the reference executor's fp16 sum of it stopped at 2048. At
    128x128 the tiny variant's first bridge attends over 64x64 = 4096 positions: refused at 38.0 dB
    there (one image), 66.9 dB on two once the executor sums in fp32: fp16 between ops costs no more."""
    from quant.export import main as export_main

    out = tmp_path / "a"
    assert export_main(["--backend", "coreml", "--model", tiny_variant, "--precision", "fp32", "--input-size", "128",
                        "--calib-images", "1", "--out", str(out), "--no-progress"]) == 0
    manifest = json.loads((out / f"{tiny_variant}_coreml_fp32.manifest.json").read_text())
    blocks = {b["block"]: b["sqnr_db_vs_pytorch"] for b in manifest["validation"]["blocks"]}
    assert blocks["block 1: mobile→former"] >= 55


# --------------------------------------------------------------------------- numeric validation, fault injection


@pytest.fixture(scope="module")
def tiny_packages(tmp_path_factory, tiny_model_factory):
    """int8 and fp32 .mlpackages of the tiny variant with what validating them needs."""
    from quant.backends.coreml import exported_for_coreml, to_mlpackage
    from quant.data import calibration_batches
    from quant.recipes import calibrate, convert, get_recipe, prepare

    torch.manual_seed(0)
    model = tiny_model_factory()
    images = calibration_batches("digits", 2, 64, model.cfg.mean, model.cfg.std)
    recipe = get_recipe("coreml")
    prepared = prepare(model, recipe, images[:1])
    calibrate(prepared, images.split(1), total=len(images), progress=False)
    quantized = convert(prepared, recipe)
    out = tmp_path_factory.mktemp("coreml")
    packages = {}
    for precision, graph in (("int8", quantized), ("fp32", model)):
        exported = exported_for_coreml(graph, images[:1])
        to_mlpackage(exported, out / f"{precision}.mlpackage")
        packages[precision] = (out / f"{precision}.mlpackage", exported, graph if precision == "int8" else None)
    return model, images, packages


def _validate(tiny_packages, precision, package=None):
    from quant.backends.coreml import validate_mlpackage

    model, images, packages = tiny_packages
    original, exported, quantized = packages[precision]
    return validate_mlpackage(package or original, exported, model, quantized, images, model.paper_block)


def _corrupt(tiny_packages, precision, tmp_path, mutate):
    """A copy of the exported package with one thing changed by ``mutate(function, exported)``, which
    returns the paper block it corrupted."""
    import coremltools as ct

    from quant.backends.coreml.mil_reference import load_program

    model, _, packages = tiny_packages
    program = load_program(packages[precision][0])
    block = mutate(program.functions["main"], packages[precision][1], model)
    mlmodel = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                         pass_pipeline=ct.PassPipeline.EMPTY, compute_precision=ct.precision.FLOAT32,
                         skip_model_load=True)
    mlmodel.save(str(tmp_path / "corrupted.mlpackage"))
    return tmp_path / "corrupted.mlpackage", block


def _block_of_op(op, exported, model) -> str | None:
    from quant.census import module_path
    from quant.backends.coreml import FP16_SUFFIX

    nodes = {n.name: n for n in exported.graph.nodes}
    node = nodes.get(op.outputs[0].name.removesuffix(FP16_SUFFIX))
    return model.paper_block(module_path(node)) if node is not None and module_path(node) else None


def _ops_in_blocks(function, exported, model, op_type):
    """(op, block) for each ``op_type`` op with a known block, skipping the stem and bneck-lite."""
    found = [(op, _block_of_op(op, exported, model)) for op in function.operations if op.op_type == op_type]
    return [(op, b) for op, b in found if b and b not in ("stem", "bneck-lite")]


def _replace_const(op, name: str, value) -> None:
    from coremltools.converters.mil.mil import Builder as mb

    old = op.inputs[name]
    with op.enclosing_block:
        new = mb.const(val=value, before_op=op)
    op.enclosing_block.replace_uses_of_var_after_op(anchor_op=new.op, old_var=old, new_var=new, end_op=op)


def _swap_conv_channels(function, exported, model):
    op, block = _ops_in_blocks(function, exported, model, "conv")[0]
    weight = op.weight.op  # int8: constexpr_affine_dequantize of an int8 const
    data = np.array(weight.quantized_data.val)
    data[[0, 1]] = data[[1, 0]]
    _replace_const(weight, "quantized_data", data)
    return block


def _change_one_scale(function, exported, model):
    """One channel's weight scale x4 in the first conv of a paper block. The same change on channel 0 of
    the head's 1x1 conv (the last conv) is not seen: the head stays at 38.5 dB (38.3 dB correct), one
    channel of many diluted below what the int8 floor of 20 dB can tell (docs/core-ml-validation.md)."""
    op, block = _ops_in_blocks(function, exported, model, "conv")[0]
    weight = op.weight.op
    scale = np.array(weight.scale.val)
    scale[0] *= 4
    _replace_const(weight, "scale", scale)
    return block


def _dropping_the_first(op_type: str):
    """A corruption that removes the first ``op_type`` op of the paper blocks, its input passed on."""
    def drop(function, exported, model):
        op, block = _ops_in_blocks(function, exported, model, op_type)[0]
        function.replace_uses_of_var_after_op(anchor_op=op, old_var=op.outputs[0], new_var=op.x)
        function.remove_ops([op])
        return block

    drop.__name__ = f"drop_{op_type}"
    return drop


# The fp32 package's activation to drop: DyReLU's max(a1 x, a2 x), as ``maximum``. Its only ``relu`` ops
# are the DyReLUs' hyper-functions' (Linear -> ReLU -> Linear -> hard-sigmoid on the first token):
# dropping any one of them moved its block by 2.7 dB at most (61.4 -> 58.7 dB, random weights), far
# above the 40 dB floor, so that fault is invisible to these numbers.
_drop_dyrelu_max = _dropping_the_first("maximum")
_drop_relu = _dropping_the_first("relu")


@pytest.mark.slow
def test_correct_packages_validate_block_by_block(tiny_packages):
    for precision in ("int8", "fp32"):
        record = _validate(tiny_packages, precision)
        assert record["engine"].startswith("quant.backends.coreml.mil_reference") and record["images"] == 2
        names = [b["block"] for b in record["blocks"]]
        assert "stem" in names and "head" in names and len(names) >= 6
        assert min(b["margin_db"] for b in [*record["blocks"], record["output"]]) >= 0
        if precision == "int8":  # the reference without activation rounding is another computation
            assert all(b["pt2e_sqnr_db_vs_unrounded"] < 60 for b in record["blocks"])


@pytest.mark.slow
@pytest.mark.parametrize("precision,mutate", [("int8", _swap_conv_channels), ("int8", _change_one_scale),
                                              ("fp32", _drop_dyrelu_max)])
def test_a_corrupted_package_fails_with_its_block_named(tiny_packages, tmp_path, precision, mutate):
    from quant.backends.coreml import ValidationError

    package, block = _corrupt(tiny_packages, precision, tmp_path, mutate)
    with pytest.raises(ValidationError, match=f"block '{re.escape(block)}'"):
        _validate(tiny_packages, precision, package)


@pytest.mark.slow
def test_an_int8_pte_is_one_core_ml_delegate_checked_through_its_embedded_package(tiny_packages, tmp_path):
    """ExecuTorch's default Core ML target, iOS 15, failed to convert any int8 graph ("cast" has no
    int8 there); the delegate converts at iOS 17 like the .mlpackage, and the package it embeds is run."""
    from quant.backends import Census, LowerContext
    from quant.backends import coreml
    from quant.recipes import get_recipe

    model, images, packages = tiny_packages
    ctx = LowerContext(graph=packages["int8"][2], reference=model, images=images, artifact=tmp_path / "m.pte",
                       precision="int8", fmt="pte", recipe=get_recipe("coreml"), block_of=model.paper_block)
    lowered = coreml.lower(ctx)
    validation = coreml.validate(ctx, lowered)
    assert lowered.census == Census(delegates=1, outside={}) and (tmp_path / "m.pte").stat().st_size > 0
    assert op_census_violations(lowered.census.to_json()) == []
    assert validation["checked"] == "the .mlpackage in the Core ML delegate" and len(validation["blocks"]) >= 6
    assert validation["output"]["margin_db"] >= 0


@pytest.mark.slow
def test_a_relu_before_a_quantize_that_clamps_at_zero_is_redundant(tiny_packages, tmp_path):
    """In the int8 program every relu feeds a quantize whose range starts at 0 and clamps as the relu
    does: dropping it changes nothing Core ML computes, and validation says so (no false alarm)."""
    package, _ = _corrupt(tiny_packages, "int8", tmp_path, _drop_relu)
    assert _validate(tiny_packages, "int8", package)["blocks"]


@pytest.mark.slow
def test_no_dequantize_of_the_int8_program_can_overflow_fp16(tiny_packages):
    """coremltools' distributive_quantized_binary_op_scale_normalization gave the tiny variant a
    dequantize with scale 520 (127 * 520 > 65504, inf in fp16); the export skips that pass."""
    from quant.backends.coreml.mil_reference import load_program

    _, _, packages = tiny_packages
    function = load_program(packages["int8"][0]).functions["main"]
    worst = max(float(np.max(np.abs(op.scale.val.astype(np.float32)))) * 255 for op in function.operations
                if op.op_type == "dequantize")
    assert worst < np.finfo(np.float16).max


CONVERT_AGAIN = """
import sys, torch
import torchao.quantization.pt2e.quantize_pt2e  # registers the quantized_decomposed ops the saved program calls
from quant.backends.coreml import to_mlpackage
to_mlpackage(torch.export.load(sys.argv[1]), __import__("pathlib").Path(sys.argv[2]))
"""


@pytest.mark.slow
def test_the_same_program_converts_to_the_same_bytes(tiny_packages, tmp_path):
    """Two causes made packages differ run to run: coremltools names new ops from a process-wide
    counter (a second conversion in one process wrote quantize_890 for quantize_298), and the spec's
    maps were serialized in hash-table order, which changes between processes. The fixture's package
    is converted again after it in this process, and once more in a fresh process."""
    import subprocess
    import sys

    from quant.backends.coreml import to_mlpackage
    from quant.files import sha256_of

    original, exported, _ = tiny_packages[2]["int8"]
    to_mlpackage(exported, tmp_path / "again.mlpackage")
    torch.export.save(exported, tmp_path / "program.pt2")
    fresh = subprocess.run([sys.executable, "-c", CONVERT_AGAIN, str(tmp_path / "program.pt2"),
                            str(tmp_path / "fresh.mlpackage")], capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert sha256_of(tmp_path / "again.mlpackage") == sha256_of(original)
    assert sha256_of(tmp_path / "fresh.mlpackage") == sha256_of(original)
