"""`bootgpu top DIR --gene ID`: which genes change co-expression around a focus gene, in the
terminal -- the top edges of one focus gene with gene ids, r in each group, delta with its
bootstrap CI and the class of change (``bootgpu.api`` underneath)."""

from __future__ import annotations

import argparse
import sys

from bootgpu.errors import BootgpuError

SORT_KEYS = {  # --by NAME -> (column, ascending)
    "delta": ("abs_delta", False),
    "q": ("q_diff", True),
    "boot_p": ("boot_p", True),
    "r_low": ("r_low", False),
    "r_high": ("r_high", False),
    "ci": ("ci_width", True),
}
SHOWN = ("gene_a", "gene_b", "r_low", "r_high", "delta", "ci_low", "ci_high", "q_diff", "boot_p", "change", "robust")
LEGEND = ("r_low/r_high: Spearman r in the focus gene's LOW / HIGH samples; delta = r_high - r_low; "
          "ci_low..ci_high: bootstrap percentile CI of delta; q_diff: BH q of the Fisher-Z test of r_high vs r_low; "
          "boot_p: bootstrap p of delta; robust: the CI excludes 0; change: the class of change (disappear: significant in "
          "LOW only; new: in HIGH only; sign_change, strengthen, weaken: in both; subthreshold: the correlation changes, "
          "but is significant in neither group alone)")


def top_edges(results, gene, n: int = 20, by: str = "delta", robust_only: bool = False, partners_only: bool = False):
    """The ``n`` first edges of focus gene ``gene`` ordered by ``by`` (``SORT_KEYS``), as a DataFrame."""
    if by not in SORT_KEYS:
        raise BootgpuError(f"--by must be one of {', '.join(SORT_KEYS)}, got {by!r}")
    frame = results.partners(gene, robust_only=robust_only) if partners_only else results.edges(gene, robust_only)
    frame = frame.assign(ci_width=frame["ci_high"] - frame["ci_low"])
    column, ascending = SORT_KEYS[by]
    return frame.sort_values(column, ascending=ascending, kind="stable").head(n).reset_index(drop=True)


def format_top(frame, tsv: bool) -> str:
    shown = frame[list(SHOWN)]
    if tsv:
        return shown.to_csv(sep="\t", index=False, float_format="%.6g")
    small = {col: (lambda v: f"{v:.2g}") for col in ("q_diff", "boot_p")}  # q and p: significant digits
    return shown.to_string(index=False, float_format=lambda v: f"{v:.3f}", formatters=small, max_colwidth=None)


def cmd_top(args) -> int:
    from bootgpu.api import open_results

    if args.n < 1:
        raise BootgpuError(f"-n must be at least 1, got {args.n}")
    with open_results(args.dir) as res:
        frame = top_edges(res, args.gene, args.n, args.by, args.robust_only, args.partners)
        row = res.row(args.gene)
        if not args.tsv:
            if args.partners:  # what is counted is what is listed: the focus gene's own edges
                total = len(res.partners(args.gene, robust_only=args.robust_only))
                what = "partners (its own robust edges)" if args.robust_only else "partners (its own selected edges)"
            else:
                total = len(res.edges(args.gene, args.robust_only))
                what = "robust edges" if args.robust_only else "selected edges"
            print(f"{res.gene_names[row]} (row {row}): top {len(frame)} of {total} {what}, by {args.by}")
        sys.stdout.write(format_top(frame, args.tsv) + ("" if args.tsv else "\n"))
        if not args.tsv:
            print(LEGEND)
    return 0


def register_commands(subparsers) -> None:
    """Add `bootgpu top` to the CLI's subparsers."""
    p = subparsers.add_parser(
        "top", help="the top edges of one focus gene, with gene ids, r, delta, CI and class",
        description="Print the edges whose co-expression focus gene GENE rewires most (a readable table, or TSV "
                    "with --tsv), read from a study directory or results file.",
        epilog="Examples:\n  bootgpu top bootgpu-demo --gene 38355_at\n"
               "  bootgpu top out/ --gene '#1278' -n 50 --by q --robust-only --tsv > edges.tsv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("dir", help="study directory (or its results.h5)")
    p.add_argument("--gene", required=True, help="the focus gene: its id, or #ROW (0-based)")
    p.add_argument("-n", type=int, default=20, help="edges to show (default %(default)s)")
    p.add_argument("--by", default="delta", choices=list(SORT_KEYS),
                   help="order: delta (|delta|, largest first), q (q_diff), boot_p, r_low, r_high, ci (narrowest CI) "
                        "(default %(default)s)")
    p.add_argument("--robust-only", action="store_true", help="only edges whose bootstrap CI excludes 0")
    p.add_argument("--partners", action="store_true", help="only edges of the focus gene itself (its direct partners)")
    p.add_argument("--tsv", action="store_true", help="tab-separated output for scripts (no title, no legend)")
    p.set_defaults(func=cmd_top)
