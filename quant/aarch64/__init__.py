"""AArch64 phone cores without a phone: named cores, qemu-user with the counting plugin, and a cycle model.

Shared by the backends that run AArch64 code under emulation (the XNNPACK ``.pte`` runtime and
LiteRT's ``.tflite`` interpreter): :mod:`~quant.aarch64.cores` names the phone cores,
:mod:`~quant.aarch64.qemu` runs a guest under qemu with ``native/arm64/icount.c`` and reads
its log, :mod:`~quant.aarch64.cycles` turns the executed blocks into estimated cycles.
"""
