"""Resample ranks from draw counts equal scipy's average ranks of the resampled values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bootgpu.core.draws import draw_counts, draw_positions
from bootgpu.core.ranks import (Scans, doubled_centred_ranks, group_order, position_ranks, sorted_doubled_ranks, subset_order,
                                tie_groups)


def matrices():
    rng = np.random.default_rng(5)
    yield "continuous", rng.standard_normal((9, 23))
    yield "heavy_ties", rng.integers(0, 3, size=(9, 23)).astype(np.float64)
    ties = rng.integers(0, 6, size=(9, 23)).astype(np.float64)
    ties[2] = 4.0  # a constant gene
    ties[5, ::2] = 1.0  # half the samples tied
    yield "constant_and_half_tied", ties
    yield "negative_and_huge", rng.choice([-1e300, -2.5, 0.0, 7.0, 1e300], size=(9, 23))
    yield "signed_zeros", rng.choice([-0.0, 0.0, 1.5, -1.5], size=(9, 23))  # -0.0 == 0.0: one tie group


MATRICES = dict(matrices())


@pytest.mark.parametrize("name", list(MATRICES))
def test_flat_sorts_give_the_same_sort_structure(xp_backend, name):
    """``group_order`` sorting rows as flat arrays (a device's radix sorts) and along the axis."""
    xp = xp_backend.xp
    values = xp_backend.to_device(MATRICES[name])
    along, flat = group_order(xp, values, flat=False), group_order(xp, values, flat=True)
    assert along.has_ties == flat.has_ties and (along.k, along.n_genes) == (flat.k, flat.n_genes)
    for field in ("perm", "unsort", "tie_first", "tie_last"):
        np.testing.assert_array_equal(xp_backend.to_host(getattr(flat, field)), xp_backend.to_host(getattr(along, field)))
    perm = xp_backend.to_host(flat.perm).reshape(MATRICES[name].shape[1], -1).T  # (G, k): position of each slot
    np.testing.assert_array_equal(perm, np.argsort(MATRICES[name], axis=1, kind="stable"))


def ranks_by_replicate(backend, order, counts_rk, m, dtype=None):
    """doubled_centred_ranks for (R, k) counts, returned on the host as (R, G, k)."""
    xp = backend.xp
    counts = xp.matrix_transpose(backend.to_device(counts_rk))  # the engine takes (k, R)
    d = backend.to_host(doubled_centred_ranks(xp, order, counts, m, dtype))  # (k, G, R)
    assert d.shape == (counts_rk.shape[1], order.n_genes, counts_rk.shape[0])
    return np.transpose(d, (2, 1, 0))


def expected_doubled_ranks(resample):
    """2 * average rank - (m + 1), row by row, from scipy."""
    m = resample.shape[1]
    return 2 * stats.rankdata(resample, axis=1) - (m + 1)


@pytest.mark.parametrize("name", list(MATRICES))
def test_doubled_centred_ranks_equal_scipy_rankdata_of_each_resample(xp_backend, name):
    values = MATRICES[name]
    k = values.shape[1]
    xp = xp_backend.xp
    order = group_order(xp, xp_backend.to_device(values), xp_backend.flat_sorts)
    assert order.has_ties == (name != "continuous")  # continuous data takes the no-ties path
    for m in (k, 18, 3):
        pos = draw_positions(np, 99, 0, 1, np.arange(40), k, m)
        counts = xp_backend.to_host(draw_counts(xp, xp_backend.to_device(pos), k))
        for dtype in (None, xp.float32, xp.float64):
            d = ranks_by_replicate(xp_backend, order, counts, m, dtype)
            for r in range(pos.shape[0]):
                np.testing.assert_array_equal(d[r][:, pos[r]], expected_doubled_ranks(values[:, pos[r]]))


@pytest.mark.parametrize("name", list(MATRICES))
def test_base_ranks_with_unit_counts_equal_scipy_rankdata(xp_backend, name):
    values = MATRICES[name]
    k = values.shape[1]
    xp = xp_backend.xp
    order = group_order(xp, xp_backend.to_device(values), xp_backend.flat_sorts)
    d = ranks_by_replicate(xp_backend, order, np.ones((1, k), dtype=np.int64), k)
    np.testing.assert_array_equal(d[0], expected_doubled_ranks(values))


@pytest.mark.parametrize("name", ["continuous", "constant_and_half_tied"])
def test_subset_order_ranks_equal_ranks_of_the_subset_rows(xp_backend, name):
    values = MATRICES[name]
    k = values.shape[1]
    xp = xp_backend.xp
    genes = np.array([1, 2, 5, 8])
    sub = subset_order(xp, group_order(xp, xp_backend.to_device(values), xp_backend.flat_sorts), xp_backend.to_device(genes))
    assert sub.n_genes == genes.size
    pos = draw_positions(np, 3, 4, 0, np.arange(10), k, 15)
    counts = xp_backend.to_host(draw_counts(xp, xp_backend.to_device(pos), k))
    d = ranks_by_replicate(xp_backend, sub, counts, 15)
    for r in range(pos.shape[0]):
        np.testing.assert_array_equal(d[r][:, pos[r]], expected_doubled_ranks(values[genes][:, pos[r]]))


def test_subset_of_tie_free_genes_takes_the_tie_free_path_with_the_same_ranks(xp_backend):
    """A group with one tied gene: a subset without it is ranked by the tie-free scan."""
    xp = xp_backend.xp
    values = MATRICES["continuous"].copy()
    values[3, :5] = 0.25  # gene 3 holds five tied values
    k = values.shape[1]
    order = group_order(xp, xp_backend.to_device(values), xp_backend.flat_sorts)
    assert order.has_ties
    pos = draw_positions(np, 8, 2, 1, np.arange(12), k, 19)
    counts = xp_backend.to_host(draw_counts(xp, xp_backend.to_device(pos), k))
    for genes, tied in (([0, 5, 7], False), ([3, 5], True)):
        sub = subset_order(xp, order, xp_backend.to_device(np.array(genes)))
        assert sub.has_ties == tied
        d = ranks_by_replicate(xp_backend, sub, counts, 19, xp.int16)
        for r in range(pos.shape[0]):
            np.testing.assert_array_equal(d[r][:, pos[r]], expected_doubled_ranks(values[genes][:, pos[r]]))


@pytest.mark.parametrize("name", ["continuous", "constant_and_half_tied"])
def test_int16_counts_give_int16_ranks_on_every_backend(xp_backend, name):
    """The array-API scan would widen int16 to the default integer unless told not to; the
    planner counts rank arrays at 2 bytes an entry."""
    xp = xp_backend.xp
    values = MATRICES[name]
    order = group_order(xp, xp_backend.to_device(values), xp_backend.flat_sorts)
    counts = xp.ones((values.shape[1], 3), dtype=xp.int16)
    for scans in (None, xp_backend.scans):  # the array-API scans and the backend's own
        assert sorted_doubled_ranks(xp, order, counts, values.shape[1], scans).dtype == xp.int16


@pytest.mark.parametrize("name", list(MATRICES))
def test_position_ranks_with_one_row_per_tie_group_equal_scipy(xp_backend, name):
    """The bootstrap's ranks: the doubled scan in sort order plus one value per tie group,
    (Y[s0] + Y[s1] + C[s1] - C[s0]) / 2, gathered gene-major, for a gene subset too."""
    xp = xp_backend.xp
    values = MATRICES[name]
    n_genes, k = values.shape
    m = 19
    pos = draw_positions(np, 4, 1, 0, np.arange(9), k, m)
    counts = xp.astype(xp.matrix_transpose(draw_counts(xp, xp_backend.to_device(pos), k)), xp.int16)  # (k, R)
    full = group_order(xp, xp_backend.to_device(values), xp_backend.flat_sorts)
    for genes in (np.arange(n_genes), np.array([0, 2, 5, 8])):
        order = subset_order(xp, full, xp_backend.to_device(genes))
        starts, ends, source = tie_groups(xp, order)
        assert (starts is None) == (not order.has_ties)
        unsort = xp.reshape(xp.matrix_transpose(xp.reshape(order.unsort, (k, order.n_genes))), (-1,))
        for scans in (None, xp_backend.scans):  # the array-API scans and the backend's own
            d = position_ranks(xp, order, counts, m, xp.take(source, unsort), starts, ends, scans)
            d = xp_backend.to_host(d).reshape(order.n_genes, k, -1)
            assert d.dtype == np.int16
            for r in range(pos.shape[0]):
                np.testing.assert_array_equal(d[:, pos[r], r], expected_doubled_ranks(values[genes][:, pos[r]]))


def test_backend_scans_equal_the_array_api_scans(xp_backend):
    """``Backend.scans`` (NumPy: in-place row loops) against ``core.ranks.Scans`` and np.cumsum."""
    xp = xp_backend.xp
    c = np.random.default_rng(5).integers(0, 4, (13, 40)).astype(np.int16)
    dev = xp_backend.to_device(c)
    want_cumsum = np.cumsum(c, axis=0, dtype=np.int16)
    want_doubled = 2 * want_cumsum - c - 9
    for scans in (Scans(xp), xp_backend.scans):
        got = xp_backend.to_host(scans.cumsum_leading(dev))
        assert got.dtype == np.int16
        np.testing.assert_array_equal(got, want_cumsum)
        np.testing.assert_array_equal(xp_backend.to_host(scans.doubled_scan(dev, 9)), want_doubled)
        out = xp.empty((13, 40), dtype=xp.int16)
        scans.doubled_scan(dev, 9, out=out)
        np.testing.assert_array_equal(xp_backend.to_host(out), want_doubled)
