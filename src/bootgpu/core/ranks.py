"""Step 3a: average ranks, for the base groups and for every resample, without re-sorting.

A resample only changes how often each group position is counted.  In a gene's own sort order,
the rank of a value is (counts strictly below) + (counts of its tie group + 1) / 2, i.e. a
cumulative sum of the draw counts.  We work with *doubled centred* ranks
``d = 2 * rank - (m + 1) = below + (below + equal) - m``, which are integers, so correlations
built from them are exact dot products.

Layout is slot-major, (k, G, R): the cumulative sum then runs over the leading axis as k - 1
whole-array additions, and sums over positions reduce the leading axis too.  Every index array
addresses the flattened (k * G) leading axes so ``xp.take`` can gather them.

The bootstrap uses ``position_ranks``: the doubled scan Y in each gene's sort order (as for a gene
without ties, one pass of row additions), then one gather straight into whatever output rows the
caller's index arrays name (gene-major position order there).  A tie group [s0, s1] of two or
more slots shares one rank, X[s0] + X[s1 + 1] - m (X the exclusive scan), which is
(Y[s0] + Y[s1] + C[s1] - C[s0]) / 2 with C the sorted counts: one value per tie group, computed
from four gathers of the tie groups' end rows and appended to Y, so ties cost work in proportion
to the tie groups, not to the genes (``tie_groups``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class GroupOrder:
    """Sort structure of every gene within one group; computed once, reused by all replicates."""

    k: int
    n_genes: int
    perm: Any  # (k*G,) int64, at s*G + g: the position holding gene g's s-th smallest value
    unsort: Any  # (k*G,) int64, at p*G + g: s*G + g where s is the slot of position p
    tie_first: Any  # (k*G,) int64, at s*G + g: s0*G + g, s0 the first slot of s's tie group
    tie_last: Any  # (k*G,) int64: likewise the last slot
    has_ties: bool = True  # False lets resample ranks skip the tie-group gathers


def row_major_order(xp, values, rows):
    """The permutation that sorts 1-D ``values`` by ``rows`` (ascending), and within a row by value,
    ties in their order: two stable sorts of the flat arrays, by value and then by row (on CuPy
    1-D sorts are radix sorts, where a sort along an axis of a 2-D array is a merge sort of (row,
    value) pairs)."""
    order = xp.argsort(values, stable=True)
    return xp.take(order, xp.argsort(xp.take(rows, order), stable=True))


def _row_argsorts(xp, values, genes, flat: bool):
    """(G, k) ``values`` -> (each row's stable argsort, its inverse: the slot of each position)."""
    n_genes, k = values.shape
    if not flat:
        perm = xp.argsort(values, axis=1, stable=True)
        return perm, xp.argsort(perm, axis=1)
    rows = xp.reshape(xp.broadcast_to(genes, (n_genes, k)), (-1,))
    order = row_major_order(xp, xp.reshape(values, (-1,)), rows)  # g * k + perm[g, s] at g * k + s
    base = genes * k
    return xp.reshape(order, (n_genes, k)) - base, xp.reshape(xp.argsort(order), (n_genes, k)) - base


def group_order(xp, values, flat: bool = False) -> GroupOrder:
    """Sort structure of ``values`` (G, k): each gene's own order and its groups of tied values.
    ``flat``: sort the rows as flat arrays (``Backend.flat_sorts``; the same arrays)."""
    n_genes, k = values.shape
    genes = xp.arange(n_genes, dtype=xp.int64)[:, None]
    perm, slot_of_pos = _row_argsorts(xp, values, genes, flat)  # (G, k): position of each slot, slot of each position
    svals = xp.take_along_axis(values, perm, axis=1)
    # tie groups along each gene's sorted row, located with a scan over the flattened (G, k) rows
    new_group = xp.ones((n_genes, k), dtype=xp.bool)
    if k > 1:
        new_group = xp.concat([new_group[:, :1], svals[:, 1:] != svals[:, :-1]], axis=1)
    flat_new = xp.reshape(new_group, (-1,))
    starts = xp.nonzero(flat_new)[0]
    group_id = xp.cumulative_sum(xp.astype(flat_new, xp.int64)) - 1
    ends = xp.concat([starts[1:], xp.asarray([n_genes * k], dtype=starts.dtype)]) - 1
    first_slot = xp.reshape(xp.take(starts, group_id), (n_genes, k)) - genes * k
    last_slot = xp.reshape(xp.take(ends, group_id), (n_genes, k)) - genes * k

    def slot_major(a):  # (G, k) -> (k*G,) in s*G + g order
        return xp.reshape(xp.matrix_transpose(xp.astype(a, xp.int64)), (-1,))

    return GroupOrder(
        k=k,
        n_genes=n_genes,
        perm=slot_major(perm),
        unsort=slot_major(slot_of_pos * n_genes + genes),
        tie_first=slot_major(first_slot * n_genes + genes),
        tie_last=slot_major(last_slot * n_genes + genes),
        has_ties=starts.shape[0] < n_genes * k,
    )


def subset_order(xp, order: GroupOrder, genes) -> GroupOrder:
    """The sort structure of a subset of genes (1-D int64 array), re-based to the subset."""
    k, n_all, n_sub = order.k, order.n_genes, genes.shape[0]
    rows = xp.reshape(xp.arange(k, dtype=xp.int64)[:, None] * n_all + genes[None, :], (-1,))
    local = xp.reshape(xp.zeros((k, 1), dtype=xp.int64) + xp.arange(n_sub, dtype=xp.int64)[None, :], (-1,))

    def rebase(index):  # s*G_all + g  ->  s*U + u
        return (xp.take(index, rows) // n_all) * n_sub + local

    tie_first = rebase(order.tie_first)
    # the subset may be free of ties even when the group is not: then it takes the faster path
    has_ties = order.has_ties and bool(xp.any(tie_first != xp.arange(k * n_sub, dtype=xp.int64)))
    return GroupOrder(
        k=k,
        n_genes=n_sub,
        perm=xp.take(order.perm, rows),
        unsort=rebase(order.unsort),
        tie_first=tie_first,
        tie_last=rebase(order.tie_last),
        has_ties=has_ties,
    )


class Scans:
    """The two scans over axis 0 that resample ranks are made of, in array-API form.  A backend
    may do them faster (``Backend.scans``: NumPy's in-place row loops); the core takes whichever
    it is given and never asks which library it runs on."""

    def __init__(self, xp):
        self.xp = xp

    def cumsum_leading(self, x):
        """Cumulative sum over axis 0, in the dtype of ``x``."""
        return self.xp.cumulative_sum(x, axis=0, dtype=x.dtype)  # the standard widens small ints by default

    def doubled_scan(self, sorted_counts, m: int, out=None):
        """2 * (cumulative sum over axis 0) - counts - m, i.e. d_s = d_(s-1) + c_(s-1) + c_s with
        d_0 = c_0 - m; written into ``out`` when given."""
        xp = self.xp
        y = xp.cumulative_sum(sorted_counts, axis=0, dtype=sorted_counts.dtype)
        y *= 2  # in place: a device holds the counts and one scan
        y -= sorted_counts
        y -= m
        if out is None:
            return y
        out[...] = y
        return out


def sorted_doubled_ranks(xp, order: GroupOrder, counts, m: int, scans: Scans | None = None):
    """Doubled centred average ranks of every gene in each resample, in each gene's *sort* order:
    (k * G, R), row s * G + g holds gene g's s-th smallest value.  Same dtype as ``counts``
    (k, R), which must hold values up to 2 m (int16 does for m < 2**14).  ``order.unsort`` maps
    a position to its row.  ``scans``: the backend's (``Backend.scans``), default array-API ones."""
    scans = scans or Scans(xp)
    k, n_rep = counts.shape
    sorted_counts = xp.reshape(xp.take(counts, order.perm, axis=0), (k, order.n_genes * n_rep))
    if order.has_ties:  # d = (counts strictly below the tie group) + (counts up to its end) - m
        upto = xp.reshape(scans.cumsum_leading(sorted_counts), (-1, n_rep))
        below = upto - xp.reshape(sorted_counts, (-1, n_rep))
        return xp.take(below, order.tie_first, axis=0) + xp.take(upto, order.tie_last, axis=0) - m
    return xp.reshape(scans.doubled_scan(sorted_counts, m), (-1, n_rep))


def tie_groups(xp, order: GroupOrder):
    """(starts, ends, source): the tie groups of two or more slots of ``order``'s genes, as their
    first and last slot rows s0 * G + g and s1 * G + g (ascending), and for every slot row the row
    of ``position_ranks``'s source that holds its rank: its own row, or k * G + (its tie group's
    index) for a slot in a tie group.  (None, None, rows) without ties."""
    rows = xp.arange(order.k * order.n_genes, dtype=xp.int64)
    if not order.has_ties:
        return None, None, rows
    first, last = order.tie_first, order.tie_last
    starts = xp.nonzero((first == rows) & (last != rows))[0]
    in_group = (first != rows) | (last != rows)
    source = xp.where(in_group, rows.shape[0] + xp.searchsorted(starts, first), rows)
    return starts, xp.take(last, starts), source


def position_ranks(xp, order: GroupOrder, counts, m: int, rows, starts=None, ends=None, scans: Scans | None = None):
    """Doubled centred average ranks of the genes of ``order`` in each resample, gathered straight
    into the rows the caller chose: (len(rows), R), of the dtype of ``counts`` (k, R), which must
    hold 3 m.  Y = the doubled scan of the counts in each gene's sort order, (k * G) rows of R (row
    s * G + g), followed by one row per tie group (``tie_groups``: ``starts``/``ends``), whose
    slots all share X[s0] + X[s1 + 1] - m = (Y[s0] + Y[s1] + C[s1] - C[s0]) / 2 (C the sorted
    counts; the sum is even); ``rows`` index that source (``tie_groups``' source, re-ordered).
    ``scans``: the backend's (``Backend.scans``), default array-API ones."""
    scans = scans or Scans(xp)
    k, n_rep = counts.shape
    sorted_counts = xp.reshape(xp.take(counts, order.perm, axis=0), (k, order.n_genes * n_rep))
    n_ties = 0 if starts is None else int(starts.shape[0])
    # the scan written into the head of a buffer with room for the tie groups' rows after it
    size = k * order.n_genes * n_rep
    buf = xp.empty((size + n_ties * n_rep,), dtype=sorted_counts.dtype)
    scans.doubled_scan(sorted_counts, m, out=xp.reshape(buf[:size], (k, -1)))
    y = xp.reshape(buf, (-1, n_rep))
    if n_ties:
        c = xp.reshape(sorted_counts, (-1, n_rep))
        y[order.k * order.n_genes:, ...] = (xp.take(y[:k * order.n_genes, ...], starts, axis=0)
                                            + xp.take(y[:k * order.n_genes, ...], ends, axis=0)
                                            + xp.take(c, ends, axis=0) - xp.take(c, starts, axis=0)) // 2
    return xp.take(y, rows, axis=0)


def doubled_centred_ranks(xp, order: GroupOrder, counts, m: int, dtype=None):
    """Doubled centred average ranks of every gene in each resample, in position order.

    counts: (k, R) draw counts per group position and replicate (ones for the base group, m = k).
    Returns (k, G, R), of ``dtype`` (default: that of ``counts``); entries at undrawn positions
    are defined but carry zero weight.  Values are integers in [-m, m], so any float dtype holds
    them exactly.
    """
    k, n_rep = counts.shape
    if dtype is not None:
        counts = xp.astype(counts, dtype)
    d_sorted = sorted_doubled_ranks(xp, order, counts, m)
    return xp.reshape(xp.take(d_sorted, order.unsort, axis=0), (k, order.n_genes, n_rep))


def weighted_ranks(xp, counts, d):
    """(D, W): resample ranks ``d`` (genes, k, R) in the dtype of ``counts`` (k, R) and W = c * D,
    the weighted ranks the dots take, for ranks a backend made narrower
    (``Backend.resample_ranks``)."""
    d = xp.astype(d, counts.dtype)
    w = d * counts[None, :, :]
    return d, w
