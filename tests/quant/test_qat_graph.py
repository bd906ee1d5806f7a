"""quant.qat_graph: a QAT checkpoint is checked before its graph is rebuilt; what it lacks is one error line."""
import pytest


@pytest.mark.parametrize("drop", ["config", "model", "recipe", "num_classes"])
def test_qat_checkpoint_missing_keys_is_an_error_line(tmp_path, capsys, drop):
    import torch

    from quant.export import main

    state = {"format": "mobileformer-qat/1", "config": {"model": "mobile_former_26m", "input_size": 64}, "model": {},
             "recipe": "xnnpack", "num_classes": 10}
    del state[drop]
    torch.save(state, tmp_path / "qat.pt")
    assert main(["--backend", "xnnpack", "--checkpoint", str(tmp_path / "qat.pt"), "--out", str(tmp_path / "out")]) == 2
    assert f"lacks or mistypes {drop}" in capsys.readouterr().err
