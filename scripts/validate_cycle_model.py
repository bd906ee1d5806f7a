"""Check the cycle estimate (quant/aarch64/cycles.py) against XNNPACK's published MobileNet latencies.

    PYTHONPATH=. .venv/bin/python scripts/validate_cycle_model.py [--work out/validation]

XNNPACK's README (google/XNNPACK, section Performance) publishes single-threaded FP32
MobileNet v1/v2/v3-Large/v3-Small on Pixel 2 and Pixel 3a (March 2020, randomized weights)
and four-threaded FP32 and INT8 (per-channel) MobileNet v1/v2 on a Raspberry Pi 4 with a
64-bit OS (Feb 2022). This exports the MobileNets of benchmarks/mobilenets.py through the
stock XNNPACK flow (fp32; int8 by ExecuTorch's XNNPACKQuantizer as shipped, per-channel),
counts each once per qemu guest CPU with the block log, estimates it on the nearest named
core at the device's published clock (never a clock fitted to agree), and writes
docs/results/cycle_model_validation.json (rendered into the docs by scripts/results_tables.py).
The Raspberry Pi rows are four-threaded: their prediction is the single-thread estimate divided
by 4, perfect scaling, so a lower bound. Each row also gives what the other llvm-mca models
that share its qemu guest would predict at the same clock (how much the choice of model
weighs). Exports and counts are kept in --work, so a rerun only re-estimates.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch

from benchmarks.mobilenets import MODELS
from quant.aarch64.cores import CORES, core
from quant.aarch64.cycles import cycle_entries, llvm_version
from quant.aarch64.qemu import GuestLog, qemu_version
from quant.backends.xnnpack import lower_layer
from quant.backends.xnnpack.arm64 import inference_count, run_counted, split_passes
from results_tables import render

REPO = Path(__file__).resolve().parents[1]
# (device, named core, threads, model, precision, published ms): XNNPACK README, Performance
PUBLISHED = [
    *[("Pixel 3a", "cortex-a75", 1, m, "fp32", ms) for m, ms in
      (("mobilenet_v1", 88), ("mobilenet_v2", 55), ("mobilenet_v3_large", 44), ("mobilenet_v3_small", 14))],
    *[("Pixel 2", "cortex-a73", 1, m, "fp32", ms) for m, ms in
      (("mobilenet_v1", 86), ("mobilenet_v2", 53), ("mobilenet_v3_large", 42), ("mobilenet_v3_small", 14))],
    *[("Raspberry Pi 4 (ARM64)", "cortex-a72", 4, m, p, ms) for m, p, ms in
      (("mobilenet_v1", "fp32", 77), ("mobilenet_v2", "fp32", 46), ("mobilenet_v3_large", "fp32", 40),
       ("mobilenet_v3_small", "fp32", 15), ("mobilenet_v1", "int8", 24), ("mobilenet_v2", "int8", 17))],
]
SOURCE = "https://github.com/google/XNNPACK#performance (README at commit 75db3c09)"


def export(model: str, precision: str, work: Path) -> Path:
    """The MobileNet's ``.pte`` through the stock XNNPACK flow (kept in ``work``)."""
    path = work / f"{model}_{precision}.pte"
    if not path.exists():
        torch.manual_seed(0)
        print(f"[validate] exporting {path.name}", flush=True)
        path.write_bytes(lower_layer(MODELS[model]().eval(), torch.randn(1, 3, 224, 224), int8=precision == "int8"))
    return path


def count(artifact: Path, qemu_cpu_of: str, work: Path) -> GuestLog:
    """The plugin's log (with blocks) of one warm-up and two counted inferences, kept in ``work``."""
    cached = work / f"{artifact.stem}.{qemu_cpu_of}.log.json"
    if cached.exists():
        saved = json.loads(cached.read_text())
        return GuestLog([tuple(e) for e in saved["entries"]], {int(k): v for k, v in saved["code"].items()},
                        [{int(k): v for k, v in line.items()} for line in saved["executions"]])
    print(f"[validate] counting {artifact.name} as {qemu_cpu_of} under qemu", flush=True)
    with tempfile.TemporaryDirectory(prefix="mf-validate-") as tmp:
        _, log = run_counted(artifact, qemu_cpu_of, 1, 2, Path(tmp), blocks=True)
    cached.write_text(json.dumps({"entries": log.entries, "code": log.code, "executions": log.executions}))
    return log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("out/validation"), help="exports and logs kept between runs")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results", help="where the JSON goes")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for device, name, threads, model, precision, published in PUBLISHED:
        spec = core(name)
        guest = "cortex-a76" if spec.qemu_cpu == "cortex-a76" else "cortex-a72"  # the named core qemu runs as
        log = count(export(model, precision, args.work), guest, args.work)
        untraced = split_passes(log.entries)[0][-1]
        cycles = inference_count(split_passes(cycle_entries(log, spec))[0][-1])
        predicted = cycles / (spec.clock_ghz * 1e6) / threads
        # the same run timed by the other scheduling models that share its guest, at the device's clock
        others = {other.mca_cpu: round(inference_count(split_passes(cycle_entries(log, other))[0][-1])
                                       / (spec.clock_ghz * 1e6) / threads, 1)
                  for other in CORES.values() if other.qemu_cpu == spec.qemu_cpu and other.mca_cpu != spec.mca_cpu}
        rows.append({"device": device, "core": name, "llvm_mca_cpu": spec.mca_cpu, "clock_ghz": spec.clock_ghz,
                     "threads": threads, "model": model, "precision": precision,
                     "instructions": inference_count(untraced), "cycles": round(cycles),
                     "predicted_ms": round(predicted, 1), "published_ms": published,
                     "error": round(predicted / published - 1, 3), "predicted_ms_other_models": others})
        print(f"[validate] {device:24s} {model:20s} {precision}: predicted {predicted:6.1f} ms, "
              f"published {published} ms ({rows[-1]['error']:+.0%})", flush=True)
    within = sum(abs(r["error"]) <= 0.25 for r in rows)
    result = {"kind": "cycle_model_validation", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "source": SOURCE,
              "host": f"{platform.machine()} {platform.processor() or ''}".strip(),
              "qemu": qemu_version(), "llvm": llvm_version(), "rows": rows,
              "within_25_percent": f"{within} of {len(rows)}",
              "mean_abs_error": round(sum(abs(r["error"]) for r in rows) / len(rows), 3)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cycle_model_validation.json").write_text(json.dumps(result, indent=1) + "\n")
    print(render(args.out / "cycle_model_validation.json"))
    print("the docs quote it: scripts/results_tables.py --write re-renders them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
