"""Blocked rank correlations equal scipy.stats.spearmanr, whatever the block size."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bootgpu.core.spearman import PairBlocks, base_correlations, exact_float32_limit, group_ranks


def scipy_matrix(values):
    """Spearman matrix of the rows of ``values``; NaN rows/columns for constant genes."""
    g = values.shape[0]
    out = np.full((g, g), np.nan)
    ok = np.flatnonzero(np.ptp(values, axis=1) > 0)
    out[np.ix_(ok, ok)] = stats.spearmanr(values[ok], axis=1).statistic
    return out


def group_pair(kind: str):
    rng = np.random.default_rng({"continuous": 1, "ties": 2, "duplicated": 3, "constant": 4}[kind])
    low, high = rng.standard_normal((14, 19)), rng.standard_normal((14, 23))
    low[3] = 0.6 * low[2] + 0.4 * low[3]  # some real correlation
    high[7] = -high[1] + 0.1 * high[7]
    if kind == "ties":
        low, high = np.round(low * 1.5), np.round(high)
    if kind == "duplicated":  # repeated samples: columns drawn with replacement
        low = low[:, rng.integers(0, 19, size=19)]
        high = high[:, np.r_[0, 0, 0, 1, 1, 2:21]]
    if kind == "constant":
        low[4] = 2.0
        high[9] = -1.0
        high[4, :5] = 3.0  # gene 4 is constant in LOW only
    return low, high


KINDS = ("continuous", "ties", "duplicated", "constant")


@pytest.mark.parametrize("kind", KINDS)
def test_base_correlations_equal_scipy_spearmanr(xp_backend, kind):
    low, high = group_pair(kind)
    r_low, r_high = base_correlations(xp_backend.xp, xp_backend.to_device(low), xp_backend.to_device(high))
    for got, values in ((r_low, low), (r_high, high)):
        got, want = xp_backend.to_host(got), scipy_matrix(values)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, equal_nan=True)


def test_constant_gene_gives_nan_correlations_in_its_group_only():
    low, high = group_pair("constant")
    r_low, r_high = base_correlations(np, low, high)
    assert np.all(np.isnan(r_low[4])) and np.all(np.isnan(r_low[:, 4]))
    assert np.all(np.isnan(r_high[9])) and np.all(np.isnan(r_high[:, 9]))
    assert not np.any(np.isnan(np.delete(r_high[4], 9)))  # gene 4 varies in HIGH


def test_large_group_uses_float64_and_stays_exact():
    k = 400  # beyond the float32-exact limit (k <= 369)
    assert exact_float32_limit(369) and not exact_float32_limit(k)
    rng = np.random.default_rng(8)
    values = np.round(rng.standard_normal((6, k)) * 4)
    grp = group_ranks(np, values)
    assert grp.d.dtype == np.float64
    r, _ = base_correlations(np, values, values)
    np.testing.assert_allclose(r, scipy_matrix(values), atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rows_per_block", [1, 3, 7, 13, 100])
def test_pair_blocks_give_condensed_correlations_for_any_block_size(xp_backend, kind, rows_per_block):
    low, high = group_pair(kind)
    xp = xp_backend.xp
    g = low.shape[0]
    pairs = PairBlocks(xp, group_ranks(xp, xp_backend.to_device(low)), group_ranks(xp, xp_backend.to_device(high)),
                       rows_per_block)
    iu, ju = np.triu_indices(g, 1)
    assert pairs.n_pairs == iu.size
    blocks = list(pairs)
    got_i, got_j, got_low, got_high = [], [], [], []
    for block in blocks:
        n = block.r_low.shape[0]
        i, j = pairs.genes_of(block, xp.arange(n, dtype=xp.int64))
        got_i.append(xp_backend.to_host(i))
        got_j.append(xp_backend.to_host(j))
        got_low.append(xp_backend.to_host(block.r_low))
        got_high.append(xp_backend.to_host(block.r_high))
    np.testing.assert_array_equal(np.concatenate(got_i), iu)
    np.testing.assert_array_equal(np.concatenate(got_j), ju)
    want_low, want_high = scipy_matrix(low)[iu, ju], scipy_matrix(high)[iu, ju]
    np.testing.assert_allclose(np.concatenate(got_low), want_low, atol=1e-6, rtol=0, equal_nan=True)
    np.testing.assert_allclose(np.concatenate(got_high), want_high, atol=1e-6, rtol=0, equal_nan=True)
    assert [b.start for b in blocks] == list(range(0, g - 1, rows_per_block))


@pytest.mark.parametrize("rows_per_block", [1, 3, 7, 100])
def test_pair_block_values_are_identical_for_any_block_size(rows_per_block):
    low, high = group_pair("ties")
    gl, gh = group_ranks(np, low), group_ranks(np, high)
    whole = np.concatenate([b.r_low for b in PairBlocks(np, gl, gh, 10**6)])
    split = np.concatenate([b.r_low for b in PairBlocks(np, gl, gh, rows_per_block)])
    assert whole.tobytes() == split.tobytes()


def test_genes_of_maps_scattered_indices_back_to_their_pair():
    low, high = group_pair("continuous")
    g = low.shape[0]
    pairs = PairBlocks(np, group_ranks(np, low), group_ranks(np, high), 4)
    full = scipy_matrix(low)
    rng = np.random.default_rng(0)
    for block in pairs:
        idx = rng.permutation(block.r_low.shape[0])[:5]
        i, j = pairs.genes_of(block, idx)
        assert np.all((block.start <= i) & (i < block.stop) & (i < j) & (j < g))
        np.testing.assert_allclose(block.r_low[idx], full[i, j], atol=1e-6)
