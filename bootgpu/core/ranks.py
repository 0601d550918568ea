"""Step 3a: average ranks, for the base groups and for every resample, without re-sorting.

A resample only changes how often each group position is counted.  In a gene's own sort order,
the rank of a value is (counts strictly below) + (counts of its tie group + 1) / 2, i.e. a
cumulative sum of the draw counts.  We work with *doubled centred* ranks
``d = 2 * rank - (m + 1) = below + (below + equal) - m``, which are integers, so correlations
built from them are exact dot products.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class GroupOrder:
    """Sort structure of every gene within one group; computed once, reused by all replicates.

    All index arrays address the flattened (n_genes * k) layout so ``xp.take`` can gather them.
    """

    k: int
    perm: Any  # (G*k,) int64: position (0..k-1) at each sorted slot of each gene
    unsort: Any  # (G*k,) int64: flat sorted slot holding each (gene, position)
    tie_first: Any  # (G*k,) int64: flat sorted slot where each slot's tie group starts
    tie_last: Any  # (G*k,) int64: flat sorted slot where it ends

    @property
    def n_genes(self) -> int:
        return self.perm.shape[0] // self.k


def group_order(xp, values) -> GroupOrder:
    """Sort structure of ``values`` (G, k): each gene's own order and its groups of tied values."""
    n_genes, k = values.shape
    perm = xp.argsort(values, axis=1, stable=True)
    svals = xp.take_along_axis(values, perm, axis=1)
    offsets = xp.arange(n_genes, dtype=xp.int64)[:, None] * k
    # unsort[g, p] = g*k + (slot of position p in gene g's order)
    unsort = offsets + xp.argsort(perm, axis=1)
    new_group = xp.ones((n_genes, k), dtype=xp.bool)
    if k > 1:
        new_group = xp.concat([new_group[:, :1], svals[:, 1:] != svals[:, :-1]], axis=1)
    flat_new = xp.reshape(new_group, (-1,))
    starts = xp.nonzero(flat_new)[0]
    group_id = xp.cumulative_sum(xp.astype(flat_new, xp.int64)) - 1
    ends = xp.concat([starts[1:], xp.asarray([n_genes * k], dtype=starts.dtype)]) - 1
    return GroupOrder(
        k=k,
        perm=xp.reshape(xp.astype(perm, xp.int64), (-1,)),
        unsort=xp.reshape(unsort, (-1,)),
        tie_first=xp.take(starts, group_id),
        tie_last=xp.take(ends, group_id),
    )


def subset_order(xp, order: GroupOrder, genes) -> GroupOrder:
    """The sort structure of a subset of genes (1-D int array), re-based to the subset layout."""
    k = order.k
    n_sub = genes.shape[0]
    rows = xp.reshape(genes[:, None] * k + xp.arange(k, dtype=xp.int64)[None, :], (-1,))
    shift = (xp.arange(n_sub, dtype=xp.int64)[:, None] - genes[:, None]) * k
    shift = xp.reshape(shift + xp.zeros((1, k), dtype=xp.int64), (-1,))
    return GroupOrder(
        k=k,
        perm=xp.take(order.perm, rows),
        unsort=xp.take(order.unsort, rows) + shift,
        tie_first=xp.take(order.tie_first, rows) + shift,
        tie_last=xp.take(order.tie_last, rows) + shift,
    )


def doubled_centred_ranks(xp, order: GroupOrder, counts, m: int):
    """Doubled centred average ranks of every gene in each resample.

    counts: (R, k) draw counts per group position (all ones for the base group, m = k).
    Returns (R, G, k) in position order, dtype of ``counts``; entries at undrawn positions are
    defined but carry zero weight.
    """
    n_rep = counts.shape[0]
    sorted_counts = xp.take(counts, order.perm, axis=1)
    g_k = sorted_counts.shape[1]
    by_gene = xp.reshape(sorted_counts, (n_rep, g_k // order.k, order.k))
    upto = xp.reshape(xp.cumulative_sum(by_gene, axis=2), (n_rep, g_k))
    below = upto - sorted_counts
    d_sorted = xp.take(below, order.tie_first, axis=1) + xp.take(upto, order.tie_last, axis=1) - m
    return xp.reshape(xp.take(d_sorted, order.unsort, axis=1), (n_rep, g_k // order.k, order.k))
