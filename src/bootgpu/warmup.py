"""`bootgpu warmup`: compile the GPU kernels a study needs before its tasks start.

CuPy compiles each kernel (an elementwise expression or reduction for one set of dtypes) with
NVRTC the first time a process uses it and keeps the binary in its cache (``CUPY_CACHE_DIR``,
default ``~/.cupy/kernel_cache``), keyed by source, GPU architecture and CUDA version.  A study
uses ~250 of them: on a node whose cache does not have them, the first focus gene waits about a
minute while they compile; with the cache, a few seconds.  On a cluster, a cache on a filesystem
the GPU nodes share (the home directory usually is) makes that once per user, and `bootgpu
warmup` before the tasks start keeps every task from compiling the same kernels at once.

Warm-up analyses the study's first focus genes on its real matrix (the kernels follow the
groups' sizes and the paths the data takes) at a small B (shapes do not change kernels), and
says how long that took and how many kernels the cache gained.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

from bootgpu.options import BACKEND_HELP, add_analysis_options, add_input_options, log, plural, read_input

WARMUP_FOCUS = 2  # focus genes analysed: most paths (pair passes, bootstrap ways, summaries) on the first
WARMUP_B = 64

EXAMPLES = """examples:
  bootgpu warmup --expr expr.tsv.gz                    # once per node (or per shared cache) before a GPU study
  CUPY_CACHE_DIR=/shared/cupy bootgpu warmup --expr expr.tsv.gz --low-frac 0.1 --high-frac 0.1"""


def kernel_cache_dir() -> Path:
    """Where CuPy keeps compiled kernels (CUPY_CACHE_DIR, else ~/.cupy/kernel_cache)."""
    return Path(os.environ.get("CUPY_CACHE_DIR") or Path.home() / ".cupy" / "kernel_cache")


def cached_kernels(path: Path | None = None) -> int:
    """Compiled kernels in CuPy's cache (files; 0 where it does not exist yet)."""
    path = path or kernel_cache_dir()
    return sum(len(files) for _, _, files in os.walk(path)) if path.is_dir() else 0


def cmd_warmup(args) -> int:
    from bootgpu.backends import get_backend
    from bootgpu.config import AnalysisConfig
    from bootgpu.pipeline import analyse_focus
    from bootgpu.planner import plan_batches, resolve_budget
    from bootgpu.study.directory import parse_focus

    expr = read_input(args)
    cfg = AnalysisConfig.from_args(args)
    k_low, k_high = cfg.validate(expr.n_samples)
    focus = parse_focus(args.focus or "all", expr)[:WARMUP_FOCUS]
    backend = get_backend(args.backend, announce=log)
    small = replace(cfg, n_bootstrap=min(cfg.n_bootstrap, WARMUP_B))
    plan = plan_batches(expr.n_genes, expr.n_samples, k_low, k_high, small.n_bootstrap, resolve_budget(backend, None),
                        bootstrap_frac=cfg.bootstrap_frac, **backend.plan_facts(), threads=backend.host_threads(),
                        store=cfg.store)
    before, t0 = cached_kernels(), time.perf_counter()
    dev = backend.to_device(expr.values)
    for gene in focus:
        analyse_focus(backend, dev, gene, small, plan, k_low, k_high)
    backend.synchronize()
    seconds = time.perf_counter() - t0
    after = cached_kernels()
    where = f" in {kernel_cache_dir()}" if backend.on_device else ""
    log(f"warm-up: {plural(len(focus), 'focus gene')} in {seconds:.1f} s on {backend.name}; "
        f"{plural(max(0, after - before), 'kernel')} compiled{where} ({after} cached)")
    return 0


def register_commands(sub) -> None:
    from bootgpu.backends import BACKEND_NAMES

    parser = sub.add_parser("warmup", help="compile the GPU kernels a study needs into CuPy's cache (once per node)",
                            description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_options(parser)
    parser.add_argument("--backend", choices=BACKEND_NAMES, default="auto", help=BACKEND_HELP)
    parser.add_argument("--focus", help="the focus genes whose first two are analysed (default: the first two rows)")
    add_analysis_options(parser)
    parser.set_defaults(func=cmd_warmup)
