"""The one fence: the mechanism (pinned, scoped, speed or correctness, the switch), and no patch outside it."""
import ast
from pathlib import Path

import pytest

from quant import patches
from quant.patches import CORRECTNESS, SPEED, SWITCH, scoped_patches

ROOT = Path(__file__).resolve().parents[3]
FENCE = ROOT / "quant" / "patches"
OURS = {"quant", "mobileformer", "tests", "scripts"}
PATCHERS = {"patch", "object", "setattr", "patch_object"}  # mock.patch(...), mock.patch.object, setattr


class Owner:
    def method(self):
        return "stock"


def _wrap(original):
    return lambda self: "patched " + original(self)


@pytest.mark.parametrize("kind, switched_off, applied", [(SPEED, False, True), (SPEED, True, False),
                                                         (CORRECTNESS, False, True), (CORRECTNESS, True, True)])
def test_the_switch_turns_off_speed_patches_only(monkeypatch, capsys, kind, switched_off, applied):
    if switched_off:
        monkeypatch.setenv(SWITCH, "off")
    with scoped_patches([(Owner, "method", _wrap, kind)], {}) as done:
        assert done is applied and Owner().method() == ("patched stock" if applied else "stock")
    assert Owner().method() == "stock"


def test_the_switch_says_so_once(monkeypatch, capsys):
    monkeypatch.setenv(SWITCH, "off")
    patches._say_speed_patches_off.cache_clear()
    for _ in range(2):
        with scoped_patches([(Owner, "method", _wrap, SPEED)], {}):
            pass
    assert capsys.readouterr().err.count(f"{SWITCH}=off") == 1


def test_patches_run_on_the_pinned_versions_only_and_are_undone_on_error():
    with scoped_patches([(Owner, "method", _wrap, CORRECTNESS)], {"torch": "0.0.1"}) as done:
        assert not done and Owner().method() == "stock"
    with pytest.raises(RuntimeError), scoped_patches([(Owner, "method", _wrap, SPEED)], {}):
        assert Owner().method() == "patched stock"
        raise RuntimeError("failed")
    assert Owner().method() == "stock"


def _imported_names(tree: ast.AST) -> set[str]:
    """Names a file binds to another library's module or object (``import torch.fx as fx``, ``from x import y``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] not in OURS}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] not in OURS:
            names |= {a.asname or a.name for a in node.names}
    return names


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def patches_in(path: Path) -> list[str]:
    """Each assignment to another library's attribute, and each mock.patch/setattr, in ``path``."""
    tree = ast.parse(path.read_text())
    foreign = _imported_names(tree)
    found = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AugAssign, ast.AnnAssign)) else []
        for target in targets:
            if isinstance(target, ast.Attribute) and _root(target) in foreign:
                found.append(f"{path.name}:{node.lineno}: assigns {ast.unparse(target)}")
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            on_foreign = name == "setattr" and node.args and _root(node.args[0]) in foreign
            if on_foreign or (name in PATCHERS and name != "setattr" and "patch" in ast.unparse(func)):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(func)}(...)")
    return found


def test_no_patch_of_another_library_outside_the_fence():
    """Shipped code (quant/, mobileformer/, scripts/) patches other libraries in quant/patches/ only
    (the tests may instrument them)."""
    files = [p for d in ("quant", "mobileformer", "scripts") for p in sorted((ROOT / d).rglob("*.py"))
             if FENCE not in p.parents]
    assert len(files) > 40
    assert [hit for path in files for hit in patches_in(path)] == []


def test_the_fence_check_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from unittest import mock\nimport torch.fx as fx\n"
                      "from executorch.backends.xnnpack import xnnpack_preprocess\n"
                      "def f(original, graph):\n"
                      "    xnnpack_preprocess.serialize_xnnpack_binary = original\n"
                      "    fx.Graph.python_code = original\n"
                      "    setattr(fx, 'x', 1)\n"
                      "    graph.meta = {}\n"  # a value's own attribute: not a library's
                      "    setattr(graph, 'meta', {})\n"
                      "    return mock.patch.object(fx.Graph, 'python_code', original)\n")
    assert [hit.split(": ", 1)[1] for hit in patches_in(sample)] == [
        "assigns xnnpack_preprocess.serialize_xnnpack_binary", "assigns fx.Graph.python_code", "setattr(...)",
        "mock.patch.object(...)"]
