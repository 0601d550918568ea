"""bootgpu.estimate: the time estimate of `bootgpu plan` against a measured run (issue 15 item 4)."""

from __future__ import annotations

import numpy as np
import pytest

from bootgpu.backends import get_backend
from bootgpu.config import AnalysisConfig
from bootgpu.estimate import TimeEstimate, calibrate, format_duration
from bootgpu.expression_io import demo_expression_path, read_expression
from bootgpu.pipeline import analyse_focus
from bootgpu.planner import plan_batches, resolve_budget

DEMO_FOCUS_COUNT = 10  # as `bootgpu run --demo`: the 10 most variable probes


def _plan(backend, n_genes, n_samples, cfg):
    k_low, k_high = cfg.validate(n_samples)
    return plan_batches(n_genes, n_samples, k_low, k_high, cfg.n_bootstrap, resolve_budget(backend, None),
                        bootstrap_frac=cfg.bootstrap_frac, **backend.plan_facts(),
                        threads=backend.host_threads(), store=cfg.store)


def _estimate(**fields) -> TimeEstimate:
    base = dict(backend="numpy", n_genes=1000, n_bootstrap=1000, pair_seconds=0.3, bootstrap_seconds=0.2,
                edges_per_focus=500.0, threads=4, calibration_seconds=3.0, calibrated_genes=512, calibrated_foci=6,
                source="your data", assumptions=("something",))
    return TimeEstimate(**{**base, **fields})


def test_data_estimate_samples_focus_genes_and_gives_ranges():
    """With data the estimate times whole focus genes of it (their real selected edges) and says a
    range; how close it comes to a run is a benchmark (scripts/estimate_check.py, docs/benchmarks.md),
    not a test: a machine's load would decide it."""
    expr = read_expression(demo_expression_path())
    backend, cfg = get_backend("numpy"), AnalysisConfig(n_bootstrap=200)
    plan = _plan(backend, expr.n_genes, expr.n_samples, cfg)
    focus = [3, 17, 42, 100, 512, 777, 1500, 1999]
    est = calibrate(backend, expr.n_genes, expr.n_samples, cfg, plan, values=expr.values, focus=focus, seconds=0.01)
    assert est.source == "your data" and len(est.samples) == 4 == len(est.sample_edges)  # SAMPLE_MIN in 0.01 s
    k_low, k_high = cfg.validate(expr.n_samples)
    rng = np.random.default_rng(0)  # the same draw: the sampled focus genes' selected edges are theirs
    drawn = rng.permutation(np.asarray(focus))[:4]
    want = [analyse_focus(backend, expr.values, int(g), cfg, plan, k_low, k_high).edges["gene_i"].shape[0] for g in drawn]
    assert list(est.sample_edges) == want
    assert all(t > 0 for t in est.samples)
    lo, hi = est.per_focus_range()
    assert lo <= float(np.median(est.samples)) <= hi
    s_lo, s_hi = est.study_range(40)
    assert s_lo <= est.study_seconds(40) * 1.5 and s_hi >= est.study_seconds(40) / 1.5 and s_lo <= s_hi
    lines = est.lines(n_focus=40, tasks=4)
    assert "80% between" in lines[0] and "from 4 focus genes of your data" in lines[0]
    assert "selected edges:" in lines[1] and "40 focus genes:" in lines[2]
    # the study's 80% range is shown where it is wider than 5% (how wide depends on the sampled
    # focus genes' times, so the test follows the range rather than expecting one)
    assert ("(80%:" in lines[2]) == (s_hi > s_lo * 1.05)
    assert "on 4 Grid Engine tasks" in lines[3] and "(the longest task)" in lines[3]


def test_study_range_of_a_heavy_tail_is_wide_and_holds_the_mean():
    est = _estimate(samples=(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 40.0), sample_edges=(1,) * 7 + (10,))
    assert est.per_focus_seconds == pytest.approx(5.875)
    lo, hi = est.study_range(100)
    assert lo < est.study_seconds(100) < hi and hi / lo > 1.5
    task_lo, task_hi = est.study_range(100, tasks=10)
    assert task_hi > est.study_seconds(100, tasks=10)  # the longest of ten tasks: above the average task


def test_study_seconds_arithmetic():
    est = _estimate(pair_seconds=0.3, bootstrap_seconds=0.2, threads=4)
    assert est.per_focus_seconds == pytest.approx(0.5)
    assert est.study_seconds(10) == pytest.approx(5.0)
    assert est.study_seconds(0) == 0
    assert est.study_seconds(10, tasks=3) == pytest.approx(4 * 0.5)  # the largest shard: ceil(10 / 3) = 4
    assert est.study_seconds(10, tasks=10) == pytest.approx(0.5)
    assert est.study_seconds(10, tasks=50) == pytest.approx(0.5)  # more tasks than focus genes
    assert est.study_seconds(10, tasks=2, slots=4) == pytest.approx(2.5)  # as many slots as threads timed
    assert est.study_seconds(10, tasks=2, slots=1) == pytest.approx(10.0)  # 4 times fewer: 4 times slower
    assert est.study_seconds(10, tasks=2, slots=16) == pytest.approx(2.5)  # more: no faster
    assert _estimate(backend="cupy", threads=1).study_seconds(10, tasks=2, slots=1) == pytest.approx(2.5)
    for bad in ((-1, 1, None), (1, 0, None), (1, 1, 0)):
        with pytest.raises(ValueError):
            est.study_seconds(*bad)


def test_lines_are_plain_words():
    lines = _estimate(n_genes=8763, pair_seconds=0.5, bootstrap_seconds=0.1).lines(tasks=16)
    assert lines[0].startswith("time: about 0.6 s per focus gene on numpy (4 threads)")
    assert "512 of 8,763 genes of your data" in lines[0]
    assert lines[2] == "  8,763 focus genes (every gene): ~88 min on this machine"  # no sample: no range
    assert lines[3] == "  on 16 Grid Engine tasks: ~5 min (the longest task)"
    assert lines[4] == "  assumes something"
    one = _estimate().lines(n_focus=1)
    assert "1 focus gene:" in one[2] and "Grid Engine" not in one[2]


@pytest.mark.parametrize("seconds, text", [(0.04, "0.04 s"), (4.53, "4.5 s"), (42, "42 s"), (360, "6 min"),
                                           (5400, "1.5 h"), (3 * 86400, "3.0 days")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_calibrate_without_data_uses_a_synthetic_matrix():
    backend, cfg = get_backend("numpy"), AnalysisConfig(n_bootstrap=50)
    n_genes, n_samples = 3000, 60
    est = calibrate(backend, n_genes, n_samples, cfg, _plan(backend, n_genes, n_samples, cfg), seconds=0.5)
    # how many genes the ladder reaches in its seconds depends on the machine's load: not asserted
    assert est.source == "a synthetic matrix" and 0 < est.calibrated_genes <= n_genes
    assert est.pair_seconds > 0 and est.bootstrap_seconds > 0
    assert est.edges_per_focus == pytest.approx(4e-4 * n_genes * (n_genes - 1) / 2)
    assert any("--expr FILE" in a for a in est.assumptions)
    assert any("gene pairs" in a for a in est.assumptions) == (est.calibrated_genes < n_genes)  # extrapolated
    with pytest.raises(ValueError):
        calibrate(backend, 10, n_samples, cfg, _plan(backend, 10, n_samples, cfg), values=np.zeros((9, n_samples)))
