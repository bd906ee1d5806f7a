"""``python -m quant.bench ARTIFACT...``: host latency of exported models, whole and per operator.

All artifacts are loaded on the host runtime (ExecuTorch for ``.pte``, LiteRT for
``.tflite``), warmed up, and timed in N interleaved rounds, each round running every
artifact once, so that their rows compare even on a host whose speed drifts. Then, for
``.pte``, a second pass with the ETDump event tracer gives XNNPACK's per-operator times
(tracing costs time per op, so the whole-model numbers come from the untraced rounds; the
package's runtime still reads XNNPACK's operator clock in them, so ``.pte`` results say
``traced: true``).
Operators map to paper blocks through the manifest of a ``--profile-blocks`` export
(with ``--arm64``, of any xnnpack export: its debug handles,
:func:`quant.backends.xnnpack.arm64.attribute_blocks`). Writes one result JSON per artifact
(``docs/latency-format.md``), the ETDump, and a table, CSV and PNG of all of them side by
side.

With ``--arm64``, artifacts are not timed but run as AArch64 code under qemu-user as a
named phone core (``--cpu``, default cortex-a76; :mod:`quant.aarch64.cores`), with each
count's estimated cycles and milliseconds on that core beside it (:mod:`quant.aarch64.cycles`):
a ``.pte`` counts instructions per inference, per XNNPACK operator and per paper block,
exactly and repeatably (:mod:`quant.backends.xnnpack.arm64`); a ``.tflite`` runs in LiteRT's aarch64 build,
from Debian's aarch64 Python, and counts whole inferences (:mod:`quant.backends.tflite.arm64`).
Results are ``<stem>.<cpu>.latency.json``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from . import versions
from .aarch64.cores import CORES, DEFAULT_CORE
from .backends import BACKENDS, backend_for
from .backends.xnnpack.runtime import set_threads
from .errors import ArgumentParser, UserError, check_at_least, command
from .files import check_name, check_outputs, ensure_writable_dir, staged_outputs, write_json_atomic
from .formats import host_device, latency_result, verified_manifest
from .report import render, report_files
from .recipes import RECIPES


MAX_THREADS = 256  # more than any phone or host core count


class BenchError(UserError):
    """An artifact that cannot be benchmarked here."""


def _input_for(manifest: dict | None) -> torch.Tensor:
    shape = (manifest or {}).get("input", {}).get("shape", [1, 3, 224, 224])
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


def interleaved_runs(runs: list[Callable[[], object]], warmup: int, iterations: int) -> list[list[float]]:
    """Milliseconds of each timed call of each of ``runs``, round by round: every round calls each
    once untimed and once timed, starting one further along each round, so that a host whose speed
    drifts (a shared VM does, minute to minute) slows every artifact alike and no artifact always
    follows the same one. The untimed call brings the artifact's weights back into the caches the
    others evicted, as in an app that runs one model in a loop."""
    for run in runs:
        for _ in range(warmup):
            run()
    samples: list[list[float]] = [[] for _ in runs]
    for i in range(iterations):
        for k in range(len(runs)):
            j = (i + k) % len(runs)
            runs[j]()
            start = time.perf_counter()
            runs[j]()
            samples[j].append((time.perf_counter() - start) * 1000.0)
    return samples


def _label(artifact: Path, manifest: dict | None) -> str:
    """``<model> <backend> <precision> (<the recipe's row label>)``, `` [blocks]`` for a --profile-blocks export."""
    if not manifest:
        return artifact.name.rsplit(".", 1)[0]
    label = f"{manifest['model']} {manifest['backend']} {manifest['precision']}"
    recipe = RECIPES.get(manifest.get("recipe") or "")
    row = recipe.row_label(manifest["precision"]) if recipe else manifest.get("recipe")
    if row:
        label += f" ({row})"
    return label + (" [blocks]" if (manifest.get("profiling") or {}).get("delegate_blocks") else "")


def _suffixes_with(field: str) -> list[str]:
    """The artifact suffixes of the backends whose ``field`` is set (``arm64_counter``: those ``--arm64``
    counts; ``operator_profiling``: those whose timing writes an ETDump)."""
    return [suffix for backend in BACKENDS.values() if getattr(backend, field) for suffix in backend.suffixes]


def result_stems(artifacts: list[Path]) -> list[str]:
    """File stems for the results: the artifact's name, led by its folder's where two names meet."""
    stems = [a.name.rsplit(".", 1)[0] for a in artifacts]
    stems = [f"{a.parent.name}_{s}" if stems.count(s) > 1 else s for a, s in zip(artifacts, stems)]
    return [f"{s}_{i}" if stems.count(s) > 1 else s for i, s in enumerate(stems, 1)]


def check_artifact(artifact: Path, run: bool = True, verify: bool = True) -> dict | None:
    """Load ``artifact`` and, if ``run``, run it once on the host; its manifest, if one is beside it
    (with ``verify``: only if the artifact is the one it describes, :func:`~quant.latency.verified_manifest`).

    Every artifact is checked before any is measured, so that a broken one fails the
    command before it spends minutes on another. A ``.pte`` runs first in a child process
    (its backend's ``probe``, :func:`~quant.backends.xnnpack.probe.probe_program`), so that bytes that crash
    the runtime end in one error. ``--arm64`` counts (``.pte`` and ``.tflite``) do not run on the host: the emulated
    run takes its input shape from the program, not from a manifest.
    """
    if not artifact.exists():
        raise BenchError(f"artifact not found: {artifact}")
    backend = backend_for(artifact)
    if not run and not backend.arm64_counter:
        raise BenchError(f"{artifact.name}: --arm64 counts {' and '.join(_suffixes_with('arm64_counter'))} artifacts only")
    if backend.runtime is None:
        raise BenchError(f"{artifact.name}: {backend.not_timed}")
    if not artifact.is_file():
        raise BenchError(f"{artifact.name}: not a file")
    manifest = verified_manifest(artifact, verify)
    if backend.probe:
        backend.wing(backend.probe)(artifact, list(_input_for(manifest).shape), run=run)  # a crash of the runtime, in a child
    elif run:
        backend.open(artifact, 0).invoker(_input_for(manifest))()
    else:  # --arm64: loaded on the host, so that a broken model fails before any count
        backend.open(artifact, 0)
    return manifest


def count_artifact(artifact: Path, manifest: dict | None, out: Path, cpu: str, warmup: int, iterations: int,
                   stem: str) -> dict:
    """AArch64 instructions and estimated cycles of one artifact under qemu, counted by its backend's
    ``arm64_counter`` (:mod:`quant.backends.xnnpack.arm64`, :mod:`quant.backends.tflite.arm64`), written like
    a latency result."""
    backend = backend_for(artifact)
    result = backend.wing(backend.arm64_counter)(artifact, manifest, cpu, warmup, iterations, _label(artifact, manifest))
    write_json_atomic(out / f"{stem}.{cpu}.latency.json", result)
    return result


def threads_used(threads: int) -> int:
    """The worker count a run with ``threads`` gets (0: the XNNPACK pool's default size), never 0:
    results say how many threads ran, and every runtime of one command gets the same count."""
    set_threads(threads)
    from executorch.extension.pybindings.portable_lib import _threadpool_get_thread_count

    return threads or max(1, _threadpool_get_thread_count())


def whole_model_runs(artifacts: list[Path], manifests: list[dict | None], threads: int) -> list[Callable[[], object]]:
    """One inference per call of each artifact, loaded once, on the input :func:`_input_for` gives it."""
    return [backend_for(artifact).open(artifact, threads).invoker(_input_for(manifest))
            for artifact, manifest in zip(artifacts, manifests)]


def bench_artifact(artifact: Path, manifest: dict | None, out: Path, threads: int, warmup: int, iterations: int,
                   samples: list[float], operators: bool, stem: str) -> dict:
    """Write ``<out>/<stem>.latency.json`` of one artifact: its whole-model ``samples`` (from
    :func:`interleaved_runs`) and, with ``operators`` where the backend traces them, a traced pass's
    operators and ETDump."""
    etdump, ops = None, []
    backend = backend_for(artifact)
    if operators and backend.operator_profiling:
        etdump = out / f"{stem}.etdp"
        ops = backend.load().traced_operators(artifact, _input_for(manifest), warmup, iterations, etdump)
    name, package = backend.runtime
    runtime = {"name": name, "version": versions()[package], "compute_units": None}
    # a runtime that profiles operators times every one in every run (docs/latency-format.md, `traced`): the
    # executorch package's is built with the event tracer; LiteRT's interpreter times none
    result = latency_result(artifact, manifest, _label(artifact, manifest), host_device(), runtime, threads, warmup,
                            iterations, samples, traced=backend.operator_profiling, operators=ops, etdump=etdump)
    write_json_atomic(out / f"{stem}.latency.json", result)
    return result


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m quant.bench", description=__doc__.splitlines()[0])
    p.add_argument("artifacts", nargs="+", type=Path, help=".pte or .tflite files (their manifests are read if beside them)")
    p.add_argument("--threads", type=int, default=1, help="runtime worker threads (0: the runtime's default; --arm64 always counts 1)")
    p.add_argument("--warmup", type=int, help="untimed runs of each artifact first (default: 10; with --arm64, " + ", ".join(
        f"{backend.arm64_warmup} for a {suffix}" for backend in BACKENDS.values() if backend.arm64_counter
        for suffix in backend.suffixes) + ")")
    p.add_argument("--iterations", type=int, help="timed rounds, each running every artifact once (default: 100; with --arm64, 4 counted runs, ≥ 2: with 3, our int8 26m's differ by up to 231 instructions)")
    p.add_argument("--arm64", action="store_true",
                   help="count AArch64 instructions per inference under qemu-user, and estimate the phone core's "
                        "cycles and ms, instead of timing on the host (one thread; sets up on first use the aarch64 SDK, "
                        "mfbench and the plugin for a .pte, and Debian's aarch64 Python with LiteRT for a .tflite; "
                        "per-operator counts for a .pte only)")
    p.add_argument("--cpu", default=DEFAULT_CORE, choices=tuple(CORES), help="with --arm64: the named phone core (cortex-a76: 2019-class; armv9: 2022+ with i8mm and SVE2; "
                             "the others for validation; docs/benchmarking.md)")
    p.add_argument("--no-operators", action="store_true", help="whole-model latency only (no traced pass)")
    p.add_argument("--out", type=Path, default=Path("out/bench"), help="where results, ETDumps and the chart go")
    p.add_argument("--name", default="bench", help="file name stem of the combined table/CSV/PNG")
    p.add_argument("--no-verify", action="store_true",
                   help="measure an artifact even if it is not the one the manifest beside it describes (SHA-256)")
    return p


def output_files(out: Path, artifacts: list[Path], stems: list[str], name: str, arm64: bool, cpu: str,
                 operators: bool) -> list[Path]:
    """Every file a run writes (results, ETDumps, the report's), each name checked to be a file name."""
    files = []
    for artifact, stem in zip(artifacts, stems):
        suffixes = [f".{cpu}.latency.json"] if arm64 else [".latency.json"]
        if not arm64 and operators and artifact.suffix in _suffixes_with("operator_profiling"):
            suffixes.append(".etdp")
        check_name(stem, f"the result name of {artifact.name}", suffix=max(suffixes, key=len))
        files += [out / f"{stem}{suffix}" for suffix in suffixes]
    return files + report_files(out, check_name(name, suffix=".png"))


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.iterations is None:
        args.iterations = 4 if args.arm64 else 100
    if args.warmup is None and not args.arm64:  # --arm64: each backend's own (Backend.arm64_warmup)
        args.warmup = 10
    check_at_least(2 if args.arm64 else 1, iterations=args.iterations)
    check_at_least(0, warmup=args.warmup or 0, threads=args.threads)
    if args.threads > MAX_THREADS:  # the runtime would try to start them all
        raise BenchError(f"--threads must be at most {MAX_THREADS}, got {args.threads}")
    results, stems = [], result_stems(args.artifacts)
    files = output_files(args.out, args.artifacts, stems, args.name, args.arm64, args.cpu, not args.no_operators)
    out = ensure_writable_dir(args.out)
    check_outputs(files)
    manifests = [check_artifact(artifact, run=not args.arm64, verify=not args.no_verify) for artifact in args.artifacts]
    with staged_outputs(out) as stage:  # every result, ETDump and the chart, or nothing
        if args.arm64:
            for artifact, manifest, stem in zip(args.artifacts, manifests, stems):
                warmup = backend_for(artifact).arm64_warmup if args.warmup is None else args.warmup
                print(f"[bench] {artifact} (AArch64 instructions and estimated cycles, {args.cpu}, {warmup} warm-up "
                      f"and {args.iterations} counted runs)", flush=True)
                results.append(count_artifact(artifact, manifest, stage, args.cpu, warmup, args.iterations, stem))
        else:
            args.threads = threads_used(args.threads)
            print(f"[bench] {len(args.artifacts)} artifact(s) interleaved: {args.iterations} rounds, "
                  f"{args.threads} thread(s)", flush=True)
            runs = whole_model_runs(args.artifacts, manifests, args.threads)
            samples = interleaved_runs(runs, args.warmup, args.iterations)
            del runs
            for artifact, manifest, stem, timed in zip(args.artifacts, manifests, stems, samples):
                if backend_for(artifact).operator_profiling and not args.no_operators:
                    print(f"[bench] {artifact} (operators, traced pass)", flush=True)
                results.append(bench_artifact(artifact, manifest, stage, args.threads, args.warmup, args.iterations,
                                              timed, not args.no_operators, stem))
        outputs = render(results, stage, args.name)
    print(outputs.table)
    suffix = f".{args.cpu}.latency.json" if args.arm64 else ".latency.json"
    print(f"results: {', '.join(str(out / f'{stem}{suffix}') for stem in stems)}")
    print(f"table: {out / outputs.csv.name}  chart: {out / outputs.png.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
