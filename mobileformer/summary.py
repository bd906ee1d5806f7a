"""``python -m mobileformer.summary``: the variant table, or one variant block by block.

MAdds are counted from the exported graph (see :mod:`mobileformer.flops`), never typed in.
"""
from __future__ import annotations

import sys

from .cli import ArgumentParser, UserError, check_input_size, command, text_table
from .flops import block_summaries, count_madds
from .registry import create_model, get_config, list_models


def variants_table(names: list[str], input_size: int = 224) -> str:
    """Params, counted MAdds (vs. the paper's name), tokens and token dim of each variant."""
    rows = []
    for name in names:
        model = create_model(name)
        cfg = model.cfg
        params = sum(p.numel() for p in model.parameters())
        madds = count_madds(model, input_size)
        rows.append([
            name, f"{params / 1e6:.2f}M", f"{madds / 1e6:.1f}M", f"{cfg.paper_madds_m}M",
            f"{100 * (madds / 1e6 / cfg.paper_madds_m - 1):+.1f}%", cfg.token_num, cfg.token_dim,
        ])
    header = ["model", "params", f"MAdds@{input_size}", "paper", "diff", "tokens", "token dim"]
    return text_table(header, rows)


def layers_table(name: str, input_size: int = 224) -> str:
    """One row per paper block: params, MAdds, output shape."""
    model = create_model(name)
    blocks = block_summaries(model, input_size)
    rows = [[b.name, f"{b.params:,}", f"{b.madds / 1e6:.3f}M", "x".join(map(str, b.output_shape))] for b in blocks]
    rows.append(["total", f"{sum(b.params for b in blocks):,}", f"{sum(b.madds for b in blocks) / 1e6:.3f}M", ""])
    return f"{model.cfg.name} at {input_size}x{input_size}\n" + text_table(["block", "params", "MAdds", "output"], rows)


@command
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m mobileformer.summary",
        description="Params and MAdds (counted from the exported graph) of every Mobile-Former variant, "
        "or of one variant block by block.",
    )
    parser.add_argument("--variant", help=f"one of {', '.join(list_models())} (or 26m, 52m, ...)")
    parser.add_argument("--layers", action="store_true", help="per-block breakdown of --variant")
    parser.add_argument("--input-size", type=int, default=224, help="square input size")
    args = parser.parse_args(argv)
    check_input_size(args.input_size)
    if args.layers and not args.variant:
        raise UserError("--layers needs --variant")
    if args.layers:
        print(layers_table(args.variant, args.input_size))
    else:
        names = [get_config(args.variant).name] if args.variant else list_models()
        print(variants_table(names, args.input_size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
