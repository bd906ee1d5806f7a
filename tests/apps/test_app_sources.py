"""What can be checked of android_demo/ and ios_demo/ without a phone, an
Android SDK/NDK or Xcode:

- the shared C++ core and the JNI bridge compile in full with the Android and
  iOS configurations, against the ExecuTorch headers of the pip package, with
  tiny stand-ins for the two platform headers platform.cpp uses
  (test_arm64_link.py links them for AArch64 against the wheel's libraries);
- the Objective-C++ bridge compiles against GNUstep's Foundation;
- Kotlin, Swift and Objective-C headers parse (tree-sitter grammars from PyPI);
- the shell scripts pass bash -n and shellcheck, and run end to end against
  stand-in adb / xcrun devicectl / python (tests/apps/fakes);
- Gradle, XcodeGen and manifest files parse, and the names that tie the parts
  together agree (JNI symbols, intent extras, launch arguments, versions);
- source checks where no compiler is possible (Swift async overloads, no
  spinner while timing, the headless activity's files directory).

test_android_cmake.py links the Android native build against a fake ExecuTorch
install; test_android_jvm.py compiles and runs the Android benchmark Kotlin.

Nothing here skips: the compilers, headers and JDK come from
scripts/debian-packages.txt and the Python tools from the test extra, both
installed by `make test`, so a missing one is a broken setup and fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANDROID = REPO / "android_demo"
IOS = REPO / "ios_demo"
CORE = REPO / "native" / "mfbench"
STUBS = Path(__file__).parent / "stubs"
FAKES = Path(__file__).parent / "fakes"
KOTLIN_SRC = ANDROID / "app" / "src" / "main" / "java" / "org" / "mobileformer" / "demo"
JNI_BRIDGE = ANDROID / "app" / "src" / "main" / "cpp" / "mfbench_jni.cpp"
OBJC_BRIDGE = IOS / "MobileFormerBench" / "Bridge" / "MFBenchBridge.mm"
CORE_SOURCES = sorted((CORE / "src").glob("*.cpp"))


# --------------------------------------------------------------------------- helpers


def executorch_include() -> Path:
    """The C++ headers inside the executorch pip package (found without importing it)."""
    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the executorch package is not installed (pip install -e .)")
    inc = Path(spec.submodule_search_locations[0]) / "include"
    if not (inc / "executorch" / "extension" / "module" / "module.h").is_file():
        pytest.fail(f"no ExecuTorch C++ headers under {inc}")
    return inc


def jni_include() -> list[Path]:
    """jni.h and jni_md.h of a JDK (the Android NDK has its own, same API)."""
    homes = [Path(os.environ["JAVA_HOME"])] if os.environ.get("JAVA_HOME") else []
    homes += sorted(Path("/usr/lib/jvm").glob("*"))
    if shutil.which("javac"):
        homes.append(Path(os.path.realpath(shutil.which("javac"))).parents[1])
    for home in homes:
        if (home / "include" / "jni.h").is_file():
            md = next((p.parent for p in (home / "include").glob("*/jni_md.h")), None)
            return [home / "include"] + ([md] if md else [])
    pytest.fail("no JDK with include/jni.h: run scripts/install_tools.sh (default-jdk-headless), or set JAVA_HOME")


def compiler(name: str) -> str:
    """A tool of scripts/debian-packages.txt: missing means the setup is broken, so fail."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/install_tools.sh (scripts/debian-packages.txt)")
    return path


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=kw.pop("timeout", 300), **kw)


def tool(name: str) -> str:
    """A console script installed with the test dependencies (next to this Python) or on PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file():
        return str(local)
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (pip install -e '.[test]')")
    return path


def et_flags(inc: Path) -> list[str]:
    return ["-isystem", inc, "-isystem", inc / "executorch/runtime/core/portable_type/c10",
            "-DC10_USING_CUSTOM_GENERATED_MACROS", '-DMFBENCH_EXECUTORCH_VERSION="1.5.1"']


# Compiled in full (code generated, objects written to the test's tmp_path), not only
# -fsyntax-only: template instantiation and inline code of the headers are checked too.
# test_arm64_link.py links the Android build for AArch64.
CXX = ["-std=c++17", "-c", "-Wall", "-Wextra", "-Werror"]


# --------------------------------------------------------------------------- C++


def test_core_sources_are_the_ones_the_apps_build():
    """android's CMakeLists names every core source; XcodeGen takes the whole src/ folder."""
    cmake = (ANDROID / "app/src/main/cpp/CMakeLists.txt").read_text()
    listed = set(re.findall(r"\$\{MFBENCH_DIR\}/src/(\w+\.cpp)", cmake))
    assert listed == {p.name for p in CORE_SOURCES}
    sources = [s["path"] for s in _project_yml()["targets"]["MobileFormerBench"]["sources"]]
    assert "../native/mfbench/src" in sources


@pytest.mark.parametrize("cxx", ["g++", "clang++"])
@pytest.mark.parametrize("tracer", [True, False], ids=["with-event-tracer", "release-libs"])
def test_android_core_and_jni_bridge_compile(cxx, tracer, tmp_path):
    """The NDK build of libmfbench_jni.so: core + bridge with __ANDROID__, with and
    without the event tracer (source build with devtools / without)."""
    flags = [*CXX, "-D__ANDROID__", "-I", STUBS / "android", "-I", CORE / "include", *et_flags(executorch_include())]
    flags += ["-DET_EVENT_TRACER_ENABLED"] if tracer else ["-DMFBENCH_NO_EVENT_TRACER"]
    for inc in jni_include():
        flags += ["-I", inc]
    proc = run([compiler(cxx), *flags, '-DMFBENCH_APP_VERSION="0.1.0"', *CORE_SOURCES, JNI_BRIDGE], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("cxx", ["g++", "clang++"])
def test_ios_core_compiles_latency_only(cxx, tmp_path):
    """The Xcode build of the core with the Swift PM release frameworks: __APPLE__
    (iOS device), no event tracer; Apple's two headers are stand-ins."""
    flags = [*CXX, "-D__APPLE__", "-U__linux__", "-U__unix__", "-U__gnu_linux__", "-I", STUBS / "apple",
             "-I", CORE / "include", *et_flags(executorch_include()), "-DMFBENCH_NO_EVENT_TRACER"]
    proc = run([compiler(cxx), *flags, *CORE_SOURCES], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "platform, flags, present, absent",
    [
        ("android", ["-D__ANDROID__", "-I", STUBS / "android"],
         ["__system_property_get", '"ro.product.model"', '"ro.soc.model"'], ["uname(&u)", "sysctlbyname"]),
        ("ios", ["-D__APPLE__", "-U__linux__", "-U__unix__", "-U__gnu_linux__", "-I", STUBS / "apple"],
         ["sysctlbyname", '"hw.machine"', '"iOS "'], ["__system_property_get", "/proc/cpuinfo", '"macOS "']),
        ("linux", [], ["uname(&u)", "/proc/cpuinfo"], ["__system_property_get", "sysctlbyname"]),
    ],
)
def test_platform_cpp_takes_the_right_branch(platform, flags, present, absent, tmp_path):
    """platform.cpp's #if branches: each platform compiles its own code and no other's."""
    src = CORE / "src" / "platform.cpp"
    cxx = compiler("g++")
    proc = run([cxx, *CXX, *flags, "-I", CORE / "include", src], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    pre = run([cxx, "-std=c++17", "-E", "-P", *flags, "-I", CORE / "include", src])
    assert pre.returncode == 0, pre.stderr
    body = pre.stdout[pre.stdout.find("namespace mfbench"):]
    for text in present:
        assert text in body, f"{platform}: {text} missing"
    for text in absent:
        assert text not in body, f"{platform}: {text} should not be compiled"


def test_objective_cxx_bridge_compiles_against_gnustep(tmp_path):
    """MFBenchBridge.mm with clang against GNUstep's Foundation (Apple's is not on
    Linux). NS_SWIFT_NAME becomes clang's swift_name attribute, so the Swift names
    are checked against the selectors too. No ARC here (GNUstep's GCC runtime)."""
    clang = compiler("clang++")
    gnustep = Path("/usr/include/GNUstep")
    gcc_objc = sorted(Path("/usr/lib/gcc").glob("*/*/include/objc/objc.h"))
    if not (gnustep / "Foundation" / "Foundation.h").is_file() or not gcc_objc:
        pytest.fail("GNUstep Foundation headers missing: run scripts/install_tools.sh (libgnustep-base-dev)")
    objc_dir = gcc_objc[-1].parents[1]  # .../include, holding objc/
    flags = ["-x", "objective-c++", *CXX, "-fobjc-runtime=gcc", "-fobjc-exceptions", "-fexceptions",
             "-DGNUSTEP", "-DGNUSTEP_BASE_LIBRARY=1", "-DGNU_RUNTIME=1", "-D_NATIVE_OBJC_EXCEPTIONS",
             "-fconstant-string-class=NSConstantString", "-Werror=swift-name-attribute",
             "-DNS_SWIFT_NAME(_name)=__attribute__((swift_name(#_name)))",
             # only objc/ from GCC's dir: its other headers would shadow clang's own
             "-isystem", _objc_only(objc_dir), "-isystem", gnustep, "-I", CORE / "include"]
    proc = run([clang, *flags, OBJC_BRIDGE], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def _objc_only(gcc_include: Path) -> Path:
    d = Path(os.environ.get("PYTEST_TMPDIR", "/tmp")) / "mfbench-objc-include"
    d.mkdir(parents=True, exist_ok=True)
    link = d / "objc"
    if not link.exists():
        link.symlink_to(gcc_include / "objc")
    return d


# --------------------------------------------------------------------------- Kotlin, Swift, ObjC syntax


def _parser(grammar: str):
    """A tree-sitter parser for one of the test extra's grammars (tree_sitter_kotlin, ...)."""
    import tree_sitter

    return tree_sitter.Parser(tree_sitter.Language(importlib.import_module(grammar).language()))


def _parse_errors(grammar: str, path: Path, text: str | None = None) -> list[str]:
    src = (path.read_text() if text is None else text).encode()
    tree = _parser(grammar).parse(src)
    lines = src.decode().splitlines()
    found: list[str] = []

    def walk(node):
        if node.is_error or node.is_missing:
            row = node.start_point[0]
            kind = "missing " + node.type if node.is_missing else "syntax error"
            found.append(f"{path.name}:{row + 1}: {kind}: {lines[row].strip()[:120]}")
        elif node.has_error:
            for child in node.children:
                walk(child)

    walk(tree.root_node)
    return found


KOTLIN_FILES = sorted([*ANDROID.rglob("*.kt"), *ANDROID.rglob("*.kts")])
SWIFT_FILES = sorted(IOS.rglob("*.swift"))
OBJC_HEADERS = sorted((IOS / "MobileFormerBench" / "Bridge").glob("*.h"))


@pytest.mark.parametrize("path", KOTLIN_FILES, ids=lambda p: str(p.relative_to(ANDROID)))
def test_kotlin_parses(path):
    assert _parse_errors("tree_sitter_kotlin", path) == []


@pytest.mark.parametrize("path", SWIFT_FILES, ids=lambda p: str(p.relative_to(IOS)))
def test_swift_parses(path):
    assert _parse_errors("tree_sitter_swift", path) == []


# Calls the app makes that have an `async` overload on iOS 17: inside an async
# function Swift picks that overload, and the call then needs `await` (and in a
# timed region it would measure a suspension). Name -> the async API.
ASYNC_OVERLOADS = {
    "prediction": "MLModel.prediction(from:options:) async throws (iOS 17)",
    "measure": "Clock.measure(_:) async (Swift 5.7 clocks)",
}


def _unawaited_async_overloads(path: Path, text: str | None = None) -> list[str]:
    """Calls to ASYNC_OVERLOADS inside an `async` function that no `await` covers."""
    src = (path.read_text() if text is None else text).encode()
    found: list[str] = []

    def in_async_function(node) -> bool:
        while node is not None and node.type != "function_declaration":
            if node.type == "await_expression":
                return False
            node = node.parent
        return node is not None and any(c.type == "async" for c in node.children)

    def walk(node):
        if node.type == "call_expression":
            callee = node.children[0]
            name = callee.children[-1] if callee.type == "navigation_expression" else callee
            name = name.children[-1] if name.type == "navigation_suffix" else name
            text_ = src[name.start_byte:name.end_byte].decode()
            if text_ in ASYNC_OVERLOADS and in_async_function(node):
                found.append(f"{path.name}:{node.start_point[0] + 1}: {text_} -> {ASYNC_OVERLOADS[text_]}")
        for child in node.children:
            walk(child)

    walk(_parser("tree_sitter_swift").parse(src).root_node)
    return found


@pytest.mark.parametrize("path", SWIFT_FILES, ids=lambda p: str(p.relative_to(IOS)))
def test_swift_async_overloads_are_awaited_or_synchronous(path):
    """`try model.prediction(from:)` in an async function does not compile on iOS 17
    ("expression is 'async' but is not marked with 'await'"): time in a sync helper."""
    assert _unawaited_async_overloads(path) == []


def test_async_overload_check_can_fail(tmp_path):
    bad = """func run() async throws {
    let e = try clock.measure { _ = try model.prediction(from: x) }
    _ = try await model.prediction(from: x)
}
func sync() throws { _ = try model.prediction(from: x) }
"""
    found = _unawaited_async_overloads(tmp_path / "x.swift", bad)
    assert [f.split(": ")[1] for f in found] == ["measure -> " + ASYNC_OVERLOADS["measure"],
                                                  "prediction -> " + ASYNC_OVERLOADS["prediction"]]
    assert all(f.startswith("x.swift:2:") for f in found)


# Foundation macros the grammar does not know, expanded as the Apple SDK defines them
# (line structure kept, so error lines still match the file).
FOUNDATION_MACROS = [
    (r"^NS_ASSUME_NONNULL_(BEGIN|END)$", ""),
    (r"\bFOUNDATION_EXPORT\b", "extern"),
    (r"\bNS_ENUM\((\w+), (\w+)\)", r"enum \2 : \1 \2; enum \2 : \1"),
]


@pytest.mark.parametrize("path", OBJC_HEADERS, ids=lambda p: p.name)
def test_objc_header_parses(path):
    text = path.read_text()
    for pattern, repl in FOUNDATION_MACROS:
        text = re.sub(pattern, repl, text, flags=re.M)
    assert _parse_errors("tree_sitter_objc", path, text) == []


def test_parsers_catch_errors(tmp_path):
    """The syntax checks above can fail: a broken file of each language does."""
    bad = {"x.kt": "fun main( { val = }", "x.swift": "struct A { var x: = }", "x.h": "@interface A : { @end"}
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
    assert _parse_errors("tree_sitter_kotlin", tmp_path / "x.kt")
    assert _parse_errors("tree_sitter_swift", tmp_path / "x.swift")
    assert _parse_errors("tree_sitter_objc", tmp_path / "x.h")

# --------------------------------------------------------------------------- names that must agree


def _kotlin(rel: str) -> str:
    return (KOTLIN_SRC / rel).read_text()


def test_jni_symbols_match_kotlin_declarations():
    """Every `external fun` of NativeBench has its Java_<package>_<class>_<name> in the
    bridge with one C parameter per Kotlin parameter (plus JNIEnv*, jclass)."""
    kt = _kotlin("bench/NativeBench.kt")
    package = re.search(r"^package ([\w.]+)", kt, re.M).group(1)
    cls = re.search(r"^object (\w+)", kt, re.M).group(1)
    cpp = JNI_BRIDGE.read_text()
    externals = re.findall(r"@JvmStatic\s+external fun (\w+)\(([^)]*)\)", kt)
    assert {name for name, _ in externals} == {"runBenchmark", "hasEventTracer", "executorchVersion"}
    for name, params in externals:
        symbol = f"Java_{package.replace('.', '_')}_{cls}_{name}"
        m = re.search(re.escape(symbol) + r"\(([^)]*)\)", cpp)
        assert m, f"{symbol} missing in {JNI_BRIDGE.name}"
        kotlin_params = [p for p in params.split(",") if p.strip()]
        c_params = [p for p in m.group(1).split(",") if p.strip()]
        assert len(c_params) == len(kotlin_params) + 2, (name, c_params, kotlin_params)
    run_params = dict(externals)["runBenchmark"]
    assert [p.split(":")[0].strip() for p in run_params.split(",") if p.strip()] == [
        "modelPath", "iterations", "warmup", "threads", "etdumpPath", "label", "deviceName"]
    # the exception class the bridge throws exists under that name
    thrown = re.search(r'kBenchmarkException = "([\w/]+)"', cpp).group(1)
    exc = KOTLIN_SRC.parents[2] / (thrown + ".kt")
    assert exc.is_file() and f"class {thrown.rsplit('/', 1)[1]}(message: String)" in exc.read_text()
    assert 'System.loadLibrary("mfbench_jni")' in kt
    assert "add_library(mfbench_jni SHARED" in (ANDROID / "app/src/main/cpp/CMakeLists.txt").read_text()


def test_intent_extras_agree():
    """The extras run_benchmark.sh and the README pass are the ones BenchmarkActivity reads."""
    kt = _kotlin("BenchmarkActivity.kt")
    extras = dict(re.findall(r'const val (\w+) = "(\w+)"', kt.split("object Extras", 1)[1].split("}", 1)[0]))
    names = set(extras.values())
    assert names == {"model", "iters", "warmup", "threads", "out", "label", "engine", "etdump"}
    script = (ANDROID / "run_benchmark.sh").read_text()
    used = set(re.findall(r"--e[siz] (\w+)", script))
    assert used and used <= names, used - names
    readme = (ANDROID / "README.md").read_text()
    assert set(re.findall(r"--e[siz] (\w+)", readme)) <= names
    for name in names:
        assert f"`{name}`" in readme, f"extra {name} not documented in the README"


def test_manifest_declares_both_activities():
    ns = "{http://schemas.android.com/apk/res/android}"
    root = ET.parse(ANDROID / "app/src/main/AndroidManifest.xml").getroot()
    activities = {a.get(ns + "name"): a for a in root.iter("activity")}
    assert set(activities) == {".MainActivity", ".BenchmarkActivity"}
    for name, activity in activities.items():
        assert activity.get(ns + "exported") == "true"  # adb's am start needs it for BenchmarkActivity
        assert (KOTLIN_SRC / (name.lstrip(".") + ".kt")).is_file()
    launcher = activities[".MainActivity"].find("intent-filter/category")
    assert launcher is not None and launcher.get(ns + "name") == "android.intent.category.LAUNCHER"
    for res in (ANDROID / "app/src/main/res").rglob("*.xml"):
        ET.parse(res)


def test_ios_launch_arguments_agree():
    """The options run_benchmark.sh passes after --headless are the ones Headless.swift parses."""
    swift = (IOS / "MobileFormerBench/Bench/Headless.swift").read_text()
    parsed = set(re.findall(r'case "(--[\w-]+)"', swift))
    script = (IOS / "run_benchmark.sh").read_text()
    args_block = script[script.index("args=(--headless"):script.index('echo "== running')]
    passed = set(re.findall(r"(--[a-z][\w-]*)", args_block))
    assert passed <= parsed, passed - parsed
    assert {"--headless", "--model", "--iters", "--compute-units", "--run-id"} <= passed


# Indicators that animate on their own (indeterminate): each frame costs CPU/GPU
# time that the timed run would measure.
ANIMATED_INDICATORS = r"\b(CircularProgressIndicator|LinearProgressIndicator)\(|\bProgressView\(\s*\)"


@pytest.mark.parametrize("path", [*sorted((KOTLIN_SRC / "ui").glob("*.kt")), KOTLIN_SRC / "BenchmarkActivity.kt",
                                  *sorted((IOS / "MobileFormerBench" / "App").glob("*.swift"))],
                         ids=lambda p: p.name)
def test_no_animation_while_timing(path):
    """No spinner on screen during a run, interactive or headless, on either platform."""
    code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("//"))
    assert not re.search(ANIMATED_INDICATORS, code)


def test_ios_bad_arguments_status_goes_where_the_script_waits():
    """A headless launch whose arguments do not parse writes its status.json under the
    --out-dir/--run-id it was given, the folder run_benchmark.sh polls; it wrote
    results/invalid-arguments/ and the script waited its whole timeout (issue 32)."""
    app = (IOS / "MobileFormerBench/App/MobileFormerBenchApp.swift").read_text()
    headless = (IOS / "MobileFormerBench/Bench/Headless.swift").read_text()
    script = (IOS / "run_benchmark.sh").read_text()
    assert "invalid-arguments" not in app
    failure = app[app.index("case .failure"):]
    failure = failure[:failure.index("}")]
    assert "let arguments = ProcessInfo.processInfo.arguments" in failure
    assert "HeadlessOptions.resultDirectory(forUnparsable: arguments)" in failure
    assert "HeadlessRunner.writeStatus(dir: statusDirectory" in app
    fallback = _swift_function(headless, "static func resultDirectory(forUnparsable")
    assert 'value(after: "--run-id")' in fallback and 'value(after: "--out-dir")' in fallback
    assert "return o.resultDirectory" in fallback
    # the same folder as a good run's, and the one the script passes and polls
    assert "let dir = options.resultDirectory" in headless
    assert '--out-dir results --run-id "$run_id"' in script
    assert '--source "Documents/results/$run_id/status.json"' in script


def test_ios_result_bars_use_the_results_own_model():
    """Each result's block bars come from the manifest of the model it measured, not of the
    model selected now (a different one after the user picks another; issue 32)."""
    content = (IOS / "MobileFormerBench/App/ContentView.swift").read_text()
    vm = (IOS / "MobileFormerBench/App/BenchmarkViewModel.swift").read_text()
    assert "ResultView(result: result, model: result.model)" in content and "model: vm.selected" not in content
    assert vm.count("summary.model = model") == vm.count("ResultSummary.parse(json)") == 2


def test_ios_results_list_never_mixes_traced_and_untraced():
    vm = (IOS / "MobileFormerBench/App/BenchmarkViewModel.swift").read_text()
    keep = re.search(r"let kept = self\.results\.filter \{ old in done\.allSatisfy \{ \$0\.traced == old\.traced \} \}", vm)
    assert keep and "self.results = done + kept" in vm
    assert 'traced: doc["traced"] as? Bool' in (SWIFT_BENCH / "LatencyResult.swift").read_text()


def test_swift_calls_the_bridge_by_its_swift_names():
    header = (IOS / "MobileFormerBench/Bridge/MFBenchBridge.h").read_text()
    swift = "\n".join(p.read_text() for p in SWIFT_FILES)
    for swift_name in re.findall(r"NS_SWIFT_NAME\((\w+)\(", header):
        assert f"MFBenchBridge.{swift_name}(" in swift, swift_name
    assert "MFBenchBridge.hasEventTracer" in swift
    assert '#import "MFBenchBridge.h"' in (IOS / "MobileFormerBench/Bridge/MobileFormerBench-Bridging-Header.h").read_text()


# --------------------------------------------------------------------------- build files


def _toml(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def _project_yml() -> dict:
    import yaml  # test extra

    return yaml.safe_load((IOS / "project.yml").read_text())


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def test_gradle_versions_go_together():
    catalog = _toml(ANDROID / "gradle/libs.versions.toml")
    v = catalog["versions"]
    props = (ANDROID / "gradle/wrapper/gradle-wrapper.properties").read_text()
    gradle = re.search(r"gradle-([\d.]+)-bin\.zip", props).group(1)
    # AGP's minimum Gradle (developer.android.com/build/releases/gradle-plugin#updating-gradle)
    min_gradle = {(8, 5): "8.7", (8, 6): "8.7", (8, 7): "8.9", (8, 8): "8.10.2", (8, 9): "8.11.1",
                  (8, 10): "8.11.1", (8, 11): "8.13"}
    agp = _version(v["agp"])[:2]
    assert agp in min_gradle, f"AGP {v['agp']}: add its minimum Gradle here"
    assert _version(gradle) >= _version(min_gradle[agp]), (v["agp"], gradle)
    assert _version(v["kotlin"]) >= (2, 0)  # the Compose compiler plugin exists from Kotlin 2.0
    plugins = catalog["plugins"]
    assert plugins["kotlin-compose"]["version"]["ref"] == plugins["kotlin-android"]["version"]["ref"] == "kotlin"
    assert _version(v["cmake"]) >= (3, 24)  # ExecuTorch's package config
    lib = catalog["libraries"]["executorch-android"]
    assert lib["module"] == "org.pytorch:executorch-android"


def test_executorch_versions_match_the_exporter():
    """The AAR, the Swift PM branch and the C++ define use the executorch version of pyproject."""
    pin = re.search(r'"executorch==([\d.]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    assert _toml(ANDROID / "gradle/libs.versions.toml")["versions"]["executorch"] == pin
    proj = _project_yml()
    assert proj["packages"]["executorch"]["branch"] == f"swiftpm-{pin}"
    defines = proj["targets"]["MobileFormerBench"]["settings"]["base"]["GCC_PREPROCESSOR_DEFINITIONS"]
    assert f'MFBENCH_EXECUTORCH_VERSION=\\"{pin}\\"' in defines


def test_app_build_gradle():
    text = (ANDROID / "app/build.gradle.kts").read_text()
    assert int(re.search(r"minSdk = (\d+)", text).group(1)) >= 26
    assert 'applicationId = "org.mobileformer.demo"' in text
    assert "implementation(libs.executorch.android)" in text
    assert 'path = file("src/main/cpp/CMakeLists.txt")' in text
    assert "EXECUTORCH_ANDROID_ROOT" in text and "executorchAndroidRoot" in text
    # runtime.version: the Maven AAR's version only for the Maven AAR; a source build
    # or a local AAR records -PexecutorchVersion or null (issue 19, item 7)
    assert '"-DMFBENCH_EXECUTORCH_VERSION=$localExecutorchVersion"' in text
    assert 'if (executorchAar == null) libs.versions.executorch.get() else localExecutorchVersion' in text
    assert '"EXECUTORCH_VERSION", "\\"$aarExecutorchVersion\\""' in text
    # per-operator times are asked for, and the CMake build fails without them (test_android_cmake)
    assert '"-DMFBENCH_PER_OPERATOR=${if (perOperator) "ON" else "OFF"}"' in text
    # the devtools headers no install ships come from the checkout (issue 32, defect 1)
    assert '"-DEXECUTORCH_SOURCE_DIR=$executorchSourceDir"' in text and 'findProperty("executorchSourceDir")' in text
    settings = (ANDROID / "settings.gradle.kts").read_text()
    assert 'include(":app")' in settings and "google()" in settings and "mavenCentral()" in settings
    props = dict(
        line.split("=", 1) for line in (ANDROID / "gradle.properties").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert props["android.useAndroidX"] == "true"
    assert not list(ANDROID.rglob("*.jar")), "no binary jars in the repository (README: gradle wrapper)"


def test_xcodegen_project():
    proj = _project_yml()
    assert proj["options"]["deploymentTarget"]["iOS"] == "17.0"
    target = proj["targets"]["MobileFormerBench"]
    assert target["platform"] == "iOS" and target["type"] == "application"
    info = target["info"]["properties"]
    assert info["UIFileSharingEnabled"] is True and info["LSSupportsOpeningDocumentsInPlace"] is True
    settings = target["settings"]["base"]
    assert settings["PRODUCT_BUNDLE_IDENTIFIER"] == "org.mobileformer.demo"
    assert "MFBENCH_NO_EVENT_TRACER" in settings["GCC_PREPROCESSOR_DEFINITIONS"]
    # the frameworks' c10 headers #define it themselves (ExecuTorch's build_apple_frameworks.sh):
    # defining it again is a macro redefinition in every file that includes them (issue 32)
    assert "C10_USING_CUSTOM_GENERATED_MACROS" not in settings["GCC_PREPROCESSOR_DEFINITIONS"]
    assert "-all_load" in settings["OTHER_LDFLAGS"]
    assert (IOS / settings["SWIFT_OBJC_BRIDGING_HEADER"]).is_file()
    products = {d["product"] for d in target["dependencies"] if "package" in d}
    # the products of ExecuTorch's Swift package (Package.swift on its swiftpm-* branches)
    known = {"executorch", "executorch_llm", "backend_coreml", "backend_mps", "backend_xnnpack", "kernels_llm",
             "kernels_optimized", "kernels_quantized", "kernels_torchao"}
    known |= {p + "_debug" for p in known}
    assert {"executorch", "backend_xnnpack", "kernels_optimized"} <= products <= known
    assert {"sdk": "CoreML.framework"} in target["dependencies"]
    for source in target["sources"]:
        assert (IOS / source["path"]).is_dir(), source


# --------------------------------------------------------------------------- shell scripts

SCRIPTS = [ANDROID / "run_benchmark.sh", IOS / "run_benchmark.sh"]
# What both scripts source (options, export, manifest, report); not run on its own.
SCRIPT_LIB = REPO / "scripts" / "phone_bench_lib.sh"


@pytest.mark.parametrize("script", [*SCRIPTS, SCRIPT_LIB], ids=["android", "ios", "lib"])
def test_script_bash_syntax(script):
    assert os.access(script, os.X_OK) == (script != SCRIPT_LIB)
    proc = run(["bash", "-n", script])
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", [*SCRIPTS, SCRIPT_LIB, FAKES / "python"],
                         ids=["android", "ios", "lib", "fake-python"])
def test_script_shellcheck(script):
    # follows the scripts' source of SCRIPT_LIB (the repo's .shellcheckrc: external-sources)
    proc = run([tool("shellcheck"), "--severity=style", script])
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("script", [IOS / "run_benchmark.sh", SCRIPT_LIB], ids=["ios", "lib"])
def test_script_bash32(script):
    """macOS runs them with bash 3.2: none of the bash 4+ features that turn up most."""
    text = "\n".join(line for line in script.read_text().splitlines() if not line.lstrip().startswith("#"))
    for feature in (r"\b(declare|local|typeset) -[a-zA-Z]*[An]", r"\$\{\w+(,,?|\^\^?)\}", r"\b(mapfile|readarray|coproc)\b",
                    r"&>>", r"\|&", r";;&", r"\$\{\w+@[QEPAa]\}"):
        assert not re.search(feature, text), (script.name, feature)


@pytest.mark.parametrize("script", SCRIPTS, ids=["android", "ios"])
def test_script_help_and_usage_errors(script, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = run([script, "--help"], env=env)
    assert proc.returncode == 0 and "usage:" in proc.stdout and "--model" in proc.stdout
    proc = run([script], env=env)
    assert proc.returncode == 1 and "--model" in proc.stderr
    proc = run([script, "--model", tmp_path / "nope.pte"], env=env)
    assert proc.returncode == 1 and "no such model" in proc.stderr
    proc = run([script, "--model", "x.pte", "--iters", "ten"], env=env)
    assert proc.returncode == 1 and "whole number" in proc.stderr


def _fake_env(tmp_path: Path, **extra) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("adb", "xcrun"):
        target = bin_dir / name
        if not target.exists():
            target.symlink_to(FAKES / name)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "FAKE_ADB_ROOT": str(tmp_path / "device"), "FAKE_ADB_LOG": str(tmp_path / "adb.log"),
        "FAKE_XCRUN_ROOT": str(tmp_path / "container"), "FAKE_XCRUN_LOG": str(tmp_path / "xcrun.log"),
        "FAKE_PY_LOG": str(tmp_path / "py.log"), "FAKE_REAL_PYTHON": sys.executable,
    }
    env.update(extra)
    return env


def _model(tmp_path: Path, name: str) -> Path:
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    path = models / name
    if name.endswith(".mlpackage"):
        (path / "Data").mkdir(parents=True)
        (path / "Manifest.json").write_text("{}")
    else:
        path.write_bytes(b"fake program")
    (models / "manifest.json").write_text('{"profiling": {"delegate_blocks": ["stem", "head"]}}')
    return path


def _log(path: Path) -> list[list[str]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_android_script_end_to_end_with_fake_adb(tmp_path):
    model = _model(tmp_path, "mf26 int8.pte")
    out = tmp_path / "runs"
    env = _fake_env(tmp_path)
    proc = run([ANDROID / "run_benchmark.sh", "--model", model, "--iters", "7", "--warmup", "2", "--threads", "3",
                "--label", "it's int8", "--out-dir", out, "--python", FAKES / "python"], env=env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    calls = _log(tmp_path / "adb.log")
    pushed = [c for c in calls if "push" in c]
    assert [c[-1] for c in pushed] == ["/data/local/tmp/mobileformer/mf26 int8.pte",
                                       "/data/local/tmp/mobileformer/mf26 int8.manifest.json"]
    start = next(c for c in calls if c[:3] == ["-s", "emulator-5554", "shell"] and c[3].startswith("am start"))
    assert "-n org.mobileformer.demo/.BenchmarkActivity" in start[3]
    results = list(out.glob("mf26 int8-*.json"))
    assert len(results) == 1
    extras = json.loads(results[0].read_text())["extras"]
    assert extras["model"] == "/data/local/tmp/mobileformer/mf26 int8.pte"
    assert (extras["iters"], extras["warmup"], extras["threads"], extras["label"]) == ("7", "2", "3", "it's int8")
    assert extras["out"].startswith("/sdcard/Android/data/org.mobileformer.demo/files/results/")
    report = _log(tmp_path / "py.log")[0]
    assert report[:3] == ["-m", "quant.report", str(results[0])]
    assert report[3:] == ["--manifest", str(model.parent / "manifest.json")]


def test_android_script_export_then_run(tmp_path):
    env = _fake_env(tmp_path)
    proc = run([ANDROID / "run_benchmark.sh", "--export", "mobile_former_26m", "--out-dir", tmp_path / "runs",
                "--python", FAKES / "python", "--no-report"], env=env)
    assert proc.returncode == 0, proc.stderr
    calls = _log(tmp_path / "py.log")
    assert calls == [["-m", "quant.export", "--backend", "xnnpack", "--model", "mobile_former_26m",
                      "--out", f"{tmp_path}/runs/export/mobile_former_26m"]]
    assert list((tmp_path / "runs").glob("tiny-*.json"))


@pytest.mark.parametrize(
    "case, extra_env, message",
    [
        ("no adb", {"PATH": "/usr/bin:/bin"}, "adb not found"),
        ("no device", {"FAKE_ADB_DEVICES": ""}, "no Android device"),
        ("two devices", {"FAKE_ADB_DEVICES": "a b"}, "several devices"),
        ("app missing", {"FAKE_ADB_NO_APP": "1"}, "is not installed"),
        ("run fails", {"FAKE_ADB_FAIL": "1"}, "failed on the device: cannot load x.pte"),
        # nothing written at all: the log's reason, at once instead of after --timeout
        ("nothing written", {"FAKE_ADB_UNWRITABLE": "1"}, "failed on the device: cannot write /sdcard/"),
    ],
)
def test_android_script_errors(tmp_path, case, extra_env, message):
    env = _fake_env(tmp_path, **extra_env)
    started = time.monotonic()
    proc = run([ANDROID / "run_benchmark.sh", "--model", _model(tmp_path, "m.pte"), "--out-dir", tmp_path / "runs",
                "--python", FAKES / "python", "--timeout", "30"], env=env)
    assert proc.returncode == 1 and message in proc.stderr, (case, proc.stderr)
    assert time.monotonic() - started < 20, "waited for the timeout instead of failing fast"


def test_headless_activity_creates_its_files_dir_first():
    """BenchmarkActivity asks for getExternalFilesDir() before anything else, so the
    system creates the app's directory on a fresh install (the app may not mkdirs()
    it) and the result or .error file can be written."""
    kt = _kotlin("BenchmarkActivity.kt")
    body = kt[kt.index("private fun outputFile()"):]
    body = body[body.index("{") + 1:body.index("\n    }\n")]
    statements = [line.strip() for line in body.splitlines() if line.strip() and not line.strip().startswith("//")]
    assert statements[0] == "val appDir = getExternalFilesDir(null)"
    assert kt.index("val out = outputFile()") < kt.index("parseRequest(out)")


def test_ios_script_coreml_end_to_end_with_fake_devicectl(tmp_path):
    model = _model(tmp_path, "mf26.mlpackage")
    env = _fake_env(tmp_path)
    proc = run([IOS / "run_benchmark.sh", "--model", model, "--iters", "5", "--out-dir", tmp_path / "runs",
                "--python", FAKES / "python"], env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    calls = _log(tmp_path / "xcrun.log")
    copies = [c for c in calls if c[:4] == ["devicectl", "device", "copy", "to"]]
    dests = [c[c.index("--destination") + 1] for c in copies]
    assert dests[0].startswith("Documents/inbox/") and dests[0].endswith("/mf26.mlpackage")
    assert dests[1].endswith("/mf26.manifest.json")
    launch = next(c for c in calls if c[:4] == ["devicectl", "device", "process", "launch"])
    assert "--terminate-existing" in launch and "--cleanup" in launch
    results = sorted(p.name for p in (tmp_path / "runs").glob("mf26-*/*.json"))
    assert results == [f"mf26.{u}.json" for u in sorted(["all", "cpuAndGPU", "cpuAndNeuralEngine", "cpuOnly"])]
    reports = _log(tmp_path / "py.log")
    assert len(reports) == 4 and all(r[:2] == ["-m", "quant.report"] and "--manifest" in r for r in reports)


def test_ios_script_executorch_one_unit(tmp_path):
    env = _fake_env(tmp_path)
    proc = run([IOS / "run_benchmark.sh", "--model", _model(tmp_path, "mf26.pte"), "--threads", "2", "--etdump",
                "--out-dir", tmp_path / "runs", "--python", FAKES / "python", "--no-report"], env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(next((tmp_path / "runs").glob("mf26-*/mf26.json")).read_text())
    app = doc["app_args"]
    assert app[app.index("--threads") + 1] == "2" and "--etdump" in app


@pytest.mark.parametrize(
    "case, extra_env, message",
    [
        ("no xcrun", {"PATH": "/usr/bin:/bin"}, "xcrun not found"),
        ("no device", {"FAKE_XCRUN_DEVICES": ""}, "no paired iOS device"),
        ("two devices", {"FAKE_XCRUN_DEVICES": "a b"}, "several iOS devices"),
        ("run fails", {"FAKE_XCRUN_FAIL": "1"}, "failed on the device: cannot load model"),
    ],
)
def test_ios_script_errors(tmp_path, case, extra_env, message):
    env = _fake_env(tmp_path, **extra_env)
    proc = run([IOS / "run_benchmark.sh", "--model", _model(tmp_path, "m.pte"), "--out-dir", tmp_path / "runs",
                "--python", FAKES / "python", "--timeout", "10"], env=env, timeout=120)
    assert proc.returncode == 1 and message in proc.stderr, (case, proc.stderr)


# --------------------------------------------------------------------------- the Swift writer against the schema
#
# No Swift compiler here, so ios_demo's Core ML result is rebuilt from the source: every
# `.object([("key", value), ...])` literal of the writer becomes a dict, literals as written
# and each computed value a sample of what its expression gives (SWIFT_EXPRESSIONS, each
# sample tied to the source by a check below), and the document is checked against
# docs/schemas/latency.schema.json with every keyword on. Values a function picks from a
# set (compute-unit raw values, device names) are checked against the schema one by one.

SWIFT_BENCH = IOS / "MobileFormerBench" / "Bench"
# Free text (names, labels) and numbers: any sample of the type passes the schema.
SWIFT_SAMPLES = {".string(": "text", ".integer(": 1, ".number(": 1.0, ".optional(": None}
# Computed values whose form the schema constrains: expression -> sample of what it gives.
SWIFT_EXPRESSIONS = {
    ".string(created)": "2026-12-07T14:40:13Z",  # DeviceFacts.utcNow: ISO8601DateFormatter, internet time, UTC
    ".string(fingerprint.sha256)": "0" * 64,  # ModelStore.fingerprint: "%02x" per digest byte
    ".string(url.lastPathComponent)": "mf26.mlpackage",
    ".string(units.rawValue)": "cpuOnly",  # ComputeUnitChoice's raw values: checked one by one
}


def _swift_balanced(text: str, start: int) -> int:
    """Index just past the bracket that closes the one opening at ``start`` (strings skipped)."""
    depth, i, closing = 0, start, {"(": ")", "[": "]"}
    while True:
        c = text[i]
        if c == '"':
            i = text.index('"', i + 1)
            while text[i - 1] == "\\":
                i = text.index('"', i + 1)
        elif c in closing:
            depth += 1
        elif c in ")]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1


def _swift_object(text: str, start: int, named: dict) -> dict:
    """The ``.object([...])`` literal at ``start`` as a sample dict."""
    body = text[start + len(".object(["):_swift_balanced(text, start + len(".object")) - 2]
    doc, i = {}, 0
    while (i := body.find("(", i)) >= 0:
        key = re.match(r'\(\s*"(\w+)",\s*', body[i:])
        end = _swift_balanced(body, i)
        if key:
            doc[key.group(1)] = _swift_value(body[i + key.end():end - 1].strip(), named)
        i = end
    return doc


def _swift_value(expr: str, named: dict):
    if expr.startswith(".object(["):
        return _swift_object(expr, 0, named)
    if literal := re.fullmatch(r'\.string\("([^"\\]*)"\)', expr):
        return literal.group(1)
    if literal := re.fullmatch(r"\.bool\((true|false)\)", expr):
        return literal.group(1) == "true"
    if literal := re.fullmatch(r"\.integer\((\d+)\)", expr):
        return int(literal.group(1))
    if literal := re.fullmatch(r"\.number\((\d+(?:\.\d+)?)\)", expr):
        return float(literal.group(1))
    if expr == ".null":
        return None
    if expr in SWIFT_EXPRESSIONS:
        return SWIFT_EXPRESSIONS[expr]
    if expr.startswith(".array("):
        return named.get(expr, [])
    if expr in named:
        return named[expr]
    for prefix, sample in SWIFT_SAMPLES.items():
        if expr.startswith(prefix):
            return sample
    raise AssertionError(f"the Swift writer writes {expr!r}: teach this test what JSON it is")


def _swift_core_ml_result() -> dict:
    store, latency = (SWIFT_BENCH / "ModelStore.swift").read_text(), (SWIFT_BENCH / "LatencyResult.swift").read_text()
    bench = (SWIFT_BENCH / "CoreMLBenchmark.swift").read_text()
    named = {"DeviceFacts.json": _swift_object(store, store.index(".object(", store.index("static var json")), {}),
             "LatencyStats(samples: samples).json": _swift_object(latency, latency.index(".object(", latency.index("var json")), {})}
    operator = _swift_object(bench, bench.index(".object(", bench.index("rows.append(")), {})
    named[".array(operators)"] = [operator]
    named[".array(samples.map { .number($0) })"] = [1.0]
    return _swift_object(bench, bench.index(".object(", bench.index('("format"') - 40), named)


def _swift_function(source: str, signature: str) -> str:
    """The text of the function or property starting at ``signature``, up to its closing brace."""
    start = source.index(signature)
    depth, i = 0, source.index("{", start)
    while True:
        depth += {"{": 1, "}": -1}.get(source[i], 0)
        i += 1
        if depth == 0:
            return source[start:i]


def test_swift_core_ml_result_follows_the_latency_schema():
    """Every keyword on (pattern, enum, minimum, ...): the placeholders the old check needed
    switched them off, and so let `"unknown"` device names through (issue 32)."""
    from tests.schemas import violations

    doc = _swift_core_ml_result()
    assert doc["format"] == "mobileformer-latency/1" and doc["runtime"]["name"] == "coreml"
    assert set(doc["operators"][0]) >= {"estimated_cost", "compute_device", "supported_devices"}
    assert doc["threads"] is None and doc["traced"] is False
    problems = violations(doc, "latency")
    assert not problems, problems


def test_swift_values_picked_from_a_set_are_the_schemas():
    """The compute-unit raw values and every device name the writer can give are in the
    schema's enums; the samples above are what the source computes."""
    from tests.schemas import validator

    schema = validator("latency").schema
    bench = (SWIFT_BENCH / "CoreMLBenchmark.swift").read_text()
    cases = re.search(r"enum ComputeUnitChoice: String[^{]*\{\s*case ([\w, ]+)\n", bench).group(1)
    units = [c.strip() for c in cases.split(",")]
    assert set(units) <= set(schema["properties"]["runtime"]["properties"]["compute_units"]["enum"])
    names = _swift_function(bench, "static func deviceName(")
    returned = re.findall(r'return "(\w*)"', names)
    assert returned and set(returned) <= set(schema["$defs"]["operator"]["properties"]["compute_device"]["enum"])
    assert set(returned) <= set(schema["$defs"]["operator"]["properties"]["supported_devices"]["items"]["enum"])
    assert re.findall(r"return (\S+)", names) == [f'"{r}"' for r in returned] + ["nil"] * names.count("return nil")
    store = (SWIFT_BENCH / "ModelStore.swift").read_text()
    now = _swift_function(store, "static var utcNow")
    assert "[.withInternetDateTime]" in now and 'TimeZone(identifier: "UTC")' in now
    assert 'String(format: "%02x", $0)' in store


# --------------------------------------------------------------------------- the AAR fakes against the real API

JVM = Path(__file__).parent / "jvm"
AAR_API = JVM / "executorch_android_api.json"


def _fake_mismatches(fakes: dict, real: dict) -> list[str]:
    """Each function or constant of the fakes that the real classes do not have exactly so."""
    problems = []
    for cls, members in fakes.items():
        if cls not in real:
            problems.append(f"{cls}: no such class in the AAR")
            continue
        for fun in members["functions"]:
            if fun not in real[cls]["functions"]:
                same_name = [f for f in real[cls]["functions"] if f["name"] == fun["name"]]
                problems.append(f"{cls}.{fun['name']}{fun['params']} -> {fun['returns']}: the AAR has {same_name}")
        for name, value in members["constants"].items():
            if real[cls]["constants"].get(name) != value:
                problems.append(f"{cls}.{name} = {value}: the AAR has {real[cls]['constants'].get(name)}")
    return problems


def test_aar_fakes_have_the_real_signatures():
    """The JVM test's stand-ins for Module, Tensor and EValue declare nothing the pinned
    release's Module.kt / Tensor.kt / EValue.kt do not (name, static or not, parameter types,
    defaults, return type, constant values): the Kotlin the JVM test compiles against the
    fakes then compiles against the AAR too. The API file is derived from ExecuTorch's
    sources by tests/apps/jvm/kotlin_api.py (commit and sha256 of each source in the file)."""
    from tests.apps.jvm.kotlin_api import CLASSES, extract

    doc = json.loads(AAR_API.read_text())
    assert set(doc["api"]) == set(CLASSES) and len(doc["commit"]) == 40
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in doc["sha256"].values()) and len(doc["sha256"]) == 3
    fakes = extract((JVM / "org/pytorch/executorch/Fakes.kt").read_text())
    assert set(fakes) == set(CLASSES)
    assert _fake_mismatches(fakes, doc["api"]) == []
    # what the app calls on them is in the fakes, so in the AAR
    engines = _kotlin("bench/Engines.kt")
    for call in ("Module.load(", "module.loadMethod(", "module.forward(", "module.destroy()", "module.etdump(",
                 "EValue.from(", "Tensor.fromBlob(", "Module.LOAD_MODE_MMAP"):
        assert call in engines


def test_fake_signature_check_can_fail():
    from tests.apps.jvm.kotlin_api import extract

    doc = json.loads(AAR_API.read_text())
    wrong = extract("""class Module {
    fun forward(input: EValue): Array<EValue> = emptyArray()
    companion object {
        const val LOAD_MODE_MMAP = 2
        fun load(modelPath: String, loadMode: Int = 0): Module = Module()
    }
}""")
    found = _fake_mismatches(wrong, doc["api"])
    assert len(found) == 3 and any("LOAD_MODE_MMAP" in f for f in found)


def test_readmes_cover_the_setup_steps_that_used_to_be_missing():
    """Android: where Gradle finds the SDK, and the checkout a per-operator build needs; iOS:
    what to do when the Swift PM branch of the pinned version is missing (issue 32)."""
    android = (ANDROID / "README.md").read_text()
    assert "ANDROID_HOME" in android and "sdk.dir" in android and "local.properties" in android
    steps = android[android.index("### Per-operator timings"):android.index("## Run")]
    assert "-PexecutorchSourceDir=" in steps and "devtools/etdump" in steps
    ios = (IOS / "README.md").read_text()
    pin = _project_yml()["packages"]["executorch"]["branch"]
    fallback = ios[ios.index(f"If Xcode cannot resolve `{pin}`"):]
    assert "git ls-remote" in fallback and "build_apple_frameworks.sh" in fallback and "path:" in fallback
