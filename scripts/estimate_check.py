#!/usr/bin/env python3
"""`bootgpu plan`'s time estimate against a measured study: N random focus genes of a matrix (ALL by
default), the estimate as `bootgpu plan --focus @list` makes it, then `bootgpu run` of the same focus
genes timed; one JSON line per B with the estimate, its 80% range and the ratio.

    python3 scripts/estimate_check.py [--expr ../shared/data/all_leukemia.tsv.gz] [--n 30] [--B 100 1000]

A benchmark, not a test: both figures are times on this machine (run it on an idle one).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--expr", default=str(ROOT.parent / "shared" / "data" / "all_leukemia.tsv.gz"))
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--B", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    from bootgpu.backends import get_backend
    from bootgpu.config import AnalysisConfig
    from bootgpu.estimate import calibrate
    from bootgpu.expression_io import read_expression
    from bootgpu.planner import plan_batches, resolve_budget

    expr = read_expression(args.expr)
    focus = sorted(int(g) for g in np.random.default_rng(args.seed).choice(expr.n_genes, args.n, replace=False))
    work = Path(tempfile.mkdtemp(prefix="estimate-check-"))
    listing = work / "focus.txt"
    listing.write_text("\n".join(f"#{g}" for g in focus) + "\n")
    backend = get_backend("numpy")
    for b in args.B:
        cfg = AnalysisConfig(n_bootstrap=b)
        k_low, k_high = cfg.validate(expr.n_samples)
        plan = plan_batches(expr.n_genes, expr.n_samples, k_low, k_high, b, resolve_budget(backend, None),
                            bootstrap_frac=cfg.bootstrap_frac, **backend.plan_facts(),
                            threads=backend.host_threads())
        t0 = time.perf_counter()
        est = calibrate(backend, expr.n_genes, expr.n_samples, cfg, plan, values=expr.values, focus=focus)
        calibration = time.perf_counter() - t0
        lo, hi = est.study_range(len(focus))
        out = work / f"study-B{b}"
        proc = subprocess.run([sys.executable, "-m", "bootgpu", "run", "--expr", args.expr, "--out", str(out), "--focus",
                               f"@{listing}", "--n-bootstrap", str(b)], capture_output=True, text=True)
        done = re.search(r"done: ([\d,]+) focus genes? computed in ([\d.]+) s", proc.stderr)
        measured = float(done[2]) if done else None
        print(json.dumps({"B": b, "focus_genes": len(focus), "estimate_s": round(est.study_seconds(len(focus)), 1),
                          "range_80_s": [round(lo, 1), round(hi, 1)], "measured_s": measured,
                          "ratio": round(est.study_seconds(len(focus)) / measured, 2) if measured else None,
                          "sampled": len(est.samples), "calibration_s": round(calibration, 1),
                          "rc": proc.returncode}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
