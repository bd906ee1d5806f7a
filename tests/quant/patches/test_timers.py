"""quant.patches.timers: library steps and passes timed, what they wrap unchanged, undone on exit."""
from __future__ import annotations

import torch
from torch.fx.passes.infra.pass_base import PassBase, PassResult

from quant import timing
from quant.patches.timers import LIBRARY_PHASES, library_timers


class _Idle(PassBase):
    def call(self, graph_module):
        return PassResult(graph_module, False)


def test_library_passes_are_timed_and_unchanged():
    gm = torch.fx.symbolic_trace(torch.nn.ReLU())
    original = PassBase.__call__
    with timing.timed(True, libraries=()) as t:
        assert PassBase.__call__ is not original
        result = _Idle()(gm)
    assert PassBase.__call__ is original  # restored on exit
    assert result.graph_module is gm and result.modified is False
    assert any(p["path"][-1] == "pass _Idle" for p in t.to_json()["phases"])




def test_a_classmethod_stays_one_and_keeps_its_class():
    from executorch.exir.backend.backend_details import BackendDetails

    original = vars(BackendDetails)["preprocess_multimethod"]
    with timing.timed(True, libraries=("executorch",)):
        assert isinstance(vars(BackendDetails)["preprocess_multimethod"], classmethod)
        assert vars(BackendDetails)["preprocess_multimethod"] is not original
    assert vars(BackendDetails)["preprocess_multimethod"] is original


def test_steps_a_release_lacks_are_left_out():
    from quant.patches import timers

    assert timers._resolve("torch", "no_such_function") is None and timers._resolve("no_such_package", "x") is None
    assert all(module.split(".")[0] in {"torch", "executorch", "coremltools", "litert_torch"}
               for module, _, _ in LIBRARY_PHASES)
    with library_timers((), timing.phase) as applied:  # no package: nothing timed
        assert applied
