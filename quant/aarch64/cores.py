"""The phone cores we estimate for, as data: what qemu emulates, which llvm-mca model times it, at what clock.

A core is named once here and only its name appears in file names, results and
command lines; the qemu ``-cpu`` string stays inside this table.

Which llvm-mca model (LLVM 19, ``llvm-mca-19``; ``-mcpu=help`` lists the names, and the
resource names in its ``-resource-pressure`` view say which scheduling model a name uses):

- ``cortex-a76``: ``-mcpu=neoverse-n1``. LLVM's own ``cortex-a76`` entry reuses the 2015
  Cortex-A57 model (3-wide, resources ``A57Unit*``); Neoverse N1 is the Cortex-A76's server
  derivative (same pipeline: 4-wide decode, two 128-bit ASIMD pipes, two load/store pipes)
  and has its own model (``N1Unit*``), the most faithful one for an A76.
- ``armv9``: ``-mcpu=cortex-a710``, which LLVM 19 times with its Neoverse N2 model
  (``N2Unit*``): N2 is the Cortex-A710's server derivative, and the A710 is the first Armv9
  phone big core (i8mm, SVE2 at 128 bits, two 128-bit vector pipes, ``smmla`` on both).
- ``cortex-a75``, ``cortex-a73`` and ``cortex-a72``, for checking the model against published
  phone and Raspberry Pi latencies: LLVM 19 times all three with its Cortex-A57 model (the
  A72 is the A57's successor; LLVM gives the A73 and A75 no model of their own, and A57's is
  the one it assigns them). qemu 7.2 has neither, so the A75 runs as a ``cortex-a76`` guest
  (the same ARMv8.2 features, dotprod and fp16, hence the same XNNPACK kernels) and the A73 as
  a ``cortex-a72`` guest (both ARMv8.0).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Core:
    """A phone core: ``qemu_cpu`` is qemu's ``-cpu`` argument, ``mca_cpu`` llvm-mca's ``-mcpu``,
    ``clock_ghz`` the clock at which ``estimated_ms`` is stated, ``stands_for`` the devices it stands for."""

    name: str
    qemu_cpu: str
    mca_cpu: str
    clock_ghz: float
    stands_for: str


CORES: dict[str, Core] = {core.name: core for core in (
    Core("cortex-a76", "cortex-a76", "neoverse-n1", 2.42,
         "a 2019-class phone big core: Cortex-A76 at 2.42 GHz, the Snapdragon 855's performance "
         "cluster (Pixel 4, Galaxy S10); also the ISA of Cortex-A77/A78/X1 phones up to 2022"),
    Core("armv9", "max,sme=off,sve128=on", "cortex-a710", 2.5,
         "a 2022+ phone big core: Cortex-A710 at 2.5 GHz, the Snapdragon 8 Gen 1's performance cluster "
         "(Galaxy S22); i8mm and SVE2 at 128 bits like every phone big core since, no SME"),
    Core("cortex-a75", "cortex-a76", "cortex-a75", 2.0,
         "Cortex-A75 at 2.0 GHz, the Snapdragon 670's big cores (Pixel 3a): validation only"),
    Core("cortex-a73", "cortex-a72", "cortex-a73", 2.35,
         "Cortex-A73-class Kryo 280 at 2.35 GHz, the Snapdragon 835's big cores (Pixel 2): validation only"),
    Core("cortex-a72", "cortex-a72", "cortex-a72", 1.5,
         "Cortex-A72 at 1.5 GHz, the Raspberry Pi 4's BCM2711: validation only"),
)}
DEFAULT_CORE = "cortex-a76"


def core(name: str) -> Core:
    """The named core; KeyError names the known ones."""
    if name not in CORES:
        raise KeyError(f"unknown core {name!r}; known: {', '.join(CORES)}")
    return CORES[name]
