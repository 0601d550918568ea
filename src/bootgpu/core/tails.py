"""Order statistics of many rows from their tails' candidates, in a fixed number of array operations.

A bootstrap CI reads a few positions near each end of every edge's B sorted deltas (B = 1,000,
alpha = 0.05: positions 24, 25, 974 and 975).  Sorting whole rows is what a generic namespace
offers, and on CuPy a sort along an axis of a 2-D array is a comparison merge sort of (row, value)
pairs over every value (thrust's ``stable_sort`` with a tuple comparator); a 1-D sort of floats or
integers is a radix sort.  Here only each row's candidates are sorted, as one flat array: the values
below mean - z_lo sd and above mean + z_hi sd (z such that a normal row has ~2.5x the values the
positions need there), by value, then stably by row.  A row whose tails hold at least the values its
positions need has its smallest (largest) values all among the candidates, so the positions read
from its candidates are exactly its order statistics; any other row (skewed, tied, constant, NaN)
sends all its values.  The same values as a full sort, bit for bit.
"""

from __future__ import annotations

import statistics

from bootgpu.core.ranks import row_major_order

TAIL_MIN_COLUMNS = 200  # rows this long take the tail candidates (shorter: a sort of whole rows)
TAIL_SHARE_MAX = 0.25  # more candidates than this share of all values: the caller sorts whole rows


def tail_z(n: int, need: int) -> float:
    """z such that a normal row of ``n`` values has ~2.5x the ``need`` values beyond centre -/+ z spread."""
    return statistics.NormalDist().inv_cdf(max(0.5, 1 - 2.5 * need / n))


def tail_needs(n: int, positions) -> tuple[list[int], list[int], int, int]:
    """The positions of the lower half (descending) and of the upper half (ascending) of a row of
    ``n`` values, and how many of the row's smallest / largest values each tail needs."""
    ps = sorted({int(p) for p in positions})
    lower = [p for p in ps if p < n / 2][::-1]
    upper = [p for p in ps if p >= n / 2]
    return lower, upper, (lower[0] + 1 if lower else 0), (n - upper[0] if upper else 0)


def candidate_order_statistics(xp, x, positions, centre, spread, share_max: float = TAIL_SHARE_MAX):
    """[column p of each row of (E, B) ``x`` sorted, for p in ``positions``] from the rows' tail
    candidates (module docstring), given each row's mean ``centre`` and standard deviation
    ``spread``; None where the candidates would be more than ``share_max`` of all values (the
    caller then sorts whole rows, whose memory the plan counts).  Rows with a NaN get placeholders
    (their mean is NaN, which the summary masks)."""
    n_rows, n = x.shape
    lower, upper, need_lo, need_hi = tail_needs(n, positions)
    below = x < (centre - tail_z(n, need_lo) * spread)[:, None] if lower else xp.zeros_like(x, dtype=xp.bool)
    above = x > (centre + tail_z(n, need_hi) * spread)[:, None] if upper else xp.zeros_like(x, dtype=xp.bool)
    n_below, n_above = xp.count_nonzero(below, axis=1), xp.count_nonzero(above, axis=1)
    ok = (n_below >= need_lo) & (n_above >= need_hi)  # else: all the row's values
    candidate = below | above | ~ok[:, None]
    del below, above
    count = xp.where(ok, n_below + n_above, xp.asarray(n, dtype=n_below.dtype))
    if int(xp.sum(count)) > share_max * n_rows * n:
        return None
    values = x[candidate]  # row by row, each row's in column order
    rows = xp.nonzero(candidate)[0]
    del candidate
    order = row_major_order(xp, values, rows)  # by row, within a row by value (flat radix sorts on a device)
    del rows
    ordered = xp.take(values, order)
    del values, order
    start = xp.cumulative_sum(count) - count
    end = start + count
    found = {p: xp.take(ordered, start + p) for p in lower}
    found.update({p: xp.take(ordered, end - (n - p)) for p in upper})
    return [found[int(p)] for p in positions]
