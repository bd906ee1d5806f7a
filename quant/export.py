"""``python -m quant.export``: one command from a checkpoint to a phone-ready artifact.

A straight line: checkpoint (the authors' float or our QAT checkpoint) -> recipe (PTQ
on calibration images, or convert the QAT checkpoint) -> backend (:mod:`quant.backends`:
lower, then validate on the host) -> ``<artifact>.manifest.json`` beside the artifact,
everything written to a staging directory and published together.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

import mobileformer as mf
from mobileformer.checkpoint import checkpoint_num_classes
from mobileformer.model import MobileFormer

from . import timing, versions
from .backends import BACKENDS, Backend, Census, LowerContext, Lowered
from .errors import ArgumentParser, UserError, check_at_least, check_input_size, command
from .data import calibration_batches
from .files import check_name, check_outputs, ensure_writable_dir, sha256_of, size_of, staged_outputs, write_json_atomic
from .formats import MANIFEST_FORMAT
from .qat_graph import QATModel, load_qat_model
from .recipes import Recipe, calibrate, convert, get_recipe, prepare
from .timing import phase

log = logging.getLogger("quant")


MAX_CLASSES = 100_000  # 100x ImageNet's; the classifier of 26m is then 0.4 GB of fp32


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
    etrecord: bool = False  # xnnpack: also write the .etrecord (ExecuTorch's debug record, ~30x the .pte)
    strict: bool = False
    progress: bool = True
    profile: bool = False  # time every phase and library pass into the manifest (also MOBILEFORMER_TIMING=1)
    threads: int | None = None  # PyTorch's intra-op threads (None: its default, one per core; see build_parser)


@dataclass
class ExportResult:
    artifact: Path
    manifest_path: Path
    manifest: dict = field(default_factory=dict)
    profile: timing.Timing | None = None


def _stage(message: str) -> None:
    print(f"[export] {message}", flush=True)


@contextlib.contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    with phase(stage):
        yield
    timings[stage] = round(time.perf_counter() - started, 1)


def artifact_name(model: str, backend: str, precision: str, recipe: Recipe, fmt: str, profile_blocks: bool) -> str:
    """``mobile_former_26m_xnnpack_int8.pte``; a recipe other than the backend's own
    (``xnnpack-stock`` -> ``_stock``) and block profiling are marked. An fp32 name marks
    the recipe only where it changes the fp32 program: the float model as it is (``_stock``)
    instead of the twin."""
    name = f"{model}_{backend}_{precision}"
    variant = recipe.name.removeprefix(backend).lstrip("-").replace("-", "_")
    if variant and (precision == "int8" or not recipe.twin):
        name += f"_{variant}"
    if profile_blocks:
        name += "_blocks"
    return f"{name}.{fmt}"


def manifest_path_for(artifact: Path) -> Path:
    return artifact.with_name(artifact.name.rsplit(".", 1)[0] + ".manifest.json")


def output_files(out: Path, name: str, cfg: ExportConfig) -> tuple[list[Path], set[Path]]:
    """Every output of an export (the artifact, with ``--etrecord`` an xnnpack ``.pte``'s ``.etrecord``, the manifest),
    and which of them are folders: checked before the minutes of quantizing and lowering."""
    check_name(name.rsplit(".", 1)[0], "the artifact name", suffix=".manifest.json")
    artifact = out / name
    files = [artifact, manifest_path_for(artifact)]
    if cfg.etrecord:
        files.append(artifact.with_suffix(".etrecord"))
    return files, {artifact} if artifact.suffix == ".mlpackage" else set()


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
        return recipe.source(model, "fp32")  # the twin: the same function, fewer ops to run
    if qat is not None:
        _stage("converting the QAT checkpoint (fake-quant -> int8)")
        return convert(qat.graph, recipe)
    _stage(f"PTQ: {recipe.name} recipe, calibrating on {len(images)} images")
    prepared = prepare(model, recipe, images[:1])
    with phase("calibrate"):
        calibrate(prepared, images.split(1), total=len(images), progress=cfg.progress)
    with phase("convert"):
        return convert(prepared, recipe)


def _check_fp32(cfg: ExportConfig, backend: Backend, validation: dict) -> None:
    """An fp32 artifact must compute what PyTorch computes, to the backend's tolerance."""
    tolerance = backend.fp32_tolerance
    if cfg.precision == "fp32" and tolerance is not None and not validation["max_abs_diff_vs_fp32"] <= tolerance:  # NaN too
        raise ExportError(f"fp32 {cfg.backend} artifact differs from PyTorch by "
                          f"{validation['max_abs_diff_vs_fp32']:.2e} > {tolerance}")


def _check_numbers(validation: dict) -> None:
    """A NaN anywhere in the validation (NaN logits) fails the export: no comparison with NaN fails by itself."""
    def nan_in(value: object) -> bool:
        if isinstance(value, dict):
            return any(map(nan_in, value.values()))
        if isinstance(value, list):
            return any(map(nan_in, value))
        return isinstance(value, float) and math.isnan(value)
    if nan_in(validation):
        raise ExportError("validation on the host gave NaN: the artifact's outputs are not numbers")


def _check_strict(cfg: ExportConfig, census: Census) -> None:
    if cfg.strict and census.delegated_gemm_pct is not None and census.delegated_gemm_pct < 100.0:
        raise ExportError(f"--strict: conv/linear/matmul left outside the delegate: {census.outside}")


def _check_options(cfg: ExportConfig) -> tuple[Recipe, Backend, str]:
    check_at_least(1, calib_images=cfg.calib_images, num_classes=cfg.num_classes, threads=cfg.threads)
    if cfg.num_classes is not None and cfg.num_classes > MAX_CLASSES:  # the classifier alone would not fit in memory
        raise ExportError(f"--num-classes must be at most {MAX_CLASSES}, got {cfg.num_classes}")
    check_input_size(cfg.input_size)
    if cfg.backend not in BACKENDS:
        raise ExportError(f"unknown backend {cfg.backend!r}; valid: {', '.join(BACKENDS)}")
    backend = BACKENDS[cfg.backend]
    if cfg.precision not in ("int8", "fp32"):
        raise ExportError(f"precision must be int8 or fp32, got {cfg.precision!r}")
    recipe = get_recipe(cfg.recipe or cfg.backend)  # each backend's own recipe bears its name
    if recipe.backend != cfg.backend:
        raise ExportError(f"recipe {recipe.name!r} targets {recipe.backend}, not {cfg.backend}")
    fmt = cfg.format or backend.formats[0]
    if fmt not in backend.formats:
        raise ExportError(f"--format for {cfg.backend} is one of {', '.join(backend.formats)}, got {fmt!r}")
    if cfg.etrecord and cfg.backend != "xnnpack":
        raise ExportError("--etrecord is for the xnnpack backend")
    if cfg.profile_blocks and not backend.block_profiling:
        raise ExportError(f"--profile-blocks is for the {', '.join(b.name for b in BACKENDS.values() if b.block_profiling)} "
                          "backend")
    backend.check_installed()  # an optional extra: say so before any work
    mf.get_config(cfg.model)  # an unknown variant fails before any work
    return recipe, backend, fmt


def _manifest(cfg: ExportConfig, model: MobileFormer, recipe: Recipe, ctx: LowerContext, lowered: Lowered,
              validation: dict, source: dict) -> dict:
    size = ctx.images.shape[-1]
    io = lowered.io
    return {
        "format": MANIFEST_FORMAT,
        "artifact": ctx.artifact.name,
        "model": model.cfg.name,
        "variant": model.cfg.name.removeprefix("mobile_former_"),
        "backend": cfg.backend,
        "format_kind": ctx.fmt,
        "precision": cfg.precision,
        "recipe": recipe.name if cfg.precision == "int8" or not recipe.twin else None,
        "recipe_fingerprint": recipe.fingerprint(cfg.precision, BACKENDS[cfg.backend].rewrites(recipe, cfg.precision)),
        "input": {"shape": [1, 3, size, size], "dtype": "float32", "layout": "NCHW", "mean": list(model.cfg.mean),
                  "std": list(model.cfg.std), "range": "RGB in [0, 1] before normalisation", **io.get("input", {})},
        **({"output": io["output"]} if "output" in io else {}),
        "num_classes": model.num_classes,
        "sha256": sha256_of(ctx.artifact),
        "size_bytes": size_of(ctx.artifact),
        "source": source,
        "calibration": {"data": cfg.calib, "images": len(ctx.images)},
        "op_census": lowered.census.to_json(),
        "validation": validation,
        "profiling": lowered.profiling,
    }


def export(cfg: ExportConfig) -> ExportResult:
    """Checkpoint -> recipe -> backend -> manifest; nothing lands in ``cfg.out`` unless every stage succeeds.

    With ``cfg.profile`` the manifest's ``profile`` holds the time of every phase and library
    pass (:mod:`quant.timing`)."""
    recipe, backend, fmt = _check_options(cfg)
    libraries = {"xnnpack": ("executorch",), "coreml": ("coremltools",) + (("executorch",) if fmt == "pte" else ()),
                 "tflite": ("litert_torch",)}[cfg.backend]
    with timing.timed(cfg.profile, libraries) as profile, _torch_threads(cfg.threads):
        return _export(cfg, recipe, backend, fmt, profile)


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """PyTorch's intra-op thread count for the block (None: as it is), as it was afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _export(cfg: ExportConfig, recipe: Recipe, backend: Backend, fmt: str, profile: timing.Timing | None) -> ExportResult:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    out = ensure_writable_dir(cfg.out)
    name = artifact_name(mf.get_config(cfg.model).name, cfg.backend, cfg.precision, recipe, fmt, cfg.profile_blocks)
    check_outputs(*output_files(out, name, cfg))

    _stage(f"building {cfg.model}" + (f" from {cfg.checkpoint}" if cfg.checkpoint else " (random weights: no --checkpoint)"))
    with phase("build model"):
        model, qat, source = _build_model(cfg, recipe)
    size = cfg.input_size or (qat.input_size if qat else model.cfg.input_size)
    _stage(f"loading {cfg.calib_images} calibration/validation images from {cfg.calib!r} at {size}x{size}")
    with phase("load images"):
        images = calibration_batches(cfg.calib, cfg.calib_images, size, model.cfg.mean, model.cfg.std)
    with _timed(timings, "quantize"):
        quantized = _quantize(cfg, recipe, model, qat, images)

    module = backend.load()
    with staged_outputs(out) as stage:
        ctx = LowerContext(graph=quantized, reference=qat.reference if qat is not None else model, images=images,
                           artifact=stage / name, precision=cfg.precision, fmt=fmt, recipe=recipe,
                           block_of=model.paper_block, profile_blocks=cfg.profile_blocks, progress=cfg.progress,
                           etrecord=cfg.etrecord)
        _stage(f"lowering to {cfg.backend} ({fmt})")
        with _timed(timings, "lowering"):
            lowered = module.lower(ctx)
        _check_strict(cfg, lowered.census)
        _stage(f"validating on {backend.validator}")
        with _timed(timings, "validation"):
            validation = module.validate(ctx, lowered)
        _check_numbers(validation)
        _check_fp32(cfg, backend, validation)
        with phase("manifest"):
            manifest = {**_manifest(cfg, model, recipe, ctx, lowered, validation, source),
                        "timings_s": {**timings, "total": round(time.perf_counter() - started, 1)},
                        "versions": versions()}
        if profile is not None:
            profile.stop()  # every phase closed: the profile's figures are final
            manifest["profile"] = profile.to_json()
        write_json_atomic(manifest_path_for(ctx.artifact), manifest)
    artifact = out / name
    return ExportResult(artifact, manifest_path_for(artifact), manifest, profile)


def summary(result: ExportResult) -> str:
    m = result.manifest
    census, val = m["op_census"], m["validation"]
    lines = [f"artifact  {result.artifact}  ({m['size_bytes'] / 1e6:.2f} MB)", f"manifest  {result.manifest_path}"]
    if census["delegated_gemm_pct"] is not None:
        lines.append(f"delegated {census['delegated_gemm_pct']:.1f}% of conv/linear/matmul in {census['delegates']} "
                     f"delegate(s), {census['int8_gemm_pct']:.1f}% int8; outside: {census['outside'] or 'nothing'}")
    elif census["int8_gemm_pct"] is not None:
        lines.append(f"int8: {census['int8_gemm_pct']:.1f}% of conv/linear/matmul")
    if val.get("sqnr_db_vs_fp32") is not None:
        engine = " by the MIL reference executor (not Core ML)" if "engine" in val else ""
        lines.append(f"validated on {val['images']} images{engine}: SQNR {val['sqnr_db_vs_fp32']:.1f} dB vs fp32, "
                     f"top-1 agreement {100 * val['top1_agreement_vs_fp32']:.1f}%, max |diff| {val['max_abs_diff_vs_fp32']:.2e}")
        if val.get("blocks"):
            low = min([*val["blocks"], val["output"]], key=lambda b: b["margin_db"])
            lines.append(f"paper blocks and output: {val['criterion']}; closest: {low['block']}, "
                         f"{low['margin_db']:.1f} dB to spare")
    elif val.get("note"):
        lines.append(f"validation: {val['note']}")
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in m["timings_s"].items() if k != "total")
    lines.append(f"took {m['timings_s']['total']:.0f} s ({stages})")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m quant.export", description=__doc__.splitlines()[0])
    p.add_argument("--backend", required=True, help=f"one of {', '.join(BACKENDS)}")
    p.add_argument("--model", default="mobile_former_26m", help=f"variant: {', '.join(mf.list_models())}")
    p.add_argument("--checkpoint", type=Path, help="authors' float checkpoint or our QAT checkpoint (default: random weights)")
    p.add_argument("--precision", default="int8", choices=("int8", "fp32"))
    p.add_argument("--recipe", help="quantization recipe (default: the backend's own); xnnpack-stock = ExecuTorch's "
                   "quantizer and lowering as shipped, on the float model as it is (with --precision fp32: the "
                   "stock fp32 program), xnnpack-per-tensor = ours with one scale per weight tensor and DyReLU int8, "
                   "xnnpack-sym-per-tensor = that and zero-point-0 activations")
    p.add_argument("--calib", default="digits", help="calibration images: a class-per-folder directory, 'digits' or 'fashion-mnist'")
    p.add_argument("--calib-images", type=int, default=32,
                   help="images for calibration and host validation (coreml: the first 8 are validated)")
    p.add_argument("--input-size", type=int, help="square input size (default: the variant's, 224)")
    p.add_argument("--num-classes", type=int, help="classifier size (default: the float checkpoint's, else 1000)")
    p.add_argument("--out", type=Path, default=Path("out"), help="output directory")
    p.add_argument("--format", help="coreml: mlpackage (default) or pte (ExecuTorch with the Core ML delegate)")
    p.add_argument("--profile-blocks", action="store_true",
                   help="xnnpack: one delegate per paper block so that on-device profiles map to blocks")
    p.add_argument("--etrecord", action="store_true",
                   help="xnnpack: also write ExecuTorch's .etrecord beside the .pte (for its devtools Inspector; "
                   "about 30x the .pte's size; the manifest maps profiles to paper blocks without it)")
    p.add_argument("--strict", action="store_true", help="fail if any conv/linear/matmul stays outside the delegate")
    p.add_argument("--profile", action="store_true",
                   help=f"time every phase and library pass: a table after the summary, all of it in the manifest's "
                   f"'profile' (also {timing.SWITCH}=1)")
    p.add_argument("--threads", type=int,
                   help="PyTorch threads for calibration and validation (default: PyTorch's, one per core). "
                   "Mobile-Former's ops are small, so on a busy machine more threads mostly wait on each other "
                   "(26m at 64x64, 2 busy cores: 0.2 s of CPU for 8 images on 1 thread, 7.4 s on 2); but the "
                   "thread count changes float sums in calibration, so the int8 program's bytes with it. "
                   "OMP_WAIT_POLICY=PASSIVE in the environment keeps the bytes and stops waiting threads "
                   "spinning (make demo sets it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = ExportConfig(
        backend=args.backend, model=args.model, checkpoint=args.checkpoint, precision=args.precision, recipe=args.recipe,
        calib=args.calib, calib_images=args.calib_images, input_size=args.input_size, num_classes=args.num_classes,
        out=args.out, format=args.format, profile_blocks=args.profile_blocks, etrecord=args.etrecord,
        strict=args.strict, progress=not args.no_progress, profile=timing.requested(args.profile), threads=args.threads,
    )
    result = export(cfg)
    print(summary(result))
    if result.profile is not None:
        print(result.profile.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
