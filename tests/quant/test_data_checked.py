"""Image data read right or refused: one split alone, 16-bit and float images, a class with no
readable image, FIFOs, corrupt Fashion-MNIST. Each case was reproduced against the code before it."""
import gzip
import os

import numpy as np
import pytest
from PIL import Image

from quant import data
from quant.data import DataError, ImageFolder, eval_transform, load_dataset, transform_config

T = eval_transform(transform_config("dir", 32))


def _image(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _grey(value, dtype=np.uint8):
    return np.full((16, 16), value, dtype=dtype)


@pytest.mark.parametrize("present, missing", [("train", "val"), ("val", "train"), ("test", "train")])
def test_one_split_alone_is_an_error_not_a_class(tmp_path, present, missing):
    _image(tmp_path / present / "a" / "1.png", _grey(10))
    _image(tmp_path / present / "b" / "1.png", _grey(20))
    with pytest.raises(DataError, match=f"no {missing}/ split"):
        load_dataset(str(tmp_path), missing, T)


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    _image(tmp_path / "a" / "16.png", _grey(128 * 257, np.uint16))
    _image(tmp_path / "b" / "8.png", _grey(128))
    ds = ImageFolder(tmp_path, T)
    assert Image.open(ds.samples[0][0]).mode.startswith("I;16")
    sixteen, eight = ds[0][0], ds[1][0]
    assert np.allclose(sixteen.numpy(), eight.numpy())


def test_float_images_are_refused_not_made_black(tmp_path):
    _image(tmp_path / "a" / "f.tif", np.full((16, 16), 0.5, np.float32))
    _image(tmp_path / "a" / "ok.png", _grey(9))
    _image(tmp_path / "b" / "ok.png", _grey(9))
    ds = ImageFolder(tmp_path, T)
    assert len(ds) == 2 and ds.skipped == 1


def test_a_class_whose_images_are_all_unreadable_is_an_error(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "x.jpg").write_bytes(b"garbage")
    _image(tmp_path / "cat" / "f.tif", np.zeros((4, 4), np.float32))
    _image(tmp_path / "dog" / "ok.png", _grey(9))
    with pytest.raises(DataError, match="'cat' hold no readable image"):
        ImageFolder(tmp_path, T)


@pytest.mark.timeout(60)
def test_a_fifo_is_skipped_not_waited_on(tmp_path):
    _image(tmp_path / "a" / "ok.png", _grey(9))
    _image(tmp_path / "b" / "ok.png", _grey(9))
    os.mkfifo(tmp_path / "a" / "pipe.png")
    ds = ImageFolder(tmp_path, T)
    assert len(ds) == 2 and ds.skipped == 1


@pytest.mark.parametrize("images, labels", [
    (b"not gzip at all", None),
    (gzip.compress(b"\0\0\x08\x03" + (5).to_bytes(4, "big") * 3 + b"\1" * 10), None),  # cut short
    (gzip.compress(b"\0\0\x08\x03" + (1).to_bytes(4, "big") + (2).to_bytes(4, "big") * 2 + b"\1" * 4),
     gzip.compress(b"\0\0\x08\x01" + (3).to_bytes(4, "big") + b"\0\1\2")),  # 1 image, 3 labels
], ids=["not-gzip", "cut-short", "labels-do-not-match"])
def test_corrupt_fashion_mnist_is_a_data_error(tmp_path, monkeypatch, images, labels):
    good_labels = gzip.compress(b"\0\0\x08\x01" + (1).to_bytes(4, "big") + b"\0")
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(images)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(labels or good_labels)
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", tmp_path)
    with pytest.raises(DataError):
        load_dataset("fashion-mnist", "train", T)
