"""``python -m quant.export``: one command from a checkpoint to a phone-ready artifact.

Stages: build the model (authors' float or our QAT checkpoint) -> quantize (PTQ on
calibration images, or convert the QAT checkpoint) -> lower (ExecuTorch + XNNPACK,
Core ML, LiteRT) -> write the artifact atomically -> validate it on the host -> write
``<artifact>.manifest.json`` beside it.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

import mobileformer as mf
from mobileformer.checkpoint import checkpoint_num_classes
from mobileformer.model import MobileFormer

from . import HelpFormatter, __version__, versions
from .census import capture_xnnpack_graphs, xnnpack_census
from .cli import UserError, check_at_least, check_input_size, command
from .data import calibration_batches
from .files import ensure_writable_dir, sha256_of, size_of, staged_outputs, write_json_atomic
from .latency import MANIFEST_FORMAT
from .metrics import validation_record
from .qat_graph import QATModel, load_qat_model
from .recipes import Recipe, calibrate, convert, get_recipe, prepare
from .twin import quantizable

log = logging.getLogger("quant")

BACKENDS = ("xnnpack", "coreml", "tflite")
FP32_TOLERANCE = 1e-4


class ExportError(UserError):
    """An export that cannot be done as asked (bad option combination, failed validation)."""


@dataclass
class ExportConfig:
    backend: str
    model: str = "mobile_former_26m"
    checkpoint: Path | None = None
    precision: str = "int8"
    recipe: str | None = None  # default: the backend's own recipe
    calib: str = "digits"
    calib_images: int = 32
    input_size: int | None = None
    num_classes: int | None = None
    out: Path = Path("out")
    format: str | None = None  # coreml: "mlpackage" (default) or "pte"
    profile_blocks: bool = False
    strict: bool = False
    progress: bool = True


@dataclass
class ExportResult:
    artifact: Path
    manifest_path: Path
    manifest: dict = field(default_factory=dict)


def _stage(message: str) -> None:
    print(f"[export] {message}", flush=True)


@contextlib.contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[stage] = round(time.perf_counter() - started, 1)


def artifact_name(model: str, backend: str, precision: str, recipe: str, fmt: str, profile_blocks: bool) -> str:
    """``mobile_former_26m_xnnpack_int8.pte``; a recipe other than the backend's own
    (``xnnpack-stock`` -> ``_stock``) and block profiling are marked. An fp32 name marks
    the recipe only where it changes the fp32 program: the float model as it is (``_stock``)
    instead of the twin."""
    name = f"{model}_{backend}_{precision}"
    variant = recipe.removeprefix(backend).lstrip("-").replace("-", "_")
    if variant and (precision == "int8" or not get_recipe(recipe).twin):
        name += f"_{variant}"
    if profile_blocks:
        name += "_blocks"
    return f"{name}.{fmt}"


def manifest_path_for(artifact: Path) -> Path:
    return artifact.with_name(artifact.name.rsplit(".", 1)[0] + ".manifest.json")


def _build_model(cfg: ExportConfig, recipe: Recipe) -> tuple[MobileFormer, QATModel | None, dict]:
    """The float model, and the QAT model when the checkpoint is one of ours."""
    source: dict = {"checkpoint": str(cfg.checkpoint) if cfg.checkpoint else None}
    if cfg.checkpoint is not None and Path(cfg.checkpoint).is_file():
        source["checkpoint_sha256"] = sha256_of(cfg.checkpoint)
    # an fp32 export takes a QAT checkpoint of any recipe: its fp32 network is the same
    expected_recipe = recipe.name if cfg.precision == "int8" else None
    qat = load_qat_model(cfg.checkpoint, cfg.model, expected_recipe) if cfg.checkpoint else None
    if qat is not None:
        if cfg.input_size not in (None, qat.input_size):
            raise ExportError(f"{cfg.checkpoint} was trained at {qat.input_size}x{qat.input_size}; "
                              f"--input-size {cfg.input_size} does not fit its graph")
        source.update(kind="qat", recipe=qat.recipe, input_size=qat.input_size)
        return qat.model, qat, source
    num_classes = cfg.num_classes or (checkpoint_num_classes(cfg.checkpoint) if cfg.checkpoint else None) or 1000
    with torch.random.fork_rng():
        torch.manual_seed(0)  # without a checkpoint the weights are random, but the same every time
        model = mf.create_model(cfg.model, checkpoint=cfg.checkpoint, num_classes=num_classes)
    source["kind"] = "float" if cfg.checkpoint else "random-init"
    return model, None, source


def _quantize(cfg: ExportConfig, recipe: Recipe, model: MobileFormer, qat: QATModel | None,
              images: torch.Tensor) -> torch.nn.Module:
    if cfg.precision == "fp32":
        if qat is not None:
            return qat.reference  # a QAT checkpoint's fp32 network is its own
        return quantizable(model) if recipe.twin else model  # the twin: the same function, fewer ops to run
    if qat is not None:
        _stage("converting the QAT checkpoint (fake-quant -> int8)")
        return convert(qat.graph, recipe)
    _stage(f"PTQ: {recipe.name} recipe, calibrating on {len(images)} images")
    prepared = prepare(model, recipe, images[:1])
    calibrate(prepared, images.split(1), total=len(images), progress=cfg.progress)
    return convert(prepared, recipe)


def _lower_xnnpack(cfg: ExportConfig, recipe: Recipe, model: MobileFormer, graph: torch.nn.Module,
                   example: torch.Tensor) -> tuple[bytes, object, dict, dict]:
    from executorch.backends.transforms.remove_clone_ops import RemoveCloneOpsTransform
    from executorch.exir import to_edge_transform_and_lower

    from .lowering import edge_compile_config, fast_lowering, verify_edge_program
    from .movement import fused_data_movement
    from .partition import debug_handle_blocks, delegate_blocks, xnnpack_partitioner

    stock = recipe.stock_lowering
    partitioner = xnnpack_partitioner(block_of=model.paper_block if cfg.profile_blocks else None, stock=stock and not cfg.profile_blocks)
    exported = torch.export.export(graph, (example,))
    config = edge_compile_config()
    # fp32 only: on 26m it saves 9 M instructions in fp32 but costs 0.9 M in int8 (docs/benchmarks.md)
    moves = fused_data_movement() if cfg.precision == "fp32" and not stock else contextlib.nullcontext()
    with fast_lowering():
        with capture_xnnpack_graphs() as graphs, moves:
            edge = to_edge_transform_and_lower(exported, transform_passes=[RemoveCloneOpsTransform()],
                                               partitioner=[partitioner], compile_config=config, generate_etrecord=True)
        program = edge.to_executorch()
    census = xnnpack_census(graphs, edge.exported_program())
    etrecord = program.get_etrecord()
    verify_edge_program(etrecord.edge_dialect_program, config)
    profiling = {"debug_handle_blocks": debug_handle_blocks(edge.exported_program(), model.paper_block)}
    if cfg.profile_blocks:
        profiling["delegate_blocks"] = delegate_blocks(edge.exported_program(), model.paper_block)
    return program.buffer, etrecord, census, profiling


def _validate_pte(cfg: ExportConfig, artifact: Path, reference: torch.nn.Module, quantized: torch.nn.Module,
                  images: torch.Tensor) -> dict:
    from .runtime import Program

    program = Program(artifact)
    with torch.no_grad():
        ref = torch.cat([reference(x) for x in images.split(1)])
        ours = torch.cat([program(x) for x in images.split(1)])
        pt2e = torch.cat([quantized(x) for x in images.split(1)]) if cfg.precision == "int8" else None
    result = validation_record(ref, ours, pt2e)
    _check_fp32(cfg, result)
    return result


def _check_fp32(cfg: ExportConfig, validation: dict) -> None:
    if cfg.precision == "fp32" and validation["max_abs_diff_vs_fp32"] > FP32_TOLERANCE:
        raise ExportError(f"fp32 {cfg.backend} artifact differs from PyTorch by "
                          f"{validation['max_abs_diff_vs_fp32']:.2e} > {FP32_TOLERANCE}")


def _check_options(cfg: ExportConfig) -> tuple[Recipe, str]:
    check_at_least(1, calib_images=cfg.calib_images, num_classes=cfg.num_classes)
    check_input_size(cfg.input_size)
    if cfg.backend not in BACKENDS:
        raise ExportError(f"unknown backend {cfg.backend!r}; valid: {', '.join(BACKENDS)}")
    if cfg.precision not in ("int8", "fp32"):
        raise ExportError(f"precision must be int8 or fp32, got {cfg.precision!r}")
    recipe = get_recipe(cfg.recipe or cfg.backend)  # each backend's own recipe bears its name
    if recipe.backend != cfg.backend:
        raise ExportError(f"recipe {recipe.name!r} targets {recipe.backend}, not {cfg.backend}")
    fmt = cfg.format or {"xnnpack": "pte", "coreml": "mlpackage", "tflite": "tflite"}[cfg.backend]
    allowed = {"xnnpack": ("pte",), "coreml": ("mlpackage", "pte"), "tflite": ("tflite",)}[cfg.backend]
    if fmt not in allowed:
        raise ExportError(f"--format for {cfg.backend} is one of {', '.join(allowed)}, got {fmt!r}")
    if cfg.profile_blocks and cfg.backend != "xnnpack":
        raise ExportError("--profile-blocks is for the xnnpack backend")
    if cfg.backend == "tflite":
        from .tflite import require_litert

        require_litert()  # the optional extra: say so before any work
    mf.get_config(cfg.model)  # an unknown variant fails before any work
    return recipe, fmt


def export(cfg: ExportConfig) -> ExportResult:
    """Run every stage; nothing lands in ``cfg.out`` unless all of them succeed."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    recipe, fmt = _check_options(cfg)
    out = ensure_writable_dir(cfg.out)

    _stage(f"building {cfg.model}" + (f" from {cfg.checkpoint}" if cfg.checkpoint else " (random weights: no --checkpoint)"))
    model, qat, source = _build_model(cfg, recipe)
    size = cfg.input_size or (qat.input_size if qat else model.cfg.input_size)
    _stage(f"loading {cfg.calib_images} calibration/validation images from {cfg.calib!r} at {size}x{size}")
    images = calibration_batches(cfg.calib, cfg.calib_images, size, model.cfg.mean, model.cfg.std)
    with _timed(timings, "quantize"):
        quantized = _quantize(cfg, recipe, model, qat, images)
    name = artifact_name(model.cfg.name, cfg.backend, cfg.precision, recipe.name, fmt, cfg.profile_blocks)

    reference = qat.reference if qat is not None else model  # what the artifact is checked against: fp32
    with staged_outputs(out) as stage:
        artifact = stage / name
        _stage(f"lowering to {cfg.backend} ({fmt})")
        profiling: dict = {}
        io: dict = {}  # tflite: int8 input/output tensors and their quantization
        if cfg.backend == "xnnpack":
            with _timed(timings, "lowering"):
                buffer, etrecord, census, profiling = _lower_xnnpack(cfg, recipe, model, quantized, images[:1])
                if cfg.strict and census["delegated_gemm_pct"] < 100.0:
                    raise ExportError(f"--strict: conv/linear/matmul left outside the delegate: {census['outside']}")
                artifact.write_bytes(buffer)
                etrecord.save(str(artifact.with_suffix(".etrecord")))
            _stage("validating on the host ExecuTorch runtime")
            with _timed(timings, "validation"):
                validation = _validate_pte(cfg, artifact, reference, quantized, images)
        elif cfg.backend == "coreml":
            from .coreml import export_coreml

            with _timed(timings, "lowering"):  # and the validation: op census, MIL reference executor
                census, validation = export_coreml(quantized, reference, images, artifact, fmt, cfg.precision,
                                                   model.paper_block, cfg.progress)
        else:
            from .tflite import export_tflite

            with _timed(timings, "lowering"):  # and the LiteRT validation
                census, validation, io = export_tflite(reference, quantized, images, artifact, cfg.precision)
            _check_fp32(cfg, validation)
        manifest = {
            "format": MANIFEST_FORMAT,
            "artifact": name,
            "model": model.cfg.name,
            "variant": model.cfg.name.removeprefix("mobile_former_"),
            "backend": cfg.backend,
            "format_kind": fmt,
            "precision": cfg.precision,
            "recipe": recipe.name if cfg.precision == "int8" or not recipe.twin else None,
            "input": {"shape": [1, 3, size, size], "dtype": "float32", "layout": "NCHW", "mean": list(model.cfg.mean),
                      "std": list(model.cfg.std), "range": "RGB in [0, 1] before normalisation", **io.get("input", {})},
            **({"output": io["output"]} if "output" in io else {}),
            "num_classes": model.num_classes,
            "sha256": sha256_of(artifact),
            "size_bytes": size_of(artifact),
            "source": source,
            "calibration": {"data": cfg.calib, "images": len(images)},
            "op_census": census,
            "validation": validation,
            "profiling": profiling,
            "timings_s": {**timings, "total": round(time.perf_counter() - started, 1)},
            "versions": versions(),
        }
        write_json_atomic(manifest_path_for(artifact), manifest)
    artifact = out / name
    return ExportResult(artifact, manifest_path_for(artifact), manifest)


def summary(result: ExportResult) -> str:
    m = result.manifest
    census, val = m["op_census"], m["validation"]
    lines = [f"artifact  {result.artifact}  ({m['size_bytes'] / 1e6:.2f} MB)", f"manifest  {result.manifest_path}"]
    if "delegated_gemm_pct" in census:
        lines.append(f"delegated {census['delegated_gemm_pct']:.1f}% of conv/linear/matmul in {census['delegates']} "
                     f"delegate(s), {census.get('int8_gemm_pct', 0):.1f}% int8; outside: {census['outside'] or 'nothing'}")
    if val.get("sqnr_db_vs_fp32") is not None:
        engine = " by the MIL reference executor (not Core ML)" if "engine" in val else ""
        lines.append(f"validated on {val['images']} images{engine}: SQNR {val['sqnr_db_vs_fp32']:.1f} dB vs fp32, "
                     f"top-1 agreement {100 * val['top1_agreement_vs_fp32']:.1f}%, max |diff| {val['max_abs_diff_vs_fp32']:.2e}")
        if val.get("blocks"):
            low = min(val["blocks"], key=lambda b: b["sqnr_db_vs_pytorch"])
            lines.append(f"paper blocks: SQNR vs the converted PyTorch graph >= {low['sqnr_db_vs_pytorch']:.1f} dB "
                         f"(lowest: {low['block']}; export fails below {val['min_block_sqnr_db']:.0f} dB)")
    elif val.get("note"):
        lines.append(f"validation: {val['note']}")
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in m["timings_s"].items() if k != "total")
    lines.append(f"took {m['timings_s']['total']:.0f} s ({stages})")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m quant.export", description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--backend", required=True, help=f"one of {', '.join(BACKENDS)}")
    p.add_argument("--model", default="mobile_former_26m", help=f"variant: {', '.join(mf.list_models())}")
    p.add_argument("--checkpoint", type=Path, help="authors' float checkpoint or our QAT checkpoint (default: random weights)")
    p.add_argument("--precision", default="int8", choices=("int8", "fp32"))
    p.add_argument("--recipe", help="quantization recipe (default: the backend's own); xnnpack-stock = ExecuTorch's "
                   "quantizer and lowering as shipped, on the float model as it is (with --precision fp32: the "
                   "stock fp32 program), xnnpack-per-tensor = ours with one scale per weight tensor")
    p.add_argument("--calib", default="digits", help="calibration images: a class-per-folder directory, 'digits' or 'fashion-mnist'")
    p.add_argument("--calib-images", type=int, default=32,
                   help="images for calibration and host validation (coreml: the first 8 are validated)")
    p.add_argument("--input-size", type=int, help="square input size (default: the variant's, 224)")
    p.add_argument("--num-classes", type=int, help="classifier size (default: the float checkpoint's, else 1000)")
    p.add_argument("--out", type=Path, default=Path("out"), help="output directory")
    p.add_argument("--format", help="coreml: mlpackage (default) or pte (ExecuTorch with the Core ML delegate)")
    p.add_argument("--profile-blocks", action="store_true",
                   help="xnnpack: one delegate per paper block so that on-device profiles map to blocks")
    p.add_argument("--strict", action="store_true", help="fail if any conv/linear/matmul stays outside the delegate")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = ExportConfig(
        backend=args.backend, model=args.model, checkpoint=args.checkpoint, precision=args.precision, recipe=args.recipe,
        calib=args.calib, calib_images=args.calib_images, input_size=args.input_size, num_classes=args.num_classes,
        out=args.out, format=args.format, profile_blocks=args.profile_blocks, strict=args.strict,
        progress=not args.no_progress,
    )
    print(summary(export(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
