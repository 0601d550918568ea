"""`bootgpu bench`: per-stage time and peak memory of each backend next to a straightforward
reference implementation of the original algorithm, on one focus gene of a synthetic matrix.

Stages (one focus gene, gene 0 of ``bootgpu.synthetic.planted_matrix``):

``draws``        bootstrap index generation: B x m positions for LOW and for HIGH.  bootgpu draws
                 them again, chunk by chunk, inside ``bootstrap``; this row times them alone.
``ranking``      LOW/HIGH split and the base ranks of every gene in both groups.
``correlations`` Spearman r of every gene pair in both groups.
``tests_bh``     t-tests, Fisher-Z test, Benjamini-Hochberg q over all pairs, the selected edges.
``bootstrap``    B resamples of the selected edges and their summaries (mean, std, CI, p).
``focus_gene``   bootgpu: ``pipeline.analyse_focus`` end to end (the real pipeline, timed on its
                 own): the second of two calls, i.e. the per-gene cost within a study (the
                 first call, which also fills per-process caches, is ``first_call_seconds``;
                 the memory peak is the larger of the two); reference: the sum of its stages,
                 which is how it runs.

The reference (``reference_*`` below) is the algorithm as the original scripts compute it, written
plainly with SciPy and statsmodels: ``scipy.stats.rankdata`` per group, the full (G, G) correlation
matrix of the ranks as one matrix product, every pair's p from ``scipy.stats.t.sf`` and
``scipy.stats.norm.sf``, ``statsmodels`` ``multipletests(method="fdr_bh")`` on all pairs, and a
bootstrap that re-ranks (``rankdata``) the resampled values of the selected edges' genes once per
replicate and group.  Its draws stage times NumPy's ``Generator.integers`` (the original's method);
its bootstrap then uses bootgpu's draws, so the two implementations' outputs can be compared edge
by edge (``check`` in the JSON).

Every implementation runs in a child process of its own (``python -m bootgpu.bench --worker``), so
peak memory is not blurred by what another left behind.  Peak host memory of a stage is the rise of
the process's resident set over its level at the stage's start (sampled every 5 ms); peak device
memory (CuPy) is the rise of what CuPy's pool hands out (a memory hook).  Timers stop after the
device is synchronised.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bootgpu.backends import REGISTRY, unusable_reason
from bootgpu.errors import BootgpuError

STAGES = ("draws", "ranking", "correlations", "tests_bh", "bootstrap", "focus_gene")
REFERENCE = "reference"
BENCH_BACKENDS = tuple(REGISTRY)
COMPARED_FIELDS = ("r_low", "r_high", "q_low", "q_high", "q_diff", "boot_mean", "boot_std", "ci_low", "ci_high", "boot_p")
LOW, HIGH = 0, 1


SYNTHETIC = ("planted", "modular")


def synthetic_values(kind: str, genes: int, samples: int, planted: int):
    """The synthetic benchmark matrix (focus gene 0): ``planted`` (``synthetic.planted_matrix``, a
    latent-factor background with ``planted`` rewired pairs per class: few selected edges, like the
    random reference shape) or ``modular`` (``synthetic.modular_matrix``: co-expression modules
    that rewire as wholes, hundreds of thousands of selected edges at 20,000 x 60, like real data
    with small tails)."""
    from bootgpu import synthetic

    if kind == "modular":
        return synthetic.modular_matrix(genes, samples).values
    return synthetic.planted_matrix(genes, samples, planted, strength=0.6).values


def synthetic_description(kind: str) -> str:
    if kind == "modular":
        return "bootgpu.synthetic.modular_matrix(genes, samples)"
    return "bootgpu.synthetic.planted_matrix(genes, samples, planted, strength=0.6)"


def default_planted(n_genes: int) -> int:
    """Planted pairs per class: 300 (as scripts/time_focus_gene.py) but at most 1/16 of the genes,
    so most genes stay background."""
    return max(0, min(300, (n_genes - 1) // 16))


# --- measuring ------------------------------------------------------------------------------------

class StageMeter:
    """Times stages and records their peak host (RSS rise) and device memory."""

    def __init__(self, backend=None):
        from bootgpu.backends.numpy_backend import NumpyBackend

        self.backend = backend  # None for the reference (host only)
        self.host = NumpyBackend()  # its track_peak samples this process's RSS
        self.device = backend is not None and backend.name == "cupy"
        self.stages: dict = {}

    def _sync(self):
        if self.backend is not None:
            self.backend.synchronize()

    @contextmanager
    def stage(self, name: str):
        self._sync()
        _release_freed_memory()
        with self.host.track_peak() as host:
            if self.device:
                with self.backend.track_peak() as dev:
                    t0 = time.perf_counter()
                    yield
                    self._sync()
                    seconds = time.perf_counter() - t0
            else:
                dev = None
                t0 = time.perf_counter()
                yield
                seconds = time.perf_counter() - t0
        self.stages[name] = {
            "seconds": seconds,
            "peak_host_bytes": int(max(0, host.peak_bytes)),
            "peak_device_bytes": int(dev.peak_bytes) if dev is not None else None,
        }


def _release_freed_memory() -> None:
    """Hand memory freed by earlier stages back to the OS (glibc's malloc_trim), so that a stage's
    RSS rise is not hidden by reuse of what an earlier stage freed."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _process_peak_rss() -> int:
    """VmHWM of this process: its peak resident set, data included."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


# --- the reference implementation ----------------------------------------------------------------

def reference_focus(values, focus, cfg, positions, meter: StageMeter) -> dict:
    """The original algorithm for one focus gene, plainly (see the module docstring).

    ``positions``: {LOW: (B, m_low), HIGH: (B, m_high)} bootstrap positions into each group, used
    by the bootstrap stage (the draws stage times NumPy's generator making arrays of that shape).
    Returns the selected edges' values as float64 host arrays.
    """
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    n_genes, n = values.shape
    k_low, k_high = cfg.validate(n)
    with meter.host.track_peak() as whole:  # the focus gene: every stage, intermediates held
        with meter.stage("draws"):
            rng = np.random.default_rng(cfg.seed)
            for k in (k_low, k_high):
                rng.integers(0, k, size=(cfg.n_bootstrap, int(k * cfg.bootstrap_frac)))
        with meter.stage("ranking"):
            order = np.argsort(values[focus], kind="stable")
            groups = (order[:k_low], order[n - k_high:])
            ranks = [stats.rankdata(values[:, g], axis=1) for g in groups]
        with meter.stage("correlations"):
            iu, ju = np.triu_indices(n_genes, 1)
            r = []
            with np.errstate(invalid="ignore", divide="ignore"):
                for rk in ranks:
                    z = rk - rk.mean(axis=1, keepdims=True)
                    z /= np.sqrt(np.sum(z * z, axis=1, keepdims=True))
                    full = z @ z.T  # (G, G): every pair, twice, and the diagonal
                    r.append(full[iu, ju])
                    del full, z
            r_low, r_high = r
            del r, ranks
        with meter.stage("tests_bh"):
            valid = np.isfinite(r_low) & np.isfinite(r_high)
            iu, ju, r_low, r_high = iu[valid], ju[valid], r_low[valid], r_high[valid]
            p = {}
            with np.errstate(divide="ignore", invalid="ignore"):
                for name, rr, k in (("low", r_low, k_low), ("high", r_high, k_high)):
                    t = rr * np.sqrt((k - 2) / ((1.0 - rr) * (1.0 + rr)))
                    p[name] = 2.0 * stats.t.sf(np.abs(t), k - 2)
                    del t
            se = np.sqrt(1.0 / (k_low - 3) + 1.0 / (k_high - 3))
            dz = np.arctanh(np.clip(r_high, -0.9999, 0.9999)) - np.arctanh(np.clip(r_low, -0.9999, 0.9999))
            p["diff"] = 2.0 * stats.norm.sf(np.abs(dz) / se)
            del dz
            q = {name: multipletests(pv, alpha=cfg.fdr_alpha, method="fdr_bh")[1] for name, pv in p.items()}
            del p
            sig = {name: qv < cfg.fdr_alpha for name, qv in q.items()}
            sig_edges = (sig["low"] | sig["high"]) & sig["diff"]
            chosen = np.flatnonzero(sig_edges if cfg.edge_selection == "sig_edges" else sig["diff"])
            edges = {"gene_i": iu[chosen], "gene_j": ju[chosen], "r_low": r_low[chosen], "r_high": r_high[chosen]}
            edges.update({f"q_{name}": q[name][chosen] for name in q})
            del q, sig, iu, ju, r_low, r_high, valid
        with meter.stage("bootstrap"):
            edges.update(reference_bootstrap(values, groups, edges["gene_i"], edges["gene_j"],
                                             edges["r_high"] - edges["r_low"], positions, cfg.ci_alpha))
    meter.stages["focus_gene"] = {
        "seconds": sum(meter.stages[name]["seconds"] for name in STAGES[:-1]),
        "peak_host_bytes": int(max(0, whole.peak_bytes)),
        "peak_device_bytes": None,
    }
    return edges


def reference_bootstrap(values, groups, gene_i, gene_j, base_delta, positions, ci_alpha: float) -> dict:
    """delta_b = r_high_b - r_low_b of each edge, the resampled values of the edges' genes
    re-ranked with ``rankdata`` in every replicate; then mean, std, percentile CI, bias, p."""
    from scipy import stats

    genes = np.unique(np.concatenate([gene_i, gene_j]))
    iu, ju = np.searchsorted(genes, gene_i), np.searchsorted(genes, gene_j)
    sub = [values[genes][:, g] for g in groups]  # (U, k) per group
    n_boot = positions[LOW].shape[0]
    deltas = np.empty((gene_i.shape[0], n_boot))
    with np.errstate(invalid="ignore", divide="ignore"):
        for b in range(n_boot):
            r = []
            for code in (LOW, HIGH):
                rk = stats.rankdata(sub[code][:, positions[code][b]], axis=1)
                rk -= rk.mean(axis=1, keepdims=True)
                norm = np.sqrt(np.sum(rk * rk, axis=1))
                r.append(np.sum(rk[iu] * rk[ju], axis=1) / (norm[iu] * norm[ju]))
            deltas[:, b] = r[1] - r[0]
    # r_high_b == r_low_b exactly (e.g. both 1 in a tight module) leaves +-1e-16 of rounding here,
    # which would decide the sign counts of boot_p by chance; such deltas are 0
    deltas[np.abs(deltas) < 1e-12] = 0.0
    mean = deltas.mean(axis=1)
    ci_low, ci_high = np.quantile(deltas, [ci_alpha / 2, 1 - ci_alpha / 2], axis=1)
    p = np.maximum(2 * np.minimum((deltas > 0).mean(axis=1), (deltas < 0).mean(axis=1)), 1.0 / n_boot)
    return {"boot_mean": mean, "boot_std": deltas.std(axis=1, ddof=1), "ci_low": ci_low, "ci_high": ci_high,
            "bias": mean - base_delta, "boot_p": p}


# --- bootgpu, stage by stage ----------------------------------------------------------------------

def make_plan(backend, n_genes, n_samples, k_low, k_high, cfg, budget_bytes):
    """The plan `bootgpu run` would use for this shape and budget on ``backend``."""
    from bootgpu.planner import plan_batches

    return plan_batches(n_genes, n_samples, k_low, k_high, cfg.n_bootstrap, budget_bytes,
                        bootstrap_frac=cfg.bootstrap_frac, working_set_bytes=backend.working_set_bytes,
                        threads=backend.host_threads())


def stage_draws(backend, cfg, focus: int, k_low: int, k_high: int):
    """Positions of all B replicates for LOW and HIGH: two (B, m) int64 device arrays."""
    from bootgpu.core.bootstrap import resample_size
    from bootgpu.core.draws import draw_positions

    xp = backend.xp
    reps = xp.arange(cfg.n_bootstrap, dtype=xp.int64)
    return tuple(draw_positions(xp, cfg.seed, focus, code, reps, k, resample_size(k, cfg.bootstrap_frac))
                 for code, k in ((LOW, k_low), (HIGH, k_high)))


def stage_ranking(backend, expr, focus: int, k_low: int, k_high: int, threads: int = 1):
    """The LOW/HIGH split of ``focus`` and both groups' base ranks (``pipeline.rank_groups``)."""
    from bootgpu.pipeline import rank_groups

    return rank_groups(backend, expr, focus, k_low, k_high, threads)


def stage_correlations(backend, groups, plan):
    """One pass over pair space computing every pair's values in both groups (``pipeline.pair_passes``):
    with ``plan.cache_pairs`` the blocks are kept for the BH passes, as in the pipeline."""
    from bootgpu.pipeline import pair_passes

    with backend.pair_scope():
        passes = pair_passes(backend, groups, plan)
        for _ in passes:
            pass
    return passes


def stage_tests_bh(backend, passes, cfg):
    """The pipeline's BH passes over pair space (``pipeline.select_edges`` and ``q_values``).
    Returns the selected edges (gene_i, gene_j, r_low, r_high, s_*, sig_*, q_*) or None."""
    from bootgpu.pipeline import q_values, select_edges

    selection = select_edges(backend, passes, cfg.fdr_alpha, cfg.edge_selection)
    if selection.edges is not None:
        selection.edges.update(q_values(backend, selection))
    return selection.edges


def stage_bootstrap(backend, groups, sel, cfg, plan, focus: int):
    """The pipeline's bootstrap of the selected edges ``sel`` (``pipeline.bootstrap_edges``)."""
    from bootgpu.pipeline import bootstrap_edges

    return bootstrap_edges(backend, groups, sel, focus, cfg, plan)[0]


def bootgpu_stages(backend, expr, focus, cfg, plan, k_low, k_high, meter: StageMeter) -> int:
    """bootgpu's stages one after another, through the pipeline's own pass functions; returns the
    number of selected edges (to check against the pipeline's own run)."""
    with meter.stage("draws"):
        positions = stage_draws(backend, cfg, focus, k_low, k_high)
    del positions
    with meter.stage("ranking"):
        groups = stage_ranking(backend, expr, focus, k_low, k_high, plan.threads)
    with meter.stage("correlations"):
        passes = stage_correlations(backend, groups, plan)
    with meter.stage("tests_bh"):
        sel = stage_tests_bh(backend, passes, cfg)
    del passes
    with meter.stage("bootstrap"):
        if sel is not None:
            stage_bootstrap(backend, groups, sel, cfg, plan, focus)
    return 0 if sel is None else int(sel["gene_i"].shape[0])


def _warm_up(backend, values, cfg):
    """Device backends compile kernels on first use: run the pipeline once on a small slice."""
    from bootgpu.pipeline import analyse_focus

    small = values[: min(300, values.shape[0])]
    k_low, k_high = cfg.validate(small.shape[1])
    plan = make_plan(backend, small.shape[0], small.shape[1], k_low, k_high, cfg, 2**30)
    analyse_focus(backend, backend.to_device(small), 0, cfg, plan, k_low, k_high)
    backend.synchronize()


# --- one implementation, in its own process ------------------------------------------------------

def run_worker(impl: str, genes: int, samples: int, n_bootstrap: int, planted: int, budget: str | None, out_dir: Path,
               expr: str | None = None, focus: int = 0, samples_in_rows: bool = False, synthetic: str = "planted") -> dict:
    """Run one implementation on the benchmark matrix (``synthetic_values(synthetic, ...)``, or the file ``expr`` with
    focus gene row ``focus``); write its selected edges to ``out_dir/IMPL.npz`` and return its
    stage figures."""
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
        from bootgpu.core.bootstrap import resample_size
        from bootgpu.core.draws import draw_positions

        reps = np.arange(n_bootstrap, dtype=np.int64)
        positions = {code: draw_positions(np, cfg.seed, focus, code, reps, k, resample_size(k, cfg.bootstrap_frac))
                     for code, k in ((LOW, k_low), (HIGH, k_high))}
        meter = StageMeter(None)
        edges = reference_focus(values, focus, cfg, positions, meter)
        info["device"] = "cpu (scipy, statsmodels)"
    else:
        from bootgpu.backends import get_backend
        from bootgpu.pipeline import analyse_focus
        from bootgpu.planner import resolve_budget

        backend = get_backend(impl)
        plan = make_plan(backend, genes, samples, k_low, k_high, cfg, resolve_budget(backend, budget))
        info.update(device=backend.device_name(), plan={
            "budget_bytes": plan.budget_bytes, "rows_per_block": plan.rows_per_block, "cache_pairs": plan.cache_pairs,
            "replicate_chunk": plan.replicate_chunk, "edge_chunk": plan.edge_chunk,
            "predicted_peak_bytes": plan.predicted_peak_bytes})
        if impl == "cupy":
            _warm_up(backend, values, cfg)
        expr = backend.to_device(values)
        backend.synchronize()
        meter = StageMeter(backend)
        # twice: the first call also does once-per-process work (BH bin-edge p-values, cached for
        # every later focus gene of a study); the second is the per-gene cost of a study
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
        n_staged = bootgpu_stages(backend, expr, focus, cfg, plan, k_low, k_high, meter)
        edges = {key: np.asarray(value, dtype=np.float64 if value.dtype.kind == "f" else value.dtype)
                 for key, value in result.edges.items()}
        info["attrs"] = {key: int(v) for key, v in result.attrs.items()}
        info["staged_matches_pipeline"] = n_staged == int(edges["gene_i"].shape[0])
    info["stages"] = {name: meter.stages[name] for name in STAGES}
    info["n_selected"] = int(edges["gene_i"].shape[0])
    info["process_peak_rss_bytes"] = _process_peak_rss()
    np.savez(out_dir / f"{impl}.npz", **{key: edges[key] for key in ("gene_i", "gene_j", *COMPARED_FIELDS)})
    return info


def _worker_main(argv) -> int:
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


# --- the whole benchmark -------------------------------------------------------------------------

def compare_edges(out_dir: Path, impl: str) -> dict:
    """Selected edges of ``impl`` against the reference's: same pairs, largest differences."""
    a, b = np.load(out_dir / f"{impl}.npz"), np.load(out_dir / f"{REFERENCE}.npz")
    key_a = a["gene_i"].astype(np.int64) * (1 << 32) + a["gene_j"]
    key_b = b["gene_i"].astype(np.int64) * (1 << 32) + b["gene_j"]
    same = bool(np.array_equal(np.sort(key_a), np.sort(key_b)))
    out: dict = {"same_selected_edges": same, "n_selected": [int(key_a.size), int(key_b.size)]}
    if same and key_a.size:
        ia, ib = np.argsort(key_a), np.argsort(key_b)
        out["max_abs_diff"] = {f: float(np.nanmax(np.abs(a[f][ia] - b[f][ib]))) for f in COMPARED_FIELDS}
    return out


def run_bench(backends, genes: int, samples: int, n_bootstrap: int, *, planted: int | None = None,
              memory_budget: str | None = None, reference: bool = True, log=None, expr: str | None = None,
              focus: int = 0, focus_name: str | None = None, samples_in_rows: bool = False,
              synthetic: str = "planted") -> dict:
    """Run every implementation in its own process; figures, ratios and the edge check as a dict.
    With ``expr`` the matrix is that file (``genes`` x ``samples`` as read) and the focus gene its
    row ``focus``; else the synthetic matrix ``synthetic`` (``synthetic_values``) and its gene 0."""
    import platform

    from bootgpu.version import __version__

    planted = default_planted(genes) if planted is None else planted
    impls = list(backends) + ([REFERENCE] if reference else [])
    report: dict = {
        "bootgpu_version": __version__,
        "shape": {"genes": genes, "samples": samples, "n_bootstrap": n_bootstrap,
                  "planted_per_class": planted if not expr and synthetic == "planted" else None,
                  "focus": focus_name or focus,
                  "data": str(Path(expr).resolve()) if expr else synthetic_description(synthetic)},
        "machine": {"cpu": _cpu_name(), "cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                    "numpy": np.__version__},
        "stages": list(STAGES),
        "reference_description": REFERENCE_DESCRIPTION if reference else None,
        "implementations": {},
    }
    with tempfile.TemporaryDirectory(prefix="bootgpu-bench-") as tmp:
        for impl in impls:
            if log:
                log(f"bench: {impl} on {genes} x {samples}, B = {n_bootstrap} ...")
            cmd = [sys.executable, "-m", "bootgpu.bench", "--worker", impl, "--genes", str(genes),
                   "--samples", str(samples), "--n-bootstrap", str(n_bootstrap), "--planted", str(planted),
                   "--out-dir", tmp, "--synthetic", synthetic]
            if memory_budget:
                cmd += ["--memory-budget", memory_budget]
            if expr:
                cmd += ["--expr", str(expr), "--focus", str(focus)] + (["--samples-in-rows"] if samples_in_rows else [])
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise BootgpuError(f"bench: the {impl} run failed: {tail}")
            info = json.loads(proc.stdout.strip().splitlines()[-1])
            info["process_seconds"] = time.perf_counter() - t0
            report["implementations"][impl] = info
        if reference:
            report["check"] = {impl: compare_edges(Path(tmp), impl) for impl in backends}
    if reference:
        ref = report["implementations"][REFERENCE]["stages"]
        for impl in backends:
            for name, st in report["implementations"][impl]["stages"].items():
                st["ratio_vs_reference"] = ref[name]["seconds"] / st["seconds"] if st["seconds"] > 0 else None
                rp = ref[name]["peak_host_bytes"]
                st["host_memory_vs_reference"] = st["peak_host_bytes"] / rp if rp else None
    return report


REFERENCE_DESCRIPTION = (
    "straightforward SciPy/statsmodels implementation of the original algorithm: scipy.stats.rankdata per group; "
    "full (G, G) Spearman matrix as one matrix product of centred ranks; p of every pair from scipy.stats.t.sf "
    "(t-test) and scipy.stats.norm.sf (Fisher-Z); statsmodels multipletests(method='fdr_bh') over all pairs for each "
    "test; bootstrap of the selected edges re-ranking (rankdata) the resampled values of the edges' genes once per "
    "replicate and group, then correlations of the edges as dot products. draws: numpy Generator.integers (the "
    "bootstrap itself uses bootgpu's draws so outputs can be compared). focus_gene = sum of its stages."
)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


def _mib(n) -> str:
    return "-" if n is None else f"{n / 2**20:.0f}"


def format_table(report: dict) -> str:
    """Rows = stages; per implementation: seconds, x faster than the reference, peak host (and
    device) memory in MiB."""
    impls = report["implementations"]
    header = ["stage"]
    for impl, info in impls.items():
        header += [f"{impl} s"]
        if impl != REFERENCE and REFERENCE in impls:
            header += [f"{impl} x ref"]
        header += [f"{impl} host MiB"]
        if any(st["peak_device_bytes"] is not None for st in info["stages"].values()):
            header += [f"{impl} device MiB"]
    rows = [header]
    for name in STAGES:
        row = [name]
        for impl, info in impls.items():
            st = info["stages"][name]
            row.append(f"{st['seconds']:.3f}")
            if impl != REFERENCE and REFERENCE in impls:
                ratio = st.get("ratio_vs_reference")
                row.append("-" if ratio is None else f"{ratio:.1f}")
            row.append(_mib(st["peak_host_bytes"]))
            if any(s["peak_device_bytes"] is not None for s in info["stages"].values()):
                row.append(_mib(st["peak_device_bytes"]))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths))) for r in rows]
    shape = report["shape"]
    out = [f"bootgpu bench: {shape['genes']} genes x {shape['samples']} samples, B = {shape['n_bootstrap']}, "
           f"focus gene {shape.get('focus', 0)} ({report['machine']['cpu']}, {report['machine']['cores']} cores)", *lines]
    if REFERENCE in impls and len(impls) > 1:
        out.append("x ref: the reference's seconds / this backend's seconds for the stage (5.0 = five times faster; "
                   "below 1 = slower than the reference)")
    for impl, info in impls.items():
        out.append(f"{impl}: {info['device']}, {info['n_selected']} selected edges, process peak RSS "
                   f"{_mib(info['process_peak_rss_bytes'])} MiB")
    for impl, chk in report.get("check", {}).items():
        if chk["same_selected_edges"]:
            worst = max(chk.get("max_abs_diff", {}).values(), default=0.0)
            out.append(f"check {impl} vs reference: same selected edges, largest difference {worst:.2e}")
        else:
            out.append(f"check {impl} vs reference: DIFFERENT selected edges {chk['n_selected']}")
    return "\n".join(out)


def write_plot(report: dict, path: Path) -> None:
    """PNG: seconds (log scale) and peak host memory per stage, one bar per implementation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    impls = list(report["implementations"])
    x = np.arange(len(STAGES))
    width = 0.8 / len(impls)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    panels = (("seconds", "seconds (log scale)", 1.0), ("peak_host_bytes", "peak host memory rise (MiB)", 2**20))
    for ax, (key, label, scale) in zip(axes, panels):
        for i, impl in enumerate(impls):
            vals = [(report["implementations"][impl]["stages"][s][key] or 0) / scale for s in STAGES]
            bars = ax.bar(x + (i - (len(impls) - 1) / 2) * width, vals, width, label=impl)
            if key == "seconds" and impl != REFERENCE and REFERENCE in impls:
                ratios = [report["implementations"][impl]["stages"][s].get("ratio_vs_reference") for s in STAGES]
                ax.bar_label(bars, labels=[(f"{r:.1f}x" if r < 10 else f"{r:.0f}x") if r else "" for r in ratios], fontsize=7)
        ax.set_xticks(x, STAGES, rotation=20)
        ax.set_ylabel(label)
        if key == "seconds":
            ax.set_yscale("log")
    shape = report["shape"]
    fig.suptitle(f"bootgpu bench: {shape['genes']} x {shape['samples']}, B = {shape['n_bootstrap']}, one focus gene "
                 f"(labels: x faster than the reference)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _command_line(args) -> str:
    words = ["bootgpu", "bench"]
    if args.backend:
        words += ["--backend", *args.backend]
    if args.expr:
        words += ["--expr", args.expr] + (["--focus", args.focus] if args.focus else [])
        words += ["--samples-in-rows"] if args.samples_in_rows else []
    else:
        words += ["--synthetic", args.synthetic, "--genes", str(args.genes), "--samples", str(args.samples)]
    words += ["--n-bootstrap", str(args.n_bootstrap)]
    for opt in ("planted", "memory_budget", "json", "plot"):
        if getattr(args, opt) is not None:
            words += [f"--{opt.replace('_', '-')}", str(getattr(args, opt))]
    return " ".join(words + (["--no-reference"] if args.no_reference else []))


def cmd_bench(args) -> int:
    from bootgpu.config import AnalysisConfig
    from bootgpu.synthetic import default_module_sizes

    if args.backend:
        backends = list(dict.fromkeys(args.backend))
    else:  # every benchmarked backend that can run here
        backends = [name for name, spec in REGISTRY.items() if spec.benchmarked and spec.unusable_reason() is None]
    for name in backends:
        if reason := unusable_reason(name):
            raise BootgpuError(f"--backend {name} is not usable: {reason}")
    focus, focus_name = 0, None
    if args.expr:
        from bootgpu.options import read_input
        from bootgpu.study import parse_focus

        expr = read_input(args)
        args.genes, args.samples = expr.n_genes, expr.n_samples
        chosen = parse_focus(args.focus or "#0", expr)
        if len(chosen) != 1:
            raise BootgpuError(f"bench --focus names one focus gene, got {len(chosen)}")
        focus, focus_name = chosen[0], expr.gene_names[chosen[0]]
    elif args.focus:
        raise BootgpuError("bench --focus needs --expr (the synthetic matrix's focus gene is its gene 0)")
    AnalysisConfig(n_bootstrap=args.n_bootstrap).validate(args.samples)
    if args.genes < 2:
        raise BootgpuError(f"--genes must be at least 2, got {args.genes}")
    if args.expr and args.synthetic != "planted":
        raise BootgpuError("bench --synthetic chooses the synthetic matrix; it does not go with --expr")
    if args.synthetic == "modular" and sum(default_module_sizes(args.genes)) > args.genes - 1:
        raise BootgpuError(f"--synthetic modular needs at least 10 genes, got --genes {args.genes}")
    if args.planted is not None and args.synthetic != "planted":
        raise BootgpuError("--planted goes with --synthetic planted (modular plants whole modules)")
    if args.planted is not None and not 0 <= 8 * args.planted < args.genes:
        raise BootgpuError(f"--planted {args.planted} needs more than {8 * args.planted} genes (--genes {args.genes})")
    report = run_bench(backends, args.genes, args.samples, args.n_bootstrap, planted=args.planted,
                       memory_budget=args.memory_budget, reference=not args.no_reference,
                       log=lambda line: print(line, file=sys.stderr, flush=True), expr=args.expr, focus=focus,
                       focus_name=focus_name, samples_in_rows=args.samples_in_rows, synthetic=args.synthetic)
    report["command"] = _command_line(args)
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        try:
            write_plot(report, Path(args.plot))
        except ImportError as exc:
            raise BootgpuError(f"--plot needs matplotlib ({exc}); pip install matplotlib") from None
        print(f"wrote {args.plot}")
    return 0


def register_commands(subparsers) -> None:
    """Add `bootgpu bench` to the CLI's subparsers."""
    p = subparsers.add_parser(
        "bench", help="per-stage time and peak memory of each backend and of a plain SciPy reference",
        description="Time one focus gene of a synthetic matrix stage by stage on each backend and on a "
                    "straightforward SciPy/statsmodels reference implementation of the original algorithm, "
                    "each in its own process; print a table, optionally write JSON and a PNG bar chart.",
    )  # fmt: skip
    p.add_argument("--backend", nargs="+", choices=BENCH_BACKENDS,
                   help="backends to time (default: numpy, and cupy when a CUDA device is usable)")
    p.add_argument("--expr", help="a real expression matrix (TSV/CSV(.gz) or HDF5) instead of the synthetic one")
    p.add_argument("--samples-in-rows", action="store_true", help="--expr holds samples in rows (see bootgpu run)")
    p.add_argument("--focus", help="with --expr: the focus gene, a gene id or #ROW (default #0)")
    p.add_argument("--synthetic", choices=SYNTHETIC, default="planted",
                   help="without --expr, the synthetic matrix: planted (a few planted rewired pairs in a latent-factor "
                        "background, few selected edges) or modular (co-expression modules that rewire as wholes, "
                        "hundreds of thousands of selected edges, like real data with small tails; try --genes 20000 "
                        "--samples 60) (default %(default)s)")
    p.add_argument("--genes", type=int, default=2000, help="genes of the synthetic matrix (default %(default)s)")
    p.add_argument("--samples", type=int, default=300, help="samples (default %(default)s)")
    p.add_argument("--n-bootstrap", type=int, default=1000, help="replicates B (default %(default)s)")
    p.add_argument("--planted", type=int, help="planted rewired pairs per class (default min(300, (genes - 1) // 16))")
    p.add_argument("--memory-budget", help="budget the backends plan with, as for `bootgpu run` (default: as run)")
    p.add_argument("--no-reference", action="store_true", help="skip the reference implementation (no ratios)")
    p.add_argument("--json", help="write the figures as JSON to this file")
    p.add_argument("--plot", help="write a PNG bar chart to this file (needs matplotlib)")
    p.set_defaults(func=cmd_bench)


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
