"""One implementation of `bootgpu bench` in a process of its own (``python -m bootgpu.bench
--worker IMPL ...``): its stage figures as one JSON line on stdout, its selected edges in
``OUT_DIR/IMPL.npz``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from bootgpu.bench.check import save_edges
from bootgpu.bench.matrices import SYNTHETIC, synthetic_values
from bootgpu.bench.meters import StageMeter
from bootgpu.bench.reference import REFERENCE, reference_focus
from bootgpu.bench.stages import STAGES, bootgpu_stages, make_plan
from bootgpu.errors import BootgpuError


def _warm_up(backend, values, cfg):
    """Device backends compile kernels on first use: run the pipeline once on a small slice."""
    from bootgpu.pipeline import analyse_focus

    small = values[: min(300, values.shape[0])]
    k_low, k_high = cfg.validate(small.shape[1])
    plan = make_plan(backend, small.shape[0], small.shape[1], k_low, k_high, cfg, 2**30)
    analyse_focus(backend, backend.to_device(small), 0, cfg, plan, k_low, k_high)
    backend.synchronize()


def run_worker(impl: str, genes: int, samples: int, n_bootstrap: int, planted: int, budget: str | None, out_dir: Path,
               expr: str | None = None, focus: int = 0, samples_in_rows: bool = False, synthetic: str = "planted") -> dict:
    """Run one implementation on the benchmark matrix (``synthetic_values(synthetic, ...)``, or the file ``expr`` with
    focus gene row ``focus``); write its selected edges to ``out_dir/IMPL.npz`` and return its
    stage figures."""
    from bootgpu.backends.numpy_backend import peak_rss_bytes
    from bootgpu.config import AnalysisConfig

    if expr:
        from bootgpu.expression_io import read_expression

        values = read_expression(expr, samples_in_rows=samples_in_rows).values
        genes, samples = values.shape
    else:
        values = synthetic_values(synthetic, genes, samples, planted)
        focus = 0
    cfg = AnalysisConfig(n_bootstrap=n_bootstrap)
    k_low, k_high = cfg.validate(samples)
    info: dict = {"implementation": impl}
    if impl == REFERENCE:
        meter, edges = _run_reference(values, focus, cfg, k_low, k_high)
        info["device"] = "cpu (scipy, statsmodels)"
    else:
        meter, edges, figures = _run_backend(impl, values, focus, cfg, k_low, k_high, budget)
        info.update(figures)
    info["stages"] = {name: meter.stages[name] for name in STAGES}
    info["n_selected"] = int(edges["gene_i"].shape[0])
    info["process_peak_rss_bytes"] = peak_rss_bytes()
    save_edges(out_dir, impl, edges)
    return info


def _run_reference(values, focus: int, cfg, k_low: int, k_high: int):
    """The reference's stages, its bootstrap on bootgpu's draws (so that the edges compare):
    (meter, selected edges)."""
    from bootgpu.core.bootstrap import HIGH, LOW, resample_size
    from bootgpu.core.draws import draw_positions

    reps = np.arange(cfg.n_bootstrap, dtype=np.int64)
    positions = {code: draw_positions(np, cfg.seed, focus, code, reps, k, resample_size(k, cfg.bootstrap_frac))
                 for code, k in ((LOW, k_low), (HIGH, k_high))}
    meter = StageMeter(None)
    return meter, reference_focus(values, focus, cfg, positions, meter)


def _run_backend(impl: str, values, focus: int, cfg, k_low: int, k_high: int, budget: str | None):
    """bootgpu on backend ``impl``: the whole pipeline (``focus_gene``), then its stages one by one:
    (meter, selected edges as float64 host arrays, figures: device, plan, attrs, staged check)."""
    from bootgpu.backends import get_backend
    from bootgpu.planner import resolve_budget

    backend = get_backend(impl)
    backend.prepare()  # compiled kernels loaded before any stage is timed or measured
    genes, samples = values.shape
    plan = make_plan(backend, genes, samples, k_low, k_high, cfg, resolve_budget(backend, budget))
    figures: dict = {"device": backend.device_name(), "plan": {
        "budget_bytes": plan.budget_bytes, "rows_per_block": plan.rows_per_block, "cache_pairs": plan.cache_pairs,
        "replicate_chunk": plan.replicate_chunk, "edge_chunk": plan.edge_chunk,
        "predicted_peak_bytes": plan.predicted_peak_bytes}}
    if impl == "cupy":
        _warm_up(backend, values, cfg)
    expr = backend.to_device(values)
    backend.synchronize()
    meter = StageMeter(backend)
    result = _time_focus_gene(backend, expr, focus, cfg, plan, k_low, k_high, meter)
    n_staged = bootgpu_stages(backend, expr, focus, cfg, plan, k_low, k_high, meter)
    edges = {key: np.asarray(value, dtype=np.float64 if value.dtype.kind == "f" else value.dtype)
             for key, value in result.edges.items()}
    figures["attrs"] = {key: int(v) for key, v in result.attrs.items()}
    figures["staged_matches_pipeline"] = n_staged == int(edges["gene_i"].shape[0])
    return meter, edges, figures


def _time_focus_gene(backend, expr, focus: int, cfg, plan, k_low: int, k_high: int, meter: StageMeter):
    """``pipeline.analyse_focus`` twice: the first call also does once-per-process work (BH
    bin-edge p-values, cached for every later focus gene of a study); the second is the per-gene
    cost of a study and is the ``focus_gene`` row (``first_call_seconds``: the first; memory: the
    larger peak of the two).  Returns the second call's result."""
    from bootgpu.pipeline import analyse_focus

    with meter.stage("focus_gene"):
        analyse_focus(backend, expr, focus, cfg, plan, k_low, k_high)
    first = meter.stages.pop("focus_gene")
    with meter.stage("focus_gene"):
        result = analyse_focus(backend, expr, focus, cfg, plan, k_low, k_high)
    second = meter.stages["focus_gene"]
    second["first_call_seconds"] = first["seconds"]
    for key in ("peak_host_bytes", "peak_device_bytes"):
        if second[key] is not None:
            second[key] = max(first[key], second[key])
    return result


def worker_command(impl: str, genes: int, samples: int, n_bootstrap: int, planted: int, out_dir, *,
                   memory_budget: str | None = None, expr: str | None = None, focus: int = 0,
                   samples_in_rows: bool = False, synthetic: str = "planted") -> list:
    """The command line of one worker, ``python -m bootgpu.bench --worker IMPL ...``, as
    ``worker_main`` reads it."""
    cmd = [sys.executable, "-m", "bootgpu.bench", "--worker", impl, "--genes", str(genes),
           "--samples", str(samples), "--n-bootstrap", str(n_bootstrap), "--planted", str(planted),
           "--out-dir", str(out_dir), "--synthetic", synthetic]
    if memory_budget:
        cmd += ["--memory-budget", memory_budget]
    if expr:
        cmd += ["--expr", str(expr), "--focus", str(focus)] + (["--samples-in-rows"] if samples_in_rows else [])
    return cmd


def worker_main(argv) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bootgpu.bench", description="one implementation of `bootgpu bench`")
    ap.add_argument("--worker", required=True)
    ap.add_argument("--genes", type=int, required=True)
    ap.add_argument("--samples", type=int, required=True)
    ap.add_argument("--n-bootstrap", type=int, required=True)
    ap.add_argument("--planted", type=int, required=True)
    ap.add_argument("--memory-budget")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--expr")
    ap.add_argument("--focus", type=int, default=0)
    ap.add_argument("--samples-in-rows", action="store_true")
    ap.add_argument("--synthetic", choices=SYNTHETIC, default="planted")
    args = ap.parse_args(argv)
    try:
        info = run_worker(args.worker, args.genes, args.samples, args.n_bootstrap, args.planted, args.memory_budget,
                          Path(args.out_dir), args.expr, args.focus, args.samples_in_rows, args.synthetic)
    except BootgpuError as exc:
        print(f"bootgpu: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(info))
    return 0

