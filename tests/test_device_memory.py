"""On a device the planner's prediction holds: what the arrays of a focus gene take at their peak
(measured as a device allocator would, ``backends.counting``) stays under the predicted peak,
and a smaller device gets a smaller plan rather than a larger peak."""

from __future__ import annotations

import pytest

from bootgpu.backends.counting import CountingBackend
from bootgpu.config import AnalysisConfig
from bootgpu.errors import BootgpuError
from bootgpu.expression_io import demo_expression_path, read_expression
from bootgpu.pipeline import analyse_focus
from bootgpu.planner import plan_batches, resolve_budget

N_GENES, B = 800, 200


@pytest.fixture(scope="module")
def values():
    return read_expression(demo_expression_path()).values[:N_GENES]


def _run(device_bytes: int, values, focus: int):
    backend = CountingBackend(device_bytes=device_bytes)
    cfg = AnalysisConfig(n_bootstrap=B, fdr_alpha=0.2)
    k_low, k_high = cfg.validate(values.shape[1])
    budget = resolve_budget(backend, None)  # a share of the device, as a run takes it
    plan = plan_batches(N_GENES, values.shape[1], k_low, k_high, B, budget, working_set_bytes=backend.working_set_bytes)
    expr = backend.to_device(values)
    with backend.track_peak() as peak:
        result = analyse_focus(backend, expr, focus, cfg, plan, k_low, k_high)
    return plan, result, peak.peak_bytes


@pytest.mark.parametrize("device_mib", [2048, 64, 24])
@pytest.mark.parametrize("focus", [1, 4])  # 1,711 and 25,948 selected edges
def test_device_peak_stays_under_the_prediction_and_the_budget(values, device_mib, focus):
    plan, result, peak = _run(device_mib << 20, values, focus)
    predicted = result.plan.predicted_peak_bytes
    assert result.edges["gene_i"].shape[0] > 1000  # the bootstrap has work
    assert peak <= predicted <= plan.budget_bytes, (peak, predicted, plan.budget_bytes)


def test_a_smaller_device_gets_a_smaller_plan_not_a_larger_peak(values):
    (big, big_result, big_peak), (small, small_result, small_peak) = (_run(m << 20, values, 4) for m in (2048, 24))
    assert small.rows_per_block < big.rows_per_block
    assert small_result.plan.edge_chunk <= big_result.plan.edge_chunk
    assert small_peak < big_peak and small_peak <= small.budget_bytes
    for key, value in big_result.edges.items():  # the same results either way
        assert value.tobytes() == small_result.edges[key].tobytes(), key


def test_a_device_too_small_is_refused_in_one_line(values):
    backend = CountingBackend(device_bytes=2 << 20)
    with pytest.raises(BootgpuError, match="too small for 800 genes x 128 samples"):
        plan_batches(N_GENES, values.shape[1], 25, 25, B, resolve_budget(backend, None))
