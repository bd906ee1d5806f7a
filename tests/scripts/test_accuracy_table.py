"""scripts/accuracy_table.py: the multi-seed table and what it says holds on every seed."""
import importlib.util
import json
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("accuracy_table", Path(__file__).parents[2] / "scripts" / "accuracy_table.py")
accuracy_table = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(accuracy_table)

M, RECIPE = "mobile_former_26m", "xnnpack-sym-per-tensor"


def _write(path: Path, right: int, images: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    correct = "1" * right + "0" * (images - right)
    path.write_text(json.dumps({"data": "fashion-mnist", "images": images, "top1": right / images, "correct": correct}))


def _run(root: Path, fp32: int, ptq: int, qat: int, stock: int | None = None) -> Path:
    _write(root / "ptq" / f"{M}_xnnpack_fp32.top1.json", fp32)
    _write(root / "ptq" / f"{M}_xnnpack_int8_sym_per_tensor.top1.json", ptq)
    _write(root / "qat-export" / f"{M}_xnnpack_int8_sym_per_tensor.top1.json", qat)
    if stock is not None:
        _write(root / "ptq" / f"{M}_xnnpack_int8_stock.top1.json", stock)
    return root


def test_rows_losses_and_recovery(tmp_path):
    row = accuracy_table.seed_row(_run(tmp_path / "seed0", 90, 80, 88, stock=89), M, RECIPE)
    assert row["ptq_delta"] == pytest.approx(-0.10) and row["qat_gain"] == pytest.approx(0.08)
    assert row["recovered"] == pytest.approx(0.8) and row["stock"] == 0.89 and row["ptq_own"] is None
    assert row["p_ptq"] == pytest.approx(2 / 1024)  # 10 images only fp32 gets right, none the other way


def test_another_backends_run_is_read_by_its_artifacts_names(tmp_path):
    run = tmp_path / "seed0"
    _write(run / "ptq" / f"{M}_coreml_fp32.top1.json", 90)
    _write(run / "ptq" / f"{M}_coreml_int8.top1.json", 80)
    _write(run / "qat-export" / f"{M}_coreml_int8.top1.json", 89)
    row = accuracy_table.seed_row(run, M, "coreml")
    assert (row["fp32"], row["ptq"], row["qat"], row["stock"]) == (0.9, 0.8, 0.89, None)


def test_the_verdict_counts_every_seed(tmp_path, capsys):
    runs = [_run(tmp_path / "seed0", 90, 80, 89), _run(tmp_path / "seed1", 90, 85, 86), _run(tmp_path / "seed2", 90, 91, 90)]
    assert accuracy_table.main([M, RECIPE, *map(str, runs)]) == 0
    out = capsys.readouterr().out
    assert "PTQ loses on 2 of 3 seeds (mean 4.67 pt, least -1.00 pt); QAT recovers at least 80% of the loss on 1 of 3." in out
    assert "| seed1 | 90.00% | 85.00% | -5.00 pt (p = 0.062) |" in out  # no stock column with STOCK=0
    seed2 = next(line for line in out.splitlines() if line.startswith("| seed2"))
    assert seed2.endswith("| — |")  # PTQ lost nothing there: no recovery to speak of
    mean = next(line for line in out.splitlines() if line.startswith("| mean"))
    assert mean.startswith("| mean | 90.00% | 85.33% | -4.67 pt | 88.33% | +3.00 pt | -1.67 pt | 55% |")  # the seeds that lost: (90% + 20%) / 2


def test_a_missing_run_is_an_error_line_not_a_traceback(tmp_path, capsys):
    assert accuracy_table.main([M, RECIPE, str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.startswith("error: cannot read result")
    assert accuracy_table.main([M]) == 2
    assert "Usage: python scripts/accuracy_table.py" in capsys.readouterr().err
