"""The NumPy backend's compiled kernels (bootgpu.backends.host_kernels) give the bytes of the NumPy
code they replace, which stays as the fallback (BOOTGPU_NUMBA=0), and of the definitions: sparse
correlations against gathered dots divided and stored, order statistics against a full sort."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from bootgpu.backends import host_kernels
from bootgpu.backends._base import Backend
from bootgpu.backends.numpy_backend import NumpyBackend, WrappedCounts


def test_numba_is_installed_and_the_kernels_are_used(monkeypatch):
    assert host_kernels.enabled()
    monkeypatch.setenv("BOOTGPU_NUMBA", "0")
    assert not host_kernels.enabled()


@pytest.mark.parametrize("dtype", [np.int16, np.int32])
@pytest.mark.parametrize("subtract", [False, True])
@pytest.mark.parametrize("weights", ["ranks", "counts"])
def test_store_pair_ratio_equals_gathered_dots_divided(dtype, subtract, weights, monkeypatch):
    # weights "counts": the (k, R) counts c stand for w = c * d, and d is int8 (resample_ranks)
    rng = np.random.default_rng(7)
    n_genes, k, n_rep, n_edges = 60, 25, 37, 203  # neither a multiple of the kernel's tile of 16 edges
    d = rng.integers(-19, 20, (n_genes, k, n_rep)).astype(np.int8 if weights == "counts" else dtype)
    if weights == "counts":
        c = rng.integers(0, 4, (k, n_rep)).astype(dtype)  # every partial sum within int16, as dot_dtype bounds them
        w = c
        w_full = d.astype(np.int64) * c.astype(np.int64)
    else:
        w = rng.integers(-60, 61, (n_genes, k, n_rep)).astype(dtype)
        w_full = w
    a, b = np.sort(rng.integers(0, n_genes, n_edges)), rng.integers(0, n_genes, n_edges)
    den = rng.integers(1, 3000, (n_rep, 1)).astype(np.float64)
    start = rng.standard_normal((100, 260))
    dots = np.einsum("ekr,ekr->re", w_full[a].astype(np.int64), d[b].astype(np.int64))  # the definition
    want = start.copy()
    block = want[50:50 + n_rep, 40:40 + n_edges]
    block[...] = block - dots / den if subtract else dots / den
    outs = {}
    for numba in ("1", "0"):
        monkeypatch.setenv("BOOTGPU_NUMBA", numba)
        full = start.copy()
        out = full[:, :250]  # a view whose rows are longer than it: strided like a chunk's buffer
        NumpyBackend().store_pair_ratio(out, slice(50, 50 + n_rep), slice(40, 40 + n_edges), w, d, a, b, den, subtract)
        outs[numba] = full
    generic = Backend()
    generic.xp = np
    full = start.copy()
    generic.store_pair_ratio(full, slice(50, 50 + n_rep), slice(40, 40 + n_edges), w, d, a, b, den, subtract)
    assert outs["1"].tobytes() == outs["0"].tobytes() == full.tobytes() == want.tobytes()


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64])
@pytest.mark.parametrize("n_rep", [1, 16, 37])
def test_resample_ranks_equal_the_scan_and_gather_of_position_ranks(dtype, n_rep):
    from bootgpu.core.bootstrap import GeneGroup
    from bootgpu.core.draws import draw_counts, draw_positions
    from bootgpu.core.ranks import group_order, position_ranks

    rng = np.random.default_rng(5)
    n_genes, k, m = 70, 25, 20
    values = rng.normal(size=(n_genes, k))
    values[::3] = np.round(values[::3])  # tie groups of every size, a constant gene, ties at both ends
    values[1] = 4.0
    values[4, :6], values[4, -5:] = -9.0, 9.0
    order = group_order(np, values)
    genes = np.arange(n_genes, dtype=np.int64)
    chunk = type("Chunk", (), {"genes": genes, "blocks": []})()
    grp = GeneGroup.build(np, type("Group", (), {"order": order})(), chunk, m, by_gene=True)
    counts = draw_counts(np, draw_positions(np, 3, 1, 0, np.arange(n_rep), k, m), k, by_position=True).astype(dtype)
    counts[:, 0] = 0
    counts[7, 0] = m  # one position drawn m times: every gene constant in that resample
    want = position_ranks(np, order, counts, m, grp.rows, grp.starts, grp.ends).reshape(n_genes, k, n_rep)
    got = NumpyBackend().resample_ranks(grp.slot_position, grp.tie_last, counts, m)
    assert got.dtype == np.int8
    assert np.array_equal(got, want)
    wide = NumpyBackend().resample_ranks(grp.slot_position, grp.tie_last, counts.astype(np.int32), 200)
    want_wide = position_ranks(np, order, counts.astype(np.int32), 200, grp.rows, grp.starts, grp.ends)
    assert wide.dtype == np.int16 and np.array_equal(wide, want_wide.reshape(n_genes, k, n_rep))


@pytest.mark.parametrize("numba", ["1", "0"])
def test_pair_dots_with_the_counts_for_weights_equal_the_definition(numba, monkeypatch):
    monkeypatch.setenv("BOOTGPU_NUMBA", numba)
    rng = np.random.default_rng(9)
    n_genes, k, n_rep = 30, 25, 19
    d = rng.integers(-20, 21, (n_genes, k, n_rep)).astype(np.int8)  # int8 ranks (resample_ranks)
    c = rng.integers(0, 4, (k, n_rep)).astype(np.int16)
    a, b = rng.integers(0, n_genes, 41), rng.integers(0, n_genes, 41)
    w = d.astype(np.int64) * c.astype(np.int64)
    want = np.einsum("ekr,ekr->er", w[a], d[b].astype(np.int64))
    got = NumpyBackend().pair_dots(c, d, a, b)
    assert got.dtype == np.int16 and np.array_equal(got, want)
    rows = NumpyBackend().pair_dots(c, d, None, None)  # every gene with itself: S
    assert np.array_equal(rows, np.einsum("ukr,ukr->ur", w, d.astype(np.int64)))


def test_joint_triangle_is_one_compiled_pass_equal_to_add_cast_and_triangle(monkeypatch):
    from bootgpu.core.spearman import joint_rect, upper_triangle

    rng = np.random.default_rng(4)
    rect = rng.integers(0, 2**22, (9, 300)).astype(np.float32) - np.float32(0.75)
    want = upper_triangle(np, joint_rect(np, rect.copy(), 1000.75))
    got = NumpyBackend().joint_triangle(rect[:, :], 1000.75)
    assert got is not None and got.dtype == np.int32 and np.array_equal(got, want)
    monkeypatch.setenv("BOOTGPU_NUMBA", "0")
    assert NumpyBackend().joint_triangle(rect, 1000.75) is None


def test_resample_ranks_are_left_to_the_core_without_kernels(monkeypatch):
    monkeypatch.setenv("BOOTGPU_NUMBA", "0")
    assert NumpyBackend().resample_ranks(np.zeros((1, 2), np.int64), np.zeros((1, 2), np.int64), np.ones((2, 3), np.int16), 2) is None
    assert Backend().resample_ranks(None, None, None, 2) is None


@pytest.mark.parametrize("numba", ["1", "0"])
def test_store_pair_delta_equals_storing_r_high_then_subtracting_r_low(numba, monkeypatch):
    monkeypatch.setenv("BOOTGPU_NUMBA", numba)
    rng = np.random.default_rng(8)
    n_genes, n_rep, n_edges = 50, 37, 203  # neither a multiple of the kernel's tile of 16 edges
    groups = []
    for k in (25, 19):  # groups of different sizes
        d = rng.integers(-19, 20, (n_genes, k, n_rep)).astype(np.int8)
        c = rng.integers(0, 4, (k, n_rep)).astype(np.int16)
        den = rng.integers(1, 3000, (n_rep, 1)).astype(np.float64)
        groups.append((c, d, den))
    a, b = np.sort(rng.integers(0, n_genes, n_edges)), rng.integers(0, n_genes, n_edges)
    start = rng.standard_normal((100, 260))
    want = start.copy()
    generic = Backend()
    generic.xp = np
    (c_h, d_h, den_h), (c_l, d_l, den_l) = groups
    generic.store_pair_ratio(want, slice(50, 50 + n_rep), slice(40, 40 + n_edges), c_h, d_h, a, b, den_h, False)
    generic.store_pair_ratio(want, slice(50, 50 + n_rep), slice(40, 40 + n_edges), c_l, d_l, a, b, den_l, True)
    full = start.copy()
    NumpyBackend().store_pair_delta(full[:, :250], slice(50, 50 + n_rep), slice(40, 40 + n_edges), groups[0], groups[1], a, b)
    assert full.tobytes() == want.tobytes()
    assert NumpyBackend().fused_deltas == (numba == "1")


def _rows(n: int) -> np.ndarray:
    rng = np.random.default_rng(11)
    rows = [rng.normal(0.3, 0.1, n), np.round(rng.normal(0.3, 0.1, n), 2), rng.gamma(1.5, 0.2, n), -rng.gamma(1.5, 0.2, n),
            rng.uniform(-1, 1, n), np.full(n, 0.25), np.where(rng.random(n) < 0.97, 0.5, -0.5),
            np.concatenate([np.full(n // 2, -1.0), rng.normal(0, 1, n - n // 2)]), rng.standard_cauchy(n)]
    nan = rng.normal(0, 1, n)
    nan[n // 3] = np.nan
    return np.array(rows + [nan])


@pytest.mark.parametrize("n", [200, 1000, 2001])
def test_compiled_order_statistics_equal_a_full_sort(n, monkeypatch):
    x = _rows(n)
    backend = NumpyBackend()
    centre, spread = backend.mean_std(x)
    ok = ~np.isnan(x).any(axis=1)  # a row with NaN has a NaN mean: summarise masks its statistics
    srt = np.sort(x, axis=1)
    for alpha in (0.05, 0.1, 0.5, 0.01):
        lo, hi = (n - 1) * alpha / 2, (n - 1) * (1 - alpha / 2)
        for positions in ([int(lo), int(lo) + 1, int(hi), min(int(hi) + 1, n - 1)], [int(lo)], [int(hi)], [0, n - 1]):
            got = {}
            for numba in ("1", "0"):
                monkeypatch.setenv("BOOTGPU_NUMBA", numba)
                got[numba] = backend.order_statistics(x, positions, centre=centre, spread=spread)
            for j, p in enumerate(positions):
                assert got["1"][j][ok].tobytes() == got["0"][j][ok].tobytes() == srt[ok, p].tobytes(), (alpha, positions)


def test_share_cores_caps_the_chunks_in_flight():
    backend = NumpyBackend()
    assert backend._in_flight(4) == 4
    allowed = [1]
    backend.share_cores(lambda: allowed[0])
    assert backend._in_flight(4) == 1
    main = threading.get_ident()
    assert backend.map_chunks(lambda i: threading.get_ident(), range(6), 4) == [main] * 6  # one at a time, here
    assert list(backend.imap_chunks(lambda i: threading.get_ident(), range(6), 4)) == [main] * 6
    allowed[0] = 3
    assert backend._in_flight(4) == 3 and backend._in_flight(2) == 2
    assert backend.map_chunks(lambda i: i * i, range(6), 4) == [0, 1, 4, 9, 16, 25]


@pytest.mark.parametrize("n_boot", [200, 1000, 1999])
def test_column_statistics_give_the_summaries_of_the_rows_to_the_byte(n_boot, monkeypatch):
    """The fused kernel over columns of replicate-major deltas (NumPy's pairwise sums replayed in
    its order, sign counts, tail order statistics) equals summarise of the transposed rows, which
    equals the standard's mean, std and a full sort."""
    from bootgpu.backends.host_kernels import pairwise_program
    from bootgpu.core.bootstrap import summarise, summarise_columns

    rows = _rows(n_boot)
    rng = np.random.default_rng(5)
    rows = np.concatenate([rows, rng.normal(0.2, 0.3, (75, n_boot))])  # more than one tile of 64 edges
    buffer = np.full((n_boot, rows.shape[0] + 9), np.nan)
    buffer[:, 3:3 + rows.shape[0]] = rows.T
    deltas = buffer[:, :rows.shape[0] + 5]  # a strided view, as a chunk's part of the shared buffer
    base = rng.normal(0, 0.1, rows.shape[0] + 5)
    backend = NumpyBackend()
    assert backend.column_statistics(deltas, 3, 3 + rows.shape[0], [24, 25]) is not None
    for alpha in (0.05, 0.1):
        got = summarise_columns(backend, deltas, 3, 3 + rows.shape[0], base[3:3 + rows.shape[0]], alpha)
        want = summarise(np, np.ascontiguousarray(rows), base[3:3 + rows.shape[0]], alpha)  # standard's functions
        for key in want:
            assert got[key].tobytes() == want[key].tobytes(), (alpha, key)
    assert np.add.reduce(rows, axis=1).tobytes() == np.asarray([_replay(r, pairwise_program(n_boot)) for r in rows]).tobytes()


def _replay(values, program) -> float:
    starts, lengths, ops = program
    stack = []
    for op in ops:
        if op < 0:
            b, a = stack.pop(), stack.pop()
            stack.append(a + b)
            continue
        leaf = values[starts[op]:starts[op] + lengths[op]]
        if len(leaf) < 8:
            total = 0.0
            for v in leaf:
                total += v
        else:
            acc = list(leaf[:8])
            i = 8
            while i < len(leaf) - len(leaf) % 8:
                acc = [acc[j] + leaf[i + j] for j in range(8)]
                i += 8
            total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
            for v in leaf[i:]:
                total += v
        stack.append(total)
    return stack[0]


def test_column_statistics_leave_short_rows_to_numpy():
    assert NumpyBackend().column_statistics(np.zeros((199, 10)), 0, 10, [4, 5]) is None


@pytest.mark.parametrize("numba", ["1", "0"])
def test_joint_histogram_counts_every_index_whatever_the_batching(numba, monkeypatch):
    """The count pass's histogram (core.fdr.JointHistogram) equals one np.bincount of every joint
    index, with the compiled kernel (a byte a cell, wrapping into an int32 count of wraps) and
    without it (int64), over batches, threads and a table spilled into the total before it could
    overflow; cells counted 255, 256, 257 and 70,000 times, and none."""
    from bootgpu.core.fdr import JointHistogram

    monkeypatch.setenv("BOOTGPU_NUMBA", numba)
    rng = np.random.default_rng(11)
    n_cells = 5000
    blocks = [rng.integers(0, n_cells - 1, int(size)).astype(np.int32) for size in rng.integers(0, 900, 40)]
    busy = np.repeat(np.array([3, 4, 5, 6], dtype=np.int32), [255, 256, 257, 70_000])
    blocks += [busy[i::7] for i in range(7)]  # their counts spread over blocks and threads
    want = np.bincount(np.concatenate(blocks), minlength=n_cells)
    assert want[6] >= 70_000 and want[n_cells - 1] == 0
    backend = NumpyBackend()
    table = backend.count_table(n_cells)
    assert isinstance(table, WrappedCounts) if numba == "1" else table.dtype == np.int64
    backend.count_into(table, [busy])
    assert backend.table_counts(table, 3, 7).tolist() == [255, 256, 257, 70_000]
    assert backend.table_counts(table, 0, 3).tolist() == [0, 0, 0]
    for threads, batch, spill in ((1, 1 << 23, None), (2, 700, None), (3, 500, 1200)):
        monkeypatch.setattr(JointHistogram, "BATCH_PAIRS", batch)
        monkeypatch.setattr(JointHistogram, "SPILL_AT", spill)
        counter = JointHistogram(backend, n_cells, threads)
        for block in blocks:
            counter.add(block)
        got = counter.finish()
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)


def test_count_into_refuses_indices_outside_the_table():
    backend = NumpyBackend()
    table = backend.count_table(10)
    assert isinstance(table, WrappedCounts)
    with pytest.raises(ValueError, match="outside a table of 10"):
        backend.count_into(table, [np.array([3, 10], dtype=np.int32)])
    with pytest.raises(ValueError, match="outside"):
        backend.count_into(table, [np.array([-1], dtype=np.int32)])


def test_freed_memory_is_kept_only_where_the_budget_and_prediction_hold_it(monkeypatch):
    """release_memory keeps the heaps' free bytes for the next focus gene only where they fit
    beside the predicted peak in the budget and, with the highest use so far, within the
    prediction; otherwise (or without a plan, or before prepare) it trims."""
    from bootgpu.backends import numpy_backend

    trims = []
    monkeypatch.setattr(numpy_backend, "malloc_trim", lambda: trims.append(1))
    backend = NumpyBackend()
    monkeypatch.setattr(numpy_backend, "heap_free_bytes", lambda: 100)
    backend.release_memory(1000, 5000)
    assert len(trims) == 1  # no baseline yet: trimmed
    backend.prepare()
    base = backend._baseline_rss
    monkeypatch.setattr(numpy_backend, "peak_rss_bytes", lambda: base + 800)  # 800 used so far
    cases = [((1000, 5000), False),  # 100 free <= min(4000, 200): kept
             ((1000, 1050), True),  # the budget has 50 beside the prediction
             ((850, 5000), True),  # the prediction has 50 beside the highest use
             ((0, 5000), True)]  # no plan
    for args, trimmed in cases:
        before = len(trims)
        backend.release_memory(*args)
        assert (len(trims) > before) == trimmed, args
    monkeypatch.setattr(numpy_backend, "heap_free_bytes", lambda: None)  # no mallinfo2: always trimmed
    backend.release_memory(1000, 5000)
    assert trims[-1] == 1 and len(trims) == 5


def test_heap_free_bytes_sees_a_freed_block():
    """Freeing blocks the heap served adds their bytes to heap_free_bytes, whatever was free before
    (each block is followed by a small pin, so freed blocks cannot join the heap's top and be
    trimmed at once)."""
    from bootgpu.backends.numpy_backend import heap_free_bytes

    assert heap_free_bytes() is not None  # glibc >= 2.33 here
    blocks, pins = [], []
    for _ in range(64):
        blocks.append(np.ones(1 << 12))  # 32 KiB: from the heap, below glibc's mmap threshold
        pins.append(np.ones(1 << 8))  # 2 KiB
    alive = heap_free_bytes()
    del blocks
    assert heap_free_bytes() - alive >= 64 * (1 << 15) * 9 // 10
    del pins


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("subtract", [False, True])
def test_store_gathered_ratio_equals_taking_and_dividing(dtype, subtract, monkeypatch):
    """A dense tile pair's edges stored from its products (the compiled kernel) give the bytes of
    taking the edges' cells and dividing them in float64, with the kernel and without it."""
    rng = np.random.default_rng(8)
    n_rep, cells = 37, 300
    products = rng.integers(-5000, 5000, (n_rep, cells)).astype(dtype)  # integers, exact in float32
    flat = np.sort(rng.choice(cells, 123, replace=False))
    den = rng.integers(1, 3000, (n_rep, 1)).astype(np.float64)
    start = rng.standard_normal((60, 200))
    want = start.copy()
    block = want[10:10 + n_rep, 50:50 + flat.shape[0]]
    quotient = products[:, flat].astype(np.float64) / den
    block[...] = block - quotient if subtract else quotient
    for numba in ("1", "0"):
        monkeypatch.setenv("BOOTGPU_NUMBA", numba)
        got = start.copy()
        NumpyBackend().store_gathered_ratio(got, slice(10, 10 + n_rep), slice(50, 50 + flat.shape[0]), products, flat, den,
                                            subtract)
        assert got.tobytes() == want.tobytes(), numba


def _generic() -> Backend:
    generic = Backend()
    generic.xp = np
    return generic


@pytest.mark.parametrize("dtype", [np.int16, np.int32])
@pytest.mark.parametrize("ties", ["none", "low", "both"])
def test_gathered_abs_diff_equals_two_gathers_filled_and_subtracted(dtype, ties, monkeypatch):
    # a pair block's Fisher statistic |z_high[levels_high] - z_low[levels_low]|, the tied pairs'
    # z (at the sentinel) filled in order, as PairPasses._derive computed it before the kernel
    rng = np.random.default_rng(11)
    n, n_levels = 5_003, 2_601
    sides = []
    for name in ("high", "low"):
        table = np.concatenate([np.arctanh(np.clip(rng.uniform(-1, 1, n_levels), -0.9999, 0.9999)), [0.0]])
        idx = rng.integers(0, n_levels, n).astype(dtype)
        fill = np.zeros(0)
        if ties == "both" or ties == name:
            at = rng.random(n) < 0.07
            idx[at] = n_levels
            fill = rng.standard_normal(int(at.sum()))
        sides.append((table, idx, n_levels, fill))
    want = []
    for table, idx, sentinel, fill in sides:  # the definition, written out
        v = table[idx.astype(np.int64)]
        if fill.size:
            v[idx == sentinel] = fill
        want.append(v)
    want = np.abs(want[0] - want[1])
    got = {}
    for numba in ("1", "0"):
        monkeypatch.setenv("BOOTGPU_NUMBA", numba)
        got[numba] = NumpyBackend().gathered_abs_diff(*sides)
    assert got["1"].tobytes() == got["0"].tobytes() == _generic().gathered_abs_diff(*sides).tobytes() == want.tobytes()


def test_gathered_abs_diff_with_fills_that_do_not_match_does_as_numpy_does():
    # fills not one a sentinel go NumPy's way: its assignment broadcasts one value, refuses three
    table, idx = np.arange(5.0), np.array([4, 0, 4, 1], np.int16)
    side = (table, idx, 4, np.zeros(0))
    got = NumpyBackend().gathered_abs_diff((table, idx, 4, np.full(1, 9.5)), side)
    assert got.tobytes() == np.array([5.5, 0.0, 5.5, 0.0]).tobytes()
    with pytest.raises(ValueError):
        NumpyBackend().gathered_abs_diff((table, idx, 4, np.ones(3)), side)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64])
def test_bincount_of_narrow_integers_equals_numpy(dtype):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3_000, 100_001).astype(dtype)
    got = NumpyBackend().bincount(x, 3_001)
    assert got.dtype == np.int64 and got.tobytes() == np.bincount(x, minlength=3_001).tobytes()
    x[17] = 5_000  # beyond minlength: NumPy's longer table, as np.bincount gives it
    assert NumpyBackend().bincount(x, 3_001).tobytes() == np.bincount(x, minlength=3_001).tobytes()
    if dtype != np.int64:
        assert NumpyBackend().bincount(x[::2], 3_001).tobytes() == np.bincount(x[::2], minlength=3_001).tobytes()
    x[18] = -1
    with pytest.raises(ValueError):
        NumpyBackend().bincount(x, 3_001)


@pytest.mark.parametrize("n_bins", [4_096, 1 << 20])
def test_bin_counts_equal_the_stream_bins_counted(n_bins, monkeypatch):
    from bootgpu.core.fdr import BHStream
    from bootgpu.core.significance import FisherTest

    rng = np.random.default_rng(4)
    test = FisherTest(25, 25)
    s = np.abs(rng.standard_normal(200_003)) * 2.5
    s[:5] = [0.0, test.s_max, np.nextafter(test.s_max, 0), test.s_max / n_bins, test.s_max / n_bins * 7]
    s = np.minimum(s, test.s_max)
    streams = {}
    for numba in ("1", "0"):
        monkeypatch.setenv("BOOTGPU_NUMBA", numba)
        streams[numba] = BHStream(NumpyBackend(), test, "diff", n_bins=n_bins)
    want = np.bincount(streams["0"].bins(s), minlength=n_bins)
    monkeypatch.setenv("BOOTGPU_NUMBA", "1")
    assert NumpyBackend().bin_counts(s, n_bins / test.s_max, n_bins) is not None  # the kernel's way
    assert streams["1"].histogram(s).tobytes() == want.tobytes()
    monkeypatch.setenv("BOOTGPU_NUMBA", "0")
    assert streams["0"].histogram(s).tobytes() == want.tobytes()
    monkeypatch.setenv("BOOTGPU_NUMBA", "1")
    assert NumpyBackend().bin_counts(np.array([0.5, np.nan]), 1.0, n_bins) is None  # NaN: left to NumPy's way
    assert NumpyBackend().bin_counts(np.array([-0.5]), 1.0, n_bins) is None


@pytest.mark.parametrize("k", [25, 60])  # levels int16 (float32 products) and int32 (k = 60: D/2 + 1 >= 2**15)
@pytest.mark.parametrize("ties", ["none", "few", "most"])
def test_level_triangle_gives_the_blocks_of_the_core(k, ties):
    # PairBlocks' blocks with the compiled levels equal the core's triangle, cast, add and shift:
    # tie-free blocks, blocks with a few tied pairs (levels with the sentinel and tied r) and blocks
    # mostly tied (every pair's r)
    from bootgpu.core.spearman import PairBlocks, group_ranks

    rng = np.random.default_rng(k)
    n_genes = 83
    groups = []
    for _ in range(2):
        values = rng.normal(size=(n_genes, k))
        if ties == "few":
            values[[5, 40, 77]] = np.round(values[[5, 40, 77]])
        elif ties == "most":
            values[::2] = np.round(values[::2])
        groups.append(group_ranks(np, values))
    backend = NumpyBackend()
    fast = PairBlocks(np, *groups, 17, backend.upper_triangle, backend.level_triangle)
    core = PairBlocks(np, *groups, 17, backend.upper_triangle)
    assert backend.level_triangle(np.zeros((2, 3)), 0, np.int16) is not None
    for start in core.starts():
        got, want = fast.compact_block(start), core.compact_block(start)
        assert got[:2] == want[:2]
        for g, w in zip(got[2:], want[2:]):
            for field in ("levels", "tied_r", "r"):
                a, b = getattr(g, field), getattr(w, field)
                assert (a is None) == (b is None), field
                assert a is None or (a.dtype == b.dtype and a.tobytes() == b.tobytes()), (start, field)
            assert g.sentinel == w.sentinel


@pytest.mark.parametrize("high", [2.5, np.inf])
def test_values_in_range_equal_the_compared_and_compressed_values(high, monkeypatch):
    rng = np.random.default_rng(9)
    s = rng.uniform(0, 4, 100_003)
    s[:6] = [np.nan, np.inf, 1.0, 2.5, np.nextafter(1.0, 0), -0.0]
    want = s[(s >= 1.0) & (s < high)] if high < np.inf else s[s >= 1.0]  # the threshold pass's screen
    got = {}
    for numba in ("1", "0"):
        monkeypatch.setenv("BOOTGPU_NUMBA", numba)
        got[numba] = NumpyBackend().values_in_range(s, 1.0, high)
    assert got["1"].tobytes() == got["0"].tobytes() == _generic().values_in_range(s, 1.0, high).tobytes() == want.tobytes()
    assert (np.inf in got["1"]) == (high == np.inf)
