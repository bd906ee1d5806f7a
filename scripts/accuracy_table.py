"""The multi-seed accuracy table of docs/accuracy.md, from the runs of scripts/accuracy_seeds.sh.

Each RUN_DIR is one seed's scripts/accuracy.sh run; every figure is its exported artifact (the
RECIPE's backend: .pte, .mlpackage or .tflite) on the held-out images, p-values from the exact
McNemar test (quant.evaluate --compare). One table holds one program: every int8 result of every
run must carry the same recipe fingerprint (quant.recipes.Recipe.fingerprint, from its
quant.evaluate --json result or the manifest beside its artifact), or nothing is printed.
Prints markdown: mean (min to max) over the seeds, one row per seed, and what holds on every
seed; --json writes the results file (docs/results/accuracy_*.json) the docs render it from.
"""
from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import sys
from pathlib import Path

import torch

from quant.errors import ArgumentParser, UserError, command
from quant.evaluate import compare, read_top1
from quant.export import artifact_name
from quant.files import check_not_an_input, check_replaceable, ensure_writable_dir, write_json_atomic
from quant.formats import host_device, read_manifest
from quant.recipes import get_recipe

DATA = "fashion-mnist"
FORMAT = "mobileformer-accuracy/1"
LOSS_PT, RECOVERED = 1.0, 0.8  # the PTQ-loss case: PTQ loses at least 1 pt, QAT wins at least 80% of it back


def _names(model: str, recipe: str, ext: str) -> tuple[str, str]:
    """The fp32 and int8 file names (``ext``: ``top1.json``, ``manifest.json``) of ``recipe``'s artifacts."""
    chosen = get_recipe(recipe)
    backend = chosen.backend
    return (artifact_name(model, backend, "fp32", get_recipe(backend), ext, False),
            artifact_name(model, backend, "int8", chosen, ext, False))


def _optional(path: Path) -> dict | None:
    return read_top1(path) if path.is_file() else None


def _fingerprint(top1: Path, result: dict) -> dict:
    """The recipe fingerprint of a result: its own, else its artifact's manifest's."""
    fingerprint = result.get("recipe_fingerprint")
    manifest = top1.with_name(top1.name.removesuffix(".top1.json") + ".manifest.json")
    if fingerprint is None and manifest.is_file():
        fingerprint = read_manifest(manifest).get("recipe_fingerprint")
    if not isinstance(fingerprint, dict):
        raise UserError(f"{top1} has no recipe fingerprint, nor has {manifest.name} beside it: "
                        "export and evaluate it again with this version")
    return fingerprint


def differences(a: dict, b: dict) -> str:
    """What differs between two fingerprints (or settings): ``key a vs b``, for an error line."""
    return ", ".join(f"{k} {a.get(k)!r} vs {b.get(k)!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k))


def seed_row(run: Path, model: str, recipe: str, ptq_dir: str = "ptq") -> dict:
    """One run's figures and p-values; ``fingerprint``: the one recipe fingerprint of its int8 results
    (PTQ in ``ptq_dir``, PTQ calibrated on the data set's own images where there is one, QAT)."""
    fp32_name, int8 = _names(model, recipe, "top1.json")
    fp32 = read_top1(run / "ptq" / fp32_name)
    paths = {"PTQ": run / ptq_dir / int8, "own-data PTQ": run / f"ptq-{DATA}" / int8, "QAT": run / "qat-export" / int8}
    int8_results = {what: read_top1(path) if what != "own-data PTQ" else _optional(path) for what, path in paths.items()}
    fingerprints = {what: _fingerprint(paths[what], r) for what, r in int8_results.items() if r is not None}
    for what, fingerprint in fingerprints.items():
        if fingerprint != fingerprints["PTQ"]:
            raise UserError(f"{run}: its {what} ({paths[what].relative_to(run)}) and PTQ ({paths['PTQ'].relative_to(run)}) "
                            f"are different programs: {differences(fingerprints['PTQ'], fingerprint)}")
    ptq, own, qat = int8_results.values()
    loss = fp32["top1"] - ptq["top1"]
    gain = qat["top1"] - ptq["top1"]
    stock = _optional(run / "ptq" / artifact_name(model, "xnnpack", "int8", get_recipe("xnnpack-stock"), "top1.json", False))
    return {"run": run.name, "fingerprint": fingerprints["PTQ"], "fp32": fp32["top1"],
            # absent with STOCK=0 or another backend than XNNPACK, and where PTQ was calibrated on the data set itself
            "stock": stock and stock["top1"], "ptq_own": own and own["top1"],
            "ptq_own_delta": own and own["top1"] - fp32["top1"], "p_ptq_own": own and compare(fp32, own)["p_value"],
            "ptq": ptq["top1"], "ptq_delta": -loss, "p_ptq": compare(fp32, ptq)["p_value"], "qat": qat["top1"],
            "qat_gain": gain, "p_qat": compare(ptq, qat)["p_value"], "qat_delta": qat["top1"] - fp32["top1"],
            "p_qat_fp32": compare(qat, fp32)["p_value"], "recovered": gain / loss if loss > 0 else None,
            "evaluation": {"data": fp32["data"], "images": fp32["images"]}}


def _checkpoint_config(path: Path) -> dict | None:
    """The training config a checkpoint of quant.train or quant.qat records, or None without one."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is the same error line
        raise UserError(f"cannot read checkpoint {path}: {str(e).strip().splitlines()[0]}") from None
    config = state.get("config") if isinstance(state, dict) else None
    return config if isinstance(config, dict) else None


def seed_of(run: Path) -> int:
    """The run's seed: its folder's name ``seed<N>`` (scripts/accuracy_seeds.sh), else its fp32 training's."""
    named = re.fullmatch(r"seed(\d+)", run.name)
    if named:
        return int(named[1])
    config = _checkpoint_config(run / "float" / "final.pt") or {}
    if not isinstance(config.get("seed"), int):
        raise UserError(f"{run}: no seed in its name (seed<N>) nor in float/final.pt")
    return config["seed"]


def run_settings(run: Path, model: str, recipe: str, ptq_dir: str, qat_steps: int | None) -> dict:
    """What the run was made with, from its manifests and QAT checkpoint (``qat_steps``: the
    option, where the run has no qat/final.pt)."""
    _, int8 = _names(model, recipe, "manifest.json")
    ptq = read_manifest(run / ptq_dir / int8)
    own = run / f"ptq-{DATA}" / int8
    config = _checkpoint_config(run / "qat" / "final.pt")
    steps = config.get("steps") if config else qat_steps
    if config and qat_steps not in (None, steps):
        raise UserError(f"{run}/qat/final.pt ran {steps} QAT steps, not --qat-steps {qat_steps}")
    return {"input_size": ptq["input"]["shape"][-1], "qat_steps": steps, "calibration": ptq.get("calibration"),
            "own_calibration": read_manifest(own).get("calibration") if own.is_file() else None}


def _one(what: str, runs: list[Path], values: list[dict]) -> dict:
    """The value every run shares, or one error line naming the first run that differs and how."""
    for run, value in zip(runs, values):
        if value != values[0]:
            raise UserError(f"{runs[0]} and {run} have different {what}: {differences(values[0], value)}; "
                            "one table holds one")
    return values[0]


def results(model: str, recipe: str, runs: list[Path], ptq_dir: str = "ptq", qat_steps: int | None = None) -> dict:
    """The results file of ``runs`` (format ``mobileformer-accuracy/1``): everything
    :func:`render_results` shows; ``machine`` is where it is made (where the seeds ran, with accuracy_seeds.sh)."""
    rows = [seed_row(run, model, recipe, ptq_dir) for run in runs]
    fingerprint = _one("recipe fingerprints", runs, [r.pop("fingerprint") for r in rows])
    settings = _one("settings", runs, [{**run_settings(run, model, recipe, ptq_dir, qat_steps), "evaluation": r.pop("evaluation")}
                                       for run, r in zip(runs, rows)])
    return {"kind": "accuracy", "format": FORMAT, "model": model, "recipe": recipe, "fingerprint": fingerprint,
            "date": dt.datetime.now(dt.timezone.utc).date().isoformat(), "machine": host_device(), "settings": settings,
            "seeds": [{"seed": seed_of(run), **row} for run, row in zip(runs, rows)]}


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def pt(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.2f} pt"


def share(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def _calibration(c: dict | None) -> str:
    return "—" if not c else f"{c['images']} {c['data']}"


def _columns(settings: dict) -> list[tuple[str, str, object, str | None, bool]]:
    """(header, key, format, key of its p-value, in the summary) of every column."""
    own, other = _calibration(settings.get("own_calibration")), _calibration(settings["calibration"])
    return [("fp32", "fp32", pct, None, True), ("PTQ, stock", "stock", pct, None, False),
            (f"PTQ, calibrated on {own} images", "ptq_own", pct, None, True),
            ("PTQ on own data − fp32", "ptq_own_delta", pt, "p_ptq_own", False),
            (f"PTQ, calibrated on {other} images", "ptq", pct, None, True), ("PTQ − fp32", "ptq_delta", pt, "p_ptq", False),
            (f"QAT ({settings['qat_steps']:,} steps)" if settings["qat_steps"] else "QAT", "qat", pct, None, True),
            ("QAT − PTQ", "qat_gain", pt, "p_qat", True), ("QAT − fp32", "qat_delta", pt, "p_qat_fp32", False),
            ("recovered by QAT", "recovered", share, None, True)]


def _spread(values: list, fmt) -> str:
    present = [v for v in values if v is not None]  # recovery means nothing where PTQ lost nothing
    if not present:
        return "—"
    return f"{fmt(statistics.mean(present))} ({fmt(min(present))} to {fmt(max(present))})"


def _markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|---" * len(header) + "|", *("| " + " | ".join(r) + " |" for r in rows)]


def render_results(data: dict) -> str:
    """The markdown the docs quote, from a results file (:func:`results`) alone: a summary over the
    seeds, one row per seed with McNemar p-values, and :func:`verdict`."""
    seeds, s = data["seeds"], data["settings"]
    columns = [c for c in _columns(s) if c[1] == "recovered" or any(r[c[1]] is not None for r in seeds)]  # no empty ones
    n = len(seeds)
    evaluation = s["evaluation"]
    caption = (f"{data['model']}, recipe `{data['recipe']}` at {s['input_size']}x{s['input_size']}: top-1 on "
               f"{evaluation['images']:,} held-out {evaluation['data']} images, each int8 figure from the exported "
               f"artifact; {n} seeds, {data['date']}, {data['machine']['cpu']} ({data['machine']['cores']} cores)")
    summary = _markdown([f"mean (min to max) over {n} seeds", *(h for h, *_, main in columns if main)],
                        [["all seeds", *(_spread([r[key] for r in seeds], fmt) for _, key, fmt, _, main in columns if main)]])
    per_seed = _markdown(["seed", *(h for h, *_ in columns)],
                         [[str(r["seed"]), *(fmt(r[key]) + (f" (p = {r[p]:.2g})" if p and r[p] is not None else "")
                                             for _, key, fmt, p, _ in columns)] for r in seeds])
    return "\n".join([caption, "", *summary, "", *per_seed, "", verdict(seeds)])


def verdict(rows: list[dict]) -> str:
    """What holds on every seed: does PTQ lose at least 1 pt, does QAT win at least 80% of it back (issues 18, 36)?"""
    n = len(rows)
    lose = sum(round(-100 * r["ptq_delta"], 9) >= LOSS_PT for r in rows)
    recover = sum(r["recovered"] is not None and round(r["recovered"], 9) >= RECOVERED for r in rows)
    mean = -100 * statistics.mean(r["ptq_delta"] for r in rows)
    return (f"PTQ loses at least {LOSS_PT:g} pt on {lose} of {n} seeds (mean {mean:.2f} pt, "
            f"least {-100 * max(r['ptq_delta'] for r in rows):.2f} pt); "
            f"QAT recovers at least {RECOVERED:.0%} of the loss on {recover} of {n}.")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python scripts/accuracy_table.py", description=__doc__.split("\n\n")[0],
                       epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("model", metavar="MODEL", help="variant, e.g. mobile_former_26m")
    p.add_argument("recipe", metavar="RECIPE", help="the int8 recipe of the PTQ and QAT rows, e.g. xnnpack")
    p.add_argument("runs", metavar="RUN_DIR", nargs="+", type=Path, help="one scripts/accuracy.sh run per seed")
    p.add_argument("--ptq-dir", default="ptq", help="the folder of each run holding the PTQ int8 row's artifact "
                   "(e.g. ptq-digits-4, another calibration); fp32 stays in ptq/")
    p.add_argument("--qat-steps", type=int, help="QAT steps, for runs without qat/final.pt (which records them)")
    p.add_argument("--json", type=Path, help="also write the results file here (docs/results/accuracy_*.json)")
    return p


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.json:  # before the work, not after; never a file of the runs (ours, so the ledger would let it go)
        read = {path: "a file of the runs read" for run in args.runs for path in run.rglob("*") if path.is_file()}
        check_not_an_input(args.json, read, "--json")
        ensure_writable_dir(args.json.parent)
        check_replaceable(args.json, is_dir=False)
    data = results(args.model, args.recipe, args.runs, args.ptq_dir, args.qat_steps)
    if args.json:
        if data["settings"]["qat_steps"] is None:
            raise UserError(f"{args.runs[0]} has no qat/final.pt to say how many steps QAT ran: give --qat-steps")
        write_json_atomic(args.json, data)
    print(render_results(data))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
