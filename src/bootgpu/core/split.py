"""Step 1: the extreme populations of one focus gene."""

from __future__ import annotations


def group_sizes(n_samples: int, low_frac: float, high_frac: float) -> tuple[int, int]:
    """k_low = floor(n * low_frac), k_high = floor(n * high_frac)."""
    return int(n_samples * low_frac), int(n_samples * high_frac)


def split_samples(xp, focus_values, k_low: int, k_high: int):
    """Sample indices of the LOW and HIGH groups, shapes (k_low,) and (k_high,), int64.

    A stable ascending sort orders the samples; among equal values the lower sample index comes
    first, so LOW takes the lowest values (lower index first) and HIGH the last ``k_high`` of that
    order.  Within each group the samples keep this order: group position p is ``order[p]``.
    """
    order = xp.argsort(focus_values, stable=True)
    n = focus_values.shape[0]
    return order[:k_low], order[n - k_high :]


def separated(xp, focus_values, low_idx, high_idx) -> bool:
    """Whether the focus gene's LOW values all lie below its HIGH values.  Where they meet in a
    tie (a constant gene, or one with fewer distinct values than its groups need) the split is
    made by sample order, not by expression, and the focus gene says nothing."""
    low_max = xp.max(xp.take(focus_values, low_idx))
    high_min = xp.min(xp.take(focus_values, high_idx))
    return bool(low_max < high_min)
