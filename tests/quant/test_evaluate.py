"""``quant.evaluate``: top-1 of an exported program, and paired comparisons of two results."""
import json

import pytest

from quant.evaluate import compare, main
from quant.metrics import mcnemar_exact


def test_mcnemar_exact_known_values():
    assert mcnemar_exact(0, 10) == pytest.approx(2 / 1024)
    assert mcnemar_exact(10, 0) == mcnemar_exact(0, 10)
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(101, 180) < 1e-5 < mcnemar_exact(144, 168)


def test_pte_result_keeps_per_image_outcomes(tiny_exports, tmp_path, capsys):
    out = tmp_path / "r.json"
    pte = tiny_exports / "mobile_former_tiny_xnnpack_int8.pte"
    assert main([str(pte), "--data", "digits", "--limit", "20", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["images"] == 20 and len(r["correct"]) == 20 and set(r["correct"]) <= {"0", "1"}
    assert r["top1"] == r["correct"].count("1") / 20
    assert "top-1" in capsys.readouterr().out


def _result(correct: str, images: int | None = None) -> dict:
    return {"data": "digits", "images": images or len(correct), "top1": correct.count("1") / len(correct),
            "correct": correct}


def test_compare_counts_discordant_pairs():
    r = compare(_result("1100"), _result("1010"))
    assert (r["only_a_right"], r["only_b_right"], r["p_value"]) == (1, 1, 1.0)


def test_compare_cli_and_bad_input(tmp_path, capsys):
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    a.write_text(json.dumps(_result("1" * 10)))
    b.write_text(json.dumps(_result("0" * 10)))
    c.write_text(json.dumps(_result("1" * 5)))
    assert main(["--compare", str(a), str(b)]) == 0
    assert "only A right: 10, only B right: 0" in capsys.readouterr().out
    assert main(["--compare", str(a), str(c)]) == 2
    assert "not the same images" in capsys.readouterr().err
    assert main(["--compare", str(a), str(tmp_path / "missing.json")]) == 2
    assert "cannot read result" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([])  # neither a target nor --compare
