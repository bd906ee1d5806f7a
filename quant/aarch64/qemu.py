"""Run an AArch64 Linux program under qemu-user with the counting plugin, and read what it logged.

The plugin (``native/arm64/icount.c``, built here with the host C compiler) counts guest
instructions exactly and logs the running count at the program's marker syscalls
(:data:`MARKER_SYSCALL` with ``(kind, argument)``) and at its ``clock_gettime`` calls after
the first marker; with ``blocks`` it also logs each executed block's code and how often it
ran between log lines, for :mod:`quant.aarch64.cycles`. A guest is any program: the
XNNPACK wing runs ``mfbench`` against a ``.pte``, the LiteRT wing a Python interpreter.

Setup is cached in ``$MOBILEFORMER_CACHE`` (default ``~/.cache/mobileformer``) ``/arm64``;
each entry appears whole or not at all (built in a temporary folder, renamed).
"""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from .cores import Core

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SOURCE = REPO / "native" / "arm64" / "icount.c"
MARKER_SYSCALL = 0x4D46  # native/mfbench/src/markers.h
CLOCK_GETTIME = 113  # the aarch64 syscall number (asm-generic)
# What each marker kind means (markers.h); 0 is a timer read.
TIMER, INFERENCE_BEGIN, INFERENCE_END, DELEGATE_BEGIN, OPERATORS_LOGGED, PASS_BEGIN = range(6)
GUEST_ENV = {"LC_ALL": "C"}  # qemu-user hands its environment to the guest


class Arm64Error(UserError):
    """The AArch64 toolchain, emulator or guest is missing or failed; the message says what to do."""


def cache_root() -> Path:
    """Where the SDKs, the cross-built programs, the plugin and the block timings are kept between runs."""
    base = os.environ.get("MOBILEFORMER_CACHE") or Path.home() / ".cache" / "mobileformer"
    return Path(base) / "arm64"


def tool(name: str) -> str:
    """The full path of a Debian tool, or an error that says how to install it."""
    path = shutil.which(name)
    if path is None:
        raise Arm64Error(f"{name} not found: install the Debian packages in scripts/debian-packages.txt "
                         "(scripts/install_tools.sh, as root)")
    return path


def run(cmd: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    """``cmd``'s completed process; an :class:`Arm64Error` with its output's tail if it failed."""
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise Arm64Error(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done


def cached(name: str, build: Callable[[Path], None]) -> Path:
    """``cache_root()/name``, built by ``build(tmp_dir)`` in a temporary folder and renamed into place."""
    final = cache_root() / name
    if final.exists():
        return final
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # MOBILEFORMER_CACHE names a file, or a place we cannot write
        raise Arm64Error(f"cannot use {final.parent} as the cache (MOBILEFORMER_CACHE): {e.strerror}") from None
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{name}.tmp-"))
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():  # not a concurrent setup that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def digest(paths: list[Path], *extra: str) -> str:
    """A short hash of files of this checkout (by their path in it) and extra text: a cache key."""
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    for text in extra:
        h.update(text.encode() + b"\0")
    return h.hexdigest()[:12]


def plugin() -> Path:
    """The counting plugin, built with the host C compiler from ``native/arm64/icount.c``."""
    cc = tool("cc")

    def build(tmp: Path) -> None:
        run([cc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-o", str(tmp / "icount.so"), str(PLUGIN_SOURCE)],
            "build of the qemu plugin")

    return cached(f"icount-{digest([PLUGIN_SOURCE], platform.machine())}", build) / "icount.so"


def qemu_version(qemu: str | None = None) -> str:
    """qemu-aarch64's version, e.g. ``7.2.22``."""
    first = run([qemu or tool("qemu-aarch64"), "--version"], "qemu-aarch64 --version").stdout.splitlines()[0]
    return first.split("version", 1)[-1].strip().split()[0]


@dataclass
class GuestLog:
    """What the plugin logged for one guest run.

    ``entries`` are the main log's lines ``(kind, argument, instructions so far)``, kind a
    marker kind or 0 for a timer read, and ``("end", 0, total)`` last. With block logging,
    ``code[id]`` is a translated block's instruction words (hex) and ``executions[i]`` maps
    block ids to how often they ran between ``entries[i - 1]`` and ``entries[i]``.
    """

    entries: list[tuple[str, int, int]]
    code: dict[int, str] = field(default_factory=dict)
    executions: list[dict[int, int]] = field(default_factory=list)


def run_guest(argv: list[str], core: Core, cwd: Path, root: Path, blocks: bool = False,
              env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, GuestLog]:
    """Run ``argv`` (a guest path relative to ``cwd`` first) under ``qemu-aarch64`` as ``core``,
    with ``root`` as its ``-L`` sysroot and the plugin logging into ``cwd``; its completed process
    and log. ``setarch -R`` turns address randomisation off, so that hash tables keyed by
    addresses probe alike run to run; ``env`` (default :data:`GUEST_ENV`) is all the guest sees."""
    qemu, setarch = tool("qemu-aarch64"), tool("setarch")
    log, block_log = cwd / "icount.log", cwd / "blocks.log"
    options = f"{plugin()},out={log},marker={MARKER_SYSCALL},timer={CLOCK_GETTIME}"
    if blocks:
        options += f",blocks={block_log}"
    cmd = [setarch, "-R", qemu, "-cpu", core.qemu_cpu, "-L", str(root), "-plugin", options, *argv]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=GUEST_ENV if env is None else env)
    if not log.exists():
        return done, GuestLog([])
    parsed = GuestLog(read_entries(log.read_text()))
    if blocks and block_log.exists():
        parsed.code, parsed.executions = read_blocks(block_log.read_text(), len(parsed.entries))
    return done, parsed


def read_entries(text: str) -> list[tuple[str, int, int]]:
    """The main log's lines as ``(kind, argument, count)``; the argument of ``end`` is 0."""
    entries = []
    for line in text.splitlines():
        kind, arg, count = line.split()
        entries.append((kind, int(arg) if kind != "end" else 0, int(count)))
    return entries


def read_blocks(text: str, lines: int) -> tuple[dict[int, str], list[dict[int, int]]]:
    """The block log: each block's code, and per main-log line the block executions just before it."""
    code: dict[int, str] = {}
    executions: list[dict[int, int]] = [{} for _ in range(lines)]
    pending: dict[int, int] = {}
    for line in text.splitlines():
        tag, *rest = line.split()
        if tag == "t":
            code[int(rest[0])] = rest[2] if len(rest) > 2 else ""
        elif tag == "x":
            pending[int(rest[0])] = int(rest[1])
        elif tag == "i":
            index = lines - 1 if rest[0] == "end" else int(rest[0])
            executions[index] = pending
            pending = {}
    return code, executions


def emulated_device(core: Core, features: list[str]) -> dict:
    """``device`` of a counted result: the named core, the emulator, and the ISA features the guest saw."""
    return {"kind": "emulated", "name": f"{core.name} (qemu-aarch64 {qemu_version()})", "os": "Linux (qemu-user)",
            "cpu": core.name, "cores": 1, "features": features}


def split_passes(entries: list[tuple[str, int, int]]) -> dict[int, list[list[tuple[int, int, int]]]]:
    """Log entries per pass (0 untraced, 1 traced), per measured inference, as (kind, arg, count)."""
    passes: dict[int, list[list[tuple[int, int, int]]]] = {}
    current: list[list[tuple[int, int, int]]] | None = None
    inference: list[tuple[int, int, int]] | None = None
    for kind_text, arg, count in entries:
        if kind_text == "end":
            break
        kind = int(kind_text)
        if kind == PASS_BEGIN:
            current = passes.setdefault(arg, [])
        elif kind == INFERENCE_BEGIN and current is not None:
            inference = [(kind, arg, count)]
            current.append(inference)
        elif inference is not None:
            inference.append((kind, arg, count))
            if kind == INFERENCE_END:
                inference = None
    return passes


def inference_count(events: list[tuple[int, int, int]]) -> int:
    """Instructions between an inference's begin and end markers."""
    if events[0][0] != INFERENCE_BEGIN or events[-1][0] != INFERENCE_END:
        raise Arm64Error("the instruction log has an inference without both markers")
    return events[-1][2] - events[0][2]
