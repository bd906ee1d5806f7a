"""Core ML: an ``.mlpackage`` (ML program, iOS 17+) or an ExecuTorch ``.pte`` with the Core ML delegate.

Core ML runs models on Apple platforms only; on Linux the conversion works but
prediction does not. The export is checked two ways:

- structurally: the MIL program's op census says which ops Core ML will run in int8
  (those it receives as ``dequantize -> op -> quantize``, which it fuses into int8
  kernels) and which weights are stored as int8 (``constexpr_affine_dequantize``);
- numerically: the package, read back from disk, is run by the MIL reference executor
  (:mod:`.mil_reference`) on the calibration images and compared with PyTorch, at
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

from . import mil_reference
from ...census import module_path
from ...errors import UserError, native_logs_silenced
from ...files import sha256_of
from ...metrics import compare_logits, sqnr
from ...patches.coremltools import fresh_op_names
from ...timing import phase
from .. import BACKENDS, Census, LowerContext, Lowered

GEMM_OPS = {"conv": "conv", "linear": "linear", "matmul": "matmul"}
NOT_COMPUTE = {"quantize", "dequantize", "const"}
# Activations the Core ML quantizer fuses into the conv/linear before them: the pair is one
# int8 unit, quantized after the activation (``dq -> conv -> relu -> q``).
FUSED_ACTIVATIONS = {"relu", "relu6", "clip", "gelu", "silu", "sigmoid", "sigmoid_hard", "leaky_relu"}
# An fp32 package computes the PyTorch graph it was converted from up to fp16 between ops: a block whose
# SQNR against that graph falls below this is mis-converted. Measured on the test variant: 57 to 66 dB
# at every block; one swapped weight channel, wrong scale or missing activation takes its block far below.
MIN_FP32_BLOCK_SQNR_DB = 40.0
# An int8 package is held to its PT2E graph differently: its fp16 scales and activations put a value that
# lies on a rounding midpoint one step away from where PT2E's fp32 puts it, and downstream of many such
# flips a correct trained network's block stood at 19.6 dB against PT2E. A flip moves a value from one
# side of its unrounded value to the other, no further from it: so each block of the program is compared
# with the same graph computed without activation rounding ("unrounded"), and must be as close to it as
# PT2E itself is, less this margin (four times PT2E's rounding-error energy). Measured: correct packages
# 0.3 to 1.1 dB further from it than PT2E after PTQ, 2.3 dB after QAT (seed 0's Fashion-MNIST network,
# at the output); the faults of tests/quant/backends/coreml/test_coreml.py 14 and 18 dB further.
INT8_MARGIN_DB = 6.0
# The reference executor runs op by op in Python (0.25 s per image for 26m at 32x32, about 1.5 s at
# 224x224, one AMD EPYC core), so the export checks this many of the calibration images.
VALIDATION_IMAGES = 8
PTE_NOTE = ("not validated numerically: the network is not one Core ML delegate (ops outside it or several "
            "delegates), so no single embedded .mlpackage computes it")
# For an int8 add or sub, this pass scales one input by s_x / s_y so that the other's scale becomes 1.
# With a small s_y the factor exceeds fp16's range (the test variant: a dequantize scale of 520, so
# 127 * 520 overflows to inf), and the program no longer computes the network; found by the
# reference executor. Without it the add costs one multiply more.
OVERFLOWING_PASS = "common::distributive_quantized_binary_op_scale_normalization"
FP16_SUFFIX = "_cast_fp16"  # coremltools' name for a var computed in fp16: the FX node's name + this
# What coremltools 9 writes into an .mlpackage beside Manifest.json for ExecuTorch's devtools (not a package item).
DEBUG_HANDLE_MAPPING = "executorch_debug_handle_mapping.json"


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
    return Census.of(
        ops, GEMM_OPS,
        conversions={"quantize": sum(1 for f in program.functions.values() for op in _walk(f) if op.op_type == "quantize")},
        detail={"int8_weight_tensors": weights_int8},
    )


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
    with native_logs_silenced(), fresh_op_names():
        mlmodel = ct.convert(exported, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                             pass_pipeline=coreml_passes(), skip_model_load=sys.platform != "darwin")
    mlmodel.save(str(path))
    # coremltools puts the program's ExecuTorch debug-handle map inside the package (26m: 1.5 MB, a quarter
    # of it); Core ML does not read it and an app would ship it for nothing (an ExecuTorch .pte keeps its own).
    (path / DEBUG_HANDLE_MAPPING).unlink(missing_ok=True)
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

    from ...census import is_op, op_name

    specs = CoreMLBackend.generate_compile_specs(minimum_deployment_target=ct.target.iOS17,
                                                 pass_names=coreml_passes().passes)
    with native_logs_silenced(), fresh_op_names():  # the delegate converts with coremltools: its progress bars
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


def _rounds(target) -> bool:
    """A PT2E quantize or dequantize op (``quantized_decomposed::quantize_per_tensor`` and the like), as an
    ATen or an edge-dialect op (the Core ML delegate's graph)."""
    schema = getattr(target, "_schema", None)
    namespace, _, name = (schema.name if schema is not None else "").partition("::")
    return namespace == "quantized_decomposed" and name.startswith(("quantize_", "dequantize_"))


class _Recorder(torch.fx.Interpreter):
    """Runs a graph and keeps the values of the nodes named in ``keep``. ``unrounded``: every quantize and
    dequantize of a float value passes it through, so activations are not rounded; weights stored int8
    are still dequantized."""

    def __init__(self, module: torch.fx.GraphModule, keep: set[str], unrounded: bool = False) -> None:
        super().__init__(module)
        self.keep, self.unrounded, self.values = keep, unrounded, {}

    def call_function(self, target, args, kwargs):
        if self.unrounded and _rounds(target) and args[0].is_floating_point():
            return args[0]
        return super().call_function(target, args, kwargs)

    def run_node(self, node: torch.fx.Node):
        value = super().run_node(node)
        if node.name in self.keep:
            self.values[node.name] = value.detach()
        return value


def _judged(point: str, node: str, mil: torch.Tensor, graph: torch.Tensor, unrounded: torch.Tensor | None) -> dict:
    """One checkpoint's SQNRs and its margin over the floor (negative: mis-converted). fp32 (``unrounded``
    None): the program against the graph, floor :data:`MIN_FP32_BLOCK_SQNR_DB`. int8: the program against
    the unrounded graph, floor PT2E's own SQNR against it less :data:`INT8_MARGIN_DB`."""
    entry = {"block": point, "node": node, "sqnr_db_vs_pytorch": round(sqnr(graph, mil), 2)}
    if unrounded is None:
        return {**entry, "margin_db": round(entry["sqnr_db_vs_pytorch"] - MIN_FP32_BLOCK_SQNR_DB, 2)}
    ours, pt2e = round(sqnr(unrounded, mil), 2), round(sqnr(unrounded, graph), 2)
    return {**entry, "sqnr_db_vs_unrounded": ours, "pt2e_sqnr_db_vs_unrounded": pt2e,
            "margin_db": round(ours - (pt2e - INT8_MARGIN_DB), 2)}


def validate_mlpackage(package: Path, exported: torch.export.ExportedProgram, reference: torch.nn.Module,
                       quantized: torch.nn.Module | None, images: torch.Tensor, block_of: Callable[[str], str],
                       progress: bool = False) -> dict:
    """Run the package (read back from disk) on ``images`` with the MIL reference executor.

    Returns the validation record of the other backends (SQNR and top-1 agreement against
    the fp32 ``reference``, SQNR against the PT2E ``quantized`` graph), with ``blocks``: at the
    end of every paper block and at the output, the SQNRs of :func:`_judged` against
    ``exported``, the graph that was converted. Raises :class:`ValidationError` naming the
    first of them whose margin is negative.
    """
    from tqdm import tqdm

    program = mil_reference.load_program(package)
    executor = mil_reference.Executor(program)
    points = checkpoints(exported, program, block_of)
    graph, keep, int8 = exported.module(), {node for node, _ in points.values()}, quantized is not None
    values = {source: {block: [] for block in [*points, "output"]} for source in ("mil", "graph", "unrounded")}
    for x in tqdm(images.split(1), desc="Core ML reference run", unit="image", disable=not progress, leave=False):
        with phase("MIL reference executor"):
            out, kept = executor(x.numpy(), keep={var for _, var in points.values()})
        runs = {"mil": (kept, torch.from_numpy(np.asarray(out, dtype=np.float32)))}
        for source, unrounded in (("graph", False), ("unrounded", True))[:1 + int8]:
            recorder = _Recorder(graph, keep, unrounded)
            with torch.no_grad(), phase(f"{source} checkpoints"):
                logits = recorder.run(x)
            runs[source] = (recorder.values, logits[0] if isinstance(logits, (tuple, list)) else logits)
        for source, (kept_values, logits) in runs.items():
            for block, (node, var) in points.items():
                value = kept_values[var if source == "mil" else node]
                values[source][block].append(torch.as_tensor(np.asarray(value, dtype=np.float32)).flatten())
            values[source]["output"].append(logits.float().flatten())
    joined = {source: {block: torch.cat(parts) for block, parts in blocks.items() if parts}
              for source, blocks in values.items()}
    nodes = {**{block: node for block, (node, _) in points.items()}, "output": "logits"}
    judged = [_judged(block, nodes[block], joined["mil"][block], joined["graph"][block],
                      joined["unrounded"][block] if int8 else None) for block in nodes]
    record = compare_logits(joined["mil"]["output"].reshape(len(images), -1), reference, quantized, images)
    criterion = (f"every block and the output as close to the graph without activation rounding as PT2E is, "
                 f"less {INT8_MARGIN_DB:.0f} dB" if int8 else
                 f"every block and the output at least {MIN_FP32_BLOCK_SQNR_DB:.0f} dB against the converted graph")
    record.update(engine=mil_reference.ENGINE, criterion=criterion, blocks=judged[:-1], output=judged[-1])
    bad = next((b for b in judged if not b["margin_db"] >= 0), None)
    if bad is not None:
        measured = (f"SQNR {bad['sqnr_db_vs_unrounded']:.1f} dB against the unrounded graph where PT2E has "
                    f"{bad['pt2e_sqnr_db_vs_unrounded']:.1f} dB" if int8 else
                    f"SQNR {bad['sqnr_db_vs_pytorch']:.1f} dB against the graph (at least "
                    f"{MIN_FP32_BLOCK_SQNR_DB:.0f} dB expected)")
        where = "the output" if bad["block"] == "output" else f"block {bad['block']!r}"
        raise ValidationError(f"{package.name}: {where} computes something else than PyTorch: {measured} "
                              f"at {bad['node']!r}")
    return record


class MILRunner:
    """An ``.mlpackage`` run image by image by the MIL reference executor: its program op by op, not
    Core ML's kernels (Core ML itself needs macOS)."""

    def __init__(self, package: Path) -> None:
        self.name = package.name
        try:
            self.executor = mil_reference.Executor(mil_reference.load_program(package))
        except Exception as e:  # noqa: BLE001 - coremltools raises anything (protobuf, KeyError...) for a corrupt package
            raise UserError(f"cannot read {package.name} (corrupt .mlpackage?): "
                            f"{(str(e).strip().splitlines() or [type(e).__name__])[0]}") from None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.executor(x.numpy())
        return torch.from_numpy(np.asarray(out, dtype=np.float32))

    def invoker(self, x: torch.Tensor) -> Callable[[], object]:
        raise UserError(f"{self.name}: {BACKENDS['coreml'].not_timed}")


def open_artifact(path: Path, threads: int = 1) -> MILRunner:
    """The ``.mlpackage`` on the MIL reference executor (one thread: ``threads`` is not used)."""
    return MILRunner(path)


def lower(ctx: LowerContext) -> Lowered:
    """Write ``ctx.artifact``: an ``.mlpackage``, or a ``.pte`` with the Core ML delegate (the first image
    is the example input). ``state``: what :func:`validate` runs (the converted program, or the delegates)."""
    example = ctx.images[:1]
    if ctx.fmt == "pte":
        census, delegates = to_coreml_pte(ctx.graph, example, ctx.artifact)
        return Lowered(census, state=delegates)
    with phase("capture"):
        exported = exported_for_coreml(ctx.graph, example)
    with phase("convert"):
        program = to_mlpackage(exported, ctx.artifact)._mil_program
    with phase("census"):
        return Lowered(mil_census(program), state=exported)


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
