"""quant.aarch64.cores: phone cores are named once, without qemu strings."""
from __future__ import annotations

import pytest

from quant.aarch64.cores import CORES, core


def test_cores_are_named_without_qemu_strings():
    assert {"cortex-a76", "armv9"} <= set(CORES)
    for name, spec in CORES.items():
        assert spec.name == name and "," not in name and "=" not in name
        assert spec.clock_ghz > 0
    assert core("armv9").qemu_cpu.startswith("max,") and "sme=off" in core("armv9").qemu_cpu
    with pytest.raises(KeyError, match="known: cortex-a76"):
        core("max")
