"""The result of a focus gene is the same bytes whatever the batch plan and on every host backend."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bootgpu.backends import get_backend
from bootgpu.config import AnalysisConfig
from bootgpu.errors import BootgpuError
from bootgpu.pipeline import analyse_focus
from bootgpu.planner import Plan, plan_batches

B = 20
NUMPY, STRICT = get_backend("numpy"), get_backend("strict")  # reused: BH edge p-values are cached per backend
ALL = 10**9  # larger than any dimension: one batch


def tied_with_constant() -> np.ndarray:
    """30 genes x 100 samples on a coarse grid (ties), planted changes, gene 29 constant in LOW."""
    rng = np.random.default_rng(9)
    values = rng.standard_normal((30, 100))
    order = np.argsort(values[0], kind="stable")
    low, high = order[:20], order[-20:]
    for a in range(1, 13, 2):  # LOW-only and HIGH-only correlations between genes a and a + 1
        group = low if a % 4 == 1 else high
        values[a + 1, group] = 0.95 * values[a, group] + 0.3 * values[a + 1, group]
    values = np.round(values * 2) / 2
    values[29, np.argsort(values[0], kind="stable")[:20]] = 1.0
    return values


def cases(demo_values):
    return {
        "demo": (demo_values[:60], 11, AnalysisConfig(n_bootstrap=B, seed=5, fdr_alpha=0.2)),
        "ties": (tied_with_constant(), 0, AnalysisConfig(n_bootstrap=B, seed=1, fdr_alpha=0.3)),
    }


PLANS = {  # (rows_per_block, cache_pairs, replicate_chunk, edge_chunk[, threads])
    "one_batch": (ALL, True, ALL, ALL),
    "threads_cached": (5, True, 3, 4, 3),
    "threads_recomputed": (7, False, 2, ALL, 2),
    "smallest": (1, False, 1, 1),
    "mixed_a": (50, True, 7, 3),
    "mixed_b": (7, False, ALL, 3),
    "mixed_c": (ALL, False, 7, 1),
    "mixed_d": (3, True, 1, ALL),
}


def run(backend, values, focus, cfg, plan: Plan):
    k_low, k_high = cfg.validate(values.shape[1])
    return analyse_focus(backend, backend.to_device(values), focus, cfg, plan, k_low, k_high)


def make_plan(rows, cache, reps, edges, threads=1) -> Plan:
    """A plan with these batch sizes and threads (pair blocks and replicate chunks computed at
    once), through the planner's overrides (cache_pairs set after)."""
    plan = plan_batches(200, 200, 40, 40, B, 1 << 30, rows_per_block=rows, replicate_chunk=reps, edge_chunk=edges,
                        threads=threads)
    return dataclasses.replace(plan, cache_pairs=cache)


def assert_identical(a, b):
    assert a.attrs == b.attrs
    assert a.low_samples.tobytes() == b.low_samples.tobytes()
    assert a.high_samples.tobytes() == b.high_samples.tobytes()
    assert a.edges.keys() == b.edges.keys()
    for key in a.edges:
        assert a.edges[key].dtype == b.edges[key].dtype, key
        assert a.edges[key].tobytes() == b.edges[key].tobytes(), key


@pytest.mark.parametrize("case", ["demo", "ties"])
def test_result_bytes_identical_for_every_batch_plan(demo_values, case):
    values, focus, cfg = cases(demo_values)[case]
    backend = NUMPY
    results = {name: run(backend, values, focus, cfg, make_plan(*p)) for name, p in PLANS.items()}
    assert results["one_batch"].edges["gene_i"].size >= 5  # something to compare
    for name, res in results.items():
        assert_identical(res, results["one_batch"])


@pytest.mark.parametrize("case", ["demo", "ties"])
@pytest.mark.parametrize("plan", ["one_batch", "mixed_a"])
def test_result_bytes_identical_on_numpy_and_strict(demo_values, case, plan):
    values, focus, cfg = cases(demo_values)[case]
    want = run(NUMPY, values, focus, cfg, make_plan(*PLANS[plan]))
    got = run(STRICT, values, focus, cfg, make_plan(*PLANS[plan]))
    assert_identical(got, want)


def test_planner_overrides_give_the_requested_batches():
    for name, (rows, cache, reps, edges, *threads) in PLANS.items():
        plan = make_plan(rows, cache, reps, edges, *threads)
        assert (plan.rows_per_block, plan.cache_pairs, plan.replicate_chunk, plan.edge_chunk) == (rows, cache, reps, edges)
        assert plan.threads == (threads[0] if threads else 1)


def test_planned_batches_give_the_same_bytes_as_one_batch(demo_values):
    values, focus, cfg = cases(demo_values)["demo"]
    backend = NUMPY
    k_low, k_high = cfg.validate(values.shape[1])
    planned = plan_batches(values.shape[0], values.shape[1], k_low, k_high, B, 1 << 30,
                           rows_per_block=4, replicate_chunk=6, edge_chunk=5)
    assert_identical(run(backend, values, focus, cfg, planned), run(backend, values, focus, cfg, make_plan(*PLANS["one_batch"])))


def test_planner_chosen_batches_for_small_budgets_give_the_same_bytes(demo_values):
    """Whatever the planner picks (and however it re-sizes replicate chunks per edge chunk) for
    budgets from tight to ample, the result is that of one batch."""
    values, focus, cfg = cases(demo_values)["demo"]
    k_low, k_high = cfg.validate(values.shape[1])
    want = run(NUMPY, values, focus, cfg, make_plan(*PLANS["one_batch"]))
    plans = []
    for budget in (1 << 20, 7 << 18, 2 << 20, 3 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 28):
        try:
            plans.append(plan_batches(values.shape[0], values.shape[1], k_low, k_high, B, budget,
                                      working_set_bytes=NUMPY.working_set_bytes))
        except BootgpuError:
            continue  # below the planner's minimum
    assert any(p.rows_per_block < values.shape[0] - 1 or p.replicate_chunk < B for p in plans)
    for plan in plans:
        assert_identical(run(NUMPY, values, focus, cfg, plan), want)


def test_repeated_runs_give_the_same_bytes(demo_values):
    values, focus, cfg = cases(demo_values)["demo"]
    backend = NUMPY
    plan = make_plan(*PLANS["mixed_a"])
    assert_identical(run(backend, values, focus, cfg, plan), run(backend, values, focus, cfg, plan))


def test_seed_changes_only_the_bootstrap_fields(demo_values):
    values, focus, cfg = cases(demo_values)["demo"]
    backend = NUMPY
    plan = make_plan(*PLANS["one_batch"])
    a = run(backend, values, focus, cfg, plan)
    b = run(backend, values, focus, AnalysisConfig(**{**cfg.as_dict(), "seed": cfg.seed + 1}), plan)
    for key in ("gene_i", "gene_j", "r_low", "r_high", "delta", "q_low", "q_high", "q_diff", "change"):
        assert a.edges[key].tobytes() == b.edges[key].tobytes(), key
    for key in ("boot_mean", "boot_std", "ci_low", "ci_high"):
        assert not np.array_equal(a.edges[key], b.edges[key]), key
