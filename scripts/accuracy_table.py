"""The multi-seed accuracy table of docs/accuracy.md, from the runs of scripts/accuracy_seeds.sh.

Usage: python scripts/accuracy_table.py MODEL RECIPE RUN_DIR [RUN_DIR ...]

Each RUN_DIR is one seed's scripts/accuracy.sh run; every figure is its exported artifact (the
RECIPE's backend: .pte, .mlpackage or .tflite) on the 10,000 held-out images, p-values from the
exact McNemar test (quant.evaluate --compare).
Prints a markdown table: one row per seed, then mean, min and max of each column, and what
holds on every seed.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

from quant.errors import UserError, command
from quant.evaluate import compare, read_top1
from quant.export import artifact_name
from quant.recipes import get_recipe

DATA = "fashion-mnist"


def _optional(path: Path) -> float | None:
    return read_top1(path)["top1"] if path.is_file() else None


def seed_row(run: Path, model: str, recipe: str) -> dict:
    chosen = get_recipe(recipe)
    backend = chosen.backend
    int8 = artifact_name(model, backend, "int8", chosen, "top1.json", False)
    fp32 = read_top1(run / "ptq" / artifact_name(model, backend, "fp32", get_recipe(backend), "top1.json", False))
    ptq, qat = read_top1(run / "ptq" / int8), read_top1(run / "qat-export" / int8)
    loss = fp32["top1"] - ptq["top1"]
    gain = qat["top1"] - ptq["top1"]
    return {"run": run.name, "fp32": fp32["top1"], "ptq": ptq["top1"], "qat": qat["top1"],
            # absent with STOCK=0 or another backend than XNNPACK, and where PTQ was calibrated on the data
            # set itself
            "stock": _optional(run / "ptq" / artifact_name(model, "xnnpack", "int8", get_recipe("xnnpack-stock"), "top1.json", False)),
            "ptq_own": _optional(run / f"ptq-{DATA}" / int8),
            "ptq_delta": -loss, "p_ptq": compare(fp32, ptq)["p_value"], "qat_gain": gain,
            "p_qat": compare(ptq, qat)["p_value"], "qat_delta": qat["top1"] - fp32["top1"],
            "p_qat_fp32": compare(qat, fp32)["p_value"], "recovered": gain / loss if loss > 0 else None}


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def pt(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.2f} pt"


def share(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


# (header, key, format, key of its p-value)
COLUMNS = [("fp32", "fp32", pct, None), ("PTQ, stock", "stock", pct, None),
           (f"PTQ, calibrated on 256 {DATA}", "ptq_own", pct, None), ("PTQ", "ptq", pct, None),
           ("PTQ − fp32", "ptq_delta", pt, "p_ptq"), ("QAT", "qat", pct, None), ("QAT − PTQ", "qat_gain", pt, "p_qat"),
           ("QAT − fp32", "qat_delta", pt, "p_qat_fp32"), ("recovered by QAT", "recovered", share, None)]


def _summary(values: list, f) -> float | None:
    present = [v for v in values if v is not None]  # recovery means nothing where PTQ lost nothing
    return f(present) if present else None


def table(rows: list[dict]) -> str:
    columns = [c for c in COLUMNS if c[1] == "recovered" or any(r[c[1]] is not None for r in rows)]  # no empty ones
    lines = ["| run | " + " | ".join(h for h, *_ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for r in rows:
        cells = [fmt(r[key]) + (f" (p = {r[p]:.2g})" if p else "") for _, key, fmt, p in columns]
        lines.append(f"| {r['run']} | " + " | ".join(cells) + " |")
    for name, f in (("mean", statistics.mean), ("min", min), ("max", max)):
        lines.append(f"| {name} | " + " | ".join(fmt(_summary([r[key] for r in rows], f)) for _, key, fmt, _ in columns) + " |")
    return "\n".join(lines)


def verdict(rows: list[dict]) -> str:
    """What holds on every seed, in the terms of issue 18."""
    n = len(rows)
    lose = sum(r["ptq_delta"] < 0 for r in rows)
    recover = sum(r["recovered"] is not None and r["recovered"] >= 0.8 for r in rows)
    return (f"PTQ loses on {lose} of {n} seeds (mean {-100 * statistics.mean(r['ptq_delta'] for r in rows):.2f} pt, "
            f"least {-100 * max(r['ptq_delta'] for r in rows):.2f} pt); "
            f"QAT recovers at least 80% of the loss on {recover} of {n}.")


@command
def main(argv: list[str]) -> int:
    if len(argv) < 3:
        raise UserError(__doc__.split("\n\n")[1])
    model, recipe, runs = argv[0], argv[1], [Path(a) for a in argv[2:]]
    rows = [seed_row(run, model, recipe) for run in runs]
    print(table(rows))
    print()
    print(verdict(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
