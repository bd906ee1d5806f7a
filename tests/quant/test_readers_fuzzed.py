"""Property-based tests (Hypothesis) of every reader of a user's file and of the option checks:
any input gives a result or one :class:`UserError` (one ``error:`` line), never a traceback.

Few examples each and no deadline, so that they stay in the everyday ``pytest -m "not slow"``.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mobileformer.cli import UserError
from quant import report
from quant.files import check_name
from quant.formats import apply_manifest, read_manifest, read_result
from tests.quant.test_report import _phone_result

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FEW = settings(FUZZ, max_examples=12)  # each example loads a model
MANY = settings(FUZZ, max_examples=300)  # JSON readers: a millisecond an example

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)


def _paths(obj, prefix=()):
    """Every (path, value) inside a JSON object."""
    yield prefix, obj
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield from _paths(value, prefix + (key,))


@st.composite
def mutated(draw, base: dict):
    """``base`` with one of its values (at any depth) replaced by any JSON value, or deleted."""
    obj = json.loads(json.dumps(base))
    paths = [p for p, _ in _paths(obj) if p]
    path = draw(st.sampled_from(paths))
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return obj


def _write(tmp_path: Path, name: str, obj) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj, allow_nan=True))
    return path


def _report_tables(results: list[dict]) -> None:
    """What quant.report computes from accepted results, less the chart."""
    report.summary_rows(results)
    report.block_rows(results)
    for r in results:
        if r["operators"]:
            report.op_type_totals(r)


@MANY
@given(obj=json_values | mutated(_phone_result()))
def test_latency_results(tmp_path, obj):
    try:
        result = read_result(_write(tmp_path, "r.json", obj))
    except UserError:
        return
    _report_tables([result])


@FUZZ
@given(raw=st.binary(max_size=200))
def test_latency_results_of_any_bytes(tmp_path, raw):
    (tmp_path / "r.json").write_bytes(raw)
    try:
        read_result(tmp_path / "r.json")
    except UserError:
        pass


def test_deeply_nested_json_is_an_error(tmp_path):
    (tmp_path / "r.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UserError):
        read_result(tmp_path / "r.json")
    with pytest.raises(UserError):
        read_manifest(tmp_path / "r.json")


MANIFEST = {"format": "mobileformer-manifest/1", "artifact": "m.pte", "model": "mobile_former_26m", "backend": "xnnpack",
            "precision": "int8", "num_classes": 10, "sha256": "0" * 64,
            "input": {"shape": [1, 3, 224, 224], "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]},
            "profiling": {"delegate_blocks": ["stem", "head"], "debug_handle_blocks": {"1": "stem"}}}


@MANY
@given(obj=json_values | mutated(MANIFEST), result=mutated(_phone_result()))
def test_manifests(tmp_path, obj, result):
    try:
        manifest = read_manifest(_write(tmp_path, "m.manifest.json", obj))
        checked = read_result(_write(tmp_path, "r.json", result))
    except UserError:
        return
    _report_tables([apply_manifest(checked, manifest)])


EVALUATE_RESULT = {"format": "mobileformer-evaluate/1", "target": "m.pte", "what": "x", "data": "digits", "images": 4,
                   "top1": 0.5, "correct": "1100"}


@MANY
@given(a=json_values | mutated(EVALUATE_RESULT), b=mutated(EVALUATE_RESULT))
def test_evaluate_results_and_their_comparison(tmp_path, a, b):
    from quant.evaluate import compare, read_top1 as read_evaluation

    try:
        compare(read_evaluation(_write(tmp_path, "a.json", a)), read_evaluation(_write(tmp_path, "b.json", b)))
    except UserError:
        pass


# ---------------------------------------------------------------- checkpoints

tensors = st.builds(
    lambda shape, dtype, fill: torch.full(shape, fill).to(dtype),
    st.lists(st.integers(0, 3), max_size=3), st.sampled_from([torch.float32, torch.float16, torch.int64, torch.bool]),
    st.sampled_from([0.0, 1.0, math.nan, math.inf]))
CLASSIFIER = "classifier.classifier.1.weight"


@FEW
@given(state=st.dictionaries(st.sampled_from([CLASSIFIER, "stem.0.weight", "model", "state_dict", "x"]),
                             tensors | json_values, max_size=4))
def test_float_checkpoints(tmp_path, tiny_model_factory, state):
    from mobileformer.checkpoint import checkpoint_num_classes, load_checkpoint

    torch.save(state, tmp_path / "c.pth")
    try:
        checkpoint_num_classes(tmp_path / "c.pth")
        load_checkpoint(tiny_model_factory(), tmp_path / "c.pth")
    except UserError:
        pass


@FEW
@given(config=mutated({"model": "mobile_former_tiny", "input_size": 64, "steps": 2, "lr": 0.001}),
       extra=st.dictionaries(st.sampled_from(["recipe", "num_classes", "model", "step"]), json_values, max_size=3))
def test_qat_checkpoint_fields(tmp_path, tiny_variant, config, extra):
    """A file tagged as our QAT checkpoint but cut or edited: refused before any graph is built
    (asked for another recipe than it holds, so that a well-formed one stops before building too)."""
    from quant.qat_graph import FORMAT, load_qat_model

    state = {"format": FORMAT, "config": config, "model": {}, "recipe": "xnnpack", "num_classes": 10, **extra}
    torch.save(state, tmp_path / "q.pt")
    try:
        load_qat_model(tmp_path / "q.pt", tiny_variant, "coreml")
    except UserError:
        pass


@FUZZ
@given(edit=mutated({"config": {"model": "m", "steps": 2, "lr": 0.001, "out": "x"}, "step": 1, "recipe": None}))
def test_resume_checkpoints(tmp_path, edit):
    from dataclasses import asdict

    from quant.train import TrainConfig, World, load_resume

    cfg = TrainConfig(model="m", steps=2, lr=0.001)
    state = {"format": "mobileformer-train/1", "model": {}, **edit}
    if isinstance(state.get("config"), dict):
        state["config"] = {**asdict(cfg), **state["config"]}
    torch.save(state, tmp_path / "last.pt")
    try:
        load_resume(tmp_path / "last.pt", cfg, "train", World(), {"recipe": None})
    except UserError:
        pass


# ---------------------------------------------------------------- image folders

image_files = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda mode, size: (mode, size), st.sampled_from(["L", "RGB", "RGBA", "I;16", "I", "F", "1", "P"]),
              st.tuples(st.integers(1, 12), st.integers(1, 12))))


@FUZZ
@given(files=st.dictionaries(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from([".png", ".jpg", ".tif", ".gif"]),
                                       st.integers(0, 3)), image_files, max_size=6))
def test_image_folders(tmp_path_factory, files):
    from quant.data import ImageFolder, eval_transform, transform_config

    root = tmp_path_factory.mktemp("images")
    for (label, suffix, index), content in files.items():
        path = root / label / f"{index}{suffix}"
        path.parent.mkdir(exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
            continue
        mode, size = content
        try:
            Image.new(mode, size, 7).save(path)
        except (OSError, ValueError, KeyError):  # a mode this format cannot hold
            path.write_bytes(b"")
    try:
        ds = ImageFolder(root, eval_transform(transform_config("dir", 32)))
        for i in range(len(ds)):
            x, _ = ds[i]
            assert x.shape == (3, 32, 32) and bool(torch.isfinite(x).all())
    except UserError:
        pass


# ---------------------------------------------------------------- options


@FUZZ
@given(name=st.text(max_size=300))
def test_names_stay_in_their_folder(tmp_path, name):
    try:
        check_name(name, suffix=".png")
    except UserError:
        return
    assert (tmp_path / name).parent == tmp_path and (tmp_path / name).name == name


numbers = st.integers(-2**40, 2**40) | st.floats()


@FUZZ
@given(values=st.fixed_dictionaries({}, optional={
    "steps": st.integers(-5, 2**40), "batch_size": st.integers(-5, 2**40), "lr": numbers, "weight_decay": numbers,
    "warmup_steps": st.integers(-5, 50), "label_smoothing": numbers, "distill_alpha": numbers,
    "distill_temperature": numbers, "freeze_bn_step": st.none() | st.integers(-5, 5), "seed": st.integers(-2**70, 2**70),
    "input_size": st.integers(-64, 4096), "checkpoint_every": st.integers(-5, 5)}))
def test_training_options(values):
    from quant.train import TrainConfig, check_config

    cfg = TrainConfig(**values)
    try:
        check_config(cfg)
    except UserError:
        return
    assert math.isfinite(cfg.lr) and cfg.lr > 0 and math.isfinite(cfg.weight_decay) and cfg.batch_size >= 2
    assert 0 <= cfg.seed < 2**32


@FUZZ
@given(backend=st.sampled_from(["xnnpack", "coreml", "tflite", "nope", ""]), precision=st.text(max_size=5) | st.just("int8"),
       recipe=st.none() | st.sampled_from(["xnnpack-stock", "coreml", "x"]), fmt=st.none() | st.sampled_from(["pte", "z"]),
       calib_images=st.integers(-3, 3), input_size=st.none() | st.integers(-64, 2048),
       num_classes=st.none() | st.integers(-3, 3), model=st.sampled_from(["mobile_former_26m", "26m", "nope"]))
def test_export_options(backend, precision, recipe, fmt, calib_images, input_size, num_classes, model):
    from quant.export import ExportConfig, _check_options

    cfg = ExportConfig(backend=backend, model=model, precision=precision, recipe=recipe, format=fmt,
                       calib_images=calib_images, input_size=input_size, num_classes=num_classes)
    try:
        _check_options(cfg)
    except UserError:
        pass


@FUZZ
@given(argv=st.lists(st.sampled_from(["--iterations", "--warmup", "--threads", "--name", "--cpu", "-1", "0", "nan",
                                      "x/y", "..", "3", "--arm64", "--no-verify"]), max_size=6))
def test_bench_options_are_refused_before_anything_runs(tmp_path, argv, capsys):
    """With an artifact that is missing, every option combination ends in exit 2 and one error line."""
    from quant.bench import main as bench_main

    try:
        code = bench_main([str(tmp_path / "missing.pte"), "--out", str(tmp_path / "out"), *argv])
    except SystemExit as e:  # argparse: its own usage line and "error:" line
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert "error: " in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any(p for p in (tmp_path / "out").iterdir())
