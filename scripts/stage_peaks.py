"""Peak RSS rise above the start of ``analyse_focus``, per stage (sampled every 3 ms), against the
planner's stage bytes and its prediction before and after the re-plan; one JSON line.

    python scripts/stage_peaks.py --data all|demo|random|modular|MATRIX.npy [--budget 3G] [--B 1000]

``all`` is ../shared/data/all_leukemia.tsv.gz, ``random`` planted_matrix(8763, 938, 300, strength=0.6),
``modular`` modular_matrix(20000, 60).
"""
import sys, time, json, argparse, threading
import numpy as np
from bootgpu.backends import get_backend
from bootgpu.backends.numpy_backend import current_rss_bytes
from bootgpu.config import AnalysisConfig
from bootgpu import pipeline
from bootgpu.bench import make_plan
from bootgpu.planner import resolve_budget
ap = argparse.ArgumentParser(); ap.add_argument("--data", default="random"); ap.add_argument("--budget"); ap.add_argument("--B", type=int, default=1000)
a = ap.parse_args()
if a.data == "all":
    from bootgpu.expression_io import read_expression
    values = read_expression(str(__import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "data" / "all_leukemia.tsv.gz")).values
elif a.data == "demo":
    from bootgpu.expression_io import read_expression, demo_expression_path
    values = read_expression(demo_expression_path()).values
elif a.data == "random":
    from bootgpu.synthetic import planted_matrix
    values = planted_matrix(8763, 938, 300, strength=0.6).values
elif a.data == "modular":
    from bootgpu.synthetic import modular_matrix
    values = modular_matrix(20000, 60).values
else:
    values = np.load(a.data)
backend = get_backend("numpy")
cfg = AnalysisConfig(n_bootstrap=a.B)
k_low, k_high = cfg.validate(values.shape[1])
plan = make_plan(backend, values.shape[0], values.shape[1], k_low, k_high, cfg, resolve_budget(backend, a.budget))
peak = [0]; cur = {"stage": "start"}; stage_peak = {}
base = current_rss_bytes()
stop = threading.Event()
def sample():
    while not stop.is_set():
        r = current_rss_bytes() - base
        s = cur["stage"]; stage_peak[s] = max(stage_peak.get(s, 0), r)
        time.sleep(0.003)
th = threading.Thread(target=sample, daemon=True); th.start()
def wrap(name, fn):
    def w(*args, **kw):
        prev = cur["stage"]; cur["stage"] = name
        try: return fn(*args, **kw)
        finally: cur["stage"] = prev + "+"
    return w
for n in ("rank_groups", "select_edges", "q_values", "bootstrap_edges"):  # the pipeline's stages
    setattr(pipeline, n, wrap(n, getattr(pipeline, n)))
t = time.perf_counter()
res = pipeline.analyse_focus(backend, values, 0, cfg, plan, k_low, k_high)
stop.set(); th.join()
M = lambda x: round(x / 2**20)
print(json.dumps({"data": a.data, "seconds": round(time.perf_counter() - t, 1), "edges": int(res.edges["gene_i"].shape[0]),
    "measured_MiB": {k: M(v) for k, v in stage_peak.items()}, "overall_MiB": M(max(stage_peak.values())),
    "model_MiB": {k: M(v[1]) for k, v in res.plan.stages.items()}, "predicted_MiB": M(plan.predicted_peak_bytes),
    "replanned_MiB": M(res.plan.predicted_peak_bytes)}, indent=None))
