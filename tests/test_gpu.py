"""GPU checks: the core on CuPy equals NumPy.  Needs only numpy, scipy and cupy (the GPU image's
packages), so ``scripts/gpu-check`` can run this file alone.  Skipped cleanly without a device."""

from __future__ import annotations

import numpy as np
import pytest

from bootgpu.backends.cupy_backend import cupy_unusable_reason

_reason = cupy_unusable_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_reason is not None, reason=f"no usable CUDA device: {_reason}")]


@pytest.fixture(scope="module")
def cupy_backend():
    from bootgpu.backends import get_backend

    return get_backend("cupy")


def test_cupy_draws_are_the_numpy_bytes(cupy_backend):
    from bootgpu.core.draws import draw_positions

    xp = cupy_backend.xp
    got = cupy_backend.to_host(draw_positions(xp, 123, 7, 1, xp.arange(300, dtype=xp.int64), 187, 149))
    want = draw_positions(np, 123, 7, 1, np.arange(300, dtype=np.int64), 187, 149)
    assert got.dtype == want.dtype and np.array_equal(got, want)


def test_cupy_resample_ranks_equal_scipy(cupy_backend):
    from scipy.stats import rankdata

    from bootgpu.core.draws import draw_counts, draw_positions
    from bootgpu.core.ranks import doubled_centred_ranks, group_order

    rng = np.random.default_rng(1)
    values = rng.integers(0, 6, size=(40, 30)).astype(np.float64)  # heavy ties
    xp = cupy_backend.xp
    pos = draw_positions(np, 3, 0, 0, np.arange(8), 30, 24)
    counts = draw_counts(np, pos, 30).T
    d = cupy_backend.to_host(doubled_centred_ranks(xp, group_order(xp, xp.asarray(values)), xp.asarray(counts), 24))
    for r in range(8):
        ref = 2 * rankdata(values[:, pos[r]], axis=1) - 25
        np.testing.assert_array_equal(d[:, :, r].T[:, pos[r]], ref)


def test_cupy_focus_gene_equals_numpy(cupy_backend):
    from bootgpu.backends import get_backend
    from bootgpu.config import AnalysisConfig
    from bootgpu.pipeline import analyse_focus
    from bootgpu.results_schema import EDGE_FLOAT_FIELDS
    from bootgpu.planner import plan_batches
    from bootgpu.synthetic import planted_matrix

    data = planted_matrix(300, 200, 5)
    cfg = AnalysisConfig(n_bootstrap=100)
    k_low, k_high = cfg.validate(200)
    plan = plan_batches(300, 200, k_low, k_high, 100, 1 << 30, replicate_chunk=17, edge_chunk=7, rows_per_block=33)
    numpy_be = get_backend("numpy")
    want = analyse_focus(numpy_be, data.values, 0, cfg, plan, k_low, k_high)
    got = analyse_focus(cupy_backend, cupy_backend.to_device(data.values), 0, cfg, plan, k_low, k_high)
    assert got.attrs == want.attrs and want.attrs["n_sig_diff"] > 0
    for key in ("gene_i", "gene_j", "change"):
        assert np.array_equal(got.edges[key], want.edges[key]), key
    for key in EDGE_FLOAT_FIELDS:
        np.testing.assert_allclose(got.edges[key], want.edges[key], rtol=1e-6, atol=1e-6, err_msg=key)


def test_cupy_peak_tracker_sees_an_allocation(cupy_backend):
    xp = cupy_backend.xp
    with cupy_backend.track_peak() as peak:
        block = xp.ones((64, 1 << 20), dtype=xp.float32)  # 256 MiB
        del block
    assert peak.peak_bytes >= 256 << 20


def test_cupy_memory_info_reports_device_memory(cupy_backend):
    free, total = cupy_backend.memory_info()
    assert 0 < free <= total


def test_cupy_budget_is_device_free_memory_and_pool_limit(cupy_backend):
    import cupy

    from bootgpu.planner import resolve_budget

    free, _ = cupy.cuda.runtime.memGetInfo()
    room, limit = cupy_backend.available_memory()
    assert limit == "free device memory" and room >= free
    assert resolve_budget(cupy_backend, None) <= room
    pool = cupy.get_default_memory_pool()
    old = pool.get_limit()
    try:
        pool.set_limit(size=1 << 30)
        room, limit = cupy_backend.available_memory()
        assert limit == "CuPy memory pool limit" and room <= 1 << 30
    finally:
        pool.set_limit(size=old)


def test_cupy_run_under_a_pool_limit_below_the_unbatched_need(cupy_backend):
    """A 3,000-gene focus gene in one pair block needs about 1 GB for pair space; under a 512 MiB pool
    limit the planner's blocks make it fit, and the result equals a generous-budget run."""
    import cupy

    from bootgpu.config import AnalysisConfig
    from bootgpu.pipeline import analyse_focus
    from bootgpu.planner import plan_batches, resolve_budget
    from bootgpu.synthetic import planted_matrix

    data = planted_matrix(3000, 300, 10)
    cfg = AnalysisConfig(n_bootstrap=200)
    k_low, k_high = cfg.validate(300)
    expr = cupy_backend.to_device(data.values)
    want = analyse_focus(cupy_backend, expr, 0, cfg, plan_batches(3000, 300, k_low, k_high, 200, 16 << 30), k_low, k_high)
    pool = cupy.get_default_memory_pool()
    old = pool.get_limit()
    try:
        pool.free_all_blocks()
        pool.set_limit(size=512 << 20)
        plan = plan_batches(3000, 300, k_low, k_high, 200, resolve_budget(cupy_backend, None))
        assert plan.rows_per_block < 3000
        got = analyse_focus(cupy_backend, expr, 0, cfg, plan, k_low, k_high)
    finally:
        pool.set_limit(size=old)
    assert got.attrs == want.attrs
    for key in got.edges:
        assert np.array_equal(got.edges[key], want.edges[key], equal_nan=True), key


def test_cupy_modular_focus_gene_equals_numpy(cupy_backend, monkeypatch):
    """~100,000 edges in modules: every edge gathered by CuPy's pair_dots kernel, summaries of whole
    edge chunks, against NumPy's dense tiles (forced: with int16 dots it would not take them) and
    cache-sized pieces."""
    from bootgpu.backends import get_backend
    from bootgpu.config import AnalysisConfig
    from bootgpu.core.bootstrap import DENSE_DENSITY
    from bootgpu.pipeline import analyse_focus
    from bootgpu.planner import plan_batches
    from bootgpu.synthetic import modular_matrix

    values = modular_matrix(1500, 60, (400, 300, 200, 100), seed=1).values
    cfg = AnalysisConfig(n_bootstrap=100)
    k_low, k_high = cfg.validate(60)
    results = []
    numpy = get_backend("numpy")
    monkeypatch.setattr(numpy, "dense_density", lambda m: DENSE_DENSITY)
    for backend in (numpy, cupy_backend):
        plan = plan_batches(1500, 60, k_low, k_high, 100, 2 << 30, **backend.plan_facts())
        results.append(analyse_focus(backend, backend.to_device(values), 0, cfg, plan, k_low, k_high))
    want, got = results
    assert want.attrs == got.attrs and want.edges["gene_i"].shape[0] > 50_000
    for key, value in want.edges.items():
        if value.dtype.kind == "f":
            np.testing.assert_allclose(got.edges[key], value, rtol=0, atol=1e-6, err_msg=key)
        else:
            np.testing.assert_array_equal(got.edges[key], value, err_msg=key)


@pytest.mark.parametrize("processes", ["1", "0"])
def test_cupy_study_equals_numpy(tmp_path, processes):
    """A CuPy study -- one process driving the GPU with host processes building networks and
    writing parts (--processes 1), or several processes sharing the GPU (the default) -- against a
    NumPy one: the same datasets and tables."""
    import h5py

    from bootgpu.cli import main
    from bootgpu.expression_io import demo_expression_path

    outs = {}
    for name in ("numpy", "cupy"):
        outs[name] = tmp_path / name
        assert main(["run", "--expr", str(demo_expression_path()), "--out", str(outs[name]), "--focus", "#0:6",
                     "--n-bootstrap", "100", "--backend", name, "--processes", processes]) == 0
    with h5py.File(outs["numpy"] / "results.h5") as a, h5py.File(outs["cupy"] / "results.h5") as b:
        names = []
        a.visit(names.append)
        for name in names:
            if isinstance(a[name], h5py.Dataset) and a[name].dtype.kind in "fiub":
                x, y = a[name][()], b[name][()]
                if x.dtype.kind == "f":
                    np.testing.assert_allclose(y, x, rtol=0, atol=1e-6, err_msg=name)
                else:
                    np.testing.assert_array_equal(y, x, err_msg=name)
    assert (outs["numpy"] / "rewiring_hubs.tsv").read_text() == (outs["cupy"] / "rewiring_hubs.tsv").read_text()
