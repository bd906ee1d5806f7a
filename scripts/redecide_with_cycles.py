"""Re-decide our int8 recipe's choices by estimated phone cycles on both named cores (issue 35, item 5).

    PYTHONPATH=. .venv/bin/python scripts/redecide_with_cycles.py [--model mobile_former_26m] [--work out/redecide]

Exports our int8 (the ``xnnpack`` recipe as shipped) and one variant per choice, each with
that one choice undone: DyReLU in int8 (the twin's form) instead of float, the float
model's bridges instead of the twin's, the small grouped 1x1 convs kept grouped instead of
dense. Counts each under qemu as ``cortex-a76`` and ``armv9`` (``quant.backends.xnnpack.arm64.count_instructions``:
instructions and estimated cycles), prints a table and writes
``docs/results/redecide_<model>.json``. Exports and counts are kept in ``--work`` (a
``quant.bench --arm64`` result beside an export is used as its count); a rerun only tabulates.
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
from quant.export import main as export_main

REPO = Path(__file__).resolve().parents[1]
CORES = ("cortex-a76", "armv9")


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
    dense = xnnpack_backend.dense_grouped_pointwise
    xnnpack_backend.dense_grouped_pointwise = lambda graph: graph
    try:
        yield
    finally:
        xnnpack_backend.dense_grouped_pointwise = dense


VARIANTS: dict[str, Callable[[], AbstractContextManager]] = {
    "shipped (DyReLU float, twin bridges, small grouped 1x1 dense)": lambda: recipe_changed(),
    "DyReLU int8": lambda: recipe_changed(float_dyrelu=False),
    "float model's bridges": lambda: recipe_changed(twin_bridges=()),
    "small grouped 1x1 convs kept grouped": grouped_convs_kept,
}


def export(model: str, name: str, work: Path) -> Path:
    out = work / name.split(" (")[0].replace(" ", "_").replace("'", "")
    pte = out / f"{model}_xnnpack_int8.pte"
    if not pte.exists():
        print(f"[redecide] exporting {model}: {name}", flush=True)
        with VARIANTS[name]():
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
            "estimated_ms": result["cycles"]["estimated_ms"], "clock_ghz": result["cycles"]["clock_ghz"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobile_former_26m")
    parser.add_argument("--work", type=Path, default=Path("out/redecide"))
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results")
    parser.add_argument("--shipped", type=Path, help="an existing int8 export of the shipped recipe (e.g. make demo's) "
                                                     "instead of exporting it again")
    args = parser.parse_args()
    artifacts = {name: args.shipped if i == 0 and args.shipped else export(args.model, name, args.work)
                 for i, name in enumerate(VARIANTS)}
    rows = []
    for name, pte in artifacts.items():
        row = {"variant": name, "artifact": str(pte)}
        for core in CORES:
            row[core] = counted(pte, core)
        rows.append(row)
    shipped = rows[0]
    lines = ["| our int8 " + args.model + " | " + " | ".join(
        f"{c} M instr. | {c} M cycles | {c} est. ms | vs shipped" for c in CORES) + " |",
             "|---|" + "---|---|---|---|" * len(CORES)]
    for row in rows:
        cells = []
        for c in CORES:
            cells += [f"{row[c]['instructions'] / 1e6:.2f}", f"{row[c]['cycles'] / 1e6:.2f}",
                      f"{row[c]['estimated_ms']:.2f}", f"{row[c]['cycles'] / shipped[c]['cycles']:.3f}x"]
        lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"redecide_{args.model}.json").write_text(json.dumps(
        {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "model": args.model, "rows": rows},
        indent=1) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
