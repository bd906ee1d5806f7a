"""Checkpoints in the shapes they come in, and clear errors for the ones that do not fit."""
import argparse
import logging

import pytest
import torch
from safetensors.torch import save_file

import mobileformer as mf
from mobileformer.checkpoint import checkpoint_filter_fn


@pytest.fixture(scope="module")
def weights():
    """A 26m state_dict whose values differ from a fresh model's."""
    model = mf.create_model("26m")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    return model.state_dict()


def _same_weights(model, state):
    return all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: s,
        lambda s: {"state_dict": s, "epoch": 3, "args": argparse.Namespace(lr=0.1, model="x")},
        lambda s: {"model": s, "optimizer": {}},
        lambda s: {"state_dict_ema": s},
        lambda s: {"model_ema": s},
        lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}},
    ],
    ids=["bare", "timm-with-args", "model", "state_dict_ema", "model_ema", "ddp-prefix"],
)
@pytest.mark.parametrize("suffix", [".pth", ".pt"])
def test_loads_every_wrapping(tmp_path, weights, wrap, suffix):
    path = tmp_path / f"ckpt{suffix}"
    torch.save(wrap(weights), path)
    model = mf.create_model("26m", checkpoint=path)
    assert _same_weights(model, weights)


def test_loads_safetensors(tmp_path, weights):
    path = tmp_path / "ckpt.safetensors"
    save_file({k: v.contiguous() for k, v in weights.items()}, str(path))
    assert _same_weights(mf.create_model("26m", checkpoint=path), weights)


def test_prefer_ema_picks_the_ema_weights(weights):
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in weights.items()}
    picked = checkpoint_filter_fn({"state_dict": weights, "state_dict_ema": ema}, prefer_ema=True)
    assert torch.equal(picked["tokens.weight"], ema["tokens.weight"])
    picked = checkpoint_filter_fn({"state_dict": weights, "state_dict_ema": ema})
    assert torch.equal(picked["tokens.weight"], weights["tokens.weight"])


def test_filter_is_idempotent(weights):
    once = checkpoint_filter_fn({"model": {f"module.{k}": v for k, v in weights.items()}})
    assert checkpoint_filter_fn(once) == once
    assert list(once) == list(weights)


def test_other_num_classes_reinitialises_classifier(tmp_path, weights, caplog):
    path = tmp_path / "imagenet.pth"
    torch.save(weights, path)
    with caplog.at_level(logging.WARNING, logger="mobileformer"):
        model = mf.create_model("26m", num_classes=10, checkpoint=path)
    assert "re-initialised" in caplog.text and "1000 classes" in caplog.text
    assert model.classifier.classifier[1].weight.shape == (10, 1024)
    assert torch.equal(model.state_dict()["tokens.weight"], weights["tokens.weight"])


def test_missing_file():
    with pytest.raises(mf.CheckpointError, match="not found"):
        mf.create_model("26m", checkpoint="/nonexistent/ckpt.pth")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated zip"])
def test_corrupt_file(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(mf.CheckpointError, match="cannot read checkpoint"):
        mf.create_model("26m", checkpoint=path)


def test_truncated_checkpoint(tmp_path, weights):
    path = tmp_path / "cut.pth"
    torch.save(weights, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(mf.CheckpointError, match="cannot read checkpoint"):
        mf.create_model("26m", checkpoint=path)


def test_corrupt_safetensors(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(mf.CheckpointError, match="cannot read checkpoint"):
        mf.create_model("26m", checkpoint=path)


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(mf.CheckpointError, match="not a state_dict"):
        mf.create_model("26m", checkpoint=path)


def test_no_tensors(tmp_path):
    path = tmp_path / "empty.pth"
    torch.save({"epoch": 1}, path)
    with pytest.raises(mf.CheckpointError, match="no tensors"):
        mf.create_model("26m", checkpoint=path)


def test_wrong_variant_names_the_keys_and_the_right_variant(tmp_path):
    path = tmp_path / "52m.pth"
    torch.save(mf.create_model("52m").state_dict(), path)
    with pytest.raises(mf.CheckpointError) as err:
        mf.create_model("26m", checkpoint=path)
    message = str(err.value)
    assert "mis-shaped" in message and "features.0.conv.4.weight" in message
    assert "it matches mobile_former_52m" in message


def test_missing_and_unexpected_keys_are_listed(tmp_path, weights):
    state = dict(weights)
    state.pop("tokens.weight")
    state["extra.layer.weight"] = torch.zeros(1)
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(mf.CheckpointError) as err:
        mf.create_model("26m", checkpoint=path)
    assert "1 missing keys: tokens.weight" in str(err.value)
    assert "1 unexpected keys: extra.layer.weight" in str(err.value)
