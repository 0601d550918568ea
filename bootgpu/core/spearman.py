"""Step 3b: Spearman correlation of every gene pair within a group, in row blocks of pair space.

With doubled centred ranks ``d`` (integers), r_ij = (d_i . d_j) / sqrt(|d_i|^2 |d_j|^2).  The dot
products come from one matrix product per row block.  For a group of k samples every product and
partial sum is at most (k^3 - k) / 3, so while that stays below 2**24 (k <= 369) float32 -- and TF32
on a GPU -- computes them exactly; larger groups use float64, exact to 2**53.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bootgpu.core.ranks import GroupOrder, doubled_centred_ranks, group_order


def exact_float32_limit(k: int) -> bool:
    """True when rank dot products of a k-sample group are exact in float32."""
    return (k**3 - k) // 3 < 2**24


@dataclass
class GroupRanks:
    """One group's base ranks: its sort structure, doubled centred ranks and their squared norms."""

    order: GroupOrder
    d: Any  # (G, k) doubled centred ranks, float32 when exact, else float64
    sumsq: Any  # (G,) float64, |d_g|^2 (0 for a gene constant within the group)

    @property
    def k(self) -> int:
        return self.order.k


def group_ranks(xp, values) -> GroupRanks:
    """Base ranks of ``values`` (G, k): each gene ranked across the group's samples."""
    k = values.shape[1]
    order = group_order(xp, values)
    d = xp.matrix_transpose(doubled_centred_ranks(xp, order, xp.ones((k, 1), dtype=xp.int64), k)[..., 0])
    d = xp.astype(d, xp.float32 if exact_float32_limit(k) else xp.float64)
    sumsq = xp.sum(xp.astype(d, xp.float64) ** 2, axis=1)
    return GroupRanks(order=order, d=d, sumsq=sumsq)


def correlation(xp, dots, sumsq_i, sumsq_j):
    """r = dots / sqrt(sumsq_i * sumsq_j) in float64; NaN where a gene is constant."""
    den = xp.sqrt(xp.astype(sumsq_i, xp.float64, copy=False) * xp.astype(sumsq_j, xp.float64, copy=False))
    dots = xp.astype(dots, xp.float64, copy=False)
    if bool(xp.all(den > 0)):
        return dots / den
    ok = den > 0
    return xp.where(ok, dots / xp.where(ok, den, 1.0), xp.nan)


@dataclass
class PairBlock:
    """Pairs (i, j > i) for rows ``start:stop`` in condensed order (row-major upper triangle)."""

    start: int
    stop: int
    r_low: Any  # (n_pairs_in_block,) float64
    r_high: Any


class PairBlocks:
    """Iterates row blocks of the upper triangle of pair space for both groups.

    Each block is one matrix product per group, (rows, G - start); correlations are formed in that
    2-D layout and the pairs j > i are then taken out in condensed order.
    """

    def __init__(self, xp, low: GroupRanks, high: GroupRanks, rows_per_block: int):
        self.xp, self.low, self.high = xp, low, high
        self.n_genes = low.d.shape[0]
        self.rows = max(1, int(rows_per_block))
        self.n_pairs = self.n_genes * (self.n_genes - 1) // 2

    def _block_r(self, grp: GroupRanks, start: int, stop: int):
        xp = self.xp
        dots = xp.matmul(grp.d[start:stop, :], xp.matrix_transpose(grp.d[start:, :]))
        r = correlation(xp, dots, grp.sumsq[start:stop, None], grp.sumsq[None, start:])
        # row i of the block is gene start + i; its pairs j > start + i begin at column i + 1
        # (row slices copy as fast as memory; a boolean mask of the triangle is ~10x slower)
        return xp.concat([r[i, i + 1:] for i in range(stop - start)])

    def starts(self) -> list:
        """First row of every block, in condensed order."""
        return list(range(0, self.n_genes - 1, self.rows))

    def block(self, start: int) -> PairBlock:
        """The block whose first row is ``start`` (blocks are independent: any order, any thread)."""
        stop = min(start + self.rows, self.n_genes - 1)
        return PairBlock(start, stop, self._block_r(self.low, start, stop), self._block_r(self.high, start, stop))

    def __iter__(self):
        return map(self.block, self.starts())

    def genes_of(self, block: PairBlock, flat_in_block):
        """(i, j) of pairs given their indices within ``block`` (row r of the block holds
        G - 1 - (start + r) pairs, so a cumulative sum of row lengths locates each index)."""
        xp = self.xp
        lengths = self.n_genes - 1 - xp.arange(block.start, block.stop, dtype=xp.int64)
        ends = xp.cumulative_sum(lengths)
        row = xp.searchsorted(ends, flat_in_block, side="right")
        first = ends - lengths
        i = block.start + row
        j = i + 1 + (flat_in_block - xp.take(first, row))
        return i, j


def base_correlations(xp, values_low, values_high):
    """Convenience for tests: full (G, G) Spearman matrices of both groups."""
    low, high = group_ranks(xp, values_low), group_ranks(xp, values_high)
    out = []
    for g in (low, high):
        dots = xp.matmul(xp.astype(g.d, xp.float64), xp.matrix_transpose(xp.astype(g.d, xp.float64)))
        out.append(correlation(xp, dots, g.sumsq[:, None], g.sumsq[None, :]))
    return out[0], out[1]
