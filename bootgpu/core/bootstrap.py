"""Step 4: bootstrap of the selected edges, delta_b = r_high_b - r_low_b, re-ranked in every resample.

A resample is a vector of draw counts c per group position; ranks follow from the genes' base sort
order (``ranks``), and the correlation is a count-weighted dot product over group positions:
r_b(i, j) = sum_p c_p d_ip d_jp / sqrt(S_i S_j), S_i = sum_p c_p d_ip^2.

Work is split by what it depends on.  **Per gene**, once per replicate (however many edges a gene
is in): its resample ranks D (doubled centred, in position order) and the weighted ranks
W = c * D, laid out gene-major, (genes, k, replicates), so an edge reads two contiguous rows; and S,
which for a gene without tied values is ((m^3 - m) - sum_p (c_p^3 - c_p)) / 3 in every resample
(the tie correction of the draws' own repeats), so only genes with ties need it summed.  **Per
edge**, only the dot product sum_p W_ip D_jp, in one of two ways:

- *sparse*: the two rows gathered and multiplied in integers (``Backend.pair_dots``): every partial
  sum is bounded by sqrt(S_i S_j) <= (m^3 - m) / 3, so int16 is exact up to m = 46, int32 up to
  m = 1290 (``dot_dtype``);
- *dense*: where the selected edges fill a good part of a block of genes x genes (co-expression
  modules select whole blocks), one batched matrix product per replicate chunk over the block
  (``Backend.block_dots``), in float32 while m^3 < 2^24 (every partial sum is then an integer
  float32 holds, so any summation order gives the same bytes), and the block's edges gathered
  from it.  ``edge_layout`` (host-side bookkeeping of edge indices) orders genes by degree, cuts
  them into tiles of ``dense_tile`` genes and sends the edges of a tile pair to the matrix product
  when they fill at least ``dense_density`` of it.

A chunk whose genes are barely shared (fewer than ``SHARED_DEGREE`` edges a gene, no dense
block) keeps the *per-edge* way instead (``EdgeGroup``): each edge's two genes' ranks gathered from
the rows of ``ranks.sorted_doubled_ranks`` and summed with the counts as weights in the float dtype
(``Backend.weighted_dots``), which saves un-sorting and weighting every gene when each gene serves
about one edge.

All ways give the same integer, so an edge's deltas are the same bytes whichever way, in whichever
chunk and with whichever other edges it is computed.  Edges are processed in edge chunks (all B
deltas of a chunk's edges are held, (E, B) float64, then summarised in row pieces); replicates in
chunks (in threads on a host backend), and every edge's B deltas are reduced together, so the
result does not depend on chunk sizes or threads.  An edge with a NaN replicate (a gene constant
in a resample) gets NaN statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bootgpu.core.draws import draw_counts, draw_positions
from bootgpu.core.ranks import GroupOrder, position_ranks, sorted_doubled_ranks, subset_order
from bootgpu.core.spearman import GroupRanks, correlation

LOW, HIGH = 0, 1
DENSE_TILE = 256  # genes per side of a dense tile
DENSE_DENSITY = 0.15  # edges / (tile genes x tile genes) from which a matrix product is cheaper (docs/benchmarks.md)
DENSE_MIN_EDGES = 512  # smaller tile pairs are not worth a matrix product of their own
SUMMARY_BYTES = 8 * 2**20  # (rows, B) float64 deltas summarised at a time (summary temporaries stay bounded)


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
    dense_tile: int = DENSE_TILE
    dense_density: float = DENSE_DENSITY  # > 1: never dense; 0 with dense_min_edges 1: always


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


def dot_dtype_bytes(m: int) -> int:
    """Integer size in which c_p d_p, its products with d and every partial sum of them are exact:
    |partial sum| <= sqrt(S_i S_j) <= (m^3 - m) / 3 (Cauchy-Schwarz over any subset of positions)."""
    bound = (m**3 - m) // 3
    return 2 if bound < 2**15 else 4 if bound < 2**31 else 8


def dot_dtype(xp, m: int):
    return {2: xp.int16, 4: xp.int32, 8: xp.int64}[dot_dtype_bytes(m)]


# --- edge layout (host bookkeeping of edge indices) ------------------------------------------------

@dataclass
class Block:
    """Edges ``start:stop`` of a chunk (in the chunk's order), as local gene indices of the chunk's
    gene subset.  Dense: rows x cols is one matrix product, ``flat`` = row_pos * len(cols) + col_pos."""

    start: int
    stop: int
    dense: bool
    a: Any  # sparse: (E,) local gene of each edge's first end; dense: (nA,) row genes
    b: Any  # sparse: (E,) second end;                              dense: (nB,) column genes
    flat: Any = None


@dataclass
class EdgeChunk:
    edges: np.ndarray  # (E_c,) indices into the caller's edge list, in computation order
    genes: Any  # (U,) sorted global gene indices
    iu: Any  # (E_c,) local gene of each edge's ends (for S)
    ju: Any
    blocks: list = field(default_factory=list)

    @property
    def n_edges(self) -> int:
        return int(self.edges.shape[0])

    @property
    def dense_outputs(self) -> int:
        """Outputs (rows x columns) of the largest dense block: blocks are computed one at a time."""
        return max([int(b.a.shape[0]) * int(b.b.shape[0]) for b in self.blocks if b.dense], default=0)

    @property
    def sparse_edges(self) -> int:
        return sum(b.stop - b.start for b in self.blocks if not b.dense)


def _dense_order(gi: np.ndarray, gj: np.ndarray, tile: int, density: float, min_edges: int):
    """(order of edges, segments [(start, stop, dense)], row end, col end) on the host: the edges
    of dense tile pairs first, tile pair by tile pair, sorted by row; then the rest in their order."""
    n = gi.shape[0]
    genes, inv = np.unique(np.concatenate([gi, gj]), return_inverse=True)
    li, lj = inv[:n], inv[n:]
    deg = np.bincount(inv, minlength=genes.shape[0])
    pos = np.empty(genes.shape[0], dtype=np.int64)
    pos[np.argsort(-deg, kind="stable")] = np.arange(genes.shape[0])
    ti, tj = pos[li] // tile, pos[lj] // tile
    n_tiles = -(-genes.shape[0] // tile)
    lo, hi = np.minimum(ti, tj), np.maximum(ti, tj)
    key = lo * n_tiles + hi
    count = np.bincount(key, minlength=n_tiles * n_tiles)
    size = np.minimum(tile, genes.shape[0] - np.arange(n_tiles) * tile)
    outputs = (size[:, None] * size[None, :]).reshape(-1)
    dense_key = (count >= density * outputs) & (count >= max(1, min_edges))
    dense = dense_key[key]
    swap = dense & (tj < ti)  # the row end is the one in the lower tile
    row = np.where(swap, gj, gi)
    col = np.where(swap, gi, gj)
    d_idx = np.flatnonzero(dense)
    d_idx = d_idx[np.lexsort((row[d_idx], key[d_idx]))]
    segments = []
    if d_idx.shape[0]:
        keys = key[d_idx]
        cuts = np.flatnonzero(np.diff(keys)) + 1
        bounds = np.concatenate([[0], cuts, [d_idx.shape[0]]])
        segments += [(int(s), int(e), True) for s, e in zip(bounds[:-1], bounds[1:])]
    s_idx = np.flatnonzero(~dense)
    if s_idx.shape[0]:
        segments.append((d_idx.shape[0], n, False))
    return np.concatenate([d_idx, s_idx]), segments, row, col


def edge_layout(backend, gene_i, gene_j, edge_chunk: int, cfg: BootstrapSettings) -> list:
    """The edges cut into ``EdgeChunk``s of at most ``edge_chunk`` edges, each with its dense and
    sparse blocks (index bookkeeping on the host; the index arrays are moved to the device)."""
    gi = np.asarray(backend.to_host(gene_i), dtype=np.int64)
    gj = np.asarray(backend.to_host(gene_j), dtype=np.int64)
    order, segments, row, col = _dense_order(gi, gj, cfg.dense_tile, cfg.dense_density, DENSE_MIN_EDGES
                                             if cfg.dense_density > 0 else 1)
    dev = backend.to_device
    chunks = []
    n = gi.shape[0]
    step = max(1, int(edge_chunk))
    for c0 in range(0, n, step):
        c1 = min(c0 + step, n)
        idx = order[c0:c1]
        genes = np.unique(np.concatenate([gi[idx], gj[idx]]))
        chunk = EdgeChunk(idx, dev(genes), dev(np.searchsorted(genes, gi[idx])), dev(np.searchsorted(genes, gj[idx])))
        for s0, s1, dense in segments:
            b0, b1 = max(s0, c0), min(s1, c1)
            if b0 >= b1:
                continue
            e = order[b0:b1]
            if dense:
                rows, rpos = np.unique(row[e], return_inverse=True)
                cols, cpos = np.unique(col[e], return_inverse=True)
                chunk.blocks.append(Block(b0 - c0, b1 - c0, True, dev(np.searchsorted(genes, rows)),
                                          dev(np.searchsorted(genes, cols)), dev(rpos * cols.shape[0] + cpos)))
            else:
                chunk.blocks.append(Block(b0 - c0, b1 - c0, False, dev(np.searchsorted(genes, gi[e])),
                                          dev(np.searchsorted(genes, gj[e]))))
        chunks.append(chunk)
    return chunks


# --- per gene and per edge work of one group ----------------------------------------------------

@dataclass
class GeneGroup:
    """One group's sort structure for a chunk's gene subset, and for every (gene u, position p), at
    u * k + p, the scan rows that give its rank (``ranks.position_ranks``): gene-major output."""

    order: GroupOrder
    m: int
    first_rows: Any
    after_rows: Any

    @classmethod
    def build(cls, xp, group: GroupRanks, genes, m: int) -> "GeneGroup":
        order = subset_order(xp, group.order, genes)
        k, n_genes = order.k, order.n_genes

        def gene_major(index):  # entries s * U + u  ->  u * k + s
            return xp.reshape(xp.matrix_transpose(xp.reshape(index, (k, n_genes))), (-1,))

        unsort = gene_major(order.unsort)  # at u * k + p: s * U + u, s the slot of position p
        first = xp.take(order.tie_first, unsort) if order.has_ties else unsort
        last = xp.take(order.tie_last, unsort) if order.has_ties else unsort
        return cls(order, m, first, last + n_genes)

    def ranks(self, xp, c):
        """(U, k, R) resample ranks D in position order and W = c * D, of the dtype of ``c``
        (k, R) counts: ``dot_dtype``, so ranks are computed in it and need no cast."""
        k, n_rep = c.shape
        d = position_ranks(xp, self.order, c, self.m, self.first_rows, self.after_rows)
        d = xp.reshape(d, (self.order.n_genes, k, n_rep))
        return d, d * c[None, :, :]

    def correlations(self, backend, chunk: EdgeChunk, counts):
        """(E_c, R) float64 correlations of the chunk's edges in the resamples of (k, R) counts."""
        xp, m = backend.xp, self.m
        k, n_rep = counts.shape
        c = xp.astype(counts, dot_dtype(xp, m))  # holds 2 m too: dot_dtype_bytes >= rank_dtype_bytes
        d, w = self.ranks(xp, c)
        # S of each gene (only genes with ties need it summed), as float64 once per gene
        sumsq = xp.astype(backend.pair_dots(w, d, None, None), xp.float64) if self.order.has_ties else None
        parts = []
        for blk in chunk.blocks:
            if blk.dense:
                out = backend.block_dots(xp.take(w, blk.a, axis=0), xp.take(d, blk.b, axis=0), exact_dtype(xp, m))
                parts.append(xp.matrix_transpose(xp.take(xp.reshape(out, (n_rep, -1)), blk.flat, axis=1)))
            else:
                parts.append(backend.pair_dots(w, d, blk.a, blk.b))
        if len(parts) == 1:
            dots = parts[0]
        else:
            dots = xp.empty((chunk.n_edges, n_rep), dtype=xp.float64)
            for blk, part in zip(chunk.blocks, parts):
                dots[blk.start:blk.stop, :] = xp.astype(part, xp.float64)
        del parts, w, d
        if sumsq is not None:
            return correlation(xp, dots, xp.take(sumsq, chunk.iu, axis=0), xp.take(sumsq, chunk.ju, axis=0))
        c64 = xp.astype(counts, xp.float64)
        s = ((m**3 - m) - xp.sum(c64 * c64 * c64 - c64, axis=0)) / 3.0  # (R,), the same for every gene
        return correlation(xp, dots, s[None, :], s[None, :])


@dataclass
class EdgeGroup:
    """The per-edge way, for chunks whose genes are barely shared (at most ``SHARED_DEGREE`` edges a
    gene on average): each edge's two genes' ranks gathered straight from the sorted rank rows and
    summed with the counts as weights, so no gene's ranks are un-sorted or weighted on their own
    (with few edges a gene that costs more than it saves: 8,763 x 938, 923 edges on 1,846 genes).
    ``rows_i``/``rows_j``: (k * E,) rows of ``sorted_doubled_ranks`` holding each edge's genes'
    positions, position-major."""

    order: GroupOrder
    m: int
    rows_i: Any
    rows_j: Any

    @classmethod
    def build(cls, xp, group: GroupRanks, genes, iu, ju, m: int) -> "EdgeGroup":
        order = subset_order(xp, group.order, genes)
        unsort = xp.reshape(order.unsort, (order.k, order.n_genes))  # (position, gene) -> row
        return cls(order, m, xp.reshape(xp.take(unsort, iu, axis=1), (-1,)), xp.reshape(xp.take(unsort, ju, axis=1), (-1,)))

    def correlations(self, backend, chunk: EdgeChunk, counts):
        xp, order, m = backend.xp, self.order, self.m
        k, n_rep = counts.shape
        exact = exact_dtype(xp, m)
        c = xp.astype(counts, rank_dtype(xp, m))
        d = sorted_doubled_ranks(xp, order, c, m)  # (k * U, R)
        d_i = xp.reshape(xp.take(d, self.rows_i, axis=0), (k, chunk.n_edges, n_rep))
        d_j = xp.reshape(xp.take(d, self.rows_j, axis=0), (k, chunk.n_edges, n_rep))
        dots = backend.weighted_dots(d_i, d_j, c, exact)
        del d_i, d_j
        if order.has_ties:  # S of each gene, summed
            d_pos = xp.reshape(xp.take(d, order.unsort, axis=0), (k, order.n_genes, n_rep))
            sumsq = backend.weighted_dots(d_pos, d_pos, c, exact)  # (U, R)
            return correlation(xp, dots, xp.take(sumsq, chunk.iu, axis=0), xp.take(sumsq, chunk.ju, axis=0))
        c64 = xp.astype(counts, xp.float64)
        s = ((m**3 - m) - xp.sum(c64 * c64 * c64 - c64, axis=0)) / 3.0  # (R,), the same for every gene
        return correlation(xp, dots, s[None, :], s[None, :])


SHARED_DEGREE = 2.0  # edges per gene below which a chunk without dense blocks takes the per-edge way


def chunk_deltas(backend, low: GroupRanks, high: GroupRanks, chunk: EdgeChunk, cfg: BootstrapSettings, replicate_chunk=None):
    """(E_c, B) float64 bootstrap deltas of one edge chunk, in replicate chunks sized by
    ``replicate_chunk(n_genes, n_edges, dense_outputs, sparse_edges, ties)`` (default:
    ``cfg.replicate_chunk``)."""
    xp = backend.xp
    n_genes = int(chunk.genes.shape[0])
    per_edge = chunk.dense_outputs == 0 and 2 * chunk.n_edges < SHARED_DEGREE * n_genes
    groups = []
    for code, group in ((LOW, low), (HIGH, high)):
        m = resample_size(group.k, cfg.bootstrap_frac)
        groups.append((code, EdgeGroup.build(xp, group, chunk.genes, chunk.iu, chunk.ju, m) if per_edge
                       else GeneGroup.build(xp, group, chunk.genes, m)))
    step = _replicate_step(cfg, chunk, groups, replicate_chunk)
    deltas = xp.empty((chunk.n_edges, cfg.n_bootstrap), dtype=xp.float64)

    def replicates(r0: int) -> None:
        r1 = min(r0 + step, cfg.n_bootstrap)
        reps = xp.arange(r0, r1, dtype=xp.int64)
        r = []
        for code, grp in groups:
            pos = draw_positions(xp, cfg.seed, cfg.focus, code, reps, grp.order.k, grp.m)
            counts = draw_counts(xp, pos, grp.order.k, by_position=True)  # (k, R)
            r.append(grp.correlations(backend, chunk, counts))
        deltas[:, r0:r1] = r[1] - r[0]

    backend.map_chunks(replicates, range(0, cfg.n_bootstrap, max(1, int(step))), cfg.threads)
    return deltas


def _replicate_step(cfg: BootstrapSettings, chunk: EdgeChunk, groups, replicate_chunk) -> int:
    if replicate_chunk is None:
        return cfg.replicate_chunk
    ties = any(grp.order.has_ties for _, grp in groups)
    return replicate_chunk(int(chunk.genes.shape[0]), chunk.n_edges, chunk.dense_outputs, chunk.sparse_edges, ties)


def bootstrap_deltas(backend, low: GroupRanks, high: GroupRanks, gene_i, gene_j, cfg: BootstrapSettings,
                     replicate_chunk=None):
    """(E, B) float64 bootstrap deltas of edges (gene_i, gene_j), in their order, as one edge chunk.

    ``replicate_chunk(n_genes, n_edges, dense_outputs, sparse_edges, ties) -> int`` sizes replicate
    chunks for the chunk's gene subset and blocks (default: ``cfg.replicate_chunk``); results do
    not depend on it.
    """
    xp = backend.xp
    n = int(gene_i.shape[0])
    (chunk,) = edge_layout(backend, gene_i, gene_j, n, cfg)
    with backend.bootstrap_scope():
        deltas = chunk_deltas(backend, low, high, chunk, cfg, replicate_chunk)
    inverse = np.empty(n, dtype=np.int64)
    inverse[chunk.edges] = np.arange(n)
    return xp.take(deltas, backend.to_device(inverse), axis=0)


def bootstrap_summaries(backend, low: GroupRanks, high: GroupRanks, gene_i, gene_j, base_delta,
                        cfg: BootstrapSettings, replicate_chunk=None) -> dict:
    """Bootstrap summaries (``summarise``) of edges (gene_i, gene_j), in their order, computed in
    edge chunks of at most ``cfg.edge_chunk`` edges (dense tile pairs first)."""
    xp = backend.xp
    n = int(gene_i.shape[0])
    parts, order = [], []
    with backend.bootstrap_scope():
        _summaries(backend, low, high, gene_i, gene_j, base_delta, cfg, replicate_chunk, parts, order)
    out = {key: xp.concat([p[key] for p in parts]) for key in parts[0]}
    inverse = np.empty(n, dtype=np.int64)
    inverse[np.concatenate(order)] = np.arange(n)
    inverse = backend.to_device(inverse)
    return {key: xp.take(value, inverse, axis=0) for key, value in out.items()}


def _summaries(backend, low, high, gene_i, gene_j, base_delta, cfg, replicate_chunk, parts, order) -> None:
    xp = backend.xp
    for chunk in edge_layout(backend, gene_i, gene_j, cfg.edge_chunk, cfg):
        deltas = chunk_deltas(backend, low, high, chunk, cfg, replicate_chunk)
        base = xp.take(base_delta, backend.to_device(chunk.edges), axis=0)
        rows = max(1, SUMMARY_BYTES // (8 * cfg.n_bootstrap))
        for s0 in range(0, chunk.n_edges, rows):
            s1 = min(s0 + rows, chunk.n_edges)
            parts.append(summarise(xp, deltas[s0:s1, :], base[s0:s1], cfg.ci_alpha))
        del deltas
        order.append(chunk.edges)


def _quantile_positions(n: int, q: float):
    """(lo, hi, t): numpy.quantile(method='linear') of n sorted values is x[lo] + (x[hi] - x[lo]) t."""
    virtual = (n - 1) * q
    lo = min(int(virtual), n - 1)
    return lo, min(lo + 1, n - 1), virtual - lo


def _interpolate(a, b, t: float):
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def summarise(xp, deltas, base_delta, ci_alpha: float):
    """Per-edge bootstrap summary from (E, B) deltas: mean, std (ddof 1), CI, bias and p.  (A full
    sort of each row: NumPy's vectorised sort of 1,000 doubles beat np.partition for the four
    order statistics here, 11 s against 18 s for 591,537 rows.)"""
    n_boot = deltas.shape[1]
    mean = xp.mean(deltas, axis=1)
    std = xp.std(deltas, axis=1, correction=1) if n_boot > 1 else xp.full_like(mean, xp.nan)
    bad = xp.any(xp.isnan(deltas), axis=1)
    qs = [_quantile_positions(n_boot, q) for q in (ci_alpha / 2, 1 - ci_alpha / 2)]
    srt = xp.sort(deltas, axis=1)
    ci_low, ci_high = (xp.where(bad, xp.nan, _interpolate(srt[:, lo], srt[:, hi], t)) for lo, hi, t in qs)
    above = xp.astype(xp.count_nonzero(deltas > 0, axis=1), xp.float64) / n_boot
    below = xp.astype(xp.count_nonzero(deltas < 0, axis=1), xp.float64) / n_boot
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
