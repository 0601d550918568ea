#!/usr/bin/env python3
"""Run the same focus genes on two backends and compare every output; exit 1 on a mismatch.

Draws must be byte-identical; counts, edges and classes identical; float statistics within
1e-6.  On a GPU machine: ``--a numpy --b cupy``; on CPU ``--b strict`` exercises the same path.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from bootgpu.backends import get_backend
from bootgpu.config import AnalysisConfig
from bootgpu.core.draws import draw_positions
from bootgpu.pipeline import analyse_focus
from bootgpu.results_schema import EDGE_FLOAT_FIELDS
from bootgpu.planner import plan_batches
from bootgpu.synthetic import planted_matrix


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--n-bootstrap", type=int, default=200)
    ap.add_argument("--focus", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--a", default="numpy")
    ap.add_argument("--b", default="cupy")
    ap.add_argument("--expr", help="a real expression matrix instead of the planted one (e.g. the embedded ALL subset)")
    args = ap.parse_args()

    if args.expr:
        from bootgpu.expression_io import read_expression

        data = read_expression(args.expr)
        args.genes, args.samples = data.n_genes, data.n_samples
    else:
        data = planted_matrix(args.genes, args.samples, 20, strength=0.6)
    cfg = AnalysisConfig(n_bootstrap=args.n_bootstrap)
    k_low, k_high = cfg.validate(args.samples)
    plan = plan_batches(args.genes, args.samples, k_low, k_high, cfg.n_bootstrap, 8 << 30)
    backends = [get_backend(args.a), get_backend(args.b)]
    report = {"label": f"{args.b} vs {args.a}, " + (args.expr.split("/")[-1] if args.expr else f"{args.genes} x {args.samples}"),
              "a": args.a, "b": args.b, "shape": [args.genes, args.samples], "n_bootstrap": args.n_bootstrap,
              "focus": [], "ok": True}

    draws = [be.to_host(draw_positions(be.xp, cfg.seed, 5, 1, be.xp.arange(500, dtype=be.xp.int64), 187, 149))
             for be in backends]
    report["draws_identical"] = bool(np.array_equal(draws[0], draws[1]))
    report["ok"] &= report["draws_identical"]

    for focus in args.focus:
        results, seconds = [], []
        for be in backends:
            expr = be.to_device(data.values)
            t0 = time.perf_counter()
            results.append(analyse_focus(be, expr, focus, cfg, plan, k_low, k_high))
            be.synchronize()
            seconds.append(time.perf_counter() - t0)
        a, b = results
        entry = {"focus": focus, "seconds": seconds, "n_edges": int(a.edges["gene_i"].shape[0]),
                 "attrs_equal": a.attrs == b.attrs,
                 "samples_equal": bool(np.array_equal(a.low_samples, b.low_samples) and np.array_equal(a.high_samples, b.high_samples)),
                 "edges_equal": all(np.array_equal(a.edges[k], b.edges[k]) for k in ("gene_i", "gene_j", "change"))}
        if entry["edges_equal"]:
            diffs = {k: float(np.nanmax(np.abs(a.edges[k].astype(np.float64) - b.edges[k]))) if a.edges[k].size else 0.0
                     for k in EDGE_FLOAT_FIELDS}
            entry["max_abs_diff"] = diffs
            entry["floats_close"] = all(v <= 1e-6 for v in diffs.values())
            entry["floats_identical"] = all(np.array_equal(a.edges[k], b.edges[k], equal_nan=True) for k in EDGE_FLOAT_FIELDS)
        else:
            entry["floats_close"] = False
        entry["ok"] = entry["attrs_equal"] and entry["samples_equal"] and entry["edges_equal"] and entry["floats_close"]
        report["ok"] &= entry["ok"]
        report["focus"].append(entry)
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
