"""``fast_lowering`` skips work, never changes the program; the edge check still runs, once."""
import contextlib
import operator

import pytest
import torch
import torch.fx.traceback as fx_traceback
from executorch.backends.transforms.remove_clone_ops import RemoveCloneOpsTransform
from executorch.exir import to_edge, to_edge_transform_and_lower
from executorch.exir.dialects.edge._ops import EdgeOpOverload
from executorch.exir.pass_base import ExportPass
from torch._export.verifier import SpecViolationError

from quant.lowering import edge_compile_config, fast_lowering, verify_edge_program
from quant.partition import xnnpack_partitioner
from quant.recipes import calibrate, convert, example_input, get_recipe, prepare


def _program(model, precision: str) -> torch.export.ExportedProgram:
    graph, _ = model, torch.manual_seed(0)  # the same calibration, so the same program, every time
    if precision == "int8":
        graph = prepare(model, get_recipe("xnnpack"), example_input(model))
        calibrate(graph, [torch.randn(1, 3, 64, 64) for _ in range(2)], progress=False)
        graph = convert(graph)
    return torch.export.export(graph, (example_input(model),))


def _lower(program, fast: bool) -> tuple[bytes, int]:
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
                                               partitioner=[xnnpack_partitioner(stock=True)],
                                               **({"compile_config": edge_compile_config()} if fast else {}))
            return edge.to_executorch().buffer, retraces


# fp32 keeps its BatchNorms for XNNPACK to fuse: a pattern pass that does find work.
@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_same_program_with_fewer_retraces(tiny_model_factory, precision):
    model = tiny_model_factory()
    stock_bytes, stock_retraces = _lower(_program(model, precision), fast=False)
    fast_bytes, fast_retraces = _lower(_program(model, precision), fast=True)
    assert fast_bytes == stock_bytes
    assert fast_retraces < stock_retraces


def test_patches_are_undone_on_error():
    init, call = fx_traceback.NodeSource.__init__, ExportPass.call
    with pytest.raises(RuntimeError), fast_lowering():
        assert fx_traceback.NodeSource.__init__ is not init and ExportPass.call is not call
        raise RuntimeError("lowering failed")
    assert fx_traceback.NodeSource.__init__ is init and ExportPass.call is call


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
