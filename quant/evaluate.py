"""``python -m quant.evaluate``: top-1 accuracy of an exported artifact or a checkpoint on held-out images.

An ``.pte`` runs in the host ExecuTorch runtime, so the number is the int8 model's own,
not a PyTorch simulation of it; a float checkpoint (``quant.train`` or the authors')
runs in PyTorch. The input size and normalisation come from the artifact's manifest.
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
from .files import write_json_atomic
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
    correct = 0
    with torch.no_grad():
        for start in tqdm(range(0, n, batch), desc="evaluate", disable=not progress, leave=False):
            items = [dataset[i] for i in range(start, min(n, start + batch))]
            logits = predict(torch.stack([x for x, _ in items]))
            correct += int((logits.argmax(-1) == torch.tensor([y for _, y in items])).sum())
    return {"target": target.name, "what": what, "data": data, "images": n, "top1": correct / n}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m quant.evaluate", description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter)
    p.add_argument("target", type=Path, help=".pte (with its manifest beside it) or a float checkpoint")
    p.add_argument("--data", default="digits", help="class-per-folder directory, 'digits' or 'fashion-mnist' (held-out split)")
    p.add_argument("--model", help="variant, for a checkpoint")
    p.add_argument("--input-size", type=int, help="for a checkpoint (default: the variant's)")
    p.add_argument("--limit", type=int, default=0, help="first N held-out images only (0: all)")
    p.add_argument("--json", type=Path, help="also write the result here")
    args = p.parse_args(argv)
    try:
        if not args.target.exists():
            raise ProgramError(f"not found: {args.target}")
        result = evaluate(args.target, args.data, args.model, args.input_size, args.limit)
        if args.json:
            write_json_atomic(args.json, result)
    except (DataError, ProgramError, mf.CheckpointError, mf.UnknownModelError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{result['what']}: top-1 {100 * result['top1']:.2f}% on {result['images']} held-out {result['data']} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
