"""One focus gene end to end, on any backend: split, ranks, pair tests, BH, selection, bootstrap.

Pair space is visited in passes over row blocks (see ``core.fdr``): histogram, BH thresholds,
selection, q-values of the selected edges.  Only the selected edges' values outlive a block.
The result is moved to the host explicitly at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bootgpu.config import AnalysisConfig
from bootgpu.core.bootstrap import BootstrapSettings, bootstrap_deltas, resample_size, summarise
from bootgpu.core.change import classify_change
from bootgpu.core.fdr import BHStream, bins_for_pairs, spearman_levels
from bootgpu.core.significance import FisherTest, TTest, z_transform
from bootgpu.core.spearman import PairBlocks, group_ranks
from bootgpu.core.split import split_samples
from bootgpu.planner import Plan, replicate_chunk_for

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


class BlockStats:
    """A block's per-pair statistics for the three tests, each computed on first use:
    ``stats[name]`` for every valid pair; ``binned(name)`` for the pairs a test's stream counts
    by bin (t-tests with level tables: the pairs with a tied gene in the group; otherwise all);
    ``levels(name)`` the level of every pair (``SpearmanLevels``; pairs counted by bin get n)."""

    def __init__(self, passes: "PairPasses", item: dict, levels: dict | None):
        self._passes, self._item, self._levels = passes, item, levels or {}
        self._abs = {}

    def __getitem__(self, name: str):
        if name == "diff":
            return self._item["s_diff"]
        if name not in self._abs:
            self._abs[name] = self._passes.xp.abs(self._item[f"r_{name}"])
        return self._abs[name]

    def binned(self, name: str):
        if name == "diff" or self._passes.levels[name] is None:
            return self[name]
        tied = self._item[f"tied_{name}"]
        if tied is None:
            return None
        return self._passes.xp.abs(self._item[f"r_{name}"][tied])

    def levels(self, name: str):
        if name not in self._levels:
            self._levels[name] = self._passes.pair_levels(self._item, name)
        return self._levels[name]


class PairPasses:
    """Repeated passes over pair space: ``map(fn)`` yields fn(block, valid, r_low, r_high, stats)
    for every block, in block order, computing up to ``threads`` blocks at once (``stats``: a
    ``BlockStats``).

    With ``cache`` the first pass keeps each block's values (about 25 bytes a pair, plus a flag
    per pair and group where the block has tied genes), so later passes cost only the cheap
    statistics; without it every pass recomputes the matrix products.  The matrix products run in
    the calling thread (BLAS has its own threads), everything per pair after them in the backend's
    threads; whatever is reduced across blocks is reduced by the caller, in block order, so results
    do not depend on the thread count.

    Where a group has level tables (``core.fdr.spearman_levels``), Fisher's z of a pair of tie-free
    genes is read from the table at the pair's level (a gather instead of an arctanh); pairs with
    a tied gene (``sumsq`` below (k^3 - k)/3) get the arctanh.
    """

    def __init__(self, backend, pairs: PairBlocks, tests: dict, cache: bool, threads: int = 1):
        self.backend, self.xp = backend, backend.xp
        self.pairs, self.tests, self.cache = pairs, tests, cache
        self.threads = max(1, int(threads))
        self._starts = pairs.starts()
        self._cached = [None] * len(self._starts) if cache else None
        self.levels = {name: spearman_levels(backend, grp.k) for name, grp in (("low", pairs.low), ("high", pairs.high))}

    def _compute(self, block) -> dict:
        xp = self.xp
        valid = xp.isfinite(block.r_low) & xp.isfinite(block.r_high)
        all_valid = int(xp.count_nonzero(valid)) == valid.shape[0]
        if all_valid:
            r_low, r_high = block.r_low, block.r_high
        else:
            r_low, r_high = block.r_low[valid], block.r_high[valid]
        item = {"block": block, "valid": valid, "r_low": r_low, "r_high": r_high, "s_diff": None}
        for name in ("low", "high"):  # pairs with a tied gene: not on the group's level grid
            tied = getattr(block, f"tied_{name}")
            if tied is not None and not all_valid:
                tied = tied[valid]
                tied = tied if int(xp.count_nonzero(tied)) else None
            item[f"tied_{name}"] = tied
        block.r_low = block.r_high = block.tied_low = block.tied_high = None  # kept in item, valid pairs only
        return item

    def pair_levels(self, item: dict, name: str):
        """Level of each valid pair of ``item`` in group ``name``; ``n`` for pairs with a tied gene."""
        table = self.levels[name]
        a = table.levels(self.xp, item[f"r_{name}"])
        tied = item[f"tied_{name}"]
        if tied is not None:
            a[tied] = table.n
        return a

    def _derive(self, item: dict) -> dict:
        """The Fisher statistic of a block (kept with it); returns the pairs' levels, made on the way."""
        xp = self.xp
        z, levels = {}, {}
        for name in ("low", "high"):
            r, table = item[f"r_{name}"], self.levels[name]
            if table is None:
                z[name] = z_transform(xp, r)
                continue
            a = table.levels(xp, r)
            z[name] = xp.take(table.z, a)
            tied = item[f"tied_{name}"]
            if tied is not None:
                z[name][tied] = z_transform(xp, r[tied])
                a[tied] = table.n
            levels[name] = a
        item["s_diff"] = xp.abs(z["high"] - z["low"])
        return levels

    def _item(self, index: int) -> dict:
        item = self._cached[index] if self._cached is not None else None
        if item is None:
            item = self._compute(self.pairs.block(self._starts[index]))
            if self._cached is not None:
                self._cached[index] = item
        return item

    def _run(self, fn, item: dict):
        levels = self._derive(item) if item["s_diff"] is None else None
        return fn(item["block"], item["valid"], item["r_low"], item["r_high"], BlockStats(self, item, levels))

    def map(self, fn):
        n_blocks = len(self._starts)
        for w0 in range(0, n_blocks, self.threads):  # a wave of blocks at a time bounds memory
            # blocks are computed here (their matrix products use BLAS's own threads), the
            # per-block work of ``fn`` in the backend's threads
            items = [self._item(i) for i in range(w0, min(w0 + self.threads, n_blocks))]
            yield from self.backend.map_chunks(lambda item: self._run(fn, item), items, self.threads)

    def __iter__(self):
        return self.map(lambda *item: item)


def bh_streams(backend, passes: PairPasses) -> dict:
    """One ``BHStream`` per test.  A t-test with level tables counts the pairs of tie-free genes by
    level, so its bins only hold the pairs with a tied gene and are sized for those."""
    xp, pairs = backend.xp, passes.pairs
    streams = {}
    for name, test in passes.tests.items():
        levels = passes.levels.get(name)
        n_binned = pairs.n_pairs
        if levels is not None:
            untied = pairs.n_genes - int(xp.count_nonzero(pairs.tied[name]))
            n_binned -= untied * (untied - 1) // 2
        streams[name] = BHStream(backend, test, name, bins_for_pairs(n_binned), levels)
    return streams


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
    passes = PairPasses(backend, pairs, tests, plan.cache_pairs, plan.threads)
    streams = bh_streams(backend, passes)

    n_nan = _count_pass(xp, passes, streams)
    s_star = _threshold_pass(passes, streams, cfg.fdr_alpha)
    counts, sel = _selection_pass(xp, passes, pairs, s_star, cfg.edge_selection)

    attrs = {"k_low": k_low, "k_high": k_high, "n_tests": pairs.n_pairs - n_nan, "n_nan": n_nan, **counts}
    low_samples = backend.to_host(low_idx).astype(np.int32)
    high_samples = backend.to_host(high_idx).astype(np.int32)
    if sel is None:
        attrs["n_robust"] = 0
        return FocusResult(focus, attrs, low_samples, high_samples, _empty_edges())

    edges = _q_value_pass(backend, passes, streams, sel)
    edges.update(_bootstrap_selected(backend, low, high, sel, focus, cfg, plan, k_low, k_high))
    robust = (edges["ci_low"] > 0) | (edges["ci_high"] < 0)
    attrs["n_robust"] = int(xp.count_nonzero(robust))
    change = classify_change(xp, sel["sig_low"], sel["sig_high"], sel["r_low"], sel["r_high"])

    host = {key: backend.to_host(edges[key]).astype(np.float32) for key in EDGE_FLOAT_FIELDS}
    host["gene_i"] = backend.to_host(sel["gene_i"]).astype(np.int32)
    host["gene_j"] = backend.to_host(sel["gene_j"]).astype(np.int32)
    host["change"] = backend.to_host(change).astype(np.int8)
    host["robust"] = backend.to_host(robust)
    return FocusResult(focus, attrs, low_samples, high_samples, host)


def _count_pass(xp, passes, streams) -> int:
    """Pass 1: the three histograms; returns the number of pairs excluded for a NaN correlation."""

    def per_block(block, valid, r_low, r_high, stats):
        n_bad = int(valid.shape[0]) - int(xp.count_nonzero(valid))
        out = {}
        for name in TESTS:
            stream = streams[name]
            if stream.exact is None:
                out[name] = (stream.histogram(stats[name]), None)
            else:
                binned = stats.binned(name)
                out[name] = (None if binned is None else stream.histogram(binned),
                             stream.level_histogram(stats.levels(name)))
        return n_bad, out

    n_nan = 0
    for n_bad, histograms in passes.map(per_block):
        n_nan += n_bad
        for name in TESTS:
            streams[name].add(*histograms[name])
    return n_nan


def _binned(stats, stream, name: str):
    """The statistics of a block that ``stream`` counted by bin (None: none)."""
    return stats[name] if stream.exact is None else stats.binned(name)


def _refine(passes, refs: dict) -> None:
    """One pass gathering, for each test's refinement, the statistics in its chosen bins; none
    when every chosen value is known from counts by level."""
    refs = {name: ref for name, ref in refs.items() if ref.needs_pass}
    if not refs:
        return

    def per_block(block, valid, r_low, r_high, stats):
        out = {}
        for name, ref in refs.items():
            s = _binned(stats, ref.stream, name)
            out[name] = None if s is None else ref.pick(s)
        return out

    for picked in passes.map(per_block):
        for name in refs:
            if picked[name] is not None:
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


def _bootstrap_selected(backend, low, high, sel, focus, cfg: AnalysisConfig, plan: Plan, k_low: int, k_high: int) -> dict:
    """Bootstrap summaries of the selected edges, in the plan's edge chunks, plus r and delta."""
    xp = backend.xp
    delta = sel["r_high"] - sel["r_low"]
    boot_cfg = BootstrapSettings(
        cfg.seed, focus, cfg.n_bootstrap, cfg.bootstrap_frac, cfg.ci_alpha, plan.replicate_chunk, plan.edge_chunk,
        plan.threads,
    )
    k = max(k_low, k_high)
    m = resample_size(k, cfg.bootstrap_frac)

    def replicate_chunk(n_genes: int, n_edges: int) -> int:
        return replicate_chunk_for(plan, cfg.n_bootstrap, k, m, n_genes, n_edges)

    summaries = []
    n_edges = int(delta.shape[0])
    for e0 in range(0, n_edges, plan.edge_chunk):
        e1 = min(e0 + plan.edge_chunk, n_edges)
        deltas = bootstrap_deltas(backend, low, high, sel["gene_i"][e0:e1], sel["gene_j"][e0:e1], boot_cfg, replicate_chunk)
        summaries.append(summarise(xp, deltas, delta[e0:e1], cfg.ci_alpha))
    out = _collect(xp, summaries)
    out.update(r_low=sel["r_low"], r_high=sel["r_high"], delta=delta)
    return out


def _empty_edges() -> dict:
    out = {key: np.zeros(0, dtype=np.float32) for key in EDGE_FLOAT_FIELDS}
    out.update(gene_i=np.zeros(0, np.int32), gene_j=np.zeros(0, np.int32), change=np.zeros(0, np.int8))
    out["robust"] = np.zeros(0, dtype=bool)
    return out
