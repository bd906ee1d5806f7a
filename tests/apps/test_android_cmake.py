"""android_demo's native build (app/src/main/cpp/CMakeLists.txt) configured and
linked on this host against a fake installed ExecuTorch (tests/apps/fake_executorch):
the same target names, whole-archive link options, tokenizers reference,
event-tracer definition and installed headers (install_rules.json: no devtools/)
as an ExecuTorch 1.5 source build for Android installs, with host clang + lld and
the NDK's find-root confinement (ndk_like_toolchain.cmake). The per-operator build
gets the ETDump headers from a stand-in checkout (EXECUTORCH_SOURCE_DIR).

What this cannot show: that the NDK's clang and the real ExecuTorch libraries
link (their code is stand-ins here), nor that the .so loads on a phone.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.apps.test_app_sources import ANDROID, STUBS, compiler, executorch_include, jni_include, run

FAKE = Path(__file__).parent / "fake_executorch"
APP_CMAKE = ANDROID / "app" / "src" / "main" / "cpp"
WHOLE_ARCHIVE = ["xnnpack_backend", "optimized_native_cpu_ops_lib", "quantized_ops_lib"]

pytestmark = pytest.mark.slow  # builds two small CMake projects (about a minute on 2 cores)


def _cmake(*args: object) -> subprocess.CompletedProcess:
    return run([compiler("cmake"), *args])


def _build(source: Path, build: Path, *defines: str) -> subprocess.CompletedProcess:
    """Configure (returned when it fails) and build with host clang."""
    proc = _cmake("-S", source, "-B", build, "-DCMAKE_BUILD_TYPE=Release", *defines)
    if proc.returncode != 0:
        return proc
    return _cmake("--build", build, "-j2")


@pytest.fixture(scope="module")
def fake_roots(tmp_path_factory) -> dict[bool, Path]:
    """EXECUTORCH_ANDROID_ROOT layouts (<root>/arm64-v8a/...) with and without the event tracer."""
    compiler("clang++")
    compiler("ld.lld")
    roots = {}
    for tracer in (True, False):
        work = tmp_path_factory.mktemp("tracer" if tracer else "no-tracer")
        root = work / "root"
        proc = _build(FAKE, work / "build", "-DCMAKE_CXX_COMPILER=clang++",
                      f"-DFAKE_EXECUTORCH_HEADERS={executorch_include()}",
                      f"-DFAKE_EVENT_TRACER={'ON' if tracer else 'OFF'}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        proc = _cmake("--install", work / "build", "--prefix", root / "arm64-v8a")
        assert proc.returncode == 0, proc.stderr
        roots[tracer] = root
    return roots


@pytest.fixture(scope="module")
def sysroot(tmp_path_factory) -> Path:
    """The part of an NDK sysroot the app's CMakeLists looks up: liblog."""
    root = tmp_path_factory.mktemp("sysroot")
    (root / "usr" / "lib").mkdir(parents=True)
    src = root / "log.c"
    src.write_text("int __android_log_write(int p, const char *t, const char *m) { return 0; }\n")
    proc = run([compiler("clang"), "-shared", "-fPIC", "-fuse-ld=lld", "-o", root / "usr/lib/liblog.so", src])
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """The part of an ExecuTorch checkout the per-operator build reads: devtools/etdump's headers."""
    root = tmp_path_factory.mktemp("executorch-checkout")
    shutil.copytree(executorch_include() / "executorch" / "devtools", root / "devtools")
    return root


def _configure_app(build: Path, et_root: Path, sysroot: Path, *defines: str) -> subprocess.CompletedProcess:
    flags = " ".join(f"-I{p}" for p in [STUBS / "android", *jni_include()])
    return _build(APP_CMAKE, build, f"-DCMAKE_TOOLCHAIN_FILE={FAKE / 'ndk_like_toolchain.cmake'}",
                  f"-DFAKE_SYSROOT={sysroot}", f"-DFAKE_CXX_FLAGS={flags}",
                  f"-DEXECUTORCH_ANDROID_ROOT={et_root}", *defines)


def _dynamic_symbols(lib: Path) -> set[str]:
    proc = run(["nm", "-D", "--defined-only", lib])
    assert proc.returncode == 0, proc.stderr
    return {line.split()[-1] for line in proc.stdout.splitlines() if line.strip()}


def _cache(build: Path) -> dict[str, str]:
    text = (build / "CMakeCache.txt").read_text()
    return dict(re.findall(r"^([\w-]+):\w+=(.*)$", text, re.M))


def test_fake_install_ships_what_the_install_rules_ship(fake_roots):
    """The fake prefix's include/ holds exactly the pip headers under the directories
    ExecuTorch's install() rules install (install_rules.json), so no devtools/ header:
    a build that needs them must get them from elsewhere, as on a real prefix."""
    rules = json.loads((FAKE / "install_rules.json").read_text())
    pip = executorch_include() / "executorch"
    expected = {p.relative_to(pip.parent) for d in rules["header_dirs"] for p in (pip / d).rglob("*.h")}
    assert len(expected) > 100 and (pip / "devtools/etdump/etdump_flatcc.h").is_file()
    for root in fake_roots.values():
        include = root / "arm64-v8a" / "include"
        installed = {p.relative_to(include) for p in include.rglob("*") if p.is_file()}
        assert installed == expected
        assert not any(p.parts[1] == "devtools" for p in installed)


def test_native_core_links_with_the_event_tracer(tmp_path, fake_roots, sysroot, checkout):
    """The per-operator build: links once with every registration library whole
    (ExecuTorch's own link options; wrapping them again made lld report duplicate
    symbols), compiles the core with the tracer, and finds tokenizers in the prefix."""
    build = tmp_path / "app"
    proc = _configure_app(build, fake_roots[True], sysroot, f"-DEXECUTORCH_SOURCE_DIR={checkout}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    symbols = _dynamic_symbols(build / "libmfbench_jni.so")
    for lib in WHOLE_ARCHIVE:
        assert f"mf_fake_{lib}" in symbols, f"{lib} was dropped from the link"
    link = (build / "CMakeFiles/mfbench_jni.dir/link.txt").read_text()
    assert "libetdump.a" in link and "libflatccrt.a" in link  # only referenced code stays: not in nm
    commands = (build / "CMakeFiles/mfbench_jni.dir/flags.make").read_text()
    assert "-DET_EVENT_TRACER_ENABLED" in commands and "MFBENCH_NO_EVENT_TRACER" not in commands
    # every ExecuTorch header from the prefix or the checkout: none from the pip package, which
    # has the devtools headers a real prefix lacks (how defect 1 of issue 32 went unseen)
    assert str(executorch_include()) not in commands
    # the installed config's find_package(tokenizers) sees the prefix despite the sysroot confinement
    prefix = fake_roots[True] / "arm64-v8a"
    assert Path(_cache(build)["tokenizers_DIR"]).resolve() == (prefix / "lib/cmake/tokenizers").resolve()


@pytest.mark.parametrize("tracer, reasons", [
    (True, ["-PexecutorchSourceDir", "devtools"]),
    (False, ["EXECUTORCH_ENABLE_EVENT_TRACER", "perOperator=false"]),
], ids=["no-devtools-headers", "no-event-tracer"])
def test_per_operator_build_stops_with_the_reason(tmp_path, fake_roots, sysroot, tracer, reasons):
    """Asking for per-operator times (the default) stops the configure with the reason when
    the prefix has no event tracer, or when EXECUTORCH_SOURCE_DIR does not give the devtools
    headers a real install lacks (the build used to stop at compile time, on op_tracer.h's
    #include). MFBENCH_PER_OPERATOR=OFF builds latency-only, compiled like the runtime it
    links: with ET_EVENT_TRACER_ENABLED exactly when that runtime has the tracer."""
    proc = _configure_app(tmp_path / "app", fake_roots[tracer], sysroot)
    assert proc.returncode != 0
    assert all(reason in proc.stderr for reason in reasons), proc.stderr
    build = tmp_path / "latency"
    proc = _configure_app(build, fake_roots[tracer], sysroot, "-DMFBENCH_PER_OPERATOR=OFF")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    commands = (build / "CMakeFiles/mfbench_jni.dir/flags.make").read_text()
    assert "-DMFBENCH_NO_EVENT_TRACER" in commands
    assert ("-DET_EVENT_TRACER_ENABLED" in commands) == tracer
    assert "mf_fake_xnnpack_backend" in _dynamic_symbols(build / "libmfbench_jni.so")
