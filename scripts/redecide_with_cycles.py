"""Re-decide our int8 recipe's choices by estimated phone cycles on both named cores (issue 35, item 5).

    PYTHONPATH=. .venv/bin/python scripts/redecide_with_cycles.py [--model mobile_former_26m] [--work out/redecide]

Exports our int8 (the ``xnnpack`` recipe as shipped) and one variant per choice, each with
that one choice undone: DyReLU in int8 (the twin's form) instead of float, the float
model's bridges instead of the twin's, the small grouped 1x1 convs kept grouped instead of
dense (the XNNPACK wing's ``dense_grouped_pointwise`` rewrite off). Counts each under qemu as
``cortex-a76`` and ``armv9`` (``quant.backends.xnnpack.arm64.count_instructions``: instructions
and estimated cycles), times all of them on this host in ``--host-passes`` passes of
``quant.bench``'s interleaved rounds (x86 wall clock, beside the estimate), prints a table and
writes ``docs/results/redecide_<model>.json`` with each choice's decision: a shipped choice is
undone only where its variant is estimated faster on both cores. Exports, counts and host
passes are kept in ``--work`` (a ``quant.bench --arm64`` result beside an export is used as its
count); a rerun only tabulates.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from pathlib import Path

import quant.backends.xnnpack as xnnpack_backend
import quant.recipes as recipes
from quant.backends.xnnpack.arm64 import count_instructions
from quant.bench import main as bench_main, result_stems
from quant.export import main as export_main
from quant.formats import host_device

REPO = Path(__file__).resolve().parents[1]
CORES = ("cortex-a76", "armv9")
HOST_ROUNDS = 300  # interleaved rounds of one host pass, as the changelog's "Host wall clock, interleaved" (2026-12-07)


@contextmanager
def recipe_changed(**changes) -> Iterator[None]:
    shipped = recipes.RECIPES["xnnpack"]
    recipes.RECIPES["xnnpack"] = dataclasses.replace(shipped, **changes)
    try:
        yield
    finally:
        recipes.RECIPES["xnnpack"] = shipped


@contextmanager
def grouped_convs_kept() -> Iterator[None]:
    """The wing without its ``dense_grouped_pointwise`` rewrite: lowering skips it and the manifest's
    recipe fingerprint says so."""
    rewrites = xnnpack_backend.rewrites
    xnnpack_backend.rewrites = lambda recipe, precision: {**rewrites(recipe, precision), "dense_grouped_pointwise": False}
    try:
        yield
    finally:
        xnnpack_backend.rewrites = rewrites


@dataclasses.dataclass(frozen=True)
class Variant:
    label: str
    folder: str  # its export's folder in --work
    changed: Callable[[], AbstractContextManager]
    choice: str = ""  # the shipped choice it undoes (the shipped program: none)


VARIANTS = (
    Variant("shipped (DyReLU float, twin's bridges, small grouped 1x1 convs dense)", "shipped", recipe_changed),
    Variant("DyReLU int8 (the twin's form)", "DyReLU_int8", lambda: recipe_changed(float_dyrelu=False),
            "DyReLU float"),
    Variant("the float model's bridges (tokens as the matmuls' left operand)", "float_models_bridges",
            lambda: recipe_changed(twin_bridges=()), "the twin's bridges in int8"),
    Variant("small grouped 1x1 convs kept grouped", "small_grouped_1x1_convs_kept_grouped", grouped_convs_kept,
            "small grouped 1x1 convs dense (dense_grouped_pointwise)"),
)


def export(model: str, variant: Variant, work: Path) -> Path:
    out = work / variant.folder
    pte = out / f"{model}_xnnpack_int8.pte"
    if not pte.exists():
        print(f"[redecide] exporting {model}: {variant.label}", flush=True)
        with variant.changed():
            if export_main(["--backend", "xnnpack", "--model", model, "--calib", "digits", "--out", str(out),
                            "--no-progress"]) != 0:
                raise SystemExit(2)
    return pte


def counted(pte: Path, core: str) -> dict:
    """Instructions and estimated cycles of ``pte`` on ``core``: a ``quant.bench --arm64`` result
    beside it (``<stem>.<core>.latency.json``), else counted now and kept there."""
    kept = pte.parent / f"{pte.stem}.{core}.latency.json"
    if kept.exists():
        result = json.loads(kept.read_text())
    else:
        print(f"[redecide] counting {pte} as {core}", flush=True)
        result = count_instructions(pte, core)
        kept.write_text(json.dumps(result))
    return {"instructions": result["instructions"]["per_inference"], "cycles": result["cycles"]["per_inference"],
            "estimated_ms": result["cycles"]["estimated_ms"], "clock_ghz": result["cycles"]["clock_ghz"],
            "sha256": result["artifact"]["sha256"], "counted": result.get("created"),
            "how": f"{result['device']['name']}; {result['cycles']['model']}"}


def host_passes(ptes: list[Path], work: Path, passes: int) -> list[list[dict]]:
    """Per pass, each artifact's x86 p50 and mean (ms) from ``quant.bench ARTIFACTS --iterations 300
    --no-operators`` (every artifact timed in the same interleaved rounds); kept in ``work``."""
    measured = []
    for index in range(1, passes + 1):
        out = work / "host" / f"pass{index}"
        if not (out / "host.csv").exists():
            print(f"[redecide] host pass {index} of {passes}: {len(ptes)} artifacts interleaved", flush=True)
            if bench_main([*map(str, ptes), "--iterations", str(HOST_ROUNDS), "--no-operators", "--out", str(out),
                           "--name", "host"]) != 0:
                raise SystemExit(2)
        results = [json.loads((out / f"{stem}.latency.json").read_text()) for stem in result_stems(ptes)]
        measured.append([{"p50_ms": round(r["latency_ms"]["p50"], 3), "mean_ms": round(r["latency_ms"]["mean"], 3),
                          "created": r["created"], "host": r["device"]["cpu"]} for r in results])
    return measured


def decision(row: dict, shipped: dict) -> str:
    """Keep the shipped choice unless undoing it is estimated faster on both cores."""
    faster = [core for core in CORES if row[core]["cycles"] < shipped[core]["cycles"]]
    changes = ", ".join(f"{core} {row[core]['cycles'] / shipped[core]['cycles'] - 1:+.1%}" for core in CORES)
    if len(faster) == len(CORES):
        return f"undo: {row['variant']} is estimated faster on both cores ({changes} cycles)"
    return f"keep {row['choice']}: undoing it is not estimated faster on both cores ({changes} cycles)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobile_former_26m")
    parser.add_argument("--work", type=Path, default=Path("out/redecide"))
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results")
    parser.add_argument("--shipped", type=Path, help="an existing int8 export of the shipped recipe (e.g. make demo's) "
                                                     "instead of exporting it again")
    parser.add_argument("--host-passes", type=int, default=3, help="host timing passes (0: none)")
    args = parser.parse_args()
    ptes = [args.shipped if i == 0 and args.shipped else export(args.model, variant, args.work)
            for i, variant in enumerate(VARIANTS)]
    rows = []
    for variant, pte in zip(VARIANTS, ptes):
        row = {"variant": variant.label, "choice": variant.choice, "artifact": str(pte)}
        for core in CORES:
            row[core] = counted(pte, core)
        rows.append(row)
    timed = host_passes(ptes, args.work, args.host_passes)
    for index, row in enumerate(rows):
        row["x86"] = [measured[index] for measured in timed]
    shipped = rows[0]
    for row in rows[1:]:
        row["decision"] = decision(row, shipped)
    lines = ["| our int8 " + args.model + " | " + " | ".join(
        f"{c} M instr. | {c} M cycles | {c} est. ms | vs shipped" for c in CORES) + " | x86 p50 ms per pass |",
             "|---|" + "---|---|---|---|" * len(CORES) + "---|"]
    for row in rows:
        cells = []
        for c in CORES:
            cells += [f"{row[c]['instructions'] / 1e6:.2f}", f"{row[c]['cycles'] / 1e6:.2f}",
                      f"{row[c]['estimated_ms']:.2f}", f"{row[c]['cycles'] / shipped[c]['cycles']:.3f}x"]
        cells.append(" / ".join(f"{p['p50_ms']:.3f}" for p in row["x86"]))
        lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"redecide_{args.model}.json").write_text(json.dumps(
        {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "model": args.model,
         "how": "scripts/redecide_with_cycles.py: each variant's int8 export counted under qemu as both cores "
                "(count_instructions: 1 warm-up, 4 counted inferences, 1 thread, batch 1) and estimated by the "
                f"cycle model; x86: quant.bench ARTIFACTS --iterations {HOST_ROUNDS} --no-operators per pass, "
                f"1 thread, on {host_device()['cpu']}",
         "rule": decision.__doc__, "rows": rows}, indent=1) + "\n")
    print("\n".join(lines))
    for row in rows[1:]:
        print(f"- {row['decision']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
