"""The latency result format (``docs/latency-format.md``): build, read, check, map to blocks."""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
from pathlib import Path

from . import __version__
from .errors import UserError
from .files import sha256_of, size_of

FORMAT = "mobileformer-latency/1"
MANIFEST_FORMAT = "mobileformer-manifest/1"
REQUIRED = {
    "format": str, "created": str, "tool": str, "label": str, "device": dict, "runtime": dict, "artifact": dict,
    "warmup": int, "iterations": int, "latency_ms": dict, "samples_ms": list, "operators": list,
    "blocks": list,
}
LATENCY_KEYS = ("p50", "p90", "mean", "min", "max")


class ResultError(UserError):
    """A result or manifest file that is missing, not JSON, truncated, or not in its format."""


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), ``q`` in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(samples_ms: list[float]) -> dict[str, float]:
    return {"p50": percentile(samples_ms, 50), "p90": percentile(samples_ms, 90),
            "mean": sum(samples_ms) / len(samples_ms), "min": min(samples_ms), "max": max(samples_ms)}


def host_device() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"kind": "host", "name": f"{platform.machine()} {platform.system()}", "os": f"{platform.system()} {platform.release()}",
            "cpu": cpu, "cores": os.cpu_count() or 0}


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _read_json(path: Path, what: str) -> object:
    if not path.is_file():
        raise ResultError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultError(f"{path} is not valid JSON (truncated?): {e}") from None
    except RecursionError:
        raise ResultError(f"{path} is nested too deeply to be a {what}") from None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_result(path: str | Path) -> dict:
    """Load and check a result file; one clear error for anything wrong with it, naming the file."""
    path = Path(path)
    result = _read_json(path, "result")
    if not isinstance(result, dict) or result.get("format") != FORMAT:
        raise ResultError(f"{path} is not a {FORMAT} result")
    for key, kind in REQUIRED.items():
        if not isinstance(result.get(key), kind):
            raise ResultError(f"{path}: field {key!r} is missing or not a {kind.__name__}")
    missing = [k for k in LATENCY_KEYS if not _is_number(result["latency_ms"].get(k))]
    if missing:
        raise ResultError(f"{path}: latency_ms lacks {', '.join(missing)}")
    checks = {  # what the report reads, beyond the top-level types
        "artifact.file (a file name)": isinstance(result["artifact"].get("file"), str) and "\0" not in result["artifact"]["file"],
        "artifact.size_bytes (an int >= 0)": isinstance(result["artifact"].get("size_bytes"), int)
        and result["artifact"]["size_bytes"] >= 0,
        "latency_ms.p50 and p90 (> 0)": result["latency_ms"]["p50"] > 0 and result["latency_ms"]["p90"] > 0,
        "threads (an int, or null: no thread setting)": result.get("threads") is None
        or (isinstance(result["threads"], int) and not isinstance(result["threads"], bool)),
        "blocks[].name and ms": all(isinstance(b, dict) and isinstance(b.get("name"), str) and _is_number(b.get("ms"))
                                    for b in result["blocks"]),
        "operators[].name": all(isinstance(op, dict) and isinstance(op.get("name"), str) for op in result["operators"]),
        "operators[] figures (ms, mean_ms, instructions: numbers; delegate_index: int; block: str)": all(
            isinstance(op, dict) and all(op.get(k) is None or _is_number(op[k]) for k in ("ms", "mean_ms", "instructions"))
            and (op.get("delegate_index") is None or isinstance(op["delegate_index"], int))
            and (op.get("block") is None or isinstance(op["block"], str)) for op in result["operators"]),
        "blocks[].instructions (a number)": all(not isinstance(b, dict) or b.get("instructions") is None
                                                 or _is_number(b["instructions"]) for b in result["blocks"]),
        "instructions (per_inference > 0, operators_total, runtime_overhead)": "instructions" not in result or (
            isinstance(result["instructions"], dict)
            and all(_is_number(result["instructions"].get(k)) for k in ("per_inference", "operators_total", "runtime_overhead"))
            and result["instructions"]["per_inference"] > 0),
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise ResultError(f"{path}: missing or invalid {', '.join(bad)}")
    return result


def _is_profiling(profiling) -> bool:
    """``profiling`` as quant.export writes it: block names per delegate call, per debug handle."""
    if not isinstance(profiling, dict):
        return False
    calls, handles = profiling.get("delegate_blocks", []), profiling.get("debug_handle_blocks", {})
    return (isinstance(calls, list) and all(isinstance(b, str) for b in calls) and isinstance(handles, dict)
            and all(isinstance(b, str) for b in handles.values()))


def read_manifest(path: str | Path) -> dict:
    """Load and check an export manifest (``quant.export``); errors name the file."""
    path = Path(path)
    manifest = _read_json(path, "manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ResultError(f"{path} is not a {MANIFEST_FORMAT} manifest")
    inp = manifest.get("input")
    checks = {
        "model, backend, precision": all(isinstance(manifest.get(k), str) for k in ("model", "backend", "precision")),
        "num_classes": isinstance(manifest.get("num_classes"), int) and manifest["num_classes"] >= 1,
        "input.shape": isinstance(inp, dict) and isinstance(inp.get("shape"), list) and len(inp["shape"]) == 4
        and all(isinstance(d, int) and d > 0 for d in inp["shape"]),
        "input.mean and std": isinstance(inp, dict) and all(
            isinstance(inp.get(k), list) and len(inp[k]) == 3 and all(map(_is_number, inp[k])) for k in ("mean", "std")),
        "profiling": _is_profiling(manifest.get("profiling", {})),
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise ResultError(f"{path}: missing or invalid {', '.join(bad)}")
    return manifest


def find_manifest(artifact_file: str | Path, search_dirs: list[Path]) -> Path | None:
    """``<stem>.manifest.json`` of an artifact, looked for in ``search_dirs``."""
    stem = Path(artifact_file).name.rsplit(".", 1)[0]
    for folder in search_dirs:
        candidate = Path(folder) / f"{stem}.manifest.json"
        if candidate.is_file():
            return candidate
    return None


def manifest_beside(artifact_file: str | Path, folder: Path) -> dict | None:
    """The checked manifest of an artifact in ``folder``, or None if there is none."""
    path = find_manifest(artifact_file, [folder])
    return read_manifest(path) if path else None


def verified_manifest(artifact: str | Path, verify: bool = True) -> dict | None:
    """The manifest beside ``artifact``, or None; with ``verify``, only if the artifact is the one it
    describes (its SHA-256): an fp32 program beside an int8 manifest, another model's weights or a
    corrupted copy would otherwise be labelled, shaped and scored by the wrong record."""
    artifact = Path(artifact)
    path = find_manifest(artifact, [artifact.parent])
    if path is None:
        return None
    manifest = read_manifest(path)
    if verify and manifest.get("sha256") != sha256_of(artifact):
        raise ResultError(f"{artifact.name} is not the artifact its manifest {path.name} describes (SHA-256 differs: "
                          "replaced, edited or corrupted); export it again, or pass --no-verify to use it as it is")
    return manifest


def latency_result(artifact: Path, manifest: dict | None, label: str, device: dict, runtime: dict, threads: int,
                   warmup: int, iterations: int, samples: list[float], traced: bool,
                   operators: list[dict] | None = None, etdump: Path | None = None) -> dict:
    """A ``mobileformer-latency/1`` result of ``artifact``, its manifest's fields applied."""
    result = {
        "format": FORMAT, "created": now_utc(), "tool": f"quant.bench {__version__}",
        "label": label, "device": device, "runtime": runtime,
        "artifact": {"file": artifact.name, "sha256": sha256_of(artifact), "size_bytes": size_of(artifact),
                     "model": None, "backend": None, "precision": None},
        "threads": threads, "warmup": warmup, "iterations": iterations, "traced": traced,
        "latency_ms": summarize(samples), "samples_ms": samples, "operators": operators or [], "blocks": [],
        "etdump": etdump.name if etdump else None,
    }
    if manifest:
        apply_manifest(result, manifest)
    return result


def apply_manifest(result: dict, manifest: dict) -> dict:
    """Fill what a phone cannot know from the export manifest: model, backend, precision, blocks.

    Operators get their paper block from ``profiling.delegate_blocks`` (one block per
    delegate call, exports made with ``--profile-blocks``); ``blocks`` then sums their
    times per block, in execution order.
    """
    artifact = result["artifact"]
    for key in ("model", "backend", "precision"):
        if artifact.get(key) is None:
            artifact[key] = manifest.get(key)
    delegate_blocks = (manifest.get("profiling") or {}).get("delegate_blocks") or []
    for op in result["operators"]:
        index = op.get("delegate_index")
        if op.get("block") is None and isinstance(index, int) and 0 <= index < len(delegate_blocks):
            op["block"] = delegate_blocks[index]
    if not result["blocks"]:
        result["blocks"] = block_totals(result["operators"])
    return result


def block_totals(operators: list[dict]) -> list[dict]:
    """``[{"name", "ms"}]`` summed over operators with a block, in first-seen order."""
    totals: dict[str, float] = {}
    for op in operators:
        if op.get("block"):
            totals[op["block"]] = totals.get(op["block"], 0.0) + float(op.get("mean_ms") or 0.0)
    return [{"name": name, "ms": ms} for name, ms in totals.items()]


def op_type(name: str) -> str:
    """``Convolution (NHWC, QC8) IGEMM #3`` -> ``Convolution (NHWC, QC8) IGEMM``."""
    head, _, tail = name.rpartition(" #")
    return head if tail.isdigit() else name
