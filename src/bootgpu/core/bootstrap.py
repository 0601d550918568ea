"""Step 4: bootstrap of the selected edges, delta_b = r_high_b - r_low_b, re-ranked in every resample.

A resample is a vector of draw counts c per group position; ranks follow from the genes' base sort
order (``ranks``), and the correlation is a count-weighted dot product over group positions:
r_b(i, j) = sum_p c_p d_ip d_jp / sqrt(S_i S_j), S_i = sum_p c_p d_ip^2.

Work is split by what it depends on.  **Per gene**, once per replicate (however many edges a gene
is in): its resample ranks D (doubled centred, in position order; ``ranks.position_ranks``: one
scan in sort order plus one value per tie group) and the weighted ranks W = c * D, laid out
gene-major, (genes, k, replicates), so an edge reads two contiguous rows.  A backend with its own
``Backend.resample_ranks`` (NumPy: one compiled walk of each gene's slots, into int8) gives D
alone, and W is formed where it is used (the sparse dots weight as they go).  S = sum_p c_p d_p^2 of a
gene without tied values is ((m^3 - m) - sum_p (c_p^3 - c_p)) / 3 in every resample (the tie
correction of the draws' own repeats): one s per replicate, and r = dots / s, the bytes of
dots / sqrt(s s).  Only genes with tied values (``tied_genes``) need S summed; their edges are
laid out apart, in ``tied`` blocks.  **Per edge**, only the dot product sum_p W_ip D_jp, in one of
two ways:

- *sparse*: the two rows gathered and multiplied in integers (``Backend.pair_dots``): every partial
  sum is bounded by sqrt(S_i S_j) <= (m^3 - m) / 3, so int16 is exact up to m = 46, int32 up to
  m = 1290 (``dot_dtype``);
- *dense*: where the selected edges fill a good part of a block of genes x genes (co-expression
  modules select whole blocks), one batched matrix product per replicate chunk over the block
  (``Backend.block_dots``), in float32 while m^3 < 2^24 (every partial sum is then an integer
  float32 holds, so any summation order gives the same bytes), and the block's edges gathered
  from it.  ``edge_layout`` (host-side bookkeeping of edge indices) orders genes by degree, cuts
  them into tiles of ``dense_tile`` genes and sends the edges of a tile pair to the matrix product
  when they fill at least ``dense_density`` of it; tile pairs follow a Z-order curve, so an edge
  chunk's edges lie on a few tiles of genes (``z_order``).

A chunk whose genes are barely shared (fewer than ``SHARED_DEGREE`` edges a gene, no dense
block) keeps the *per-edge* way instead (``EdgeGroup``) on a backend that does not rank gene by
gene (a device): each edge's two genes' ranks gathered from the rows of
``ranks.sorted_doubled_ranks`` and summed with the counts as weights in the float dtype
(``Backend.weighted_dots``), which saves un-sorting and weighting every gene when each gene serves
about one edge.  A host with compiled ranks (``Backend.ranks_by_gene``) always ranks gene by gene
(``per_edge_way``).

All ways give the same integer, so an edge's deltas are the same bytes whichever way, in whichever
chunk and with whichever other edges it is computed.  Edges are processed in edge chunks whose B
deltas are held replicate-major, (B, E) float64: a replicate chunk (in threads on a host backend)
writes whole rows, r_high stored and r_low taken from it in pieces as the dots are made
(``Backend.store_ratio``), so no per-edge array outlives a piece; a backend with
``Backend.fused_deltas`` (NumPy's compiled kernels) makes a sparse block's r_high - r_low in one
pass over both groups instead (``store_pair_delta``: the same bytes, the deltas written once).  Each chunk is then summarised in
row pieces of (edges, B) (``Backend.edge_rows``), in threads too: every edge's B deltas are reduced
together, so the result does not depend on chunk sizes or threads.  An edge with a NaN replicate
(a gene constant in a resample) gets NaN statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bootgpu.core.draws import draw_counts, draw_positions
from bootgpu.core.ranks import GroupOrder, position_ranks, sorted_doubled_ranks, subset_order, tie_groups
from bootgpu.core.spearman import GroupRanks, correlation, rank_sumsq

LOW, HIGH = 0, 1
DENSE_TILE = 256  # genes per side of a dense tile
DENSE_DENSITY = 0.15  # edges / (tile genes x tile genes) from which a matrix product is cheaper (docs/benchmarks.md)
NEVER_DENSE = 2.0  # a dense_density no tile pair reaches: every edge the sparse way
DENSE_MIN_EDGES = 512  # smaller tile pairs are not worth a matrix product of their own
SUMMARY_BYTES = 2**20  # (rows, B) float64 deltas summarised at a time on a host: in cache (docs/benchmarks.md)


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
    summary_rows: int = 0  # edges summarised at a time (``summary_rows``; 0: a whole edge chunk at once)
    memory: tuple = (0, 0)  # the plan's predicted peak and budget: freed memory kept within them (Backend.release_memory)


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


def host_dense_density(m: int) -> float:
    """``BootstrapSettings.dense_density`` for a host backend with dense tiles (BLAS), resamples of
    ``m`` draws: ``DENSE_DENSITY``, or ``NEVER_DENSE`` where the sparse dots are int16
    (``dot_dtype_bytes``), whose compiled kernel (both groups' deltas in one pass, 16 lanes a
    vector) beats a tile pair's matrix product at any density measured (docs/benchmarks.md, ALL
    k = 25 and modular k = 12: 5-21% of the bootstrap's CPU without dense tiles; k = 60 and 100,
    int32 dots: even; k = 187: the tiles 15% faster)."""
    return NEVER_DENSE if dot_dtype_bytes(m) <= 2 else DENSE_DENSITY


# --- edge layout (host bookkeeping of edge indices) ------------------------------------------------

@dataclass
class Block:
    """Edges ``start:stop`` of a chunk (in the chunk's order), as local gene indices of the chunk's
    gene subset.  Dense: rows x cols is one matrix product, ``flat`` = row_pos * len(cols) + col_pos.
    ``tied``: sparse edges with an end that has tied values in a group (``tied_genes``), whose S is
    summed; every other edge's genes have S = s of the replicate (module docstring)."""

    start: int
    stop: int
    dense: bool
    a: Any  # sparse: (E,) local gene of each edge's first end; dense: (nA,) row genes
    b: Any  # sparse: (E,) second end;                              dense: (nB,) column genes
    flat: Any = None
    tied: bool = False


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
    def dense_edges(self) -> int:
        """Edges of the dense block with the most of them."""
        return max([b.stop - b.start for b in self.blocks if b.dense], default=0)

    @property
    def sparse_edges(self) -> int:
        return sum(b.stop - b.start for b in self.blocks if not b.dense)


def tied_genes(backend, low: GroupRanks, high: GroupRanks) -> np.ndarray:
    """(G,) host bool: genes with tied (or constant) values in either group, i.e. |d|^2 below
    (k^3 - k) / 3.  Only their resample S needs summing; edges touching them get ``tied`` blocks."""
    flags = [backend.to_host(g.sumsq != float(rank_sumsq(g.k))) for g in (low, high)]
    return np.asarray(flags[0], dtype=bool) | np.asarray(flags[1], dtype=bool)


def _present(lookup: np.ndarray, *index: np.ndarray) -> np.ndarray:
    """The sorted distinct values of the ``index`` arrays (gene numbers below ``lookup``'s length),
    as ``np.unique`` gives them, with ``lookup[value]`` set to each one's position among them: a
    flag per gene instead of a sort of every edge's ends (ALL's 1.26 M edges: 0.33-0.59 -> 0.06-0.11 s)."""
    seen = np.zeros(lookup.shape[0], dtype=bool)
    for idx in index:
        seen[idx] = True
    present = np.flatnonzero(seen)
    lookup[present] = np.arange(present.shape[0])
    return present


def z_order(lo, hi):
    """The position of tile pair (lo, hi) on a Z-order (Morton) curve: their bits interleaved, so
    that pairs near each other in both coordinates are near each other on the curve."""
    key = np.zeros(np.shape(lo), dtype=np.int64)
    lo, hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
    for bit in range(max(1, int(max(np.max(lo, initial=0), np.max(hi, initial=0))).bit_length())):
        key |= ((lo >> bit) & 1) << (2 * bit + 1) | ((hi >> bit) & 1) << (2 * bit)
    return key


def _dense_order(gi: np.ndarray, gj: np.ndarray, tile: int, density: float, min_edges: int, tied_gene: np.ndarray):
    """(order of edges, segments [(start, stop, kind)], row end, col end) on the host: the edges
    of dense tile pairs first, tile pair by tile pair, sorted by row; then the other edges without
    a tied end ("sparse"); then those with one ("tied", never dense).  Tile pairs follow a Z-order
    curve (``z_order``), so that an edge chunk's edges fall on a few tiles of genes rather than
    on every gene: each chunk ranks fewer genes and reads their rows from cache (ALL focus 111:
    the chunks' genes 104 k -> 61 k on a host, 367 k -> 139 k on a device).  ``tied_gene``: (G,)
    bool, a gene with tied values in a group."""
    tied_edge = tied_gene[gi] | tied_gene[gj]
    lookup = np.empty(tied_gene.shape[0], dtype=np.int64)
    genes = _present(lookup, gi, gj)
    li, lj = lookup[gi], lookup[gj]
    deg = np.bincount(li, minlength=genes.shape[0]) + np.bincount(lj, minlength=genes.shape[0])
    pos = np.empty(genes.shape[0], dtype=np.int64)
    pos[np.argsort(-deg, kind="stable")] = np.arange(genes.shape[0])
    ti, tj = pos[li] // tile, pos[lj] // tile
    n_tiles = -(-genes.shape[0] // tile)
    lo, hi = np.minimum(ti, tj), np.maximum(ti, tj)
    pair_lo, pair_hi = np.divmod(np.arange(n_tiles * n_tiles), n_tiles)
    z = z_order(pair_lo, pair_hi)  # of every tile pair, looked up per edge (one gather, not bit loops)
    key = z.astype(np.uint16 if n_tiles <= 256 else np.int64)[lo * n_tiles + hi]  # uint16: stable sorts are radix sorts
    count = np.bincount(key[~tied_edge], minlength=int(z.max(initial=0)) + 1)
    size = np.minimum(tile, genes.shape[0] - np.arange(n_tiles) * tile)
    outputs = np.zeros(count.shape[0], dtype=np.int64)
    outputs[z] = size[pair_lo] * size[pair_hi]
    dense_key = (count >= density * outputs) & (count >= max(1, min_edges))
    dense = dense_key[key] & ~tied_edge
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
        segments += [(int(s), int(e), "dense") for s, e in zip(bounds[:-1], bounds[1:])]
    s_idx = np.flatnonzero(~dense & ~tied_edge)
    s_idx = s_idx[np.argsort(key[s_idx], kind="stable")]
    t_idx = np.flatnonzero(tied_edge)
    t_idx = t_idx[np.argsort(key[t_idx], kind="stable")]
    start = d_idx.shape[0]
    for idx, kind in ((s_idx, "sparse"), (t_idx, "tied")):
        if idx.shape[0]:
            segments.append((start, start + idx.shape[0], kind))
            start += idx.shape[0]
    return np.concatenate([d_idx, s_idx, t_idx]), segments, row, col


def edge_layout(backend, gene_i, gene_j, edge_chunk: int, cfg: BootstrapSettings, tied: np.ndarray) -> list:
    """The edges cut into ``EdgeChunk``s of at most ``edge_chunk`` edges, each with its dense and
    sparse blocks (index bookkeeping on the host; the index arrays are moved to the device).
    ``tied``: (G,) host bool of genes with tied values in a group (``tied_genes``)."""
    gi = np.asarray(backend.to_host(gene_i), dtype=np.int64)
    gj = np.asarray(backend.to_host(gene_j), dtype=np.int64)
    tied = np.asarray(tied, dtype=bool)
    order, segments, row, col = _dense_order(gi, gj, cfg.dense_tile, cfg.dense_density, DENSE_MIN_EDGES
                                             if cfg.dense_density > 0 else 1, tied)
    dev = backend.to_device
    chunks = []
    n = gi.shape[0]
    step = max(1, int(edge_chunk))
    at, local = np.empty(tied.shape[0], dtype=np.int64), np.empty(tied.shape[0], dtype=np.int64)
    for c0 in range(0, n, step):
        c1 = min(c0 + step, n)
        idx = order[c0:c1]
        ci, cj = gi[idx], gj[idx]
        genes = _present(at, ci, cj)  # at[gene]: its position in the chunk's genes
        pi, pj = at[ci], at[cj]
        chunk = EdgeChunk(idx, dev(genes), dev(pi), dev(pj))
        for s0, s1, kind in segments:
            b0, b1 = max(s0, c0), min(s1, c1)
            if b0 >= b1:
                continue
            if kind == "dense":
                e = order[b0:b1]
                r_end, c_end = row[e], col[e]
                rows = _present(local, r_end)  # local[gene]: its position in the tile pair's rows, then columns
                rpos = local[r_end]
                cols = _present(local, c_end)
                cpos = local[c_end]
                chunk.blocks.append(Block(b0 - c0, b1 - c0, True, dev(at[rows]), dev(at[cols]),
                                          dev(rpos * cols.shape[0] + cpos)))
            else:
                chunk.blocks.append(Block(b0 - c0, b1 - c0, False, dev(pi[b0 - c0:b1 - c0]), dev(pj[b0 - c0:b1 - c0]),
                                          tied=kind == "tied"))
        chunks.append(chunk)
    return chunks


# --- per gene and per edge work of one group ----------------------------------------------------

def untied_sumsq(xp, counts, m: int):
    """(R,) float64 S of a gene without tied values in each resample of (k, R) counts (the same for
    every such gene): ((m^3 - m) - sum_p (c_p^3 - c_p)) / 3."""
    c64 = xp.astype(counts, xp.float64)
    return ((m**3 - m) - xp.sum(c64 * c64 * c64 - c64, axis=0)) / 3.0


def _denominator(backend, s):
    """(R, 1) denominators for r = dots / s (sqrt(s * s) == s exactly, so these are the bytes of
    ``correlation``), with 1 where s = 0, and the host indices of those replicates (r is NaN)."""
    xp = backend.xp
    ok = s > 0
    if bool(xp.all(ok)):
        return s[:, None], []
    bad = np.flatnonzero(~np.asarray(backend.to_host(ok), dtype=bool))
    return xp.where(ok, s, xp.ones_like(s))[:, None], [int(i) for i in bad]


@dataclass
class GeneGroup:
    """One group's sort structure for a chunk's gene subset, and for every (gene u, position p), at
    u * k + p, the row of ``ranks.position_ranks``' source that holds its rank (gene-major output);
    the tie groups of the subset (``ranks.tie_groups``, None without), the genes that have them and,
    per ``tied`` block, each edge end's row of S (0: s, 1 + t: tied gene t).  ``slot_position`` and
    ``tie_last`` (U, k): each gene's position at sort slot s and the last slot of s's tie group,
    made only for a backend that ranks gene by gene (``Backend.ranks_by_gene``, its
    ``resample_ranks``; None otherwise)."""

    order: GroupOrder
    m: int
    rows: Any
    slot_position: Any
    tie_last: Any
    starts: Any = None
    ends: Any = None
    tied_genes: Any = None
    tied_src: dict = field(default_factory=dict)

    @classmethod
    def build(cls, xp, group: GroupRanks, chunk: EdgeChunk, m: int, by_gene: bool = False) -> "GeneGroup":
        order = subset_order(xp, group.order, chunk.genes)
        k, n_genes = order.k, order.n_genes

        def gene_major(index):  # entries s * U + u  ->  u * k + s
            return xp.reshape(xp.matrix_transpose(xp.reshape(index, (k, n_genes))), (-1,))

        def per_gene(index):  # (k * U,) entries at s * U + u  ->  (U, k)
            return xp.reshape(gene_major(index), (n_genes, k))

        starts, ends, source = tie_groups(xp, order)
        grp = cls(order, m, xp.take(source, gene_major(order.unsort)), per_gene(order.perm) if by_gene else None,
                  per_gene(order.tie_last // n_genes) if by_gene else None)
        if starts is None or starts.shape[0] == 0:
            return grp
        grp.starts, grp.ends = starts, ends
        slots = xp.arange(k * n_genes, dtype=xp.int64)
        in_group = (order.tie_first != slots) | (order.tie_last != slots)
        tied = xp.any(xp.reshape(in_group, (k, n_genes)), axis=0)  # (U,) genes with a tie group
        grp.tied_genes = xp.nonzero(tied)[0]
        for blk in chunk.blocks:
            if blk.tied:
                src = []
                for ends_ in (blk.a, blk.b):
                    row = 1 + xp.searchsorted(grp.tied_genes, ends_)
                    src.append(xp.where(xp.take(tied, ends_, axis=0), row, xp.zeros_like(row)))
                grp.tied_src[blk.start] = tuple(src)
        return grp

    def ranks(self, backend, c):
        """(U, k, R) resample ranks D in position order and W = c * D, of the dtype of ``c``
        (k, R) counts: ``dot_dtype``, so ranks are computed in it and need no cast; or, from a
        backend's own ``resample_ranks``, D in its dtype and W None (formed where needed)."""
        d = None if self.slot_position is None else backend.resample_ranks(self.slot_position, self.tie_last, c, self.m)
        if d is not None:
            return d, None
        xp = backend.xp
        k, n_rep = c.shape
        d = position_ranks(xp, self.order, c, self.m, self.rows, self.starts, self.ends, backend.scans)
        d = xp.reshape(d, (self.order.n_genes, k, n_rep))
        return d, d * c[None, :, :]

    def resample(self, backend, drawn: "Drawn") -> "Resample":
        """This group's ranks and denominators in the resamples ``drawn``."""
        xp, m = backend.xp, self.m
        c = xp.astype(drawn.counts, dot_dtype(xp, m))  # holds 3 m too: dot_dtype_bytes >= rank_dtype_bytes
        d, w = self.ranks(backend, c)
        return Resample(c, d, w, drawn.s, drawn.den, drawn.bad)

    def sparse(self, blk: Block) -> bool:
        """Whether a block's dots are this group's sparse ones over s (``store_pair_ratio``)."""
        return not blk.dense and not (blk.tied and self.tied_genes is not None)

    def store_block(self, backend, rs: "Resample", blk: Block, deltas, rows: slice, subtract: bool) -> None:
        """One block's correlations in resample ``rs``, into ``deltas[rows, blk's columns]``:
        stored, or with ``subtract`` taken from them."""
        xp, m = backend.xp, self.m
        c, d, w, den = rs.c, rs.d, rs.w, rs.den
        n_rep = c.shape[1]
        cols = slice(blk.start, blk.stop)
        if blk.dense:
            out = backend.block_dots(rs.weighted(xp, blk.a), xp.take(d, blk.b, axis=0), exact_dtype(xp, m))
            backend.store_gathered_ratio(deltas, rows, cols, xp.reshape(out, (n_rep, -1)), blk.flat, den, subtract)
            del out
        elif not self.sparse(blk):
            if rs.s_src is None:  # S of the genes with ties, after s (row 0) for all others
                tg = self.tied_genes
                rs.s_src = xp.concat([rs.s[None, :], xp.astype(backend.pair_dots(rs.weights, d, tg, tg), xp.float64)],
                                     axis=0)
            src_i, src_j = self.tied_src[blk.start]
            dots = backend.pair_dots(rs.weights, d, blk.a, blk.b)
            r = correlation(xp, dots, xp.take(rs.s_src, src_i, axis=0), xp.take(rs.s_src, src_j, axis=0))
            backend.store_ratio(deltas, (rows, cols), xp.matrix_transpose(r), None, subtract)
        else:  # in pieces the backend sizes (NumPy: one compiled pass, or gathered rows in cache)
            backend.store_pair_ratio(deltas, rows, cols, rs.weights, d, blk.a, blk.b, den, subtract)

    def store(self, backend, chunk: EdgeChunk, drawn: "Drawn", deltas, r0: int, subtract: bool) -> None:
        """The chunk's correlations in the resamples ``drawn`` (R of them), r (R, E_c) float64, into
        rows r0 : r0 + R of ``deltas`` (B, E_c): stored, or with ``subtract`` taken from them."""
        rs = self.resample(backend, drawn)
        rows = slice(r0, r0 + drawn.counts.shape[1])
        for blk in chunk.blocks:
            self.store_block(backend, rs, blk, deltas, rows, subtract)
        for i in rs.bad:  # a resample with one position drawn m times: every gene constant
            deltas[r0 + i, :] = backend.xp.nan


@dataclass
class Resample:
    """One group's resample of a replicate chunk (``GeneGroup.resample``): the counts c in the dot
    dtype, the ranks D and W = c * D (None where the backend ranked and W is formed where used),
    s, the denominators, the host indices of replicates with every gene constant, and S of the
    tied genes once a tied block asked for it."""

    c: Any
    d: Any
    w: Any
    s: Any
    den: Any
    bad: list
    s_src: Any = None

    @property
    def weights(self):
        """What the backend's dots take for W: W, or the counts standing for it."""
        return self.c if self.w is None else self.w

    def weighted(self, xp, genes):
        """W = c * D of some genes."""
        if self.w is not None:
            return xp.take(self.w, genes, axis=0)
        out = xp.astype(xp.take(self.d, genes, axis=0), self.c.dtype)
        out *= self.c[None, :, :]  # in place: one array of the dot dtype (ranks.weighted_ranks keeps D beside W)
        return out


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
    def build(cls, xp, group: GroupRanks, chunk: EdgeChunk, m: int) -> "EdgeGroup":
        order = subset_order(xp, group.order, chunk.genes)
        unsort = xp.reshape(order.unsort, (order.k, order.n_genes))  # (position, gene) -> row
        return cls(order, m, xp.reshape(xp.take(unsort, chunk.iu, axis=1), (-1,)),
                   xp.reshape(xp.take(unsort, chunk.ju, axis=1), (-1,)))

    def correlations(self, backend, chunk: EdgeChunk, drawn: "Drawn"):
        """(E_c, R) float64 correlations of the chunk's edges in the resamples ``drawn``."""
        xp, order, m = backend.xp, self.order, self.m
        counts = drawn.counts
        k, n_rep = counts.shape
        exact = exact_dtype(xp, m)
        c = xp.astype(counts, rank_dtype(xp, m))
        d = sorted_doubled_ranks(xp, order, c, m, backend.scans)  # (k * U, R)
        d_i = xp.reshape(xp.take(d, self.rows_i, axis=0), (k, chunk.n_edges, n_rep))
        d_j = xp.reshape(xp.take(d, self.rows_j, axis=0), (k, chunk.n_edges, n_rep))
        dots = backend.weighted_dots(d_i, d_j, c, exact)
        del d_i, d_j
        if order.has_ties:  # S of each gene, summed
            d_pos = xp.reshape(xp.take(d, order.unsort, axis=0), (k, order.n_genes, n_rep))
            sumsq = backend.weighted_dots(d_pos, d_pos, c, exact)  # (U, R)
            return correlation(xp, dots, xp.take(sumsq, chunk.iu, axis=0), xp.take(sumsq, chunk.ju, axis=0))
        s = drawn.s  # (R,), the same for every gene
        return correlation(xp, dots, s[None, :], s[None, :])

    def store(self, backend, chunk: EdgeChunk, drawn: "Drawn", deltas, r0: int, subtract: bool) -> None:
        r = self.correlations(backend, chunk, drawn)
        backend.store_ratio(deltas, (slice(r0, r0 + r.shape[1]), slice(0, chunk.n_edges)), backend.xp.matrix_transpose(r),
                            None, subtract)


SHARED_DEGREE = 2.0  # edges per gene below which a chunk without dense blocks takes the per-edge way


def per_edge_way(n_genes: int, n_edges: int, dense_outputs: int, by_gene: bool = False) -> bool:
    """Whether a chunk of ``n_edges`` edges on ``n_genes`` genes, with ``dense_outputs`` in dense
    blocks, takes the per-edge way (``EdgeGroup``) rather than ranking each gene (``GeneGroup``).
    Never for a backend that ranks gene by gene (``by_gene``: ``Backend.ranks_by_gene``): its
    compiled ranks and one-pass deltas beat the per-edge gathers at any degree (ALL focus 114's
    chunk of 5,900 edges; 923 edges on 1,846 genes at 8,763 x 938)."""
    return not by_gene and dense_outputs == 0 and 2 * n_edges < SHARED_DEGREE * n_genes


@dataclass
class Drawn:
    """One group's draws in a replicate chunk of R replicates: the (k, R) int64 counts, S of a gene
    without ties (R,) float64 (``untied_sumsq``), its denominators (R, 1) (``_denominator``; None
    where not asked for) and the chunk's indices of replicates with every gene constant."""

    counts: Any
    s: Any
    den: Any
    bad: list


class ReplicateCounts:
    """Each group's draws for every replicate of one focus gene, drawn once and handed out by
    replicate chunk (``Drawn``).  The draws are a pure function of (seed, focus gene, group,
    replicate, slot), and S and the denominators are column by column in exact integers, so a
    chunk gets the bytes it would compute itself; every edge chunk of the focus gene reuses them
    (on a device ~40 operations and a wait for the host for each edge chunk, replicate chunk and
    group before)."""

    def __init__(self, backend, cfg: BootstrapSettings):
        self.backend, self.cfg = backend, cfg
        self._full: dict = {}

    def prepare(self, code: int, k: int, m: int, denominators: bool = True) -> None:
        """Draw group ``code``'s counts (group size ``k``, ``m`` draws a replicate) and S once, and
        the denominators once asked for (they wait for the device: the per-edge way needs none);
        in one thread, before replicate chunks run in several."""
        xp, cfg = self.backend.xp, self.cfg
        if code not in self._full:
            pos = draw_positions(xp, cfg.seed, cfg.focus, code, xp.arange(cfg.n_bootstrap, dtype=xp.int64), k, m)
            counts = draw_counts(xp, pos, k, by_position=True)
            self._full[code] = (k, m, Drawn(counts, untied_sumsq(xp, counts, m), None, []))
        assert self._full[code][:2] == (k, m), (code, k, m)
        full = self._full[code][2]
        if denominators and full.den is None:
            full.den, full.bad = _denominator(self.backend, full.s)

    def chunk(self, code: int, r0: int, r1: int) -> Drawn:
        """Group ``code``'s draws of replicates r0..r1-1 (the counts a fresh contiguous array)."""
        full = self._full[code][2]
        return Drawn(self.backend.xp.asarray(full.counts[:, r0:r1], copy=True), full.s[r0:r1],
                     None if full.den is None else full.den[r0:r1, :], [i - r0 for i in full.bad if r0 <= i < r1])


def chunk_deltas(backend, low: GroupRanks, high: GroupRanks, chunk: EdgeChunk, cfg: BootstrapSettings, replicate_chunk=None,
                 out=None, draws: ReplicateCounts | None = None):
    """(B, E_c) float64 bootstrap deltas of one edge chunk, replicate-major (a replicate chunk
    writes whole rows), in replicate chunks sized by ``replicate_chunk(n_genes, n_edges,
    dense_outputs, sparse_edges, ties, dense_edges)`` (default: ``cfg.replicate_chunk``); into
    ``out`` (B, E_c) if given; with the focus gene's ``draws`` if given (else drawn here)."""
    xp = backend.xp
    n_genes = int(chunk.genes.shape[0])
    per_edge = per_edge_way(n_genes, chunk.n_edges, chunk.dense_outputs, backend.ranks_by_gene)
    groups = []
    draws = ReplicateCounts(backend, cfg) if draws is None else draws
    for code, group in ((HIGH, high), (LOW, low)):  # r_high stored, then r_low taken from it
        m = resample_size(group.k, cfg.bootstrap_frac)
        groups.append((code, EdgeGroup.build(xp, group, chunk, m) if per_edge
                       else GeneGroup.build(xp, group, chunk, m, by_gene=backend.ranks_by_gene)))
        draws.prepare(code, group.k, m, denominators=not per_edge)
    step = _replicate_step(cfg, chunk, groups, replicate_chunk)
    deltas = xp.empty((cfg.n_bootstrap, chunk.n_edges), dtype=xp.float64) if out is None else out

    def replicates(r0: int) -> None:
        r1 = min(r0 + step, cfg.n_bootstrap)
        if per_edge or not backend.fused_deltas:
            for code, grp in groups:
                grp.store(backend, chunk, draws.chunk(code, r0, r1), deltas, r0, subtract=code == LOW)
            return
        # both groups at once: a sparse block's deltas r_high - r_low made in one pass, the others
        # stored and subtracted block by block (the same bytes as group after group)
        (_, high_grp), (_, low_grp) = groups
        hi, lo = (grp.resample(backend, draws.chunk(code, r0, r1)) for code, grp in groups)
        rows = slice(r0, r1)
        for blk in chunk.blocks:
            if high_grp.sparse(blk) and low_grp.sparse(blk):
                backend.store_pair_delta(deltas, rows, slice(blk.start, blk.stop), (hi.weights, hi.d, hi.den),
                                         (lo.weights, lo.d, lo.den), blk.a, blk.b)
                continue
            high_grp.store_block(backend, hi, blk, deltas, rows, False)
            low_grp.store_block(backend, lo, blk, deltas, rows, True)
        for i in hi.bad + lo.bad:  # a resample with one position drawn m times: every gene constant
            deltas[r0 + i, :] = xp.nan

    backend.map_chunks(replicates, range(0, cfg.n_bootstrap, max(1, int(step))), cfg.threads)
    return deltas


def _replicate_step(cfg: BootstrapSettings, chunk: EdgeChunk, groups, replicate_chunk) -> int:
    if replicate_chunk is None:
        return cfg.replicate_chunk
    ties = any(grp.order.has_ties for _, grp in groups)
    return replicate_chunk(int(chunk.genes.shape[0]), chunk.n_edges, chunk.dense_outputs, chunk.sparse_edges, ties,
                           chunk.dense_edges)


def bootstrap_deltas(backend, low: GroupRanks, high: GroupRanks, gene_i, gene_j, cfg: BootstrapSettings,
                     replicate_chunk=None):
    """(E, B) float64 bootstrap deltas of edges (gene_i, gene_j), in their order, as one edge chunk.

    ``replicate_chunk(n_genes, n_edges, dense_outputs, sparse_edges, ties, dense_edges) -> int`` sizes
    replicate chunks for the chunk's gene subset and blocks (default: ``cfg.replicate_chunk``); results do
    not depend on it.
    """
    xp = backend.xp
    n = int(gene_i.shape[0])
    (chunk,) = edge_layout(backend, gene_i, gene_j, n, cfg, tied_genes(backend, low, high))
    with backend.bootstrap_scope(*cfg.memory):
        deltas = chunk_deltas(backend, low, high, chunk, cfg, replicate_chunk)
    inverse = np.empty(n, dtype=np.int64)
    inverse[chunk.edges] = np.arange(n)
    return backend.edge_rows(xp.take(deltas, backend.to_device(inverse), axis=1), 0, n)


def bootstrap_summaries(backend, low: GroupRanks, high: GroupRanks, gene_i, gene_j, base_delta,
                        cfg: BootstrapSettings, replicate_chunk=None) -> dict:
    """Bootstrap summaries (``summarise``) of edges (gene_i, gene_j), in their order, computed in
    edge chunks of at most ``cfg.edge_chunk`` edges (dense tile pairs first)."""
    xp = backend.xp
    n = int(gene_i.shape[0])
    parts, order = [], []
    with backend.bootstrap_scope(*cfg.memory):
        _summaries(backend, low, high, gene_i, gene_j, base_delta, cfg, replicate_chunk, parts, order)
    out = {key: xp.concat([p[key] for p in parts]) for key in parts[0]}
    inverse = np.empty(n, dtype=np.int64)
    inverse[np.concatenate(order)] = np.arange(n)
    inverse = backend.to_device(inverse)
    return {key: xp.take(value, inverse, axis=0) for key, value in out.items()}


def summary_rows(n_bootstrap: int, cached: bool = True) -> int:
    """Edges summarised at a time: on a host (``cached``), (rows, B) float64 of at most
    ``SUMMARY_BYTES``, which stay in cache; on a device 0, a whole edge chunk at once (the plan
    sizes edge chunks for it), so the operations a focus gene issues do not grow with its edges."""
    return max(1, SUMMARY_BYTES // (8 * n_bootstrap)) if cached else 0


def _summaries(backend, low, high, gene_i, gene_j, base_delta, cfg, replicate_chunk, parts, order) -> None:
    """Each edge chunk's deltas, then its summaries in row pieces, in the backend's threads
    (``map_chunks``), each writing its rows of the chunk's summary arrays."""
    xp = backend.xp
    chunks = edge_layout(backend, gene_i, gene_j, cfg.edge_chunk, cfg, tied_genes(backend, low, high))
    # one buffer for every chunk's deltas: its pages are faulted in (zeroed) once, not per chunk
    buf = xp.empty((cfg.n_bootstrap, max(c.n_edges for c in chunks)), dtype=xp.float64) if len(chunks) > 1 else None
    draws = ReplicateCounts(backend, cfg)  # drawn once, for every chunk
    for chunk in chunks:
        deltas = chunk_deltas(backend, low, high, chunk, cfg, replicate_chunk,
                              None if buf is None else buf[:, :chunk.n_edges], draws)
        base = xp.take(base_delta, backend.to_device(chunk.edges), axis=0)
        rows = cfg.summary_rows or chunk.n_edges
        if rows >= chunk.n_edges:  # the whole chunk in one go (a device)
            parts.append(summarise(xp, backend.edge_rows(deltas, 0, chunk.n_edges), base, cfg.ci_alpha, backend))
            order.append(chunk.edges)
            continue
        out = {key: xp.empty((chunk.n_edges,), dtype=xp.float64) for key in SUMMARY_KEYS}
        n_items = max(1, cfg.threads) * 8  # a few items a thread: whole pieces each, in order
        per_item = rows * max(1, -(-chunk.n_edges // (rows * n_items)))

        def summarise_rows(e0: int) -> None:
            for s0 in range(e0, min(e0 + per_item, chunk.n_edges), rows):
                s1 = min(s0 + rows, chunk.n_edges)
                got = summarise_columns(backend, deltas, s0, s1, base[s0:s1], cfg.ci_alpha)
                for key in SUMMARY_KEYS:
                    out[key][s0:s1] = got[key]

        backend.map_chunks(summarise_rows, range(0, chunk.n_edges, per_item), cfg.threads)
        del deltas
        parts.append(out)
        order.append(chunk.edges)


SUMMARY_KEYS = ("boot_mean", "boot_std", "ci_low", "ci_high", "bias", "boot_p")


def _quantile_positions(n: int, q: float):
    """(lo, hi, t): numpy.quantile(method='linear') of n sorted values is x[lo] + (x[hi] - x[lo]) t."""
    virtual = (n - 1) * q
    lo = min(int(virtual), n - 1)
    return lo, min(lo + 1, n - 1), virtual - lo


def _interpolate(a, b, t: float):
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def summarise(xp, deltas, base_delta, ci_alpha: float, backend=None):
    """Per-edge bootstrap summary from (E, B) deltas: mean, std (ddof 1), CI, bias and p.  With a
    ``backend``, its kernels give the moments and the CI's order statistics (NumPy: partitions and
    one mean for both moments, the same bytes); without, the standard's mean, std and a full sort.
    An edge is NaN (CI, p) where its mean is: deltas are finite or NaN."""
    n_boot = deltas.shape[1]
    if backend is None:
        mean, std = _mean_std(xp, deltas)
    else:
        mean, std = backend.mean_std(deltas)
    qs, positions = _ci_positions(n_boot, ci_alpha)
    found = (_order_statistics(xp, deltas, positions) if backend is None
             else backend.order_statistics(deltas, positions, centre=mean, spread=std))
    above, below = (_sign_counts(xp, deltas) if backend is None else backend.sign_counts(deltas))
    return _summary(xp, n_boot, mean, std, dict(zip(positions, found)), above, below, base_delta, qs)


def summarise_columns(backend, deltas, start: int, stop: int, base_delta, ci_alpha: float):
    """``summarise`` of edges ``start:stop`` of (B, E) replicate-major deltas: from the backend's
    fused statistics of those columns where it has them (``Backend.column_statistics``: NumPy's
    compiled kernel, the same bytes), else of their rows (``Backend.edge_rows``)."""
    xp, n_boot = backend.xp, deltas.shape[0]
    qs, positions = _ci_positions(n_boot, ci_alpha)
    stats = backend.column_statistics(deltas, start, stop, positions)
    if stats is None:
        return summarise(xp, backend.edge_rows(deltas, start, stop), base_delta, ci_alpha, backend)
    mean, std, found, above, below = stats
    return _summary(xp, n_boot, mean, std, dict(zip(positions, found)), above, below, base_delta, qs)


def _ci_positions(n_boot: int, ci_alpha: float):
    """The CI's interpolation terms (lo, hi, t) for both ends, and the sorted positions they read."""
    qs = [_quantile_positions(n_boot, q) for q in (ci_alpha / 2, 1 - ci_alpha / 2)]
    return qs, sorted({p for lo, hi, _ in qs for p in (lo, hi)})


def _summary(xp, n_boot: int, mean, std, stat: dict, above, below, base_delta, qs) -> dict:
    """The summary fields from each edge's moments, order statistics ``stat`` {position: values} and
    sign counts: NaN CI and p where the mean is NaN."""
    bad = xp.isnan(mean)
    ci_low, ci_high = (xp.where(bad, xp.nan, _interpolate(stat[lo], stat[hi], t)) for lo, hi, t in qs)
    above = xp.astype(above, xp.float64) / n_boot
    below = xp.astype(below, xp.float64) / n_boot
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


def _mean_std(xp, deltas):
    """Row means and standard deviations (ddof 1; NaN for one replicate) by the standard's own."""
    mean = xp.mean(deltas, axis=1)
    std = xp.std(deltas, axis=1, correction=1) if deltas.shape[1] > 1 else xp.full_like(mean, xp.nan)
    return mean, std


def _order_statistics(xp, deltas, positions):
    """Column ``p`` of each row sorted, for each of ``positions``: one full sort."""
    srt = xp.sort(deltas, axis=1)
    return [srt[:, p] for p in positions]


def _sign_counts(xp, deltas):
    """Per row, the number of values above and below 0."""
    return xp.count_nonzero(deltas > 0, axis=1), xp.count_nonzero(deltas < 0, axis=1)
