"""``python -m quant.bench ARTIFACT...``: host latency of exported models, whole and per operator.

For each artifact: warm-up and N timed runs on the host runtime (ExecuTorch for
``.pte``, LiteRT for ``.tflite``), then, for ``.pte``, a second pass with the ETDump
event tracer that gives XNNPACK's per-operator times (tracing costs time per op, so
the whole-model numbers come from the untraced pass). Operators map to paper blocks
through the manifest of a ``--profile-blocks`` export. Writes one result JSON per
artifact (``docs/latency-format.md``), the ETDump, and a table, CSV and PNG of all of
them side by side.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from . import HelpFormatter, __version__, versions
from .files import OutputError, ensure_writable_dir, sha256_of, size_of, write_json_atomic
from .latency import apply_manifest, find_manifest, host_device, now_utc, summarize
from .report import render
from .runtime import Program, ProgramError, set_threads
from .tflite import TFLiteError


class BenchError(ValueError):
    """An artifact that cannot be benchmarked here."""


def _input_for(manifest: dict | None) -> torch.Tensor:
    shape = (manifest or {}).get("input", {}).get("shape", [1, 3, 224, 224])
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


def _timed_runs(run, x: torch.Tensor, warmup: int, iterations: int) -> list[float]:
    for _ in range(warmup):
        run(x)
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        run(x)
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def pte_operators(program_path: Path, x: torch.Tensor, warmup: int, iterations: int, etdump: Path) -> list[dict]:
    """Per-operator times from an ETDump of ``warmup + iterations`` traced runs."""
    from executorch.devtools import Inspector

    program = Program(program_path, etdump=True)
    for _ in range(warmup + iterations):
        program(x)
    program.write_etdump(etdump)
    inspector = Inspector(etdump_path=str(etdump))
    operators: list[dict] = []
    for block in inspector.event_blocks:
        if block.name != "Execute":
            continue
        delegate_of: dict[int, int] = {}
        for event in block.events:
            if event.name == "DELEGATE_CALL" and event._instruction_id not in delegate_of:
                delegate_of[event._instruction_id] = len(delegate_of)
        for event in block.events:
            if not event.is_delegated_op or event.perf_data is None:
                continue
            raw = list(event.perf_data.raw)[warmup:] or list(event.perf_data.raw)
            operators.append({
                "index": len(operators), "name": event.name, "delegate_index": delegate_of.get(event._instruction_id),
                "block": None, "mean_ms": sum(raw) / len(raw), "p50_ms": summarize(raw)["p50"], "calls": len(raw),
            })
    return operators


def _label(artifact: Path, manifest: dict | None) -> str:
    if not manifest:
        return artifact.name.rsplit(".", 1)[0]
    label = f"{manifest['model']} {manifest['backend']} {manifest['precision']}"
    if manifest.get("recipe", "") and manifest["recipe"].endswith("-stock"):
        label += " (stock quantizer)" if manifest["precision"] == "int8" else " (stock)"
    elif manifest.get("recipe") == "tflite":
        label += " (LiteRT quantizer)"
    elif manifest["precision"] == "int8":
        label += " (mobileformer)"
    return label + (" [blocks]" if (manifest.get("profiling") or {}).get("delegate_blocks") else "")


def result_stems(artifacts: list[Path]) -> list[str]:
    """File stems for the results: the artifact's name, led by its folder's where two names meet."""
    stems = [a.name.rsplit(".", 1)[0] for a in artifacts]
    stems = [f"{a.parent.name}_{s}" if stems.count(s) > 1 else s for a, s in zip(artifacts, stems)]
    return [f"{s}_{i}" if stems.count(s) > 1 else s for i, s in enumerate(stems, 1)]


def bench_artifact(artifact: Path, out: Path, threads: int, warmup: int, iterations: int, operators: bool,
                   label: str | None = None, stem: str | None = None) -> dict:
    """Measure one artifact and write ``<out>/<stem>.latency.json`` (and its ETDump)."""
    if not artifact.exists():
        raise BenchError(f"artifact not found: {artifact}")
    manifest_path = find_manifest(artifact, [artifact.parent])
    manifest = json.loads(manifest_path.read_text()) if manifest_path else None
    x = _input_for(manifest)
    stem = stem or artifact.name.rsplit(".", 1)[0]
    etdump = None
    suffix = artifact.suffix
    set_threads(threads)
    if suffix == ".pte":
        program = Program(artifact)
        samples = _timed_runs(program, x, warmup, iterations)
        ops = []
        if operators:
            etdump = out / f"{stem}.etdp"
            ops = pte_operators(artifact, x, warmup, iterations, etdump)
        runtime = {"name": "executorch", "version": versions()["executorch"], "compute_units": None}
    elif suffix == ".tflite":
        from .tflite import time_tflite

        samples, ops = time_tflite(artifact, threads, warmup, iterations), []
        runtime = {"name": "tflite", "version": versions()["ai-edge-litert"], "compute_units": None}
    elif suffix == ".mlpackage":
        raise BenchError(f"{artifact.name}: Core ML prediction needs macOS or iOS; measure it with ios_demo")
    else:
        raise BenchError(f"{artifact.name}: unknown artifact type {suffix!r} (expected .pte or .tflite)")
    result = {
        "format": "mobileformer-latency/1", "created": now_utc(), "tool": f"quant.bench {__version__}",
        "label": label or _label(artifact, manifest), "device": host_device(), "runtime": runtime,
        "artifact": {"file": artifact.name, "sha256": sha256_of(artifact), "size_bytes": size_of(artifact),
                     "model": None, "backend": None, "precision": None},
        "threads": threads, "warmup": warmup, "iterations": iterations, "latency_ms": summarize(samples),
        "samples_ms": samples, "operators": ops, "blocks": [], "etdump": etdump.name if etdump else None,
    }
    if manifest:
        apply_manifest(result, manifest)
    write_json_atomic(out / f"{stem}.latency.json", result)
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m quant.bench", description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter)
    p.add_argument("artifacts", nargs="+", type=Path, help=".pte or .tflite files (their manifests are read if beside them)")
    p.add_argument("--threads", type=int, default=1, help="runtime worker threads (0: the runtime's default)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--no-operators", action="store_true", help="whole-model latency only (no traced pass)")
    p.add_argument("--out", type=Path, default=Path("out/bench"), help="where results, ETDumps and the chart go")
    p.add_argument("--name", default="bench", help="file name stem of the combined table/CSV/PNG")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.iterations < 1 or args.warmup < 0 or args.threads < 0:
        print("error: --iterations must be ≥ 1, --warmup and --threads ≥ 0", file=sys.stderr)
        return 2
    try:
        out = ensure_writable_dir(args.out)
        results, stems = [], result_stems(args.artifacts)
        for artifact, stem in zip(args.artifacts, stems):
            print(f"[bench] {artifact} ({args.iterations} runs, {args.threads} thread(s))", flush=True)
            results.append(bench_artifact(artifact, out, args.threads, args.warmup, args.iterations, not args.no_operators,
                                          stem=stem))
        outputs = render(results, out, args.name)
    except (BenchError, ProgramError, OutputError, TFLiteError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(outputs.table)
    print(f"results: {', '.join(str(out / f'{stem}.latency.json') for stem in stems)}")
    print(f"table: {outputs.csv}  chart: {outputs.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
