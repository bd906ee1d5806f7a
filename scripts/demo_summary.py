"""The answer of ``make demo`` in one table: every artifact's size, host latency, phone-core count.

Reads what the demo wrote under OUT: the export manifests (``*.manifest.json``: size, SQNR
against fp32), every latency result below OUT (``**/*.latency.json``: ``quant.bench``'s host
latency, ``quant.bench --arm64``'s AArch64 instructions and, where the result carries them,
estimated cycles and milliseconds on the emulated core). A result another tool adds later
(another core, another runtime) is a column of its own: columns are found, not listed.
Ends with int8 against fp32 for this project's recipe. With ``--json PATH`` it also writes
the same rows and columns as a results file (``"kind": "demo"``: model, UTC day, machine,
threads, and what each column measures), from which ``scripts/results_tables.py`` renders the
README's headline table and docs/results.md's.

    python scripts/demo_summary.py out/demo [--json out/demo/demo.json]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from quant.errors import ArgumentParser, UserError
from quant.files import check_not_an_input, check_replaceable, write_json_atomic
from quant.formats import host_device, now_utc
from results_tables import ours


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _where(result: dict) -> str:
    """The device a result's figures are for: ``host``, or the named phone core of a count."""
    device = result.get("device", {})
    if device.get("kind") == "host" and "instructions" not in result:
        return "host"
    return device.get("cpu") or device.get("name") or device.get("kind") or "?"


def _measures(result: dict) -> dict[str, tuple[float, dict]]:
    """The whole-model figures of one latency result, each under a column name naming its device,
    with what the column is (device, measure, and for an estimate the clock and timing model)."""
    where, out = _where(result), {}
    if isinstance(result.get("latency_ms"), dict) and "p50" in result["latency_ms"] and "instructions" not in result:
        out[f"{where} ms"] = result["latency_ms"]["p50"], {"device": where, "measure": "ms",
                                                           "what": "host latency p50, ms, interleaved rounds"}
    if isinstance(result.get("instructions"), dict) and "per_inference" in result["instructions"]:
        out[f"{where} M instr"] = result["instructions"]["per_inference"] / 1e6, {
            "device": where, "measure": "M instr", "what": f"AArch64 instructions per inference (millions) "
                                                          f"counted under qemu-user as {where}"}
    cycles = result.get("cycles")
    if isinstance(cycles, dict) and cycles.get("estimated_ms") is not None:
        out[f"{where} est. ms"] = cycles["estimated_ms"], {
            "device": where, "measure": "est. ms", "clock_ghz": cycles.get("clock_ghz"),
            "cycle_model": cycles.get("model"),
            "what": f"estimated ms on {where} at {cycles.get('clock_ghz')} GHz (cycles from llvm-mca, caches left out)"}
    return out


def files_read(out: Path) -> tuple[list[Path], list[Path]]:
    """The export manifests in ``out`` and the latency results below it: what the summary reads."""
    return sorted(out.glob("*.manifest.json")), sorted(out.rglob("*.latency.json"))


def collect(out: Path) -> tuple[list[dict], dict[str, dict], list[dict]]:
    """One row per artifact (manifest order by name), the measure columns found (name -> what it
    is, in the order found), and the latency results the figures came from."""
    rows: dict[str, dict] = {}
    manifests, latency_results = files_read(out)
    for path in manifests:
        m = _load(path)
        if not m or "artifact" not in m:
            continue
        validation = m.get("validation") or {}
        rows[m["artifact"]] = {"artifact": m["artifact"], "path": str(out / m["artifact"]), "model": m.get("model"),
                               "backend": m.get("backend"), "precision": m.get("precision"),
                               "recipe": m.get("recipe"), "MB": m.get("size_bytes", 0) / 1e6,
                               "SQNR dB": validation.get("sqnr_db_vs_fp32"), "measures": {}}
    columns: dict[str, dict] = {}
    results = []
    for path in latency_results:
        result = _load(path)
        name = (result or {}).get("artifact", {}).get("file")
        if name not in rows:
            continue
        results.append(result)
        for column, (value, what) in _measures(result).items():
            rows[name]["measures"][column] = value
            columns.setdefault(column, what)
    return list(rows.values()), columns, results


def results_file(out: Path) -> dict:
    """The demo's figures as a results file (``"kind": "demo"``): the rows and columns of the table,
    the model, the UTC day of the newest result, the machine and threads of the host benchmark, and
    per phone core where our int8's and fp32's estimated cycles go (:func:`operator_kinds`)."""
    rows, columns, results = collect(out)
    host = next((r for r in results if _where(r) == "host"), {})
    device = host.get("device") or host_device()
    models = sorted({r["model"] for r in rows} - {None})
    created = max((r.get("created", "") for r in results), default="") or now_utc()
    return {"kind": "demo", "model": ", ".join(models), "date": created[:10],
            "machine": f"{device.get('cpu', '?')}, {device.get('cores', '?')} cores",
            "threads": host.get("threads"), "columns": columns,
            "rows": [{k: v for k, v in r.items() if k != "path"} for r in rows],
            "operator_kinds": operator_kinds(rows, results)}


def _kind(operator: str) -> str:
    """XNNPACK's operator name without its layout and types: ``Convolution (NHWC, QD8, F32, QC8W)`` ->
    ``Convolution``."""
    return operator.split(" (", 1)[0].strip()


def operator_kinds(rows: list[dict], results: list[dict]) -> dict[str, dict[str, dict[str, int]]]:
    """Per phone core, our int8's and our fp32's estimated cycles per inference by operator kind, the
    runtime's own (outside every operator) under ``"(outside operators)"``: what the int8 ratio is made of."""
    pair = ours(rows)
    if pair is None:
        return {}
    names = {pair[0]["artifact"]: "int8", pair[1]["artifact"]: "fp32"}
    kinds: dict[str, dict[str, dict[str, int]]] = {}
    for result in results:
        precision, cycles = names.get(result["artifact"]["file"]), result.get("cycles")
        if precision is None or not isinstance(cycles, dict) or not result.get("operators"):
            continue
        by_kind: dict[str, int] = {}
        for op in result["operators"]:  # cycles per inference, as the result's total
            by_kind[_kind(op["name"])] = by_kind.get(_kind(op["name"]), 0) + op["cycles"]
        by_kind["(outside operators)"] = cycles["runtime_overhead"]
        kinds.setdefault(_where(result), {})[precision] = by_kind
    return {core: both for core, both in kinds.items() if len(both) == 2}


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
    pair = ours(rows)
    if pair is None:
        return []
    int8, fp32 = pair
    lines = [f"int8 vs fp32 (XNNPACK, our recipe): size {fp32['MB'] / int8['MB']:.2f}x smaller"
             + (f", SQNR {int8['SQNR dB']:.1f} dB vs fp32" if int8["SQNR dB"] is not None else "")]
    for column in columns:
        a, b = int8["measures"].get(column), fp32["measures"].get(column)
        if a and b:
            lines.append(f"  {column}: int8 {a:.2f} vs fp32 {b:.2f} ({a / b:.2f}x the instructions)" if
                         column.endswith("M instr") else
                         f"  {column}: int8 {a:.2f} vs fp32 {b:.2f} ({b / a:.2f}x {'faster' if a < b else 'slower'})")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the demo's output directory (make demo: out/demo)")
    p.add_argument("--json", type=Path, metavar="PATH",
                   help="also write the figures as a results file (what docs/results/demo_MODEL.json are copies of) for "
                        "scripts/results_tables.py (default: none)")
    args = p.parse_args(argv)
    if not args.out.is_dir():
        print(f"error: {args.out} is not a directory", file=sys.stderr)
        return 2
    if args.json and not args.json.parent.is_dir():
        print(f"error: --json {args.json}: no folder {args.json.parent}", file=sys.stderr)
        return 2
    try:  # the project's output policy: only a results file of ours is replaced, never one it reads
        if args.json:
            check_not_an_input(args.json, {path: "a file read" for path in sum(files_read(args.out), [])}, "--json")
            check_replaceable(args.json, is_dir=False)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows, columns, _ = collect(args.out)
    if not rows:
        print(f"error: no export manifests in {args.out}", file=sys.stderr)
        return 2
    print(table(rows, columns))
    for line in answer(rows, columns):
        print(line)
    print(f"artifacts and manifests: {args.out}/")
    if args.json:  # checked above, before any output
        write_json_atomic(args.json, results_file(args.out))
        print(f"results file: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
