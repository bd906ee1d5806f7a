"""The multi-seed accuracy table of docs/benchmarks.md, from the runs of scripts/accuracy_seeds.sh.

Usage: python scripts/accuracy_table.py MODEL RECIPE RUN_DIR [RUN_DIR ...]

Each RUN_DIR is one seed's scripts/accuracy.sh run; every figure is its exported .pte on the
10,000 held-out images, p-values from the exact McNemar test (quant.evaluate --compare).
Prints a markdown table: one row per seed, then mean, spread (min to max) and what holds on
every seed.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

from quant.evaluate import compare, read_result
from quant.export import artifact_name


def seed_row(run: Path, model: str, recipe: str) -> dict:
    int8 = artifact_name(model, "xnnpack", "int8", recipe, "top1.json", False)
    fp32 = read_result(run / "ptq" / artifact_name(model, "xnnpack", "fp32", "xnnpack", "top1.json", False))
    stock_path = run / "ptq" / artifact_name(model, "xnnpack", "int8", "xnnpack-stock", "top1.json", False)
    stock = read_result(stock_path)["top1"] if stock_path.is_file() else None  # absent with STOCK=0
    ptq, qat = read_result(run / "ptq" / int8), read_result(run / "qat-export" / int8)
    loss = fp32["top1"] - ptq["top1"]
    gain = qat["top1"] - ptq["top1"]
    return {"run": run.name, "fp32": fp32["top1"], "stock": stock, "ptq": ptq["top1"], "qat": qat["top1"],
            "ptq_loss": loss, "p_ptq": compare(fp32, ptq)["p_value"], "qat_gain": gain,
            "p_qat": compare(ptq, qat)["p_value"], "p_qat_fp32": compare(qat, fp32)["p_value"],
            "recovered": gain / loss if loss > 0 else None}


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def pt(x: float) -> str:
    return f"{100 * x:+.2f} pt"


def recovered(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def table(rows: list[dict]) -> str:
    lines = ["| run | fp32 | PTQ, stock | PTQ | PTQ − fp32 (p) | QAT | QAT − PTQ (p) | QAT vs fp32 p | recovered |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['run']} | {pct(r['fp32'])} | {pct(r['stock'])} | {pct(r['ptq'])} | "
                     f"{pt(-r['ptq_loss'])} (p = {r['p_ptq']:.2g}) | {pct(r['qat'])} | "
                     f"{pt(r['qat_gain'])} (p = {r['p_qat']:.2g}) | {r['p_qat_fp32']:.2g} | {recovered(r['recovered'])} |")
    stocks = [r["stock"] for r in rows if r["stock"] is not None]
    losing = [r["recovered"] for r in rows if r["ptq_loss"] > 0]  # recovery means nothing where PTQ lost nothing
    for name, f in (("mean", statistics.mean), ("min", min), ("max", max)):
        lines.append(f"| {name} | {pct(f(r['fp32'] for r in rows))} | {pct(f(stocks) if stocks else None)} | "
                     f"{pct(f(r['ptq'] for r in rows))} | {pt(-f(r['ptq_loss'] for r in rows))} | "
                     f"{pct(f(r['qat'] for r in rows))} | {pt(f(r['qat_gain'] for r in rows))} | | "
                     f"{recovered(f(losing)) if losing else '—'} |")
    return "\n".join(lines)


def verdict(rows: list[dict]) -> str:
    """What holds on every seed, in the terms of issue 18."""
    n = len(rows)
    lose = sum(r["ptq_loss"] > 0 for r in rows)
    mean_loss = statistics.mean(r["ptq_loss"] for r in rows)
    recover = sum(r["recovered"] is not None and r["recovered"] >= 0.8 for r in rows)
    return (f"PTQ loses on {lose} of {n} seeds (mean {100 * mean_loss:.2f} pt); "
            f"QAT recovers at least 80% of the loss on {recover} of {n}.")


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    model, recipe, runs = argv[0], argv[1], [Path(a) for a in argv[2:]]
    rows = [seed_row(run, model, recipe) for run in runs]
    print(table(rows))
    print()
    print(verdict(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
