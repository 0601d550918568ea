"""Command line: argument parsing only.  A BootgpuError becomes one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from bootgpu import __version__
from bootgpu.errors import BootgpuError

DEMO_FOCUS_COUNT = 10  # the demo analyses the 10 most variable probes of the embedded matrix


def parse_bytes(text: str) -> int:
    """'6G', '512M', '1.5GiB', '2000000' -> bytes (binary units)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise BootgpuError(f"cannot read memory size {text!r}; use e.g. 6G, 512M or a byte count")
    scale = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[match[2].upper()]
    return int(float(match[1]) * scale)


def _add_analysis_options(p: argparse.ArgumentParser) -> None:
    from bootgpu.config import AnalysisConfig, EDGE_SELECTIONS

    d = AnalysisConfig()
    p.add_argument("--low-frac", type=float, default=d.low_frac, help="fraction of samples in LOW (default %(default)s)")
    p.add_argument("--high-frac", type=float, default=d.high_frac, help="fraction in HIGH (default %(default)s)")
    p.add_argument("--n-bootstrap", type=int, default=d.n_bootstrap, help="replicates B (default %(default)s)")
    p.add_argument("--bootstrap-frac", type=float, default=d.bootstrap_frac, help="resample size / group size (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the draws (default %(default)s)")
    p.add_argument("--fdr-alpha", type=float, default=d.fdr_alpha, help="BH level (default %(default)s)")
    p.add_argument("--ci-alpha", type=float, default=d.ci_alpha, help="1 - CI coverage (default %(default)s)")
    p.add_argument("--edge-selection", choices=EDGE_SELECTIONS, default=d.edge_selection, help="edges to bootstrap (default %(default)s)")


def _config(args):
    from bootgpu.config import AnalysisConfig

    return AnalysisConfig(
        low_frac=args.low_frac, high_frac=args.high_frac, n_bootstrap=args.n_bootstrap,
        bootstrap_frac=args.bootstrap_frac, seed=args.seed, fdr_alpha=args.fdr_alpha,
        ci_alpha=args.ci_alpha, edge_selection=args.edge_selection,
    )  # fmt: skip


def _budget(args, backend) -> int:
    text = args.memory_budget or os.environ.get("BOOTGPU_MEMORY_BUDGET")
    if text:
        return parse_bytes(text)
    free, _ = backend.memory_info()
    return int(free * 0.8)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_run(args) -> int:
    from bootgpu.backends import get_backend
    from bootgpu.expression_io import demo_expression_path, read_expression
    from bootgpu.hubs import format_hubs_table
    from bootgpu.planner import plan_batches
    from bootgpu.study import StudyRun, parse_focus, parse_shard

    if args.demo == bool(args.expr):
        raise BootgpuError("give exactly one of --expr FILE or --demo")
    expr = read_expression(demo_expression_path() if args.demo else args.expr)
    out = Path(args.out or ("bootgpu-demo" if args.demo else ""))
    if not str(out):
        raise BootgpuError("--out DIR is required")
    cfg = _config(args)
    k_low, k_high = cfg.validate(expr.n_samples)
    if args.focus:
        focus = parse_focus(args.focus, expr)
    elif args.demo:
        import numpy as np

        var = expr.values.var(axis=1)
        focus = [int(g) for g in np.argsort(-var, kind="stable")[:DEMO_FOCUS_COUNT]]
    else:
        focus = parse_focus("all", expr)
    shard = parse_shard(args.shard)
    backend = get_backend(args.backend, announce=_log)
    plan = plan_batches(expr.n_genes, expr.n_samples, k_low, k_high, cfg.n_bootstrap, _budget(args, backend))
    _log(f"bootgpu {__version__}: {expr.n_genes} genes x {expr.n_samples} samples, {len(focus)} focus genes, "
         f"B={cfg.n_bootstrap}, k_low={k_low}, k_high={k_high}, backend={backend.name} ({backend.device_name()})")
    t0 = time.perf_counter()
    study = StudyRun(backend, expr, cfg, plan, focus, out, shard)
    results = study.run(log=_log)
    elapsed = time.perf_counter() - t0
    _log(f"done: {len(results)} focus genes in {elapsed:.1f} s ({elapsed / max(len(results), 1):.2f} s per gene) -> {out}")
    if not shard:
        from bootgpu.hubs import hub_rows

        print("Top rewiring hubs (robust = bootstrap CI excludes 0):")
        print(format_hubs_table(hub_rows(results, expr.gene_names)))
    return 0


def cmd_merge(args) -> int:
    from bootgpu.hubs import format_hubs_table
    from bootgpu.study import merge_shards

    rows = merge_shards(Path(args.dir))
    print(f"merged {len(rows)} focus genes into {Path(args.dir) / 'results.h5'}")
    print(format_hubs_table(rows))
    return 0


def cmd_info(args) -> int:
    import numpy as np

    from bootgpu.backends import get_backend
    from bootgpu.backends.cupy_backend import cupy_unusable_reason

    print(f"bootgpu {__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")
    for name in ("numpy", "cupy"):
        if name == "cupy" and (reason := cupy_unusable_reason()):
            print(f"  cupy : not usable ({reason})")
            continue
        backend = get_backend(name)
        free, total = backend.memory_info()
        print(f"  {name:<5}: {backend.device_name()}, {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB")
    print(f"  auto picks: {get_backend('auto').name}")
    return 0


def cmd_convert(args) -> int:
    from bootgpu.expression_io import read_expression, write_expression_h5

    expr = read_expression(args.expr)
    write_expression_h5(expr, args.out)
    print(f"wrote {args.out}: {expr.n_genes} genes x {expr.n_samples} samples")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from bootgpu.backends import BACKEND_NAMES

    parser = argparse.ArgumentParser(prog="bootgpu", description="Extreme-population bootstrap differential co-expression on NumPy or CuPy.")
    parser.add_argument("--version", action="version", version=f"bootgpu {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="analyse focus genes and write results.h5 + rewiring_hubs.tsv")
    run.add_argument("--expr", help="expression matrix: TSV/CSV(.gz) genes x samples, or HDF5")
    run.add_argument("--demo", action="store_true", help="use the embedded ALL leukemia subset (2000 x 128)")
    run.add_argument("--out", help="output directory (default for --demo: bootgpu-demo)")
    run.add_argument("--backend", choices=BACKEND_NAMES, default="auto")
    run.add_argument("--focus", help="all | A:B | index,GENE,... | @file (default: all; demo: 10 most variable)")
    run.add_argument("--shard", help="K/N: run only the K-th of N contiguous parts of the focus list")
    run.add_argument("--memory-budget", help="bytes the run may use, e.g. 6G (default: 80%% of free; env BOOTGPU_MEMORY_BUDGET)")
    _add_analysis_options(run)
    run.set_defaults(func=cmd_run)

    merge = sub.add_parser("merge", help="combine the shard files of DIR into results.h5 + rewiring_hubs.tsv")
    merge.add_argument("dir")
    merge.set_defaults(func=cmd_merge)

    info = sub.add_parser("info", help="list backends, devices and memory")
    info.set_defaults(func=cmd_info)

    from bootgpu import sge

    sge.register_commands(sub)  # `bootgpu sge submit` and `bootgpu status`

    conv = sub.add_parser("convert", help="write the original pipeline's expression.h5 layout")
    conv.add_argument("--expr", required=True)
    conv.add_argument("--out", required=True)
    conv.set_defaults(func=cmd_convert)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BootgpuError as exc:
        print(f"bootgpu: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bootgpu: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
