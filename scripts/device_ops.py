#!/usr/bin/env python3
"""The array operations (kernel launches on a device) and host waits one focus gene issues on the
device path, stage by stage, counted on the CPU (``CountingBackend``: array_api_strict with a GPU
backend's facts).  What a device's per-focus-gene time is made of where the arrays are small (ALL:
~10 us of launch a operation through CuPy, and each wait drains the queue), measurable without a
GPU; ``--sites N`` lists the N source lines that issue the most (whole focus genes, no stages).

    python3 scripts/device_ops.py --expr ../shared/data/all_leukemia.tsv.gz --focus 100 103
"""

from __future__ import annotations

import argparse
import json
import sys

from bootgpu import pipeline
from bootgpu.backends.counting import CountingBackend
from bootgpu.config import AnalysisConfig
from bootgpu.expression_io import read_expression
from bootgpu.planner import plan_batches

STAGES = ("rank_groups", "select_edges", "q_values", "bootstrap_edges")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--expr", required=True)
    ap.add_argument("--focus", type=int, nargs="+", default=[0])
    ap.add_argument("--n-bootstrap", type=int, default=1000)
    ap.add_argument("--budget-gib", type=float, default=40.0, help="the device's memory budget (default 40)")
    ap.add_argument("--sites", type=int, default=0)
    args = ap.parse_args()
    expr = read_expression(args.expr)
    backend = CountingBackend()
    cfg = AnalysisConfig(n_bootstrap=args.n_bootstrap)
    k_low, k_high = cfg.validate(expr.n_samples)
    plan = plan_batches(expr.n_genes, expr.n_samples, k_low, k_high, cfg.n_bootstrap, int(args.budget_gib * 2**30),
                        bootstrap_frac=cfg.bootstrap_frac, **backend.plan_facts())
    dev = backend.to_device(expr.values)
    stage_counts: dict = {}
    for name in () if args.sites else STAGES:  # each stage's own count (a nested block replaces the outer one)
        def counted(*a, _fn=getattr(pipeline, name), _name=name, **kw):
            with backend.counting() as c:
                out = _fn(*a, **kw)
            stage_counts[_name] = (c.ops, c.syncs)
            return out

        setattr(pipeline, name, counted)
    for g in args.focus:
        stage_counts.clear()
        with backend.counting(sites=bool(args.sites)) as whole:
            res = pipeline.analyse_focus(backend, dev, g, cfg, plan, k_low, k_high)
        ops = sum(o for o, _ in stage_counts.values())
        syncs = sum(s for _, s in stage_counts.values())
        row = {"focus": g, "edges": int(res.edges["gene_i"].shape[0]), "ops": ops + whole.ops,
               "syncs": syncs + whole.syncs, "outside_stages": [whole.ops, whole.syncs], **stage_counts}
        print(json.dumps(row), flush=True)
        for site, n in whole.top_sites(args.sites):
            print(f"  {n:6d}  {site}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
