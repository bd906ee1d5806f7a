"""The quant commands: quiet for their duration, nothing global changed by importing quant, and
arguments, outputs and inputs checked before the work."""
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_help_and_backend_imports_print_nothing_but_the_help():
    """torchao's missing CUDA kernels, torch's _pytree deprecation and coremltools' ten notes are gone
    while a command runs, where its backends are imported."""
    code = ("from quant.errors import command\n"
            "from quant.export import main as export\n"
            "@command\n"
            "def main(argv):\n"
            "    import coremltools, coremltools.models.ml_program.experimental.compute_plan_utils\n"
            "    from executorch.backends.apple.coreml.partition import CoreMLPartitioner\n"
            "    return export(['--help'])\n"
            "main(None)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0 and "usage: python -m quant.export" in done.stdout
    assert done.stderr == ""


def test_a_command_sets_its_filters_and_environment_for_its_duration_only(monkeypatch):
    import warnings

    from quant.errors import COMMAND_ENVIRONMENT, THIRD_PARTY_NOISE, command

    for name in COMMAND_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")  # the user's own setting wins
    filters, seen = list(warnings.filters), {}

    @command
    def main(argv):
        seen.update(env={k: os.environ.get(k) for k in COMMAND_ENVIRONMENT}, filters=len(warnings.filters),
                    loggers={n: len(logging.getLogger(n).filters) for n in THIRD_PARTY_NOISE})
        return 0

    assert main([]) == 0
    assert seen["env"] == {"TF_CPP_MIN_LOG_LEVEL": "3", "LITERT_TORCH_SHOW_PROGRESS": "n"}
    assert seen["filters"] > len(filters) and all(n >= 1 for n in seen["loggers"].values())
    assert warnings.filters == filters and "LITERT_TORCH_SHOW_PROGRESS" not in os.environ
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert all(not logging.getLogger(n).filters for n in THIRD_PARTY_NOISE)


@pytest.mark.parametrize("logger, message", [
    ("torchao", "Failed to load /x/torchao/_C_mxfp8.so: Could not load this library"),
    ("torch.utils._pytree", "<enum 'KernelPreference'> is an Enum subclass and is now natively supported by torch.compile"),
    ("coremltools", "Torch version 2.13.0 has not been tested with coremltools. You may run into unexpected errors."),
    ("coremltools", "Failed to load _MLModelProxy: No module named 'coremltools.libcoremlpython'"),
])
def test_only_the_known_noise_is_dropped(caplog, logger, message):
    from quant.errors import quiet_third_party

    with caplog.at_level(logging.WARNING), quiet_third_party():
        logging.getLogger(logger).warning(message)
        logging.getLogger(logger).warning("a real problem")  # anything else still shows
        logging.getLogger(f"{logger}.child").warning(message)  # and other loggers are not touched
    assert [(r.name, r.getMessage()) for r in caplog.records] == [(logger, "a real problem"), (f"{logger}.child", message)]


def test_quiet_third_party_nests_and_undoes():
    from quant.errors import THIRD_PARTY_NOISE, quiet_third_party

    with quiet_third_party():
        with quiet_third_party():
            assert all(len(logging.getLogger(name).filters) == 2 for name in THIRD_PARTY_NOISE)
        assert all(len(logging.getLogger(name).filters) == 1 for name in THIRD_PARTY_NOISE)
    assert all(not logging.getLogger(name).filters for name in THIRD_PARTY_NOISE)


def test_the_runtime_thread_pool_prints_nothing(tiny_exports, capfd):
    """ExecuTorch logs its CPU probing (five lines) and every resize of its thread pool to fd 2.
    The child runs as a command does, inside quiet_third_party (importing quant quiets nothing:
    torchao's import messages reach a library user's stderr)."""
    from quant.backends.xnnpack.runtime import set_threads

    code = ("import sys, torch\nfrom quant.errors import quiet_third_party\nwith quiet_third_party():\n"
            "    from quant.backends.xnnpack.runtime import Program\n"
            "    Program(sys.argv[1])(torch.zeros(1, 3, 64, 64))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    pte = tiny_exports / "mobile_former_tiny_xnnpack_int8.pte"
    done = subprocess.run([sys.executable, "-c", code, str(pte)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stderr == ""
    capfd.readouterr()
    set_threads(1)
    assert capfd.readouterr().err == ""


def test_third_party_warnings_are_dropped_by_message_and_category():
    import warnings

    from quant.errors import quiet_third_party

    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()  # not the test run's own filters
        warnings.filterwarnings("always")
        with quiet_third_party():
            warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ... instead.", FutureWarning)
            warnings.warn("Output Buffer not found. Tensor Debug Data will not be available.", UserWarning)
            warnings.warn("something else", FutureWarning)
            warnings.warn("Output Buffer not found. Tensor Debug Data will not be available.", FutureWarning)
    assert [str(w.message) for w in caught] == ["something else", "Output Buffer not found. Tensor Debug Data will not be available."]
