"""Pair tests equal their textbook forms: Student-t for r = 0, Fisher-Z for r_high = r_low."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bootgpu.core.significance import R_CLIP, FisherTest, TTest

R_VALUES = np.array([
    0.0, 1e-12, 1e-6, 0.05, 0.3, 0.5, 0.77, 0.9, 0.99, 0.999, 1 - 1e-6, 1 - 1e-9, 1 - 1e-12, 1.0,
    -1e-9, -0.4, -0.95, -(1 - 1e-8), -1.0,
])  # fmt: skip


def student_t_pvalue(r, k):
    df = k - 2
    with np.errstate(divide="ignore"):
        t = np.abs(r) * np.sqrt(df / ((1 - r) * (1 + r)))
    return 2 * stats.t.sf(t, df)


def fisher_pvalue(r_low, r_high, k_low, k_high):
    z_low = np.arctanh(np.clip(r_low, -0.9999, 0.9999))
    z_high = np.arctanh(np.clip(r_high, -0.9999, 0.9999))
    se = np.sqrt(1 / (k_low - 3) + 1 / (k_high - 3))
    return 2 * stats.norm.sf(np.abs(z_high - z_low) / se)


@pytest.mark.parametrize("k", [4, 5, 12, 25, 60, 187, 1000])
def test_t_test_pvalue_equals_two_sided_student_t(xp_backend, k):
    test = TTest(k)
    r_dev = xp_backend.to_device(R_VALUES)
    s = test.statistic(xp_backend.xp, r_dev, r_dev, "low")
    p = xp_backend.to_host(test.pvalue(xp_backend, s))
    want = student_t_pvalue(R_VALUES, k)
    np.testing.assert_allclose(p, want, rtol=1e-6, atol=0)
    assert p[0] == 1.0 and p[R_VALUES == 1.0][0] == 0.0


def test_t_test_statistic_is_abs_r_of_the_named_group():
    test = TTest(10)
    r_low, r_high = np.array([-0.5, 0.2]), np.array([0.1, -0.7])
    np.testing.assert_array_equal(test.statistic(np, r_low, r_high, "low"), [0.5, 0.2])
    np.testing.assert_array_equal(test.statistic(np, r_low, r_high, "high"), [0.1, 0.7])


def test_t_test_pvalue_is_non_increasing_in_the_statistic(xp_backend):
    s = np.linspace(0.0, 1.0, 20001)
    for k in (5, 60):
        p = xp_backend.to_host(TTest(k).pvalue(xp_backend, xp_backend.to_device(s)))
        assert np.all(np.diff(p) <= 0)


@pytest.mark.parametrize("k_low,k_high", [(4, 4), (25, 25), (60, 31), (200, 1000)])
def test_fisher_pvalue_equals_normal_tail_of_z_difference_with_clip(xp_backend, k_low, k_high):
    rng = np.random.default_rng(k_low + k_high)
    edge = np.array([1.0, -1.0, 0.99995, -0.99999, R_CLIP, -R_CLIP, 0.0, 0.5])
    r_low = np.concatenate([rng.uniform(-1, 1, 300), edge, edge[::-1]])
    r_high = np.concatenate([rng.uniform(-1, 1, 300), edge[::-1], edge])
    test = FisherTest(k_low, k_high)
    xp = xp_backend.xp
    s = test.statistic(xp, xp_backend.to_device(r_low), xp_backend.to_device(r_high))
    p = xp_backend.to_host(test.pvalue(xp_backend, s))
    np.testing.assert_allclose(p, fisher_pvalue(r_low, r_high, k_low, k_high), rtol=1e-6, atol=0)
    s = xp_backend.to_host(s)
    # r = -1 vs +1 reaches s_max (np.arctanh and math.atanh may differ by an ulp; bins clip that)
    assert np.all(s <= test.s_max * (1 + 1e-14)) and s.max() == pytest.approx(test.s_max, rel=1e-14)


def test_fisher_clip_makes_beyond_clip_correlations_equal():
    test = FisherTest(30, 40)
    s = test.statistic(np, np.array([1.0, 0.99999, R_CLIP, 0.999]), np.array([0.0, 0.0, 0.0, 0.0]))
    assert s[0] == s[1] == s[2] == pytest.approx(np.arctanh(0.9999), rel=1e-15)
    assert s[3] < s[2]
    assert test.se == pytest.approx(np.sqrt(1 / 27 + 1 / 37), rel=1e-15)
