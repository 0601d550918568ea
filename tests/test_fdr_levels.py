"""BH over every gene pair, as the pipeline computes it (t-tests counted by Spearman level, pairs
with tied genes through the binned refinement, Fisher z from tables; and with joint indices, where
the Fisher test is counted by pair of levels), equals statsmodels' ``fdr_bh``: exactly when
statsmodels is given the same p-values, and to rounding against an independent reference (scipy
ranks and p-values), on heavily tied small groups and on the ALL data."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from bootgpu import pipeline
from bootgpu.backends import get_backend
from bootgpu.config import AnalysisConfig
from bootgpu.core.fdr import n_signed_levels, rank_sumsq, spearman_levels
from bootgpu.core.ranks import doubled_centred_ranks, group_order
from bootgpu.core.significance import z_transform
from bootgpu.core.spearman import (
    JOINT_MAX_CELLS, TIED_PAIR_BYTES, JointBlocks, PairBlocks, correlation, group_ranks, joint_cells,
)
from bootgpu.core.split import split_samples
from bootgpu.expression_io import demo_expression_path, read_expression
from bootgpu.pipeline import (
    JointPasses, PairPasses, analyse_focus, make_pair_passes, pair_tests, q_values, select_edges,
)
from bootgpu.planner import pair_value_bytes, plan_batches

NUMPY = get_backend("numpy")
TESTS = ("low", "high", "diff")
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "all_leukemia.tsv.gz"


def pipeline_bh(backend, values_low, values_high, alpha, rows=10**9, cache=True, threads=1, joint=False):
    """The pipeline's passes over every pair: thresholds s*, and q, r and statistics of every valid
    pair (condensed order), with the refinements asked for the q of all of them.  ``joint``: the
    passes keep joint level indices (``JointPasses``) whatever the number of pairs, else levels
    per group (``PairPasses``)."""
    xp = backend.xp
    low = group_ranks(xp, backend.to_device(values_low))
    high = group_ranks(xp, backend.to_device(values_high))
    passes = make_pair_passes(backend, PairBlocks(xp, low, high, rows), pair_tests(low.k, high.k), cache, threads,
                              joint=joint)
    assert isinstance(passes, JointPasses if joint else PairPasses)
    selection = select_edges(backend, passes, alpha, "sig_diff")
    parts = [(stats.r("low"), stats.r("high"), {name: stats[name] for name in TESTS}) for _, _, stats in passes]
    every = {"r_low": xp.concat([p[0] for p in parts]), "r_high": xp.concat([p[1] for p in parts])}
    every.update({f"s_{name}": xp.concat([p[2][name] for p in parts]) for name in TESTS})
    q = q_values(backend, dataclasses.replace(selection, edges=every))
    host = {key: backend.to_host(value) for key, value in {**every, **q}.items()}
    return selection.thresholds, host, selection.streams


def reference_r(values):
    """Spearman of every pair (condensed order) from scipy's average ranks; NaN for a constant gene."""
    ranks = stats.rankdata(values, axis=1)
    centred = ranks - ranks.mean(axis=1, keepdims=True)
    norm = np.sqrt((centred**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (centred @ centred.T) / np.outer(norm, norm)
    iu, ju = np.triu_indices(values.shape[0], 1)
    return r[iu, ju]


def reference_pvalues(r_low, r_high, k_low, k_high):
    df_l, df_h = k_low - 2, k_high - 2
    r_low, r_high = np.clip(r_low, -1, 1), np.clip(r_high, -1, 1)  # floating point can pass |r| = 1
    with np.errstate(divide="ignore", invalid="ignore"):
        t_l = np.abs(r_low) * np.sqrt(df_l / ((1 - r_low) * (1 + r_low)))
        t_h = np.abs(r_high) * np.sqrt(df_h / ((1 - r_high) * (1 + r_high)))
    z = np.abs(np.arctanh(np.clip(r_high, -0.9999, 0.9999)) - np.arctanh(np.clip(r_low, -0.9999, 0.9999)))
    se = math.sqrt(1 / (k_low - 3) + 1 / (k_high - 3))
    return {"low": 2 * stats.t.sf(t_l, df_l), "high": 2 * stats.t.sf(t_h, df_h), "diff": 2 * stats.norm.sf(z / se)}


def assert_bh_equals_statsmodels(values_low, values_high, alpha, backend=NUMPY, **plan):
    """Returns the pipeline's result after checking it against statsmodels and the reference."""
    k_low, k_high = values_low.shape[1], values_high.shape[1]
    s_star, got, streams = pipeline_bh(backend, values_low, values_high, alpha, **plan)
    ref_low, ref_high = reference_r(values_low), reference_r(values_high)
    valid = np.isfinite(ref_low) & np.isfinite(ref_high)
    np.testing.assert_allclose(got["r_low"], ref_low[valid], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["r_high"], ref_high[valid], rtol=0, atol=1e-12)
    p_ref = reference_pvalues(ref_low[valid], ref_high[valid], k_low, k_high)
    for name in TESTS:
        # the same p-values (the test's own p of the pipeline's statistics): exact against a full
        # sort by the statistic, and to the last bits against statsmodels, which orders by p (p
        # rounded to float64 can be out of order by an ulp between two nearby statistics)
        s = got[f"s_{name}"]
        p_same = NUMPY.to_host(streams[name].test.pvalue(NUMPY, NUMPY.to_device(s)))
        np.testing.assert_array_equal(got[f"q_{name}"], bh_sorted_by_statistic(s, p_same), err_msg=name)
        q_same = multipletests(p_same, alpha=alpha, method="fdr_bh")[1]
        np.testing.assert_allclose(got[f"q_{name}"], q_same, rtol=1e-14, atol=0, err_msg=name)
        np.testing.assert_array_equal(s >= s_star[name], q_same < alpha, err_msg=name)
        # independent: scipy ranks and p-values
        q_ref = multipletests(p_ref[name], alpha=alpha, method="fdr_bh")[1]
        np.testing.assert_allclose(got[f"q_{name}"], q_ref, rtol=1e-6, atol=1e-12, err_msg=name)  # |r| = 1 is 1 - 2e-16 in floats
        np.testing.assert_array_equal(got[f"s_{name}"] >= s_star[name], q_ref < alpha, err_msg=name)
    return s_star, got, streams


def bh_sorted_by_statistic(s, p):
    """Benjamini-Hochberg by a full sort: pairs by descending s, F = #{s' >= s}, q = running
    minimum of p m / F from the largest F down, capped at 1."""
    m = s.size
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    f = np.searchsorted(-s_sorted, -s_sorted, side="right")
    q_sorted = np.minimum(np.minimum.accumulate((p[order] / (f / m))[::-1])[::-1], 1.0)
    q = np.empty(m)
    q[order] = q_sorted
    return q


def tied_groups(k_low: int, k_high: int, n_genes: int = 90, seed: int = 0, n_tied: int = 60):
    """Small groups with heavy ties: the last ``n_tied`` genes on a 3-value or a ~6-value grid,
    the others continuous (tie-free); copies of genes (every statistic with them repeats), near
    copies and negated ones (planted changes between the groups); one gene constant in LOW.
    (With many tied genes most blocks keep r, with few they keep levels and the tied pairs' r.)"""
    rng = np.random.default_rng(seed)
    out = []
    for k in (k_low, k_high):
        first, half = n_genes - n_tied, n_tied // 2
        v = rng.standard_normal((n_genes, k))
        v[first:first + half] = rng.integers(0, 3, (half, k))
        v[first + half:] = np.round(v[first + half:] * 2)
        out.append(v)
    low, high = out
    for a in range(0, 12, 3):  # strong pairs within one group only
        low[a + 1] = low[a] + 0.05 * rng.standard_normal(k_low)
        high[a + 2] = -high[a] + 0.05 * rng.standard_normal(k_high)
    low[40], high[40] = low[35], high[35]  # tied gene copied: r = 1 in both groups
    low[45:55], high[50:60] = low[44], high[49]  # copies of tied genes: every pair with them repeats 10x
    low[20:25], high[15:18] = low[19], high[14]  # and of tie-free ones
    low[n_genes - 1] = 1.0
    return low, high


@pytest.mark.parametrize("k_low,k_high", [(5, 5), (6, 9), (11, 11), (13, 30), (25, 25), (30, 22)])
@pytest.mark.parametrize("alpha", [0.05, 0.7])
@pytest.mark.parametrize("n_tied", [60, 8])
@pytest.mark.parametrize("joint", [False, True])
def test_bh_equals_statsmodels_on_heavily_tied_small_groups(k_low, k_high, alpha, n_tied, joint):
    low, high = tied_groups(k_low, k_high, seed=k_low * 100 + k_high, n_tied=n_tied)
    _, got, streams = assert_bh_equals_statsmodels(low, high, alpha, joint=joint)
    # the case is what it claims: ties in both groups, many tied statistics, a BH decision to make
    for name in ("low", "high"):
        assert streams[name].exact is not None and int(streams[name].counts.sum()) > 0  # some pairs by bin
        assert np.unique(got[f"s_{name}"], return_counts=True)[1].max() >= 45
    assert 0 < np.sum(got["q_diff"] < 0.7) < got["q_diff"].size


@pytest.mark.parametrize("plan", [
    dict(rows=1, cache=False), dict(rows=7, cache=True, threads=3), dict(rows=13, cache=False, threads=2),
])  # fmt: skip
@pytest.mark.parametrize("n_tied", [60, 8])
@pytest.mark.parametrize("joint", [False, True])
def test_tied_bh_is_the_same_bytes_for_any_blocks_threads_and_backend(plan, xp_backend, n_tied, joint):
    """... and for either way of keeping pairs (levels per group, joint indices)."""
    low, high = tied_groups(12, 17, seed=4, n_tied=n_tied)
    want_star, want, _ = pipeline_bh(NUMPY, low, high, 0.2)
    got_star, got, _ = assert_bh_equals_statsmodels(low, high, 0.2, backend=xp_backend, joint=joint, **plan)
    assert got_star == want_star
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@pytest.mark.parametrize("joint", [False, True])
def test_tie_free_t_tests_need_no_refinement_pass(joint):
    """Without ties every t-test statistic is known from level counts: the threshold and q-value
    refinements of the t-tests pick no pair (and find every value exactly); with joint indices the
    Fisher test's too."""
    rng = np.random.default_rng(3)
    low, high = rng.standard_normal((70, 14)), rng.standard_normal((70, 20))
    low[1], high[2] = low[0] * 2 + 0.1 * rng.standard_normal(14), -high[0]
    _, got, streams = assert_bh_equals_statsmodels(low, high, 0.5, joint=joint)
    for name in ("low", "high", "diff") if joint else ("low", "high"):
        stream = streams[name]
        assert int(stream.counts.sum()) == 0 and int(stream.level_counts.sum()) == got["r_low"].size
        ref = stream.refinement(stream.bins_for_queries(stream.bins(NUMPY.to_device(got[f"s_{name}"]))))
        assert not ref.needs_pass
        assert not stream.refinement(stream.bins_for_threshold(0.5)).needs_pass


@pytest.mark.parametrize("k", [4, 5, 6, 7, 8])
def test_level_tables_hold_every_tie_free_correlation_exactly(k):
    """Every permutation of k samples against the identity: r is the table's r at the pair's level,
    bit for bit, and z is the table's z; the levels cover the table."""
    table = spearman_levels(NUMPY, k)
    assert table.n == n_signed_levels(k) == rank_sumsq(k) // 2 + 1
    perms = np.array(list(itertools.permutations(range(k))), dtype=np.float64)
    values = np.vstack([np.arange(k, dtype=np.float64)[None, :], perms])
    grp = group_ranks(np, values)
    assert np.all(grp.sumsq == rank_sumsq(k))
    dots = grp.d[1:].astype(np.float64) @ grp.d[0].astype(np.float64)
    r = correlation(np, dots, grp.sumsq[1:], grp.sumsq[:1])
    levels = table.levels(np, r)
    np.testing.assert_array_equal(table.r(np)[levels], r)
    np.testing.assert_array_equal(table.z[levels], z_transform(np, r))
    assert set(np.unique(r)) <= set(table.r(np)) and levels.min() == 0 and levels.max() == table.n - 1


@pytest.mark.parametrize("k", [25, 57, 58, 187, 232])
def test_level_tables_at_large_k(k):
    rng = np.random.default_rng(k)
    values = rng.standard_normal((400, k))
    values[1] = values[0] + 0.01 * rng.standard_normal(k)
    grp = group_ranks(np, values)
    d = grp.d.astype(np.float64)
    r = correlation(np, d @ d[0], grp.sumsq, grp.sumsq[:1])
    table = spearman_levels(NUMPY, k)
    np.testing.assert_array_equal(table.r(np)[table.levels(np, r)], r)
    assert spearman_levels(NUMPY, 233) is None  # beyond LEVELS_MAX: r kept, the binned path


def test_doubled_ranks_sum_of_squares_marks_ties():
    """The pipeline tells tie-free genes by |d|^2 = (k^3 - k)/3; any tie lowers it."""
    values = np.array([[1.0, 2, 3, 4, 5, 6], [1, 1, 2, 3, 4, 5], [3, 3, 3, 1, 2, 2], [7, 7, 7, 7, 7, 7]])
    order = group_order(np, values)
    d = doubled_centred_ranks(np, order, np.ones((6, 1), dtype=np.int64), 6)[..., 0].T
    assert ((d.astype(np.int64) ** 2).sum(axis=1) == [rank_sumsq(6), 68, 60, 0]).all()  # by hand: 2 rank - 7


def force_pair_passes(monkeypatch, joint: bool) -> None:
    """analyse_focus keeps pairs as joint indices (True) or levels per group (False), whatever
    the number of pairs."""
    make = pipeline.make_pair_passes
    monkeypatch.setattr(pipeline, "make_pair_passes", lambda *args, **kw: make(*args, **{**kw, "joint": joint}))


def all_leukemia_subset(n_genes: int = 300):
    """Focus gene 0 of the ALL matrix (the shared full file, else the embedded 2,000-probe subset)
    with its LOW/HIGH samples, on the genes tied in either group plus the first probes."""
    expr = read_expression(SHARED if SHARED.exists() else demo_expression_path())
    values = expr.values
    k = int(values.shape[1] * 0.2)
    low, high = (np.asarray(g) for g in split_samples(np, values[0], k, k))
    tied = [g for g in range(values.shape[0])
            if any(np.unique(values[g, idx]).size < k for idx in (low, high))]
    genes = list(dict.fromkeys([0, *tied[:40], *range(1, n_genes)]))[:n_genes]
    return values[genes], low, high, len(tied)


@pytest.mark.parametrize("joint", [False, True])
def test_bh_equals_statsmodels_on_all_leukemia_subset(joint):
    values, low, high, n_tied = all_leukemia_subset()
    for alpha in (0.05, 0.7):
        s_star, got, streams = assert_bh_equals_statsmodels(values[:, low], values[:, high], alpha, joint=joint)
        assert 0 < np.sum(got["q_diff"] < alpha) < got["q_diff"].size
    if SHARED.exists():
        assert n_tied > 0 and int(streams["low"].counts.sum()) > 0  # pairs with ties went by bin


@pytest.mark.parametrize("joint", [False, True])
def test_all_leukemia_subset_pipeline_edges_and_q_equal_reference(joint, monkeypatch):
    """The pipeline end to end on the ALL subset: selected edges are the reference's sig_diff pairs
    and their stored q-values are statsmodels' (scipy p-values), to float32."""
    force_pair_passes(monkeypatch, joint)
    values, low, high, _ = all_leukemia_subset()
    cfg = AnalysisConfig(n_bootstrap=10, seed=1, fdr_alpha=0.2)
    k_low, k_high = cfg.validate(values.shape[1])
    plan = plan_batches(values.shape[0], values.shape[1], k_low, k_high, 10, 1 << 30, rows_per_block=37)
    result = analyse_focus(NUMPY, values, 0, cfg, plan, k_low, k_high)
    r_low, r_high = reference_r(values[:, low]), reference_r(values[:, high])
    iu, ju = np.triu_indices(values.shape[0], 1)
    valid = np.isfinite(r_low) & np.isfinite(r_high)
    p = reference_pvalues(r_low[valid], r_high[valid], k_low, k_high)
    q = {name: multipletests(p[name], method="fdr_bh")[1] for name in TESTS}
    chosen = q["diff"] < cfg.fdr_alpha
    assert chosen.sum() > 10
    np.testing.assert_array_equal(result.edges["gene_i"], iu[valid][chosen])
    np.testing.assert_array_equal(result.edges["gene_j"], ju[valid][chosen])
    for name in TESTS:
        np.testing.assert_allclose(result.edges[f"q_{name}"], q[name][chosen], rtol=1e-6)


def test_pair_cache_keeps_levels_and_r_only_of_pairs_with_a_tied_gene():
    """What the planner's bytes per cached pair rely on: on the ALL subset (k = 25, where fewer
    than half of any block's pairs have a tied gene) every cached block holds int16 levels and
    float64 r only for its pairs with a tied gene, and those r are the reference's."""
    values, low, high, _ = all_leukemia_subset(120)
    xp = np
    lo, hi = group_ranks(xp, values[:, low]), group_ranks(xp, values[:, high])
    tests = pair_tests(lo.k, hi.k)
    passes = PairPasses(NUMPY, PairBlocks(xp, lo, hi, 17), tests, True, 2)
    rows = [(stats.r("low"), stats.r("high")) for _, _, stats in passes]
    ref = {"low": reference_r(values[:, low]), "high": reference_r(values[:, high])}
    n_tied = 0
    for name, k in (("low", 0), ("high", 1)):
        np.testing.assert_allclose(np.concatenate([r[k] for r in rows]), ref[name], rtol=0, atol=1e-12)
        for item in passes._cached:
            g = item[name]
            assert g.r is None and g.levels.dtype == np.int16 and g.sentinel == rank_sumsq(25) // 2 + 1
            assert g.tied_r.shape[0] == int(np.count_nonzero(g.levels == g.sentinel))
            n_tied += g.tied_r.shape[0]
    if SHARED.exists():
        assert n_tied > 0


def test_joint_cache_keeps_int32_indices_and_the_tied_pairs_only(monkeypatch):
    """What the planner's bytes per cached pair rely on with joint indices: every cached block
    holds one int32 index a pair and ``TiedPairs`` of the pairs with a tied gene only, and the
    indices are a * n_high + b of the pairs' levels (the reference's r).  The ALL subset is
    chosen for its tied genes (a fifth of its pairs have one): beyond the plan's allowance, so it
    is cached only when the allowance is raised; focus gene 0 of the whole ALL matrix is within it."""
    values, low, high, _ = all_leukemia_subset(120)
    lo, hi = group_ranks(np, values[:, low]), group_ranks(np, values[:, high])
    tests = pair_tests(lo.k, hi.k)
    if SHARED.exists():
        assert not JointPasses(NUMPY, PairBlocks(np, lo, hi, 17), tests, True, 2).cache
    monkeypatch.setattr(pipeline, "JOINT_CACHE_ALLOWANCE", TIED_PAIR_BYTES)
    passes = JointPasses(NUMPY, PairBlocks(np, lo, hi, 17), tests, True, 2)
    ref = {"low": reference_r(values[:, low]), "high": reference_r(values[:, high])}
    got = {name: np.concatenate([stats.r(name) for _, _, stats in passes]) for name in ("low", "high")}
    for name in ("low", "high"):
        np.testing.assert_allclose(got[name], ref[name], rtol=0, atol=1e-12)
    level = {name: np.round((ref[name] + 1) * rank_sumsq(25) / 4).astype(np.int64) for name in ("low", "high")}
    n_tied, offset = 0, 0
    for item in passes._cached:
        joint, t = item["joint"], item["tied"]
        assert joint.dtype == np.int32
        n = joint.shape[0]
        want = level["low"][offset:offset + n] * passes.blocks.n_high + level["high"][offset:offset + n]
        untied = np.ones(n, dtype=bool)
        if t is not None:
            untied[t.pairs.pos] = False
            n_tied += t.pairs.pos.shape[0]
        np.testing.assert_array_equal(joint[untied], want[untied])
        offset += n
    assert offset == passes.pairs.n_pairs and n_tied == passes.blocks.n_tied_pairs
    if SHARED.exists():
        monkeypatch.undo()
        assert n_tied > 0
        every = read_expression(SHARED).values
        low, high = (np.asarray(g) for g in split_samples(np, every[0], 25, 25))
        lo, hi = group_ranks(np, every[:, low]), group_ranks(np, every[:, high])
        passes = JointPasses(NUMPY, PairBlocks(np, lo, hi, 166), tests, True, 2)
        assert passes.cache and passes.cache_bytes() <= passes.pairs.n_pairs * pair_value_bytes(25, 25, 12625)[1]


@pytest.mark.parametrize("rows", [1, 6, 1000])
def test_joint_blocks_one_product_and_two_give_the_same_indices(xp_backend, rows):
    """The one-product form (IEEE float32 backends) and the per-group form give the same bytes, and
    the pairs with a tied gene are exactly those the genes' flags mark."""
    low, high = tied_groups(9, 14, seed=2, n_tied=20)
    xp = xp_backend.xp
    pairs = PairBlocks(xp, group_ranks(xp, xp_backend.to_device(low)), group_ranks(xp, xp_backend.to_device(high)), rows)
    one, two = JointBlocks(xp, pairs, True), JointBlocks(xp, pairs, False)
    assert one.single and not two.single
    for start in pairs.starts():
        a, b = one.block(start), two.block(start)
        assert xp_backend.to_host(a.joint).tobytes() == xp_backend.to_host(b.joint).tobytes()
        stop = min(start + rows, pairs.n_genes - 1)
        flags = xp_backend.to_host(pairs.pair_mask(one.tied_any, start, stop))
        pos = np.zeros(0, dtype=np.int64) if a.tied is None else xp_backend.to_host(a.tied.pos)
        np.testing.assert_array_equal(pos, np.nonzero(flags)[0])
        only = one.block(start, tied_only=True)
        assert only.joint is None and (only.tied is None) == (a.tied is None)


def test_joint_indices_are_used_where_the_shapes_say_so():
    """Small groups with at least a pair a cell (ALL: 12,625 genes, k = 25): joint indices, and
    the planner's bytes a cached pair follow; fewer genes (the demo's 2,000), more cells or large
    groups: levels per group or r."""
    assert joint_cells(12625, 25, 25) == (rank_sumsq(25) // 2 + 1) ** 2
    assert joint_cells(2000, 25, 25) == 0 and joint_cells(8763, 187, 187) == 0
    assert joint_cells(10**6, 30, 30) == 0 and (rank_sumsq(30) // 2 + 1) ** 2 > JOINT_MAX_CELLS
    assert pair_value_bytes(25, 25, 12625)[1] < pair_value_bytes(25, 25, 2000)[1] == 13


def test_joint_and_level_passes_give_the_same_bytes_on_all_leukemia(monkeypatch):
    """analyse_focus on 2,500 genes of ALL (or the embedded subset) both ways, sig_edges at a loose
    alpha (edges of every kind, q of all three tests): identical results."""
    values = read_expression(SHARED if SHARED.exists() else demo_expression_path()).values[:2500]
    cfg = AnalysisConfig(n_bootstrap=5, seed=3, fdr_alpha=0.3, edge_selection="sig_edges")
    k_low, k_high = cfg.validate(values.shape[1])
    plan = plan_batches(values.shape[0], values.shape[1], k_low, k_high, 5, 1 << 30, rows_per_block=150, threads=2)
    results = []
    for joint in (False, True):
        force_pair_passes(monkeypatch, joint)
        results.append(analyse_focus(NUMPY, values, 0, cfg, plan, k_low, k_high))
    want, got = results
    assert got.attrs == want.attrs and want.attrs["n_sig_edges"] > 1000
    for key in want.edges:
        assert got.edges[key].tobytes() == want.edges[key].tobytes(), key


@pytest.mark.parametrize("n_bins, part_rows", [(1 << 12, 0), (1 << 13, 31), (1 << 20, 1), (1 << 12, 120)])
def test_exact_joint_bins_from_one_order_equal_binning_every_cell(n_bins, part_rows, monkeypatch):
    """The Fisher test's exact source sorts the cells once by s and finds each stream's bins in
    that order: its per-bin totals and the cells it picks for chosen bins equal binning every cell
    directly (np.bincount weighted by the counts; the cells of the chosen bins), for any number of
    bins, with the order made for another number of bins, the totals made in parts of
    ``part_rows`` rows of the table (0: in one) as well."""
    from bootgpu.core.fdr import BHStream, N_BINS, exact_joint

    k_low, k_high = 9, 11
    low, high = spearman_levels(NUMPY, k_low), spearman_levels(NUMPY, k_high)
    test = pair_tests(k_low, k_high)["diff"]
    exact_joint(NUMPY, BHStream(NUMPY, test, "diff", N_BINS // 2, joint=(low, high)), low, high)  # another n_bins first
    stream = BHStream(NUMPY, test, "diff", n_bins, joint=(low, high))
    table = stream.exact
    monkeypatch.setattr(NUMPY, "working_set_bytes", part_rows * 8 * table.n_high)
    assert len(table.row_parts(NUMPY.working_set_bytes)) == (-(-table.n_low // part_rows) if part_rows else 1) > 0
    rng = np.random.default_rng(5)
    counts = rng.integers(0, 4, table.n) * (rng.random(table.n) < 0.6)
    counts[rng.integers(0, table.n, 5)] = 3 << 40  # sums far beyond int32, exact in int64
    stream.set_level_counts(counts)
    s = table.values(np).reshape(-1)
    cell_bins = stream.bins(s)
    # per bin, in int64: the counts of each bin's range of the sorted cells, by their running sum
    assert np.all(np.diff(cell_bins[table.order]) >= 0)
    ends = np.concatenate([[0], np.cumsum(counts[table.order], dtype=np.int64)])
    want_totals = ends[table.bin_starts[1:]] - ends[table.bin_starts[:-1]]
    totals = table.bin_totals(stream)
    assert totals.dtype == np.int64 and int(totals.max()) >= 3 << 40
    np.testing.assert_array_equal(totals, want_totals)
    occupied = np.unique(cell_bins[counts > 0])
    assert [int(totals[t]) for t in occupied] == [sum(int(c) for c in counts[cell_bins == t]) for t in occupied]
    chosen = np.zeros(n_bins, dtype=bool)
    chosen[np.unique(cell_bins)[::3]] = True
    values, mult = table.picked(stream, chosen)
    want = np.flatnonzero(chosen[cell_bins] & (counts > 0))
    got_order, want_order = np.lexsort((mult, values)), np.lexsort((counts[want], s[want]))
    np.testing.assert_array_equal(values[got_order], s[want][want_order])
    np.testing.assert_array_equal(mult[got_order], counts[want][want_order])
