"""``python -m quant.evaluate``: top-1 accuracy of an exported artifact or a checkpoint on held-out images.

An ``.pte`` runs in the host ExecuTorch runtime and a ``.tflite`` in LiteRT's interpreter (with
its XNNPACK delegate, as on Android), so the number is the int8 model's own, not a PyTorch
simulation of it; an ``.mlpackage`` runs in this project's MIL reference
executor (:mod:`quant.backends.coreml.mil_reference`: its program op by op, not Core ML's kernels); a float
checkpoint (``quant.train`` or the authors') runs in PyTorch. The input size and normalisation come from the artifact's manifest.
The result JSON keeps which images were right, so ``--compare A.json B.json`` can say
whether two models' accuracies differ by more than chance (exact McNemar test).
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
from tqdm import tqdm

import mobileformer as mf
from mobileformer.checkpoint import checkpoint_num_classes

from .backends import ARTIFACT_SUFFIXES, BACKENDS, backend_for
from .backends.xnnpack.probe import probe_program
from .errors import ArgumentParser, UserError, check_at_least, check_input_size, command
from .data import eval_transform, load_dataset, transform_config
from .files import check_not_an_input, check_replaceable, ensure_writable_dir, write_json_atomic
from .formats import find_manifest, verified_manifest
from .metrics import mcnemar_exact

FORMAT = "mobileformer-evaluate/1"


class Predictor(NamedTuple):
    predict: Callable[[torch.Tensor], torch.Tensor]  # a float NCHW batch -> logits
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    what: str  # the result's description
    fingerprint: dict | None = None  # an artifact's recipe fingerprint (its manifest's), for accuracy tables


def _predictor(target: Path, model_name: str | None, input_size: int | None, verify: bool = True) -> Predictor:
    if not target.exists():
        raise UserError(f"not found: {target}")
    if target.suffix in ARTIFACT_SUFFIXES:
        manifest = verified_manifest(target, verify)
        if manifest is None:
            raise UserError(f"{target.name} has no manifest beside it ({target.stem}.manifest.json)")
        inp = manifest["input"]
        if input_size not in (None, inp["shape"][-1]):
            raise UserError(f"{target.name} takes {inp['shape'][-1]}x{inp['shape'][-1]} images, not --input-size {input_size}")
        backend = backend_for(target)
        what = f"{manifest['model']} {manifest['backend']} {manifest['precision']}"
        if backend.emulated:
            what += f" ({backend.emulated})"
        if backend is BACKENDS["xnnpack"]:
            probe_program(target, inp["shape"])  # a crash of the runtime, in a child
        run_one = backend.open(target)
        return Predictor(lambda x: torch.cat([run_one(img[None]) for img in x]), inp["shape"][-1], inp["mean"],
                         inp["std"], manifest["num_classes"], what, manifest.get("recipe_fingerprint"))
    if not model_name:
        raise UserError("--model is needed to evaluate a checkpoint")
    model = mf.create_model(model_name, num_classes=checkpoint_num_classes(target) or 1000, checkpoint=target)
    size = input_size or model.cfg.input_size
    return Predictor(model, size, model.cfg.mean, model.cfg.std, model.num_classes, f"{model.cfg.name} PyTorch fp32")


def evaluate(target: Path, data: str, model_name: str | None = None, input_size: int | None = None,
             limit: int = 0, batch: int = 64, progress: bool = True, verify: bool = True) -> dict:
    check_at_least(0, limit=limit)
    check_input_size(input_size)
    predict, size, mean, std, num_classes, what, fingerprint = _predictor(target, model_name, input_size, verify)
    dataset = load_dataset(data, "val", eval_transform(transform_config(data, size, mean=tuple(mean), std=tuple(std))))
    if len(dataset.classes) != num_classes:
        raise UserError(f"{target.name} has {num_classes} classes, {data!r} has {len(dataset.classes)}: "
                        "its outputs cannot be scored against these labels")
    n = min(len(dataset), limit) if limit else len(dataset)
    correct = []
    with torch.no_grad():
        for start in tqdm(range(0, n, batch), desc="evaluate", disable=not progress, leave=False):
            items = [dataset[i] for i in range(start, min(n, start + batch))]
            logits = predict(torch.stack([x for x, _ in items]))
            correct += (logits.argmax(-1) == torch.tensor([y for _, y in items])).tolist()
    return {"format": FORMAT, "target": target.name, "what": what, "recipe_fingerprint": fingerprint, "data": data,
            "images": n, "top1": sum(correct) / n, "correct": "".join("1" if c else "0" for c in correct)}


def compare(a: dict, b: dict) -> dict:
    """Paired comparison of two results on the same images."""
    if (a["data"], a["images"]) != (b["data"], b["images"]):
        raise UserError(f"not the same images: {a['images']} of {a['data']!r} vs {b['images']} of {b['data']!r}")
    only_a = sum(x == "1" and y == "0" for x, y in zip(a["correct"], b["correct"]))
    only_b = sum(x == "0" and y == "1" for x, y in zip(a["correct"], b["correct"]))
    return {"top1_a": a["top1"], "top1_b": b["top1"], "only_a_right": only_a, "only_b_right": only_b,
            "p_value": mcnemar_exact(only_a, only_b)}


def read_top1(path: Path) -> dict:
    """A ``--json`` result, checked: a paired test on outcomes that do not add up would mean nothing."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as e:
        raise UserError(f"cannot read result {path}: {e}") from None
    if not isinstance(result, dict) or not all(k in result for k in ("data", "images", "top1", "correct")):
        raise UserError(f"{path} is not a quant.evaluate --json result (needs data, images, top1, correct); "
                        "a result without per-image outcomes needs evaluating again with this version")
    images, correct, top1 = result["images"], result["correct"], result["top1"]
    if not (isinstance(images, int) and images > 0 and isinstance(correct, str) and len(correct) == images
            and set(correct) <= {"0", "1"} and isinstance(top1, (int, float)) and abs(top1 - correct.count("1") / images) < 1e-9):
        raise UserError(f"{path}: its per-image outcomes do not match its images and top1 (edited or cut?)")
    return result


@command
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m quant.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("target", type=Path, nargs="?", help=".pte, .mlpackage or .tflite (with its manifest beside it) or a float checkpoint")
    p.add_argument("--data", default="digits", help="class-per-folder directory, 'digits' or 'fashion-mnist' (held-out split)")
    p.add_argument("--model", help="variant, for a checkpoint")
    p.add_argument("--input-size", type=int, help="for a checkpoint (default: the variant's)")
    p.add_argument("--limit", type=int, default=0, help="first N held-out images only (0: all)")
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A.json", "B.json"),
                   help="instead: are two --json results on the same images different beyond chance?")
    p.add_argument("--no-verify", action="store_true",
                   help="score an artifact even if it is not the one the manifest beside it describes (SHA-256)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.compare:
        return _compare_main(*args.compare)
    if args.target is None:
        p.error("a target (.pte, .mlpackage, .tflite or checkpoint) or --compare A.json B.json is needed")
    if args.json:  # before the work, not after
        read = {args.target: "the file being evaluated", Path(args.data): "the data read"}
        manifest = find_manifest(args.target, [args.target.parent]) if args.target.suffix in ARTIFACT_SUFFIXES else None
        if manifest:
            read[manifest] = "the manifest of the file being evaluated"
        check_not_an_input(args.json, read, "--json")
        ensure_writable_dir(args.json.parent)
        check_replaceable(args.json, is_dir=False)
    result = evaluate(args.target, args.data, args.model, args.input_size, args.limit, progress=not args.no_progress,
                      verify=not args.no_verify)
    if args.json:
        write_json_atomic(args.json, result)
    print(f"{result['what']}: top-1 {100 * result['top1']:.2f}% on {result['images']} held-out {result['data']} images")
    return 0


def _compare_main(path_a: Path, path_b: Path) -> int:
    r = compare(read_top1(path_a), read_top1(path_b))
    print(f"A {path_a.name}: {100 * r['top1_a']:.2f}%   B {path_b.name}: {100 * r['top1_b']:.2f}%")
    print(f"only A right: {r['only_a_right']}, only B right: {r['only_b_right']}; "
          f"exact McNemar p = {r['p_value']:.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
