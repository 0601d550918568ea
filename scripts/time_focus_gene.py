#!/usr/bin/env python3
"""Time one focus gene at a given shape on one backend; print one JSON line.

Data: bootgpu.synthetic.planted_matrix (latent-factor background plus planted rewired pairs), so
the bootstrap stage has real edges to work on.  Peak host memory is the process's ru_maxrss
(whole process, data included); device peak comes from the backend's tracker.

    python scripts/time_focus_gene.py --genes 8763 --samples 938 --n-bootstrap 1000 --backend numpy
"""

from __future__ import annotations

import argparse
import json
import time

from bootgpu.backends import get_backend
from bootgpu.backends.numpy_backend import peak_rss_bytes
from bootgpu.config import AnalysisConfig
from bootgpu.pipeline import analyse_focus
from bootgpu.planner import plan_batches
from bootgpu.synthetic import planted_matrix


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=8763)
    ap.add_argument("--samples", type=int, default=938)
    ap.add_argument("--n-bootstrap", type=int, default=1000)
    ap.add_argument("--planted", type=int, default=300, help="planted pairs per class")
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--memory-budget-gib", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=1, help="timed focus genes after one warm-up (device backends)")
    args = ap.parse_args()

    data = planted_matrix(args.genes, args.samples, args.planted, strength=0.6)
    backend = get_backend(args.backend)
    backend.prepare()  # compiled host kernels loaded first, as a run has them
    cfg = AnalysisConfig(n_bootstrap=args.n_bootstrap)
    k_low, k_high = cfg.validate(args.samples)
    plan = plan_batches(args.genes, args.samples, k_low, k_high, cfg.n_bootstrap, int(args.memory_budget_gib * 2**30),
                        **backend.plan_facts(),
                        threads=backend.host_threads())
    expr = backend.to_device(data.values)
    if args.backend != "numpy":  # first call compiles kernels; time the steady state
        analyse_focus(backend, expr, 0, cfg, plan, k_low, k_high)
    rss_before = peak_rss_bytes()
    times = []
    with backend.track_peak() as peak:
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = analyse_focus(backend, expr, 0, cfg, plan, k_low, k_high)
            backend.synchronize()
            times.append(time.perf_counter() - t0)
    print(json.dumps({
        "backend": backend.name, "device": backend.device_name(), "genes": args.genes, "samples": args.samples,
        "n_bootstrap": args.n_bootstrap, "seconds": min(times), "seconds_all": times,
        "peak_rss_gib": peak_rss_bytes() / 2**30, "rss_before_gib": rss_before / 2**30,
        "tracked_peak_gib": peak.peak_bytes / 2**30, "predicted_peak_gib": plan.predicted_peak_bytes / 2**30,
        "replanned_peak_gib": result.plan.predicted_peak_bytes / 2**30 if getattr(result, "plan", None) else None,
        "plan": {k: v for k, v in plan.__dict__.items() if k != "stages"},
        "n_sig_diff": result.attrs["n_sig_diff"], "n_robust": result.attrs["n_robust"],
    }))


if __name__ == "__main__":
    main()
