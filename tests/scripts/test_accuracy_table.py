"""scripts/accuracy_table.py: the multi-seed table, one recipe fingerprint per table, the results file
and what it says holds on every seed (fake runs of small JSON files, no training)."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from quant.formats import MANIFEST_FORMAT

SPEC = importlib.util.spec_from_file_location("accuracy_table", Path(__file__).parents[2] / "scripts" / "accuracy_table.py")
accuracy_table = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(accuracy_table)

M, RECIPE = "mobile_former_26m", "xnnpack-sym-per-tensor"
INT8 = f"{M}_xnnpack_int8_sym_per_tensor"
FINGERPRINT = {"recipe": RECIPE, "precision": "int8", "float_dyrelu": False, "dense_pointwise": True}


def _write(path: Path, right: int, images: int = 100, fingerprint: dict | None = FINGERPRINT) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    correct = "1" * right + "0" * (images - right)
    path.write_text(json.dumps({"data": "fashion-mnist", "images": images, "top1": right / images, "correct": correct,
                                "recipe_fingerprint": fingerprint}))


def _manifest(path: Path, calib: tuple[str, int], size: int = 32, fingerprint: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": MANIFEST_FORMAT, "model": M, "backend": "xnnpack", "precision": "int8",
                                "num_classes": 10, "input": {"shape": [1, 3, size, size], "mean": [0.5] * 3, "std": [0.5] * 3},
                                "calibration": {"data": calib[0], "images": calib[1]}, "recipe_fingerprint": fingerprint}))


def _run(root: Path, fp32: int, ptq: int, qat: int, stock: int | None = None, own: int | None = None,
         ptq_dir: str = "ptq", calib: tuple[str, int] = ("digits", 8), images: int = 100,
         fingerprint: dict | None = FINGERPRINT) -> Path:
    """One scripts/accuracy.sh run's results and manifests: fp32 and stock in ptq/, PTQ in ``ptq_dir``,
    PTQ calibrated on 256 of the data set's own images (``own``) in ptq-fashion-mnist/, QAT in qat-export/."""
    _write(root / "ptq" / f"{M}_xnnpack_fp32.top1.json", fp32, images)
    _write(root / ptq_dir / f"{INT8}.top1.json", ptq, images, fingerprint)
    _manifest(root / ptq_dir / f"{INT8}.manifest.json", calib)
    _write(root / "qat-export" / f"{INT8}.top1.json", qat, images, fingerprint)
    if stock is not None:
        _write(root / "ptq" / f"{M}_xnnpack_int8_stock.top1.json", stock, images)
    if own is not None:
        _write(root / "ptq-fashion-mnist" / f"{INT8}.top1.json", own, images, fingerprint)
        _manifest(root / "ptq-fashion-mnist" / f"{INT8}.manifest.json", ("fashion-mnist", 256))
    return root


def _table(argv: list, capsys) -> tuple[int, str, str]:
    code = accuracy_table.main([M, RECIPE, *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_rows_losses_and_recovery(tmp_path):
    row = accuracy_table.seed_row(_run(tmp_path / "seed0", 90, 80, 88, stock=89), M, RECIPE)
    assert row["ptq_delta"] == pytest.approx(-0.10) and row["qat_gain"] == pytest.approx(0.08)
    assert row["recovered"] == pytest.approx(0.8) and row["stock"] == 0.89 and row["ptq_own"] is None
    assert row["p_ptq"] == pytest.approx(2 / 1024)  # 10 images only fp32 gets right, none the other way
    assert row["fingerprint"] == FINGERPRINT


def test_another_backends_run_is_read_by_its_artifacts_names(tmp_path):
    run = tmp_path / "seed0"
    _write(run / "ptq" / f"{M}_coreml_fp32.top1.json", 90)
    _write(run / "ptq" / f"{M}_coreml_int8.top1.json", 80)
    _write(run / "qat-export" / f"{M}_coreml_int8.top1.json", 89)
    row = accuracy_table.seed_row(run, M, "coreml")
    assert (row["fp32"], row["ptq"], row["qat"], row["stock"]) == (0.9, 0.8, 0.89, None)


def test_the_verdict_asks_for_a_loss_of_a_point_and_80_percent_back_on_every_seed():
    def row(loss_pt: float, recovered: float | None) -> dict:
        return {"ptq_delta": -loss_pt / 100, "recovered": recovered}

    # 1 pt exactly (0.89 - 0.90 is -0.010000000000000009 in floats) counts; 0.99 pt does not; 0.8 counts
    rows = [row(10, 0.9), {"ptq_delta": 0.89 - 0.90, "recovered": 0.8}, row(0.99, 0.79), row(-1, None)]
    assert accuracy_table.verdict(rows) == ("PTQ loses at least 1 pt on 2 of 4 seeds (mean 2.75 pt, least -1.00 pt); "
                                            "QAT recovers at least 80% of the loss on 2 of 4.")


def test_the_table_of_three_seeds_and_its_verdict(tmp_path, capsys):
    runs = [_run(tmp_path / "seed0", 90, 80, 89, own=90), _run(tmp_path / "seed1", 90, 85, 86, own=89),
            _run(tmp_path / "seed2", 90, 91, 90, own=88)]
    code, out, _ = _table(runs, capsys)
    assert code == 0
    assert out.rstrip().endswith("PTQ loses at least 1 pt on 2 of 3 seeds (mean 4.67 pt, least -1.00 pt); "
                                 "QAT recovers at least 80% of the loss on 1 of 3.")
    lines = out.splitlines()
    assert ("| mean (min to max) over 3 seeds | fp32 | PTQ, calibrated on 256 fashion-mnist images | "
            "PTQ, calibrated on 8 digits images | QAT | QAT − PTQ | recovered by QAT |") in lines
    summary = next(line for line in lines if line.startswith("| all seeds"))
    # recovery over the seeds that lost: 90% and 20%
    assert summary == ("| all seeds | 90.00% (90.00% to 90.00%) | 89.00% (88.00% to 90.00%) | 85.33% (80.00% to 91.00%) | "
                       "88.33% (86.00% to 90.00%) | +3.00 pt (-1.00 pt to +9.00 pt) | 55% (20% to 90%) |")
    seed1 = next(line for line in lines if line.startswith("| 1 |"))
    assert seed1.startswith("| 1 | 90.00% | 89.00% | -1.00 pt (p = 1) | 85.00% | -5.00 pt (p = 0.062) | 86.00% |")
    assert next(line for line in lines if line.startswith("| 2 |")).endswith("| — |")  # PTQ lost nothing: no recovery


def test_runs_of_different_fingerprints_are_refused(tmp_path, capsys):
    other = {**FINGERPRINT, "float_dyrelu": True}
    runs = [_run(tmp_path / "seed0", 90, 80, 89), _run(tmp_path / "seed1", 90, 80, 89, fingerprint=other)]
    code, out, err = _table(runs, capsys)
    assert code == 2 and out == ""
    assert err == (f"error: {runs[0]} and {runs[1]} have different recipe fingerprints: float_dyrelu False vs True; "
                   "one table holds one\n")


def test_a_run_whose_qat_is_another_program_than_its_ptq_is_refused(tmp_path, capsys):
    run = _run(tmp_path / "seed0", 90, 80, 89)
    _write(run / "qat-export" / f"{INT8}.top1.json", 89, fingerprint={**FINGERPRINT, "dense_pointwise": False})
    code, _, err = _table([run], capsys)
    assert code == 2
    assert err == (f"error: {run}: its QAT (qat-export/{INT8}.top1.json) and PTQ (ptq/{INT8}.top1.json) are different "
                   "programs: dense_pointwise True vs False\n")


def test_a_result_without_a_fingerprint_takes_its_manifests_or_is_refused(tmp_path, capsys):
    run = _run(tmp_path / "seed0", 90, 80, 89)
    _write(run / "qat-export" / f"{INT8}.top1.json", 89, fingerprint=None)
    code, _, err = _table([run], capsys)
    assert code == 2
    assert err.startswith(f"error: {run / 'qat-export' / INT8}.top1.json has no recipe fingerprint, nor has "
                          f"{INT8}.manifest.json beside it") and err.count("\n") == 1
    _manifest(run / "qat-export" / f"{INT8}.manifest.json", ("digits", 8), fingerprint=FINGERPRINT)
    assert accuracy_table.seed_row(run, M, RECIPE)["fingerprint"] == FINGERPRINT


def test_ptq_dir_tables_another_calibration_with_the_same_fp32_and_qat(tmp_path, capsys):
    runs = [_run(tmp_path / f"seed{i}", 90, 85, 89, own=90) for i in (0, 1)]
    for run in runs:
        _write(run / "ptq-digits-4" / f"{INT8}.top1.json", 70)
        _manifest(run / "ptq-digits-4" / f"{INT8}.manifest.json", ("digits", 4))
    code, out, _ = _table([*runs, "--ptq-dir", "ptq-digits-4"], capsys)
    assert code == 0
    assert "| 0 | 90.00% | 90.00% | +0.00 pt (p = 1) | 70.00% | -20.00 pt (p = 1.9e-06) | 89.00% |" in out
    assert "PTQ, calibrated on 4 digits images" in out and "8 digits" not in out
    assert "QAT recovers at least 80% of the loss on 2 of 2." in out  # 19 of 20 points


def test_the_results_file_round_trips_through_render_results(tmp_path, capsys):
    runs = [_run(tmp_path / f"seed{i}", 90, 80, 89 - i, own=90) for i in (3, 4)]
    target = tmp_path / "results" / "accuracy_x.json"
    code, out, _ = _table([*runs, "--json", target, "--qat-steps", "1800"], capsys)
    assert code == 0
    data = json.loads(target.read_text())
    assert out == accuracy_table.render_results(data) + "\n"
    assert (data["kind"], data["format"], data["model"], data["recipe"]) == ("accuracy", "mobileformer-accuracy/1", M, RECIPE)
    assert data["fingerprint"] == FINGERPRINT and len(data["date"]) == 10 and data["machine"]["cores"] >= 1
    assert data["settings"] == {"input_size": 32, "qat_steps": 1800, "calibration": {"data": "digits", "images": 8},
                                "own_calibration": {"data": "fashion-mnist", "images": 256},
                                "evaluation": {"data": "fashion-mnist", "images": 100}}
    assert [s["seed"] for s in data["seeds"]] == [3, 4] and [s["qat"] for s in data["seeds"]] == [0.86, 0.85]
    assert "QAT (1,800 steps)" in out and "| 4 | 90.00% |" in out


def test_qat_steps_and_seed_come_from_the_checkpoints(tmp_path, capsys):
    run = _run(tmp_path / "run-a", 90, 80, 89)
    for stage, config in (("qat", {"steps": 1800, "seed": 7}), ("float", {"steps": 2500, "seed": 7})):
        (run / stage).mkdir()
        torch.save({"config": config, "model": {}}, run / stage / "final.pt")
    code, _, _ = _table([run, "--json", tmp_path / "a.json"], capsys)
    assert code == 0
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["settings"]["qat_steps"] == 1800 and data["seeds"][0]["seed"] == 7
    code, _, err = _table([run, "--qat-steps", "600"], capsys)
    assert code == 2 and err == f"error: {run}/qat/final.pt ran 1800 QAT steps, not --qat-steps 600\n"


def test_json_needs_the_qat_steps_and_writes_nothing_without(tmp_path, capsys):
    target = tmp_path / "a.json"
    code, _, err = _table([_run(tmp_path / "seed0", 90, 80, 89), "--json", target], capsys)
    assert code == 2 and "give --qat-steps" in err and not target.exists()


def test_json_never_replaces_a_file_it_did_not_write(tmp_path, capsys):
    target = tmp_path / "notes.json"
    target.write_text("mine")
    code, out, err = _table([_run(tmp_path / "seed0", 90, 80, 89), "--json", target, "--qat-steps", "1"], capsys)
    assert code == 2 and out == "" and err.startswith("error: ") and target.read_text() == "mine"


def test_json_never_replaces_a_file_of_the_runs_it_reads(tmp_path, capsys):
    """A run's result is ours (quant.evaluate --json wrote it), so the ledger alone let --json replace it."""
    from quant.files import write_bytes_atomic

    run = _run(tmp_path / "seed0", 90, 80, 89)
    target = run / "qat-export" / f"{INT8}.top1.json"
    before = target.read_bytes()
    target.unlink()
    write_bytes_atomic(target, before)
    code, out, err = _table([run, "--json", target, "--qat-steps", "1"], capsys)
    assert code == 2 and out == "" and err.startswith(f"error: --json {target} is a file of the runs read")
    assert target.read_bytes() == before


def test_runs_made_with_other_settings_are_refused(tmp_path, capsys):
    runs = [_run(tmp_path / "seed0", 90, 80, 89), _run(tmp_path / "seed1", 90, 80, 89, calib=("digits", 4))]
    code, _, err = _table(runs, capsys)
    assert code == 2
    assert err == (f"error: {runs[0]} and {runs[1]} have different settings: calibration {{'data': 'digits', 'images': 8}} "
                   "vs {'data': 'digits', 'images': 4}; one table holds one\n")


def test_a_missing_run_is_an_error_line_not_a_traceback(tmp_path, capsys):
    code, _, err = _table([tmp_path / "nothing"], capsys)
    assert code == 2 and err.startswith("error: cannot read result")
    with pytest.raises(SystemExit) as stop:
        accuracy_table.main([M])
    assert stop.value.code == 2 and capsys.readouterr().err == (
        "error: the following arguments are required: RECIPE, RUN_DIR (see python scripts/accuracy_table.py --help)\n")
