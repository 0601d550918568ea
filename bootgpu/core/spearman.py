"""Step 3b: Spearman correlation of every gene pair within a group, in row blocks of pair space.

With doubled centred ranks ``d`` (integers), r_ij = (d_i . d_j) / sqrt(|d_i|^2 |d_j|^2).  The dot
products come from one matrix product per row block.  For a group of k samples every product and
partial sum is at most (k^3 - k) / 3, so while that stays below 2**24 (k <= 369) float32 -- and TF32
on a GPU -- computes them exactly; larger groups use float64, exact to 2**53.

Between two tie-free genes |d|^2 = D = (k^3 - k)/3 for both, so r = S / sqrt(D D) with one shared
denominator, and S = 4 a - D for an integer level a (``n_signed_levels``).  ``PairBlocks`` gives
each block either as r (``block``) or, for the pipeline, as levels with r only for the pairs that
have a tied gene (``compact_block``, ``GroupPairs``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bootgpu.core.ranks import GroupOrder, doubled_centred_ranks, group_order


def exact_float32_limit(k: int) -> bool:
    """True when rank dot products of a k-sample group are exact in float32."""
    return (k**3 - k) // 3 < 2**24


LEVELS_MAX = 1 << 20  # most levels a group is given: (k^3 - k)/6 + 1, i.e. k <= 184 (larger groups
# keep r; their tables and level histograms would take ~100 MiB, which a tight budget needs for the pairs)


def rank_sumsq(k: int) -> int:
    """|d|^2 of a gene without ties in a k-sample group (d: doubled centred ranks)."""
    return (k**3 - k) // 3


def n_signed_levels(k: int) -> int:
    """Levels of r between tie-free genes of a k-sample group (0: too many to tabulate).

    S = d_i . d_j = 4 a - D for a level a = 0 .. D/2, D = (k^3 - k)/3: sum_p (2 x_p - c)(2 y_p - c)
    = 4 sum x y - k c^2 with c = k + 1, and k c^2 = D (mod 4) in every residue class of k."""
    n = rank_sumsq(k) // 2 + 1
    return n if n <= LEVELS_MAX else 0


@dataclass
class GroupPairs:
    """One group's values for the pairs of a block, in one of two forms.

    levels: each pair's level a (S = 4 a - D, see ``n_signed_levels``), int16 or int32; a pair with
        a tied (or constant) gene carries ``sentinel`` = D/2 + 1 and its r is in ``tied_r``, in order.
    r: every pair's r (float64) -- where the group has no levels, or where pairs with a tied gene
        are at least half of the block (then levels would not save memory).
    """

    levels: Any = None
    tied_r: Any = None
    r: Any = None
    sentinel: int = 0

    def select(self, keep) -> "GroupPairs":
        """The same pairs less those where ``keep`` (bool over the pairs) is False."""
        if self.r is not None:
            return GroupPairs(r=self.r[keep])
        tied_r = self.tied_r
        if tied_r.shape[0]:
            tied_r = tied_r[keep[self.levels == self.sentinel]]
        return GroupPairs(levels=self.levels[keep], tied_r=tied_r, sentinel=self.sentinel)


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
    tied_low: Any = None  # (n_pairs_in_block,) bool: a gene of the pair has ties in LOW; None: no such pair
    tied_high: Any = None


class PairBlocks:
    """Iterates row blocks of the upper triangle of pair space for both groups.

    Each block is one matrix product per group, (rows, G - start), whose pairs j > i are then taken
    out in condensed order.  Between two genes without ties in a k-sample group |d|^2 = D =
    (k^3 - k)/3, so r = S / sqrt(D D) with one denominator for all of them; only the pairs with a
    tied (or constant) gene, located from per-gene flags, get their own (``correlation``, as before).
    """

    def __init__(self, xp, low: GroupRanks, high: GroupRanks, rows_per_block: int):
        self.xp, self.low, self.high = xp, low, high
        self.n_genes = low.d.shape[0]
        self.rows = max(1, int(rows_per_block))
        self.n_pairs = self.n_genes * (self.n_genes - 1) // 2
        self.tied, self._last_tied, self._den = {}, {}, {}
        for name, grp in (("low", low), ("high", high)):
            big_d = float((grp.k**3 - grp.k) // 3)
            self._den[name] = math.sqrt(big_d * big_d)  # what correlation() computes for such a pair
            self.tied[name] = grp.sumsq != big_d  # (G,) genes with ties or constant in the group
            where = xp.nonzero(self.tied[name])[0]
            self._last_tied[name] = int(xp.max(where)) if where.shape[0] else -1

    def _block_r(self, name: str, start: int, stop: int):
        """r of the block's pairs in group ``name`` and the mask of pairs with a tied gene (or None)."""
        xp = self.xp
        grp = self.low if name == "low" else self.high
        dots = xp.matmul(grp.d[start:stop, :], xp.matrix_transpose(grp.d[start:, :]))
        # row i of the block is gene start + i; its pairs j > start + i begin at column i + 1
        # (row slices copy as fast as memory; a boolean mask of the triangle is ~10x slower)
        dots = xp.concat([dots[i, i + 1:] for i in range(stop - start)])
        r = xp.astype(dots, xp.float64) / self._den[name]
        if self._last_tied[name] < start:  # every gene of the block is tie-free here
            return r, None
        tied = self.pair_mask(self.tied[name], start, stop)
        where = xp.nonzero(tied)[0]
        if where.shape[0] == 0:
            return r, None
        r[tied] = self._tied_r(grp, start, stop, dots, where)
        return r, tied

    def _block_pairs(self, name: str, start: int, stop: int) -> GroupPairs:
        """The block's pairs in group ``name`` as levels where the group has them (``GroupPairs``):
        a level is (S + D) / 4, integer arithmetic on the exact dot products; only pairs with a
        tied gene get an r (``correlation``)."""
        xp = self.xp
        grp = self.low if name == "low" else self.high
        n = n_signed_levels(grp.k)
        if not n:
            return GroupPairs(r=self._block_r(name, start, stop)[0])
        dots = xp.matmul(grp.d[start:stop, :], xp.matrix_transpose(grp.d[start:, :]))
        dots = xp.concat([dots[i, i + 1:] for i in range(stop - start)])
        levels = xp.astype(dots, xp.int32)
        levels += rank_sumsq(grp.k)
        levels >>= 2
        dtype = xp.int16 if n < 2**15 else xp.int32  # the sentinel n must fit too
        if self._last_tied[name] < start:
            return GroupPairs(levels=xp.astype(levels, dtype), tied_r=xp.zeros((0,), dtype=xp.float64), sentinel=n)
        tied = self.pair_mask(self.tied[name], start, stop)
        where = xp.nonzero(tied)[0]
        if 2 * where.shape[0] >= dots.shape[0]:
            r = xp.astype(dots, xp.float64) / self._den[name]
            if where.shape[0]:
                r[tied] = self._tied_r(grp, start, stop, dots, where)
            return GroupPairs(r=r)
        tied_r = self._tied_r(grp, start, stop, dots, where) if where.shape[0] else xp.zeros((0,), dtype=xp.float64)
        levels[tied] = n
        return GroupPairs(levels=xp.astype(levels, dtype), tied_r=tied_r, sentinel=n)

    def _tied_r(self, grp: GroupRanks, start: int, stop: int, dots, where):
        xp = self.xp
        gene_i, gene_j = self._genes(start, stop, where)
        return correlation(xp, xp.take(dots, where), xp.take(grp.sumsq, gene_i), xp.take(grp.sumsq, gene_j))

    def compact_block(self, start: int):
        """(start, stop, low GroupPairs, high GroupPairs) of the block whose first row is ``start``."""
        stop = min(start + self.rows, self.n_genes - 1)
        return start, stop, self._block_pairs("low", start, stop), self._block_pairs("high", start, stop)

    def starts(self) -> list:
        """First row of every block, in condensed order."""
        return list(range(0, self.n_genes - 1, self.rows))

    def block(self, start: int) -> PairBlock:
        """The block whose first row is ``start`` (blocks are independent: any order, any thread)."""
        stop = min(start + self.rows, self.n_genes - 1)
        r_low, tied_low = self._block_r("low", start, stop)
        r_high, tied_high = self._block_r("high", start, stop)
        return PairBlock(start, stop, r_low, r_high, tied_low, tied_high)

    def __iter__(self):
        return map(self.block, self.starts())

    def pair_mask(self, flags, start: int, stop: int):
        """flags[i] | flags[j] for the pairs of rows ``start:stop``, in condensed order (``flags``:
        (G,) bool, one per gene)."""
        xp = self.xp
        both = flags[start:stop, None] | flags[None, start:]
        return xp.concat([both[i, i + 1:] for i in range(stop - start)])

    def genes_of(self, block: PairBlock, flat_in_block):
        """(i, j) of pairs given their indices within ``block``."""
        return self._genes(block.start, block.stop, flat_in_block)

    def _genes(self, start: int, stop: int, flat_in_block):
        """(i, j) of pairs of rows ``start:stop`` given their indices there (row r holds
        G - 1 - (start + r) pairs, so a cumulative sum of row lengths locates each index)."""
        xp = self.xp
        lengths = self.n_genes - 1 - xp.arange(start, stop, dtype=xp.int64)
        ends = xp.cumulative_sum(lengths)
        row = xp.searchsorted(ends, flat_in_block, side="right")
        first = ends - lengths
        i = start + row
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
