"""Int8 Mobile-Former: quantization recipes, QAT, export, benchmarks and reports."""
from __future__ import annotations

import argparse
import importlib.metadata
import platform

__version__ = "0.1.0"


def versions() -> dict[str, str | None]:
    """Versions of everything that shapes an artifact, for manifests and result files."""
    out: dict[str, str | None] = {"mobileformer": __version__, "python": platform.python_version()}
    for package in ("torch", "executorch", "torchao", "coremltools", "numpy", "litert-torch", "ai-edge-litert"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = None
    return out


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, except where there is none to show
    (``None``/``False``) or the help text already says what it is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        if not action.help and action.option_strings:
            return "(default: %(default)s)"
        return super()._get_help_string(action)
