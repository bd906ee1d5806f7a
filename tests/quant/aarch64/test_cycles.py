"""quant.aarch64.cycles: blocks timed by llvm-mca, cached, and laid on the plugin's log.

Needs llvm-mc-19 and llvm-mca-19 (scripts/debian-packages.txt); each llvm-mca run takes well
under a second on these few blocks.
"""
from __future__ import annotations

import shutil

import pytest

from quant.aarch64 import cycles
from quant.aarch64.cores import core
from quant.aarch64.qemu import GuestLog

pytestmark = pytest.mark.skipif(shutil.which("llvm-mca-19") is None, reason="llvm-19 not installed")

# Instruction words as qemu logs them (bytes in memory order).
FMUL_INDEPENDENT = "20dc226e" + "23dc226e"  # fmul v0 <- v1*v2; fmul v3 <- v1*v2
FMUL_CHAIN = "00dc226e" * 2  # fmul v0 <- v0*v2, twice: each waits for the other
NOP = "1f2003d5"
UNDECODABLE = "ffffffff"


def test_dependent_multiplies_cost_their_latency_independent_ones_their_throughput(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILEFORMER_CACHE", str(tmp_path))
    timed = cycles.cycles_per_block({FMUL_INDEPENDENT, FMUL_CHAIN}, core("cortex-a76"))
    assert timed[FMUL_INDEPENDENT] <= 1.5  # two 128-bit FP pipes on an A76 (Neoverse N1 model)
    assert timed[FMUL_CHAIN] >= 5  # two multiply latencies (3 cycles each on N1)


def test_undecodable_words_cost_one_cycle_each(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILEFORMER_CACHE", str(tmp_path))
    timed = cycles.cycles_per_block({NOP + UNDECODABLE, UNDECODABLE}, core("armv9"))
    assert timed[UNDECODABLE] == 1.0
    assert 1.0 <= timed[NOP + UNDECODABLE] <= 1.5


def test_block_timings_are_cached_per_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILEFORMER_CACHE", str(tmp_path))
    first = cycles.cycles_per_block({FMUL_CHAIN}, core("cortex-a76"))

    def no_llvm(*args, **kwargs):
        raise AssertionError("timed again")

    monkeypatch.setattr(cycles, "time_blocks", no_llvm)
    assert cycles.cycles_per_block({FMUL_CHAIN}, core("cortex-a76")) == first
    with pytest.raises(AssertionError, match="timed again"):  # another core's model: not in the cache
        cycles.cycles_per_block({FMUL_CHAIN}, core("armv9"))


def test_cycle_entries_weigh_each_lines_executions(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILEFORMER_CACHE", str(tmp_path))
    spec = core("cortex-a76")
    per_block = cycles.cycles_per_block({FMUL_CHAIN, NOP}, spec)
    log = GuestLog([("1", 0, 10), ("2", 0, 230), ("end", 0, 232)], {0: FMUL_CHAIN, 1: NOP, 2: NOP},
                   [{1: 5}, {0: 100, 2: 10}, {2: 2}])
    entries = cycles.cycle_entries(log, spec)
    assert [e[:2] for e in entries] == [("1", 0), ("2", 0), ("end", 0)]
    assert entries[1][2] - entries[0][2] == pytest.approx(100 * per_block[FMUL_CHAIN] + 10 * per_block[NOP])
    assert entries[2][2] - entries[1][2] == pytest.approx(2 * per_block[NOP])
