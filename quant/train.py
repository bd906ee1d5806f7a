"""The training loop behind ``python -m quant.train`` (fp32) and ``python -m quant.qat`` (int8-aware).

One loop for both: AdamW with a linear warm-up into a cosine decay, optional knowledge
distillation from a frozen fp32 teacher, tqdm progress with loss and accuracy, atomic
checkpoints every N steps and at the end, and ``--resume`` that continues exactly
(weights, optimizer, scheduler, step, data order, RNG). Under ``torchrun`` it runs
data-parallel (gloo on CPU, nccl on GPU); only rank 0 writes.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from mobileformer.checkpoint import CheckpointError, check_finite, load_error_text

from .errors import ArgumentParser, UserError, check_at_least, check_input_size, command
from .data import eval_transform, load_dataset, train_transform, transform_config
from .files import OutputError, atomic_path, check_not_an_input, check_outputs, ensure_writable_dir

log = logging.getLogger("quant")


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in every checkpoint."""

    model: str = "mobile_former_26m"
    data: str = "digits"
    input_size: int = 64
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    label_smoothing: float = 0.0
    distill: bool = True  # knowledge distillation from the fp32 teacher (QAT)
    distill_alpha: float = 0.7
    distill_temperature: float = 2.0
    freeze_bn_step: int | None = None  # QAT: stop updating BatchNorm statistics from this step
    freeze_observer_step: int | None = None  # QAT: stop moving the quantization ranges from this step
    checkpoint_every: int = 200
    eval_every: int = 0  # 0: evaluate at the end only
    eval_images: int = 0  # 0: the whole held-out split
    seed: int = 0
    out: str = "runs/train"


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to zero at ``steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """``alpha * T^2 * KL(teacher || student) + (1 - alpha) * CE(labels)``."""
    t = cfg.distill_temperature
    kd = F.kl_div(F.log_softmax(student / t, -1), F.softmax(teacher / t, -1), reduction="batchmean") * t * t
    ce = F.cross_entropy(student, labels, label_smoothing=cfg.label_smoothing)
    return cfg.distill_alpha * kd + (1.0 - cfg.distill_alpha) * ce


# ---------------------------------------------------------------- distributed


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_world() -> World:
    """Join the process group when started by ``torchrun`` (gloo on CPU, nccl on CUDA)."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return World()
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    return World(dist.get_rank(), dist.get_world_size(), device)


def _all_reduce_sum(values: list[float], world: World) -> list[float]:
    if world.size == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=world.device)
    dist.all_reduce(t)
    return t.tolist()


# ---------------------------------------------------------------- data order


def epoch_order(n: int, epoch: int, seed: int, world: World) -> list[int]:
    """This rank's sample indices for ``epoch``: a seeded shuffle, split across ranks."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch)).tolist()
    per_rank = n // world.size
    return order[world.rank * per_rank : (world.rank + 1) * per_rank]


def batch_at(dataset, step: int, cfg: TrainConfig, world: World) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch of ``step``: a pure function of the step, so a resumed run sees the same data."""
    per_epoch = max(1, (len(dataset) // world.size) // cfg.batch_size)
    epoch, index = divmod(step, per_epoch)
    order = epoch_order(len(dataset), epoch, cfg.seed, world)
    items = [dataset[i] for i in order[index * cfg.batch_size : (index + 1) * cfg.batch_size]]
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


# ---------------------------------------------------------------- checkpoints


def rng_state() -> dict:
    """Every RNG the loop touches, in types ``torch.load(weights_only=True)`` accepts."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write atomically: a kill at any moment leaves the previous checkpoint intact."""
    with atomic_path(path) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as e:  # torch's writer reports a full disk as RuntimeError, not OSError
            raise OutputError(f"cannot write {path} (disk full?): {load_error_text(e)}") from None


def checkpoint_files(out: Path) -> list[Path]:
    """What a run writes in its ``--out``."""
    return [out / "last.pt", out / "final.pt"]


def check_run_outputs(out: Path, init: Path | None) -> None:
    """Before a run's long work: its checkpoints may be written, and none would replace its ``--init``
    (a checkpoint of an earlier run in ``--out`` is ours, so the ledger alone would let it go)."""
    targets = checkpoint_files(ensure_writable_dir(out))
    for target in targets if init else ():
        check_not_an_input(target, {init: "the --init checkpoint this run starts from"}, "--out's")
    check_outputs(targets)


class ResumeError(UserError):
    """A ``--resume`` checkpoint that is missing, corrupt, or from a different run."""


class DivergedError(UserError):
    """The loss or the weights stopped being finite numbers: nothing after this step is worth saving."""


def check_step(loss: torch.Tensor, step: int, world: World) -> None:
    """Stop at the first non-finite loss on any rank (ranks agree, so that none waits on the others)."""
    value = loss.item()
    if world.size > 1:
        value = _all_reduce_sum([value], world)[0]
    if not math.isfinite(value):
        raise DivergedError(f"training diverged at step {step} (loss {value}); the last good checkpoint is kept: "
                            "lower --lr or raise --warmup-steps")


def check_weights(model: nn.Module, step: int) -> None:
    """Before a checkpoint is written: NaN weights would overwrite the last good one. (Parameters only:
    a QAT graph's observers hold infinite ranges until they first see data.)"""
    try:
        check_finite(dict(model.named_parameters()), "the model")
    except CheckpointError:
        raise DivergedError(f"training diverged at step {step} (weights not finite); the last good checkpoint is "
                            "kept: lower --lr or raise --warmup-steps") from None


# Settings that may change on resume (everything else must match the interrupted run).
RESUMABLE = {"out", "checkpoint_every", "eval_every", "eval_images"}


def load_resume(path: Path, cfg: TrainConfig, kind: str, world: World, extra: dict | None = None) -> dict:
    """The checkpoint to continue from, checked: ours, of this ``kind``, made with the same settings
    (``cfg`` less :data:`RESUMABLE`, and ``extra``: the recipe, the --init, the class count), finite."""
    extra = extra or {}
    if not Path(path).is_file():
        raise ResumeError(f"resume checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=world.device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same error to the user
        raise ResumeError(f"cannot read resume checkpoint {path}: {load_error_text(e)}") from None
    if not isinstance(state, dict) or state.get("format") != f"mobileformer-{kind}/1":
        raise ResumeError(f"{path} is not a {kind} checkpoint of this tool")
    if not isinstance(state.get("config"), dict) or not isinstance(state.get("model"), dict):
        raise ResumeError(f"{path} lacks its config or model (cut or edited?)")
    theirs, ours = {**state["config"], **{k: state.get(k) for k in extra}}, {**asdict(cfg), **extra}
    changed = [k for k in ours if k not in RESUMABLE and theirs.get(k) != ours[k]]
    if changed:
        raise ResumeError(f"{path} was made with different settings: " +
                          ", ".join(f"{k}={theirs.get(k)!r} (now {ours[k]!r})" for k in changed))
    return state


def restore(state: dict, path: Path, model: nn.Module, optimizer, scheduler) -> int:
    """Load a checked ``--resume`` state into the run; its step. A hand-edited or partial one is an error."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        step = state["step"]
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
        raise ResumeError(f"{path} cannot be resumed (cut or edited?): {load_error_text(e)}") from None
    if not isinstance(step, int) or step < 0:
        raise ResumeError(f"{path} cannot be resumed: its step is {step!r}")
    try:
        check_finite(dict(model.named_parameters()), f"resume checkpoint {path}")
    except CheckpointError as e:
        raise ResumeError(str(e)) from None
    return step


def held_out_top1(model: Callable[[torch.Tensor], torch.Tensor], dataset, batch_size: int, limit: int = 0,
             world: World = World(), desc: str = "eval", progress: bool = True) -> float:
    """Top-1 accuracy on ``dataset`` (first ``limit`` images if given), summed over ranks."""
    n = min(len(dataset), limit) if limit else len(dataset)
    indices = list(range(world.rank, n, world.size))
    correct = 0
    with torch.no_grad():
        for start in tqdm(range(0, len(indices), batch_size), desc=desc, leave=False,
                          disable=not (world.main and progress)):
            items = [dataset[i] for i in indices[start : start + batch_size]]
            x = torch.stack([a for a, _ in items]).to(world.device)
            y = torch.tensor([b for _, b in items], device=world.device)
            correct += int((model(x).argmax(-1) == y).sum())
    total_correct, total = _all_reduce_sum([correct, len(indices)], world)
    return total_correct / max(1, total)


@dataclass
class Hooks:
    """What differs between fp32 training and QAT."""

    set_train: Callable[[nn.Module], None]
    set_eval: Callable[[nn.Module], None]
    on_step: Callable[[nn.Module, int], None]  # freezes
    checkpoint_extra: Callable[[], dict]


def datasets(cfg: TrainConfig, mean, std):
    tcfg = transform_config(cfg.data, cfg.input_size, mean=tuple(mean), std=tuple(std))
    train = load_dataset(cfg.data, "train", train_transform(tcfg))
    held_out = load_dataset(cfg.data, "val", eval_transform(tcfg))
    return train, held_out


def train(cfg: TrainConfig, model: nn.Module, teacher: nn.Module | None, hooks: Hooks, train_set, held_out,
          resume: Path | None, world: World, kind: str, progress: bool = True) -> dict:
    """Run (or continue) the loop; returns the final checkpoint payload (``progress``: tqdm bars on stderr)."""
    out = ensure_writable_dir(cfg.out) if world.main else Path(cfg.out)
    ckpt_path = out / "last.pt"
    model.to(world.device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(s, cfg) / cfg.lr)
    step = 0
    if resume is not None:
        state = load_resume(resume, cfg, kind, world, hooks.checkpoint_extra())
        step = restore(state, resume, model, optimizer, scheduler)
        if world.main:
            print(f"[{kind}] resumed from {resume} at step {step}/{cfg.steps}", flush=True)
    wrapped = nn.parallel.DistributedDataParallel(model) if world.size > 1 else model

    def payload() -> dict:
        return {"format": f"mobileformer-{kind}/1", "config": asdict(cfg), "step": step, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state(),
                **hooks.checkpoint_extra()}

    hooks.set_train(model)
    bar = tqdm(total=cfg.steps, initial=step, desc=kind, unit="step", disable=not (world.main and progress),
               dynamic_ncols=True)
    seen = correct = 0
    loss_ema = None
    while step < cfg.steps:
        hooks.on_step(model, step)
        x, y = batch_at(train_set, step, cfg, world)
        x, y = x.to(world.device), y.to(world.device)
        logits = wrapped(x)
        if teacher is not None:
            with torch.no_grad():
                teacher_logits = teacher(x)
            loss = distillation_loss(logits, teacher_logits, y, cfg)
        else:
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        check_step(loss, step + 1, world)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        step += 1
        seen += len(y)
        correct += int((logits.argmax(-1) == y).sum())
        loss_ema = loss.item() if loss_ema is None else 0.9 * loss_ema + 0.1 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{loss_ema:.3f}", acc=f"{100 * correct / max(1, seen):.1f}%", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
            hooks.set_eval(model)
            acc = held_out_top1(model, held_out, cfg.batch_size, cfg.eval_images, world, "eval", progress)
            hooks.set_train(model)
            if world.main:
                bar.write(f"[{kind}] step {step}: held-out top-1 {100 * acc:.2f}%")
        if step % cfg.checkpoint_every == 0 and step < cfg.steps:
            check_weights(model, step)  # on every rank (their weights are the same), so that all stop together
            if world.main:
                save_checkpoint(ckpt_path, payload())
    bar.close()
    check_weights(model, step)
    hooks.set_eval(model)
    final = payload()
    final["held_out_top1"] = held_out_top1(model, held_out, cfg.batch_size, cfg.eval_images, world, "final eval", progress)
    if world.main:
        save_checkpoint(ckpt_path, final)
        save_checkpoint(out / "final.pt", final)
        print(f"[{kind}] done: {step} steps, held-out top-1 {100 * final['held_out_top1']:.2f}% -> {out / 'final.pt'}",
              flush=True)
    return final


def add_common_arguments(p: argparse.ArgumentParser, defaults: TrainConfig) -> None:
    p.add_argument("--model", default=defaults.model, help="variant, e.g. mobile_former_26m")
    p.add_argument("--data", default=defaults.data,
                   help="class-per-folder directory (with train/ and val/ inside, or one split), 'digits' or 'fashion-mnist'")
    p.add_argument("--input-size", type=int, default=defaults.input_size)
    p.add_argument("--steps", type=int, default=defaults.steps)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help="per process")
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    p.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps)
    p.add_argument("--label-smoothing", type=float, default=defaults.label_smoothing)
    p.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    p.add_argument("--eval-every", type=int, default=defaults.eval_every, help="0: only at the end")
    p.add_argument("--eval-images", type=int, default=defaults.eval_images, help="0: the whole held-out split")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--out", default=defaults.out, help="run directory (last.pt, final.pt)")
    p.add_argument("--resume", type=Path, help="continue from this checkpoint (e.g. OUT/last.pt)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (the step reports still print)")


def config_from_args(args: argparse.Namespace, **extra) -> TrainConfig:
    fields = TrainConfig.__dataclass_fields__
    values = {k: v for k, v in vars(args).items() if k in fields}
    return TrainConfig(**{**values, **extra})


def check_config(cfg: TrainConfig) -> None:
    """Every setting in range, before any work (a bad one would fail, or train on nonsense, later)."""
    check_at_least(1, steps=cfg.steps, checkpoint_every=cfg.checkpoint_every)
    check_at_least(2, batch_size=cfg.batch_size)  # BatchNorm needs two values per channel to train
    check_at_least(0, warmup_steps=cfg.warmup_steps, eval_every=cfg.eval_every, eval_images=cfg.eval_images,
                   weight_decay=cfg.weight_decay, freeze_bn_step=cfg.freeze_bn_step,
                   freeze_observer_step=cfg.freeze_observer_step, seed=cfg.seed)
    if cfg.seed >= 2**32:
        raise UserError(f"--seed must be below 2**32, got {cfg.seed}")
    check_input_size(cfg.input_size)
    for name, value in (("lr", cfg.lr), ("distill-temperature", cfg.distill_temperature)):
        if not 0 < value < math.inf:  # NaN too
            raise UserError(f"--{name} must be a positive finite number, got {value}")
    if not math.isfinite(cfg.weight_decay):
        raise UserError(f"--weight-decay must be finite, got {cfg.weight_decay}")
    for name, value in (("label-smoothing", cfg.label_smoothing), ("distill-alpha", cfg.distill_alpha)):
        if not 0 <= value <= 1:
            raise UserError(f"--{name} must be between 0 and 1, got {value}")


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def float_hooks(num_classes: int, init: str | None) -> Hooks:
    return Hooks(lambda m: m.train(), lambda m: m.eval(), lambda m, step: None,
                 lambda: {"num_classes": num_classes, "init": init})


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m quant.train",
                       description="Train or fine-tune the fp32 Mobile-Former (the starting point for PTQ and QAT).")
    add_common_arguments(p, TrainConfig(out="runs/float"))
    p.add_argument("--init", type=Path, help="fp32 checkpoint to start from (default: the authors' initialisation)")
    return p


@command
def main(argv: list[str] | None = None) -> int:
    import mobileformer as mf

    args = build_parser().parse_args(argv)
    cfg = config_from_args(args, distill=False, out=args.out)
    check_config(cfg)
    world = init_world()
    if world.main:
        check_run_outputs(Path(cfg.out), args.init)
    seed_everything(cfg.seed)
    probe = mf.create_model(cfg.model)
    train_set, held_out = datasets(cfg, probe.cfg.mean, probe.cfg.std)
    model = mf.create_model(cfg.model, num_classes=len(train_set.classes), checkpoint=args.init)
    hooks = float_hooks(len(train_set.classes), str(args.init) if args.init else None)
    train(cfg, model, None, hooks, train_set, held_out, args.resume, world, "train", not args.no_progress)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
