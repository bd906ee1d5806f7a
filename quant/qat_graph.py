"""The QAT graph: what ``quant.qat`` trains and ``quant.export --checkpoint`` loads back.

Kept apart from the training loop so that exporting a QAT checkpoint never imports it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

import mobileformer as mf
from mobileformer.checkpoint import check_finite
from mobileformer.model import MobileFormer

from .errors import UserError
from .recipes import example_input, get_recipe, prepare

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


def load_qat_model(path: str | Path, expected_model: str | None = None,
                   expected_recipe: str | None = None) -> QATModel | None:
    """The model in a QAT checkpoint of ours, or None if ``path`` is some other checkpoint.

    The variant and the recipe are checked before the graph is built (minutes for Core ML's
    quantizer), so that a checkpoint given to the wrong backend is refused at once.
    """
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
    if expected_recipe and state["recipe"] != expected_recipe:
        raise QATCheckpointError(f"{path} was trained for the {state['recipe']} recipe, not {expected_recipe}")
    model = mf.create_model(cfg["model"], num_classes=state["num_classes"])
    graph = build_qat_graph(model, state["recipe"], cfg["input_size"])
    from torchao.quantization.pt2e import disable_fake_quant, move_exported_model_to_eval

    try:
        missing, unexpected = graph.load_state_dict(state["model"], strict=False)
    except (RuntimeError, TypeError, ValueError) as e:  # mis-shaped or mistyped tensors: edited by hand
        raise QATCheckpointError(f"{path} does not fit the {state['recipe']} QAT graph of {cfg['model']}: "
                                 f"{str(e).strip().splitlines()[-1]}") from None
    if missing or unexpected:
        raise QATCheckpointError(f"{path} does not fit the {state['recipe']} QAT graph of {cfg['model']} "
                                 f"({len(missing)} missing, {len(unexpected)} unexpected keys)")
    check_finite(dict(graph.named_parameters()), f"QAT checkpoint {path}")
    move_exported_model_to_eval(graph)
    drop_batchnorm_counters(graph)
    reference = copy.deepcopy(graph)
    reference.apply(disable_fake_quant)
    return QATModel(model.eval(), graph, reference, state["recipe"], cfg["input_size"])
