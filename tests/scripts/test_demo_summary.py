"""scripts/demo_summary.py: one row per artifact, a column per measure found, int8 against fp32."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("demo_summary", ROOT / "scripts" / "demo_summary.py")
demo_summary = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo_summary)


def _write(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def fake_demo(out: Path, cycles: bool, cores: tuple[str, ...] = ("cortex-a76",)) -> None:
    """What ``make demo`` leaves in ``out``, made up: two artifacts' manifests, their host latency and,
    per core, their AArch64 counts (with estimated ms if ``cycles``)."""
    for name, precision, recipe, size, sqnr, ms, instr in (("m_xnnpack_int8.pte", "int8", "xnnpack", 4e6, 30.0, 5.0, 20e6),
                                                           ("m_xnnpack_fp32.pte", "fp32", None, 12e6, float("inf"), 10.0, 60e6)):
        _write(out / name.replace(".pte", ".manifest.json"),
               {"artifact": name, "model": "m", "backend": "xnnpack", "precision": precision, "recipe": recipe,
                "size_bytes": size, "validation": {"sqnr_db_vs_fp32": sqnr}})
        _write(out / "bench" / name.replace(".pte", ".latency.json"),
               {"artifact": {"file": name}, "created": "2026-12-06T23:59:00Z", "threads": 1,
                "device": {"kind": "host", "cpu": "EPYC", "cores": 2}, "latency_ms": {"p50": ms}})
        for core in cores:
            counted = {"artifact": {"file": name}, "created": "2026-12-07T00:01:00Z",
                       "device": {"kind": "host", "cpu": core}, "latency_ms": {"p50": 99.0},
                       "instructions": {"per_inference": instr}}
            if cycles:  # int8: its convolution a third of fp32's cycles, a Convert fp32 has not; 1 M outside operators
                conv, convert = (instr / 6, 1e6) if precision == "int8" else (instr / 2, 0)
                counted["cycles"] = {"estimated_ms": instr / 2e9 * 1e3, "clock_ghz": 2.0, "model": "llvm-mca-19",
                                     "runtime_overhead": 1_000_000}
                counted["operators"] = [{"name": "Convolution (NHWC, QD8, F32, QC8W)", "cycles": conv},
                                        {"name": "Add (ND)", "cycles": instr / 4},
                                        *([{"name": "Convert (NC)", "cycles": convert}] if convert else [])]
            _write(out / "arm64" / name.replace(".pte", f".{core}.latency.json"), counted)


def test_table_and_answer(tmp_path, capsys):
    fake_demo(tmp_path, cycles=False)
    assert demo_summary.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "host ms" in out and "cortex-a76 M instr" in out and "est. ms" not in out
    assert "size 3.00x smaller" in out
    assert "host ms: int8 5.00 vs fp32 10.00 (2.00x faster)" in out
    assert "cortex-a76 M instr: int8 20.00 vs fp32 60.00 (0.33x the instructions)" in out  # a count is not a time


def test_a_measure_another_tool_adds_is_a_column(tmp_path, capsys):
    fake_demo(tmp_path, cycles=True)
    assert demo_summary.main([str(tmp_path)]) == 0
    assert "cortex-a76 est. ms" in capsys.readouterr().out


def test_nothing_to_summarise(tmp_path, capsys):
    assert demo_summary.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_make_demo_runs_each_step_once(tmp_path):
    """Every export, benchmark and count of ``make demo`` is one step, none twice; the host benchmark runs last."""
    import subprocess

    steps = subprocess.run(["make", "-n", "-j1", "demo-steps", f"OUT={tmp_path}"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    names = [line.split()[2] for line in steps if line.startswith("scripts/demo_step.sh")]
    assert len(names) == len(set(names)) == 11  # 6 exports, model summary, counts on two cores, host benchmarks (ours, LiteRT)
    exports = [line.split("quant.export", 1)[1] for line in steps if "quant.export" in line]
    assert len(exports) == len(set(exports)) == 6
    assert {"--backend coreml", "--backend tflite"} <= {e.split(" --no-progress ")[1] for e in exports}
    assert names[-1] == "bench"


def test_the_results_file_says_what_each_figure_is(tmp_path, capsys):
    fake_demo(tmp_path / "demo", cycles=True, cores=("cortex-a76", "armv9"))
    assert demo_summary.main([str(tmp_path / "demo"), "--json", str(tmp_path / "demo_m.json")]) == 0
    data = json.loads((tmp_path / "demo_m.json").read_text())
    assert (data["kind"], data["model"], data["date"], data["machine"], data["threads"]) == \
        ("demo", "m", "2026-12-07", "EPYC, 2 cores", 1)  # the day of the newest result
    assert list(data["columns"]) == ["armv9 M instr", "armv9 est. ms", "cortex-a76 M instr", "cortex-a76 est. ms",
                                     "host ms"]
    assert data["columns"]["armv9 est. ms"]["clock_ghz"] == 2.0 and "estimated ms on armv9" in \
        data["columns"]["armv9 est. ms"]["what"]
    fp32 = next(r for r in data["rows"] if r["precision"] == "fp32")
    assert fp32["SQNR dB"] == "inf" and fp32["measures"]["cortex-a76 M instr"] == 60.0 and "path" not in fp32
    # per core, our int8's and fp32's cycles by operator kind (layout and types dropped), the runtime's own beside
    assert data["operator_kinds"]["armv9"] == {
        "int8": {"Convolution": 20e6 / 6, "Add": 5e6, "Convert": 1e6, "(outside operators)": 1_000_000},
        "fp32": {"Convolution": 30e6, "Add": 15e6, "(outside operators)": 1_000_000}}


def test_no_cycles_no_operator_kinds(tmp_path, capsys):
    fake_demo(tmp_path / "demo", cycles=False)
    assert demo_summary.main([str(tmp_path / "demo"), "--json", str(tmp_path / "demo_m.json")]) == 0
    assert json.loads((tmp_path / "demo_m.json").read_text())["operator_kinds"] == {}


def test_a_results_file_into_a_missing_folder_is_refused_first(tmp_path, capsys):
    fake_demo(tmp_path, cycles=False)
    assert demo_summary.main([str(tmp_path), "--json", str(tmp_path / "no" / "demo.json")]) == 2
    out = capsys.readouterr()
    assert out.err.startswith("error: --json") and out.out == ""


def test_a_results_file_never_replaces_a_file_it_did_not_write(tmp_path, capsys):
    """--json obeys the project's output policy (quant.files): a file of the user's at that name is left as it
    was, with one error line before any output; a file it wrote itself is replaced on the next run."""
    fake_demo(tmp_path / "demo", cycles=False)
    theirs = tmp_path / "notes.json"
    theirs.write_text("mine")
    assert demo_summary.main([str(tmp_path / "demo"), "--json", str(theirs)]) == 2
    out = capsys.readouterr()
    assert out.err.startswith("error: ") and out.out == "" and theirs.read_text() == "mine"
    ours = tmp_path / "demo.json"
    for _ in range(2):
        assert demo_summary.main([str(tmp_path / "demo"), "--json", str(ours)]) == 0
    assert json.loads(ours.read_text())["kind"] == "demo"


def test_a_results_file_never_replaces_a_file_it_reads(tmp_path, capsys):
    """A manifest or latency result of the demo is ours and unchanged, so the ledger alone let --json replace it."""
    from quant.files import write_bytes_atomic

    fake_demo(tmp_path / "demo", cycles=False)
    demo = tmp_path / "demo"
    for read in (demo / "m_xnnpack_int8.manifest.json", demo / "bench" / "m_xnnpack_int8.latency.json"):
        before = read.read_bytes()
        read.unlink()
        write_bytes_atomic(read, before)  # as the demo's commands write them: recorded in the ledger
        assert demo_summary.main([str(demo), "--json", str(read)]) == 2
        out = capsys.readouterr()
        assert out.err.startswith(f"error: --json {read} is a file read") and out.out == ""
        assert read.read_bytes() == before
