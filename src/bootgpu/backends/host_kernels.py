"""Compiled host kernels (Numba) for the NumPy backend's hottest loops, each the same bytes as
the NumPy code it replaces, which stays as the fallback where Numba is missing (``available``) or
switched off (``BOOTGPU_NUMBA=0``).

Only loops whose result does not depend on the order of operations live here: integer dot products
(exact), IEEE divisions and subtractions done element by element as NumPy does them, and order
statistics (a selection, whatever the algorithm).  Float sums (means, standard deviations) stay
NumPy's own pairwise summation.

Kernels compile on first use (about a second each, cached on disk by Numba afterwards) and release
the GIL, so the backend's threads run them side by side.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading

import numpy as np

_lock = threading.Lock()
_kernels: dict | None = None
_failed = False


def enabled() -> bool:
    """Whether the compiled kernels are used: Numba importable and ``BOOTGPU_NUMBA`` not 0."""
    return os.environ.get("BOOTGPU_NUMBA", "1") != "0" and _load() is not None


def wanted() -> bool:
    """Whether a run here will use the compiled kernels, without compiling or importing them (the
    planner's question: their tables take less memory)."""
    if os.environ.get("BOOTGPU_NUMBA", "1") == "0" or _failed:
        return False
    return _kernels is not None or importlib.util.find_spec("numba") is not None


def _load() -> dict | None:
    global _kernels, _failed
    if _kernels is not None or _failed:
        return _kernels
    with _lock:
        if _kernels is None and not _failed:
            try:
                _kernels = _compile(cache=True)
            except ImportError:
                _failed = True
            except RuntimeError:  # Numba found no writable cache directory: compile in memory only
                _kernels = _compile(cache=False)
    return _kernels


def kernel(name: str):
    return _load()[name]


def prepare() -> None:
    """Compile (or load from Numba's cache) every kernel for the argument types a run passes, so
    that neither the time nor the memory of compiling falls inside a measured run (a run prepares
    before it takes its memory baseline; worker processes fork with the kernels ready)."""
    if not enabled():
        return
    out = np.zeros((2, 4))
    slots, edge = np.zeros((1, 1), np.int64), np.zeros(1, np.int64)
    # (counts, ranks) dtypes a run passes: core.bootstrap.dot_dtype and NumpyBackend.resample_ranks'
    # rank dtype; the per-group sparse kernel (sparse_ratio) serves only a run that switches the
    # one-pass deltas off, and compiles when first called
    for dtype, rank in ((np.int16, np.int8), (np.int32, np.int8), (np.int32, np.int16), (np.int64, np.int16)):
        c, ranks = np.ones((1, 2), dtype), np.zeros((1, 1, 2), rank)
        kernel("resample_ranks")(slots, slots, c, dtype(1), ranks)
        kernel("counted_dots")(c, ranks, edge, edge, np.zeros((1, 2), dtype))
        for dest in (out, out[:, :2]):  # a whole chunk's deltas, or a view of the shared buffer
            kernel("counted_delta")(c, ranks, np.ones(2), c, ranks, np.ones(2), edge, edge, dest, 0, 0)
    x, ps = np.zeros((1, 4)), np.zeros(1, np.int64)
    kernel("tail_order_statistics")(x, ps, ps + 3, np.zeros(1), np.zeros(1), np.zeros((1, 1)), np.zeros((1, 1)))
    for products in (np.zeros((1, 2), np.float32), np.zeros((1, 2))):  # core.bootstrap.exact_dtype
        for dest in (out, out[:, :2]):
            kernel("gathered_ratio")(products, np.zeros(1, np.int64), np.ones(1), dest, 0, 0, False)
    # JointHistogram's tables (numpy_backend.WrappedCounts), joint indices int32
    kernel("count_into")(np.zeros(1, np.uint8), np.zeros(1, np.int32), np.zeros(1, np.int64), np.zeros(1, np.int32))
    kernel("positions_in")(np.zeros(1, np.uint8), np.zeros(1, np.int32), np.zeros(1, np.int64))
    # the pair passes' levels (core.fdr.spearman_levels: int16, int32) and Fisher bins (int32)
    table, f64 = np.zeros(2), np.zeros(1)
    for dtype in (np.int16, np.int32):
        idx = np.zeros(1, dtype)
        kernel("count_values")(idx, np.zeros(2, np.int64))
        kernel("gathered_abs_diff")(table, idx, f64, 1, table, idx, f64, 1, np.zeros(1))  # sentinel: int
    kernel("bin_counts")(f64, 1.0, np.zeros(2, np.int64))
    kernel("in_range")(f64, 0.0, 1.0, np.zeros(1))
    rect = np.zeros((2, 3), np.float32)
    for block in (rect, rect[:, 1:]):  # a whole product, or a view of one
        kernel("joint_triangle")(block, np.float32(0), np.zeros(3, np.int32))
    for products in (rect, rect.astype(np.float64)):  # a group's exact products (GroupRanks.d)
        for dtype in (np.int16, np.int32):
            kernel("level_triangle")(products, np.int32(0), np.zeros(3, dtype))
    for deltas in (out, out[:, :2]):
        kernel("column_statistics")(deltas, 0, 1, *pairwise_program(2), ps, ps + 1, 0.0, 0.0, np.zeros(1), np.zeros(1),
                                    np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(1, np.int64), np.zeros(1, np.int64))


def _compile(cache: bool) -> dict:
    import numba

    global select
    # error_model "numpy": a division is IEEE's (no zero check in the loop, which also keeps it vectorised)
    jit = numba.njit(nogil=True, cache=cache, error_model="numpy")
    # the helpers the kernels call: compiled globals by the time those compile
    global select_tails, leaf_sum, pairwise_sum, counted_row, turn, store_tile
    select = jit(_select)
    inline = numba.njit(nogil=True, cache=cache, error_model="numpy", inline="always")  # into the kernels' own loops
    counted_row = inline(_counted_row)
    turn = inline(_turn)
    store_tile = inline(_store_tile)
    select_tails = jit(_select_tails)
    leaf_sum = jit(_leaf_sum)
    pairwise_sum = jit(_pairwise_sum)
    return {"sparse_ratio": jit(_sparse_ratio), "tail_order_statistics": jit(_tail_order_statistics),
            "column_statistics": jit(_column_statistics), "count_into": jit(_count_into),
            "gathered_ratio": jit(_gathered_ratio), "resample_ranks": jit(_resample_ranks),
            "positions_in": jit(_positions_in),
            "counted_dots": jit(_counted_dots),
            "joint_triangle": jit(_joint_triangle), "level_triangle": jit(_level_triangle),
            "counted_delta": jit(_counted_delta),
            "count_values": jit(_count_values), "bin_counts": jit(_bin_counts), "in_range": jit(_in_range),
            "gathered_abs_diff": jit(_gathered_abs_diff)}


select = select_tails = leaf_sum = pairwise_sum = None  # compiled helpers (``_compile``)
counted_row = turn = store_tile = None


def _resample_ranks(slot_position, tie_last, c, m, d):  # pragma: no cover - compiled
    # d[u, p, r]: gene u's doubled centred average rank of position p in resample r, walking each
    # gene's slots in sort order with X the counts so far (exclusive scan): a tie group of slots
    # s0..s1 with counts G shares X[s0] + X[s1 + 1] - m = 2 X + G - m (a slot alone is a group of
    # one).  Integers, exact: |d| <= m, X and G <= m in the dtype of c; d's dtype holds m
    n_genes, k = slot_position.shape
    n_rep = c.shape[1]
    x = np.empty(n_rep, dtype=c.dtype)
    group = np.empty(n_rep, dtype=c.dtype)
    for u in range(n_genes):
        x[:] = 0
        du = d[u]
        s = 0
        while s < k:
            s1 = tie_last[u, s]
            if s1 == s:
                cp, dp = c[slot_position[u, s]], du[slot_position[u, s]]
                for r in range(n_rep):
                    dp[r] = x[r] + x[r] + cp[r] - m
                    x[r] += cp[r]
            else:
                group[:] = 0
                for t in range(s, s1 + 1):
                    cp = c[slot_position[u, t]]
                    for r in range(n_rep):
                        group[r] += cp[r]
                for t in range(s, s1 + 1):
                    dp = du[slot_position[u, t]]
                    for r in range(n_rep):
                        dp[r] = x[r] + x[r] + group[r] - m
                for r in range(n_rep):
                    x[r] += group[r]
            s = s1 + 1


def _counted_row(c, da, db, row):  # pragma: no cover - compiled
    # row[r] = sum_p c[p, r] da[p, r] db[p, r]: one edge's weighted dots along the replicates, in
    # the integer dtype of ``row`` (exact: core.bootstrap.dot_dtype bounds every partial sum, and
    # each product's true value fits it, so a wider intermediate truncates to the same integer)
    row[:] = 0
    for p in range(da.shape[0]):
        cr, ar, br = c[p], da[p], db[p]
        for r in range(row.shape[0]):
            row[r] += cr[r] * ar[r] * br[r]


def _turn(dots, n, turned):  # pragma: no cover - compiled
    # turned[r, t] = dots[t, r] for the first n edges of a tile: replicate-major, as stored
    for t in range(n):
        row = dots[t]
        for r in range(row.shape[0]):
            turned[r, t] = row[r]


def _store_tile(turned, den, out, r0, c0, n, subtract):  # pragma: no cover - compiled
    # out[r0 + r, c0 + t] (-)= turned[r, t] / den[r] for the n edges of a tile
    for r in range(turned.shape[0]):
        num, dv = turned[r], den[r]
        dest = out[r0 + r, c0:c0 + n]
        if subtract:
            for t in range(n):
                dest[t] -= num[t] / dv
        else:
            for t in range(n):
                dest[t] = num[t] / dv


EDGE_TILE = 16  # edges whose dots are turned replicate-major together: 16 adjacent values a row stored


def _counted_delta(c_high, d_high, den_high, c_low, d_low, den_low, a, b, out, r0, c0):  # pragma: no cover - compiled
    # out[r0 + r, c0 + e] = r_high - r_low of edge e in resample r, both groups' weighted dots
    # (_counted_row) and the difference stored once: the bytes of storing r_high, then taking r_low
    # from it (each quotient the same IEEE division, then one IEEE subtraction)
    n_rep, n_edges = d_high.shape[2], a.shape[0]
    dots_high = np.empty((EDGE_TILE, n_rep), dtype=c_high.dtype)
    dots_low = np.empty((EDGE_TILE, n_rep), dtype=c_low.dtype)
    turned_high = np.empty((n_rep, EDGE_TILE))
    turned_low = np.empty((n_rep, EDGE_TILE))
    for e0 in range(0, n_edges, EDGE_TILE):
        n = min(EDGE_TILE, n_edges - e0)
        for t in range(n):
            counted_row(c_high, d_high[a[e0 + t]], d_high[b[e0 + t]], dots_high[t])
            counted_row(c_low, d_low[a[e0 + t]], d_low[b[e0 + t]], dots_low[t])
        turn(dots_high, n, turned_high)
        turn(dots_low, n, turned_low)
        for r in range(n_rep):
            high, low, dv_high, dv_low = turned_high[r], turned_low[r], den_high[r], den_low[r]
            dest = out[r0 + r, c0 + e0:c0 + e0 + n]
            for t in range(n):
                dest[t] = high[t] / dv_high - low[t] / dv_low


def _counted_dots(c, d, a, b, out):  # pragma: no cover - compiled
    # out[e] = the weighted dots of edge e (_counted_row): the dots of edges whose S is summed
    for e in range(a.shape[0]):
        counted_row(c, d[a[e]], d[b[e]], out[e])


def _sparse_ratio(c, left, right, a, b, den, out, r0, c0, subtract):  # pragma: no cover - compiled
    # out[r0 + r, c0 + e] (-)= (sum_p c[p, r] left[a_e, p, r] right[b_e, p, r]) / den[r], edges in
    # tiles of EDGE_TILE: their dots first (integers in the dtype of c: exact, _counted_row), edge
    # by edge along the replicates, then turned replicate-major and divided, a tile's adjacent
    # values of a row at a time.  With the counts and left = right = D: W = c * D formed as it
    # goes; with ones and left = W: the dots of W and D
    n_rep, n_edges = left.shape[2], a.shape[0]
    dots = np.empty((EDGE_TILE, n_rep), dtype=c.dtype)
    turned = np.empty((n_rep, EDGE_TILE))
    for e0 in range(0, n_edges, EDGE_TILE):
        n = min(EDGE_TILE, n_edges - e0)
        for t in range(n):
            counted_row(c, left[a[e0 + t]], right[b[e0 + t]], dots[t])
        turn(dots, n, turned)
        store_tile(turned, den, out, r0, c0 + e0, n, subtract)


def _gathered_ratio(products, flat, den, out, r0, c0, subtract):  # pragma: no cover - compiled
    # out[r0 + r, c0 + e] (-)= products[r, flat[e]] / den[r]: the value widened to float64 and
    # divided, as NumPy's divide of a float32 array by float64 denominators does
    for r in range(products.shape[0]):
        src, dv = products[r], den[r]
        dest = out[r0 + r, c0:c0 + flat.shape[0]]
        if subtract:
            for e in range(flat.shape[0]):
                dest[e] -= np.float64(src[flat[e]]) / dv
        else:
            for e in range(flat.shape[0]):
                dest[e] = np.float64(src[flat[e]]) / dv


def _count_into(low, wraps, n_wraps, values):  # pragma: no cover - compiled
    # count v for every v of values into low (uint8) + 256 wraps (numpy_backend.WrappedCounts):
    # one read of the values, no copy, no fresh table; a byte that wraps adds one to wraps[v]
    # and n_wraps[0]; returns how many fell outside the table, which are not counted
    n, outside = low.shape[0], 0
    for v in values:
        if v < 0 or v >= n:
            outside += 1
        else:
            c = low[v] + 1
            if c > 255:
                low[v] = 0
                wraps[v] += 1
                n_wraps[0] += 1
            else:
                low[v] = c
    return outside


def _count_values(values, counts):  # pragma: no cover - compiled
    # counts[v] += 1 for every v of values, read as they are (no copy to intp, as np.bincount
    # makes of narrower integers); returns how many fell outside the table, which are not counted
    n, outside = counts.shape[0], 0
    for v in values:
        if v < 0 or v >= n:
            outside += 1
        else:
            counts[v] += 1
    return outside


def _bin_counts(s, scale, counts):  # pragma: no cover - compiled
    # counts[n - 1 - min(int32(v * scale), n - 1)] += 1 for every v of s: core.fdr.BHStream.bins
    # (the same float64 product, truncated as NumPy's astype truncates) and its bincount in one
    # pass; returns how many were NaN, negative or beyond int32, which are not counted
    n, bad = counts.shape[0], 0
    for v in s:
        x = v * scale
        if not (x >= 0.0 and x < 2147483648.0):
            bad += 1
            continue
        b = np.int32(x)
        if b > n - 1:
            b = n - 1
        counts[n - 1 - b] += 1
    return bad


def _in_range(s, low, high, out):  # pragma: no cover - compiled
    # out[:n] = the values v of s with low <= v < high (high = inf: no upper bound, inf kept), in
    # order (every value stored, the count advanced by the test: no branch); returns n
    n = 0
    if high == np.inf:
        for i in range(s.shape[0]):
            v = s[i]
            out[n] = v
            n += v >= low
        return n
    for i in range(s.shape[0]):
        v = s[i]
        out[n] = v
        n += (v >= low) & (v < high)
    return n


def _gathered_abs_diff(table_a, idx_a, fill_a, sentinel_a, table_b, idx_b, fill_b, sentinel_b, out):  # pragma: no cover - compiled
    # out[i] = |A[i] - B[i]|, A[i] = table_a[idx_a[i]] except where idx_a[i] == sentinel_a and
    # fill_a is not empty, which take fill_a's values in order (and B the same): the IEEE
    # subtraction and absolute value of NumPy's take, assignment, subtract and abs.  Returns
    # False where a fill does not match its sentinels one for one (nothing read beyond it)
    ia = ib = 0
    n_a, n_b = fill_a.shape[0], fill_b.shape[0]
    for i in range(out.shape[0]):
        u, w = idx_a[i], idx_b[i]
        if n_a and u == sentinel_a:
            if ia == n_a:
                return False
            a = fill_a[ia]
            ia += 1
        else:
            a = table_a[u]
        if n_b and w == sentinel_b:
            if ib == n_b:
                return False
            b = fill_b[ib]
            ib += 1
        else:
            b = table_b[w]
        out[i] = abs(a - b)
    return ia == n_a and ib == n_b


def _joint_triangle(rect, offset, out):  # pragma: no cover - compiled
    # out = rect[i, i + 1:] + offset as int32, row after row (condensed order), the float32 sum
    # and the truncating cast NumPy's add and astype make (exact integers here)
    o = 0
    for i in range(rect.shape[0]):
        row = rect[i]
        for j in range(i + 1, rect.shape[1]):
            out[o] = np.int32(row[j] + offset)
            o += 1


def _level_triangle(rect, offset, out):  # pragma: no cover - compiled
    # out = (int32(rect[i, i + 1:]) + offset) >> 2 in the integer dtype of out, row after row
    # (condensed order): the triangle, int32 copy, addition, shift and narrowing NumPy makes of a
    # block of exact dot products (core.spearman.PairBlocks), levels within out's dtype
    o = 0
    for i in range(rect.shape[0]):
        row = rect[i]
        for j in range(i + 1, rect.shape[1]):
            out[o] = (np.int32(row[j]) + offset) >> 2
            o += 1


def _positions_in(bits, values, out):  # pragma: no cover - compiled
    # out[:n] = the positions i whose values[i] has its bit set in ``bits`` (np.packbits, little
    # bit order), ascending: every position stored, the count advanced by the bit; returns n
    n = 0
    for i in range(values.shape[0]):
        v = values[i]
        out[n] = i
        n += (bits[v >> 3] >> (v & 7)) & 1
    return n


def _select(buf, start, stop, kth):  # pragma: no cover - compiled
    # Wirth's selection in buf[start:stop]: buf[kth] becomes the value a sort would put there,
    # with nothing larger before it and nothing smaller after it (within start:stop)
    lo, hi = start, stop - 1
    while lo < hi:
        pivot, i, j = buf[kth], lo, hi
        while i <= j:
            while buf[i] < pivot:
                i += 1
            while pivot < buf[j]:
                j -= 1
            if i <= j:
                buf[i], buf[j] = buf[j], buf[i]
                i += 1
                j -= 1
        if j < kth:
            lo = i
        if kth < i:
            hi = j
    return buf[kth]


def _tail_order_statistics(x, lower, upper, below, above, out_lower, out_upper):  # pragma: no cover - compiled
    # out_lower[i, j] = x[i] sorted at lower[j] (descending positions of the lower half), out_upper
    # at upper[j] (ascending, upper half): each tail's positions selected among the row's values
    # beyond below[i] / above[i] (one branch-free pass) where there are at least as many as the
    # positions need (the row's smallest / largest values are then all among them), else among
    # the whole row
    n_rows, n = x.shape
    lo = np.empty(n + 1, dtype=x.dtype)
    hi = np.empty(n + 1, dtype=x.dtype)
    for i in range(n_rows):
        row = x[i]
        t_lo, t_hi = below[i], above[i]
        n_lo, n_hi = 0, 0
        for v in row:
            lo[n_lo] = v
            n_lo += v < t_lo
            hi[n_hi] = v
            n_hi += v > t_hi
        select_tails(row, lo, n_lo, hi, n_hi, lower, upper, out_lower[i], out_upper[i])


@functools.lru_cache(maxsize=8)
def pairwise_program(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NumPy's pairwise summation of ``n`` values (what ``np.add.reduce`` does along a row) as leaves
    (start, length: at most 128 values, summed with 8 accumulators) and a postfix program over
    them (k >= 0: push leaf k's sum; -1: pop b, pop a, push a + b), so a kernel sums a row in
    exactly NumPy's order (``_pairwise_sum``)."""
    starts, lengths, program = [], [], []

    def split(start: int, count: int) -> None:
        if count <= 128:
            program.append(len(starts))
            starts.append(start)
            lengths.append(count)
            return
        half = count // 2
        half -= half % 8
        split(start, half)
        split(start + half, count - half)
        program.append(-1)

    split(0, n)
    return np.asarray(starts, np.int64), np.asarray(lengths, np.int64), np.asarray(program, np.int64)


def _leaf_sum(r, start, count, centre, squares):  # pragma: no cover - compiled
    # NumPy's pairwise leaf sum of r[start:start + count] (8 accumulators, then the rest in order),
    # or with ``squares`` of (value - centre)^2; 8 scalars, so they live in registers
    if count < 8:
        res = 0.0
        for i in range(start, start + count):
            if squares:
                d = r[i] - centre
                res += d * d
            else:
                res += r[i]
        return res
    j = start
    if squares:
        d0, d1, d2, d3 = r[j] - centre, r[j + 1] - centre, r[j + 2] - centre, r[j + 3] - centre
        d4, d5, d6, d7 = r[j + 4] - centre, r[j + 5] - centre, r[j + 6] - centre, r[j + 7] - centre
        a0, a1, a2, a3, a4, a5, a6, a7 = d0 * d0, d1 * d1, d2 * d2, d3 * d3, d4 * d4, d5 * d5, d6 * d6, d7 * d7
    else:
        a0, a1, a2, a3, a4, a5, a6, a7 = r[j], r[j + 1], r[j + 2], r[j + 3], r[j + 4], r[j + 5], r[j + 6], r[j + 7]
    i = 8
    while i < count - (count % 8):
        j = start + i
        if squares:
            d0, d1, d2, d3 = r[j] - centre, r[j + 1] - centre, r[j + 2] - centre, r[j + 3] - centre
            d4, d5, d6, d7 = r[j + 4] - centre, r[j + 5] - centre, r[j + 6] - centre, r[j + 7] - centre
            a0 += d0 * d0
            a1 += d1 * d1
            a2 += d2 * d2
            a3 += d3 * d3
            a4 += d4 * d4
            a5 += d5 * d5
            a6 += d6 * d6
            a7 += d7 * d7
        else:
            a0 += r[j]
            a1 += r[j + 1]
            a2 += r[j + 2]
            a3 += r[j + 3]
            a4 += r[j + 4]
            a5 += r[j + 5]
            a6 += r[j + 6]
            a7 += r[j + 7]
        i += 8
    res = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    while i < count:
        if squares:
            d = r[start + i] - centre
            res += d * d
        else:
            res += r[start + i]
        i += 1
    return res


def _pairwise_sum(r, starts, lengths, program, centre, squares, stack):  # pragma: no cover - compiled
    # np.add.reduce of the contiguous row r (or of (r - centre)^2) in NumPy's own order: the leaves
    # and postfix program of ``pairwise_program``
    depth = 0
    for op in program:
        if op >= 0:
            stack[depth] = leaf_sum(r, starts[op], lengths[op], centre, squares)
            depth += 1
        else:
            depth -= 1
            stack[depth - 1] = stack[depth - 1] + stack[depth]
    return stack[0]


def _select_tails(row, lo, n_lo, hi, n_hi, lower, upper, out_lower, out_upper):  # pragma: no cover - compiled
    # the positions ``lower`` (descending) among lo[:n_lo] and ``upper`` (ascending) among hi[:n_hi],
    # the candidates below / above a row's thresholds where there are at least as many as the
    # positions need (the row's smallest / largest values are then all among them), else among
    # the whole row (copied into lo / hi)
    n = row.shape[0]
    if lower.shape[0] and n_lo < lower[0] + 1:
        lo[:n] = row
        n_lo = n
    if upper.shape[0] and n_hi < n - upper[0]:
        hi[:n] = row
        n_hi = n
    stop = n_lo
    for j in range(lower.shape[0]):
        out_lower[j] = select(lo, 0, stop, lower[j])
        stop = lower[j]
    start, shift = 0, n - n_hi
    for j in range(upper.shape[0]):
        c = upper[j] - shift
        out_upper[j] = select(hi, start, n_hi, c)
        start = c + 1


def _column_statistics(x, e0, e1, starts, lengths, program, lower, upper, z_lo, z_hi, mean, std, out_lower,
                       out_upper, above, below):  # pragma: no cover - compiled
    # for columns e0:e1 of replicate-major x (B, E), in tiles of 64 columns, each tile read a row
    # (512 bytes) at a time into a contiguous row per column (the column's B values stay in L1
    # from then on): the mean and standard deviation (ddof 1) by NumPy's own pairwise sums
    # (``pairwise_program``), the sign counts, and the order statistics ``lower`` / ``upper``
    # selected among the values beyond mean -/+ z sd, gathered in one branch-free pass (the row's
    # smallest / largest values are all among them where there are at least as many as the
    # positions need; else among the whole row); outputs from e0
    n = x.shape[0]
    tile = 64
    rows = np.empty((tile, n), dtype=x.dtype)
    stack = np.empty(program.shape[0] + 1)
    both = np.empty(n + 1, dtype=x.dtype)
    lo = np.empty(n + 1, dtype=x.dtype)
    hi = np.empty(n + 1, dtype=x.dtype)
    for c0 in range(e0, e1, tile):
        m = min(tile, e1 - c0)
        for b in range(n):
            src = x[b, c0:c0 + m]
            for t in range(m):
                rows[t, b] = src[t]
        for t in range(m):
            i = c0 - e0 + t
            r = rows[t]
            mu = pairwise_sum(r, starts, lengths, program, 0.0, False, stack) / n
            sd = np.sqrt(pairwise_sum(r, starts, lengths, program, mu, True, stack) / (n - 1)) if n > 1 else np.nan
            mean[i], std[i] = mu, sd
            t_lo, t_hi = mu - z_lo * sd, mu + z_hi * sd
            n_both, n_pos, n_neg = 0, 0, 0
            for b in range(n):  # both tails' candidates in one buffer: one store a value
                v = r[b]
                both[n_both] = v
                n_both += (v < t_lo) | (v > t_hi)
                n_pos += v > 0
                n_neg += v < 0
            above[i], below[i] = n_pos, n_neg
            n_lo, n_hi = 0, 0
            for b in range(n_both):
                v = both[b]
                if v < t_lo:
                    lo[n_lo] = v
                    n_lo += 1
                else:
                    hi[n_hi] = v
                    n_hi += 1
            select_tails(r, lo, n_lo, hi, n_hi, lower, upper, out_lower[i], out_upper[i])
