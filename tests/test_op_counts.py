"""The array operations one focus gene issues on a device do not grow with its number of edges.

On a GPU every operation is a kernel launch (~10 us of host time on an H200 through CuPy), so a
focus gene whose bootstrap summaries or pair blocks were a Python loop over pieces cost seconds of
launches.  ``CountingBackend`` runs the core on array_api_strict with a GPU backend's facts and
counts each namespace call and array operator; these tests hold the count of a focus gene with
~100 selected edges and one with ~100,000 within 2x of each other, and check that this path gives
the NumPy backend's results.
"""

from __future__ import annotations

import numpy as np
import pytest

from bootgpu.backends import get_backend
from bootgpu.backends.counting import CountingBackend
from bootgpu.config import AnalysisConfig
from bootgpu.core.bootstrap import DENSE_DENSITY
from bootgpu.pipeline import analyse_focus
from bootgpu.planner import plan_batches
from bootgpu.synthetic import modular_matrix

N_SAMPLES, B = 60, 20
CASES = {"few": ((16, 12), 300), "many": ((400, 300, 200, 100), 1500)}  # module sizes, genes


@pytest.fixture(scope="module")
def counted():
    """Per case: (edges, OpCounts, FocusResult) of focus gene 0 on the counting backend."""
    out = {}
    backend = CountingBackend()
    cfg = AnalysisConfig(n_bootstrap=B)
    k_low, k_high = cfg.validate(N_SAMPLES)
    for name, (sizes, n_genes) in CASES.items():
        values = modular_matrix(n_genes, N_SAMPLES, sizes, seed=1).values
        plan = plan_batches(n_genes, N_SAMPLES, k_low, k_high, B, 2 << 30, working_set_bytes=0)
        expr = backend.to_device(values)
        with backend.counting(sites=True) as counts:
            result = analyse_focus(backend, expr, 0, cfg, plan, k_low, k_high)
        out[name] = (values, counts, result, plan)
    return out


def test_cases_span_three_orders_of_magnitude_of_edges(counted):
    few, many = (counted[name][2].edges["gene_i"].shape[0] for name in ("few", "many"))
    assert 50 <= few <= 200, few
    assert 80_000 <= many <= 150_000, many


def test_operations_do_not_grow_with_edges(counted):
    few, many = counted["few"][1], counted["many"][1]
    assert many.ops <= 2 * few.ops, (few.ops, many.ops, many.top_sites(15))
    assert many.syncs <= 2 * few.syncs, (few.syncs, many.syncs)
    assert few.ops > 100  # the counter sees the core's operations at all


@pytest.mark.parametrize("dense", [False, True])
def test_counting_path_equals_numpy(counted, monkeypatch, dense):
    """The device path (whole-chunk summaries, every edge gathered, no dense tiles) gives the NumPy
    backend's bytes, which takes the host path (cache-sized pieces; its own choice of ways, with
    int16 dots no dense tiles, and with dense tile products forced)."""
    values, _, result, plan = counted["many"]
    numpy = get_backend("numpy")
    products = []
    if dense:
        monkeypatch.setattr(numpy, "dense_density", lambda m: DENSE_DENSITY)
        block_dots = numpy.block_dots
        monkeypatch.setattr(numpy, "block_dots", lambda *a: products.append(1) or block_dots(*a))
    cfg = AnalysisConfig(n_bootstrap=B)
    k_low, k_high = cfg.validate(N_SAMPLES)
    host_plan = plan_batches(values.shape[0], N_SAMPLES, k_low, k_high, B, 2 << 30,
                             working_set_bytes=numpy.working_set_bytes, threads=2)
    expected = analyse_focus(numpy, numpy.to_device(values), 0, cfg, host_plan, k_low, k_high)
    assert bool(products) == dense  # the dense tiles' products ran where forced, only there
    assert expected.attrs == result.attrs
    for key, value in expected.edges.items():
        np.testing.assert_array_equal(np.asarray(result.edges[key]), value, err_msg=key)
