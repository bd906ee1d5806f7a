"""``python -m quant.evaluate``: top-1 accuracy of an exported artifact or a checkpoint on held-out images.

An ``.pte`` runs in the host ExecuTorch runtime, so the number is the int8 model's own,
not a PyTorch simulation of it; a float checkpoint (``quant.train`` or the authors')
runs in PyTorch. The input size and normalisation come from the artifact's manifest.
The result JSON keeps which images were right, so ``--compare A.json B.json`` can say
whether two models' accuracies differ by more than chance (exact McNemar test).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

import mobileformer as mf
from mobileformer.checkpoint import checkpoint_num_classes

from . import HelpFormatter
from .data import DataError, eval_transform, load_dataset, transform_config
from .files import OutputError, write_json_atomic
from .metrics import mcnemar_exact
from .latency import find_manifest
from .runtime import Program, ProgramError


def _predictor(target: Path, model_name: str | None, input_size: int | None):
    """(callable batch -> logits, input size, mean, std, description)."""
    if target.suffix == ".pte":
        manifest_path = find_manifest(target, [target.parent])
        if manifest_path is None:
            raise ProgramError(f"{target.name} has no manifest beside it ({target.stem}.manifest.json)")
        manifest = json.loads(manifest_path.read_text())
        program = Program(target)
        size = manifest["input"]["shape"][-1]
        return (lambda x: torch.cat([program(img[None]) for img in x]), size, manifest["input"]["mean"],
                manifest["input"]["std"], f"{manifest['model']} {manifest['backend']} {manifest['precision']}")
    if not model_name:
        raise ValueError("--model is needed to evaluate a checkpoint")
    model = mf.create_model(model_name, num_classes=checkpoint_num_classes(target) or 1000, checkpoint=target)
    size = input_size or model.cfg.input_size
    return model, size, model.cfg.mean, model.cfg.std, f"{model.cfg.name} PyTorch fp32"


def evaluate(target: Path, data: str, model_name: str | None = None, input_size: int | None = None,
             limit: int = 0, batch: int = 64, progress: bool = True) -> dict:
    predict, size, mean, std, what = _predictor(target, model_name, input_size)
    dataset = load_dataset(data, "val", eval_transform(transform_config(data, size, mean=tuple(mean), std=tuple(std))))
    n = min(len(dataset), limit) if limit else len(dataset)
    correct = []
    with torch.no_grad():
        for start in tqdm(range(0, n, batch), desc="evaluate", disable=not progress, leave=False):
            items = [dataset[i] for i in range(start, min(n, start + batch))]
            logits = predict(torch.stack([x for x, _ in items]))
            correct += (logits.argmax(-1) == torch.tensor([y for _, y in items])).tolist()
    return {"target": target.name, "what": what, "data": data, "images": n, "top1": sum(correct) / n,
            "correct": "".join("1" if c else "0" for c in correct)}


def compare(a: dict, b: dict) -> dict:
    """Paired comparison of two results on the same images."""
    if (a.get("data"), a.get("images")) != (b.get("data"), b.get("images")):
        raise ValueError(f"not the same images: {a.get('images')} of {a.get('data')!r} vs {b.get('images')} of {b.get('data')!r}")
    if "correct" not in a or "correct" not in b:
        raise ValueError("a result without per-image outcomes; evaluate again with this version")
    only_a = sum(x == "1" and y == "0" for x, y in zip(a["correct"], b["correct"]))
    only_b = sum(x == "0" and y == "1" for x, y in zip(a["correct"], b["correct"]))
    return {"top1_a": a["top1"], "top1_b": b["top1"], "only_a_right": only_a, "only_b_right": only_b,
            "p_value": mcnemar_exact(only_a, only_b)}


def _read_result(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read result {path}: {e}") from e


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m quant.evaluate", description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter)
    p.add_argument("target", type=Path, nargs="?", help=".pte (with its manifest beside it) or a float checkpoint")
    p.add_argument("--data", default="digits", help="class-per-folder directory, 'digits' or 'fashion-mnist' (held-out split)")
    p.add_argument("--model", help="variant, for a checkpoint")
    p.add_argument("--input-size", type=int, help="for a checkpoint (default: the variant's)")
    p.add_argument("--limit", type=int, default=0, help="first N held-out images only (0: all)")
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A.json", "B.json"),
                   help="instead: are two --json results on the same images different beyond chance?")
    args = p.parse_args(argv)
    if args.compare:
        return _compare_main(*args.compare)
    if args.target is None:
        p.error("a target (.pte or checkpoint) or --compare A.json B.json is needed")
    try:
        if not args.target.exists():
            raise ProgramError(f"not found: {args.target}")
        result = evaluate(args.target, args.data, args.model, args.input_size, args.limit)
        if args.json:
            write_json_atomic(args.json, result)
    except (DataError, ProgramError, OutputError, mf.CheckpointError, mf.UnknownModelError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{result['what']}: top-1 {100 * result['top1']:.2f}% on {result['images']} held-out {result['data']} images")
    return 0


def _compare_main(path_a: Path, path_b: Path) -> int:
    try:
        r = compare(_read_result(path_a), _read_result(path_b))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"A {path_a.name}: {100 * r['top1_a']:.2f}%   B {path_b.name}: {100 * r['top1_b']:.2f}%")
    print(f"only A right: {r['only_a_right']}, only B right: {r['only_b_right']}; "
          f"exact McNemar p = {r['p_value']:.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
