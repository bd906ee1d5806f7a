"""quant (its __init__): the versions every manifest records, and importing it changes nothing global."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("export", "bench", "evaluate", "report", "numerics", "qat", "train")


def _unchanged_by(imports: str, first: str = "") -> None:
    """Run ``first``, then check that ``imports`` leave warning filters, the environment and the noisy
    libraries' loggers as they were, and import none of torchao, executorch, coremltools, litert-torch."""
    state = "(list(warnings.filters), dict(os.environ), [logging.getLogger(n).filters for n in ('torchao', 'coremltools')])"
    code = (f"import logging, os, sys, warnings\n{first}\nbefore = {state}\n{imports}\n"
            f"assert before == {state}, 'changed'\n"
            "assert not {'torchao', 'executorch', 'coremltools', 'litert_torch'} & set(sys.modules), 'imported'\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_importing_quant_changes_nothing_global():
    """``import quant`` in a fresh interpreter: the interpreter's own warning filters, its environment."""
    _unchanged_by("import quant")


def test_importing_the_commands_changes_nothing_global():
    """Every command's module, after torch and numpy (which install warning filters of their own): their
    imports of torchao, executorch and coremltools wait for the command, which quiets them."""
    _unchanged_by("".join(f"import quant.{c}\n" for c in COMMANDS), first="import numpy, torch")


def test_versions_name_every_package_that_shapes_an_artifact():
    from quant import __version__, versions

    found = versions()
    assert found["mobileformer"] == __version__ and found["torch"] and found["executorch"] == "1.5.1"
    assert {"torchao", "coremltools", "numpy", "litert-torch", "ai-edge-litert", "python"} <= found.keys()
