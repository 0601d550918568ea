"""Order statistics from the tails' candidates (``core.tails``), the generic backends' CI path.

On a device the CI's order statistics of every edge were one sort of (E, B) rows (on CuPy a merge
sort of (row, value) pairs); ``candidate_order_statistics`` sorts only the values beyond mean -/+ z
sd of each row, as one flat array.  These tests hold it to a full NumPy sort bit for bit on rows
that take their candidates and on rows that must send every value (skewed, tied, constant, NaN),
in NumPy and in the strict array-API namespace, and count its operations on the counting backend.
"""

from __future__ import annotations

import numpy as np
import pytest

from bootgpu.backends._base import Backend
from bootgpu.backends.counting import CountingBackend
from bootgpu.core.tails import TAIL_MIN_COLUMNS, candidate_order_statistics, tail_needs, tail_z


def _rows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = [rng.normal(0.1, 0.3, n) for _ in range(40)]
    rows += [
        np.full(n, 0.25),  # constant: sd 0, no candidates
        np.round(rng.normal(0, 1, n), 1),  # ties across the tails
        rng.exponential(0.2, n),  # skewed: its short lower tail has too few candidates
        -rng.exponential(0.2, n),  # and the mirror
        rng.standard_cauchy(n),  # heavy tails: many candidates
        np.where(rng.random(n) < 0.97, 0.5, -0.5),  # two values
        np.concatenate([np.full(n // 2, -1.0), rng.normal(0, 1, n - n // 2)]),  # half tied at the bottom
        rng.uniform(-1, 1, n),
    ]
    nan = rng.normal(0, 1, n)
    nan[n // 3] = np.nan
    return np.array(rows + [nan])


def _positions(n: int, alpha: float) -> list[int]:
    lo, hi = (n - 1) * alpha / 2, (n - 1) * (1 - alpha / 2)
    return sorted({int(lo), min(int(lo) + 1, n - 1), int(hi), min(int(hi) + 1, n - 1)})


def _sent_whole(x: np.ndarray, positions) -> np.ndarray:
    """Rows whose tails hold too few candidates (an independent count, in NumPy)."""
    n = x.shape[1]
    lower, upper, need_lo, need_hi = tail_needs(n, positions)
    mean, sd = x.mean(axis=1), x.std(axis=1, ddof=1)
    with np.errstate(invalid="ignore"):
        n_lo = (x < (mean - tail_z(n, need_lo) * sd)[:, None]).sum(axis=1) if lower else np.zeros(len(x))
        n_hi = (x > (mean + tail_z(n, need_hi) * sd)[:, None]).sum(axis=1) if upper else np.zeros(len(x))
    return (n_lo < need_lo) | (n_hi < need_hi)


@pytest.mark.parametrize("n", [TAIL_MIN_COLUMNS, 1000, 2001])
@pytest.mark.parametrize("namespace", ["numpy", "strict"])
def test_candidates_give_a_full_sorts_values(n, namespace):
    xp = np if namespace == "numpy" else pytest.importorskip("array_api_strict")
    x = _rows(n, seed=n)
    ok = ~np.isnan(x).any(axis=1)  # a row with NaN has a NaN mean: summarise masks its statistics
    srt = np.sort(x, axis=1)
    dev = xp.asarray(x)
    mean, sd = xp.mean(dev, axis=1), xp.std(dev, axis=1, correction=1)
    sent_whole = np.zeros(x.shape[0], dtype=int)
    for alpha in (0.05, 0.1, 0.01, 0.5):
        for positions in (_positions(n, alpha), [_positions(n, alpha)[0]], [_positions(n, alpha)[-1]], [0, n - 1]):
            sent_whole += _sent_whole(x, positions)
            got = candidate_order_statistics(xp, dev, positions, mean, sd, share_max=1.0)
            assert got is not None
            for j, p in enumerate(positions):
                value = np.asarray(got[j])
                assert value[ok].tobytes() == srt[ok, p].tobytes(), (alpha, positions, p)
    # both ways were taken: most normal rows from their candidates, the skewed rows whole somewhere
    assert sent_whole[:40].sum() < 40 and sent_whole[42] > 0 and sent_whole[43] > 0, sent_whole


def test_too_many_candidates_fall_back_to_a_sort():
    x = _rows(1000)
    positions = _positions(1000, 0.05)
    mean, sd = x.mean(axis=1), x.std(axis=1, ddof=1)
    assert candidate_order_statistics(np, x, positions, mean, sd, share_max=0.01) is None
    generic = Backend()
    generic.xp = np
    ok = ~np.isnan(x).any(axis=1)
    srt = np.sort(x, axis=1)
    for hints in ({}, {"centre": mean, "spread": sd}):
        got = generic.order_statistics(x, positions, **hints)
        for j, p in enumerate(positions):
            assert got[j][ok].tobytes() == srt[ok, p].tobytes()


def test_operations_do_not_grow_with_rows():
    """A fixed number of array operations, whatever the number of rows: one launch each on a device."""
    backend = CountingBackend()
    xp = backend.xp
    ops = {}
    for n_rows in (50, 5000):
        x = np.random.default_rng(n_rows).normal(0, 1, (n_rows, 1000))
        dev = backend.to_device(x)
        mean, sd = backend.mean_std(dev)
        positions = _positions(1000, 0.05)
        with backend.counting() as counts:
            got = backend.order_statistics(dev, positions, centre=mean, spread=sd)
        ops[n_rows] = (counts.ops, counts.syncs)
        srt = np.sort(x, axis=1)
        for j, p in enumerate(positions):
            assert backend.to_host(got[j]).tobytes() == srt[:, p].tobytes()
        assert xp is backend.xp
    assert ops[50] == ops[5000], ops
    assert 10 <= ops[50][0] <= 60, ops  # counted at all, and no loop over rows
