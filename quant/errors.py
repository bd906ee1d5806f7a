"""What the ``python -m quant.X`` commands share: the project's error handling, and quiet imports.

Errors: :class:`UserError` and the :func:`command` wrapper of :mod:`mobileformer.cli`, re-used
as they are. Quiet: the libraries we build on print messages that are neither ours nor
actionable, and a user reads them as errors. As they are imported, they log optional CUDA
kernels a CPU wheel lacks, deprecations inside torchao, coremltools' untested-version and
macOS-only notes, and lowering warns of a deprecation inside torch: :func:`quiet_third_party`
drops exactly those, at the logger (or warning filter) that emits them. ExecuTorch's C++ runtime writes its thread pool's CPU probing straight to file
descriptor 2: :func:`native_logs_silenced` covers the two calls that do it. Every other
warning of these libraries, and all of our own output, stays.

All of it for a command's run only (:func:`command`, :func:`quiet_third_party`): importing
``quant`` changes no filter and no environment variable.
"""
from __future__ import annotations

import functools
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr

from mobileformer.cli import ArgumentParser, HelpFormatter, Main, UserError, check_at_least, check_input_size
from mobileformer.cli import command as _ending_with_one_error_line

__all__ = ["ArgumentParser", "HelpFormatter", "UserError", "check_at_least", "check_input_size", "command", "native_logs_silenced", "quiet_third_party"]

# logger -> message fragments (measured with torch 2.13, torchao 0.18, coremltools 9.0)
THIRD_PARTY_NOISE: dict[str, tuple[str, ...]] = {
    "torchao": ("Failed to load ",),  # torchao's CUDA-only extensions (_C_mxfp8, _C_cutlass_90a) on a CPU build
    "torch.utils._pytree": ("is an Enum subclass and is now natively supported",),  # torchao registering an Enum
    # its version notes, and the macOS-only prediction and compute-plan proxies (Core ML runs on the phone)
    "coremltools": ("has not been tested with coremltools", "scikit-learn version", "Failed to load _ML"),
}
# (message, category) of Python warnings that are not ours and not actionable
THIRD_PARTY_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    # torch's deprecation of its own LeafSpec, raised when torch or ExecuTorch deep-copies a graph in lowering
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
    # ExecuTorch's Inspector reading an ETDump without debug buffers (quant.bench reads only its timings)
    (r"Output Buffer not found\. Tensor Debug Data will not be available", UserWarning),
)
# Environment variables a command sets for its duration where the user has not set them: LiteRT's
# converter logs one C++ INFO line per folded op (read when TensorFlow is first imported), and
# litert-torch draws a progress tree of its passes (our own stage lines say what happens).
COMMAND_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "1", "LITERT_TORCH_SHOW_PROGRESS": "n"}


class _DropMessages(logging.Filter):
    def __init__(self, fragments: tuple[str, ...]) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


@contextmanager
def quiet_third_party() -> Iterator[None]:
    """Within it, :data:`THIRD_PARTY_NOISE` and :data:`THIRD_PARTY_WARNINGS` are dropped and
    :data:`COMMAND_ENVIRONMENT` is set; all as it was after. A logger's own filter sees only its own
    records, so each entry silences those messages and no other logger's."""
    filters = [(logging.getLogger(name), _DropMessages(fragments)) for name, fragments in THIRD_PARTY_NOISE.items()]
    unset = [name for name in COMMAND_ENVIRONMENT if name not in os.environ]
    try:
        for logger, drop in filters:
            logger.addFilter(drop)
        for name in unset:
            os.environ[name] = COMMAND_ENVIRONMENT[name]
        with warnings.catch_warnings():
            for message, category in THIRD_PARTY_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        for logger, drop in filters:
            logger.removeFilter(drop)
        for name in unset:
            os.environ.pop(name, None)


def command(main: Main) -> Main:
    """``mobileformer.cli.command`` (one ``error:`` line, exit 2), the command run :func:`quiet_third_party`."""

    @functools.wraps(main)
    def quiet(argv: list[str] | None = None) -> int:
        with quiet_third_party():
            return main(argv)

    return _ending_with_one_error_line(quiet)


@contextmanager
def native_logs_silenced() -> Iterator[None]:
    """Standard error to /dev/null for the duration, both file descriptor 2 and ``sys.stderr``
    (the pybindings route C++ logging through the latter): for native calls whose own logging is
    noise (ExecuTorch 1.5.1 creating or resizing its thread pool: ``[cpuinfo_utils.cpp:71]
    Reading file ...``, ``Resetting threadpool to 1 threads.``). Exceptions still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null, redirect_stderr(null):
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
