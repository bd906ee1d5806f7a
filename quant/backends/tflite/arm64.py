"""AArch64 instruction counts of a ``.tflite``: LiteRT's own aarch64 build under qemu-user.

The ``.pte`` counts (:mod:`quant.backends.xnnpack.arm64`) run our C++ ``mfbench``; LiteRT has no such
program of ours, so its count runs what an app's Python would: Debian's aarch64
``python3.11`` with the aarch64 ``ai-edge-litert`` and ``numpy`` wheels, under
``qemu-aarch64`` as a named core (:mod:`quant.aarch64.cores`) with the same counting plugin
(:func:`quant.aarch64.qemu.run_guest`). The guest script (:mod:`quant.backends.tflite.guest`)
issues the same marker syscalls around each inference as ``mfbench``, so the count is cut
the same way: from just before ``Interpreter.invoke()`` to just after it. Only whole
inferences: LiteRT's Python API reaches no per-operator profiler.

What the count includes beyond LiteRT's C++ ``Invoke``: the ``ctypes`` marker calls (5,961
instructions, counted with an empty call in place of ``invoke``) and ``Interpreter.invoke()``'s
own Python (about 1,800), 0.02% of an int8 26m inference.

Why the guest needs a root of its own (``-L``): qemu-user 7.2 shows the guest the host's
x86 ``/proc/cpuinfo``, on which LiteRT's bundled cpuinfo library crashes; each run gets
the ``/proc/cpuinfo`` that Linux would show on the emulated core (``native/arm64/cpuinfo.c``;
for ``armv9``, whose qemu model has qemu's own MIDR, the Neoverse N2's: :data:`CPUINFO_MIDR`).
``PYTHONHASHSEED=0``: Python's randomised string hashes change the count run to run;
``OPENBLAS_NUM_THREADS=1``: numpy's OpenBLAS threads would add their instructions.

First use builds, in ``$MOBILEFORMER_CACHE`` (default ``~/.cache/mobileformer``) ``/arm64``,
the root (:func:`guest_root`: the pinned Debian packages fetched with ``apt-get download``
under a private apt state, nothing added to the system's apt or dpkg, and the wheels
fetched with ``pip download``) and the cpuinfo program; each appears whole or not at all.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ... import __version__
from ...aarch64.cores import core
from ...aarch64.cycles import estimate, line_cycles
from ...aarch64.qemu import (
    REPO, Arm64Error, GuestLog, cached, digest, emulated_device, inference_count, run, run_guest, split_passes, tool,
)
from ...formats import latency_result
from . import guest as tflite_guest
from .runtime import load_tflite_interpreter, runtime_version

GUEST_SCRIPT = Path(tflite_guest.__file__)
CPUINFO_SOURCE = REPO / "native" / "arm64" / "cpuinfo.c"
GUEST_PYTHON = "3.11"  # Debian 12's, which the wheels below are built for
# Debian 12 (bookworm) arm64: the interpreter, the standard library and the shared libraries
# that it, numpy and LiteRT load. Exact versions, so that a root built later counts alike.
DEBIAN_SUITES = ("bookworm", "bookworm-updates", "bookworm-security")
DEBIAN_PACKAGES = {
    "python3.11-minimal": "3.11.2-6+deb12u9", "libpython3.11-minimal": "3.11.2-6+deb12u9",
    "libpython3.11-stdlib": "3.11.2-6+deb12u9", "libc6": "2.36-9+deb12u14", "libgcc-s1": "12.2.0-14+deb12u1",
    "libstdc++6": "12.2.0-14+deb12u1", "libexpat1": "2.5.0-1+deb12u5", "zlib1g": "1:1.2.13.dfsg-1+deb12u1",
    "libffi8": "3.4.4-1", "libssl3": "3.0.22-1~deb12u2",
}
GUEST_NUMPY = "2.4.6"
WHEEL_PLATFORM = "manylinux_2_27_aarch64"  # ai-edge-litert's aarch64 tag (numpy's wheel has it too)
SITE_PACKAGES = Path("usr/lib/python3/dist-packages")  # where Debian's python3.11 looks
GUEST_WORK = Path("/work")  # the run's folder, as the guest sees it
GUEST_ENV = {"LC_ALL": "C", "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
# The MIDR that /proc/cpuinfo shows for a core whose qemu MIDR is qemu's own (implementer 0).
# LiteRT 2.3.0's bundled cpuinfo crashes (SIGSEGV) on MIDRs it does not know: qemu's, and in
# our tries the Cortex-A710's (0x412fd470), Cortex-X2's, Cortex-A715's and Cortex-A78's. armv9
# shows the Neoverse N2's (r0p0), the Cortex-A710's server twin, which it knows.
CPUINFO_MIDR = {"armv9": "0x410fd490"}


def _apt_config(state: Path) -> Path:
    """An apt configuration that reads and writes only under ``state``: the system's sources,
    configuration parts, lists, cache and dpkg status are never read or changed."""
    none = state / "none"
    (state / "lists" / "partial").mkdir(parents=True)
    (state / "cache" / "archives" / "partial").mkdir(parents=True)
    (state / "status").touch()
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    (state / "sources.list").write_text("".join(
        f"deb [arch=arm64 signed-by={keyring}] http://deb.debian.org/{'debian-security' if 'security' in suite else 'debian'}"
        f" {suite} main\n" for suite in DEBIAN_SUITES))
    settings = {
        "APT::Architecture": "arm64", "APT::Architectures": "arm64", "Acquire::Languages": "none",
        "Debug::NoLocking": "true", "Dir::Etc::main": none, "Dir::Etc::parts": none,
        "Dir::Etc::sourcelist": state / "sources.list", "Dir::Etc::sourceparts": none,
        "Dir::Etc::preferences": none, "Dir::Etc::preferencesparts": none,
        "Dir::State": state, "Dir::State::lists": state / "lists", "Dir::State::status": state / "status",
        "Dir::Cache": state / "cache", "Dir::Log": state / "log",
    }
    config = state / "apt.conf"
    config.write_text("".join(f'{key} "{value}";\n' for key, value in settings.items()))
    return config


def _download(cmd: list[str], what: str, **kwargs) -> None:
    """Run a download; if it fails, one line that says what and the tool's last error line."""
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("E:", "ERROR:"))] or lines or [f"exit {done.returncode}"]
    if done.returncode != 0:
        raise Arm64Error(f"{what} failed: {errors[-1][:300]}")


def _fetch_debian(tmp: Path, root: Path) -> None:
    if not Path("/usr/share/keyrings/debian-archive-keyring.gpg").is_file():
        raise Arm64Error("the LiteRT guest needs Debian's arm64 python3.11: apt-get and debian-archive-keyring "
                         "(a Debian host)")
    apt = tool("apt-get")
    env = {**os.environ, "APT_CONFIG": str(_apt_config(tmp / "apt"))}
    _download([apt, "update"], "apt-get update of Debian's arm64 package lists", env=env)
    debs = tmp / "debs"
    debs.mkdir()
    _download([apt, "download", *(f"{name}={version}" for name, version in DEBIAN_PACKAGES.items())],
              "apt-get download of the pinned arm64 packages (DEBIAN_PACKAGES in quant/backends/tflite/arm64.py)",
              cwd=debs, env=env)
    for deb in sorted(debs.glob("*.deb")):
        run([tool("dpkg-deb"), "-x", str(deb), str(root)], f"dpkg-deb -x {deb.name}")


def _fetch_wheels(tmp: Path, root: Path, litert: str) -> None:
    wheels = tmp / "wheels"
    _download([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--platform",
               WHEEL_PLATFORM, "--python-version", GUEST_PYTHON, f"ai-edge-litert=={litert}", f"numpy=={GUEST_NUMPY}",
               "--dest", str(wheels)], "pip download of the aarch64 ai-edge-litert and numpy wheels")
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as z:
            z.extractall(root / SITE_PACKAGES)


def guest_root(litert: str) -> Path:
    """The cached aarch64 root: Debian's python3.11 (:data:`DEBIAN_PACKAGES`), ai-edge-litert
    ``litert`` and numpy :data:`GUEST_NUMPY`."""
    def build(tmp: Path) -> None:
        print(f"[arm64] building the aarch64 LiteRT guest: Debian's python{GUEST_PYTHON}, ai-edge-litert {litert}, "
              f"numpy {GUEST_NUMPY} (once, about a minute)", flush=True)
        _fetch_debian(tmp, tmp / "root")
        _fetch_wheels(tmp, tmp / "root", litert)
        for scratch in ("apt", "debs", "wheels"):
            shutil.rmtree(tmp / scratch)

    pins = ",".join(f"{name}={version}" for name, version in DEBIAN_PACKAGES.items())
    return cached(f"litert-{litert}-{digest([], pins, GUEST_NUMPY)}", build) / "root"


def cpuinfo_program() -> Path:
    """``native/arm64/cpuinfo.c``, cross-built static (it runs before the root's libc is chosen)."""
    cc = tool("aarch64-linux-gnu-gcc")

    def build(tmp: Path) -> None:
        run([cc, "-O2", "-static", "-Wall", "-Wextra", "-o", str(tmp / "cpuinfo"), str(CPUINFO_SOURCE)],
            "aarch64 build of native/arm64/cpuinfo.c")

    return cached(f"cpuinfo-{digest([CPUINFO_SOURCE], platform.machine())}", build) / "cpuinfo"


def run_root(work: Path, cpu: str, root: Path) -> Path:
    """``work/root``: ``root``'s folders linked, ``work`` as its ``/work``, and the
    ``/proc/cpuinfo`` of the emulated ``cpu``."""
    proc = work / "root" / "proc"
    proc.mkdir(parents=True)
    for child in root.iterdir():
        (work / "root" / child.name).symlink_to(child)
    (work / "root" / GUEST_WORK.name).symlink_to(work)
    midr = [CPUINFO_MIDR[cpu]] if cpu in CPUINFO_MIDR else []
    shown = run([tool("qemu-aarch64"), "-cpu", core(cpu).qemu_cpu, str(cpuinfo_program()), *midr], "the guest's cpuinfo")
    (proc / "cpuinfo").write_text(shown.stdout)
    return work / "root"


def counted_runs(entries: list[tuple[str, int, int]]) -> list[int]:
    """The instructions of each counted inference, in order, from the plugin's log."""
    return [inference_count(events) for events in split_passes(entries).get(tflite_guest.UNTRACED_PASS, [])]


def steady_count(runs: list[int]) -> int | None:
    """The count of an inference: the least of ``runs``, if it occurs at least twice.

    Not the last, as for a ``.pte``: after the warm-up, an inference now and then counts 3 to
    330 instructions more than the others (26m: under 0.001%), at places that repeat run to run
    (the guest is deterministic) and that move with what the guest's Python does around
    ``invoke()``; the steady count is the least one.
    """
    least = min(runs, default=None)
    return least if runs.count(least) >= 2 else None


def inference_cycles(log: GuestLog, index: int, cpu: str) -> float:
    """The estimated cycles of counted inference ``index``: only the blocks it executed are
    timed (the guest's Python start-up and LiteRT's loading run many more)."""
    lines = {(kind, arg): i for i, (kind, arg, _) in enumerate(log.entries)
             if kind in (str(tflite_guest.INFERENCE_BEGIN), str(tflite_guest.INFERENCE_END))}
    begin, end = lines[(str(tflite_guest.INFERENCE_BEGIN), index)], lines[(str(tflite_guest.INFERENCE_END), index)]
    inside = GuestLog(log.entries[begin + 1:end + 1], log.code, log.executions[begin + 1:end + 1])
    return sum(line_cycles(inside, core(cpu)))


def count_instructions(artifact: Path, cpu: str, warmup: int, iterations: int = 4) -> dict:
    """``artifact``'s count as a latency result's parts: ``instructions``, ``cycles`` (the
    estimate of the inference whose count is the steady one), ``device`` features, ``runtime``
    version and ``samples_ms`` (wall-clock under emulation, no phone figure).
    Raises :class:`Arm64Error` unless :func:`steady_count` finds a count."""
    load_tflite_interpreter(artifact)  # a missing or corrupt file fails here, with the host's clear message
    litert = runtime_version()
    root = guest_root(litert)
    with tempfile.TemporaryDirectory(prefix="mf-litert-") as tmp:
        work = Path(tmp)
        # The same argv, environment and paths whatever the artifact's or the work folder's
        # location: the guest sees only paths in its root (qemu's -0 names the interpreter
        # /usr/bin/python3.11), for Python's dicts keyed by paths to hash and lay out alike.
        shutil.copy(GUEST_SCRIPT, work / "guest.py")
        (work / "model.tflite").symlink_to(artifact.resolve())
        python = f"usr/bin/python{GUEST_PYTHON}"
        argv = ["-0", f"/{python}", f"./root/{python}", "-s", "-B", f"{GUEST_WORK}/guest.py",
                f"{GUEST_WORK}/model.tflite", str(warmup), str(iterations)]
        done, log = run_guest(argv, core(cpu), work, run_root(work, cpu, root), blocks=True, env=GUEST_ENV)
    if done.returncode != 0:
        raise Arm64Error(f"LiteRT under qemu-aarch64 failed (exit {done.returncode}):\n{done.stderr.strip()[-2000:]}")
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    runs = counted_runs(log.entries)
    steady = steady_count(runs)
    if len(runs) != iterations or steady is None:
        raise Arm64Error(f"{artifact.name}: no count repeats in the counted inferences ({runs}); "
                         "count again with more --warmup or --iterations")
    cycles = inference_cycles(log, len(runs) - 1 - runs[::-1].index(steady), cpu)
    return {"instructions": {"per_inference": steady, "counted_runs": runs,
                             "counter": "qemu-aarch64 plugin native/arm64/icount.c"},
            "cycles": estimate(cycles, core(cpu)),
            "features": seen["features"], "runtime_version": seen["litert"], "samples_ms": seen["samples_ms"]}


def counted_result(artifact: Path, manifest: dict | None, cpu: str, warmup: int, iterations: int, label: str) -> dict:
    """``quant.bench --arm64``'s latency result of a ``.tflite`` (the backend's ``arm64_counter``): whole
    inferences only (LiteRT's Python API has no profiler)."""
    counted = count_instructions(artifact, cpu, warmup, iterations)
    result = latency_result(artifact, manifest, label, emulated_device(core(cpu), counted["features"]),
                            {"name": "tflite", "version": counted["runtime_version"], "compute_units": None},
                            1, warmup, iterations, counted["samples_ms"], traced=False)
    result.update(tool=f"quant.bench {__version__} (LiteRT aarch64 Python, qemu-user)",
                  instructions=counted["instructions"], cycles=counted["cycles"])
    return result
