#!/usr/bin/env python3
"""Wall and CPU seconds of each pass of one focus gene (after a warm-up focus gene, so that tables
cached for the study are built); one JSON line.

    PYTHONPATH=$TREE python3 scripts/pass_times.py [--expr ../shared/data/all_leukemia.tsv.gz] [--focus 0] [--B 20]

Run old and new trees alternately in one shell loop and compare CPU seconds too: on a shared
machine wall seconds depend on the load.  BOOTGPU_THREADS=1 gives one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bootgpu import pipeline
from bootgpu.backends import get_backend
from bootgpu.config import AnalysisConfig
from bootgpu.expression_io import read_expression
from bootgpu.bench import make_plan
from bootgpu.planner import resolve_budget

PASSES = ("rank_groups", "select_edges", "q_values", "bootstrap_edges")  # pipeline stages (pair_passes is lazy:
# its blocks are computed in select_edges)


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "all_leukemia.tsv.gz"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--expr", default=str(default))
    ap.add_argument("--focus", type=int, default=0)
    ap.add_argument("--B", type=int, default=20)
    ap.add_argument("--budget", default="3G")
    ap.add_argument("--planted", metavar="GENESxSAMPLES", help="a planted synthetic matrix (as bootgpu bench) instead of --expr")
    args = ap.parse_args()
    if args.planted:
        from bootgpu.bench import default_planted, synthetic_values
        genes, samples = (int(v) for v in args.planted.split("x"))
        values = synthetic_values("planted", genes, samples, default_planted(genes))
    else:
        values = read_expression(args.expr).values
    backend = get_backend("numpy")
    cfg = AnalysisConfig(n_bootstrap=args.B)
    k_low, k_high = cfg.validate(values.shape[1])
    plan = make_plan(backend, values.shape[0], values.shape[1], k_low, k_high, cfg, resolve_budget(backend, args.budget))
    times: dict = {}

    def wrap(name, fn):
        def timed(*a, **kw):
            t, c = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **kw)
            finally:
                w0, c0 = times.get(name, (0.0, 0.0))
                times[name] = (w0 + time.perf_counter() - t, c0 + time.process_time() - c)
        return timed

    for name in PASSES:
        setattr(pipeline, name, wrap(name, getattr(pipeline, name)))
    pipeline.analyse_focus(backend, values, (args.focus + 1) % values.shape[0], cfg, plan, k_low, k_high)  # warm-up
    times.clear()
    t, c = time.perf_counter(), time.process_time()
    result = pipeline.analyse_focus(backend, values, args.focus, cfg, plan, k_low, k_high)
    out = {"wall_cpu_s": {"focus_gene": [round(time.perf_counter() - t, 2), round(time.process_time() - c, 2)]}}
    out["wall_cpu_s"].update({name.strip("_"): [round(w, 2), round(cpu, 2)] for name, (w, cpu) in times.items()})
    print(json.dumps({**out, "edges": int(result.edges["gene_i"].shape[0]), "threads": plan.threads,
                      "load": round(os.getloadavg()[0], 1)}))


if __name__ == "__main__":
    main()
