"""android_demo's pure-Kotlin benchmark code (app/src/main/java/.../bench/*.kt)
compiled with kotlinc (the npm kotlin-compiler of scripts/kotlin, the app's
Kotlin version) and run on the JVM against stand-ins (tests/apps/jvm): Java
fakes for android.os.Build, android.content.Context and the generated
BuildConfig, Kotlin fakes for the AAR's Module, EValue and Tensor that record
what the engine does, Android's own org.json (Debian libandroid-json-java), and a
stand-in libmfbench_jni.so that returns what the native core engine passed it.

What this cannot show: the real AAR's JNI behaviour and timings on a phone;
the activities and Compose UI (they need the Android SDK) are not compiled.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.apps.test_app_sources import KOTLIN_SRC, REPO, compiler, jni_include, run
from tests.schemas import assert_follows

JVM = Path(__file__).parent / "jvm"
KOTLIN_HOME = REPO / "scripts" / "kotlin" / "node_modules" / "kotlin-compiler"
ANDROID_JSON = Path("/usr/share/java/com.android.json.jar")

pytestmark = pytest.mark.slow  # kotlinc takes about a minute on 2 cores


def _kotlin_home() -> Path:
    if not (KOTLIN_HOME / "bin" / "kotlinc").is_file():
        pytest.fail(f"no kotlinc under {KOTLIN_HOME}: run scripts/install_tools.sh (npm, scripts/kotlin)")
    if not ANDROID_JSON.is_file():
        pytest.fail(f"{ANDROID_JSON} missing: run scripts/install_tools.sh (libandroid-json-java)")
    return KOTLIN_HOME


@pytest.fixture(scope="module")
def classpath(tmp_path_factory) -> str:
    """The bench package, the fakes and the probe, compiled; the classpath to run them."""
    home = _kotlin_home()
    out = tmp_path_factory.mktemp("jvm")
    java_classes = out / "java"
    proc = run([compiler("javac"), "-d", java_classes, *sorted(JVM.rglob("*.java"))])
    assert proc.returncode == 0, proc.stderr
    kotlin_classes = out / "kotlin"
    sources = [*sorted((KOTLIN_SRC / "bench").glob("*.kt")), *sorted(JVM.rglob("*.kt"))]
    cp = f"{java_classes}:{ANDROID_JSON}"
    proc = run(["bash", home / "bin" / "kotlinc", "-nowarn", "-jvm-target", "17", "-cp", cp, "-d", kotlin_classes,
                *sources], timeout=600, env={"PATH": f"{Path(compiler('java')).parent}:/usr/bin:/bin",
                                            "HOME": str(out)})
    assert proc.returncode == 0, proc.stderr[-4000:]
    return f"{kotlin_classes}:{cp}:{home / 'lib' / 'kotlin-stdlib.jar'}"


def _probe(classpath: str, model: Path, iterations: int, warmup: int, threads: int = 2, profiling: bool = False,
           etdump: Path | None = None) -> dict:
    args = [model, iterations, warmup, threads, str(profiling).lower(), *([etdump] if etdump else [])]
    proc = run([compiler("java"), "-cp", classpath, "AarEngineProbeKt", *args])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _native_pattern(count: int) -> list[float]:
    """native/mfbench's input values (bench.cpp: xorshift32 from 0x2545F491 to [-1, 1))."""
    state, values = 0x2545F491, []
    for _ in range(count):
        state ^= (state << 13) & 0xFFFFFFFF
        state ^= state >> 17
        state ^= (state << 5) & 0xFFFFFFFF
        values.append((state >> 8) / 8388608.0 - 1.0)
    return values


def test_aar_engine_builds_the_input_once_outside_the_timed_loop(classpath, tmp_path):
    """Every forward (warm-up and timed) gets the one tensor made before the loop,
    with the manifest's shape and the core's values; `forward()` with no input made
    the JNI layer allocate and fill the input inside the timed region."""
    model = tmp_path / "mf.pte"
    model.write_bytes(b"fake program")
    (tmp_path / "mf.manifest.json").write_text(json.dumps({"input": {"shape": [1, 3, 64, 64]}}))
    seen = _probe(classpath, model, iterations=5, warmup=2)
    assert seen["arguments_per_call"] == [1] * 7
    assert seen["distinct_inputs"] == 1 and seen["tensors_made"] == 1
    assert seen["tensors_before_each_call"] == [1] * 7
    assert seen["shape"] == [1, 3, 64, 64] and seen["elements"] == 3 * 64 * 64
    assert seen["first_values"] == pytest.approx(_native_pattern(4), abs=1e-7)
    assert seen["threads"] == 2 and seen["destroyed"]
    result = seen["result"]
    assert_follows(result, "latency")
    assert (result["iterations"], result["warmup"], len(result["samples_ms"])) == (5, 2, 5)
    assert result["runtime"]["version"] == "1.5.1" and result["operators"] == []
    assert result["threads"] == 2 and result["traced"] is False  # the release AAR: no event tracer
    assert len(seen["etdumps"]) == 1 and not Path(seen["etdumps"][0]).exists()  # the probe file is gone


def test_aar_engine_writes_the_thread_count_it_ran_with(classpath, tmp_path):
    """threads 0 is resolved before loading (half the processors, as the AAR would), so the
    Module gets and the result records a real count, never 0 (issue 32, defect 4)."""
    model = tmp_path / "mf.pte"
    model.write_bytes(b"fake program")
    seen = _probe(classpath, model, iterations=1, warmup=0, threads=0)
    expected = max(1, seen["processors"] // 2)
    assert seen["threads"] == expected and seen["result"]["threads"] == expected
    assert_follows(seen["result"], "latency")


# A stand-in for libmfbench_jni.so: runBenchmark returns the thread count the engine passed.
NATIVE_STAND_IN = r"""#include <jni.h>
#include <stdio.h>
JNIEXPORT jstring JNICALL Java_org_mobileformer_demo_bench_NativeBench_runBenchmark(
    JNIEnv *env, jclass cls, jstring model, jint iterations, jint warmup, jint threads,
    jstring etdump, jstring label, jstring device) {
  char json[64];
  snprintf(json, sizeof json, "{\"threads_asked\": %d}", (int)threads);
  return (*env)->NewStringUTF(env, json);
}
"""


def test_native_core_engine_asks_for_the_aar_engines_thread_count(classpath, tmp_path):
    """threads 0 reaches the native core as the count the AAR engine runs with (half the
    processors), not as 0, which the core would turn into its pool's own size (the performance
    cores): one request, one thread count, whichever engine runs it (issue 32, defect 4)."""
    src, stand_in = tmp_path / "stand_in.c", tmp_path / "libmfbench_jni_stand_in.so"
    src.write_text(NATIVE_STAND_IN)
    proc = run([compiler("clang"), "-shared", "-fPIC", *(f"-I{p}" for p in jni_include()), "-o", stand_in, src])
    assert proc.returncode == 0, proc.stderr
    model = tmp_path / "mf.pte"
    model.write_bytes(b"fake program")
    for threads in (0, 3):
        proc = run([compiler("java"), "-cp", classpath, "NativeEngineProbeKt", stand_in, model, threads])
        assert proc.returncode == 0, proc.stderr
        seen = json.loads(proc.stdout)
        assert seen["threads_asked"] == (threads or max(1, seen["processors"] // 2))
        assert seen["threads_asked"] == _probe(classpath, model, iterations=1, warmup=0, threads=threads)["threads"]


def test_profiling_aar_figures_are_traced_and_give_an_etdump(classpath, tmp_path):
    """An AAR built with EXECUTORCH_ANDROID_PROFILING=ON times traced forwards: the result
    says so, and the ETDump asked for is written (issue 32, defect 2); the release AAR
    refuses an ETDump with the reason."""
    model = tmp_path / "mf.pte"
    model.write_bytes(b"fake program")
    seen = _probe(classpath, model, iterations=2, warmup=1, profiling=True)
    assert seen["result"]["traced"] is True and seen["result"]["etdump"] is None
    assert_follows(seen["result"], "latency")
    etdump = tmp_path / "mf.etdp"
    seen = _probe(classpath, model, iterations=2, warmup=1, profiling=True, etdump=etdump)
    assert seen["result"]["traced"] is True and seen["result"]["etdump"] == "mf.etdp" and etdump.is_file()
    refused = _probe(classpath, model, iterations=2, warmup=1, etdump=tmp_path / "no.etdp")
    assert "no event tracer" in refused["error"] and not (tmp_path / "no.etdp").exists()


def test_aar_engine_default_input_without_a_manifest(classpath, tmp_path):
    model = tmp_path / "mf.pte"
    model.write_bytes(b"fake program")
    seen = _probe(classpath, model, iterations=1, warmup=0)
    assert seen["shape"] == [1, 3, 224, 224] and seen["arguments_per_call"] == [1]


def test_kotlin_compiler_matches_the_app():
    """scripts/kotlin pins the Kotlin the app builds with (gradle/libs.versions.toml)."""
    pinned = json.loads((REPO / "scripts/kotlin/package.json").read_text())["dependencies"]["kotlin-compiler"]
    catalog = tomllib.loads((REPO / "android_demo/gradle/libs.versions.toml").read_text())
    assert pinned == catalog["versions"]["kotlin"]
