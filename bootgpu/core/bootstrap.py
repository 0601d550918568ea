"""Step 4: bootstrap of the selected edges, delta_b = r_high_b - r_low_b, re-ranked in every resample.

A resample is a vector of draw counts per group position; ranks follow from the genes' base sort
order (``ranks``), and the correlation is a count-weighted dot product over group positions:
r_b(i, j) = sum_p c_p d_ip d_jp / sqrt(S_i S_j), S_i = sum_p c_p d_ip^2.  Ranks are small integers
(int16), products and sums are exact in float32 (float64 for large resamples).  A gene without
tied values has S = ((m^3 - m) - sum_p (c_p^3 - c_p)) / 3 in every resample (the tie correction of
the draws' own repeats), so only genes with tied values need their S summed.

Replicates are computed in chunks (in threads on a host backend) but every edge's B deltas are
reduced together, so the result does not depend on chunk sizes or threads.  An edge with a NaN
replicate (a gene constant in a resample) gets NaN statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bootgpu.core.draws import draw_counts, draw_positions
from bootgpu.core.ranks import GroupOrder, sorted_doubled_ranks, subset_order
from bootgpu.core.spearman import GroupRanks, correlation

LOW, HIGH = 0, 1


@dataclass(frozen=True)
class BootstrapSettings:
    seed: int
    focus: int
    n_bootstrap: int
    bootstrap_frac: float
    ci_alpha: float
    replicate_chunk: int
    edge_chunk: int
    threads: int = 1  # replicate chunks computed at once (Plan.threads)


def resample_size(k: int, bootstrap_frac: float) -> int:
    return int(k * bootstrap_frac)


def exact_dtype_bytes(m: int) -> int:
    """4 (float32) while every weighted rank product sum is below 2**24: sum_p c_p |d_p|^2 <= m^3;
    else 8 (float64, exact to 2**53)."""
    return 4 if m**3 < 2**24 else 8


def exact_dtype(xp, m: int):
    return xp.float32 if exact_dtype_bytes(m) == 4 else xp.float64


def rank_dtype_bytes(m: int) -> int:
    """2 (int16) while resample ranks and their running sums (at most 2 m) fit, else 4 (int32)."""
    return 2 if 2 * m < 2**15 else 4


def rank_dtype(xp, m: int):
    return xp.int16 if rank_dtype_bytes(m) == 2 else xp.int32


@dataclass
class EdgeGroup:
    """One group's sort structure for the genes of an edge chunk, and where each edge's genes'
    positions sit in the sorted rank rows: (k * E,) row indices, position-major."""

    order: GroupOrder
    m: int
    rows_i: Any
    rows_j: Any
    iu: Any  # (E,) edge -> local gene
    ju: Any

    @classmethod
    def build(cls, xp, group: GroupRanks, genes, iu, ju, m: int) -> "EdgeGroup":
        order = subset_order(xp, group.order, genes)
        unsort = xp.reshape(order.unsort, (order.k, order.n_genes))  # (position, gene) -> row
        rows_i = xp.reshape(xp.take(unsort, iu, axis=1), (-1,))
        rows_j = xp.reshape(xp.take(unsort, ju, axis=1), (-1,))
        return cls(order, m, rows_i, rows_j, iu, ju)

    def correlations(self, backend, counts):
        """(E, R) correlations of the edges in the resamples given by (k, R) draw counts."""
        xp, order, m = backend.xp, self.order, self.m
        k, n_rep = counts.shape
        n_edges = self.iu.shape[0]
        exact = exact_dtype(xp, m)
        c = xp.astype(counts, rank_dtype(xp, m))
        d = sorted_doubled_ranks(xp, order, c, m)  # (k * U, R)
        d_i = xp.reshape(xp.take(d, self.rows_i, axis=0), (k, n_edges, n_rep))
        d_j = xp.reshape(xp.take(d, self.rows_j, axis=0), (k, n_edges, n_rep))
        dots = backend.weighted_dots(d_i, d_j, c, exact)
        del d_i, d_j
        if order.has_ties:  # S of each gene, summed
            d_pos = xp.reshape(xp.take(d, order.unsort, axis=0), (k, order.n_genes, n_rep))
            sumsq = backend.weighted_dots(d_pos, d_pos, c, exact)  # (U, R)
            return correlation(xp, dots, xp.take(sumsq, self.iu, axis=0), xp.take(sumsq, self.ju, axis=0))
        c64 = xp.astype(counts, xp.float64)
        s = ((m**3 - m) - xp.sum(c64 * c64 * c64 - c64, axis=0)) / 3.0  # (R,), the same for every gene
        return correlation(xp, dots, s[None, :], s[None, :])


def bootstrap_deltas(backend, low: GroupRanks, high: GroupRanks, gene_i, gene_j, cfg: BootstrapSettings, replicate_chunk=None):
    """(E, B) float64 bootstrap deltas of edges (gene_i, gene_j).

    ``replicate_chunk(n_genes, n_edges) -> int`` sizes replicate chunks for this edge chunk's gene
    subset (default: ``cfg.replicate_chunk``); results do not depend on it.
    """
    xp = backend.xp
    genes = xp.sort(xp.unique_values(xp.concat([gene_i, gene_j])))
    iu = xp.searchsorted(genes, gene_i)
    ju = xp.searchsorted(genes, gene_j)
    groups = [(code, EdgeGroup.build(xp, group, genes, iu, ju, resample_size(group.k, cfg.bootstrap_frac)))
              for code, group in ((LOW, low), (HIGH, high))]
    step = replicate_chunk(genes.shape[0], gene_i.shape[0]) if replicate_chunk else cfg.replicate_chunk
    deltas = xp.empty((gene_i.shape[0], cfg.n_bootstrap), dtype=xp.float64)

    def chunk(r0: int) -> None:
        r1 = min(r0 + step, cfg.n_bootstrap)
        reps = xp.arange(r0, r1, dtype=xp.int64)
        r = []
        for code, edges in groups:
            pos = draw_positions(xp, cfg.seed, cfg.focus, code, reps, edges.order.k, edges.m)
            counts = draw_counts(xp, pos, edges.order.k, by_position=True)  # (k, R)
            r.append(edges.correlations(backend, counts))
        deltas[:, r0:r1] = r[1] - r[0]

    backend.map_chunks(chunk, range(0, cfg.n_bootstrap, step), cfg.threads)
    return deltas


def _percentile_sorted(xp, sorted_x, q: float):
    """Linear-interpolated quantile of rows already sorted, as numpy.quantile(method='linear')."""
    n = sorted_x.shape[1]
    virtual = (n - 1) * q
    lo = min(int(virtual), n - 1)
    hi = min(lo + 1, n - 1)
    t = virtual - lo
    a, b = sorted_x[:, lo], sorted_x[:, hi]
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def summarise(xp, deltas, base_delta, ci_alpha: float):
    """Per-edge bootstrap summary from (E, B) deltas: mean, std (ddof 1), CI, bias and p."""
    n_boot = deltas.shape[1]
    mean = xp.mean(deltas, axis=1)
    std = xp.std(deltas, axis=1, correction=1) if n_boot > 1 else xp.full_like(mean, xp.nan)
    srt = xp.sort(deltas, axis=1)
    bad = xp.any(xp.isnan(deltas), axis=1)
    ci_low = xp.where(bad, xp.nan, _percentile_sorted(xp, srt, ci_alpha / 2))
    ci_high = xp.where(bad, xp.nan, _percentile_sorted(xp, srt, 1 - ci_alpha / 2))
    above = xp.astype(xp.sum(xp.astype(deltas > 0, xp.int64), axis=1), xp.float64) / n_boot
    below = xp.astype(xp.sum(xp.astype(deltas < 0, xp.int64), axis=1), xp.float64) / n_boot
    p = xp.maximum(2.0 * xp.minimum(above, below), 1.0 / n_boot)
    p = xp.where(bad, xp.nan, p)
    return {
        "boot_mean": mean,
        "boot_std": std,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "bias": mean - base_delta,
        "boot_p": p,
    }
