"""The guest script of ``quant.bench --arm64 X.tflite``, run on the host: its marker logic (on
x86 the marker syscall is answered ENOSYS, harmlessly) and its hwcap decoding."""
from __future__ import annotations

import ctypes

from quant.backends.tflite import guest as tflite_guest
from quant.backends.tflite.guest import INFERENCE_BEGIN, INFERENCE_END, PASS_BEGIN


def test_counted_inferences_lie_between_their_markers_after_the_warmup():
    events: list = []
    ticks = iter(range(100))
    samples = tflite_guest.counted_inferences(lambda: events.append("invoke"), lambda k, a: events.append((k, a)),
                                              lambda: next(ticks) / 1e3, warmup=2, iterations=3)
    counted = [(INFERENCE_BEGIN, i) if j == 0 else "invoke" if j == 1 else (INFERENCE_END, i)
               for i in range(3) for j in range(3)]
    assert events == ["invoke", "invoke", (PASS_BEGIN, tflite_guest.UNTRACED_PASS), *counted]
    assert samples == [1.0, 1.0, 1.0]  # one clock read before the begin marker, one after the end marker


def test_marker_syscall_is_harmless_on_a_real_kernel():
    mark = tflite_guest.marker(ctypes.CDLL(None, use_errno=True))
    assert mark(INFERENCE_BEGIN, 0) == -1 and ctypes.get_errno() == 38  # ENOSYS


def test_isa_features_follow_mfbench_names():
    a76_hwcap, max_hwcap, max_hwcap2 = 0x119FFB, 0xECFFFFFB, 0x77FFF  # what qemu 7.2 gives the guest
    assert tflite_guest.isa_features(a76_hwcap, 0) == ["dotprod", "fp16"]
    assert tflite_guest.isa_features(max_hwcap, max_hwcap2) == ["dotprod", "fp16", "i8mm", "bf16", "sve", "sve2"]
    assert tflite_guest.isa_features(1 << 9, 0) == []  # fp16 needs both FPHP and ASIMDHP
