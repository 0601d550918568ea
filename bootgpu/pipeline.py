"""One focus gene end to end, on any backend: split, ranks, pair tests, BH, selection, bootstrap.

Pair space is visited in passes over row blocks (see ``core.fdr``): histogram, BH thresholds,
selection, q-values of the selected edges.  Only the selected edges' values outlive a block.
Then the pair cache is dropped (and its memory handed back), the bootstrap is re-planned for the
number of selected edges (``planner.plan_bootstrap``) and run (``core.bootstrap``); the re-made
plan, with the focus gene's predicted peak, comes back on ``FocusResult.plan``.
The result is moved to the host explicitly at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bootgpu.config import AnalysisConfig
from bootgpu.core.bootstrap import BootstrapSettings, bootstrap_summaries, resample_size
from bootgpu.core.change import classify_change
from bootgpu.core.fdr import BHStream, bins_for_pairs
from bootgpu.core.significance import FisherTest, TTest
from bootgpu.core.spearman import PairBlocks, group_ranks
from bootgpu.core.split import split_samples
from bootgpu.planner import Plan, bootstrap_peak, plan_bootstrap, replicate_bytes, replicate_chunk_for

TESTS = ("low", "high", "diff")
EDGE_FLOAT_FIELDS = (
    "r_low", "r_high", "delta", "q_low", "q_high", "q_diff",
    "boot_mean", "boot_std", "ci_low", "ci_high", "bias", "boot_p",
)  # fmt: skip


@dataclass
class FocusResult:
    """Host (NumPy) results of one focus gene; ``edges`` holds the selected edges' arrays."""

    focus: int
    attrs: dict
    low_samples: np.ndarray
    high_samples: np.ndarray
    edges: dict = field(default_factory=dict)
    plan: Plan | None = None  # the plan re-made for this focus gene's selected edges (planner.plan_bootstrap):
    #                           its predicted_peak_bytes is the prediction for this focus gene


class PairPasses:
    """Repeated passes over pair space: ``map(fn)`` yields fn(block, valid, r_low, r_high, stats)
    for every block, in block order, computing up to ``threads`` blocks at once.

    With ``cache`` the first pass keeps each block's values (about 25 bytes a pair), so later passes
    cost only the cheap statistics; without it every pass recomputes the matrix products.  Per-block
    work runs in the backend's threads; whatever is reduced across blocks is reduced by the caller,
    in block order, so results do not depend on the thread count.
    """

    def __init__(self, backend, pairs: PairBlocks, tests: dict, cache: bool, threads: int = 1):
        self.backend, self.xp = backend, backend.xp
        self.pairs, self.tests, self.cache = pairs, tests, cache
        self.threads = max(1, int(threads))
        self._starts = pairs.starts()
        self._cached = [None] * len(self._starts) if cache else None

    def _compute(self, block):
        xp = self.xp
        valid = xp.isfinite(block.r_low) & xp.isfinite(block.r_high)
        if int(xp.count_nonzero(valid)) == valid.shape[0]:
            r_low, r_high = block.r_low, block.r_high
        else:
            r_low, r_high = block.r_low[valid], block.r_high[valid]
        s_diff = self.tests["diff"].statistic(xp, r_low, r_high)
        block.r_low = block.r_high = None  # only the valid pairs' values are kept
        return block, valid, r_low, r_high, s_diff

    def _item(self, index: int):
        item = self._cached[index] if self._cached is not None else None
        if item is None:
            item = self._compute(self.pairs.block(self._starts[index]))
            if self._cached is not None:
                self._cached[index] = item
        return item

    def _with_stats(self, item):
        block, valid, r_low, r_high, s_diff = item
        stats = {"low": self.xp.abs(r_low), "high": self.xp.abs(r_high), "diff": s_diff}
        return block, valid, r_low, r_high, stats

    def map(self, fn):
        n_blocks = len(self._starts)
        for w0 in range(0, n_blocks, self.threads):  # a wave of blocks at a time bounds memory
            # blocks are computed here (their matrix products use BLAS's own threads), the
            # per-block work of ``fn`` in the backend's threads
            items = [self._item(i) for i in range(w0, min(w0 + self.threads, n_blocks))]
            yield from self.backend.map_chunks(lambda item: fn(*self._with_stats(item)), items, self.threads)

    def __iter__(self):
        return self.map(lambda *item: item)


def _collect(xp, parts):
    return {key: xp.concat([p[key] for p in parts]) for key in parts[0]} if parts else None


def analyse_focus(backend, expr, focus: int, cfg: AnalysisConfig, plan: Plan, k_low: int, k_high: int) -> FocusResult:
    """Analyse focus gene ``focus`` of ``expr`` (device array, genes x samples, float64)."""
    xp = backend.xp
    low_idx, high_idx = split_samples(xp, expr[focus, :], k_low, k_high)
    low = group_ranks(xp, xp.take(expr, low_idx, axis=1))
    high = group_ranks(xp, xp.take(expr, high_idx, axis=1))
    pairs = PairBlocks(xp, low, high, plan.rows_per_block)
    tests = {"low": TTest(k_low), "high": TTest(k_high), "diff": FisherTest(k_low, k_high)}
    n_bins = bins_for_pairs(pairs.n_pairs)
    streams = {name: BHStream(backend, test, name, n_bins) for name, test in tests.items()}
    passes = PairPasses(backend, pairs, tests, plan.cache_pairs, plan.threads)

    n_nan = _count_pass(xp, passes, streams)
    s_star = _threshold_pass(passes, streams, cfg.fdr_alpha)
    counts, sel = _selection_pass(xp, passes, pairs, s_star, cfg.edge_selection)

    attrs = {"k_low": k_low, "k_high": k_high, "n_tests": pairs.n_pairs - n_nan, "n_nan": n_nan, **counts}
    low_samples = backend.to_host(low_idx).astype(np.int32)
    high_samples = backend.to_host(high_idx).astype(np.int32)
    if sel is None:
        attrs["n_robust"] = 0
        return FocusResult(focus, attrs, low_samples, high_samples, _empty_edges(), plan_bootstrap(plan, 0))

    edges = _q_value_pass(backend, passes, streams, sel)
    del passes  # the cached pair statistics are not needed by the bootstrap
    backend.release_memory()
    plan = plan_bootstrap(plan, int(sel["gene_i"].shape[0]))
    boot, plan = _bootstrap_selected(backend, low, high, sel, focus, cfg, plan, k_low, k_high)
    edges.update(boot)
    robust = (edges["ci_low"] > 0) | (edges["ci_high"] < 0)
    attrs["n_robust"] = int(xp.count_nonzero(robust))
    change = classify_change(xp, sel["sig_low"], sel["sig_high"], sel["r_low"], sel["r_high"])

    host = {key: backend.to_host(edges[key]).astype(np.float32) for key in EDGE_FLOAT_FIELDS}
    host["gene_i"] = backend.to_host(sel["gene_i"]).astype(np.int32)
    host["gene_j"] = backend.to_host(sel["gene_j"]).astype(np.int32)
    host["change"] = backend.to_host(change).astype(np.int8)
    host["robust"] = backend.to_host(robust)
    return FocusResult(focus, attrs, low_samples, high_samples, host, plan)


def _count_pass(xp, passes, streams) -> int:
    """Pass 1: the three histograms; returns the number of pairs excluded for a NaN correlation."""

    def per_block(block, valid, r_low, r_high, stats):
        n_bad = int(valid.shape[0]) - int(xp.count_nonzero(valid))
        return n_bad, {name: streams[name].histogram(stats[name]) for name in TESTS}

    n_nan = 0
    for n_bad, histograms in passes.map(per_block):
        n_nan += n_bad
        for name in TESTS:
            streams[name].add(histograms[name])
    return n_nan


def _refine(passes, refs: dict) -> None:
    """One pass gathering, for each test's refinement, the statistics in its chosen bins."""
    for picked in passes.map(lambda block, valid, r_low, r_high, stats: {name: refs[name].pick(stats[name]) for name in refs}):
        for name in refs:
            refs[name].add(picked[name])


def _threshold_pass(passes, streams, alpha: float) -> dict:
    """Pass 2: exact BH thresholds, q < alpha  <=>  s >= s*."""
    refs = {name: streams[name].refinement(streams[name].bins_for_threshold(alpha)) for name in TESTS}
    _refine(passes, refs)
    return {name: refs[name].finish().threshold(alpha) for name in TESTS}


def _selection_pass(xp, passes, pairs, s_star: dict, edge_selection: str):
    """Pass 3: significance counts, and the selected edges with their r, statistics and flags."""

    def per_block(block, valid, r_low, r_high, stats):
        sig = {name: stats[name] >= s_star[name] for name in TESTS}
        sig_edges = (sig["low"] | sig["high"]) & sig["diff"]
        counts = {f"n_sig_{name}": int(xp.count_nonzero(sig[name])) for name in TESTS}
        counts["n_sig_edges"] = int(xp.count_nonzero(sig_edges))
        chosen = sig_edges if edge_selection == "sig_edges" else sig["diff"]
        if int(xp.count_nonzero(chosen)) == 0:
            return counts, None
        gene_i, gene_j = pairs.genes_of(block, xp.nonzero(valid)[0][chosen])
        part = {"gene_i": gene_i, "gene_j": gene_j, "r_low": r_low[chosen], "r_high": r_high[chosen]}
        part.update({f"s_{name}": stats[name][chosen] for name in TESTS})
        part.update({f"sig_{name}": sig[name][chosen] for name in ("low", "high")})
        return counts, part

    counts = dict.fromkeys(("n_sig_low", "n_sig_high", "n_sig_diff", "n_sig_edges"), 0)
    parts = []
    for block_counts, part in passes.map(per_block):
        for key, value in block_counts.items():
            counts[key] += value
        if part is not None:
            parts.append(part)
    return counts, _collect(xp, parts)


def _q_value_pass(backend, passes, streams, sel) -> dict:
    """Pass 4: exact BH q of the selected edges for each test."""
    refs = {}
    for name in TESTS:
        query_bins = streams[name].bins(sel[f"s_{name}"])
        refs[name] = streams[name].refinement(streams[name].bins_for_queries(query_bins))
    _refine(passes, refs)
    return {f"q_{name}": refs[name].finish().q_values(sel[f"s_{name}"]) for name in TESTS}


def _bootstrap_selected(backend, low, high, sel, focus, cfg: AnalysisConfig, plan: Plan, k_low: int, k_high: int):
    """(bootstrap summaries of the selected edges plus r and delta, the plan with its predicted
    peak for the replicate chunks used).  ``plan`` is re-planned for the selected edges
    (``planner.plan_bootstrap``): its edge chunk and replicate room."""
    delta = sel["r_high"] - sel["r_low"]
    boot_cfg = BootstrapSettings(
        cfg.seed, focus, cfg.n_bootstrap, cfg.bootstrap_frac, cfg.ci_alpha, plan.replicate_chunk, plan.edge_chunk,
        plan.threads,
    )
    k = max(k_low, k_high)
    m = resample_size(k, cfg.bootstrap_frac)
    work = []  # per edge chunk: its replicate chunks' bytes in flight

    def replicate_chunk(n_genes: int, n_edges: int, dense_outputs: int, sparse_edges: int, ties: bool) -> int:
        reps = replicate_chunk_for(plan, cfg.n_bootstrap, k, m, n_genes, n_edges, dense_outputs, sparse_edges, ties)
        gathered = 0 if plan.working_set_bytes else sparse_edges
        work.append(min(plan.threads, -(-cfg.n_bootstrap // reps)) * reps
                    * replicate_bytes(k, m, n_genes, n_edges, dense_outputs, gathered, ties))
        return reps

    out = bootstrap_summaries(backend, low, high, sel["gene_i"], sel["gene_j"], delta, boot_cfg, replicate_chunk)
    out.update(r_low=sel["r_low"], r_high=sel["r_high"], delta=delta)
    return out, bootstrap_peak(plan, work)


def _empty_edges() -> dict:
    out = {key: np.zeros(0, dtype=np.float32) for key in EDGE_FLOAT_FIELDS}
    out.update(gene_i=np.zeros(0, np.int32), gene_j=np.zeros(0, np.int32), change=np.zeros(0, np.int8))
    out["robust"] = np.zeros(0, dtype=bool)
    return out
