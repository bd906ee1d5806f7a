"""Image data for calibration, QAT and evaluation: an ImageFolder reader and built-in sets.

No torchvision: images are read with PIL and turned into tensors with numpy.

``--data`` takes either a directory (class-per-folder, optionally with ``train/`` and
``val/``/``test/`` splits inside) or the name of a built-in set:

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes),
  always available;
* ``fashion-mnist``: Zalando's 70,000 28x28 product photos (10 classes, official
  train/test split) from Debian's ``dataset-fashion-mnist`` package
  (``make data`` installs it).
"""
from __future__ import annotations

import gzip
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from .errors import UserError

log = logging.getLogger("quant")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
FASHION_MNIST_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
SPLITS = ("train", "val")


# What a broken or hostile image file raises when opened or decoded (a decompression bomb included).
UNREADABLE = (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class DataError(UserError):
    """Data that cannot be used: a missing or empty directory, an unknown set, no readable image."""


Transform = Callable[[Image.Image], torch.Tensor]


@dataclass(frozen=True)
class TransformConfig:
    """How images become network inputs. ``crop_pct`` < 1 centre-crops after resizing (ImageNet style)."""

    size: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    crop_pct: float = 0.875
    hflip: bool = True  # random horizontal flips when training (off for digits)
    min_scale: float = 0.35  # smallest area fraction of a random-resized crop


# Pixel formats whose range cannot be known from the file (32-bit integers, floats): converting
# them to 8 bits would clip them silently (a float image to black), so they are not read.
UNSUPPORTED_MODES = {"I": "32-bit integer", "F": "32-bit float"}


class UnsupportedImage(ValueError):
    """An image whose pixel format we do not convert (skipped like an unreadable one)."""


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB: 16-bit grey scaled (65535 -> 255), not clipped as Pillow's ``convert`` would;
    the formats of :data:`UNSUPPORTED_MODES` raise :class:`UnsupportedImage`."""
    if img.mode in UNSUPPORTED_MODES:
        raise UnsupportedImage(f"{UNSUPPORTED_MODES[img.mode]} pixels (mode {img.mode}) are not converted")
    if img.mode.startswith("I;16"):
        grey = np.round(np.asarray(img, dtype=np.float64) * (255.0 / 65535.0)).astype(np.uint8)
        img = Image.fromarray(grey, "L")
    return img.convert("RGB")


def _to_tensor(img: Image.Image, cfg: TransformConfig) -> torch.Tensor:
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(cfg.mean, np.float32)) / np.asarray(cfg.std, np.float32)
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


def eval_transform(cfg: TransformConfig) -> Transform:
    """Resize the short side to ``size / crop_pct``, centre-crop ``size``, normalise."""

    def apply(img: Image.Image) -> torch.Tensor:
        img = to_rgb(img)
        short = max(cfg.size, round(cfg.size / cfg.crop_pct))
        w, h = img.size
        scale = short / min(w, h)
        img = img.resize((max(short, round(w * scale)), max(short, round(h * scale))), Image.BILINEAR)
        w, h = img.size
        left, top = (w - cfg.size) // 2, (h - cfg.size) // 2
        return _to_tensor(img.crop((left, top, left + cfg.size, top + cfg.size)), cfg)

    return apply


def train_transform(cfg: TransformConfig) -> Transform:
    """Random-resized crop and optional flip, drawn from torch's RNG (so ``--resume`` replays it)."""

    def apply(img: Image.Image) -> torch.Tensor:
        img = to_rgb(img)
        w, h = img.size
        for _ in range(10):
            area = w * h * float(torch.empty(1).uniform_(cfg.min_scale, 1.0))
            ratio = math.exp(float(torch.empty(1).uniform_(math.log(3 / 4), math.log(4 / 3))))
            cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
            if 0 < cw <= w and 0 < ch <= h:
                left = int(torch.randint(0, w - cw + 1, (1,)))
                top = int(torch.randint(0, h - ch + 1, (1,)))
                break
        else:
            cw, ch, left, top = w, h, 0, 0
        img = img.resize((cfg.size, cfg.size), Image.BILINEAR, box=(left, top, left + cw, top + ch))
        if cfg.hflip and float(torch.rand(1)) < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        return _to_tensor(img, cfg)

    return apply


class ImageFolder(Dataset):
    """Class-per-folder images: ``root/<class>/<image>``. Classes are the sorted folder names.

    Files that are not readable images are skipped and counted in ``skipped``: at scan
    time (header check, which also turns away decompression bombs and the pixel formats of
    :data:`UNSUPPORTED_MODES`) and, should one still fail to decode, at load time: it is
    counted once, and the next readable image of the same class is returned in its place.
    Only regular files are opened (a FIFO would block). :class:`DataError` when a class has
    no readable image.
    """

    def __init__(self, root: str | Path, transform: Transform, classes: list[str] | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"data directory not found: {self.root}")
        self.classes = classes or sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not self.classes:
            raise DataError(f"{self.root} has no class folders (expected {self.root}/<class>/<image>)")
        self.transform = transform
        self.skipped = 0
        self.samples: list[tuple[Path, int]] = []
        for label, name in enumerate(self.classes):
            folder = self.root / name
            files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS) if folder.is_dir() else []
            for path in files:
                if path.is_file() and self._readable(path):
                    self.samples.append((path, label))
                else:
                    self.skipped += 1
        if self.skipped:
            log.warning("%s: skipped %d unreadable image(s)", self.root, self.skipped)
        if not self.samples:
            raise DataError(f"{self.root} holds no readable images ({', '.join(IMAGE_EXTENSIONS)})")
        empty = sorted(set(self.classes) - {self.classes[label] for _, label in self.samples})
        if empty:
            raise DataError(f"{self.root}: class folder(s) {', '.join(map(repr, empty[:5]))} hold no readable image; "
                            "every class needs at least one")
        self._of_class: list[list[int]] = [[] for _ in self.classes]
        for index, (_, label) in enumerate(self.samples):
            self._of_class[label].append(index)
        self._broken: set[int] = set()

    @staticmethod
    def _readable(path: Path) -> bool:
        try:
            with Image.open(path) as img:
                return img.mode not in UNSUPPORTED_MODES
        except UNREADABLE:
            return False

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, index: int) -> torch.Tensor | None:
        """The transformed image, or None (counted once) if it does not decode."""
        path = self.samples[index][0]
        try:
            with Image.open(path) as img:
                return self.transform(img)
        except UNREADABLE:
            self._broken.add(index)
            self.skipped += 1
            log.warning("unreadable image skipped: %s", path)
            return None

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label = self.samples[index][1]
        same_class = self._of_class[label]
        start = same_class.index(index)
        for candidate in same_class[start:] + same_class[:start]:  # this image first, then the next ones
            if candidate not in self._broken and (x := self._load(candidate)) is not None:
                return x, label
        raise DataError(f"no readable image left in class {self.classes[label]!r}")


class ArrayImages(Dataset):
    """Images held as a uint8 array ``[N, H, W]`` (grey) or ``[N, H, W, 3]`` with integer labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: list[str], transform: Transform) -> None:
        if len(images) == 0:
            raise DataError("empty data set")
        self.images, self.labels, self.classes, self.transform = images, labels, classes, transform
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def _digits_table() -> np.ndarray:
    """scikit-learn's ``digits.csv.gz`` read as its ``load_digits`` reads it (1,797 rows: 64 pixels in 0..16,
    then the label), without importing scikit-learn (1.5 s of CPU, more than the rest of the read)."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    if spec is None or spec.origin is None:
        raise DataError("the built-in 'digits' set comes with scikit-learn, which is not installed")
    with gzip.open(Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz", "rt", encoding="utf-8") as f:
        return np.loadtxt(f, delimiter=",")


def _digits(split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    table = _digits_table()
    images = (table[:, :-1].reshape(-1, 8, 8) * (255.0 / 16.0)).round().astype(np.uint8)
    target = table[:, -1].astype(int)
    order = np.random.default_rng(0).permutation(len(images))  # fixed 80/20 split
    cut = int(0.8 * len(images))
    idx = order[:cut] if split == "train" else order[cut:]
    return images[idx], target[idx], [str(i) for i in range(10)]


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (gzip), checked: a cut or foreign file is a :class:`DataError`."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
        if len(raw) < 4 or raw[:3] != b"\0\0\x08":
            raise ValueError("not an IDX file of unsigned bytes")
        ndim = raw[3]
        shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
        return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)
    except (OSError, EOFError, ValueError) as e:
        raise DataError(f"{path} is corrupt or cut short ({e}): reinstall dataset-fashion-mnist") from None


def _fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    prefix = "train" if split == "train" else "t10k"
    images, labels = FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz", FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    if not images.is_file() or not labels.is_file():
        raise DataError(
            f"Fashion-MNIST not found in {FASHION_MNIST_DIR}: install Debian's dataset-fashion-mnist "
            "(`make data`) or set FASHION_MNIST_DIR"
        )
    images, labels = _read_idx(images), _read_idx(labels).astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or not np.all((labels >= 0) & (labels < 10)):
        raise DataError(f"Fashion-MNIST in {FASHION_MNIST_DIR}: its {prefix} images and labels do not match: "
                        "reinstall dataset-fashion-mnist")
    return images, labels, list(FASHION_MNIST_CLASSES)


BUILTIN = {"digits": _digits, "fashion-mnist": _fashion_mnist}
# Small images are upscaled whole (no centre crop); digits must not be mirrored.
BUILTIN_TRANSFORMS = {"digits": {"crop_pct": 1.0, "hflip": False, "min_scale": 0.7},
                      "fashion-mnist": {"crop_pct": 1.0, "min_scale": 0.6}}


def transform_config(spec: str, size: int, **overrides) -> TransformConfig:
    """The transform settings that suit a data source (built-ins differ from photos)."""
    return TransformConfig(size=size, **{**BUILTIN_TRANSFORMS.get(spec, {}), **overrides})


def load_dataset(spec: str, split: str, transform: Transform) -> Dataset:
    """A built-in set by name, or an ImageFolder directory (its ``train``/``val`` split if it has them)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}")
    if spec in BUILTIN:
        images, labels, classes = BUILTIN[spec](split)
        return ArrayImages(images, labels, classes, transform)
    root = Path(spec)
    if not root.exists():
        raise DataError(f"{spec!r} is neither a data directory nor a built-in set ({', '.join(BUILTIN)})")
    for name in ((split,) if split == "train" else ("val", "test")):
        if (root / name).is_dir():
            return ImageFolder(root / name, transform)
    present = [name for name in ("train", "val", "test") if (root / name).is_dir()]
    if present:  # one split only: its folder would be read as a class of the other
        raise DataError(f"{root} has {'/ and '.join(present)}/ but no {'train' if split == 'train' else 'val'}/ "
                        "split: give both train/ and val/ (or test/), or class folders without splits")
    return ImageFolder(root, transform)


def calibration_batches(spec: str, count: int, size: int, mean: tuple, std: tuple, split: str = "train") -> torch.Tensor:
    """``count`` images ``[count, 3, size, size]`` from ``spec``, the same ones every time.

    A fixed shuffle (seed 0) spreads them over the classes; they calibrate PTQ and then
    serve as the host validation set of the export.
    """
    dataset = load_dataset(spec, split, eval_transform(transform_config(spec, size, mean=tuple(mean), std=tuple(std))))
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:count]
    return torch.stack([dataset[int(i)][0] for i in order])
