"""MAdds are counted, not typed in, and land on the paper's names."""
import pytest

import mobileformer as mf
from mobileformer.flops import block_summaries, count_madds
from mobileformer.summary import main


@pytest.mark.parametrize("name", mf.list_models())
def test_madds_within_3_percent_of_the_paper(name):
    model = mf.create_model(name)
    madds = count_madds(model)
    assert abs(madds / 1e6 / model.cfg.paper_madds_m - 1) <= 0.03


def test_block_summaries_add_up():
    model = mf.create_model("26m")
    blocks = block_summaries(model)
    assert sum(b.params for b in blocks) == sum(p.numel() for p in model.parameters())
    assert sum(b.madds for b in blocks) == count_madds(model)
    by_name = {b.name: b for b in blocks}
    assert by_name["stem"].output_shape == (1, 8, 112, 112)
    assert by_name["block 8: former→mobile"].output_shape == (1, 96, 7, 7)
    assert by_name["block 8: former"].output_shape == (1, 3, 128)
    assert by_name["head"].output_shape == (1, 1000)


def test_madds_scale_with_input_size():
    model = mf.create_model("26m")
    assert count_madds(model, 160) < count_madds(model, 224)


def test_summary_table(capsys):
    assert main(["--variant", "26m"]) == 0
    out = capsys.readouterr().out
    assert "mobile_former_26m" in out and "3.23M" in out and "26.0M" in out


def test_summary_layers(capsys):
    assert main(["--variant", "mobile_former_26m", "--layers"]) == 0
    out = capsys.readouterr().out
    for name in ("stem", "bneck-lite", "block 1: mobile→former", "block 1: former", "block 1: mobile",
                 "block 1: former→mobile", "head", "total"):
        assert name in out


def test_summary_bad_variant(capsys):
    assert main(["--variant", "9m"]) == 2
    assert "unknown model '9m'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [(["--layers"], "--layers needs --variant"),
                                           (["--input-size", "100"], "--input-size must be a multiple of 32")])
def test_summary_bad_arguments(argv, message, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(f"error: {message}")
