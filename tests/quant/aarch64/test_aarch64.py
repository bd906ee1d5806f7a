"""quant.aarch64 (its __init__): importing the shared emulation package changes nothing global."""
from tests.quant.test_quant import _unchanged_by


def test_importing_the_aarch64_package_changes_nothing_global():
    """After torch and numpy (whose own warning filters come with quant.errors' import of them)."""
    _unchanged_by("import quant.aarch64.cores, quant.aarch64.qemu, quant.aarch64.cycles", first="import numpy, torch")
