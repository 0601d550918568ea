"""analyse_focus equals the slow, independent reference (tests/reference.py: scipy spearmanr,
scipy t, statsmodels fdr_bh, explicit resampling) given the same bootstrap draws."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from bootgpu import pipeline
from bootgpu.backends import get_backend
from bootgpu.config import AnalysisConfig
from bootgpu.core.draws import draw_positions
from bootgpu.pipeline import analyse_focus
from bootgpu.results_schema import EDGE_FLOAT_FIELDS
from bootgpu.planner import plan_batches

sys.path.insert(0, str(Path(__file__).parent))
from reference import reference_focus  # noqa: E402

B = 30
NUMPY = get_backend("numpy")  # reused: BH edge p-values are cached per backend
# the engine stores float32: correlation-scale values to ~6e-8 absolute, p and q to ~6e-8 relative
R_LIKE = ("r_low", "r_high", "delta", "boot_mean", "boot_std", "ci_low", "ci_high", "bias")
P_LIKE = ("q_low", "q_high", "q_diff", "boot_p")
assert set(R_LIKE + P_LIKE) == set(EDGE_FLOAT_FIELDS)


def tied_matrix_with_constant_gene(n: int = 150) -> np.ndarray:
    """40 genes x ``n`` samples on a grid of 0.5 (heavy ties, the focus gene too), planted pairs of
    every change class, and gene 39 constant within the LOW group of focus gene 0."""
    rng = np.random.default_rng(21)
    values = rng.standard_normal((40, n))
    values[0] = np.round(values[0] * 2) / 2  # a tied focus gene: the split's tie rule matters
    order = np.argsort(values[0], kind="stable")
    low, high = order[:n // 5], order[-(n // 5):]
    plant = {(1, 2): (0.9, 0.0), (3, 4): (0.0, 0.9), (5, 6): (0.9, -0.9), (7, 8): (0.8, 0.99),
             (9, 10): (0.99, 0.8), (11, 12): (0.5, -0.5)}  # fmt: skip
    for (a, b), rhos in plant.items():
        for group, rho in zip((low, high), rhos):
            values[b, group] = rho * values[a, group] + np.sqrt(1 - rho**2) * values[b, group]
    values = np.round(values * 2) / 2
    values[39, low] = 0.0  # constant within LOW only
    return values


def run_both(values, focus, cfg: AnalysisConfig, plan_kw: dict):
    k_low, k_high = cfg.validate(values.shape[1])
    plan = plan_batches(values.shape[0], values.shape[1], k_low, k_high, cfg.n_bootstrap, 1 << 30, **plan_kw)
    got = analyse_focus(NUMPY, NUMPY.to_device(values), focus, cfg, plan, k_low, k_high)

    def draws(group, k, m):
        return draw_positions(np, cfg.seed, focus, group, np.arange(cfg.n_bootstrap), k, m)

    # the seed is in draws; networks and what is stored of every pair are not compared here
    network = ("seed", "min_effect", "corr_threshold", "ci_filter", "store")
    params = {key: value for key, value in cfg.as_dict().items() if key not in network}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        want = reference_focus(np.asarray(values), focus, draws=draws, **params)
    return got, want


def assert_matches_reference(got, want, selection):
    assert got.attrs == want["attrs"]
    np.testing.assert_array_equal(got.low_samples, want["low_samples"])
    np.testing.assert_array_equal(got.high_samples, want["high_samples"])
    ref = want["edges"]
    assert len(got.edges["gene_i"]) == want["attrs"][f"n_{selection}"] > 0
    for key in ("gene_i", "gene_j", "change"):
        np.testing.assert_array_equal(got.edges[key], ref[key], err_msg=key)
    for key in R_LIKE:
        np.testing.assert_allclose(got.edges[key], ref[key], rtol=1e-6, atol=1e-7, err_msg=key)
    for key in P_LIKE:
        np.testing.assert_allclose(got.edges[key], ref[key], rtol=1e-6, atol=0, err_msg=key)
    robust = (ref["ci_low"] > 0) | (ref["ci_high"] < 0)
    np.testing.assert_array_equal(got.edges["robust"], robust)


DEMO_GENES = 60
DEMO_FOCI = (4, 11)  # on 60 demo genes at fdr_alpha 0.2, each selects ~50-110 edges of 4 classes


@pytest.mark.parametrize("selection", ["sig_diff", "sig_edges"])
@pytest.mark.parametrize("focus", DEMO_FOCI)
def test_demo_slice_equals_reference(demo_values, focus, selection):
    cfg = AnalysisConfig(n_bootstrap=B, seed=7, fdr_alpha=0.2, edge_selection=selection)
    got, want = run_both(demo_values[:DEMO_GENES], focus, cfg, dict(rows_per_block=9, replicate_chunk=7, edge_chunk=11))
    assert_matches_reference(got, want, selection)


@pytest.mark.parametrize("selection", ["sig_diff", "sig_edges"])
def test_tied_matrix_with_constant_gene_equals_reference(selection):
    values = tied_matrix_with_constant_gene()
    cfg = AnalysisConfig(n_bootstrap=B, seed=3, fdr_alpha=0.1, edge_selection=selection)
    got, want = run_both(values, 0, cfg, dict(rows_per_block=4, replicate_chunk=8, edge_chunk=5))
    assert_matches_reference(got, want, selection)
    assert got.attrs["n_nan"] == 39  # gene 39 against every other gene is undefined in LOW
    classes = set(got.edges["change"].tolist())
    assert classes == ({0, 1, 2, 3, 4, 5} if selection == "sig_diff" else {1, 2, 3, 4, 5})


def force_joint_indices(monkeypatch) -> None:
    """analyse_focus keeps pairs as joint level indices (pipeline.JointPasses), as it does for
    small groups with many genes, however few the genes."""
    make = pipeline.make_pair_passes
    monkeypatch.setattr(pipeline, "make_pair_passes", lambda *args, **kw: make(*args, **{**kw, "joint": True}))


@pytest.mark.parametrize("selection", ["sig_diff", "sig_edges"])
@pytest.mark.parametrize("focus", DEMO_FOCI)
def test_demo_slice_with_joint_indices_equals_reference(demo_values, focus, selection, monkeypatch):
    force_joint_indices(monkeypatch)
    cfg = AnalysisConfig(n_bootstrap=B, seed=7, fdr_alpha=0.2, edge_selection=selection)
    got, want = run_both(demo_values[:DEMO_GENES], focus, cfg, dict(rows_per_block=9, replicate_chunk=7, edge_chunk=11))
    assert_matches_reference(got, want, selection)


@pytest.mark.parametrize("selection", ["sig_diff", "sig_edges"])
def test_tied_matrix_with_joint_indices_equals_reference(selection, monkeypatch):
    force_joint_indices(monkeypatch)
    values = tied_matrix_with_constant_gene(120)  # k = 24: 5.3 M cells
    cfg = AnalysisConfig(n_bootstrap=B, seed=3, fdr_alpha=0.1, edge_selection=selection)
    got, want = run_both(values, 0, cfg, dict(rows_per_block=4, replicate_chunk=8, edge_chunk=5))
    assert_matches_reference(got, want, selection)
    assert got.attrs["n_nan"] == 39


def test_demo_cases_differ_between_selections(demo_values):
    """Guards the cases above: in each, the two selections choose different edges; and among them
    some selected edges are not robust, so the comparison covers CIs on both sides of 0."""
    cfg = AnalysisConfig(n_bootstrap=B, seed=7, fdr_alpha=0.2)
    k_low, k_high = cfg.validate(128)
    plan = plan_batches(DEMO_GENES, 128, k_low, k_high, B, 1 << 30)
    results = [analyse_focus(NUMPY, demo_values[:DEMO_GENES], f, cfg, plan, k_low, k_high) for f in DEMO_FOCI]
    for got in results:
        assert 0 < got.attrs["n_sig_edges"] < got.attrs["n_sig_diff"]
        assert got.attrs["n_robust"] > 0
    assert any(got.attrs["n_robust"] < got.attrs["n_sig_diff"] for got in results)


def test_no_selected_edge_gives_empty_typed_edges_and_reference_attrs():
    values = np.random.default_rng(5).standard_normal((25, 80))  # independent genes: nothing differs
    cfg = AnalysisConfig(n_bootstrap=B, seed=2, fdr_alpha=0.05)
    got, want = run_both(values, 0, cfg, {})
    assert got.attrs == want["attrs"] and got.attrs["n_sig_diff"] == 0 and got.attrs["n_robust"] == 0
    assert set(got.edges) == {"gene_i", "gene_j", "change", "robust", *EDGE_FLOAT_FIELDS}
    for key, array in got.edges.items():
        assert array.shape == (0,)
        assert array.dtype == {"gene_i": np.int32, "gene_j": np.int32, "change": np.int8, "robust": bool}.get(key, np.float32)


def sparse_gene_matrix() -> np.ndarray:
    """Gene 2 is zero in LOW except in the 4 samples where gene 1 is highest, so many resamples
    see it constant; in HIGH it follows -gene 1.  Edge (1, 2) is selected."""
    rng = np.random.default_rng(0)
    values = rng.standard_normal((20, 150))
    order = np.argsort(values[0], kind="stable")
    low, high = order[:30], order[-30:]
    values[2, low] = 0.0
    top = low[np.argsort(values[1, low])[-4:]]
    values[2, top] = values[1, top]
    values[2, high] = -values[1, high] + 0.1 * rng.standard_normal(30)
    return values


def test_edge_with_resample_constant_gene_has_nan_bootstrap_summary():
    cfg = AnalysisConfig(n_bootstrap=50, seed=1, fdr_alpha=0.2)
    got, want = run_both(sparse_gene_matrix(), 0, cfg, {})
    assert got.attrs == want["attrs"]
    e = list(zip(got.edges["gene_i"].tolist(), got.edges["gene_j"].tolist())).index((1, 2))
    for key in ("gene_i", "gene_j", "change"):
        np.testing.assert_array_equal(got.edges[key], want["edges"][key])
    for key in ("r_low", "r_high", "delta", "q_low", "q_high", "q_diff"):
        np.testing.assert_allclose(got.edges[key], want["edges"][key], rtol=1e-6, atol=1e-7, err_msg=key)
    # scipy gives NaN for a constant resample, so mean, std and the CI are NaN in both
    for key in ("boot_mean", "boot_std", "ci_low", "ci_high", "bias"):
        assert np.isnan(want["edges"][key][e]) and np.isnan(got.edges[key][e]), key
    # bootgpu also makes boot_p NaN (documented in core/bootstrap.py: "An edge with a NaN replicate
    # gets NaN statistics"); the reference's sign counts ignore NaN replicates and give a number.
    assert np.isnan(got.edges["boot_p"][e]) and not np.isnan(want["edges"]["boot_p"][e])
    assert not got.edges["robust"][e]
