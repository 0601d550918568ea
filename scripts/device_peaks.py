#!/usr/bin/env python3
"""Device memory of one focus gene against the planner's prediction, per stage; one JSON line.

On a GPU (``--backend cupy``) the peak is CuPy's pool (the backend's tracker); on a CPU
``--backend counting`` measures what a device would hold -- the bytes of the arrays each
operation made, while they live (``backends.counting``) -- with a device plan (no cache cap);
``counting-cupy`` with CuPy's gather-and-dot kernel for the sparse dots (``pair_gathers`` False).

    python3 scripts/device_peaks.py --data all --focus 0 --budget 100G --backend counting
    python3 scripts/device_peaks.py --data all --focus 0 --budget 100G --backend counting-cupy
    python3 scripts/device_peaks.py --data random --budget 100G --backend cupy

``all`` is ../shared/data/all_leukemia.tsv.gz (or .gpudata/ beside the checkout), ``demo`` the
embedded subset, ``random`` planted_matrix(8763, 938, 300, strength=0.6); or a matrix file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bootgpu import pipeline
from bootgpu.config import AnalysisConfig
from bootgpu.planner import parse_size, plan_batches

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    if name == "random":
        from bootgpu.synthetic import planted_matrix

        return planted_matrix(8763, 938, 300, strength=0.6).values
    from bootgpu.expression_io import demo_expression_path, read_expression

    if name == "demo":
        return read_expression(demo_expression_path()).values
    if Path(name).exists():
        return read_expression(name).values
    for path in (ROOT.parent / "shared" / "data" / "all_leukemia.tsv.gz", ROOT / ".gpudata" / "all_leukemia.tsv.gz"):
        if path.exists():
            return read_expression(path).values
    raise SystemExit("all_leukemia.tsv.gz not found")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="all")
    ap.add_argument("--focus", type=int, nargs="+", default=[0])
    ap.add_argument("--budget", default="100G")
    ap.add_argument("--backend", default="counting")
    ap.add_argument("--B", type=int, default=1000)
    args = ap.parse_args()
    if args.backend in ("counting", "counting-cupy"):
        from bootgpu.backends.counting import CountingBackend

        backend = CountingBackend(pair_gathers=args.backend == "counting")
    else:
        from bootgpu.backends import get_backend

        backend = get_backend(args.backend)
    values = load(args.data)
    cfg = AnalysisConfig(n_bootstrap=args.B)
    k_low, k_high = cfg.validate(values.shape[1])
    plan = plan_batches(values.shape[0], values.shape[1], k_low, k_high, cfg.n_bootstrap, parse_size(args.budget, "--budget"),
                        bootstrap_frac=cfg.bootstrap_frac, **backend.plan_facts(), threads=1)
    expr = backend.to_device(values)
    stages: dict = {}
    import bootgpu.core.bootstrap as core_bootstrap

    wrapped = [(pipeline, name) for name in ("select_edges", "q_values", "bootstrap_edges")]
    wrapped += [(core_bootstrap, name) for name in ("chunk_deltas", "summarise")]

    def staged(module, name):
        fn = getattr(module, name)

        def run(*a, **kw):
            with backend.track_peak() as peak:
                out = fn(*a, **kw)
            stages[name] = max(stages.get(name, 0), peak.peak_bytes)
            return out
        setattr(module, name, run)

    for module, name in wrapped:
        staged(module, name)
    rows = []
    for focus in args.focus:
        stages.clear()
        t0 = time.perf_counter()
        with backend.track_peak() as peak:
            result = pipeline.analyse_focus(backend, expr, focus, cfg, plan, k_low, k_high)
        predicted = result.plan.predicted_peak_bytes if result.plan is not None else plan.predicted_peak_bytes
        rows.append({"data": Path(args.data).name if Path(args.data).exists() else args.data, "focus": focus, "backend": args.backend, "edges": int(result.edges["gene_i"].shape[0]),
                     "seconds": round(time.perf_counter() - t0, 2), "peak_gib": round(peak.peak_bytes / 2**30, 3),
                     "predicted_gib": round(predicted / 2**30, 3), "ratio": round(predicted / max(peak.peak_bytes, 1), 3),
                     "stage_peak_gib": {k: round(v / 2**30, 3) for k, v in stages.items()},
                     "plan_stage_gib": {k: round(v[1] / 2**30, 3) for k, v in result.plan.stages.items()} if result.plan else {},
                     "rows_per_block": plan.rows_per_block, "edge_chunk": result.plan.edge_chunk if result.plan else None})
        print(json.dumps(rows[-1]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
