"""``python -m quant.report RESULT.json...``: latency results as a table, a CSV and a PNG chart.

Reads results from ``quant.bench``, ``mfbench`` or the phone apps. Results that lack
what only the export knows (model, precision, which paper block each operator is in)
get it from the manifest next to them or given with ``--manifest``. Instruction counts
(``quant.bench --arm64``) are rendered the same way, in millions of AArch64 instructions
per inference instead of milliseconds; one report holds one metric, and latencies either traced
or untraced (``traced``; counts say which in a column). ``--trace`` also writes them as a Chrome Trace Event file
(:mod:`quant.trace`).
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

from mobileformer.cli import text_table

from .errors import ArgumentParser, command
from .files import check_name, check_outputs, ensure_writable_dir, staged_outputs
from .formats import ResultError, apply_manifest, find_manifest, manifest_beside, op_type, read_manifest, read_result
from .trace import check_trace_target, write_trace


@dataclass(frozen=True)
class Metric:
    """What a report plots: host/phone latency, or AArch64 instructions under qemu."""

    key: str  # the field of results, blocks and operators: "ms" or "instructions"
    unit: str  # column and axis unit

    def whole(self, result: dict) -> float:
        return result["latency_ms"]["p50"] if self.key == "ms" else result["instructions"]["per_inference"] / 1e6

    def part(self, item: dict) -> float:
        """A block's or an operator's share, in the metric's unit."""
        if self.key == "ms":
            return float(item.get("ms", item.get("mean_ms")) or 0.0)
        return float(item.get("instructions") or 0) / 1e6


LATENCY = Metric("ms", "ms")
INSTRUCTIONS = Metric("instructions", "M instructions")


def metric_of(results: list[dict]) -> Metric:
    """The one metric of a set of results; mixing latency and instruction counts is an error."""
    counted = {"instructions" in r for r in results}
    if len(counted) > 1:
        raise ResultError("these results mix latencies and instruction counts (quant.bench --arm64): report them separately")
    if counted == {True}:
        # Counts may be mixed: a traced runtime's clock reads (about 50 instructions an operator) are in its count,
        # and the table's `traced` column says whose (make demo counts our .pte beside LiteRT's .tflite).
        return INSTRUCTIONS
    traced = {r["traced"] for r in results if isinstance(r.get("traced"), bool)}
    if len(traced) > 1:
        raise ResultError("these results mix traced and untraced whole-model latencies (docs/latency-format.md, "
                          "`traced`): a runtime that times every operator is slower, so report them separately")
    return LATENCY


@dataclass
class Outputs:
    table: str
    csv: Path
    png: Path
    markdown: Path


def _baseline(result: dict, results: list[dict]) -> dict | None:
    """The fp32 result of the same model, if one is in the set (the speed-up reference)."""
    model = result["artifact"].get("model")
    for other in results:
        if other["artifact"].get("model") == model and other["artifact"].get("precision") == "fp32":
            return other
    return None


def summary_rows(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    metric = metric_of(results)
    if metric is LATENCY:
        header = ["result", "device", "threads", "p50 ms", "p90 ms", "size MB", "vs fp32"]
    else:
        header = ["result", "device", "traced", "instructions", "operators M", "overhead M", "est. M cycles", "est. ms",
                  "size MB", "vs fp32"]
    rows = []
    for r in results:
        base = _baseline(r, results)
        speedup = f"{metric.whole(base) / metric.whole(r):.2f}x" if base else "-"
        if metric is LATENCY:
            figures = [r.get("threads") or "-", f"{r['latency_ms']['p50']:.3f}", f"{r['latency_ms']['p90']:.3f}"]
        else:
            counts = r["instructions"]
            cycles = r.get("cycles")
            traced = {True: "yes", False: "no"}.get(r.get("traced"), "-")
            figures = [traced, f"{counts['per_inference']:,}", *(f"{counts[key] / 1e6:.2f}" if key in counts else "-"
                                                         for key in ("operators_total", "runtime_overhead")),
                       f"{cycles['per_inference'] / 1e6:.2f}" if cycles else "-",
                       f"{cycles['estimated_ms']:.2f} @ {cycles['clock_ghz']} GHz" if cycles else "-"]
        rows.append([r["label"], r["device"].get("name") or r["device"].get("kind"), *figures,
                     f"{r['artifact']['size_bytes'] / 1e6:.2f}", speedup])
    return header, rows


def block_rows(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    with_blocks = [r for r in results if r["blocks"]]
    names: list[str] = []
    for r in with_blocks:
        names += [b["name"] for b in r["blocks"] if b["name"] not in names]
    metric = metric_of(results)
    header = [f"block ({metric.unit})"] + [r["label"] for r in with_blocks]
    estimated = [r for r in with_blocks if "cycles" in r]
    header += [f"{r['label']} est. ms" for r in estimated]
    rows = []
    for name in names:
        cells = [next((f"{metric.part(b):.3f}" for b in r["blocks"] if b["name"] == name), "-") for r in with_blocks]
        cells += [next((f"{estimated_ms(r, b['cycles']):.3f}" for b in r["blocks"] if b["name"] == name and "cycles" in b),
                       "-") for r in estimated]
        rows.append([name] + cells)
    return header, rows


def estimated_ms(result: dict, cycles: float) -> float:
    """Estimated cycles of a counted result as milliseconds at its core's clock."""
    return cycles / (result["cycles"]["clock_ghz"] * 1e6)


def _has_operator_figures(result: dict) -> bool:
    """Operators with a figure each: instruction results may have exact totals only."""
    return bool(result["operators"]) and result.get("instructions", {}).get("operators_exact", True)


def op_type_totals(result: dict, top: int = 8) -> list[tuple[str, float]]:
    metric = metric_of([result])
    totals: dict[str, float] = {}
    for op in result["operators"]:
        totals[op_type(op["name"])] = totals.get(op_type(op["name"]), 0.0) + metric.part(op)
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def op_type_ms(result: dict) -> dict[str, float]:
    """Estimated milliseconds per operator type of a counted result with cycles."""
    totals: dict[str, float] = {}
    for op in result["operators"]:
        totals[op_type(op["name"])] = totals.get(op_type(op["name"]), 0.0) + estimated_ms(result, op.get("cycles") or 0)
    return totals


def _chart(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = metric_of(results)
    with_blocks = [r for r in results if r["blocks"]]
    panels = 2 if with_blocks or any(_has_operator_figures(r) for r in results) else 1
    fig, axes = plt.subplots(1, panels, figsize=(7 + 7 * (panels - 1), max(3.5, 0.45 * len(results) + 2)), squeeze=False)
    ax = axes[0][0]
    labels = [r["label"] for r in results]
    values = [metric.whole(r) for r in results]
    if metric is LATENCY:
        err = [r["latency_ms"]["p90"] - r["latency_ms"]["p50"] for r in results]
        ax.barh(range(len(results)), values, xerr=[[0] * len(err), err], color="#4C72B0", capsize=3)
        ax.set_xlabel("latency, ms (bar: p50, whisker: p90)")
    else:
        ax.barh(range(len(results)), values, color="#4C72B0")
        ax.set_xlabel(f"AArch64 instructions per inference, millions ({results[0]['device'].get('cpu')}, qemu)")
    ax.set_yticks(range(len(results)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_title("whole model")
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    if panels == 2:
        ax = axes[0][1]
        if with_blocks:
            names: list[str] = []
            for r in with_blocks:
                names += [b["name"] for b in r["blocks"] if b["name"] not in names]
            height = 0.8 / len(with_blocks)
            for k, r in enumerate(with_blocks):
                ms = {b["name"]: metric.part(b) for b in r["blocks"]}
                ax.barh([i + k * height for i in range(len(names))], [ms.get(n, 0) for n in names], height=height,
                        label=r["label"])
            ax.set_yticks([i + 0.4 - height / 2 for i in range(len(names))], names, fontsize=6)
            ax.invert_yaxis()
            ax.set_xlabel(f"{metric.unit} per inference (sum of the block's operators)")
            ax.set_title("where the time goes, by paper block")
            ax.legend(fontsize=7)
        else:
            first = next(r for r in results if _has_operator_figures(r))
            kinds = op_type_totals(first)
            ax.barh(range(len(kinds)), [v for _, v in kinds], color="#DD8452")
            ax.set_yticks(range(len(kinds)), [k for k, _ in kinds], fontsize=7)
            ax.invert_yaxis()
            ax.set_xlabel(f"{metric.unit} per inference")
            ax.set_title(f"by operator type: {first['label']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def report_files(out: Path, name: str) -> list[Path]:
    """What :func:`render` writes."""
    return [out / f"{name}{suffix}" for suffix in (".csv", ".md", ".png")]


def render(results: list[dict], out: Path, name: str = "report") -> Outputs:
    """Table (returned), ``<name>.csv``, ``<name>.md`` and ``<name>.png`` in ``out``: all three or none."""
    check_name(name, suffix=".png")
    header, rows = summary_rows(results)
    text = text_table(header, rows)
    bheader, brows = block_rows(results)
    if brows:
        text += "\n\n" + text_table(bheader, brows)
    for r in results:
        if r["operators"] and not _has_operator_figures(r):
            text += f"\n\n{r['label']}: no per-operator counts (a node ran as several XNNPACK operators); totals exact"
        elif r["operators"] and not r["blocks"]:
            kinds = op_type_totals(r, top=6)
            unit = metric_of([r]).unit
            ms = op_type_ms(r) if "cycles" in r else {}
            text += f"\n\ntop operator types, {r['label']}:\n" + "\n".join(
                f"  {v:8.3f} {unit}" + (f"  {ms[k]:7.3f} est. ms" if k in ms else "") + f"  {k}" for k, v in kinds)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["section"] + header)
    writer.writerows(["summary"] + row for row in rows)
    if brows:
        writer.writerow(["blocks"] + bheader)
        writer.writerows(["blocks"] + row for row in brows)
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    if brows:
        md += ["", "| " + " | ".join(bheader) + " |", "|" + "---|" * len(bheader)]
        md += ["| " + " | ".join(map(str, r)) + " |" for r in brows]
    with staged_outputs(out) as stage:
        (stage / f"{name}.csv").write_text(buffer.getvalue())
        (stage / f"{name}.md").write_text("\n".join(md) + "\n")
        _chart(results, stage / f"{name}.png")
    return Outputs(text, out / f"{name}.csv", out / f"{name}.png", out / f"{name}.md")


def load_results(paths: list[Path], manifest: Path | None) -> list[dict]:
    given = read_manifest(manifest) if manifest else None
    results = []
    for path in paths:
        result = read_result(path)
        found = given or manifest_beside(result["artifact"]["file"], path.parent)
        results.append(apply_manifest(result, found) if found else result)
    return results


def files_read(paths: list[Path], results: list[dict], manifest: Path | None) -> dict[Path, str]:
    """What :func:`load_results` read (path -> what it is), which no output may replace."""
    beside = [find_manifest(r["artifact"]["file"], [p.parent]) for p, r in zip(paths, results)]
    manifests = [manifest] if manifest else beside
    return {**{m: "a manifest read" for m in manifests if m}, **{p: "one of the results read" for p in paths}}


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m quant.report", description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", type=Path, help="latency result JSON files")
    p.add_argument("--manifest", type=Path, help="export manifest for results that lack model/blocks (phone results)")
    p.add_argument("--out", type=Path, default=Path("out/report"), help="where the CSV, Markdown and PNG go")
    p.add_argument("--name", default="report", help="file name stem of the outputs")
    p.add_argument("--trace", type=Path, help="also write the results as a Chrome Trace Event file (Perfetto UI, "
                                              "chrome://tracing): blocks with their operators nested (quant.trace)")
    return p


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_name(args.name, suffix=".png")
    results = load_results(args.results, args.manifest)
    if args.trace:
        check_trace_target(args.trace, files_read(args.results, results, args.manifest))
    out = ensure_writable_dir(args.out)
    check_outputs(report_files(out, args.name) + ([args.trace] if args.trace else []))
    outputs = render(results, out, args.name)
    print(outputs.table)
    print(f"\ncsv: {outputs.csv}\nmarkdown: {outputs.markdown}\nchart: {outputs.png}")
    if args.trace:
        print(f"trace: {write_trace(results, args.trace)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
