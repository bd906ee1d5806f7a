"""The figures the docs quote, rendered from the results files the repository's scripts write.

A results block in any Markdown file is the table rendered from one results file, between two
markers (the path relative to the repository root):

    <!-- results: docs/results/NAME.json -->
    ...the table rendered from that file...
    <!-- /results -->

The file's top-level ``"kind"`` picks the renderer, a word after the path another view of the same
file: ``demo`` (``scripts/demo_summary.py OUT --json PATH``: the headline table of one model; its
``operators`` view: where our int8's and fp32's estimated cycles go), ``cycle_model_validation``
(``scripts/validate_cycle_model.py``: the cycle estimate against published phone latencies),
``accuracy`` (``scripts/accuracy_table.py ... --json PATH``, rendered by its ``render_results``).

    python scripts/results_tables.py --check [FILE ...]   # exit 1 naming each stale block, with a diff
    python scripts/results_tables.py --write [FILE ...]   # re-render the blocks in place

Without FILE: every Markdown file of the repository that holds a block (README.md,
CHANGELOG.md, docs/). A block whose results file does not exist yet is reported as a
"missing results file" (exit 1) and left as it is. Bad input (a FILE or results file that
cannot be read, an unknown kind, a block without its end marker): one ``error:`` line, exit 2.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
import tempfile
from pathlib import Path

from quant.aarch64.cores import CORES  # plain data: checking the docs imports no torch

ROOT = Path(__file__).resolve().parents[1]


class UserError(Exception):
    """Bad input: one ``error:`` line, exit code 2 (:func:`main`)."""


OPEN = re.compile(r"<!-- results: (?P<path>\S+)(?: (?P<view>\w+))? -->\n")
BLOCK = re.compile(r"(?P<open><!-- results: (?P<path>\S+)(?: (?P<view>\w+))? -->\n)(?P<body>.*?)"
                   r"(?P<close><!-- /results -->)", re.S)
VALIDATION = "cycle_model_validation.json"  # beside a demo results file: the estimate's measured error
# the artifacts of one demo, in the order a reader compares them: (backend, precision, recipe) -> label
ARTIFACTS = {("xnnpack", "fp32", "xnnpack-stock"): "stock fp32 `.pte`",
             ("xnnpack", "fp32", None): "our fp32 `.pte`",
             ("xnnpack", "int8", "xnnpack-stock"): "stock int8 `.pte`",
             ("xnnpack", "int8", "xnnpack"): "our int8 `.pte`",
             ("tflite", "int8", "tflite"): "LiteRT int8 `.tflite`",
             ("coreml", "int8", "coreml"): "Core ML int8 `.mlpackage`"}
OURS = ("xnnpack", "int8", "xnnpack"), ("xnnpack", "fp32", None)
LITERT = ("tflite", "int8", "tflite")
MULTIPLY_ADDS = ("Convolution", "Fully Connected", "Batch Matrix Multiply")  # the kinds int8's dot products speed up
IDEAL_INT8_SPEEDUP = 4  # int8 lanes per vector over fp32's: what no kernel exceeds
SHOWN_KINDS = 10  # operator kinds shown one by one, the rest summed


def placeholder(results: str) -> str:
    """What a block holds until its results file exists."""
    return f"(filled by scripts/results_tables.py --write once {results} exists)\n"


def write_text_atomic(path: Path, text: str) -> None:
    """``text`` to ``path`` through a temporary file beside it, renamed over it: all or nothing."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ours(rows: list[dict]) -> tuple[dict, dict] | None:
    """This project's int8 and fp32 XNNPACK rows of a demo, if both are there."""
    by = {(r["backend"], r["precision"], r["recipe"]): r for r in rows}
    int8, fp32 = (by.get(key) for key in OURS)
    return (int8, fp32) if int8 and fp32 else None


def _number(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _errors(validation: dict) -> str:
    """The cycle estimate's error against published single-thread latencies, per device."""
    by_device: dict[str, list[float]] = {}
    for row in validation["rows"]:
        if row["threads"] == 1:
            by_device.setdefault(row["device"], []).append(row["error"])
    return ", ".join(f"{device} {min(e):+.0%} to {max(e):+.0%}" for device, e in by_device.items())


def _estimate_note(path: Path, columns: dict[str, dict]) -> str:
    cores = ", ".join(f"{c['device']} at {c['clock_ghz']} GHz" for c in columns.values() if c["measure"] == "est. ms")
    validation = path.parent / VALIDATION
    checked = (f"against XNNPACK's published single-thread latencies the same estimate errs by "
               f"{_errors(_read(validation))} (docs/results/{VALIDATION}): read the ms as likely low, the ratios "
               f"as the finding"
               if validation.is_file() else f"not validated ({VALIDATION} is not beside {path.name})")
    return f"¹ Estimated from cycles ({cores}; llvm-mca's model of the core, caches left out); {checked}."


def _ratios(int8: dict, other: dict, columns: dict[str, dict], against: str, host: bool = True) -> str:
    """Our int8 against another row of the demo: size, then each measure both rows have (the host's
    only if ``host``: latencies of one interleaved call)."""
    parts = [f"{other['MB'] / int8['MB']:.2f}x smaller"]
    for name, column in columns.items():
        a, b = int8["measures"].get(name), other["measures"].get(name)
        if a and b and (host or column["measure"] != "ms"):
            where = column["device"] + (" est." if column["measure"] == "est. ms" else "")
            parts.append(f"{column['device']} {a / b:.2f}x the instructions" if column["measure"] == "M instr" else
                         f"{where} {b / a:.2f}x {'faster' if a < b else 'slower'}")
    return f"Our int8 against {against}: " + "; ".join(parts) + "."


def _comparisons(rows: list[dict], columns: dict[str, dict]) -> list[str]:
    """Our int8 against our fp32 (what int8 buys) and against LiteRT's int8 (the other int8 on Android; its
    host latency comes from a call of its own, so it is not compared)."""
    pair = ours(rows)
    if pair is None:
        return []
    litert = next((r for r in rows if (r["backend"], r["precision"], r["recipe"]) == LITERT), None)
    return [_ratios(pair[0], pair[1], columns, "our fp32"),
            *([_ratios(pair[0], litert, columns, "LiteRT's int8", host=False)] if litert else [])]


def demo_table(data: dict, path: Path) -> str:
    """The headline table of one model: per artifact its size, host latency, and per phone core its
    AArch64 instructions and estimated ms; then our int8 against our fp32."""
    cores = ["host", *CORES]  # host first, then the phone cores as quant.aarch64.cores lists them
    columns = dict(sorted(data["columns"].items(), key=lambda c: cores.index(c[1]["device"])
                          if c[1]["device"] in cores else len(cores)))
    order = list(ARTIFACTS)
    rows = sorted(data["rows"], key=lambda r: order.index(k) if (k := (r["backend"], r["precision"], r["recipe"]))
                  in ARTIFACTS else len(order))
    estimated = any(c["measure"] == "est. ms" for c in columns.values())
    head = [data["model"], "MB", *(f"{n} ¹" if c["measure"] == "est. ms" else n for n, c in columns.items())]
    lines = [f"{data['model']}, {data['machine']}, {data['threads']} thread(s), batch 1, {data['date']} "
             f"(`make demo MODEL={data['model']}`)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        bold = (r["backend"], r["precision"], r["recipe"]) == OURS[0]
        cells = [ARTIFACTS.get((r["backend"], r["precision"], r["recipe"]), r["artifact"]), _number(r["MB"]),
                 *(_number(r["measures"].get(n)) for n in columns)]
        lines.append("| " + " | ".join(f"**{c}**" if bold and c != "—" else c for c in cells) + " |")
    notes = [*_comparisons(rows, columns), *([_estimate_note(path, columns)] if estimated else [])]
    return "\n".join([*lines, *(line for note in notes for line in ("", note))])


def _million(cycles: float) -> str:
    return f"{cycles / 1e6:.2f}"


def demo_operators_table(data: dict, path: Path) -> str:
    """Where our int8's and our fp32's estimated cycles go on each phone core, by operator kind, and
    how far int8 could get were its multiply-adds as fast as its lanes allow."""
    cores = [c for c in CORES if c in data["operator_kinds"]] + sorted(set(data["operator_kinds"]) - set(CORES))
    if not cores:
        raise UserError(f"{path}: no estimated cycles of our int8 and fp32 per operator (a demo without AArch64 counts)")
    kinds = {core: data["operator_kinds"][core] for core in cores}
    names = sorted({k for both in kinds.values() for p in both.values() for k in p} - {"(outside operators)"},
                   key=lambda k: -max(both["fp32"].get(k, 0) + both["int8"].get(k, 0) for both in kinds.values()))
    shown, rest = names[:SHOWN_KINDS], names[SHOWN_KINDS:]
    lines = ["| M est. cycles per inference | " + " | ".join(f"{c} fp32 | {c} int8 | int8 ÷ fp32" for c in cores) + " |",
             "|---|" + "---|---|---|" * len(cores)]

    def row(label: str, select: list[str], bold: bool = False) -> str:
        cells = [label]
        for both in kinds.values():
            f, i = (sum(both[p].get(k, 0) for k in select) for p in ("fp32", "int8"))
            cells += [_million(f), _million(i), f"{i / f:.2f}x" if f else "—"]
        return "| " + " | ".join(f"**{c}**" if bold else c for c in cells) + " |"

    lines += [row(k, [k]) for k in shown]
    lines += [row(f"{len(rest)} other kinds", rest)] if rest else []
    lines += [row("outside operators (the runtime)", ["(outside operators)"]),
              row("total", [*names, "(outside operators)"], bold=True)]
    return "\n".join([*lines, "", _headroom(kinds)])


def _headroom(kinds: dict[str, dict[str, dict[str, float]]]) -> str:
    """The multiply-add kinds' int8 speed-up, the rest's growth, and the bound an ideal int8 kernel sets."""
    speedups, rests, bounds = [], [], []
    for core, both in kinds.items():
        mac = {p: sum(both[p].get(k, 0) for k in MULTIPLY_ADDS) for p in both}
        total = {p: sum(both[p].values()) for p in both}
        rest = {p: total[p] - mac[p] for p in both}
        speedups.append(f"{core} {mac['fp32'] / mac['int8']:.2f}x")
        rests.append(f"{core} {rest['int8'] / rest['fp32']:.2f}x")
        bounds.append(f"{core} {(rest['int8'] + mac['fp32'] / IDEAL_INT8_SPEEDUP) / total['fp32']:.2f}x")
    converts = any(both["int8"].get("Convert", 0) > both["fp32"].get("Convert", 0) for both in kinds.values())
    return (f"The multiply-add kinds ({', '.join(MULTIPLY_ADDS)}) run {', '.join(speedups)} faster in int8 than in "
            f"fp32; every other kind together takes {', '.join(rests)} fp32's cycles"
            f"{' (int8 adds its Converts)' if converts else ''}. Were "
            f"the multiply-add kinds {IDEAL_INT8_SPEEDUP}x faster in int8 (int8's lanes per vector over fp32's: "
            f"an ideal, not a kernel) and the rest as counted, our int8 would be {', '.join(bounds)} our fp32's "
            f"estimated cycles.")


def cycle_validation_table(data: dict, path: Path) -> str:
    """The cycle estimate against XNNPACK's published latencies, one row per device and model."""
    lines = ["| device | core model (llvm-mca) @ clock | threads | model | precision | instructions | predicted ms | "
             "published ms | error |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['device']} | {r['core']} ({r['llvm_mca_cpu']}) @ {r['clock_ghz']} GHz | {r['threads']} | "
              f"{r['model']} | {r['precision']} | {r['instructions'] / 1e6:.1f} M | {r['predicted_ms']} | "
              f"{r['published_ms']} | {r['error']:+.0%} |" for r in data["rows"]]
    return "\n".join([*lines, "", f"Within ±25%: {data['within_25_percent']}; "
                      f"mean |error| {data['mean_abs_error']:.0%} "
                      f"({data['created'][:10]}, qemu {data['qemu']}, LLVM {data['llvm']}, host {data['host']}; "
                      f"published figures: {data['source']})."])


def accuracy_table(data: dict, path: Path) -> str:
    """Rendered by ``scripts/accuracy_table.py``, which writes these files."""
    import accuracy_table as writer
    from quant.errors import UserError as TheirError

    if not hasattr(writer, "render_results"):
        raise UserError(f"{path}: scripts/accuracy_table.py has no render_results() to render it")
    try:
        return writer.render_results(data)
    except TheirError as e:
        raise UserError(f"{path}: {e}") from None


RENDERERS = {"demo": demo_table, "cycle_model_validation": cycle_validation_table, "accuracy": accuracy_table}
VIEWS = {("demo", "operators"): demo_operators_table}  # (kind, view) -> another table of the same file


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise UserError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a results file (a JSON object with a \"kind\")")
    return data


def render(path: Path, view: str | None = None) -> str:
    """The Markdown a results file renders to, by its ``"kind"`` (and ``view``, if named)."""
    data = _read(Path(path))
    kind = data.get("kind")
    if kind not in RENDERERS:
        raise UserError(f"{path}: unknown kind {kind!r} (known: {', '.join(sorted(RENDERERS))})")
    if view is not None and (kind, view) not in VIEWS:
        known = ", ".join(v for k, v in VIEWS if k == kind) or "none"
        raise UserError(f"{path}: a {kind} results file has no view {view!r} (known: {known})")
    try:
        return (VIEWS[kind, view] if view else RENDERERS[kind])(data, Path(path)).rstrip("\n") + "\n"
    except (KeyError, TypeError, ZeroDivisionError) as e:
        raise UserError(f"{path}: not a complete {kind} results file ({type(e).__name__}: {e})") from None


def blocks(text: str, where: Path) -> list[re.Match]:
    """The results blocks of a Markdown text; a block without its end marker is an error."""
    found = list(BLOCK.finditer(text))
    if len(found) != len(OPEN.findall(text)):
        raise UserError(f"{where}: a '<!-- results: ... -->' block has no '<!-- /results -->'")
    return found


def rendered(text: str, where: Path, root: Path) -> tuple[str, list[str]]:
    """``text`` with every block whose results file exists re-rendered, and those whose file is missing."""
    missing, out, last = [], [], 0
    for block in blocks(text, where):
        results = root / block["path"]
        body = render(results, block["view"]) if results.is_file() else block["body"]
        if not results.is_file():
            missing.append(block["path"])
        out += [text[last:block.start("body")], body]
        last = block.end("body")
    return "".join([*out, text[last:]]), missing


def documents(root: Path) -> list[Path]:
    """Every Markdown file of the repository that holds a results block."""
    candidates = [root / "README.md", root / "CHANGELOG.md", *sorted((root / "docs").rglob("*.md"))]
    return [p for p in candidates if p.is_file() and OPEN.search(p.read_text(encoding="utf-8"))]


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None


def check(paths: list[Path], root: Path) -> int:
    """Exit code 1, with each stale block named and a diff, unless every block is up to date."""
    problems = 0
    for path in paths:
        text = _text(path)
        new, missing = rendered(text, path, root)
        for results in missing:
            print(f"{path}: block {results}: missing results file", file=sys.stderr)
        if new != text:
            stale = [b["path"] for b, n in zip(blocks(text, path), blocks(new, path)) if b["body"] != n["body"]]
            print(f"{path}: stale block(s) {', '.join(stale)} (scripts/results_tables.py --write {path}):",
                  file=sys.stderr)
            sys.stderr.writelines(difflib.unified_diff(text.splitlines(True), new.splitlines(True), str(path),
                                                       f"{path} (rendered)"))
        problems += len(missing) + (new != text)
    return 1 if problems else 0


def write(paths: list[Path], root: Path) -> int:
    """Every block re-rendered in place; exit code 1 if a results file was missing (its block kept)."""
    texts = {path: _text(path) for path in paths}
    news, missing = {}, False
    for path, text in texts.items():  # every file rendered before the first is written
        news[path], waiting = rendered(text, path, root)
        for results in waiting:
            print(f"{path}: block {results}: missing results file, left as it is", file=sys.stderr)
        missing = missing or bool(waiting)
    for path, new in news.items():
        if new != texts[path]:
            write_text_atomic(path, new)
            print(f"rendered {path}")
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    """Bad input ends in one ``error:`` line and exit code 2, as every command of the project does."""
    try:
        return _main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file of the docs that cannot be written
        print(f"error: {e.filename or ''}: {e.strerror}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 naming each stale block, with a diff")
    mode.add_argument("--write", action="store_true", help="re-render the blocks in place")
    p.add_argument("files", nargs="*", type=Path, metavar="FILE",
                   help="Markdown files (default: every one of the repository that holds a block)")
    p.add_argument("--root", type=Path, default=ROOT, help="the repository root the blocks' paths are relative to")
    args = p.parse_args(argv)
    paths = args.files or documents(args.root)
    for path in paths:
        if not path.is_file():
            raise UserError(f"{path} is not a file")
    return check(paths, args.root) if args.check else write(paths, args.root)


if __name__ == "__main__":
    sys.exit(main())
