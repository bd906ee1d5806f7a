"""Why LayerNorm and the token softmax stay float (docs/export.md): export the same
network with them quantized as well (the stock XNNPACK annotator let into them), and print
SQNR against fp32 and size; time both with quant.bench afterwards.

    python scripts/float_ops_ablation.py [--out runs/ablation] [quant.export options...]

e.g. ``--checkpoint runs/accuracy/float/final.pt --input-size 64 --calib fashion-mnist``
(the trained network of the accuracy experiment; then ``quant.evaluate`` both).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import quant.quantizer as qz  # noqa: E402
from quant.export import main as export_main  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mobile_former_26m")
    p.add_argument("--out", type=Path, default=Path("runs/ablation"))
    args, export_args = p.parse_known_args()
    rows = {}
    for name, float_modules in (("float_ln_softmax", qz.FLOAT_MODULES), ("int8_ln_softmax", ())):
        out = args.out / name
        qz.FLOAT_MODULES = float_modules
        if not (out / f"{args.model}_xnnpack_int8.manifest.json").exists():
            if export_main(["--backend", "xnnpack", "--model", args.model, "--out", str(out), "--no-progress",
                            *export_args]) != 0:
                return 2
        manifest = json.loads((out / f"{args.model}_xnnpack_int8.manifest.json").read_text())
        rows[name] = {"sqnr_db_vs_fp32": manifest["validation"]["sqnr_db_vs_fp32"],
                      "top1_agreement_vs_fp32": manifest["validation"]["top1_agreement_vs_fp32"],
                      "size_bytes": manifest["size_bytes"], "artifact": str(out / f"{args.model}_xnnpack_int8.pte")}
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
