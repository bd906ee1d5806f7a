"""What a phone build fails on, found on this host: android_demo's JNI bridge and the
native core compiled in full and linked for AArch64 (Debian's cross toolchain standing in
for the NDK's) against the aarch64 executorch wheel's libraries (quant.backends.xnnpack.arm64.sdk(), the SDK
quant.bench --arm64 uses), with --no-undefined; and mfbench's CLI cross-built the same way
(quant.backends.xnnpack.arm64.mfbench()).

What this cannot show: the NDK's Bionic and libc++ (Debian's glibc and libstdc++ stand in),
ExecuTorch built for Android rather than the wheel's Linux build, and loading on a phone.
"""
from __future__ import annotations

import pytest

from quant.backends.xnnpack import arm64
from tests.apps.test_app_sources import REPO, compiler, jni_include, run

pytestmark = pytest.mark.slow  # a cross build of the core and the bridge (about a minute on 2 cores)

PROJECT = REPO / "tests" / "apps" / "arm64_jni"
TOOLCHAIN = REPO / "native" / "arm64" / "aarch64-linux-gnu.cmake"


def _readelf(flag: str, lib) -> str:
    proc = run([compiler("aarch64-linux-gnu-readelf"), "--wide", flag, lib])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_jni_bridge_and_core_link_for_aarch64(tmp_path):
    """Compiled with the event tracer (the wheel's runtime has it) and linked with no
    undefined symbol: every ExecuTorch symbol the bridge, the core and its ETDump tracer
    use is exported by the wheel's libraries."""
    compiler("aarch64-linux-gnu-g++")
    cmake = compiler("cmake")
    build = tmp_path / "build"
    proc = run([cmake, "-S", PROJECT, "-B", build, "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN}",
                f"-DEXECUTORCH_ROOT={arm64.sdk()}", f"-DJNI_INCLUDE_DIRS={';'.join(map(str, jni_include()))}"],
               timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    proc = run([cmake, "--build", build, "--target", "mfbench_jni", "-j2"], timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    lib = build / "libmfbench_jni.so"
    assert "AArch64" in _readelf("-h", lib)
    symbols = _readelf("--dyn-syms", lib)
    for name in ("runBenchmark", "hasEventTracer", "executorchVersion"):
        assert f"Java_org_mobileformer_demo_bench_NativeBench_{name}" in symbols
    needed = _readelf("-d", lib)
    assert "libexecutorch.so" in needed and "libexecutorch_etdump.so" in needed  # the tracer build's ETDumpGen
    flags = (build / "mfbench/CMakeFiles/mfbench.dir/flags.make").read_text()
    assert "ET_EVENT_TRACER_ENABLED" in flags and "MFBENCH_NO_EVENT_TRACER" not in flags


def test_no_undefined_catches_a_missing_symbol(tmp_path):
    """The link check can fail: a bridge calling a function no library defines does not link."""
    src = tmp_path / "bad.cpp"
    src.write_text('extern "C" int mf_not_in_any_library(); int f() { return mf_not_in_any_library(); }\n')
    proc = run([compiler("aarch64-linux-gnu-g++"), "-shared", "-fPIC", "-Wl,--no-undefined", "-o", tmp_path / "b.so", src])
    assert proc.returncode != 0 and "mf_not_in_any_library" in proc.stderr


def test_mfbench_cli_cross_builds():
    exe = arm64.mfbench()
    assert "AArch64" in _readelf("-h", exe)
