"""``python -m quant.qat``: quantization-aware fine-tuning of Mobile-Former.

The model is exported, prepared for QAT with a recipe's quantizer (fake-quant on
everything the int8 backend will run in int8) and fine-tuned, by default distilling
from the fp32 model it started from. ``OUT/final.pt`` is what ``quant.export
--backend B --checkpoint`` takes, B being the recipe's backend (xnnpack, coreml or
tflite). Runs unchanged under ``torchrun --nproc-per-node N``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import torch

import mobileformer as mf
from mobileformer.checkpoint import checkpoint_num_classes

from .errors import ArgumentParser, command
from .qat_graph import build_qat_graph
from .recipes import RECIPES, get_recipe
from .train import (
    Hooks,
    TrainConfig,
    add_common_arguments,
    check_config,
    check_run_outputs,
    config_from_args,
    datasets,
    init_world,
    seed_everything,
    train,
)

def _rng_neutral(switch: str) -> Callable[[torch.fx.GraphModule], None]:
    """torchao's ``switch`` (imported when first run, not with the command) without touching the global RNG.

    torchao's train/eval switches re-trace dropout and BatchNorm patterns on random example
    inputs; left alone, that would shift the RNG that dropout and augmentation draw from, and a
    resumed run (which switches at a different point) would no longer repeat the straight one.
    """
    def run(gm: torch.fx.GraphModule) -> None:
        import torchao.quantization.pt2e as pt2e

        with torch.random.fork_rng():
            getattr(pt2e, switch)(gm)

    return run


to_train, to_eval = _rng_neutral("move_exported_model_to_train"), _rng_neutral("move_exported_model_to_eval")


def qat_hooks(cfg: TrainConfig, recipe: str, num_classes: int, init: str | None) -> Hooks:
    frozen = {"bn": False, "observer": False}

    def set_train(gm):
        if not frozen["bn"]:
            to_train(gm)

    def on_step(gm, step):
        if cfg.freeze_bn_step is not None and step >= cfg.freeze_bn_step and not frozen["bn"]:
            to_eval(gm)  # BatchNorm uses its running statistics from here on
            frozen["bn"] = True
        if cfg.freeze_observer_step is not None and step >= cfg.freeze_observer_step and not frozen["observer"]:
            from torchao.quantization.pt2e import disable_observer

            gm.apply(disable_observer)  # quantization ranges stay where they are
            frozen["observer"] = True

    return Hooks(set_train, to_eval, on_step,
                 lambda: {"recipe": recipe, "num_classes": num_classes, "init": init})


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m quant.qat", description=__doc__.splitlines()[0])
    defaults = TrainConfig(steps=300, lr=1e-4, warmup_steps=20, out="runs/qat")
    add_common_arguments(p, defaults)
    p.add_argument("--init", type=Path, help="fp32 checkpoint to start from (quant.train's final.pt, or the authors')")
    p.add_argument("--recipe", default="xnnpack", choices=sorted(RECIPES),
                   help="quantization recipe to train for, one per backend (xnnpack, coreml, tflite; or a variant "
                   "such as xnnpack-per-tensor); quant.export takes the result for that backend only")
    p.add_argument("--no-distill", action="store_true", help="plain cross-entropy instead of distilling from fp32")
    p.add_argument("--distill-alpha", type=float, default=defaults.distill_alpha)
    p.add_argument("--distill-temperature", type=float, default=defaults.distill_temperature)
    p.add_argument("--freeze-bn-step", type=int, default=200, help="stop updating BatchNorm statistics at this step")
    p.add_argument("--freeze-observer-step", type=int, default=250, help="stop moving quantization ranges at this step")
    return p


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args, distill=not args.no_distill)
    check_config(cfg)
    get_recipe(args.recipe)
    world = init_world()
    if world.main:
        check_run_outputs(Path(cfg.out), args.init)  # before a minute of graph building, not after
    seed_everything(cfg.seed)
    float_model = mf.create_model(cfg.model)
    train_set, held_out = datasets(cfg, float_model.cfg.mean, float_model.cfg.std)
    num_classes = len(train_set.classes)
    if args.init and checkpoint_num_classes(args.init) not in (None, num_classes, 1000):
        raise mf.CheckpointError(f"{args.init} has {checkpoint_num_classes(args.init)} classes, the data has {num_classes}")
    float_model = mf.create_model(cfg.model, num_classes=num_classes, checkpoint=args.init)
    graph = build_qat_graph(float_model, args.recipe, cfg.input_size)
    teacher = float_model.eval() if cfg.distill else None
    hooks = qat_hooks(cfg, args.recipe, num_classes, str(args.init) if args.init else None)
    train(cfg, graph, teacher, hooks, train_set, held_out, args.resume, world, "qat", not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
