#!/usr/bin/env python3
"""Where a study's time goes, focus gene by focus gene and stage by stage (each stage synchronised),
plus the device peak against the plan's prediction; one JSON line per focus gene, a total line and
(with --cprofile FILE) the 40 most expensive functions.

    python3 scripts/gpu_profile.py --expr ../shared/data/all_leukemia.tsv.gz --focus 100:110 --backend cupy
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

from bootgpu import pipeline
from bootgpu.backends import get_backend
from bootgpu.config import AnalysisConfig
import bootgpu.core.bootstrap as core_bootstrap
from bootgpu.expression_io import read_expression
from bootgpu.planner import plan_batches, resolve_budget
from bootgpu.results_io import write_part
from bootgpu.study.workers import focus_networks

STAGES = (pipeline, ("rank_groups", "select_edges", "q_values", "bootstrap_edges")), \
    (core_bootstrap, ("edge_layout", "chunk_deltas", "summarise"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--expr", required=True)
    ap.add_argument("--focus", default="0:10", help="A:B rows")
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--n-bootstrap", type=int, default=1000)
    ap.add_argument("--memory-budget")
    ap.add_argument("--cprofile", help="write the top functions (tottime) here")
    args = ap.parse_args()
    expr = read_expression(args.expr)
    a, b = (int(v) for v in args.focus.split(":"))
    backend = get_backend(args.backend)
    backend.prepare()  # compiled kernels loaded before the first focus gene, as a run has them
    cfg = AnalysisConfig(n_bootstrap=args.n_bootstrap)
    k_low, k_high = cfg.validate(expr.n_samples)
    plan = plan_batches(expr.n_genes, expr.n_samples, k_low, k_high, cfg.n_bootstrap,
                        resolve_budget(backend, args.memory_budget), bootstrap_frac=cfg.bootstrap_frac,
                        **backend.plan_facts(), threads=backend.host_threads())
    times: dict = {}

    def wrap(module, name):
        fn = getattr(module, name)

        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                backend.synchronize()
                times[name] = times.get(name, 0.0) + time.perf_counter() - t
                times[name + "_n"] = times.get(name + "_n", 0) + 1

        setattr(module, name, timed)

    for module, names in STAGES:
        for name in names:
            wrap(module, name)
    dev = backend.to_device(expr.values)
    prof = cProfile.Profile() if args.cprofile else None
    total: dict = {}
    tmp = Path(tempfile.mkdtemp())
    t_all = time.perf_counter()
    for g in range(a, b):
        times.clear()
        if prof:
            prof.enable()
        t0 = time.perf_counter()
        with backend.track_peak() as peak:
            res = pipeline.analyse_focus(backend, dev, g, cfg, plan, k_low, k_high)
        t1 = time.perf_counter()
        res.network = focus_networks(res, expr.n_genes, cfg)
        t2 = time.perf_counter()
        write_part(tmp / f"focus-{g}.h5", {"note": "profile"}, res, expr.gene_names)
        t3 = time.perf_counter()
        if prof:
            prof.disable()
        row = {"g": g, "edges": int(len(res.edges["gene_i"])), "analyse": t1 - t0, "networks": t2 - t1,
               "write": t3 - t2, **times, "peak_gib": peak.peak_bytes / 2**30,
               "predicted_gib": (res.plan.predicted_peak_bytes if res.plan else plan.predicted_peak_bytes) / 2**30}
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
        for key, value in row.items():
            if key not in ("g", "peak_gib", "predicted_gib"):
                total[key] = total.get(key, 0) + value
        total["peak_over_predicted_max"] = max(total.get("peak_over_predicted_max", 0),
                                               row["peak_gib"] / row["predicted_gib"])
    total["wall"] = time.perf_counter() - t_all
    print("TOTAL", json.dumps({k: round(v, 3) for k, v in total.items()}), flush=True)
    if prof:
        with open(args.cprofile, "w") as fh:
            pstats.Stats(prof, stream=fh).sort_stats("tottime").print_stats(45)
            pstats.Stats(prof, stream=fh).sort_stats("cumulative").print_stats(45)
    return 0


if __name__ == "__main__":
    sys.exit(main())
