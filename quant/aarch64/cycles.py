"""Estimated cycles of an emulated run: each executed block timed by llvm-mca's model of the core.

qemu's plugin logs every translated block's instruction words and how often it ran between
two lines of its main log (:class:`~quant.aarch64.qemu.GuestLog`). Each distinct block is
disassembled (``llvm-mc``) and timed by ``llvm-mca`` with the core's scheduling model
(:mod:`~quant.aarch64.cores` says which and why) as a loop of itself: its steady-state cycles
per execution, which is what a block costs in the loops that dominate inference. The estimate
is the sum of executions x cycles per execution. A count of instructions weighs an ``smmla``
(32 multiply-adds) like a register move; this weighs each by its issue port, latency and
throughput on the core.

What it leaves out: caches and memory (every load hits L1), branch mispredictions, and the
front end beyond the model's dispatch width; see docs/benchmarking.md for how far it lands
from published phone latencies. Instructions llvm-mca cannot time (no scheduling class) or
llvm-mc cannot decode count one cycle each and are reported as ``unmodeled_instructions``.

Block timings are cached per (code, llvm-mca model, LLVM version) in
``$MOBILEFORMER_CACHE/arm64/cycles/``, so counting a model again costs only the emulation.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from .cores import Core
from .qemu import Arm64Error, GuestLog, cache_root, run, tool

LLVM = "19"  # llvm-mc-19 / llvm-mca-19 (scripts/debian-packages.txt: llvm-19)
# Every extension a phone core of ours may execute, so that any guest block disassembles.
ATTRS = "+v9a,+sve2,+i8mm,+bf16,+dotprod,+fullfp16,+fp16fml,+rcpc,+lse,+crc,+aes,+sha2,+sha3"
ITERATIONS = 100  # llvm-mca's repetitions of each block: enough for its steady state
CHUNK = 2000  # blocks per llvm-mca run


def _key(code: str) -> str:
    return hashlib.sha1(code.encode()).hexdigest()[:20]


def _cache_file(core: Core) -> Path:
    return cache_root() / "cycles" / f"{core.mca_cpu}-llvm{llvm_version()}.tsv"


_VERSIONS: dict[str, str] = {}


def llvm_version() -> str:
    """The installed llvm-mca's full version, e.g. ``19.1.7`` (part of the cache key)."""
    if LLVM not in _VERSIONS:
        text = run([tool(f"llvm-mca-{LLVM}"), "--version"], "llvm-mca --version").stdout
        found = re.search(r"LLVM version (\S+)", text)
        _VERSIONS[LLVM] = found.group(1) if found else LLVM
    return _VERSIONS[LLVM]


def words(code: str) -> list[str]:
    """A block's instruction words, each as the 8 hex digits qemu logged (little-endian bytes)."""
    return [code[i:i + 8] for i in range(0, len(code), 8)]


def disassemble(all_words: set[str], work: Path) -> dict[str, str]:
    """Assembly text of each instruction word that llvm-mc decodes (the others are left out)."""
    ordered = sorted(all_words)
    source = work / "words.txt"
    source.write_text("".join(" ".join(f"0x{w[i:i + 2]}" for i in range(0, 8, 2)) + "\n" for w in ordered))
    done = run([tool(f"llvm-mc-{LLVM}"), "--disassemble", "-triple=aarch64", f"-mattr={ATTRS}", str(source)],
               "llvm-mc --disassemble")
    invalid = {int(m.group(1)) - 1 for m in re.finditer(rf"{re.escape(str(source))}:(\d+):\d+: warning", done.stderr)}
    text = [line.strip() for line in done.stdout.splitlines() if line.strip() and not line.strip().startswith(".")]
    valid = [w for i, w in enumerate(ordered) if i not in invalid]
    if len(text) != len(valid):
        raise Arm64Error(f"llvm-mc decoded {len(text)} instructions for {len(valid)} valid words")
    return dict(zip(valid, text))


def time_blocks(codes: list[str], core: Core, work: Path) -> dict[str, float]:
    """Cycles per execution of each block (instruction words in hex), from llvm-mca as a loop of itself."""
    assembly = disassemble({w for code in codes for w in words(code)}, work)
    timed: dict[str, float] = {}
    for start in range(0, len(codes), CHUNK):
        chunk = codes[start:start + CHUNK]
        lines = []
        for index, code in enumerate(chunk):
            body = [assembly[w] for w in words(code) if w in assembly]
            lines += [f"# LLVM-MCA-BEGIN b{index}", *body, f"# LLVM-MCA-END b{index}"]
        source = work / "blocks.s"
        source.write_text("\n".join(lines) + "\n")
        done = run([tool(f"llvm-mca-{LLVM}"), "-mtriple=aarch64", f"-mcpu={core.mca_cpu}", f"-mattr={ATTRS}",
                    f"-iterations={ITERATIONS}", "-skip-unsupported-instructions=any", "-instruction-info=false",
                    "-resource-pressure=false", str(source)], f"llvm-mca -mcpu={core.mca_cpu}")
        found = {int(m.group(1)): (int(m.group(2)), int(m.group(3))) for m in re.finditer(
            r"Code Region - b(\d+)\s+Iterations:\s+\d+\s+Instructions:\s+(\d+)\s+Total Cycles:\s+(\d+)", done.stdout)}
        for index, code in enumerate(chunk):
            timed_insns, total = found.get(index, (0, 0))
            unmodeled = len(words(code)) - timed_insns // ITERATIONS
            timed[code] = total / ITERATIONS + unmodeled
    return timed


def cycles_per_block(codes: set[str], core: Core) -> dict[str, float]:
    """Cycles per execution of each block, from the on-disk cache or timed now (and cached)."""
    path = _cache_file(core)
    known: dict[str, float] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, value = line.split("\t")
            known[key] = float(value)
    missing = sorted(code for code in codes if _key(code) not in known)
    if missing:
        with tempfile.TemporaryDirectory(prefix="mf-mca-") as tmp:
            timed = time_blocks(missing, core, Path(tmp))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as cache:  # one write per line: concurrent counts append whole lines
            for code, value in timed.items():
                cache.write(f"{_key(code)}\t{value!r}\n")
                known[_key(code)] = value
    return {code: known[_key(code)] for code in codes}


def line_cycles(log: GuestLog, core: Core) -> list[float]:
    """Estimated cycles between each main-log line and the one before it (the first: since the start)."""
    executed = {log.code[block] for lines in log.executions for block in lines}
    per_block = cycles_per_block(executed, core)
    return [sum(n * per_block[log.code[block]] for block, n in lines.items()) for lines in log.executions]


def cycle_entries(log: GuestLog, core: Core) -> list[tuple[str, int, float]]:
    """The main log's entries with estimated cycles so far in place of instructions so far:
    every attribution made from instruction counts applies to them unchanged."""
    running, entries = 0.0, []
    for (kind, arg, _), cycles in zip(log.entries, line_cycles(log, core)):
        running += cycles
        entries.append((kind, arg, running))
    return entries


def estimate(cycles: float, core: Core) -> dict:
    """An inference's estimated ``cycles`` (rounded), with ``estimated_ms`` at the core's clock
    and the model that timed it: the part of a result's ``cycles`` that every count has."""
    whole = round(cycles)
    return {"per_inference": whole, "clock_ghz": core.clock_ghz, "estimated_ms": round(whole / (core.clock_ghz * 1e6), 3),
            "model": f"llvm-mca {llvm_version()} -mcpu={core.mca_cpu}, each executed block as a loop of itself, "
                     "no caches (quant.aarch64.cycles)"}
