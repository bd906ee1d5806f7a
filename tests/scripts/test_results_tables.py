"""scripts/results_tables.py: the docs' figures are the results files' (rendered, checked, rewritten)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import results_tables

import demo_summary
from tests.scripts.test_demo_summary import fake_demo

ROOT = Path(__file__).resolve().parents[2]
# Blocks whose results file the integrator writes from today's runs (make demo, accuracy seeds): until
# then each holds its placeholder. Empty this once the files are committed.
AWAITED: set[str] = set()


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "results_tables.py"), *args], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture
def repo(tmp_path) -> Path:
    """A repository root with a demo results file (from a faked demo) beside the cycle model's
    validation, and a README quoting it."""
    fake_demo(tmp_path / "out", cycles=True, cores=("cortex-a76", "armv9"))
    (tmp_path / "docs" / "results").mkdir(parents=True)
    assert demo_summary.main([str(tmp_path / "out"), "--json", str(tmp_path / "docs/results/demo_m.json")]) == 0
    shutil.copy(ROOT / "docs/results/cycle_model_validation.json", tmp_path / "docs/results")
    waiting = results_tables.placeholder("docs/results/demo_m.json")
    (tmp_path / "README.md").write_text(f"# m\n\n<!-- results: docs/results/demo_m.json -->\n{waiting}"
                                        "<!-- /results -->\n\nEnd.\n")
    return tmp_path


def test_the_repositorys_docs_are_their_results_files():
    docs = results_tables.documents(ROOT)
    assert {ROOT / "README.md", ROOT / "docs" / "results.md"} <= set(docs)
    for doc in docs:
        text = doc.read_text()
        for block in results_tables.blocks(text, doc):
            if block["path"] in AWAITED and not (ROOT / block["path"]).exists():
                assert block["body"] == results_tables.placeholder(block["path"]), f"{doc}: {block['path']}"
            else:
                assert block["body"] == results_tables.render(ROOT / block["path"], block["view"]), \
                    f"{doc}: {block['path']} is stale: scripts/results_tables.py --write {doc.relative_to(ROOT)}"


def test_write_renders_the_demo_table_and_check_then_passes(repo):
    run = _run("--write", "--root", str(repo), str(repo / "README.md"))
    assert run.returncode == 0, run.stderr
    text = (repo / "README.md").read_text()
    assert text.startswith("# m\n\n<!-- results: docs/results/demo_m.json -->\nm, EPYC, 2 cores, 1 thread(s)")
    assert text.endswith("<!-- /results -->\n\nEnd.\n")
    assert "| **our int8 `.pte`** | **4.00** | **5.00** |" in text and "| our fp32 `.pte` | 12.00 | 10.00 |" in text
    assert "| m | MB | host ms | cortex-a76 M instr | cortex-a76 est. ms ¹ | armv9 M instr | armv9 est. ms ¹ |" \
        in text
    assert "Our int8 against our fp32: 3.00x smaller; host 2.00x faster; cortex-a76 0.33x the instructions; " \
           "cortex-a76 est. 3.00x faster;" in text
    # the estimate's error, from the validation results beside it, never written in by hand
    assert "Pixel 3a -22% to -11%, Pixel 2 -33% to -22%" in text
    assert _run("--check", "--root", str(repo), str(repo / "README.md")).returncode == 0


def test_the_operators_view_of_a_demo(repo):
    """Where our int8's and fp32's estimated cycles go, by kind, and the bound of ideal int8 multiply-adds:
    computed from the file (fake_demo: int8's convolution 3.33 M against fp32's 30 M, its adds 5 M against 15 M, a
    1 M Convert fp32 has not, 1 M outside operators each)."""
    readme = repo / "README.md"
    readme.write_text(readme.read_text().replace("demo_m.json -->", "demo_m.json operators -->"))
    assert _run("--write", "--root", str(repo), str(readme)).returncode == 0
    text = readme.read_text()
    assert "<!-- results: docs/results/demo_m.json operators -->\n| M est. cycles per inference | cortex-a76 fp32 | " \
           "cortex-a76 int8 | int8 ÷ fp32 | armv9 fp32 |" in text
    assert "| Convolution | 30.00 | 3.33 | 0.11x | 30.00 | 3.33 | 0.11x |" in text
    assert "| Convert | 0.00 | 1.00 | — |" in text
    assert "| **total** | **46.00** | **10.33** | **0.22x** |" in text
    # multiply-adds 9.00x faster; the rest (5 + 1 + 1) / (15 + 1) = 0.44x; ideal: (7 + 30 / 4) / 46 = 0.32x
    assert "run cortex-a76 9.00x, armv9 9.00x faster in int8" in text and "takes cortex-a76 0.44x, armv9 0.44x" in text
    assert "our int8 would be cortex-a76 0.32x, armv9 0.32x our fp32's" in text
    assert _run("--check", "--root", str(repo), str(readme)).returncode == 0


def test_our_int8_against_litert_leaves_the_host_out(tmp_path):
    """LiteRT's host latency comes from a call of its own (untraced), so only size and the phone cores compare."""
    out = tmp_path / "out"
    fake_demo(out, cycles=True, cores=("armv9",))
    (out / "m_tflite_int8.manifest.json").write_text(json.dumps(
        {"artifact": "m_tflite_int8.tflite", "model": "m", "backend": "tflite", "precision": "int8", "recipe": "tflite",
         "size_bytes": 5e6}))
    (out / "bench" / "m_tflite_int8.latency.json").write_text(json.dumps(
        {"artifact": {"file": "m_tflite_int8.tflite"}, "device": {"kind": "host", "cpu": "EPYC", "cores": 2},
         "latency_ms": {"p50": 7.5}, "created": "2026-12-06T23:59:00Z"}))
    (out / "arm64" / "m_tflite_int8.armv9.latency.json").write_text(json.dumps(
        {"artifact": {"file": "m_tflite_int8.tflite"}, "device": {"kind": "host", "cpu": "armv9"},
         "instructions": {"per_inference": 40e6}, "cycles": {"estimated_ms": 30.0, "clock_ghz": 2.0}}))
    assert demo_summary.main([str(out), "--json", str(tmp_path / "demo_m.json")]) == 0
    text = results_tables.render(tmp_path / "demo_m.json")
    assert "Our int8 against LiteRT's int8: 1.25x smaller; armv9 0.50x the instructions; armv9 est. 3.00x faster." \
        in text
    assert "Our int8 against our fp32: 3.00x smaller; host 2.00x faster;" in text


def test_one_number_changed_in_the_readme_fails_the_check(repo):
    assert _run("--write", "--root", str(repo)).returncode == 0  # the README found as a page with a block
    readme = repo / "README.md"
    readme.write_text(readme.read_text().replace("| **5.00** |", "| **4.90** |"))
    run = _run("--check", "--root", str(repo), str(readme))
    assert run.returncode == 1
    assert f"{readme}: stale block(s) docs/results/demo_m.json" in run.stderr
    assert "-| **our int8 `.pte`** | **4.00** | **4.90** |" in run.stderr  # the diff
    assert "+| **our int8 `.pte`** | **4.00** | **5.00** |" in run.stderr


def test_a_changed_figure_of_the_repositorys_docs_fails_too(tmp_path):
    doc = next(d for d in results_tables.documents(ROOT)
               if "<!-- results: docs/results/cycle_model_validation.json -->" in d.read_text())
    copy = tmp_path / doc.name
    copy.write_text(doc.read_text().replace("| 78.3 | 88 | -11% |", "| 78.3 | 88 | -10% |"))
    run = _run("--check", str(copy))
    assert run.returncode == 1 and "stale block(s) docs/results/cycle_model_validation.json" in run.stderr


def test_a_block_waiting_for_its_results_file(repo):
    (repo / "docs/results/demo_m.json").unlink()
    before = (repo / "README.md").read_text()
    for mode in ("--check", "--write"):
        run = _run(mode, "--root", str(repo), str(repo / "README.md"))
        assert run.returncode == 1
        assert "block docs/results/demo_m.json: missing results file" in run.stderr
    assert (repo / "README.md").read_text() == before


@pytest.mark.parametrize("problem", ["unknown kind", "no results file given", "no such markdown", "not json",
                                     "unterminated", "unknown view", "no counts for the view"])
def test_bad_input_is_one_error_line(repo, problem):
    readme, results = repo / "README.md", repo / "docs/results/demo_m.json"
    target = str(readme)
    if problem == "unknown kind":
        results.write_text(json.dumps({"kind": "poem"}))
    elif problem == "no results file given":
        results.write_text(json.dumps({"kind": "demo"}))
    elif problem == "no such markdown":
        target = str(repo / "NOPE.md")
    elif problem == "not json":
        results.write_text("{")
    elif problem in ("unknown view", "no counts for the view"):
        readme.write_text(readme.read_text().replace("demo_m.json -->", "demo_m.json " + (
            "poems -->" if problem == "unknown view" else "operators -->")))
        if problem == "no counts for the view":
            results.write_text(json.dumps({**json.loads(results.read_text()), "operator_kinds": {}}))
    else:
        readme.write_text(readme.read_text().replace("<!-- /results -->", ""))
    before = readme.read_text()
    run = _run("--write", "--root", str(repo), target)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("error: ") and len(run.stderr.splitlines()) == 1, run.stderr
    assert readme.read_text() == before
    if problem == "unknown kind":
        assert "unknown kind 'poem' (known: accuracy, cycle_model_validation, demo)" in run.stderr
    if problem == "unknown view":
        assert "a demo results file has no view 'poems' (known: operators)" in run.stderr


def test_written_atomically_keeping_the_files_mode(tmp_path):
    target = tmp_path / "doc.md"
    target.write_text("old")
    target.chmod(0o640)
    results_tables.write_text_atomic(target, "new")
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["doc.md"]
