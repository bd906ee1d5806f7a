"""Core ML: an ``.mlpackage`` (ML program, iOS 17+) or an ExecuTorch ``.pte`` with the Core ML delegate.

Core ML runs models on Apple platforms only; on Linux the conversion works but
prediction does not. The export is checked two ways:

- structurally: the MIL program's op census says which ops Core ML will run in int8
  (those it receives as ``dequantize -> op -> quantize``, which it fuses into int8
  kernels) and which weights are stored as int8 (``constexpr_affine_dequantize``);
- numerically: the package, read back from disk, is run by the MIL reference executor
  (:mod:`quant.mil_reference`) on the calibration images and compared with PyTorch, at
  the output and at the end of every paper block, so that a mis-converted block is found
  by name.
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .. import mil_reference
from ..census import module_path
from ..cli import UserError, native_logs_silenced
from ..files import sha256_of
from ..metrics import compare_logits, sqnr
from ..patches import scoped_patches
from . import Census, LowerContext, Lowered, counted, summed_by_kind

GEMM_OPS = {"conv": "conv", "linear": "linear", "matmul": "matmul"}
NOT_COMPUTE = {"quantize", "dequantize", "const"}
# Activations the Core ML quantizer fuses into the conv/linear before them: the pair is one
# int8 unit, quantized after the activation (``dq -> conv -> relu -> q``).
FUSED_ACTIVATIONS = {"relu", "relu6", "clip", "gelu", "silu", "sigmoid", "sigmoid_hard", "leaky_relu"}
# A block of the Core ML program whose SQNR against the PyTorch graph it was converted from falls below
# this is mis-converted. Measured on the test variant: fp32 packages (fp16 between ops, against
# PyTorch fp32) 57 to 66 dB at every block; int8 packages (fp16 scales and activations, against
# PT2E's fp32 simulation: a value near a rounding boundary lands one step away) 28 dB and more.
# One swapped weight channel, wrong scale or missing activation takes its block far below.
MIN_BLOCK_SQNR_DB = {"fp32": 40.0, "int8": 20.0}
# The reference executor rebuilds every op with coremltools' MIL builder (milliseconds each, seconds
# per image), so it checks this many of the calibration images.
VALIDATION_IMAGES = 8
PTE_NOTE = ("not validated numerically: the network is not one Core ML delegate (ops outside it or several "
            "delegates), so no single embedded .mlpackage computes it")
# For an int8 add or sub, this pass scales one input by s_x / s_y so that the other's scale becomes 1.
# With a small s_y the factor exceeds fp16's range (the test variant: a dequantize scale of 520, so
# 127 * 520 overflows to inf), and the program no longer computes the network; found by the
# reference executor. Without it the add costs one multiply more.
OVERFLOWING_PASS = "common::distributive_quantized_binary_op_scale_normalization"
FP16_SUFFIX = "_cast_fp16"  # coremltools' name for a var computed in fp16: the FX node's name + this
# The coremltools release the fresh-name patch of :func:`_fresh_op_names` was checked against.
NAMES_PINNED = {"coremltools": "9.0"}


class ValidationError(UserError):
    """The Core ML program does not compute what the PyTorch graph it came from computes: the export
    fails (``error:``, exit 2) and nothing is published."""


def _walk(block):
    for op in block.operations:
        yield op
        for inner in op.blocks:
            yield from _walk(inner)


def _source_type(var) -> str | None:
    return var.op.op_type if getattr(var, "op", None) is not None else None


def _quantized(var) -> bool:
    return any(c.op_type == "quantize" for c in var.child_ops)


def _fused_then_quantized(var) -> bool:
    users = list(var.child_ops)
    return len(users) == 1 and users[0].op_type in FUSED_ACTIVATIONS and all(_quantized(o) for o in users[0].outputs)


def mil_census(program) -> Census:
    """Ops of a MIL program, each compute op marked int8 when Core ML receives it as dq -> op -> q
    (for a conv, linear or matmul also dq -> op -> fused activation -> q). The whole program is
    Core ML's: no delegates, nothing outside. ``detail.int8_weight_tensors``: weights stored int8."""
    ops: dict[str, Counter] = {}
    weights_int8 = 0
    for function in program.functions.values():
        for op in _walk(function):
            kind = op.op_type
            if kind.startswith("constexpr"):
                weights_int8 += kind in ("constexpr_affine_dequantize", "constexpr_blockwise_shift_scale")
                continue
            if kind in NOT_COMPUTE:
                continue
            inputs = [v for v in op.inputs.values() if _source_type(v) not in (None, "const")]
            inputs = [v for v in inputs if not str(_source_type(v)).startswith("constexpr")]
            if not inputs and kind in GEMM_OPS:  # on weights only (e.g. the learned tokens): no runtime input
                ops.setdefault(kind, Counter())["constant"] += 1
                continue
            int8_in = bool(inputs) and all(_source_type(v) == "dequantize" for v in inputs)
            int8_out = all(_quantized(out) or (kind in GEMM_OPS and _fused_then_quantized(out)) for out in op.outputs)
            ops.setdefault(kind, Counter())["int8" if int8_in and int8_out else "float"] += 1
    gemm = [ops.get(k, Counter()) for k in GEMM_OPS]
    total = sum(c["int8"] + c["float"] for c in gemm)  # constant GEMMs are neither
    return Census(
        ops=counted(ops), kinds=counted(summed_by_kind(ops, GEMM_OPS)),
        conversions={"quantize": sum(1 for f in program.functions.values() for op in _walk(f) if op.op_type == "quantize")},
        int8_gemm_pct=round(100.0 * sum(c["int8"] for c in gemm) / total, 2) if total else 0.0,
        detail={"int8_weight_tensors": weights_int8},
    )


def _fresh_op_names():
    """coremltools 9.0 names the ops a pass creates from one process-wide counter per op type
    (``Builder.name_count``), so a second conversion in the same process writes ``quantize_890``
    where the first wrote ``quantize_298``. A counter of its own per conversion makes the names
    depend on the program only. There is no option for it: a scoped patch (:mod:`quant.patches`)."""
    from collections import defaultdict

    from coremltools.converters.mil.mil import Builder

    return scoped_patches([(Builder, "name_count", lambda _: defaultdict(int))], NAMES_PINNED)


def _deterministic_spec(package: Path) -> None:
    """Write the package's model spec again with protobuf's deterministic serialization.

    coremltools serializes the spec's maps (each op's named inputs, attributes) in the order of
    the protobuf runtime's hash table, whose seed changes from process to process, so the same
    program gave different bytes run to run. Sorted maps give the same bytes; the spec itself
    is unchanged (it parses back equal)."""
    from coremltools.proto import Model_pb2

    path = package / "Data" / "com.apple.CoreML" / "model.mlmodel"
    spec = Model_pb2.Model()
    spec.ParseFromString(path.read_bytes())
    path.write_bytes(spec.SerializeToString(deterministic=True))


def _deterministic_manifest(package: Path) -> None:
    """Replace the random item identifiers of ``Manifest.json`` with content-derived ones.

    coremltools names each item of an ``.mlpackage`` with a fresh UUID; deriving them
    from the item's path and contents (a file, or a folder such as ``weights/``) makes the
    same export produce the same package.
    """
    manifest_path = package / "Manifest.json"
    manifest = json.loads(manifest_path.read_text())
    renamed = {}
    for old_id, item in manifest["itemInfoEntries"].items():
        content = sha256_of(package / "Data" / item["path"])
        digest = hashlib.sha256(f"{item['path']}\0{content}".encode()).digest()
        renamed[old_id] = str(uuid.UUID(bytes=digest[:16])).upper()
    manifest["itemInfoEntries"] = {renamed[k]: v for k, v in manifest["itemInfoEntries"].items()}
    manifest["rootModelIdentifier"] = renamed[manifest["rootModelIdentifier"]]
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def exported_for_coreml(graph: torch.nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    """The program coremltools converts (its node names become the MIL program's var names)."""
    return torch.export.export(graph, (example,)).run_decompositions({})


def coreml_passes():
    """coremltools' default pass pipeline less :data:`OVERFLOWING_PASS`, for both formats."""
    import coremltools as ct

    passes = ct.PassPipeline.DEFAULT  # a new pipeline on each access
    passes.remove_passes([OVERFLOWING_PASS])
    return passes


def to_mlpackage(exported: torch.export.ExportedProgram, path: Path):
    """Convert to an ML program (iOS 17) and save it as an ``.mlpackage`` directory."""
    import coremltools as ct

    # coremltools draws a progress bar per pass pipeline, unasked
    with native_logs_silenced(), _fresh_op_names():
        mlmodel = ct.convert(exported, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                             pass_pipeline=coreml_passes(), skip_model_load=sys.platform != "darwin")
    mlmodel.save(str(path))
    _deterministic_spec(path)
    _deterministic_manifest(path)
    return mlmodel


def to_coreml_pte(graph: torch.nn.Module, example: torch.Tensor, path: Path) -> tuple[Census, list]:
    """An ExecuTorch program whose graph runs in the Core ML delegate: (census, lowered delegate modules).

    The delegate converts as :func:`to_mlpackage` does (iOS 17, :func:`coreml_passes`).
    ExecuTorch's default target, iOS 15, cannot convert an int8 graph: coremltools' iOS 15
    ``cast`` has no int8, which its per-channel dequantize of an int8 weight needs.
    """
    import coremltools as ct
    from executorch.backends.apple.coreml.compiler import CoreMLBackend
    from executorch.backends.apple.coreml.partition import CoreMLPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from ..census import is_op, op_name

    specs = CoreMLBackend.generate_compile_specs(minimum_deployment_target=ct.target.iOS17,
                                                 pass_names=coreml_passes().passes)
    with native_logs_silenced(), _fresh_op_names():  # the delegate converts with coremltools: its progress bars
        edge = to_edge_transform_and_lower(torch.export.export(graph, (example,)),
                                           partitioner=[CoreMLPartitioner(compile_specs=specs)])
    gm = edge.exported_program().graph_module
    outside = Counter(op_name(n) for n in gm.graph.nodes if is_op(n))
    calls = [n for n in gm.graph.nodes if "executorch_call_delegate" in str(n.target)]
    path.write_bytes(edge.to_executorch().buffer)
    return Census(delegates=len(calls), outside=dict(outside)), [getattr(gm, n.args[0].target) for n in calls]


def embedded_mlpackage(lowered, directory: Path) -> Path:
    """Unpack the ``.mlpackage`` a Core ML delegate carries (ExecuTorch's own flat directory format,
    the package under a folder named after the model's identifier)."""
    from executorch.backends.apple.coreml import executorchcoreml

    if not executorchcoreml.unflatten_directory_contents(lowered.processed_bytes, str(directory)):
        raise AssertionError("executorchcoreml could not unpack the Core ML delegate's payload")
    (package,) = directory.rglob("*.mlpackage")
    return package


def checkpoints(exported: torch.export.ExportedProgram, program,
                block_of: Callable[[str], str]) -> dict[str, tuple[str, str]]:
    """Where each paper block is compared: block -> (FX node, MIL var) at the block's end, in graph order
    (a fault upstream of a block's checkpoint shows first there).

    coremltools names a var after the FX node it converts (``+ _cast_fp16`` in fp16);
    the block's checkpoint is its last FX node, in graph order, whose value the MIL program
    also computes, with the same shape (ops fused away by coremltools'
    passes have none).
    """
    from coremltools.converters.mil.mil import types

    mil = {var.name.removesuffix(FP16_SUFFIX): var for op in program.functions["main"].operations
           for var in op.outputs if op.op_type != "const" and types.is_float(var.dtype)}
    points: dict[str, tuple[int, str, str]] = {}
    for i, node in enumerate(exported.graph.nodes):
        path, var = module_path(node), mil.get(node.name)
        value = node.meta.get("val")
        if path and var is not None and isinstance(value, torch.Tensor) and tuple(value.shape) == tuple(var.shape):
            points[block_of(path)] = (i, node.name, var.name)
    return {block: (node, var) for block, (_, node, var) in sorted(points.items(), key=lambda item: item[1][0])}


class _Recorder(torch.fx.Interpreter):
    """Runs a graph and keeps the values of the nodes named in ``keep``."""

    def __init__(self, module: torch.fx.GraphModule, keep: set[str]) -> None:
        super().__init__(module)
        self.keep, self.values = keep, {}

    def run_node(self, node: torch.fx.Node):
        value = super().run_node(node)
        if node.name in self.keep:
            self.values[node.name] = value.detach()
        return value


def validate_mlpackage(package: Path, exported: torch.export.ExportedProgram, reference: torch.nn.Module,
                       quantized: torch.nn.Module | None, images: torch.Tensor, block_of: Callable[[str], str],
                       progress: bool = False) -> dict:
    """Run the package (read back from disk) on ``images`` with the MIL reference executor.

    Returns the validation record of the other backends (SQNR and top-1 agreement against
    the fp32 ``reference``, SQNR against the PT2E ``quantized`` graph), with ``blocks``: the
    SQNR at the end of every paper block against ``exported``, the graph that was converted.
    Raises :class:`ValidationError` naming the first block (or the output, against PT2E for
    int8 and fp32 for fp32) below :data:`MIN_BLOCK_SQNR_DB`.
    """
    from tqdm import tqdm

    program = mil_reference.load_program(package)
    executor = mil_reference.Executor(program)
    points = checkpoints(exported, program, block_of)
    graph = exported.module()
    ours, ref_blocks, mil_blocks = [], {b: [] for b in points}, {b: [] for b in points}
    for x in tqdm(images.split(1), desc="Core ML reference run", unit="image", disable=not progress, leave=False):
        out, kept = executor(x.numpy(), keep={var for _, var in points.values()})
        recorder = _Recorder(graph, {node for node, _ in points.values()})
        with torch.no_grad():
            recorder.run(x)
        ours.append(torch.from_numpy(np.asarray(out, dtype=np.float32)))
        for block, (node, var) in points.items():
            ref_blocks[block].append(recorder.values[node].float().flatten())
            mil_blocks[block].append(torch.from_numpy(np.asarray(kept[var], dtype=np.float32)).flatten())
    record = compare_logits(torch.cat(ours), reference, quantized, images)
    blocks = [{"block": b, "node": node,
               "sqnr_db_vs_pytorch": round(sqnr(torch.cat(ref_blocks[b]), torch.cat(mil_blocks[b])), 2)}
              for b, (node, _) in points.items()]
    minimum = MIN_BLOCK_SQNR_DB["fp32" if quantized is None else "int8"]
    record.update(engine=mil_reference.ENGINE, min_block_sqnr_db=minimum, blocks=blocks)
    output = {"block": "output", "node": "logits", "sqnr_db_vs_pytorch": record["sqnr_db_vs_pytorch_quantized"]}
    bad = next((b for b in [*blocks, output] if not b["sqnr_db_vs_pytorch"] >= minimum), None)
    if bad is not None:
        raise ValidationError(f"{package.name}: block {bad['block']!r} computes something else than PyTorch: "
                              f"SQNR {bad['sqnr_db_vs_pytorch']:.1f} dB at {bad['node']!r} "
                              f"(at least {minimum:.0f} dB expected)")
    return record


def lower(ctx: LowerContext) -> Lowered:
    """Write ``ctx.artifact``: an ``.mlpackage``, or a ``.pte`` with the Core ML delegate (the first image
    is the example input). ``state``: what :func:`validate` runs (the converted program, or the delegates)."""
    example = ctx.images[:1]
    if ctx.fmt == "pte":
        census, delegates = to_coreml_pte(ctx.graph, example, ctx.artifact)
        return Lowered(census, state=delegates)
    exported = exported_for_coreml(ctx.graph, example)
    return Lowered(mil_census(to_mlpackage(exported, ctx.artifact)._mil_program), state=exported)


def validate(ctx: LowerContext, lowered: Lowered) -> dict:
    """:func:`validate_mlpackage` on the first :data:`VALIDATION_IMAGES` images. A ``.pte`` is validated
    through the ``.mlpackage`` its Core ML delegate embeds when the whole network is that one delegate."""
    images, precision = ctx.images[:VALIDATION_IMAGES], ctx.precision
    if ctx.fmt != "pte":
        validation = validate_mlpackage(ctx.artifact, lowered.state, ctx.reference, ctx.quantized, images,
                                        ctx.block_of, ctx.progress)
        return {**validation, "precision": precision}
    delegates = lowered.state
    if len(delegates) != 1 or lowered.census.outside:
        return {"images": 0, "precision": precision, "note": PTE_NOTE}
    with tempfile.TemporaryDirectory() as tmp:
        package = embedded_mlpackage(delegates[0], Path(tmp))
        validation = validate_mlpackage(package, delegates[0].original_module, ctx.reference, ctx.quantized, images,
                                        ctx.block_of, ctx.progress)
    return {**validation, "precision": precision, "checked": "the .mlpackage in the Core ML delegate"}
