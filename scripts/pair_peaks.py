#!/usr/bin/env python3
"""The pair passes' memory peak (select_edges and q_values of focus gene 0, RSS rise sampled)
against the planner's pair-stage prediction, on the NumPy backend with 2 threads; one JSON line.

    BOOTGPU_THREADS=2 python3 scripts/pair_peaks.py demo
    BOOTGPU_THREADS=2 python3 scripts/pair_peaks.py planted:3000:938
"""
import json, sys
import numpy as np
from bootgpu.backends import get_backend
from bootgpu.config import AnalysisConfig
from bootgpu import pipeline
from bootgpu.planner import plan_batches, pair_stage_bytes, resident_bytes
from bootgpu.expression_io import read_expression, demo_expression_path
from bootgpu.core.split import split_samples
case = sys.argv[1]
if case == "demo":
    values = read_expression(demo_expression_path()).values
else:
    from bootgpu.synthetic import planted_matrix
    _, genes, samples = case.split(":")
    values = planted_matrix(int(genes), int(samples), 40, strength=0.6).values
backend = get_backend("numpy"); backend.prepare()
cfg = AnalysisConfig(n_bootstrap=300)
kl, kh = cfg.validate(values.shape[1])
plan = plan_batches(values.shape[0], values.shape[1], kl, kh, 300, 2 << 30, working_set_bytes=backend.working_set_bytes, threads=2)
lo, hi = split_samples(np, values[0], kl, kh)
with backend.track_peak() as p0:
    g = pipeline.rank_split(backend, values, lo, hi, 2)
    with backend.track_peak() as p1:
        sel = pipeline.select_edges(backend, pipeline.pair_passes(backend, g, plan), 0.05, "sig_diff")
        q = pipeline.q_values(backend, sel)
print(json.dumps({"case": case, "rows": plan.rows_per_block, "rank+pairs": p0.peak_bytes/1e6, "pairs": p1.peak_bytes/1e6,
  "model_pairs": plan.pair_stage_bytes/1e6, "resident": plan.resident_bytes/1e6}))
