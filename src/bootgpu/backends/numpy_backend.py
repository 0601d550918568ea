"""NumPy on the host: the reference backend and the CPU workhorse."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import dataclasses
import os
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.special

from bootgpu.backends import host_kernels
from bootgpu.backends._base import Backend, PeakMemory, granted_cores
from bootgpu.backends.host_memory import tightest_host_limit
from bootgpu.core.bootstrap import host_dense_density
from bootgpu.core.ranks import Scans
from bootgpu.core.tails import TAIL_MIN_COLUMNS, tail_needs, tail_z

_NARROW = (np.dtype(np.int16), np.dtype(np.int32))  # the integers the compiled counts and gathers take


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclasses.dataclass(frozen=True)
class WrappedCounts:
    """A count table of the compiled ``count_into``: a cell's count is low + 256 wraps, ``low`` a
    byte a cell (the cache lines the counting touches), ``wraps`` (int32) written only when a
    byte wraps -- never at ALL's scale, where the busiest of 6.8 M cells counts ~130 of 80 M
    pairs -- and read only where ``n_wraps`` (the wraps so far) says one did."""

    low: np.ndarray  # (n,) uint8
    wraps: np.ndarray  # (n,) int32
    n_wraps: np.ndarray  # (1,) int64

    @classmethod
    def zeros(cls, n: int) -> "WrappedCounts":
        return cls(np.zeros(n, dtype=np.uint8), np.zeros(n, dtype=np.int32), np.zeros(1, dtype=np.int64))


class NumpyBackend(Backend):
    name = "numpy"
    xp = np
    working_set_bytes = 16 * 2**20  # batches that stay in cache: measured 2-3x faster (docs/benchmarks.md)
    ieee_float32_matmul = True  # OpenBLAS/MKL sgemm
    flat_sorts = False  # NumPy sorts each row of a 2-D array in place, in cache

    def __init__(self):
        limit_malloc_arenas()

    def dense_density(self, m: int) -> float:
        # BLAS products of dense tile pairs, where they beat the compiled sparse dots (docs/benchmarks.md)
        return host_dense_density(m)

    def device_name(self) -> str:
        return "cpu"

    def memory_info(self) -> tuple[int, int]:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return tightest_host_limit()[0], total

    def available_memory(self) -> tuple[int, str]:
        return tightest_host_limit()

    def host_threads(self) -> int:
        """The cores granted (``granted_cores``: BOOTGPU_THREADS, OMP_NUM_THREADS, affinity).
        NumPy's elementwise work is single-threaded, so chunks of a stage run in this many threads."""
        return granted_cores()

    _pool, _pool_size = None, 0

    @property
    def scans(self):
        return NumpyScans(np)

    def _executor(self, threads: int) -> ThreadPoolExecutor:
        """One pool per backend, grown on demand to ``threads`` workers."""
        if self._pool_size < threads:
            if self._pool is not None:
                self._pool.shutdown()
            self._pool, self._pool_size = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bootgpu"), threads
        return self._pool

    _cores_now = None  # () -> cores this process may use now (``share_cores``); None: every chunk asked for

    def share_cores(self, cores_now) -> None:
        """Run at most ``cores_now()`` chunks at once, asked anew at each stage's start: a worker
        process among several whose plan sizes its chunks for all the cores, but which uses only its
        share of them while the others are busy (``study.workers``)."""
        self._cores_now = cores_now

    def _in_flight(self, threads: int) -> int:
        return threads if self._cores_now is None else max(1, min(threads, int(self._cores_now())))

    def map_chunks(self, fn, items, threads: int = 1) -> list:
        items = list(items)
        threads = self._in_flight(threads)
        if min(threads, len(items)) <= 1:
            return [fn(item) for item in items]
        return list(self._executor(threads).map(fn, items))  # NumPy releases the GIL in its loops

    def imap_chunks(self, fn, items, threads: int = 1):
        items = list(items)
        threads = self._in_flight(threads)
        if min(threads, len(items)) <= 1:
            yield from (fn(item) for item in items)
            return
        pool, pending = self._executor(threads), collections.deque()
        for item in items:  # a window of ``threads`` items: the next starts as the oldest is taken
            if len(pending) == threads:
                yield pending.popleft().result()
            pending.append(pool.submit(fn, item))
        while pending:
            yield pending.popleft().result()

    @contextlib.contextmanager
    def track_peak(self):
        """Samples RSS every 5 ms in a thread (ru_maxrss cannot be reset), reports the rise."""
        result = PeakMemory()
        start = current_rss_bytes()
        peak = [start]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], current_rss_bytes())
                result.peak_bytes = peak[0] - start  # the rise so far, readable inside the block
                time.sleep(0.005)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield result
        finally:
            done.set()
            thread.join()
            peak[0] = max(peak[0], current_rss_bytes())
            result.peak_bytes = peak[0] - start

    def to_device(self, array):
        return np.asarray(array)

    def to_host(self, array):
        return np.asarray(array)

    def bincount(self, x, minlength: int, weights=None):
        # integers narrower than intp counted as they are: np.bincount first copies them to intp
        # (a pair block's int16 levels: 0.7 against 1.4 ms a million, scripts/host_kernel_times.py)
        if weights is None and x.dtype in _NARROW and x.ndim == 1 and x.flags.c_contiguous and host_kernels.enabled():
            counts = np.zeros(minlength, dtype=np.int64)
            if not host_kernels.kernel("count_values")(x, counts):
                return counts
        return np.bincount(x, weights=weights, minlength=minlength)

    def bin_counts(self, s, scale: float, n_bins: int):
        # BHStream.bins and its bincount in one compiled pass (1.3 against 3.2 ms a million values)
        if not host_kernels.enabled() or s.dtype != np.float64 or s.ndim != 1:
            return None
        counts = np.zeros(n_bins, dtype=np.int64)
        return None if host_kernels.kernel("bin_counts")(s, float(scale), counts) else counts

    def values_in_range(self, s, low: float, high: float):
        # one compiled pass (host_kernels.in_range) instead of one or two comparisons, their "and"
        # and the boolean compress (the threshold pass's screen of a block's Fisher statistics: 0.7
        # against 2.4 ms a million)
        if not host_kernels.enabled() or s.dtype != np.float64 or s.ndim != 1:
            return Backend.values_in_range(self, s, low, high)
        out = np.empty(s.shape[0])  # only the pages of what is written are touched
        n = host_kernels.kernel("in_range")(np.ascontiguousarray(s), float(low), float(high), out)
        return out[:n].copy()

    def gathered_abs_diff(self, a: tuple, b: tuple):
        # one compiled pass instead of two gathers, the fills, a subtraction and an abs (a pair
        # block's Fisher statistic from its levels: 0.9 against 5.0 ms a million pairs)
        (table_a, idx_a, sentinel_a, fill_a), (table_b, idx_b, sentinel_b, fill_b) = a, b
        arrays = (table_a, fill_a, table_b, fill_b)
        if (not host_kernels.enabled() or any(v.dtype != np.float64 for v in arrays) or idx_a.dtype not in _NARROW
                or idx_b.dtype not in _NARROW or idx_a.shape != idx_b.shape):
            return Backend.gathered_abs_diff(self, a, b)
        out = np.empty(idx_a.shape[0])
        args = [np.ascontiguousarray(v) for v in (table_a, idx_a, fill_a, table_b, idx_b, fill_b)]
        if host_kernels.kernel("gathered_abs_diff")(*args[:3], int(sentinel_a), *args[3:], int(sentinel_b), out):
            return out
        return Backend.gathered_abs_diff(self, a, b)  # fills and sentinels that do not match: its error

    def take_in_range(self, x, indices):
        # mode="wrap" skips the bounds check's error path: 15-18 % faster gathering a 6.8 MB table
        # at 20 M random indices (the joint selection pass)
        return np.take(x, indices, mode="wrap")

    def cell_set(self, mask):
        # a bit a cell: ALL's 6.8 M cells in 850 KB, which stay in L2 (a bool table does not)
        if not host_kernels.enabled():
            return mask
        return np.packbits(np.asarray(mask, dtype=bool), bitorder="little")

    def positions_in(self, cells, values):
        # one compiled pass over the values testing bits (host_kernels.positions_in): 1.9-2.1 against
        # 6.0-6.3 ns a value for a gathered bool table and its nonzero (6.8 M cells, 2 M values;
        # scripts/host_kernel_times.py)
        if not host_kernels.enabled() or cells.dtype == np.bool_:
            return Backend.positions_in(self, cells, values)
        out = np.empty(values.shape[0], dtype=np.int64)  # only the pages of what is written are touched
        n = host_kernels.kernel("positions_in")(cells, np.ascontiguousarray(values), out)
        return out[:n].copy()

    def bincount_parts(self, parts, minlength: int):
        # np.bincount copies non-intp input to intp first: concatenating straight into intp saves
        # that pass (measured 17 instead of 25 ns a value into 6.8 M cells)
        return np.bincount(np.concatenate(parts, dtype=np.intp), minlength=minlength)

    def subtract_counts(self, counts, parts):
        # a few indices into many counts (ALL: ~120,000 placeholders against 6.8 M cells): no fresh
        # table of every cell to zero, fill and subtract, which a bincount makes
        for part in parts:
            np.subtract.at(counts, np.asarray(part, dtype=np.intp), 1)
        return counts

    def count_table(self, n: int):
        # the compiled kernel counts in a byte a cell (``WrappedCounts``): ALL's 6.8 M cells in
        # 6.8 MB, which stay in cache beside another process's (2-3 against 4-5.5 ns a value
        # with int32, and 5-7 with int64)
        return WrappedCounts.zeros(n) if host_kernels.enabled() else Backend.count_table(self, n)

    def count_into(self, table, parts) -> None:
        if not isinstance(table, WrappedCounts):
            return Backend.count_into(self, table, parts)
        count = host_kernels.kernel("count_into")
        for part in parts:
            if count(table.low, table.wraps, table.n_wraps, np.ascontiguousarray(part, dtype=np.int32)):
                raise ValueError(f"count_into: values outside a table of {table.low.shape[0]} counts")

    def table_counts(self, table, start: int, stop: int):
        if not isinstance(table, WrappedCounts):
            return Backend.table_counts(self, table, start, stop)
        counts = table.low[start:stop].astype(np.int64)
        if table.n_wraps[0]:  # the wraps' pages are read only where a cell ever wrapped
            counts += table.wraps[start:stop].astype(np.int64) << 8
        return counts

    def table_capacity(self, table) -> int:
        if not isinstance(table, WrappedCounts):
            return Backend.table_capacity(self, table)
        return (int(np.iinfo(np.int32).max) << 8) + 255

    def upper_triangle(self, rect):
        # row slices copy as fast as memory; a boolean mask of the triangle is ~10x slower here
        return np.concatenate([rect[i, i + 1:] for i in range(rect.shape[0])])

    def joint_triangle(self, rect, offset):
        # one compiled pass (host_kernels.joint_triangle) instead of the add, the int32 copy and the
        # row slices' copy: the block read once, its triangle written once
        if not host_kernels.enabled() or rect.dtype != np.float32:
            return None
        n_rows, n_cols = rect.shape
        out = np.empty(n_rows * n_cols - n_rows * (n_rows + 1) // 2, dtype=np.int32)
        host_kernels.kernel("joint_triangle")(rect, np.float32(offset), out)
        return out

    def level_triangle(self, rect, offset, dtype):
        # one compiled pass (host_kernels.level_triangle) instead of the row slices' copy, the int32
        # copy, the addition, the shift and the narrowing copy (a 1,048-row block of the embedded
        # matrix, 1.55 M pairs: 1.5 against 3.0 ms, scripts/host_kernel_times.py)
        if not host_kernels.enabled() or rect.dtype not in (np.float32, np.float64) or np.dtype(dtype) not in _NARROW:
            return None
        n_rows, n_cols = rect.shape
        out = np.empty(n_rows * n_cols - n_rows * (n_rows + 1) // 2, dtype=dtype)
        host_kernels.kernel("level_triangle")(rect, np.int32(offset), out)
        return out

    def cummin(self, x):
        return np.minimum.accumulate(x)

    def betainc(self, a, b, x):
        return scipy.special.betainc(a, b, x)

    def erfc(self, x):
        return scipy.special.erfc(x)

    _baseline_rss: int | None = None  # RSS when the run prepared (release_memory)

    def prepare(self) -> None:
        host_kernels.prepare()
        self._baseline_rss = current_rss_bytes()

    def release_memory(self, predicted_bytes: int = 0, budget_bytes: int = 0) -> None:
        """glibc keeps freed blocks below its (adaptive, up to 32 MiB) mmap threshold in the heap:
        the pair cache's blocks stayed resident through the bootstrap (measured: 5.2 GiB under a
        2.4 GiB bootstrap at 20,000 genes).  malloc_trim returns every free page -- which the next
        focus gene then faults in again, zeroed (a quarter of the embedded matrix's whole-study CPU
        time was the kernel's).  So the free bytes in the heaps are kept where they fit both beside
        the predicted peak in the budget and, with the highest RSS since ``prepare``, within the
        prediction (the process then stays within its budget even if it reused none of them)."""
        if predicted_bytes > 0 and self._baseline_rss is not None:
            used = max(0, peak_rss_bytes() - self._baseline_rss)
            free = heap_free_bytes()
            if free is not None and free <= min(budget_bytes - predicted_bytes, predicted_bytes - used):
                return
        malloc_trim()

    @contextlib.contextmanager
    def bootstrap_scope(self, predicted_bytes: int = 0, budget_bytes: int = 0):
        """BLAS in one thread: the bootstrap's matrix products are small (inner size k) and run in
        this backend's threads; OpenBLAS's own threads then only wait on each other (measured:
        block_dots 6.5x slower with two BLAS threads on a busy 2-core machine).  Needs
        threadpoolctl; without it BLAS keeps its threads.  And glibc's heap keeps the freed
        per-replicate arrays (``keep_freed_blocks``); what is left free is handed back at the end."""
        limits = single_blas_thread()
        keep_freed_blocks()
        try:
            with limits:
                yield
        finally:
            self.release_memory(predicted_bytes, budget_bytes)

    def pair_scope(self):
        """BLAS in one thread: each pair block's thin matrix products (k or 2 k deep) run in this
        backend's threads already, and OpenBLAS's own threads only wait on each other (measured on
        ALL focus 0 with two cores shared: the count pass 3.05 s CPU with BLAS threads, 2.09 s
        without; levels per group 7.7 s and 4.3 s).  Needs threadpoolctl, as ``bootstrap_scope``."""
        return single_blas_thread()

    PAIR_DOTS_BYTES = 2**20  # gathered rows per piece: in cache (measured 1.3-1.8x faster than whole arrays)

    def pair_dots(self, w, d, a, b):
        # in cache-sized pieces of edges: gather both rows, one integer einsum pass over k; with the
        # counts for w (after resample_ranks), one compiled pass weighting as it goes
        if w.ndim == 2:
            if not host_kernels.enabled():
                return Backend.pair_dots(self, w, d, a, b)
            if a is None:
                a = b = np.arange(d.shape[0], dtype=np.int64)
            out = np.empty((a.shape[0], d.shape[2]), dtype=w.dtype)
            host_kernels.kernel("counted_dots")(np.ascontiguousarray(w), d, np.ascontiguousarray(a, dtype=np.int64),
                                                np.ascontiguousarray(b, dtype=np.int64), out)
            return out
        if a is None:
            return np.einsum("ekr,ekr->er", w, d)
        n_edges, (_, k, n_rep) = a.shape[0], w.shape
        step = max(1, self.PAIR_DOTS_BYTES // (k * n_rep * w.itemsize))
        if n_edges <= step:  # one piece (``pair_piece``): made replicate-major, what the bootstrap stores
            return np.einsum("ekr,ekr->re", np.take(w, a, axis=0), np.take(d, b, axis=0)).T
        out = np.empty((n_edges, n_rep), dtype=w.dtype)
        for e0 in range(0, n_edges, step):
            np.einsum("ekr,ekr->er", np.take(w, a[e0:e0 + step], axis=0), np.take(d, b[e0:e0 + step], axis=0),
                      out=out[e0:e0 + step])
        return out

    @property
    def ranks_by_gene(self) -> bool:
        return host_kernels.wanted()  # resample_ranks below: with the compiled kernels

    def resample_ranks(self, slot_position, tie_last, counts, m):
        # one compiled pass a gene (host_kernels.resample_ranks) into int8 where m fits (a quarter of
        # the bytes of int16 ranks and their weighted copy, which the sparse dots form as they go),
        # else int16 (|d| <= m)
        if not host_kernels.enabled():
            return None
        c = np.ascontiguousarray(counts)
        d = np.empty((slot_position.shape[0], *c.shape), dtype=np.int8 if m < 2**7 else np.int16 if m < 2**15 else c.dtype)
        host_kernels.kernel("resample_ranks")(slot_position, tie_last, c, c.dtype.type(m), d)
        return d

    def weighted_dots(self, a, b, w, dtype):
        # one pass, no (k, E, R) float temporaries; casting="safe" refuses a lossy dtype
        return np.einsum("per,per,pr->er", a, b, w, dtype=dtype, casting="safe")

    def block_dots(self, wa, db, dtype):
        # BLAS needs each replicate's matrices contiguous: copy into (R, nA, k) and (R, k, nB)
        a = np.ascontiguousarray(wa.transpose(2, 0, 1), dtype=dtype)
        b = np.ascontiguousarray(db.transpose(2, 1, 0), dtype=dtype)
        return np.matmul(a, b)

    def pair_piece(self, k: int, n_rep: int, dtype) -> int:
        return max(1, self.PAIR_DOTS_BYTES // (k * n_rep * np.dtype(dtype).itemsize))

    def store_ratio(self, out, key, num, den=None, subtract: bool = False) -> None:
        # straight into the destination rows; the same bytes as the cast and division apart
        view = out[key]
        if not subtract:
            if den is None:
                np.copyto(view, num)
            else:
                np.divide(num, den, out=view)
            return
        np.subtract(view, num if den is None else np.divide(num, den), out=view)

    def store_gathered_ratio(self, out, rows, cols, products, flat, den, subtract: bool = False) -> None:
        # one compiled pass (host_kernels.gathered_ratio): no gathered copy, no quotient temporary
        if not host_kernels.enabled():
            return Backend.store_gathered_ratio(self, out, rows, cols, products, flat, den, subtract)
        host_kernels.kernel("gathered_ratio")(np.ascontiguousarray(products), np.ascontiguousarray(flat, dtype=np.int64),
                                              np.ascontiguousarray(den).reshape(-1), out, rows.start, cols.start,
                                              bool(subtract))

    def store_pair_ratio(self, out, rows, cols, w, d, a, b, den, subtract: bool = False) -> None:
        # one compiled pass (host_kernels.sparse_ratio): no gathered rows, dots or quotients in memory
        if not host_kernels.enabled():
            return Backend.store_pair_ratio(self, out, rows, cols, w, d, a, b, den, subtract)
        if w.ndim == 2:  # the counts (after resample_ranks): W = c * D formed as the dots go
            c, left = w, d
        else:  # W itself: weights of one
            c, left = np.ones(w.shape[1:], dtype=w.dtype), w
        host_kernels.kernel("sparse_ratio")(c, left, d, a, b, np.ascontiguousarray(den).reshape(-1), out, rows.start,
                                            cols.start, bool(subtract))

    @property
    def fused_deltas(self) -> bool:
        return host_kernels.enabled()

    def store_pair_delta(self, out, rows, cols, high, low, a, b) -> None:
        # both groups' dots and the difference in one compiled pass (host_kernels.counted_delta): the
        # deltas written once instead of stored, read back and written again
        if not host_kernels.enabled() or high[0].ndim != 2 or low[0].ndim != 2:
            return Backend.store_pair_delta(self, out, rows, cols, high, low, a, b)
        host_kernels.kernel("counted_delta")(high[0], high[1], np.ascontiguousarray(high[2]).reshape(-1), low[0], low[1],
                                             np.ascontiguousarray(low[2]).reshape(-1), a, b, out, rows.start, cols.start)

    TRANSPOSE_TILE = 256  # replicates per tile: both sides of a tile stay in cache

    def edge_rows(self, deltas, start: int, stop: int):
        # tile by tile: a plain transposed copy reads one element per row of the whole chunk (7 ns each)
        n_boot = deltas.shape[0]
        out = np.empty((stop - start, n_boot), dtype=deltas.dtype)
        for b0 in range(0, n_boot, self.TRANSPOSE_TILE):
            b1 = min(b0 + self.TRANSPOSE_TILE, n_boot)
            np.copyto(out[:, b0:b1], deltas[b0:b1, start:stop].T)
        return out

    def mean_std(self, x):
        # numpy.mean and numpy.std(ddof=1) step for step (_methods._mean/_var), with one shared sum
        n = x.shape[1]
        mean = np.add.reduce(x, axis=1)
        np.true_divide(mean, n, out=mean)
        if n <= 1:
            return mean, np.full_like(mean, np.nan)
        dev = np.subtract(x, mean[:, None])
        np.square(dev, out=dev)
        var = np.add.reduce(dev, axis=1)
        np.true_divide(var, n - 1, out=var)
        return mean, np.sqrt(var, out=var)

    def sign_counts(self, x):
        # comparisons summed as bytes (count_nonzero with an axis sums booleans as intp: 1.6x slower)
        dtype = np.int32 if x.shape[1] < 2**31 else np.int64
        return tuple(np.add.reduce(mask.view(np.uint8), axis=1, dtype=dtype) for mask in (x > 0, x < 0))

    TAIL_CANDIDATES_ROOM = 4  # a tail keeps at most this many times the values its positions need

    def order_statistics(self, x, positions, centre=None, spread=None):
        """With each row's mean and standard deviation (``centre``, ``spread``), positions in a tail
        come from that tail's candidates: the values beyond centre -/+ z spread, z such that a
        normal row has ~2.5x the values the positions need there.  A row whose tail holds all the
        values up to its positions (at least as many as they need, which must then be the smallest
        or largest of the row) but not too many gets them from a partition of those few (measured
        2.3x faster than partitions of whole rows, docs/benchmarks.md); any other row (a skewed or
        constant row, NaN) from whole-row partitions.  Either way the exact order statistics."""
        n = x.shape[1]
        if centre is None or spread is None or n < TAIL_MIN_COLUMNS or x.shape[0] == 0:
            return self._row_order_statistics(x, positions)
        if host_kernels.enabled():  # one compiled pass a row: both tails' candidates, a sort of each
            return self._compiled_order_statistics(x, positions, centre, spread)
        found, whole = {}, np.zeros(x.shape[0], dtype=bool)
        for lower in (True, False):
            tail = [int(p) for p in positions if (p < n / 2) == lower]
            if tail:
                found.update(self._tail_statistics(x, tail, centre, spread, lower, whole))
        rows = np.flatnonzero(whole)
        if rows.shape[0]:
            for p, value in zip(positions, self._row_order_statistics(x[rows], positions)):
                found[int(p)][rows] = value
        return [found[int(p)] for p in positions]

    def column_statistics(self, deltas, start: int, stop: int, positions):
        # one compiled kernel over the columns (host_kernels.column_statistics): no transposed copy,
        # NumPy's pairwise sums for the moments, the tail candidates for the order statistics
        n = deltas.shape[0]
        if not host_kernels.enabled() or n < TAIL_MIN_COLUMNS or stop <= start:
            return None
        lower, upper, z_lo, z_hi = self._tails(n, positions)
        count = stop - start
        mean, std = np.empty(count), np.empty(count)
        out_lower = np.empty((count, lower.shape[0]))
        out_upper = np.empty((count, upper.shape[0]))
        above, below = np.empty(count, np.int64), np.empty(count, np.int64)
        host_kernels.kernel("column_statistics")(deltas, start, stop, *host_kernels.pairwise_program(n), lower, upper, z_lo,
                                                 z_hi, mean, std, out_lower, out_upper, above, below)
        found = {int(p): out_lower[:, j] for j, p in enumerate(lower)}
        found.update({int(p): out_upper[:, j] for j, p in enumerate(upper)})
        return mean, std, [found[int(p)] for p in positions], above, below

    def _tails(self, n: int, positions):
        """Each tail's positions (lower descending, upper ascending) and its z."""
        lower, upper, need_lo, need_hi = tail_needs(n, positions)
        z_lo = tail_z(n, need_lo) if lower else 0.0
        z_hi = tail_z(n, need_hi) if upper else 0.0
        return np.asarray(lower, dtype=np.int64), np.asarray(upper, dtype=np.int64), z_lo, z_hi

    def _compiled_order_statistics(self, x, positions, centre, spread):
        lower, upper, z_lo, z_hi = self._tails(x.shape[1], positions)
        out_lower = np.empty((x.shape[0], lower.shape[0]), dtype=x.dtype)
        out_upper = np.empty((x.shape[0], upper.shape[0]), dtype=x.dtype)
        host_kernels.kernel("tail_order_statistics")(np.ascontiguousarray(x), lower, upper, centre - z_lo * spread,
                                                     centre + z_hi * spread, out_lower, out_upper)
        found = {int(p): out_lower[:, j] for j, p in enumerate(lower)}
        found.update({int(p): out_upper[:, j] for j, p in enumerate(upper)})
        return [found[int(p)] for p in positions]

    def _tail_statistics(self, x, tail: list, centre, spread, lower: bool, whole) -> dict:
        """{p: column p of each row sorted} for the positions ``tail`` of one tail, from its
        candidates; rows whose candidates cannot tell are flagged in ``whole`` (their values here
        are placeholders)."""
        n_rows, n = x.shape
        need = max(tail) + 1 if lower else n - min(tail)
        room = max(need * self.TAIL_CANDIDATES_ROOM, 64)
        z = tail_z(n, need)
        mask = x < (centre - z * spread)[:, None] if lower else x > (centre + z * spread)[:, None]
        counts = np.add.reduce(mask.view(np.uint8), axis=1, dtype=np.int64)
        ok = (counts >= need) & (counts <= room)
        whole |= ~ok
        counts[~ok] = 0
        mask &= ok[:, None]
        flat = np.flatnonzero(mask)
        row = flat // n
        slot = np.arange(flat.shape[0]) - (np.cumsum(counts) - counts)[row]
        pad = np.full((n_rows, room), np.inf)  # each row's candidates, negated for the upper tail
        values = np.take(x.reshape(-1), flat)
        pad.reshape(-1)[row * room + slot] = values if lower else -values
        kth = sorted({p if lower else n - 1 - p for p in tail})
        pad.partition(kth, axis=1)
        return {p: (pad[:, p].copy() if lower else -pad[:, n - 1 - p]) for p in tail}

    def _row_order_statistics(self, x, positions):
        # single-kth partitions (a full sort costs 2x): runs of adjacent positions share one, the
        # run's other value is the largest below it (or, for the last run, the smallest above)
        y = np.array(x, order="C", copy=True)
        n, found, start = x.shape[1], {}, 0
        ps = sorted(set(int(p) for p in positions))
        i = 0
        while i < len(ps):
            p = ps[i]
            pair = i + 1 < len(ps) and ps[i + 1] == p + 1
            last = i + (2 if pair else 1) >= len(ps)
            if pair and last and p - start > n - 2 - p:  # nearer the end: partition at p, min above
                y[:, start:].partition(p - start, axis=1)
                found[p] = y[:, p].copy()
                found[p + 1] = y[:, p + 1:].min(axis=1)
            elif pair:  # partition at p + 1, max below (y[:, p + 2:] then holds the larger values)
                y[:, start:].partition(p + 1 - start, axis=1)
                found[p + 1] = y[:, p + 1].copy()
                found[p] = y[:, start:p + 1].max(axis=1)
            else:
                y[:, start:].partition(p - start, axis=1)
                found[p] = y[:, p].copy()
            start = p + (2 if pair else 1)
            i += 2 if pair else 1
        return [found[int(p)] for p in positions]


MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's own ceilings for its dynamic thresholds (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES


_BLAS = []  # this process's threadpoolctl controller, made once


def single_blas_thread():
    """A context in which BLAS runs one thread, restoring its threads after.

    The process's BLAS libraries are looked up once (``ThreadpoolController``) and reused: a fresh
    ``threadpool_limits`` scans every loaded library again, 2.2 ms a call (measured), three calls a
    focus gene.  NumPy's BLAS, the one the stages' products use, is loaded with NumPy, before the
    first call.  Without threadpoolctl BLAS keeps its threads."""
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            return contextlib.nullcontext()
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def limit_malloc_arenas() -> None:
    """Under an address-space limit (``ulimit -v``, Grid Engine's h_vmem) threads share glibc's
    heaps: each thread's own arena reserves 64 MiB of address space it may never use, which such a
    limit counts (the plan does not).  A no-op without a limit or without glibc."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def keep_freed_blocks() -> None:
    """Serve blocks up to 32 MiB from glibc's heaps and keep up to 64 MiB free at a heap's top,
    where its dynamic thresholds would have climbed had it seen a 32 MiB block freed.  Below them
    each replicate chunk's ranks (10-20 MiB) were mapped afresh and faulted in page by page
    (measured on ALL's bootstrap: 94,000 page faults and 1.0 s of system time, against 4,000 and
    0.2 s).  Process-wide and lasting (glibc has no way back to dynamic thresholds); a no-op
    without glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, MMAP_THRESHOLD_BYTES)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, TRIM_THRESHOLD_BYTES)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc
        pass


def malloc_trim() -> None:
    """Every free page of glibc's heaps back to the system (a no-op without glibc)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_free_bytes() -> int | None:
    """Bytes free in glibc's heaps (mallinfo2's fordblks, every arena), which malloc_trim would hand
    back; None without glibc 2.33 or later."""
    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _Mallinfo2
    return int(mallinfo2().fordblks)


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far: VmHWM, the high-water mark of this
    process's own memory.  (ru_maxrss is not used: Linux carries it across fork + exec, so a
    child of a large parent reports the parent's peak.)"""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class NumpyScans(Scans):
    """NumPy's cumsum over axis 0 is ~3x slower than k - 1 in-place row additions (no temporaries)."""

    def cumsum_leading(self, x):
        out = x.copy()
        for s in range(1, out.shape[0]):
            np.add(out[s], out[s - 1], out=out[s])
        return out

    def doubled_scan(self, sorted_counts, m: int, out=None):
        if out is None:
            out = np.empty_like(sorted_counts)
        np.subtract(sorted_counts[0], m, out=out[0])
        for s in range(1, out.shape[0]):
            np.add(sorted_counts[s - 1], sorted_counts[s], out=out[s])
            out[s] += out[s - 1]
        return out
