"""The answer of ``make demo`` in one table: every artifact's size, host latency, phone-core count.

Reads what the demo wrote under OUT: the export manifests (``*.manifest.json``: size, SQNR
against fp32), every latency result below OUT (``**/*.latency.json``: ``quant.bench``'s host
latency, ``quant.bench --arm64``'s AArch64 instructions and, where the result carries them,
estimated cycles and milliseconds on the emulated core). A result another tool adds later
(another core, another runtime) is a column of its own: columns are found, not listed.
Ends with int8 against fp32 for this project's recipe.

    python scripts/demo_summary.py out/demo
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _measures(result: dict) -> dict[str, float]:
    """The whole-model figures of one latency result, each under a column name naming its device."""
    device = result.get("device", {})
    where = "host" if device.get("kind") == "host" and "instructions" not in result else (
        device.get("cpu") or device.get("name") or device.get("kind") or "?")
    out = {}
    if isinstance(result.get("latency_ms"), dict) and "p50" in result["latency_ms"] and "instructions" not in result:
        out[f"{where} ms"] = result["latency_ms"]["p50"]
    if isinstance(result.get("instructions"), dict) and "per_inference" in result["instructions"]:
        out[f"{where} M instr"] = result["instructions"]["per_inference"] / 1e6
    cycles = result.get("cycles")
    if isinstance(cycles, dict) and cycles.get("estimated_ms") is not None:
        out[f"{where} est. ms"] = cycles["estimated_ms"]
    return out


def collect(out: Path) -> tuple[list[dict], list[str]]:
    """One row per artifact (manifest order by name), and the measure columns found."""
    rows: dict[str, dict] = {}
    for path in sorted(out.glob("*.manifest.json")):
        m = _load(path)
        if not m or "artifact" not in m:
            continue
        validation = m.get("validation") or {}
        rows[m["artifact"]] = {"artifact": m["artifact"], "path": str(out / m["artifact"]),
                               "backend": m.get("backend"), "precision": m.get("precision"),
                               "recipe": m.get("recipe"), "MB": m.get("size_bytes", 0) / 1e6,
                               "SQNR dB": validation.get("sqnr_db_vs_fp32"), "measures": {}}
    columns: list[str] = []
    for path in sorted(out.rglob("*.latency.json")):
        result = _load(path)
        name = (result or {}).get("artifact", {}).get("file")
        if name not in rows:
            continue
        for column, value in _measures(result).items():
            rows[name]["measures"][column] = value
            if column not in columns:
                columns.append(column)
    return list(rows.values()), columns


def _cell(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "inf" if value == float("inf") else f"{value:.{digits}f}"
    return str(value)


def table(rows: list[dict], columns: list[str]) -> str:
    head = ["artifact", "MB", "SQNR dB", *columns]
    body = [[r["artifact"], _cell(r["MB"]), _cell(r["SQNR dB"], 1), *(_cell(r["measures"].get(c)) for c in columns)]
            for r in rows]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    fmt = lambda line: "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, body)])


def answer(rows: list[dict], columns: list[str]) -> list[str]:
    """Our int8 against our fp32 (XNNPACK, this project's recipe): each measure's ratio."""
    by = {(r["backend"], r["precision"], r["recipe"]): r for r in rows}
    int8, fp32 = by.get(("xnnpack", "int8", "xnnpack")), by.get(("xnnpack", "fp32", None))
    if not (int8 and fp32):
        return []
    lines = [f"int8 vs fp32 (XNNPACK, our recipe): size {fp32['MB'] / int8['MB']:.2f}x smaller"
             + (f", SQNR {int8['SQNR dB']:.1f} dB vs fp32" if int8["SQNR dB"] is not None else "")]
    for column in columns:
        a, b = int8["measures"].get(column), fp32["measures"].get(column)
        if a and b:
            lines.append(f"  {column}: int8 {a:.2f} vs fp32 {b:.2f} ({b / a:.2f}x {'faster' if a < b else 'slower'})")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the demo's output directory (make demo: out/demo)")
    args = p.parse_args(argv)
    if not args.out.is_dir():
        print(f"error: {args.out} is not a directory", file=sys.stderr)
        return 2
    rows, columns = collect(args.out)
    if not rows:
        print(f"error: no export manifests in {args.out}", file=sys.stderr)
        return 2
    print(table(rows, columns))
    for line in answer(rows, columns):
        print(line)
    print(f"artifacts and manifests: {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
