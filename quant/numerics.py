"""``python -m quant.numerics``: what a recipe makes int8, and how much error each block adds.

After PTQ on calibration images it lists every op of the converted graph as int8 or
float (``<stem>_ops.csv``), and measures, with PT2E's numeric debugger, the SQNR of the
quantized model against fp32 at every op, reported at the output of each paper block
(``<stem>_blocks.csv`` and a PNG chart). ``--all-variants`` gives the whole-model
output SQNR after PTQ for every variant.
"""
from __future__ import annotations

import copy
import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

import mobileformer as mf
from mobileformer.checkpoint import checkpoint_num_classes
from mobileformer.model import MobileFormer

from .census import graph_census
from .errors import ArgumentParser, check_at_least, check_input_size, command
from .data import calibration_batches
from .files import check_outputs, ensure_writable_dir, staged_outputs
from .metrics import logits_of, sqnr, top1_agreement
from .recipes import RECIPES, get_recipe


@dataclass
class Inspection:
    model: str
    recipe: str
    ops: list[dict]  # graph census rows, with "block"
    blocks: list[dict]  # name, int8, float, sqnr_db (at the block's output)
    output_sqnr_db: float
    top1_agreement: float


def inspect_model(model: MobileFormer, recipe_name: str, images: torch.Tensor,
                  measure: torch.Tensor | None = None) -> Inspection:
    """PTQ ``model`` with a recipe on ``images`` and measure it against fp32, op by op, on
    ``measure`` (default: the calibration images themselves). Calibrating on images of
    another distribution than those measured shows what out-of-range activations cost."""
    from torchao.quantization.pt2e import compare_results, extract_results_from_loggers, prepare_for_propagation_comparison
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.utils import _fuse_conv_bn_

    measure = images if measure is None else measure
    recipe = get_recipe(recipe_name)
    source = (recipe.source(model) if recipe.twin else copy.deepcopy(model)).eval()
    float_graph = torch.export.export(source, (images[:1],)).module()
    # prepare_pt2e folds BatchNorm into the conv before it; fold the reference the same way,
    # or a conv's output would be compared with its pre-BatchNorm float twin.
    _fuse_conv_bn_(float_graph)
    prepared = prepare_pt2e(copy.deepcopy(float_graph), recipe.make_quantizer(False))
    with torch.no_grad():
        for x in images.split(1):
            prepared(x)
    converted = convert_pt2e(prepared)
    ref_logged = prepare_for_propagation_comparison(float_graph)
    quant_logged = prepare_for_propagation_comparison(converted)
    ref_out, quant_out = logits_of(ref_logged, measure), logits_of(quant_logged, measure)
    comparison = compare_results(extract_results_from_loggers(ref_logged), extract_results_from_loggers(quant_logged))
    sqnr_by_node = {info.name: sum(float(r.sqnr) for r in s.results) / len(s.results)
                    for info, s in comparison.items() if s.results}

    block_of = {}  # float-graph node name -> block, in graph order
    for node in float_graph.graph.nodes:
        stack = list(node.meta.get("nn_module_stack", {}).values())
        if node.name in sqnr_by_node and stack and stack[-1][0]:
            block_of[node.name] = model.paper_block(stack[-1][0])
    ops = []
    for row in graph_census(converted):
        row["block"] = model.paper_block(row["module"]) if row["module"] else ""
        ops.append(row)
    blocks = []
    for name in dict.fromkeys(n for n, _ in model.paper_blocks()):
        in_block = [r for r in ops if r["block"] == name]
        last = [n for n, b in block_of.items() if b == name]
        blocks.append({"block": name, "int8": sum(r["precision"] == "int8" for r in in_block),
                       "float": sum(r["precision"] == "float" for r in in_block),
                       "sqnr_db": sqnr_by_node[last[-1]] if last else float("nan")})
    return Inspection(model.cfg.name, recipe_name, ops, blocks, sqnr(ref_out, quant_out), top1_agreement(ref_out, quant_out))


def _write_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue())


def _chart(result: Inspection, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [b["block"] for b in result.blocks]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, max(4, 0.22 * len(names) + 1.5)), sharey=True)
    left.barh(range(len(names)), [b["sqnr_db"] for b in result.blocks], color="#4C72B0")
    left.set_xlabel("SQNR at the block's output vs fp32, dB (higher is better)")
    left.set_yticks(range(len(names)), names, fontsize=7)
    left.invert_yaxis()
    left.set_title(f"{result.model}, {result.recipe} PTQ: output {result.output_sqnr_db:.1f} dB")
    right.barh(range(len(names)), [b["int8"] for b in result.blocks], color="#55A868", label="int8 ops")
    right.barh(range(len(names)), [b["float"] for b in result.blocks], left=[b["int8"] for b in result.blocks],
               color="#C44E52", label="float ops")
    right.set_xlabel("ops in the converted graph")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


@command
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m quant.numerics", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mobile_former_26m", help="variant")
    p.add_argument("--all-variants", action="store_true", help="whole-model SQNR of every variant, one CSV row each (no per-op files)")
    p.add_argument("--checkpoint", type=Path, help="float checkpoint (default: random weights)")
    p.add_argument("--recipe", default="xnnpack", choices=sorted(RECIPES))
    p.add_argument("--calib", default="digits", help="class-per-folder directory, 'digits' or 'fashion-mnist'")
    p.add_argument("--calib-images", type=int, default=16)
    p.add_argument("--measure", help="measure SQNR on these images instead ('digits', 'fashion-mnist' or a "
                   "directory; their held-out split), e.g. to see what calibrating on another distribution costs")
    p.add_argument("--measure-images", type=int, default=64, help="with --measure")
    p.add_argument("--input-size", type=int, help="default: the variant's (224)")
    p.add_argument("--out", type=Path, default=Path("out/numerics"))
    args = p.parse_args(argv)
    check_at_least(1, calib_images=args.calib_images, measure_images=args.measure_images)
    check_input_size(args.input_size)
    out = ensure_writable_dir(args.out)
    names = mf.list_models() if args.all_variants else [mf.get_config(args.model).name]
    check_outputs([out / f"variants_{args.recipe}.csv"] if args.all_variants else  # before the minutes of PTQ
                  [out / f"{names[0]}_{args.recipe}{suffix}" for suffix in ("_ops.csv", "_blocks.csv", "_blocks.png")])
    summary = []
    for name in names:
        classes = checkpoint_num_classes(args.checkpoint) if args.checkpoint else None
        model = mf.create_model(name, num_classes=classes or 1000, checkpoint=args.checkpoint)
        size = args.input_size or model.cfg.input_size
        images = calibration_batches(args.calib, args.calib_images, size, model.cfg.mean, model.cfg.std)
        measure = (calibration_batches(args.measure, args.measure_images, size, model.cfg.mean, model.cfg.std, split="val")
                   if args.measure else None)
        result = inspect_model(model, args.recipe, images, measure)
        gemm = [r for r in result.ops if r["kind"] != "other"]
        int8_gemm = sum(r["precision"] == "int8" for r in gemm)
        print(f"{name}: {args.recipe} PTQ, output SQNR {result.output_sqnr_db:.1f} dB, top-1 agreement "
              f"{100 * result.top1_agreement:.0f}%, int8 conv/linear/matmul {int8_gemm}/{len(gemm)}"
              + (f" (calibrated on {args.calib}, measured on {args.measure_images} held-out {args.measure} images)"
                 if args.measure else ""), flush=True)
        summary.append({"model": name, "recipe": args.recipe, "input_size": size, "images": args.calib_images,
                        "measured_on": f"{args.measure_images} {args.measure}" if args.measure else "calibration images",
                        "output_sqnr_db": round(result.output_sqnr_db, 2),
                        "top1_agreement": round(result.top1_agreement, 4),
                        "int8_gemm": int8_gemm, "gemm": len(gemm)})
        if not args.all_variants:
            stem = f"{name}_{args.recipe}"
            with staged_outputs(out) as stage:  # the three files together or none
                _write_csv(stage / f"{stem}_ops.csv", result.ops)
                _write_csv(stage / f"{stem}_blocks.csv", result.blocks)
                _chart(result, stage / f"{stem}_blocks.png")
            print(f"per op: {out / (stem + '_ops.csv')}\nper block: {out / (stem + '_blocks.csv')}\n"
                  f"chart: {out / (stem + '_blocks.png')}")
    if args.all_variants:
        with staged_outputs(out) as stage:
            _write_csv(stage / f"variants_{args.recipe}.csv", summary)
        print(f"every variant: {out / f'variants_{args.recipe}.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
