"""Step 3b: Spearman correlation of every gene pair within a group, in row blocks of pair space.

With doubled centred ranks ``d`` (integers), r_ij = (d_i . d_j) / sqrt(|d_i|^2 |d_j|^2).  The dot
products come from one matrix product per row block.  For a group of k samples every product and
partial sum is at most (k^3 - k) / 3, so while that stays below 2**24 (k <= 369) float32 -- and TF32
on a GPU -- computes them exactly; larger groups use float64, exact to 2**53.

Between two tie-free genes |d|^2 = D = (k^3 - k)/3 for both, so r = S / sqrt(D D) with one shared
denominator, and S = 4 a - D for an integer level a (``n_signed_levels``).  ``PairBlocks`` gives
each block either as r (``block``) or, for the pipeline, as levels with r only for the pairs that
have a tied gene (``compact_block``, ``GroupPairs``).  For small groups ``JointBlocks`` gives each
pair as one joint index a_low * n_high + b_high of both groups' levels (``joint_cells``), and the
pairs with a tied gene apart (``TiedPairs``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bootgpu.core.ranks import GroupOrder, doubled_centred_ranks, group_order


def exact_float32_limit(k: int) -> bool:
    """True when rank dot products of a k-sample group are exact in float32."""
    return (k**3 - k) // 3 < 2**24


LEVELS_MAX = 1 << 21  # most levels a group is given: (k^3 - k)/6 + 1, i.e. k <= 232 (larger groups
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


def group_ranks(xp, values, flat: bool = False) -> GroupRanks:
    """Base ranks of ``values`` (G, k): each gene ranked across the group's samples (``flat``:
    ``group_order``'s)."""
    k = values.shape[1]
    order = group_order(xp, values, flat)
    d = xp.matrix_transpose(doubled_centred_ranks(xp, order, xp.ones((k, 1), dtype=xp.int64), k)[..., 0])
    d = xp.astype(d, xp.float32 if exact_float32_limit(k) else xp.float64)
    sumsq = xp.sum(xp.astype(d, xp.float64) ** 2, axis=1)
    return GroupRanks(order=order, d=d, sumsq=sumsq)


def upper_triangle(xp, rect):
    """``rect[i, i + 1:]`` of every row i, concatenated (condensed order): the pairs j > i of a
    block whose row i is gene ``start + i`` and whose columns are genes ``start ..``.  One boolean
    mask, so the number of operations does not grow with the rows (a backend may do it faster:
    ``Backend.upper_triangle``)."""
    n_rows, n_cols = rect.shape
    above = xp.arange(n_cols, dtype=xp.int64)[None, :] > xp.arange(n_rows, dtype=xp.int64)[:, None]
    return rect[above]


def joint_rect(xp, rect, offset: float):
    """int32(rect + offset) of a float32 block of joint indices less ``offset`` (exact: every
    value an integer below 2**24 once the offset is added); ``rect`` is consumed (added to in
    place)."""
    if offset:
        rect += offset
    return xp.astype(rect, xp.int32)


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

    def __init__(self, xp, low: GroupRanks, high: GroupRanks, rows_per_block: int, triangle=None,
                 level_triangle=None):
        self.xp, self.low, self.high = xp, low, high
        # rect -> rect[i, i + 1:] of every row, concatenated (``Backend.upper_triangle``)
        self.triangle = triangle or (lambda rect: upper_triangle(xp, rect))
        # (rect, offset, dtype) -> that triangle's levels in one pass, or None (``Backend.level_triangle``)
        self.level_triangle = level_triangle or (lambda rect, offset, dtype: None)
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
        dots = self.triangle(dots)  # row i of the block is gene start + i: its pairs begin at column i + 1
        r = xp.astype(dots, xp.float64) / self._den[name]
        if self._last_tied[name] < start:  # every gene of the block is tie-free here
            return r, None
        tied = self.pair_mask(self.tied[name], start, stop)
        where = xp.nonzero(tied)[0]
        if where.shape[0] == 0:
            return r, None
        r[tied] = self._tied_r(grp, xp.take(dots, where), *self._genes(start, stop, where))
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
        rect = xp.matmul(grp.d[start:stop, :], xp.matrix_transpose(grp.d[start:, :]))
        dtype = xp.int16 if n < 2**15 else xp.int32  # the sentinel n must fit too
        levels = self.level_triangle(rect, rank_sumsq(grp.k), dtype)  # a backend's one pass (host)
        if levels is None:  # the triangle, then its levels: the product is freed first (device memory)
            dots = self.triangle(rect)
            del rect
            levels = xp.astype(dots, xp.int32)
            levels += rank_sumsq(grp.k)
            levels >>= 2
            return self._with_tied(name, grp, start, stop, xp.astype(levels, dtype), n, lambda: dots,
                                   lambda where: xp.take(dots, where))

        def tied_dots(where):  # (i, j) sits at rect[i - start, j - start]
            gene_i, gene_j = self._genes(start, stop, where)
            return xp.take(xp.reshape(rect, (-1,)), (gene_i - start) * rect.shape[1] + (gene_j - start))

        return self._with_tied(name, grp, start, stop, levels, n, lambda: self.triangle(rect), tied_dots)

    def _with_tied(self, name: str, grp: GroupRanks, start: int, stop: int, levels, n: int, every_dot, tied_dots):
        """A block's ``GroupPairs`` from its tie-free ``levels``: the pairs with a tied gene get the
        sentinel and their r (``tied_dots(where)``: their dot products), or, where they are at least
        half of the block, every pair its r (``every_dot()``: the block's dot products)."""
        xp = self.xp
        if self._last_tied[name] < start:
            return GroupPairs(levels=levels, tied_r=xp.zeros((0,), dtype=xp.float64), sentinel=n)
        tied = self.pair_mask(self.tied[name], start, stop)
        where = xp.nonzero(tied)[0]
        if 2 * where.shape[0] >= levels.shape[0]:
            dots = every_dot()
            r = xp.astype(dots, xp.float64) / self._den[name]
            if where.shape[0]:
                r[tied] = self._tied_r(grp, xp.take(dots, where), *self._genes(start, stop, where))
            return GroupPairs(r=r)
        if where.shape[0] == 0:
            return GroupPairs(levels=levels, tied_r=xp.zeros((0,), dtype=xp.float64), sentinel=n)
        tied_r = self._tied_r(grp, tied_dots(where), *self._genes(start, stop, where))
        levels[tied] = n
        return GroupPairs(levels=levels, tied_r=tied_r, sentinel=n)

    def _tied_r(self, grp: GroupRanks, dots, gene_i, gene_j):
        """r of pairs (gene_i, gene_j) with a tied gene from their dot products ``dots``."""
        xp = self.xp
        return correlation(xp, dots, xp.take(grp.sumsq, gene_i), xp.take(grp.sumsq, gene_j))

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
        return self.triangle(flags[start:stop, None] | flags[None, start:])

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


JOINT_MAX_CELLS = 1 << 24  # most cells (LOW levels x HIGH levels) a joint histogram gets: k <= 29 for
# equal groups; the float32 arithmetic of ``JointBlocks`` is exact below 2**24
JOINT_MIN_PAIRS_PER_CELL = 1  # fewer pairs than cells: the joint tables (~50 bytes a cell, see
# fdr.joint_table_bytes) would take more memory than the pairs' levels; measured on the first G
# genes of ALL (k = 25, one thread): at 0.66 pairs a cell the passes took 0.51 s against 0.66 s
# by group levels, at 1.2 0.68-1.0 against 1.08, at 4.7 1.9-2.4 against 4.3
JOINT_PAIR_BYTES = 4  # per pair kept (cached) by JointBlocks: its joint index, int32 ...
TIED_PAIR_BYTES = 48  # ... and per pair with a tied gene: position, r of both groups, levels, flags
# (TiedPairs) and Fisher's statistic and valid flag (pipeline.TiedStats)
JOINT_CACHE_ALLOWANCE = 0.5  # bytes a pair a plan allows for the pairs with a tied gene (up to 1/96
# of the pairs: 0.19 % on ALL; more, and pipeline.JointPasses recomputes blocks rather than exceed the plan)


def joint_cells(n_genes: int, k_low: int, k_high: int) -> int:
    """Cells of the joint level histogram of a focus gene (``JointBlocks``), or 0 where pairs are
    kept per group instead (``PairBlocks.compact_block``): a group without level tables, more than
    ``JOINT_MAX_CELLS`` cells, or too few pairs to fill them."""
    n_low, n_high = n_signed_levels(k_low), n_signed_levels(k_high)
    cells = n_low * n_high
    n_pairs = n_genes * (n_genes - 1) // 2
    if not cells or cells > JOINT_MAX_CELLS or n_pairs < JOINT_MIN_PAIRS_PER_CELL * cells:
        return 0
    return cells


def joint_single_product(k_low: int, k_high: int, ieee_float32: bool) -> bool:
    """Whether ``JointBlocks`` gets a block's joint indices from one float32 product (exact where
    the products are IEEE float32 and every partial sum stays within 2**24), not one per group."""
    n_high = n_signed_levels(k_high)
    return bool(ieee_float32) and n_high * rank_sumsq(k_low) + rank_sumsq(k_high) <= 2**24


def joint_product_bytes(k_low: int, k_high: int, ieee_float32: bool) -> int:
    """Bytes a cell of a block's products takes at their peak in ``JointBlocks.block``: the float32
    product and its int32 copy (one product), or both groups' products and the copy (measured with
    ``backends.counting`` on ALL's one block of 159 M cells: 8.24 and 12.2 bytes a cell)."""
    return 8 if joint_single_product(k_low, k_high, ieee_float32) else 12


@dataclass
class TiedPairs:
    """The pairs of a block with a tied (or constant) gene in either group, in condensed order.

    ``pos``: their positions in the block (int64, ascending); ``r_low``/``r_high``: r, computed as
    ``PairBlocks`` does (``correlation``; NaN for a constant gene); ``tied_low``/``tied_high``: the
    pair has a tied gene in that group (else r is S / D of a level); ``level_low``/``level_high``:
    the level where the group is tie-free (0 where it is not)."""

    pos: Any
    r_low: Any
    r_high: Any
    tied_low: Any
    tied_high: Any
    level_low: Any
    level_high: Any


@dataclass
class JointBlock:
    """A block of ``JointBlocks``: ``joint`` (int32, every pair of rows ``start:stop``) is a *
    n_high + b for a pair of genes tie-free in both groups; at the positions of ``tied`` (None:
    no such pair) it holds an in-range value that stands for nothing (the histogram subtracts it).
    ``joint`` is None when only ``tied`` was asked for."""

    start: int
    stop: int
    joint: Any
    tied: TiedPairs | None


class JointBlocks:
    """Row blocks of pair space as joint level indices, for small groups (``joint_cells``).

    Between tie-free genes S = 4 a - D, so the LOW level a and the HIGH level b of a pair are
    exact functions of the two dot products, and so is joint = a * n_high + b (n_high = D_high/2
    + 1 levels): (S_low + D_low) * (n_high / 4) + (S_high + D_high) / 4, exact in float32 while
    every intermediate is an integer (or a multiple of 1/4) below 2**24.  Where the backend's
    float32 products are IEEE (``Backend.ieee_float32_matmul``; not TF32) and n_high D_low +
    D_high <= 2**24, one matrix product of [d_low n_high/4, d_high/4] with [d_low, d_high] gives
    joint minus a constant directly (every partial sum a multiple of 1/4 within 2**22); otherwise
    one product per group and the formula.  The triangle j > i is taken by row slices, as
    ``PairBlocks`` does.

    Pairs with a tied (or constant) gene are located from the genes' flags by arithmetic on the
    condensed positions, and get r as ``PairBlocks`` computes it, from their own (exact integer)
    dot products (``TiedPairs``).
    """

    def __init__(self, xp, pairs: PairBlocks, ieee_float32: bool = False, joint_triangle=None):
        self.xp, self.pairs = xp, pairs
        # (rect, offset) -> the triangle of int32(rect + offset), or None (``Backend.joint_triangle``)
        self.joint_triangle = joint_triangle or (lambda rect, offset: None)
        low, high = pairs.low, pairs.high
        self.n_low, self.n_high = n_signed_levels(low.k), n_signed_levels(high.k)
        self.d_low, self.d_high = rank_sumsq(low.k), rank_sumsq(high.k)
        self.n_cells = self.n_low * self.n_high
        if not (self.n_low and self.n_high and self.n_cells <= JOINT_MAX_CELLS):
            raise ValueError(f"no joint levels for k = {low.k}, {high.k}")
        self.scale = self.n_high / 4.0
        self.single = joint_single_product(low.k, high.k, ieee_float32)
        if self.single:
            self._left = xp.concat([low.d * xp.asarray(self.scale, dtype=xp.float32),
                                    high.d * xp.asarray(0.25, dtype=xp.float32)], axis=1)
            self._right = xp.concat([low.d, high.d], axis=1)
            self._offset = self.scale * self.d_low + self.d_high / 4.0  # a multiple of 1/4 below 2**22
        self.tied_any = pairs.tied["low"] | pairs.tied["high"]
        self._tied_genes = xp.nonzero(self.tied_any)[0]
        n_tied = int(self._tied_genes.shape[0])
        self._last_tied = int(xp.max(self._tied_genes)) if n_tied else -1
        untied = pairs.n_genes - n_tied
        self.n_tied_pairs = pairs.n_pairs - untied * (untied - 1) // 2  # pairs with a tied gene

    def tied_pairs_of(self, name: str) -> int:
        """Pairs with a tied gene in group ``name``."""
        untied = self.pairs.n_genes - int(self.xp.count_nonzero(self.pairs.tied[name]))
        return self.pairs.n_pairs - untied * (untied - 1) // 2

    def block(self, start: int, tied_only: bool = False) -> JointBlock:
        """The block whose first row is ``start`` (``tied_only``: only its ``TiedPairs``, which
        need no product of the whole block)."""
        xp, pairs = self.xp, self.pairs
        stop = min(start + pairs.rows, pairs.n_genes - 1)
        tied = self._tied(start, stop)
        if tied_only:
            return JointBlock(start, stop, None, tied)
        offset = 0.0
        if self.single:
            rect = xp.matmul(self._left[start:stop, :], xp.matrix_transpose(self._right[start:, :]))
            offset = self._offset
        else:
            rect = xp.matmul(pairs.low.d[start:stop, :], xp.matrix_transpose(pairs.low.d[start:, :]))
            rect += float(self.d_low)
            rect *= self.scale
            high = xp.matmul(pairs.high.d[start:stop, :], xp.matrix_transpose(pairs.high.d[start:, :]))
            high += float(self.d_high)
            high *= 0.25
            rect += high
        joint = self.joint_triangle(rect, offset)
        if joint is None:  # the int32 copy replaces the product before the triangle is taken
            rect = joint_rect(xp, rect, offset)
            joint = pairs.triangle(rect)
        return JointBlock(start, stop, joint, tied)

    def _tied(self, start: int, stop: int) -> TiedPairs | None:
        """The block's pairs with a tied gene in either group (None: none), in condensed order.
        A pair (i, j) sits at first[i] + j - i - 1: pairs of a tie-free row i with the tied genes
        beyond it come from one (rows, tied genes) product per group, and the rows of tied genes
        whole from one (tied rows, genes) product per group."""
        xp, pairs = self.xp, self.pairs
        if self._last_tied < start:  # a pair of these rows has a gene >= start
            return None
        groups = (pairs.low, pairs.high)
        rows = xp.arange(start, stop, dtype=xp.int64)
        lengths = pairs.n_genes - 1 - rows
        first = xp.cumulative_sum(lengths) - lengths
        row_tied = self.tied_any[start:stop]
        cols = self._tied_genes[self._tied_genes > start]
        parts = []  # (positions, gene i, gene j, LOW dots, HIGH dots)
        if cols.shape[0]:
            ok = (cols[None, :] > rows[:, None]) & ~row_tied[:, None]
            shape = (rows.shape[0], cols.shape[0])
            parts.append(((first[:, None] + (cols[None, :] - rows[:, None] - 1))[ok],
                          xp.broadcast_to(rows[:, None], shape)[ok], xp.broadcast_to(cols[None, :], shape)[ok],
                          *(xp.matmul(g.d[start:stop, :], xp.matrix_transpose(xp.take(g.d, cols, axis=0)))[ok]
                            for g in groups)))
        tied_rows = xp.nonzero(row_tied)[0]
        if tied_rows.shape[0]:  # rows of tied genes whole: (tied rows, genes from start) products
            genes = start + tied_rows
            after = xp.arange(start, pairs.n_genes, dtype=xp.int64)
            ok = after[None, :] > genes[:, None]
            shape = (genes.shape[0], after.shape[0])
            parts.append(((xp.take(first, tied_rows)[:, None] + (after[None, :] - genes[:, None] - 1))[ok],
                          xp.broadcast_to(genes[:, None], shape)[ok], xp.broadcast_to(after[None, :], shape)[ok],
                          *(xp.matmul(xp.take(g.d, genes, axis=0), xp.matrix_transpose(g.d[start:, :]))[ok]
                            for g in groups)))
        cols = [xp.concat([p[c] for p in parts]) if len(parts) > 1 else parts[0][c] for c in range(5)]
        if cols[0].shape[0] == 0:
            return None
        if len(parts) > 1:  # sorted runs, merged
            order = xp.argsort(cols[0], stable=True)
            cols = [xp.take(c, order) for c in cols]
        pos, gene_i, gene_j = cols[:3]
        out = {}
        for name, grp, big_d, dots in (("low", pairs.low, self.d_low, cols[3]), ("high", pairs.high, self.d_high, cols[4])):
            tied = xp.take(pairs.tied[name], gene_i) | xp.take(pairs.tied[name], gene_j)
            r = correlation(xp, dots, xp.take(grp.sumsq, gene_i), xp.take(grp.sumsq, gene_j))
            level = xp.astype((xp.astype(dots, xp.int64) + big_d) // 4, xp.int32)  # exact integer dots
            out[name] = (r, tied, xp.where(tied, xp.zeros_like(level), level))
        return TiedPairs(pos, out["low"][0], out["high"][0], out["low"][1], out["high"][1], out["low"][2], out["high"][2])


def base_correlations(xp, values_low, values_high):
    """Convenience for tests: full (G, G) Spearman matrices of both groups."""
    low, high = group_ranks(xp, values_low), group_ranks(xp, values_high)
    out = []
    for g in (low, high):
        dots = xp.matmul(xp.astype(g.d, xp.float64), xp.matrix_transpose(xp.astype(g.d, xp.float64)))
        out.append(correlation(xp, dots, g.sumsq[:, None], g.sumsq[None, :]))
    return out[0], out[1]
