"""Backends: CuPy is never imported unless asked for, a missing or broken device gives one clear line,
host memory facts are real, and the extra kernels equal scipy/numpy on every backend."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import scipy.special

from bootgpu.core.spearman import joint_rect
from bootgpu.backends import BACKEND_NAMES, REGISTRY, get_backend
from bootgpu.backends.cupy_backend import cupy_unusable_reason
from bootgpu.config import AnalysisConfig
from bootgpu.errors import BootgpuError
from bootgpu.pipeline import analyse_focus
from bootgpu.planner import plan_batches

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(REPO, "src")
CUPY_USABLE = cupy_unusable_reason() is None

# Stand-ins for a CuPy install, put first on sys.path: one that records being imported, one that
# fails to import with a multi-line banner (as CuPy does when the CUDA libraries are missing), and
# ones that import but find no device / a broken driver.
FAKE_CUPY = {
    "records_import": "import os\nopen(os.environ['CUPY_MARKER'], 'w').write('imported')\n",
    "import_fails": "raise ImportError('\\n' + '=' * 40 + '\\nFailed to import CuPy.\\n\\nlibcuda.so.1: "
                    "cannot open shared object file\\n' + '=' * 40)\n",
    "no_device": "class runtime:\n    @staticmethod\n    def getDeviceCount():\n        return 0\n"
                 "class cuda:\n    runtime = runtime\n",
    "driver_error": "class runtime:\n    @staticmethod\n    def getDeviceCount():\n"
                    "        raise RuntimeError('cudaErrorInsufficientDriver: CUDA driver version is "
                    "insufficient\\nsecond line')\nclass cuda:\n    runtime = runtime\n",
}


@pytest.fixture
def fake_cupy(tmp_path, monkeypatch):
    """Install a named fake ``cupy`` for this test only."""

    def install(kind: str):
        (tmp_path / "cupy.py").write_text(FAKE_CUPY[kind])
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, "cupy", raising=False)
        return tmp_path

    yield install
    sys.modules.pop("cupy", None)


def run_python(code: str, extra_path: str | None = None, env_extra: dict | None = None):
    env = dict(os.environ, **(env_extra or {}))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, SRC, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)


def test_importing_bootgpu_and_backends_does_not_import_cupy(tmp_path):
    (tmp_path / "cupy.py").write_text(FAKE_CUPY["records_import"])
    marker = tmp_path / "marker"
    code = """
        import sys
        import bootgpu, bootgpu.backends, bootgpu.pipeline, bootgpu.planner, bootgpu.config
        import bootgpu.core.bootstrap, bootgpu.core.fdr, bootgpu.core.spearman
        from bootgpu.backends import get_backend
        xp = get_backend("numpy").xp
        get_backend("strict")
        print("cupy" in sys.modules)
    """
    out = run_python(code, str(tmp_path), {"CUPY_MARKER": str(marker)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert not marker.exists()


def test_the_fake_cupy_would_reveal_an_import(tmp_path):
    """The check above can fail: asking for the auto backend does import (our stand-in) CuPy."""
    (tmp_path / "cupy.py").write_text(FAKE_CUPY["records_import"])
    marker = tmp_path / "marker"
    out = run_python("from bootgpu.backends import get_backend\nget_backend('auto')\n", str(tmp_path),
                     {"CUPY_MARKER": str(marker)})
    assert out.returncode == 0, out.stderr
    assert marker.exists()


@pytest.mark.skipif(CUPY_USABLE, reason="a CUDA device is usable here")
def test_cupy_backend_without_device_raises_one_line_bootgpu_error():
    with pytest.raises(BootgpuError) as err:
        get_backend("cupy")
    message = str(err.value)
    assert "\n" not in message and message.startswith("--backend cupy is not usable: ")


@pytest.mark.parametrize("kind,expected", [
    ("no_device", "no CUDA device is visible"),
    ("driver_error", "CUDA driver/runtime error: cudaErrorInsufficientDriver: CUDA driver version is insufficient"),
])  # fmt: skip
def test_cupy_without_usable_device_gives_one_line_reason(fake_cupy, kind, expected):
    fake_cupy(kind)
    assert cupy_unusable_reason() == expected
    with pytest.raises(BootgpuError) as err:
        get_backend("cupy")
    assert str(err.value) == f"--backend cupy is not usable: {expected}"


def test_cupy_that_fails_to_import_gives_one_line_reason(fake_cupy):
    fake_cupy("import_fails")
    reason = cupy_unusable_reason()
    assert reason is not None and "\n" not in reason and "not installed" not in reason
    with pytest.raises(BootgpuError) as err:
        get_backend("cupy")
    assert "\n" not in str(err.value)


def test_auto_backend_announces_numpy_and_why_without_a_device(fake_cupy):
    fake_cupy("no_device")
    lines = []
    backend = get_backend("auto", announce=lines.append)
    assert backend.name == "numpy"
    assert lines == ["backend auto: using numpy (cupy not usable: no CUDA device is visible)"]


def test_auto_backend_announces_its_choice_here():
    lines = []
    backend = get_backend("auto", announce=lines.append)
    assert len(lines) == 1 and lines[0].startswith(f"backend auto: using {backend.name}")
    assert backend.name == ("cupy" if CUPY_USABLE else "numpy")
    get_backend("auto")  # announce is optional


def test_unknown_backend_name_raises_bootgpu_error_listing_choices():
    with pytest.raises(BootgpuError, match="unknown backend 'torch'; choose one of auto, numpy, cupy, strict"):
        get_backend("torch")
    assert set(BACKEND_NAMES) == {"auto", "numpy", "cupy", "strict"}


@pytest.mark.parametrize("name", ["numpy", "strict"])
def test_track_peak_reports_at_least_an_allocation_kept_past_the_block(name):
    backend = get_backend(name)
    size = 256 << 20
    with backend.track_peak() as peak:
        kept = np.ones(size // 8)
    assert peak.peak_bytes >= size
    assert peak.peak_bytes < 2 * size + (64 << 20)
    del kept


def test_track_peak_sees_an_allocation_freed_inside_the_block():
    backend = get_backend("numpy")
    size = 256 << 20
    with backend.track_peak() as peak:
        tmp = np.ones(size // 8)
        deadline = time.monotonic() + 60  # wait for the sampler to see it, however loaded the machine
        while peak.peak_bytes < 0.95 * size and time.monotonic() < deadline:
            time.sleep(0.005)
        del tmp
    assert peak.peak_bytes >= 0.95 * size


@pytest.mark.parametrize("name", ["numpy", "strict"])
def test_host_memory_info_is_free_below_total_physical(name):
    free, total = get_backend(name).memory_info()
    assert total == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 0 < free <= total


@pytest.mark.parametrize("name", ["numpy", "strict"])
def test_host_memory_info_reports_the_tightest_limit(name, monkeypatch):
    # a planted MemAvailable below every other limit is what the backend reports (the machine's
    # own MemAvailable moves with whatever else runs, so the test does not allocate and compare)
    from bootgpu.backends import host_memory

    monkeypatch.setattr(host_memory, "mem_available", lambda: 3 << 20)
    free, _ = get_backend(name).memory_info()
    assert free == 3 << 20
    assert get_backend(name).available_memory() == (3 << 20, "available RAM")


def test_mem_available_reads_meminfo(tmp_path):
    from bootgpu.backends.host_memory import mem_available

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:   12345678 kB\n")
    assert mem_available(str(meminfo)) == 12345678 * 1024


def test_device_names():
    assert get_backend("numpy").device_name() == "cpu"
    assert get_backend("strict").device_name() == "cpu (array_api_strict)"


def test_transfers_round_trip_exact_bytes(xp_backend):
    rng = np.random.default_rng(0)
    for host in (rng.standard_normal((5, 7)), rng.integers(-9, 9, 11), np.array([True, False])):
        back = xp_backend.to_host(xp_backend.to_device(host))
        assert isinstance(back, np.ndarray) and back.dtype == host.dtype
        assert back.tobytes() == host.tobytes()


def test_extra_kernels_equal_numpy_and_scipy(xp_backend):
    rng = np.random.default_rng(1)
    ints = rng.integers(0, 13, 500)
    np.testing.assert_array_equal(xp_backend.to_host(xp_backend.bincount(xp_backend.to_device(ints), 20)),
                                  np.bincount(ints, minlength=20))
    weights = rng.integers(0, 1000, 500).astype(np.float64)
    np.testing.assert_array_equal(
        xp_backend.to_host(xp_backend.bincount(xp_backend.to_device(ints), 20, weights=xp_backend.to_device(weights))),
        np.bincount(ints, weights=weights, minlength=20))
    table = rng.standard_normal(13)
    np.testing.assert_array_equal(
        xp_backend.to_host(xp_backend.take_in_range(xp_backend.to_device(table), xp_backend.to_device(ints.astype(np.int32)))),
        table[ints])
    for rows, cols, offset in ((1, 1, 0.0), (5, 40, 1234.5), (7, 7, 0.25)):  # a block of joint indices
        rect = rng.integers(-3000, 3000, (rows, cols)).astype(np.float32) - np.float32(offset % 1)
        want = np.concatenate([np.arange(0)] + [(rect[i, i + 1:] + np.float32(offset)).astype(np.int32)
                                                for i in range(rows)]).astype(np.int32)
        for block in (rect.copy(), np.concatenate([rect, rect], axis=1)[:, :cols]):  # contiguous, or a view of a wider product
            got = xp_backend.joint_triangle(xp_backend.to_device(block), offset)
            if got is None:  # no kernel: the core's add, cast and triangle (core.spearman.joint_rect)
                got = xp_backend.upper_triangle(joint_rect(xp_backend.xp, xp_backend.to_device(block), offset))
            got = xp_backend.to_host(got)
            assert got.dtype == np.int32
            np.testing.assert_array_equal(got, want)
    for n_cells in (13, 8, 1000):  # a set of cells: whole bytes of bits, a partial last byte
        mask = rng.random(n_cells) < 0.3
        values = rng.integers(0, n_cells, 777).astype(np.int32)
        got = xp_backend.to_host(xp_backend.positions_in(xp_backend.cell_set(xp_backend.to_device(mask)),
                                                         xp_backend.to_device(values)))
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, np.flatnonzero(mask[values]))
    parts = [ints[:7].astype(np.int32), ints[7:7], ints[7:].astype(np.int32)]
    np.testing.assert_array_equal(xp_backend.to_host(xp_backend.bincount_parts([xp_backend.to_device(p) for p in parts], 20)),
                                  np.bincount(ints, minlength=20))
    counts = rng.integers(50, 99, 20).astype(np.int64)  # less the indices, repeats counted each time
    want = counts - np.bincount(ints, minlength=20)
    got = xp_backend.to_host(xp_backend.subtract_counts(xp_backend.to_device(counts), [xp_backend.to_device(p) for p in parts]))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    table = xp_backend.count_table(20)
    xp_backend.count_into(table, [xp_backend.to_device(p) for p in parts])
    xp_backend.count_into(table, [xp_backend.to_device(parts[0])])
    want = np.bincount(ints, minlength=20) + np.bincount(parts[0], minlength=20)
    np.testing.assert_array_equal(xp_backend.to_host(xp_backend.table_counts(table, 0, 20)), want)
    np.testing.assert_array_equal(xp_backend.to_host(xp_backend.table_counts(table, 5, 9)), want[5:9])
    x = rng.standard_normal(1000)
    np.testing.assert_array_equal(xp_backend.to_host(xp_backend.cummin(xp_backend.to_device(x))),
                                  np.minimum.accumulate(x))
    u = np.concatenate([[0.0, 1.0], rng.uniform(0, 1, 500)])
    np.testing.assert_allclose(xp_backend.to_host(xp_backend.betainc(11.5, 0.5, xp_backend.to_device(u))),
                               scipy.special.betainc(11.5, 0.5, u), rtol=1e-12, atol=0)
    z = np.concatenate([[0.0, 40.0], rng.uniform(0, 8, 500)])
    np.testing.assert_allclose(xp_backend.to_host(xp_backend.erfc(xp_backend.to_device(z))),
                               scipy.special.erfc(z), rtol=1e-12, atol=0)

    xp = xp_backend.xp
    w = rng.integers(-400, 401, (11, 5, 9)).astype(np.int16)  # (genes, k, R)
    d = rng.integers(-20, 21, (11, 5, 9)).astype(np.int16)
    a, b = np.array([0, 3, 3, 10, 7, 0]), np.array([1, 2, 9, 10, 0, 0])
    want = np.einsum("ekr,ekr->er", w[a].astype(np.int64), d[b].astype(np.int64))
    dev = [xp_backend.to_device(x) for x in (w, d, a, b)]
    got = xp_backend.pair_dots(*dev)
    assert got.dtype == xp.int16 and got.shape == (6, 9)
    np.testing.assert_array_equal(xp_backend.to_host(got), want)
    same = xp_backend.pair_dots(dev[0], dev[1], None, None)
    np.testing.assert_array_equal(xp_backend.to_host(same), np.einsum("ukr,ukr->ur", w.astype(np.int64), d.astype(np.int64)))
    for dtype in (xp.float32, xp.float64):
        got = xp_backend.block_dots(dev[0][:4, ...], dev[1][2:, ...], dtype)  # (R, 4, 9)
        assert got.dtype == dtype and got.shape == (9, 4, 9)
        np.testing.assert_array_equal(xp_backend.to_host(got), np.einsum("ikr,jkr->rij", w[:4].astype(np.int64), d[2:].astype(np.int64)))
    assert xp_backend.map_chunks(lambda v: v * v, range(7), threads=3) == [v * v for v in range(7)]


def test_bootstrap_and_pair_kernels_equal_their_definitions(xp_backend):
    """The kernels a device backend writes itself (CuPy: weighted_dots, pair_dots in int32,
    upper_triangle, the two scans) against their definitions in NumPy."""
    rng = np.random.default_rng(7)
    xp = xp_backend.xp
    dev = xp_backend.to_device
    host = xp_backend.to_host
    a = rng.integers(-30, 31, (6, 40, 33)).astype(np.int16)  # (k, E, R)
    b = rng.integers(-30, 31, (6, 40, 33)).astype(np.int16)
    w = rng.integers(0, 7, (6, 33)).astype(np.int16)
    for dtype in (xp.float32, xp.float64):
        got = xp_backend.weighted_dots(dev(a), dev(b), dev(w), dtype)
        assert got.dtype == dtype and got.shape == (40, 33)
        np.testing.assert_array_equal(host(got), np.einsum("per,per,pr->er", a.astype(np.int64), b.astype(np.int64),
                                                           w.astype(np.int64)))
    w4 = rng.integers(-70000, 70001, (9, 5, 17)).astype(np.int32)
    d4 = rng.integers(-300, 301, (9, 5, 17)).astype(np.int32)
    i, j = rng.integers(0, 9, 50), rng.integers(0, 9, 50)
    got = xp_backend.pair_dots(dev(w4), dev(d4), dev(i), dev(j))
    assert got.dtype == xp.int32
    np.testing.assert_array_equal(host(got), np.einsum("ekr,ekr->er", w4[i].astype(np.int64), d4[j].astype(np.int64)))
    for rows, cols in ((1, 2), (5, 9), (8, 9), (30, 31)):
        for values in (rng.standard_normal((rows, cols)).astype(np.float32), rng.integers(0, 99, (rows, cols)).astype(np.int32),
                       rng.random((rows, cols)) < 0.5):
            want = np.concatenate([values[r, r + 1:] for r in range(rows)])
            got = host(xp_backend.upper_triangle(dev(values)))
            assert got.dtype == values.dtype and got.tobytes() == want.tobytes(), (rows, cols, values.dtype)
    counts = rng.integers(0, 4, (7, 3, 11)).astype(np.int16).reshape(7, -1)
    scans = xp_backend.scans
    np.testing.assert_array_equal(host(scans.cumsum_leading(dev(counts))), np.cumsum(counts, axis=0, dtype=np.int16))
    want = (2 * np.cumsum(counts, axis=0) - counts - 5).astype(np.int16)
    np.testing.assert_array_equal(host(scans.doubled_scan(dev(counts), 5)), want)
    out = xp.zeros((7, 33), dtype=xp.int16)
    assert scans.doubled_scan(dev(counts), 5, out=out) is out
    np.testing.assert_array_equal(host(out), want)


def _summary_inputs(n_boot):
    rng = np.random.default_rng(n_boot)
    x = rng.normal(0.1, 0.3, (70, n_boot))
    x[3, :] = 0.0
    x[4, ::3] = 0.0  # ties among the values
    x[5, -1] = np.nan  # an edge with a NaN replicate
    x[6] = np.round(x[6], 1)
    x[7] = rng.exponential(0.2, n_boot)  # skewed: its short tail has too few candidates
    x[8] = rng.standard_cauchy(n_boot)  # heavy tails: too many
    x[9, : n_boot // 2] = -1.0  # half the values tied at the bottom
    return x


@pytest.mark.parametrize("n_boot", [1, 2, 7, 23, 1000])
def test_summary_kernels_equal_the_standards_sort_mean_and_std_to_the_byte(xp_backend, n_boot):
    """Each backend's order statistics, moments and row views give the bytes of the generic
    (full sort, the standard's mean and std) -- NumPy's partitions and shared sum included."""
    from bootgpu.backends._base import Backend

    generic = Backend()
    generic.xp = xp_backend.xp
    x = _summary_inputs(n_boot)
    dev = xp_backend.to_device(x)
    positions = sorted({p for p in (0, 1, n_boot // 2, n_boot - 2, n_boot - 1, 24, 25, 974, 975) if 0 <= p < n_boot})
    centre, spread = xp_backend.mean_std(dev)
    for pos in (positions, [p for p in positions if p % 2 == 0] or [0], [n_boot - 1]):
        want = np.sort(x, axis=1)[:, pos]
        ok = ~np.isnan(x).any(axis=1)
        for hints in ({}, {"centre": centre, "spread": spread}):  # NumPy: tail candidates with the hints
            got = [xp_backend.to_host(v) for v in xp_backend.order_statistics(dev, pos, **hints)]
            for i in range(len(pos)):
                assert got[i][ok].tobytes() == want[ok, i].tobytes(), (pos, hints.keys())
    mean, std = (xp_backend.to_host(v) for v in xp_backend.mean_std(dev))
    want_mean, want_std = (xp_backend.to_host(v) for v in generic.mean_std(dev))
    assert mean.tobytes() == want_mean.tobytes() and std.tobytes() == want_std.tobytes()
    if REGISTRY[xp_backend.name].device:  # a device sums in its own order: within 2 ulp of NumPy's bytes
        ok = ~np.isnan(x).any(axis=1)
        np.testing.assert_array_max_ulp(mean[ok], np.mean(x, axis=1)[ok], maxulp=2)
        if n_boot > 1:
            np.testing.assert_array_max_ulp(std[ok], np.std(x, axis=1, ddof=1)[ok], maxulp=2)
    else:
        assert mean.tobytes() == np.mean(x, axis=1).tobytes()
        if n_boot > 1:
            assert std.tobytes() == np.std(x, axis=1, ddof=1).tobytes()
    above, below = (xp_backend.to_host(v) for v in xp_backend.sign_counts(dev))
    np.testing.assert_array_equal(above, np.count_nonzero(x > 0, axis=1))
    np.testing.assert_array_equal(below, np.count_nonzero(x < 0, axis=1))
    rows = xp_backend.to_host(xp_backend.edge_rows(xp_backend.to_device(np.ascontiguousarray(x.T)), 5, 60))
    assert rows.tobytes() == x[5:60].tobytes()


def test_store_ratio_equals_division_then_store_or_subtract(xp_backend):
    from bootgpu.backends._base import Backend

    xp = xp_backend.xp
    generic = Backend()
    generic.xp = xp
    rng = np.random.default_rng(3)
    num16 = rng.integers(-2000, 2000, (9, 40)).astype(np.int16)
    num32 = rng.integers(-2000, 2000, (9, 40)).astype(np.float32)
    den = rng.integers(1, 3000, (9, 1)).astype(np.float64)
    start = rng.standard_normal((20, 50))
    for num in (num16, num32):
        for subtract in (False, True):
            outs = []
            for backend in (xp_backend, generic):
                out = xp_backend.to_device(start.copy())
                backend.store_ratio(out, (slice(3, 12), slice(5, 45)), xp_backend.to_device(num), xp_backend.to_device(den), subtract)
                backend.store_ratio(out, (slice(12, 20), slice(0, 40)), xp_backend.to_device(num[:8].astype(np.float64) / 7),
                                    None, subtract)
                outs.append(xp_backend.to_host(out))
            want = start.copy()
            r = num.astype(np.float64) / den
            want[3:12, 5:45] = want[3:12, 5:45] - r if subtract else r
            r2 = num[:8].astype(np.float64) / 7
            want[12:20, :40] = want[12:20, :40] - r2 if subtract else r2
            assert outs[0].tobytes() == outs[1].tobytes() == want.tobytes()


@pytest.mark.parametrize("env,want", [({"BOOTGPU_THREADS": "3"}, 3), ({"OMP_NUM_THREADS": "1"}, 1),
                                      ({"BOOTGPU_THREADS": "5", "OMP_NUM_THREADS": "1"}, 5), ({}, None)])
def test_numpy_host_threads_follow_bootgpu_threads_then_omp_then_cores(monkeypatch, env, want):
    for name in ("BOOTGPU_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert get_backend("numpy").host_threads() == (want or len(os.sched_getaffinity(0)))


def test_ranks_by_gene_is_a_backend_fact_the_plan_carries():
    """The planner models D alone only for a backend that ranks resamples itself (the NumPy
    backend's compiled kernel), told by the backend, not guessed from its working-set cap: the
    strict backend has NumPy's cap but the core's ranks."""
    from bootgpu.backends import host_kernels
    from bootgpu.backends.counting import CountingBackend
    from bootgpu.planner import replicate_bytes

    numpy, strict = get_backend("numpy"), get_backend("strict")
    assert numpy.ranks_by_gene is host_kernels.wanted() is True  # numba is a dependency
    assert strict.working_set_bytes == numpy.working_set_bytes and not strict.ranks_by_gene
    from bootgpu.backends.cupy_backend import CupyBackend  # importable without CuPy: its class facts

    assert not CountingBackend().ranks_by_gene and not CupyBackend.ranks_by_gene
    plans = {b.name: plan_batches(2000, 128, 25, 25, 1000, 8 << 30, **b.plan_facts()) for b in (numpy, strict)}
    assert plans["numpy"].ranks_by_gene and not plans["strict"].ranks_by_gene
    assert replicate_bytes(25, 20, 2000, 5000, ties=False, own=True) < replicate_bytes(25, 20, 2000, 5000, ties=False)
    # a plan made from sizes alone (a job's memory request) still infers NumPy's
    assert plan_batches(2000, 128, 25, 25, 1000, 8 << 30, working_set_bytes=numpy.working_set_bytes).ranks_by_gene


def test_numpy_scopes_run_blas_in_one_thread_and_restore_the_threads_set_before():
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    backend = get_backend("numpy")
    with threadpool_limits(3, user_api="blas"):  # as a worker process sets its share of the cores
        assert set(blas_threads().values()) == {3}
        for _ in range(2):  # the second time through the process's cached controller
            with backend.pair_scope():
                assert set(blas_threads().values()) == {1}
            assert set(blas_threads().values()) == {3}
            with backend.bootstrap_scope():
                assert set(blas_threads().values()) == {1}
            assert set(blas_threads().values()) == {3}


@pytest.mark.gpu
@pytest.mark.skipif(not CUPY_USABLE, reason=f"cupy backend not usable: {cupy_unusable_reason()}")
def test_cupy_focus_result_equals_numpy(demo_values):
    cfg = AnalysisConfig(n_bootstrap=50, seed=3, fdr_alpha=0.2)
    values = demo_values[:100]
    k_low, k_high = cfg.validate(values.shape[1])
    plan = plan_batches(values.shape[0], values.shape[1], k_low, k_high, cfg.n_bootstrap, 1 << 30,
                        rows_per_block=16, replicate_chunk=13, edge_chunk=17)
    results = []
    for name in ("numpy", "cupy"):
        backend = get_backend(name)
        results.append(analyse_focus(backend, backend.to_device(values), 8, cfg, plan, k_low, k_high))
    want, got = results
    assert got.attrs == want.attrs and want.edges["gene_i"].size > 0
    np.testing.assert_array_equal(got.low_samples, want.low_samples)
    np.testing.assert_array_equal(got.high_samples, want.high_samples)
    for key in want.edges:
        if want.edges[key].dtype.kind == "f":
            np.testing.assert_allclose(got.edges[key], want.edges[key], rtol=1e-6, atol=1e-6, err_msg=key)
        else:
            np.testing.assert_array_equal(got.edges[key], want.edges[key], err_msg=key)


def test_the_registry_is_the_one_list_of_backends():
    """CLI choices, `bootgpu bench`, the asv suite and the test fixtures all read REGISTRY."""
    import importlib.util
    from pathlib import Path

    from bootgpu.backends import BACKEND_NAMES, REGISTRY
    from bootgpu.bench import BENCH_BACKENDS
    from bootgpu.cli import build_parser

    assert BACKEND_NAMES == ("auto", *REGISTRY) and BENCH_BACKENDS == tuple(REGISTRY)
    run = build_parser()._subparsers._group_actions[0].choices["run"]
    (backend_option,) = [a for a in run._actions if "--backend" in a.option_strings]
    assert tuple(backend_option.choices) == BACKEND_NAMES
    spec = importlib.util.spec_from_file_location("asv_common", Path(__file__).resolve().parents[1] / "benchmarks" / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    assert common.BACKENDS == [name for name, s in REGISTRY.items() if s.benchmarked] == ["numpy", "cupy"]
    with pytest.raises(BootgpuError, match="unknown backend 'gpu'; choose one of auto, numpy, cupy, strict"):
        get_backend("gpu")


def test_cupy_without_array_api_compat_is_not_usable_and_says_why(monkeypatch):
    """A CuPy that imports and sees a device, but no array-api-compat: "not usable" with the reason
    (the core needs the array-API namespace; plain cupy would fail late, e.g. on cumulative_sum)."""
    import sys
    import types

    from bootgpu.backends import unusable_reason

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "array_api_compat.cupy", None)  # import of it raises ImportError
    reason = unusable_reason("cupy")
    assert reason is not None and reason.startswith("array-api-compat is missing") and "pip install array-api-compat" in reason
    with pytest.raises(BootgpuError, match="--backend cupy is not usable: array-api-compat is missing"):
        get_backend("cupy")


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_imap_chunks_yields_in_order_with_at_most_threads_ahead(threads):
    """The pair passes reduce blocks as they come: in block order, whatever the thread count, and
    never more than ``threads`` blocks computed ahead of the one being reduced."""
    import threading

    backend = get_backend("numpy")
    lock, running, most = threading.Lock(), [0], [0]

    def work(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        total = sum(range(i * 1000))
        with lock:
            running[0] -= 1
        return i, total

    got = list(backend.imap_chunks(work, range(20), threads))
    assert got == [(i, sum(range(i * 1000))) for i in range(20)]
    assert most[0] <= threads


# host facts the strict backend keeps from NumPy (memory, scopes, the byte-a-cell tables it never makes)
_STRICT_KEEPS_NUMPY = {"dense_density", "memory_info", "available_memory", "track_peak", "table_counts", "table_capacity",
                       "release_memory", "bootstrap_scope", "pair_scope"}


def test_the_strict_backend_runs_the_generic_kernels_a_device_runs():
    # every kernel the NumPy backend replaces with its own (compiled) one is the generic Backend's
    # on the strict backend, so the CPU tests cover the code a GPU runs: a new NumPy kernel left
    # out here would silently take the device path's place in them
    from bootgpu.backends._base import Backend
    from bootgpu.backends.numpy_backend import NumpyBackend
    from bootgpu.backends.strict_backend import StrictBackend

    overridden = {name for name, value in vars(NumpyBackend).items()
                  if callable(value) and hasattr(Backend, name) and not name.startswith("__")}
    kept = {name for name in overridden if getattr(StrictBackend, name) is getattr(NumpyBackend, name)}
    assert {"level_triangle", "bin_counts", "gathered_abs_diff", "values_in_range", "joint_triangle"} <= overridden
    assert kept == _STRICT_KEEPS_NUMPY
