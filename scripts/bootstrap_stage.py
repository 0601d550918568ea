"""The bootstrap stage alone, on selected edges saved once: one JSON line per timing.

    python scripts/bootstrap_stage.py extract --data all|modular|MATRIX.npy --out sel.npz [--focus 0]
    python scripts/bootstrap_stage.py time --sel sel.npz [--B 1000] [--threads 2] [--budget 3G]
                                          [--save summaries.npz | --check summaries.npz]

``extract`` runs ``analyse_focus`` on a focus gene (row; default 0) with B = 2 (the pair passes, not the bootstrap,
take its time) and saves the selected edges (gene_i, gene_j, r_low, r_high as stored, float32) with the
matrix they came from.  ``time`` ranks the two groups again and times
``pipeline.bootstrap_edges`` at B replicates: wall, user and system seconds, page faults, the
peak RSS rise (sampled) and the planner's prediction for the stage.  ``--save`` keeps the float64
summaries; ``--check`` compares them with saved ones byte for byte (``identical`` or the fields
that differ), e.g. against another checkout's (``PYTHONPATH=...``).  ``all`` is
../shared/data/all_leukemia.tsv.gz, ``modular`` ``bootgpu.synthetic.modular_matrix()`` (20,000 x 60).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import time

import numpy as np

from bootgpu import pipeline
from bootgpu.backends import get_backend
from bootgpu.config import AnalysisConfig
from bootgpu.planner import plan_batches, resolve_budget

KEYS = ("boot_mean", "boot_std", "ci_low", "ci_high", "bias", "boot_p")


def load_matrix(data: str) -> np.ndarray:
    if data == "all":
        from bootgpu.expression_io import read_expression

        return read_expression(str(pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "all_leukemia.tsv.gz")).values
    if data == "modular":
        from bootgpu.synthetic import modular_matrix

        return modular_matrix().values
    return np.load(data)


def plan_for(backend, values, n_bootstrap: int, budget: str | None, threads: int):
    cfg = AnalysisConfig(n_bootstrap=n_bootstrap)
    k_low, k_high = cfg.validate(values.shape[1])
    plan = plan_batches(values.shape[0], values.shape[1], k_low, k_high, n_bootstrap, resolve_budget(backend, budget),
                        bootstrap_frac=cfg.bootstrap_frac, **backend.plan_facts(), threads=threads)
    return cfg, k_low, k_high, plan


def extract(args) -> None:
    backend = get_backend("numpy")
    values = load_matrix(args.data)
    cfg, k_low, k_high, plan = plan_for(backend, values, 2, args.budget, backend.host_threads())
    t0 = time.perf_counter()
    edges = pipeline.analyse_focus(backend, values, args.focus, cfg, plan, k_low, k_high).edges
    np.savez(args.out, values=values, focus=args.focus, gene_i=edges["gene_i"], gene_j=edges["gene_j"],
             r_low=edges["r_low"].astype(np.float64), r_high=edges["r_high"].astype(np.float64))
    print(json.dumps({"edges": int(edges["gene_i"].shape[0]), "seconds": round(time.perf_counter() - t0, 1)}))


def time_stage(args) -> None:
    from bootgpu.backends.numpy_backend import current_rss_bytes

    backend = get_backend("numpy")
    backend.prepare()  # the compiled kernels loaded before the stage, as a run does (not in its peak)
    z = np.load(args.sel)
    values = z["values"]
    threads = args.threads or backend.host_threads()
    cfg, k_low, k_high, plan = plan_for(backend, values, args.B, args.budget, threads)
    focus = int(z["focus"]) if "focus" in z else 0
    groups = pipeline.rank_groups(backend, values, focus, k_low, k_high)
    sel = {"gene_i": z["gene_i"].astype(np.int64), "gene_j": z["gene_j"].astype(np.int64),
           "r_low": z["r_low"], "r_high": z["r_high"]}
    with backend.track_peak() as peak:
        r0, t0, rss0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter(), current_rss_bytes()
        out, plan = pipeline.bootstrap_edges(backend, groups, sel, focus, cfg, plan)
        wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    report = {"edges": int(sel["gene_i"].shape[0]), "B": args.B, "threads": threads, "wall_s": round(wall, 2),
              "user_s": round(r1.ru_utime - r0.ru_utime, 2), "sys_s": round(r1.ru_stime - r0.ru_stime, 2),
              "page_faults": r1.ru_minflt - r0.ru_minflt, "peak_rise_MiB": round(peak.peak_bytes / 2**20),
              "predicted_stage_MiB": round(plan.stages["bootstrap of selected edges"][1] / 2**20),
              "edge_chunk": plan.edge_chunk}
    if args.save:
        np.savez(args.save, **{key: np.asarray(out[key]) for key in KEYS})
    if args.check:
        ref = np.load(args.check)
        differ = [key for key in KEYS if ref[key].dtype != out[key].dtype or ref[key].tobytes() != np.asarray(out[key]).tobytes()]
        report["check"] = "identical" if not differ else differ
    print(json.dumps(report))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("extract")
    ex.add_argument("--data", default="all")
    ex.add_argument("--out", required=True)
    ex.add_argument("--budget")
    ex.add_argument("--focus", type=int, default=0, help="row of the focus gene (default 0)")
    tm = sub.add_parser("time")
    tm.add_argument("--sel", required=True)
    tm.add_argument("--B", type=int, default=1000)
    tm.add_argument("--threads", type=int, default=0, help="default: the backend's host threads")
    tm.add_argument("--budget", default="3G")
    tm.add_argument("--save")
    tm.add_argument("--check")
    args = ap.parse_args()
    extract(args) if args.cmd == "extract" else time_stage(args)


if __name__ == "__main__":
    main()
