"""``python -m quant.qat``: quantization-aware fine-tuning of Mobile-Former.

The model is exported, prepared for QAT with a recipe's quantizer (fake-quant on
everything the int8 backend will run in int8) and fine-tuned, by default distilling
from the fp32 model it started from. ``OUT/final.pt`` is what ``quant.export
--checkpoint`` takes. Runs unchanged under ``torchrun --nproc-per-node N``.
"""
from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torchao.quantization.pt2e import (
    disable_fake_quant,
    disable_observer,
    move_exported_model_to_eval,
    move_exported_model_to_train,
)

import mobileformer as mf
from mobileformer.checkpoint import checkpoint_num_classes
from mobileformer.model import MobileFormer

from . import HelpFormatter
from .cli import UserError, command
from .files import ensure_writable_dir
from .recipes import RECIPES, example_input, get_recipe, prepare
from .train import (
    Hooks,
    TrainConfig,
    add_common_arguments,
    check_config,
    config_from_args,
    datasets,
    init_world,
    seed_everything,
    train,
)

FORMAT = "mobileformer-qat/1"


class QATCheckpointError(UserError):
    """A QAT checkpoint that does not fit what it is used for."""


@dataclass
class QATModel:
    model: MobileFormer  # the variant's structure (names, blocks, config); its weights are not the trained ones
    graph: torch.fx.GraphModule  # the prepared graph, fake-quant in place, in eval mode
    reference: torch.fx.GraphModule  # the same graph with fake-quant off: the fine-tuned network in fp32
    recipe: str
    input_size: int


def build_qat_graph(model: MobileFormer, recipe: str, input_size: int, batch: int = 2) -> torch.fx.GraphModule:
    """The prepared QAT graph of ``model`` (the same graph is rebuilt to load a checkpoint)."""
    return prepare(copy.deepcopy(model), get_recipe(recipe), example_input(model, input_size, batch), qat=True)


def drop_batchnorm_counters(gm: torch.fx.GraphModule) -> None:
    """Remove the ``num_batches_tracked += 1`` updates a training-mode export leaves behind.

    They have no users and do nothing in eval mode, but as in-place buffer updates they
    survive dead-code elimination and would run outside the delegate.
    """
    for node in list(gm.graph.nodes):
        if (node.op == "call_function" and node.target == torch.ops.aten.add_.Tensor and not node.users
                and str(getattr(node.args[0], "target", "")).endswith("num_batches_tracked")):
            gm.graph.erase_node(node)
    gm.recompile()


def _check_fields(path: str | Path, state: dict) -> None:
    """A file tagged as ours but lacking what loading it needs (cut by hand, or by another tool)."""
    config = state.get("config")
    fields = {"config": isinstance(config, dict), "model": isinstance(state.get("model"), dict),
              "recipe": isinstance(state.get("recipe"), str), "num_classes": isinstance(state.get("num_classes"), int),
              "config.model": isinstance(config, dict) and isinstance(config.get("model"), str),
              "config.input_size": isinstance(config, dict) and isinstance(config.get("input_size"), int)}
    bad = [name for name, ok in fields.items() if not ok]
    if bad:
        raise QATCheckpointError(f"{path} is tagged as a QAT checkpoint ({FORMAT}) but lacks or mistypes {', '.join(bad)}")


def load_qat_model(path: str | Path, expected_model: str | None = None) -> QATModel | None:
    """The model in a QAT checkpoint of ours, or None if ``path`` is some other checkpoint."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not ours: let the float loader give its precise error
        return None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return None
    _check_fields(path, state)
    cfg = state["config"]
    if expected_model and mf.get_config(expected_model).name != mf.get_config(cfg["model"]).name:
        raise QATCheckpointError(f"{path} is a QAT checkpoint of {cfg['model']}, not of {expected_model}")
    model = mf.create_model(cfg["model"], num_classes=state["num_classes"])
    graph = build_qat_graph(model, state["recipe"], cfg["input_size"])
    missing, unexpected = graph.load_state_dict(state["model"], strict=False)
    if missing or unexpected:
        raise QATCheckpointError(f"{path} does not fit the {state['recipe']} QAT graph of {cfg['model']} "
                                 f"({len(missing)} missing, {len(unexpected)} unexpected keys)")
    move_exported_model_to_eval(graph)
    drop_batchnorm_counters(graph)
    reference = copy.deepcopy(graph)
    reference.apply(disable_fake_quant)
    return QATModel(model.eval(), graph, reference, state["recipe"], cfg["input_size"])


def _rng_neutral(switch: Callable[[torch.fx.GraphModule], object]) -> Callable[[torch.fx.GraphModule], None]:
    """``switch`` without touching the global RNG.

    torchao's train/eval switches re-trace dropout and BatchNorm patterns on random example
    inputs; left alone, that would shift the RNG that dropout and augmentation draw from, and a
    resumed run (which switches at a different point) would no longer repeat the straight one.
    """
    def run(gm: torch.fx.GraphModule) -> None:
        with torch.random.fork_rng():
            switch(gm)

    return run


to_train, to_eval = _rng_neutral(move_exported_model_to_train), _rng_neutral(move_exported_model_to_eval)


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
            gm.apply(disable_observer)  # quantization ranges stay where they are
            frozen["observer"] = True

    return Hooks(set_train, to_eval, on_step,
                 lambda: {"recipe": recipe, "num_classes": num_classes, "init": init})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m quant.qat", description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter)
    defaults = TrainConfig(steps=300, lr=1e-4, warmup_steps=20, out="runs/qat")
    add_common_arguments(p, defaults)
    p.add_argument("--init", type=Path, help="fp32 checkpoint to start from (quant.train's final.pt, or the authors')")
    p.add_argument("--recipe", default="xnnpack", choices=sorted(RECIPES), help="quantization recipe to train for")
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
        ensure_writable_dir(cfg.out)  # before a minute of graph building, not after
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
    train(cfg, graph, teacher, hooks, train_set, held_out, args.resume, world, "qat")
    return 0


if __name__ == "__main__":
    sys.exit(main())
