"""``fast_lowering`` skips work, never changes the program; the edge check still runs, once."""
import collections
import contextlib
import operator

import pytest
import torch
import torch.fx.traceback as fx_traceback
from executorch.backends.apple.coreml.quantizer import _coreml_quantizer_utils as coreml_patterns
from executorch.backends.transforms.remove_clone_ops import RemoveCloneOpsTransform
from executorch.backends.xnnpack._passes import DimOrderOpsRevertPass
from executorch.exir import to_edge, to_edge_transform_and_lower
from executorch.exir.dialects.edge._ops import EdgeOpOverload
from executorch.exir.pass_base import ExportPass
from torch._export.verifier import SpecViolationError
from torch.fx.passes.utils.matcher_with_name_node_map_utils import _split_to_graph_and_name_node_map

from quant.backends.xnnpack import edge_compile_config, verify_edge_program
from quant.patches import executorch as lowering
from quant.patches.executorch import fast_lowering, fast_pattern_annotation
from quant.patches import SWITCH
from quant.backends.xnnpack.partition import xnnpack_partitioner
from quant.recipes import calibrate, convert, example_input, get_recipe, prepare


def _program(model, precision: str) -> torch.export.ExportedProgram:
    graph, _ = model, torch.manual_seed(0)  # the same calibration, so the same program, every time
    if precision == "int8":
        graph = prepare(model, get_recipe("xnnpack"), example_input(model))
        calibrate(graph, [torch.randn_like(example_input(model)) for _ in range(2)], progress=False)
        graph = convert(graph)
    return torch.export.export(graph, (example_input(model),))


def _partitioner(kind: str, model):
    """A fresh partitioner of each kind an export uses: stock, ours (int8 bmm), ours split by paper block."""
    return xnnpack_partitioner(stock=kind == "stock", block_of=model.paper_block if kind == "blocks" else None)


def _lower(program, fast: bool, partitioner=None) -> tuple[bytes, int]:
    """The .pte bytes, and how many times a pass re-traced the whole graph."""
    retraces = 0
    retrace = ExportPass.call

    def counting(self, graph_module):
        nonlocal retraces
        retraces += 1
        return retrace(self, graph_module)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ExportPass, "call", counting)
        with fast_lowering() if fast else contextlib.nullcontext():
            edge = to_edge_transform_and_lower(program, transform_passes=[RemoveCloneOpsTransform()],
                                               partitioner=[partitioner or xnnpack_partitioner(stock=True)],
                                               **({"compile_config": edge_compile_config()} if fast else {}))
            return edge.to_executorch().buffer, retraces


# fp32 keeps its BatchNorms for XNNPACK to fuse: a pattern pass that does find work. An int8
# lowering of the tiny variant takes minutes without fast_lowering, so int8 is lowered twice:
# stock, and the export's heaviest kind (one delegate per paper block, which is our partitioner
# split by block) on 26m's structure in small (grouped convs and channel shuffles).
@pytest.mark.slow
@pytest.mark.parametrize(("precision", "kind"), [("fp32", "stock"), ("fp32", "ours"), ("fp32", "blocks"),
                                                 ("int8", "stock"), ("int8", "blocks")])
def test_same_program_with_fewer_retraces(tiny_model_factory, precision, kind):
    model = tiny_model_factory(grouped=precision == "int8" and kind == "blocks")
    stock_bytes, stock_retraces = _lower(_program(model, precision), fast=False, partitioner=_partitioner(kind, model))
    fast_bytes, fast_retraces = _lower(_program(model, precision), fast=True, partitioner=_partitioner(kind, model))
    assert fast_bytes == stock_bytes
    assert fast_retraces < stock_retraces


@pytest.mark.slow
def test_quantize_ops_come_from_the_fake_tensor_cache_as_a_full_run_gives_them(tiny_model_factory, monkeypatch):
    """Every re-trace's quantize/dequantize node is answered by the cache (none is turned away as
    "non-builtin"), and PyTorch's cross-check compares each cached answer with a full run of the op
    (it raises on any difference)."""
    from torch._dynamo import config as dynamo_config
    from torch._subclasses.fake_tensor import FakeTensorMode

    program = _program(tiny_model_factory(), "int8")
    monkeypatch.setattr(FakeTensorMode, "cache", {})  # the capture's entries, made without the patch, turn ops away
    monkeypatch.setattr(FakeTensorMode, "cache_bypasses", collections.defaultdict(int))
    monkeypatch.setattr(FakeTensorMode, "cache_hits", 0)
    with dynamo_config.patch(fake_tensor_cache_crosscheck_enabled=True):
        _lower(program, fast=True)
    assert FakeTensorMode.cache_bypasses["non-builtin"] == 0
    assert FakeTensorMode.cache_hits > 0


def test_cached_quantize_ops_are_the_int8_graphs_and_alias_nothing():
    assert {op.name() for op in lowering.CACHED_QUANTIZE_OPS} == {
        f"quantized_decomposed::{op}_per_{kind}" for op in ("quantize", "dequantize") for kind in ("tensor", "channel")}
    assert not any(op.is_view or op._schema.is_mutable for op in lowering.CACHED_QUANTIZE_OPS)


class _ChannelsLastSin(torch.nn.Module):
    def forward(self, x):
        return (x.to(memory_format=torch.channels_last) + 1).sin()


@pytest.mark.slow
@pytest.mark.parametrize("listed", [False, True])
def test_a_pass_that_works_per_node_is_never_skipped(monkeypatch, listed):
    """``DimOrderOpsRevertPass`` works in ``call_operator``: skipping its re-trace leaves a dim-order copy
    that XNNPACK rejects. It runs even if someone lists it among the pattern passes."""
    if listed:
        monkeypatch.setattr(lowering, "PATTERN_PASSES", (*lowering.PATTERN_PASSES, DimOrderOpsRevertPass))
    assert not lowering.retrace_is_idle(DimOrderOpsRevertPass)
    assert all(lowering.retrace_is_idle(cls) for cls in lowering.PATTERN_PASSES if cls is not DimOrderOpsRevertPass)
    def program():
        return torch.export.export(_ChannelsLastSin(), (torch.randn(1, 3, 8, 8),))

    assert _lower(program(), fast=True)[0] == _lower(program(), fast=False)[0]


def test_patches_only_on_the_pinned_releases_unless_switched_off(monkeypatch):
    call = ExportPass.call
    with fast_lowering() as applied:
        assert applied and ExportPass.call is not call
    monkeypatch.setenv(SWITCH, "off")
    with fast_lowering() as applied:
        assert not applied and ExportPass.call is call
    monkeypatch.delenv(SWITCH)
    monkeypatch.setattr(lowering, "PINNED", {**lowering.PINNED, "executorch": "0.0.1"})
    with fast_lowering() as applied:
        assert not applied and ExportPass.call is call


def test_patches_are_undone_on_error():
    init, call = fx_traceback.NodeSource.__init__, ExportPass.call
    with pytest.raises(RuntimeError), fast_lowering():
        assert fx_traceback.NodeSource.__init__ is not init and ExportPass.call is not call
        raise RuntimeError("lowering failed")
    assert fx_traceback.NodeSource.__init__ is init and ExportPass.call is call


@pytest.mark.slow
def test_edge_check_runs_once_and_catches_a_bad_op(tiny_model_factory):
    model = tiny_model_factory()
    config = edge_compile_config()
    edge = to_edge(_program(model, "int8"), compile_config=config).exported_program()
    verify_edge_program(edge, config)  # a valid program passes
    node = next(n for n in edge.graph.nodes if isinstance(n.target, EdgeOpOverload) and "add" in str(n.target))
    node.target = node.target._op  # the plain ATen op: not edge dialect
    with pytest.raises(SpecViolationError, match="not an Edge operator"):
        verify_edge_program({"forward": edge}, config)


class _AddOne(torch.nn.Module):
    def forward(self, x):
        return x + 1


def test_a_changed_graph_gets_new_code():
    graph_module = torch.fx.symbolic_trace(_AddOne())
    with fast_lowering():
        graph_module.recompile()
        assert graph_module(torch.tensor(3.0)) == 4.0
        add = next(n for n in graph_module.graph.nodes if n.op == "call_function")
        add.target = operator.mul
        graph_module.recompile()
        assert graph_module(torch.tensor(3.0)) == 3.0


def _prepared(model, qat: bool) -> tuple[str, list[str], dict, int]:
    """The Core ML recipe's prepared graph (code, modules, buffers), and how many strict exports it took."""
    strict, export = 0, torch.export.export

    def counting(*args, **kwargs):
        nonlocal strict
        strict += bool(kwargs.get("strict"))
        return export(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.export, "export", counting)
        example = example_input(model, batch=2 if qat else 1)
        graph = prepare(model, get_recipe("coreml"), example, qat=qat)
    modules = [f"{name}: {module!r}" for name, module in graph.named_modules()]
    return graph.code, modules, graph.state_dict(), strict


# The Core ML quantizer's 405 strict pattern exports take about 50 s, patched or not the model is tiny.
@pytest.mark.slow
@pytest.mark.parametrize("qat", [False, True])
def test_coreml_prepare_is_the_same_graph_without_strict_pattern_exports(tiny_model_factory, monkeypatch, qat):
    model = tiny_model_factory()
    code, modules, buffers, strict = _prepared(model, qat)
    monkeypatch.setenv(SWITCH, "off")
    stock_code, stock_modules, stock_buffers, stock_strict = _prepared(model, qat)
    assert (code, modules) == (stock_code, stock_modules)
    assert buffers.keys() == stock_buffers.keys()
    assert all(torch.equal(buffers[k], stock_buffers[k]) for k in buffers)
    assert stock_strict - strict == 405  # the Core ML quantizer's patterns (QAT's conv-bn fusion stays strict)


@pytest.mark.parametrize("pattern", [
    lambda: coreml_patterns.get_conv_bn_pattern(2, torch.nn.functional.relu, True),
    lambda: coreml_patterns.get_conv_pattern(2, torch.nn.functional.hardsigmoid, False),
    lambda: coreml_patterns.get_linear_pattern(torch.nn.functional.gelu, False),
    lambda: coreml_patterns.get_binary_op_act_pattern(torch.add, torch.nn.functional.hardtanh, True),
])
def test_a_pattern_exported_non_strict_is_the_same_graph(pattern):
    def described(graph_module):
        graph_module, names = _split_to_graph_and_name_node_map(graph_module)
        nodes = [(n.name, n.op, str(n.target), str(n.args), str(n.kwargs)) for n in graph_module.graph.nodes]
        return graph_module.code, str(graph_module._out_spec), {k: v.name for k, v in names.items()}, nodes

    with fast_pattern_annotation() as applied:
        fast = described(pattern())
    assert applied
    assert fast == described(pattern())


def _dead_end() -> torch.fx.GraphModule:
    graph_module = torch.fx.symbolic_trace(_AddOne())
    x = next(n for n in graph_module.graph.nodes if n.op == "placeholder")
    with graph_module.graph.inserting_after(x):
        graph_module.graph.call_function(operator.neg, (x,))  # nobody uses it
    return graph_module


def test_dead_code_is_eliminated_once_until_the_graph_changes(monkeypatch):
    graph_module = _dead_end()
    lints = 0
    lint = torch.fx.Graph.lint

    def counting(self):
        nonlocal lints
        lints += 1
        return lint(self)

    monkeypatch.setattr(torch.fx.Graph, "lint", counting)
    with fast_pattern_annotation():
        assert graph_module.graph.eliminate_dead_code()
        assert not graph_module.graph.eliminate_dead_code()
        assert lints == 1  # the second call ran nothing
        x = next(n for n in graph_module.graph.nodes if n.op == "placeholder")
        with graph_module.graph.inserting_after(x):
            graph_module.graph.call_function(operator.neg, (x,))
        assert graph_module.graph.eliminate_dead_code()
        assert lints == 2
    assert not any(n.target is operator.neg for n in graph_module.graph.nodes)
