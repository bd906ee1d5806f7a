"""quant.bench --arm64 X.tflite: LiteRT's aarch64 build counted under qemu-user.

Fast tests run the steady-count rule, the apt
configuration's confinement and quant.bench's dispatch of a .tflite. The slow one builds
the aarch64 root (Debian's python3.11, the ai-edge-litert and numpy wheels; cached in
$MOBILEFORMER_CACHE or ~/.cache/mobileformer) and counts a tiny-variant .tflite.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from quant import bench
from quant.aarch64 import qemu
from quant.backends import BACKENDS
from quant.backends.tflite import arm64 as tflite_arm64
from quant.backends.xnnpack import arm64 as xnnpack_arm64
from quant.backends.tflite.runtime import INSTALL_HINT, runtime_version
from tests.schemas import assert_follows


def test_steady_count_is_the_least_count_when_it_repeats():
    assert tflite_arm64.steady_count([35495396, 35495549, 35495396, 35495396]) == 35495396
    assert tflite_arm64.steady_count([100, 90, 95, 101]) is None
    assert tflite_arm64.steady_count([]) is None


def test_counted_runs_read_the_untraced_pass_and_skip_clock_reads_outside_inferences():
    entries = [("5", 0, 100), ("0", 1, 150), ("1", 0, 200), ("2", 0, 1200), ("0", 1, 1300), ("1", 1, 1400),
               ("2", 1, 2400), ("end", 0, 9999)]
    assert tflite_arm64.counted_runs(entries) == [1000, 1000]


def test_apt_configuration_stays_in_its_state_folder(tmp_path):
    config = tflite_arm64._apt_config(tmp_path / "state").read_text()
    paths = [value for line in config.splitlines() for value in line.split('"')[1::2] if value.startswith("/")]
    assert paths and all(p.startswith(str(tmp_path / "state")) for p in paths)
    for key in ("Dir::Etc::parts", "Dir::State::status", "Dir::Cache", "Dir::Etc::sourceparts"):
        assert key in config
    assert 'APT::Architectures "arm64"' in config
    assert all("[arch=arm64 " in line for line in (tmp_path / "state" / "sources.list").read_text().splitlines())


def test_a_failed_download_is_one_error_line_and_leaves_no_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILEFORMER_CACHE", str(tmp_path / "cache"))
    apt = tmp_path / "apt-get"
    apt.write_text("#!/bin/sh\necho 'Ign:1 http://deb.debian.org/debian bookworm InRelease'\n"
                   "echo 'E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease' >&2\nexit 100\n")
    apt.chmod(0o755)
    monkeypatch.setattr(tflite_arm64, "tool", lambda name: str(apt) if name == "apt-get" else name)
    with pytest.raises(qemu.Arm64Error) as failed:
        tflite_arm64.guest_root("2.3.0")
    assert str(failed.value) == ("apt-get update of Debian's arm64 package lists failed: "
                                 "E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease")
    assert list((tmp_path / "cache" / "arm64").iterdir()) == []


def test_bench_counts_pte_and_tflite_in_one_run_each_with_its_warmup(tmp_path, monkeypatch, capsys):
    tflite, pte = tmp_path / "m.tflite", tmp_path / "m2.pte"
    tflite.write_bytes(b"\0\0\0\0TFL3" + b"\0" * 56)
    pte.write_bytes(b"\0" * 64)
    calls = {}

    def count_pte(artifact, cpu, warmup, iterations, handle_blocks):
        calls[".pte"] = warmup
        return {"format": "mobileformer-latency/1", "device": {}, "runtime": {}, "artifact": {"file": artifact.name,
                "size_bytes": 64}, "latency_ms": {k: 1.0 for k in ("p50", "p90", "mean", "min", "max")},
                "samples_ms": [1.0], "operators": [], "blocks": [], "threads": 1, "warmup": warmup,
                "iterations": iterations, "instructions": {"per_inference": 5, "counted_runs": [5, 5], "counter": "t",
                                                           "operators_total": 4, "runtime_overhead": 1,
                                                           "delegate_calls": [4], "operators_exact": True}}

    def count_tflite(artifact, cpu, warmup, iterations):
        calls[".tflite"] = warmup
        return {"instructions": {"per_inference": 7, "counted_runs": [7] * iterations, "counter": "t"},
                "cycles": {"per_inference": 3, "clock_ghz": 2.42, "estimated_ms": 1e-6, "model": "m"},
                "features": ["dotprod", "fp16"], "runtime_version": "2.3.0", "samples_ms": [2.0] * iterations}

    monkeypatch.setattr(xnnpack_arm64, "count_instructions", count_pte)
    monkeypatch.setattr(tflite_arm64, "count_instructions", count_tflite)
    monkeypatch.setattr(qemu, "qemu_version", lambda qemu=None: "7.2.22")
    monkeypatch.setattr(bench, "check_artifact", lambda *a, **k: None)  # stand-in bytes: dispatch only
    assert bench.main(["--arm64", str(tflite), str(pte), "--out", str(tmp_path / "out")]) == 0
    assert calls == {".tflite": BACKENDS["tflite"].arm64_warmup, ".pte": 1} and BACKENDS["tflite"].arm64_warmup > 1
    result = json.loads((tmp_path / "out" / "m.cortex-a76.latency.json").read_text())
    assert_follows(result, "latency")
    assert result["runtime"] == {"name": "tflite", "version": "2.3.0", "compute_units": None}
    assert result["device"]["features"] == ["dotprod", "fp16"] and result["device"]["kind"] == "emulated"
    assert result["instructions"]["per_inference"] == 7 and result["threads"] == 1
    assert result["cycles"]["per_inference"] == 3
    table = capsys.readouterr().out
    assert "7 " in table and "-" in table  # no operator split for LiteRT


def test_a_corrupt_tflite_is_refused_before_any_setup(tmp_path, monkeypatch, capsys):
    pytest.importorskip("ai_edge_litert", reason=f"the tflite extra is not installed: {INSTALL_HINT}")
    monkeypatch.setenv("MOBILEFORMER_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\0\0\0\0TFL3" + b"\x07" * 56)
    assert bench.main(["--arm64", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot load bad.tflite") and err.count("\n") == 1
    assert not (tmp_path / "cache").exists() and not list((tmp_path / "out").glob("*.json"))


# --------------------------------------------------------------------------- under qemu


@pytest.fixture
def tiny_tflite(ten_class_exports) -> Path:
    """The tiny variant exported int8 for LiteRT: the session's (tests/conftest.py), scored in test_evaluate.py too."""
    pytest.importorskip("litert_torch", reason=f"the tflite extra is not installed: {INSTALL_HINT}")
    return ten_class_exports("tflite").artifact


@pytest.mark.slow
def test_tiny_tflite_counts_repeat_exactly_on_both_cores(tiny_tflite, tmp_path, capsys):
    counts = {}
    for run, cpu in enumerate(("cortex-a76", "cortex-a76", "armv9")):
        out = tmp_path / f"{cpu}-{run}"
        assert bench.main(["--arm64", "--cpu", cpu, str(tiny_tflite), "--out", str(out)]) == 0
        result = json.loads(next(out.glob(f"*.{cpu}.latency.json")).read_text())
        assert_follows(result, "latency")
        counts.setdefault(cpu, []).append(result["instructions"])
        assert 0 < result["cycles"]["per_inference"] < 2 * result["instructions"]["per_inference"]
        assert result["runtime"]["version"] == runtime_version() and result["device"]["cpu"] == cpu
        assert ("i8mm" in result["device"]["features"]) == (cpu == "armv9")
    first, again = counts["cortex-a76"]
    assert first == again  # run to run, every counted inference to the instruction
    runs = first["counted_runs"]
    assert len(runs) == 4 and runs.count(first["per_inference"]) >= 2 and first["per_inference"] == min(runs)
    # 64x64 tiny: ~0.6 M multiply-adds, 16 per sdot; LiteRT's interpreter and Python's call around it cost more
    assert 1e6 < first["per_inference"] < 2e7
    assert counts["armv9"][0]["per_inference"] != first["per_inference"]
    capsys.readouterr()
    tflite_arm64.guest_root(runtime_version())
    assert "building" not in capsys.readouterr().out  # the root was built once, then cached

