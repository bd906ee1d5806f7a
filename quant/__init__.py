"""Int8 Mobile-Former: quantization recipes, QAT, export, benchmarks and reports.

Importing it changes nothing global (no warning filter, logger or environment variable): the
commands quiet other libraries for their own run (:func:`quant.errors.command`).
"""
from __future__ import annotations

import importlib.metadata
import platform

__all__ = ["__version__", "versions"]

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
