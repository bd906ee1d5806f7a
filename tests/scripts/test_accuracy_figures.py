"""Every accuracy figure the README and docs quote comes from a results file of today's recipes (issue 36).

A results file (``docs/results/accuracy_*.json``, scripts/accuracy_table.py --json) is of today's recipe
when its fingerprint is the one today's code gives its recipe; a quoted figure counts only inside a
``<!-- results: docs/results/accuracy_*.json -->`` ... ``<!-- /results -->`` block, and only if the
block's file renders it (:func:`render_results`).

What counts as a quoted accuracy figure (:func:`quoted_figures`), and why:
- a top-1 percentage is written with two decimals (``84.77%``: 10,000 test images give 0.01% steps)
  and is at least 10% (chance on ten classes; ``0.02%`` of an inference's instructions is not one),
  a difference of two in percentage points (``−0.63 pt``: no other measure here is in points), and a
  share recovered by QAT is a whole percentage on a line that says "recover";
- criteria (``≥ 1 pt``, ``≥ 80%``) are not figures;
- signed percentages (``+0.12%``, ``−4.3%``) and one-decimal ones (``73.7%`` of convs in int8,
  ``98.8%`` top-1 agreement) are relative changes and coverage or agreement figures: not counted;
- a figure counts where its paragraph (the lines between blank lines: a prose paragraph or a whole
  table with its header row) or, for a table row, the section heading above it mentions top-1,
  PTQ, QAT, fp32 or accuracy: "0.02% of the total" in an instruction-count paragraph is not one.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from quant.backends import BACKENDS
from quant.recipes import get_recipe
from tests.scripts.test_accuracy_table import RECIPE, M, _run, accuracy_table

ROOT = Path(__file__).parents[2]
DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "CHANGELOG.md")]
RESULTS = sorted((ROOT / "docs" / "results").glob("accuracy_*.json"))

NOT_A_FIGURE = r"(?<![\w.,≥≤])(?<![≥≤] )"  # inside a number, or a criterion (≥ 1 pt, ≥ 80%)
TOP1 = re.compile(NOT_A_FIGURE + r"(?<![+−-])(?:[1-9]\d|100)\.\d{2}\s?%")
POINTS = re.compile(NOT_A_FIGURE + r"[+−-]?\d+(?:\.\d+)?\s?pt\b")
SHARE = re.compile(NOT_A_FIGURE + r"(?<![+−-])\d+%")
CONTEXT = re.compile(r"top-1|\bPTQ\b|\bQAT\b|\bfp32\b|accura", re.IGNORECASE)
BLOCK_START = re.compile(r"<!--\s*results:\s*(\S+)\s*-->")
BLOCK_END = re.compile(r"<!--\s*/results\s*-->")
ACCURACY_BLOCK = re.compile(r"docs/results/accuracy_[^/]+\.json")


def figures(line: str) -> list[str]:
    """The accuracy-like figures of one line, as number and unit (``84.77%``, ``0.63pt``), signs dropped."""
    found = TOP1.findall(line) + POINTS.findall(line) + (SHARE.findall(line) if "recover" in line.lower() else [])
    return [re.sub(r"[\s+−-]", "", f) for f in found]


def _paragraphs(lines: list[str]) -> list[range]:
    bounds, start = [], 0
    for i, line in enumerate([*lines, ""]):
        if not line.strip():
            if i > start:
                bounds.append(range(start, i))
            start = i + 1
    return bounds


def quoted_figures(text: str) -> list[tuple[int, str, list[str], str | None]]:
    """(line number, line, its accuracy figures, the results file of the block it is in or None) of
    every line that quotes an accuracy figure (the module's docstring says what counts)."""
    lines = text.splitlines()
    headings, blocks, heading, block, fenced = [], [], "", None, False
    for line in lines:
        fenced ^= line.lstrip().startswith("```")
        heading = line if line.startswith("#") and not fenced else heading
        start = BLOCK_START.search(line)
        block = start[1] if start else None if BLOCK_END.search(line) else block
        headings.append(heading)
        blocks.append(block)
    quoted = []
    for paragraph in _paragraphs(lines):
        in_context = bool(CONTEXT.search("\n".join(lines[i] for i in paragraph)))
        for i in paragraph:
            found = figures(lines[i])
            table_row = lines[i].lstrip().startswith("|")
            if found and (in_context or (table_row and CONTEXT.search(headings[i]))):
                quoted.append((i + 1, lines[i], found, blocks[i]))
    return quoted


def outside_accuracy_blocks(text: str) -> list[tuple[int, str]]:
    return [(n, line) for n, line, _, block in quoted_figures(text) if not (block and ACCURACY_BLOCK.fullmatch(block))]


def todays_fingerprint(recipe: str) -> dict:
    chosen = get_recipe(recipe)
    return chosen.fingerprint("int8", BACKENDS[chosen.backend].rewrites(chosen, "int8"))


def stale_results(paths: list[Path]) -> list[str]:
    """Why each results file of ``paths`` is not of today's recipe (none: all are)."""
    stale = []
    for path in paths:
        data = json.loads(path.read_text())
        if (data.get("kind"), data.get("format")) != ("accuracy", accuracy_table.FORMAT):
            stale.append(f"{path.name} is not an accuracy results file ({accuracy_table.FORMAT})")
        elif data["fingerprint"] != todays_fingerprint(data["recipe"]):
            stale.append(f"{path.name} was measured on another program than today's {data['recipe']} recipe "
                         f"({accuracy_table.differences(data['fingerprint'], todays_fingerprint(data['recipe']))}): re-run its seeds")
    return stale


def test_every_accuracy_results_file_is_of_todays_recipe():
    assert not stale_results(RESULTS), "\n".join(stale_results(RESULTS))


def test_a_results_file_of_another_program_is_stale(tmp_path):
    today = tmp_path / "accuracy_today.json"
    today.write_text(json.dumps({"kind": "accuracy", "format": accuracy_table.FORMAT, "recipe": "xnnpack",
                                 "fingerprint": todays_fingerprint("xnnpack")}))
    old = tmp_path / "accuracy_old.json"
    stale = {**todays_fingerprint("xnnpack"), "float_dyrelu": False}
    old.write_text(json.dumps({**json.loads(today.read_text()), "fingerprint": stale}))
    assert stale_results([today]) == []
    assert stale_results([old]) == ["accuracy_old.json was measured on another program than today's xnnpack recipe "
                                    "(float_dyrelu False vs True): re-run its seeds"]


def stray_figures(docs: list[Path], root: Path = ROOT) -> list[str]:
    """``file:line: text`` of every line of ``docs`` quoting an accuracy figure outside an accuracy results block."""
    return [f"{doc.relative_to(root)}:{n}: {line.strip()[:100]}"
            for doc in docs for n, line in outside_accuracy_blocks(doc.read_text())]


def test_readme_and_docs_quote_accuracy_figures_only_from_results_blocks():
    stray = stray_figures(DOCS)
    assert not stray, ("accuracy figures outside a <!-- results: docs/results/accuracy_*.json --> block "
                       "(old ones go to CHANGELOG.md with their recipe):\n" + "\n".join(stray))


def unmatched_block_figures(docs: list[Path], root: Path = ROOT) -> list[str]:
    """``file:line: ...`` of every figure in an accuracy results block that its results file does not render."""
    unmatched = []
    for doc in docs:
        for n, _, found, block in quoted_figures(doc.read_text()):
            if not (block and ACCURACY_BLOCK.fullmatch(block)):
                continue
            path = root / block
            rendered = set(figures(accuracy_table.render_results(json.loads(path.read_text())))) if path.is_file() else set()
            missing = sorted(set(found) - rendered)
            if missing:
                unmatched.append(f"{doc.relative_to(root)}:{n}: {', '.join(missing)} not in {block}"
                                 + ("" if path.is_file() else " (no such file)"))
    return unmatched


def test_every_figure_in_a_results_block_is_its_files():
    assert not unmatched_block_figures(DOCS), "\n".join(unmatched_block_figures(DOCS))


def test_a_figure_its_block_file_does_not_hold_is_caught(tmp_path):
    runs = [_run(tmp_path / f"seed{i}", 90, 80, 89) for i in (0, 1)]
    data = accuracy_table.results(M, RECIPE, runs)
    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "docs" / "results" / "accuracy_x.json").write_text(json.dumps(data))
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results: docs/results/accuracy_x.json -->\nfp32 90.00%, PTQ 80.00% (-10.00 pt), QAT 89.10%\n"
                      "<!-- /results -->\n\n<!-- results: docs/results/accuracy_y.json -->\nQAT 89.00%\n<!-- /results -->\n")
    assert unmatched_block_figures([readme], tmp_path) == ["README.md:2: 89.10% not in docs/results/accuracy_x.json",
                                                           "README.md:6: 89.00% not in docs/results/accuracy_y.json (no such file)"]


README = """# mobileformer

## Speed

Our int8 needs 0.87x fp32's instructions; 0.02% of the total is runtime overhead, +0.12% is QAT's graph.

| model | fp32 | int8 |
|---|---|---|
| conv in int8 | — | 73.7% |

## Accuracy

<!-- results: docs/results/accuracy_mobile_former_26m_xnnpack.json -->
| seed | fp32 | PTQ |
|---|---|---|
| 0 | 84.77% | 84.14% (−0.63 pt) |
<!-- /results -->

| seed | a | b |
|---|---|---|
| 1 | 84.98% | 82.75% |

Top-1 agreement with PyTorch: 98.8%, and the QAT export scores
84.80% on the held-out images.
"""


def test_a_figure_outside_a_block_is_caught_and_one_inside_is_not():
    assert [n for n, _ in outside_accuracy_blocks(README)] == [21, 24]  # a table under "Accuracy"; a paragraph's second line
    inside = [(n, found) for n, _, found, block in quoted_figures(README) if block]
    assert inside == [(16, ["84.77%", "84.14%", "0.63pt"])]


def test_a_temporary_readme_with_a_stray_figure_fails_the_docs_check(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\nPTQ calibrated on 8 `digits` images scores 84.09% top-1.\n")
    assert stray_figures([readme], tmp_path) == ["README.md:3: PTQ calibrated on 8 `digits` images scores 84.09% top-1."]


def test_a_share_recovered_counts_only_where_a_line_says_recover():
    assert figures("QAT recovers 93% (79–107%) of the loss; seed 1 recovered 79%") == ["93%", "107%", "79%"]
    assert figures("100% of convs in int8, top-1 agreement 98%") == []
    assert figures("PTQ must lose ≥ 1 pt (≥1 pt) and QAT recover ≥ 80%; it lost −0.68 pt") == ["0.68pt"]
