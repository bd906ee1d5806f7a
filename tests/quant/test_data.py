"""Image folders, built-in sets and transforms."""
import numpy as np
import pytest
import torch
from PIL import Image

from quant import data
from quant.data import DataError, ImageFolder, calibration_batches, eval_transform, load_dataset, train_transform, transform_config


def _image(path, color, size=(20, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


@pytest.fixture
def folder(tmp_path):
    for i in range(3):
        _image(tmp_path / "cat" / f"{i}.png", (255, 0, 0))
        _image(tmp_path / "dog" / f"{i}.jpg", (0, 0, 255))
    (tmp_path / "dog" / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "dog" / "notes.txt").write_text("ignored: not an image extension")
    return tmp_path


def test_image_folder_reads_classes_and_skips_unreadable(folder):
    ds = ImageFolder(folder, eval_transform(transform_config("dir", 32)))
    assert ds.classes == ["cat", "dog"]
    assert len(ds) == 6 and ds.skipped == 1
    x, label = ds[0]
    assert x.shape == (3, 32, 32) and label == 0


def test_image_that_breaks_at_load_time_is_replaced_and_counted(folder):
    ds = ImageFolder(folder, eval_transform(transform_config("dir", 32)))
    path, label = ds.samples[-1]
    path.write_bytes(path.read_bytes()[:40])  # header intact, pixels gone
    x, got = ds[len(ds) - 1]
    assert got == label and x.shape == (3, 32, 32) and ds.skipped == 2


def test_missing_and_empty_directories(tmp_path):
    with pytest.raises(DataError, match="not found"):
        ImageFolder(tmp_path / "nope", eval_transform(transform_config("dir", 32)))
    with pytest.raises(DataError, match="no class folders"):
        ImageFolder(tmp_path, eval_transform(transform_config("dir", 32)))
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError, match="no readable images"):
        ImageFolder(tmp_path, eval_transform(transform_config("dir", 32)))


def test_split_folders(folder, tmp_path_factory):
    root = tmp_path_factory.mktemp("split")
    _image(root / "train" / "a" / "1.png", (1, 2, 3))
    _image(root / "val" / "a" / "1.png", (1, 2, 3))
    _image(root / "val" / "b" / "1.png", (1, 2, 3))
    t = eval_transform(transform_config("dir", 32))
    assert load_dataset(str(root), "train", t).classes == ["a"]
    assert load_dataset(str(root), "val", t).classes == ["a", "b"]


def test_unknown_spec():
    with pytest.raises(DataError, match="neither a data directory nor a built-in set"):
        load_dataset("imagenet-please", "train", lambda img: img)


def test_digits_split_is_fixed_and_disjoint():
    t = eval_transform(transform_config("digits", 32))
    train, val = load_dataset("digits", "train", t), load_dataset("digits", "val", t)
    assert len(train) + len(val) == 1797 and len(train.classes) == 10
    x, y = train[0]
    assert x.shape == (3, 32, 32) and 0 <= y < 10


def test_digits_are_scikit_learns_without_importing_it():
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    d = load_digits()
    table = data._digits_table()
    assert np.array_equal(table[:, :-1].reshape(-1, 8, 8), d.images) and np.array_equal(table[:, -1], d.target)
    code = "import sys, quant.data as d; d._digits('train'); print('sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_fashion_mnist_missing_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", tmp_path)
    with pytest.raises(DataError, match="make data"):
        load_dataset("fashion-mnist", "train", lambda img: img)


def test_train_transform_follows_torch_rng():
    cfg = transform_config("digits", 32, min_scale=0.3)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    torch.manual_seed(3)
    a = train_transform(cfg)(img)
    torch.manual_seed(3)
    b = train_transform(cfg)(img)
    assert torch.equal(a, b) and a.shape == (3, 32, 32)


def test_eval_transform_normalises():
    cfg = transform_config("dir", 16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    x = eval_transform(cfg)(Image.new("RGB", (30, 20), (255, 255, 255)))
    assert torch.allclose(x, torch.ones_like(x))


def test_calibration_batches_are_repeatable():
    a = calibration_batches("digits", 5, 32, (0.5,) * 3, (0.5,) * 3)
    b = calibration_batches("digits", 5, 32, (0.5,) * 3, (0.5,) * 3)
    assert a.shape == (5, 3, 32, 32) and torch.equal(a, b)


def _truncated_png(path, size=(64, 64)):
    _image(path, (9, 9, 9), size)
    path.write_bytes(path.read_bytes()[:60])  # the header parses, the pixels are gone


def test_many_broken_images_are_skipped_once_without_recursion(tmp_path, caplog):
    for i in range(5):
        _truncated_png(tmp_path / "cat" / f"{i}.png")
    _image(tmp_path / "cat" / "9.png", (255, 0, 0))
    _image(tmp_path / "dog" / "0.png", (0, 0, 255))
    ds = ImageFolder(tmp_path, eval_transform(transform_config("dir", 32)))
    assert len(ds) == 7 and ds.skipped == 0  # headers are fine: found only when decoded
    with caplog.at_level("WARNING", logger="quant"):
        loaded = [ds[i] for i in range(len(ds))] + [ds[0]]
    assert [label for _, label in loaded] == [0] * 6 + [1, 0]
    assert ds.skipped == 5 and len(caplog.records) == 5  # each broken image counted and reported once


def test_a_class_with_no_readable_image_left_is_a_data_error(tmp_path):
    for i in range(50):
        _truncated_png(tmp_path / "cat" / f"{i}.png")
    _image(tmp_path / "dog" / "0.png", (0, 0, 255))
    ds = ImageFolder(tmp_path, eval_transform(transform_config("dir", 32)))
    with pytest.raises(DataError, match="no readable image left in class 'cat'"):
        ds[0]
    assert ds.skipped == 50 and ds[50][1] == 1


def test_decompression_bomb_is_skipped_at_scan(tmp_path):
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)  # 20000x20000 RGB, declared only
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "bomb.png").write_bytes(bomb)
    _image(tmp_path / "cat" / "ok.png", (1, 2, 3))
    ds = ImageFolder(tmp_path, eval_transform(transform_config("dir", 32)))
    assert len(ds) == 1 and ds.skipped == 1
