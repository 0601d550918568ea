"""Step 4: bootstrap of the selected edges, delta_b = r_high_b - r_low_b, re-ranked in every resample.

A resample is a vector of draw counts per group position; ranks follow from the genes' base sort
order (``ranks``), and the correlation is a count-weighted dot product over group positions:
r_b(i, j) = sum_p c_p d_ip d_jp / sqrt(sum_p c_p d_ip^2 * sum_p c_p d_jp^2), exact in float64.
Replicates are computed in chunks but every edge's B deltas are reduced together, so the result
does not depend on chunk sizes.  An edge with a NaN replicate (a gene constant in a resample) gets
NaN statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

from bootgpu.core.draws import draw_counts, draw_positions
from bootgpu.core.ranks import doubled_centred_ranks, subset_order
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


def resample_size(k: int, bootstrap_frac: float) -> int:
    return int(k * bootstrap_frac)


def exact_dtype_bytes(m: int) -> int:
    """4 (float32) while every weighted rank product sum is below 2**24: sum_p c_p |d_p|^2 <= m^3;
    else 8 (float64, exact to 2**53)."""
    return 4 if m**3 < 2**24 else 8


def exact_dtype(xp, m: int):
    return xp.float32 if exact_dtype_bytes(m) == 4 else xp.float64


def _replicate_correlations(xp, order, iu, ju, counts, m: int):
    """(E, R) correlations of edges (iu, ju) -- rows of ``order`` -- given (k, R) draw counts."""
    dtype = exact_dtype(xp, m)
    d = doubled_centred_ranks(xp, order, counts, m, dtype)  # (k, U, R)
    w = d * xp.astype(counts, dtype)[:, None, :]
    sumsq = xp.sum(w * d, axis=0)  # (U, R)
    n_genes = order.n_genes
    if n_genes * n_genes <= 16 * iu.shape[0]:  # dense edges: one product per resample is cheaper
        w_r = xp.permute_dims(w, (2, 1, 0))  # (R, U, k)
        d_r = xp.permute_dims(d, (2, 0, 1))  # (R, k, U)
        full = xp.reshape(xp.matmul(w_r, d_r), (counts.shape[1], n_genes * n_genes))
        dots = xp.matrix_transpose(xp.take(full, iu * n_genes + ju, axis=1))
    else:
        dots = xp.sum(xp.take(w, iu, axis=1) * xp.take(d, ju, axis=1), axis=0)
    return correlation(xp, dots, xp.take(sumsq, iu, axis=0), xp.take(sumsq, ju, axis=0))


def bootstrap_deltas(xp, low: GroupRanks, high: GroupRanks, gene_i, gene_j, cfg: BootstrapSettings, replicate_chunk=None):
    """(E, B) float64 bootstrap deltas of edges (gene_i, gene_j).

    ``replicate_chunk(n_genes, n_edges) -> int`` sizes replicate chunks for this edge chunk's gene
    subset (default: ``cfg.replicate_chunk``); results do not depend on it.
    """
    genes = xp.sort(xp.unique_values(xp.concat([gene_i, gene_j])))
    iu = xp.searchsorted(genes, gene_i)
    ju = xp.searchsorted(genes, gene_j)
    orders = [subset_order(xp, group.order, genes) for group in (low, high)]
    step = replicate_chunk(genes.shape[0], gene_i.shape[0]) if replicate_chunk else cfg.replicate_chunk
    deltas = xp.empty((gene_i.shape[0], cfg.n_bootstrap), dtype=xp.float64)
    for r0 in range(0, cfg.n_bootstrap, step):
        r1 = min(r0 + step, cfg.n_bootstrap)
        reps = xp.arange(r0, r1, dtype=xp.int64)
        r = []
        for code, order in ((LOW, orders[0]), (HIGH, orders[1])):
            m = resample_size(order.k, cfg.bootstrap_frac)
            pos = draw_positions(xp, cfg.seed, cfg.focus, code, reps, order.k, m)
            counts = xp.matrix_transpose(draw_counts(xp, pos, order.k))  # (k, R)
            r.append(_replicate_correlations(xp, order, iu, ju, counts, m))
        deltas[:, r0:r1] = r[1] - r[0]
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
