"""Int8 Mobile-Former: quantization recipes, QAT, export, benchmarks and reports."""
from __future__ import annotations

import importlib.metadata
import platform

from mobileformer.cli import HelpFormatter

from .cli import quiet_third_party

quiet_third_party()  # before any quant module imports torchao, executorch or coremltools

__all__ = ["HelpFormatter", "__version__", "versions"]

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
