"""Streamed, binned Benjamini-Hochberg equals statsmodels' fdr_bh on the full set of p-values,
whatever the number of bins and however the statistics arrive in blocks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from bootgpu.backends import get_backend
from bootgpu.core.fdr import N_BINS, BHStream
from bootgpu.core.significance import FisherTest, TTest

K = 25  # t-test group size
FISHER = FisherTest(25, 31)
NUMPY = get_backend("numpy")  # reused: per-bin edge p-values are cached per backend


def t_pvalue(s, k=K):
    df = k - 2
    with np.errstate(divide="ignore"):
        t = s * np.sqrt(df / ((1 - s) * (1 + s)))
    return 2 * stats.t.sf(t, df)


def fisher_pvalue(s):
    return 2 * stats.norm.sf(s / np.sqrt(1 / (25 - 3) + 1 / (31 - 3)))


def datasets():
    """name -> (test, statistics s >= 0, p-values computed independently with scipy)."""
    rng = np.random.default_rng(11)
    out = {}
    null = np.abs(np.tanh(rng.standard_normal(20000) / np.sqrt(K - 3)))
    signal = rng.uniform(0.55, 0.99, 400)
    s = rng.permutation(np.concatenate([null, signal, [0.0, 1.0, 1.0]]))
    out["mixed"] = (TTest(K), s)
    out["ties"] = (TTest(K), rng.integers(0, 41, 15000) / 40)  # 41 distinct values
    out["bin_edges"] = (TTest(K), rng.integers(0, 65, 15000) / 64)  # on the edges of 16/64/65536 bins
    out["all_null"] = (TTest(K), rng.uniform(0.0, 0.1, 5000))
    out["all_significant"] = (TTest(K), rng.uniform(0.85, 1.0, 5000))
    r_low = np.concatenate([np.tanh(rng.standard_normal(12000) * 0.4), [1.0, -1.0, 0.5]])
    r_high = np.concatenate([np.tanh(rng.standard_normal(12000) * 0.4), [-1.0, -1.0, 0.5]])
    r_high[:300] = -r_low[:300] * 0.9  # some real differences
    out["fisher"] = (FISHER, FISHER.statistic(np, r_low, r_high))
    return {name: (test, s, t_pvalue(s) if isinstance(test, TTest) else fisher_pvalue(s))
            for name, (test, s) in out.items()}


DATA = datasets()


def split(s, n_blocks, seed):
    """``s`` cut at random places into ``n_blocks`` consecutive blocks (empty blocks allowed)."""
    if n_blocks == 1:
        return [s]
    cuts = np.sort(np.random.default_rng(seed).integers(0, s.size + 1, n_blocks - 1))
    cuts[0] = cuts[1] if n_blocks > 2 else cuts[0]  # at least one empty block when possible
    return np.split(s, cuts)


def streamed_bh(backend, test, blocks, alpha, n_bins, query):
    """The two passes the pipeline makes: threshold s*, then q of the ``query`` statistics."""
    dev = [backend.to_device(b) for b in blocks]
    stream = BHStream(backend, test, "x", n_bins=n_bins)
    for b in dev:
        stream.count(b)
    ref = stream.refinement(stream.bins_for_threshold(alpha))
    for b in dev:
        ref.gather(b)
    s_star = ref.finish().threshold(alpha)
    q_dev = backend.to_device(query)
    qref = stream.refinement(stream.bins_for_queries(stream.bins(q_dev)))
    for b in dev:
        qref.gather(b)
    q = backend.to_host(qref.finish().q_values(q_dev))
    return s_star, q, stream


def queries(s, q_sm, alpha, kind):
    rng = np.random.default_rng(3)
    if kind == "all":
        return np.arange(s.size)
    if kind == "random":
        return rng.choice(s.size, 60, replace=False)
    return np.flatnonzero(q_sm < alpha)  # the selected ones, as the pipeline asks


@pytest.mark.parametrize("name", list(DATA))
@pytest.mark.parametrize("n_bins,n_blocks,alpha", [
    (16, 1, 0.05), (16, 7, 0.2), (64, 1, 0.2), (64, 7, 0.05), (1 << 16, 1, 0.05), (1 << 16, 7, 0.2),
    (N_BINS, 7, 0.05),  # the default resolution
])  # fmt: skip
def test_streamed_bh_equals_statsmodels_fdr_bh(name, n_bins, n_blocks, alpha):
    test, s, p = DATA[name]
    backend = NUMPY
    q_sm = multipletests(p, alpha=alpha, method="fdr_bh")[1]
    for kind in ("all", "random", "significant"):
        idx = queries(s, q_sm, alpha, kind)
        s_star, q, _ = streamed_bh(backend, test, split(s, n_blocks, seed=n_bins), alpha, n_bins, s[idx])
        np.testing.assert_array_equal(s >= s_star, q_sm < alpha)  # significance is q < alpha
        np.testing.assert_allclose(q, q_sm[idx], rtol=1e-6, atol=0)
        np.testing.assert_array_equal(q < alpha, q_sm[idx] < alpha)


def test_datasets_cover_no_selection_all_selected_and_ties():
    """Guards the test data: the edge cases above are really present."""
    q = {name: multipletests(p, method="fdr_bh")[1] for name, (_, _, p) in DATA.items()}
    assert not np.any(q["all_null"] < 0.05)
    assert np.all(q["all_significant"] < 0.05)
    assert 0 < np.sum(q["mixed"] < 0.05) < q["mixed"].size
    assert 0 < np.sum(q["fisher"] < 0.05) < q["fisher"].size
    assert np.unique(DATA["ties"][1]).size == 41 and 0 < np.sum(q["ties"] < 0.05) < q["ties"].size


def test_no_significant_pair_gives_infinite_threshold():
    test, s, _ = DATA["all_null"]
    s_star, _, _ = streamed_bh(NUMPY, test, [s], 0.05, N_BINS, s[:3])
    assert s_star == math.inf


@pytest.mark.parametrize("name", list(DATA))
def test_bh_result_identical_for_any_bins_and_blocks(name):
    test, s, _ = DATA[name]
    backend = NUMPY
    idx = np.random.default_rng(1).choice(s.size, 200, replace=False)
    results = []
    for n_bins in (16, 64, 1 << 16, N_BINS):
        for n_blocks in (1, 3, 20):
            s_star, q, _ = streamed_bh(backend, test, split(s, n_blocks, seed=n_blocks), 0.05, n_bins, s[idx])
            results.append((s_star, q.tobytes()))
    assert all(r == results[0] for r in results)


def test_bh_identical_on_numpy_and_strict_backends(xp_backend):
    test, s, p = DATA["mixed"]
    idx = np.random.default_rng(2).choice(s.size, 300, replace=False)
    blocks = split(s, 5, seed=0)
    want = streamed_bh(NUMPY, test, blocks, 0.05, N_BINS, s[idx])
    got = streamed_bh(xp_backend, test, blocks, 0.05, N_BINS, s[idx])
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])


def test_fine_bins_refine_only_a_small_part_for_the_threshold():
    """The point of the bins: with the default resolution, the threshold pass gathers few pairs."""
    test, s, _ = DATA["mixed"]
    _, _, stream = streamed_bh(NUMPY, test, [s], 0.05, N_BINS, s[:1])
    gathered = NUMPY.to_host(stream.counts)[NUMPY.to_host(stream.bins_for_threshold(0.05))].sum()
    assert 0 < gathered < 0.05 * s.size
