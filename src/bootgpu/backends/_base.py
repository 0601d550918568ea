"""The small interface every backend implements (namespace, memory, transfers, extra kernels)."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np

from bootgpu.core.arrays import Array
from bootgpu.core.bootstrap import NEVER_DENSE
from bootgpu.core.ranks import weighted_ranks
from bootgpu.core.spearman import upper_triangle
from bootgpu.core.tails import TAIL_MIN_COLUMNS, candidate_order_statistics

if TYPE_CHECKING:
    from bootgpu.core.ranks import Scans


def granted_cores() -> int:
    """The cores this process may use: BOOTGPU_THREADS, else OMP_NUM_THREADS (what a batch job
    grants, see sge/), else the cores it may run on."""
    for name in ("BOOTGPU_THREADS", "OMP_NUM_THREADS"):
        text = os.environ.get(name, "").strip()
        if text.isdigit() and int(text) > 0:
            return int(text)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass
class PeakMemory:
    """Filled in by ``Backend.track_peak``: bytes above the level at entry, on the backend's device."""

    peak_bytes: int = 0


class Backend:
    """Base class. ``xp`` is an array-API namespace; arrays of it live on ``device_name()``.

    The core never converts a device array to NumPy implicitly: it calls ``to_host``.  Kernels the
    array-API standard lacks (bincount, running minimum, special functions) are backend methods so
    each library can use its own fast implementation.
    """

    name: str = "base"
    xp: Any = None
    on_device: bool = False  # arrays live on an accelerator (the host's cores are free for other work)
    working_set_bytes: int = 0  # largest array a batch should make (0: no cap); see planner
    ieee_float32_matmul: bool = False  # float32 matrix products round as IEEE float32 (no TF32 inputs):
    # products of fractional values (core.spearman.JointBlocks' one-product form) are then exact
    bootstrap_share: float = 0.0  # of the free budget the bootstrap may take (edge chunks): on a
    # device a launch-bound focus gene wants few chunks; 0: what the pair stage used (planner)
    pair_gathers: bool = True  # a device's sparse dots gather both ends' (E, k, R) rows (the generic
    # pair_dots); False: a kernel gathers as it sums and holds only the dots (the planner's model)
    flat_sorts: bool = True  # sorting each row of a 2-D array is faster as flat 1-D sorts (CuPy: radix
    # sorts, where a sort along an axis is a merge sort of (row, value) pairs); NumPy sorts rows in place
    ranks_by_gene: bool = False  # resample_ranks ranks each gene itself (a host kernel); the core
    # then builds its inputs (core.bootstrap.GeneGroup: slot_position, tie_last) and the planner
    # models D alone (planner.own_ranks)

    # --- device facts -------------------------------------------------------------------------
    def dense_density(self, m: int) -> float:
        """``BootstrapSettings.dense_density`` for resamples of ``m`` draws: the share of a tile pair
        that selected edges must fill for the bootstrap to compute it as a matrix product.  Here
        never (``NEVER_DENSE``): a device gathers every edge in one kernel (``pair_dots``) whatever
        the density; a host with BLAS says when (``core.bootstrap.host_dense_density``)."""
        return NEVER_DENSE

    def plan_facts(self) -> dict:
        """The facts the memory planner takes from a backend, as ``planner.plan_batches``'s keywords."""
        return {"working_set_bytes": self.working_set_bytes, "ieee_float32_matmul": self.ieee_float32_matmul,
                "ranks_by_gene": self.ranks_by_gene, "bootstrap_share": self.bootstrap_share,
                "pair_gathers": self.pair_gathers}

    def device_name(self) -> str:
        raise NotImplementedError

    def memory_info(self) -> tuple[int, int]:
        """(free, total) bytes of the memory this backend allocates from."""
        raise NotImplementedError

    def available_memory(self) -> tuple[int, str]:
        """(bytes this process may still allocate here, name of the limit that binds)."""
        free, _ = self.memory_info()
        return free, "free memory"

    def device_processes(self, asked: int = 0) -> int:
        """Processes a study runs on this backend's device at once (``study.workers``), ``asked``
        (--processes) or the backend's default; 1 on a host backend (its cores are shared out)."""
        return 1

    def host_threads(self) -> int:
        """Threads worth using for independent pieces of array work (host backends: the cores)."""
        return 1

    @property
    def scans(self) -> "Scans":
        """The scans resample ranks are made of (``core.ranks.Scans``: array-API by default)."""
        from bootgpu.core.ranks import Scans

        return Scans(self.xp)

    def map_chunks(self, fn: Callable[[Any], Any], items: Iterable, threads: int = 1) -> list:
        """``[fn(item) for item in items]``, up to ``threads`` at a time where the backend gains
        from it (host cores; a device queue does not).  Results keep the order of ``items``, so
        anything reduced from them is the same for any thread count."""
        return [fn(item) for item in items]

    def imap_chunks(self, fn: Callable[[Any], Any], items: Iterable, threads: int = 1) -> Iterator:
        """``fn(item)`` for each item, yielded in order, with up to ``threads`` computing ahead while
        the caller reduces the one yielded (host cores; a device queue computes them in turn)."""
        return (fn(item) for item in items)

    def prepare(self) -> None:
        """Whatever the backend compiles or loads on first use, done now (before a run measures
        its memory): the NumPy backend's compiled kernels.  Nothing by default."""

    def release_memory(self, predicted_bytes: int = 0, budget_bytes: int = 0) -> None:
        """Hand memory freed by a finished stage back to the system (host backends), so the next
        stage's peak is its own and not on top of the last one's.  Given a plan's predicted peak
        and budget, a host backend may keep freed memory for the next focus gene to reuse without
        faulting its pages in again: as much as fits beside the prediction in the budget and
        beside the highest use so far within the prediction, so that even if none of it were
        reused the process would stay within its budget.  A no-op by default."""

    def bootstrap_scope(self, predicted_bytes: int = 0, budget_bytes: int = 0) -> contextlib.AbstractContextManager:
        """Context for the bootstrap stage (host backends: BLAS in one thread, see NumPy's), which
        releases freed memory as it ends (``release_memory`` with the same arguments)."""
        return contextlib.nullcontext()

    def pair_scope(self) -> contextlib.AbstractContextManager:
        """Context for the pair passes (host backends: BLAS in one thread, as the blocks run in
        this backend's threads)."""
        return contextlib.nullcontext()

    def synchronize(self) -> None:
        """Block until queued device work is done (a no-op on the host)."""

    @contextlib.contextmanager
    def track_peak(self):
        """Context manager yielding a ``PeakMemory`` filled in when the block exits."""
        yield PeakMemory()

    # --- transfers ----------------------------------------------------------------------------
    def to_device(self, array: np.ndarray) -> Array:
        return self.xp.asarray(array)

    def to_host(self, array: Array) -> np.ndarray:
        return np.asarray(array)

    # --- kernels outside the array-API standard ------------------------------------------------
    def bincount(self, x: Array, minlength: int, weights: Array | None = None) -> Array:
        """Counts of each value of ``x`` (non-negative integers below ``minlength``), int64; with
        ``weights`` (float64, one per element) their sums instead, float64."""
        raise NotImplementedError

    def bin_counts(self, s: Array, scale: float, n_bins: int) -> Array | None:
        """The counts (int64) of ``core.fdr.BHStream.bins(s)``, bins of ``scale`` each from the
        top, in one pass where the backend has a kernel for it; None: none (the caller bins)."""
        return None

    def values_in_range(self, s: Array, low: float, high: float) -> Array:
        """The values of 1-D ``s`` with low <= s < high (``high`` may be inf), in their order."""
        near = s >= low
        if high < math.inf:
            near = near & (s < high)
        return s[near]

    def gathered_abs_diff(self, a: tuple, b: tuple) -> Array:
        """|A - B| of two gathers, each side (table, indices, sentinel, fill): table[indices], where
        ``fill`` is not empty its values taking the places of indices == sentinel, in order."""
        xp = self.xp

        def side(table, indices, sentinel, fill):
            values = xp.take(table, indices)
            if fill.shape[0]:
                values[indices == sentinel] = fill
            return values

        return xp.abs(side(*a) - side(*b))

    def take_in_range(self, x: Array, indices: Array) -> Array:
        """``take(x, indices)`` of a 1-D ``x`` for indices known to be within it."""
        return self.xp.take(x, indices)

    def cell_set(self, mask: Array):
        """A set of cells for ``positions_in`` from a 1-D boolean ``mask`` (here the mask itself)."""
        return mask

    def positions_in(self, cells, values: Array) -> Array:
        """Positions i (ascending, int64) of a 1-D integer array whose ``values[i]`` is in ``cells``
        (``cell_set``); every value within the mask."""
        xp = self.xp
        return xp.astype(xp.nonzero(self.take_in_range(cells, values))[0], xp.int64, copy=False)

    def bincount_parts(self, parts: list, minlength: int) -> Array:
        """``bincount`` of the values of several 1-D integer arrays together."""
        xp = self.xp
        return self.bincount(parts[0] if len(parts) == 1 else xp.concat(parts), minlength)

    def subtract_counts(self, counts: Array, parts: list) -> Array:
        """``counts`` (int64) less how often each index occurs in the 1-D integer arrays ``parts``
        (non-negative, below ``counts.shape[0]``), in place where the backend can; returns it."""
        counts -= self.xp.astype(self.bincount_parts(parts, counts.shape[0]), counts.dtype, copy=False)
        return counts

    def count_table(self, n: int):
        """A zeroed table of ``n`` counts for ``count_into``, in the narrowest form the backend
        counts in (an int64 array here; its caller reads it with ``table_counts`` and spills it
        into an int64 total before it could overflow: ``table_capacity``)."""
        return self.xp.zeros(n, dtype=self.xp.int64)

    def count_into(self, table, parts: list) -> None:
        """Add the counts of the values of several 1-D integer arrays (each in 0 .. n - 1) into
        ``table`` (``count_table(n)``), in place."""
        table += self.xp.astype(self.bincount_parts(parts, table.shape[0]), table.dtype, copy=False)

    def table_counts(self, table, start: int, stop: int) -> Array:
        """The counts of cells ``start:stop`` of a ``count_table``, int64 (the table's own
        array where it holds int64)."""
        return self.xp.astype(table[start:stop], self.xp.int64, copy=False)

    def table_capacity(self, table) -> int:
        """Values a ``count_table`` can count, all into one cell, without overflowing."""
        return int(self.xp.iinfo(table.dtype).max)

    def upper_triangle(self, rect: Array) -> Array:
        """``rect[i, i + 1:]`` of every row i of a 2-D array, concatenated (a pair block's pairs j > i
        in condensed order, ``core.spearman.upper_triangle``): a constant number of operations."""
        return upper_triangle(self.xp, rect)

    def joint_triangle(self, rect: Array, offset: float) -> Array | None:
        """``upper_triangle`` of int32(rect + offset), a float32 block of joint indices less
        ``offset`` (``core.spearman.JointBlocks``), in one pass; or None where the backend has no
        such kernel (the core then adds, casts and takes the triangle: ``spearman.joint_rect``)."""
        return None

    def level_triangle(self, rect: Array, offset: int, dtype) -> Array | None:
        """``upper_triangle`` of (int32(rect) + offset) >> 2 as ``dtype``, a block of a group's exact
        dot products made levels (``core.spearman.PairBlocks``), in one pass; or None where the
        backend has no such kernel (the core then takes the triangle, casts, adds and shifts)."""
        return None

    def cummin(self, x: Array) -> Array:
        """Running minimum along a 1-D array."""
        raise NotImplementedError

    def betainc(self, a: float, b: float, x: Array) -> Array:
        """Regularised incomplete beta I_x(a, b), elementwise, float64."""
        raise NotImplementedError

    def erfc(self, x: Array) -> Array:
        raise NotImplementedError

    def weighted_dots(self, a: Array, b: Array, w: Array, dtype) -> Array:
        """sum_p w[p, r] * a[p, e, r] * b[p, e, r] -> (E, R) in ``dtype``, the products and sums
        formed in ``dtype`` (exact when every partial sum is an integer it holds); in place, so a
        device holds two (k, E, R) arrays of ``dtype`` at most."""
        xp = self.xp
        prod = xp.astype(a, dtype)
        prod *= xp.astype(b, dtype)
        prod *= xp.astype(w, dtype)[:, None, :]
        return xp.sum(prod, axis=0)

    def resample_ranks(self, slot_position: Array, tie_last: Array, counts: Array, m: int) -> Array | None:
        """(U, k, R) resample ranks d[u, p, r], gene u's doubled centred average rank of position p
        in the resample of (k, R) ``counts`` (integers, |d| <= m, in a dtype that holds them), from
        each gene's slots in sort order (``slot_position`` (U, k): the position of slot s;
        ``tie_last`` (U, k): the last slot of s's tie group, s itself outside one); or None where
        the backend has no kernel for it (the core then takes ``ranks.position_ranks``, the same
        integers).  The core then passes ``counts`` for the weights: ``store_pair_ratio``."""
        return None

    def pair_dots(self, w: Array, d: Array, a: Array | None, b: Array | None) -> Array:
        """sum_p w[a_e, p, r] * d[b_e, p, r] -> (E, R) for edges e, in the integer dtype of ``w``
        and ``d`` (exact: core.bootstrap.dot_dtype bounds every partial sum).  w, d: (U, k, R);
        ``a`` = ``b`` = None: row u with row u, (U, R).  ``w`` may be the (k, R) counts c
        themselves, w = c * d (after ``resample_ranks``), the result then in their dtype."""
        xp = self.xp
        if w.ndim == 2:
            d, w = weighted_ranks(xp, w, d)
        if a is None:
            return xp.sum(w * d, axis=1, dtype=w.dtype)
        prod = xp.take(w, a, axis=0)
        prod *= xp.take(d, b, axis=0)  # in place: two (E, k, R) gathers at most
        return xp.sum(prod, axis=1, dtype=w.dtype)

    def block_dots(self, wa: Array, db: Array, dtype) -> Array:
        """sum_p wa[i, p, r] * db[j, p, r] -> (R, nA, nB), one matrix product per replicate in the
        float ``dtype`` (exact while every partial sum is an integer it holds).  wa: (nA, k, R),
        db: (nB, k, R)."""
        xp = self.xp
        return xp.matmul(xp.astype(xp.permute_dims(wa, (2, 0, 1)), dtype), xp.astype(xp.permute_dims(db, (2, 1, 0)), dtype))

    def pair_piece(self, k: int, n_rep: int, dtype) -> int:
        """Edges per ``pair_dots`` call when a block is computed in pieces (0: the whole block)."""
        return 0

    def store_ratio(self, out: Array, key, num: Array, den: Array | None = None, subtract: bool = False) -> None:
        """out[key] = num / den in float64 (``den`` None: num itself), or with ``subtract``
        out[key] - that.  ``num``: integers or float32 (exact in float64), ``den`` broadcasts."""
        xp = self.xp
        value = xp.astype(num, xp.float64)  # the one temporary: the rest in place
        if den is not None:
            value /= den
        if subtract:
            out[key] -= value
        else:
            out[key] = value

    def store_gathered_ratio(self, out: Array, rows: slice, cols: slice, products: Array, flat: Array, den: Array,
                             subtract: bool = False) -> None:
        """out[rows, cols] = products[:, flat] / den (``products`` (R, cells) from ``block_dots``,
        ``den`` (R, 1) float64), or with ``subtract`` out minus that: a dense tile pair's edges."""
        self.store_ratio(out, (rows, cols), self.xp.take(products, flat, axis=1), den, subtract)

    def store_pair_ratio(self, out: Array, rows: slice, cols: slice, w: Array, d: Array, a: Array, b: Array,
                         den: Array, subtract: bool = False) -> None:
        """out[rows, cols] = pair_dots(w, d, a, b) transposed, divided by ``den`` (R, 1) in float64,
        or with ``subtract`` out minus that: a sparse block's correlations, made in pieces of
        ``pair_piece`` edges (``store_ratio`` of each).  ``w``: (U, k, R) weighted ranks, or the
        (k, R) counts c themselves, w = c * d (after ``resample_ranks``)."""
        xp = self.xp
        if w.ndim == 2:
            d, w = weighted_ranks(xp, w, d)
        n = int(a.shape[0])
        step = self.pair_piece(int(w.shape[1]), int(w.shape[2]), w.dtype) or n
        for p0 in range(0, n, step):
            p1 = min(p0 + step, n)
            dots = self.pair_dots(w, d, a[p0:p1], b[p0:p1])
            self.store_ratio(out, (rows, slice(cols.start + p0, cols.start + p1)), xp.matrix_transpose(dots), den,
                             subtract)

    fused_deltas = False  # store_pair_delta makes a sparse block's deltas in one pass (the core then calls it)

    def store_pair_delta(self, out: Array, rows: slice, cols: slice, high: tuple, low: tuple, a: Array, b: Array) -> None:
        """out[rows, cols] = r_high - r_low of a sparse block, ``high`` and ``low`` each (w, d, den)
        as ``store_pair_ratio`` takes them: the bytes of storing r_high, then subtracting r_low."""
        self.store_pair_ratio(out, rows, cols, high[0], high[1], a, b, high[2], False)
        self.store_pair_ratio(out, rows, cols, low[0], low[1], a, b, low[2], True)

    def edge_rows(self, deltas: Array, start: int, stop: int) -> Array:
        """Edges ``start:stop`` of (B, E) replicate-major deltas as (stop - start, B) rows."""
        return self.xp.matrix_transpose(deltas[:, start:stop])

    def column_statistics(self, deltas: Array, start: int, stop: int, positions):
        """For edges ``start:stop`` of (B, E) replicate-major ``deltas``: (mean, std, [order
        statistics at ``positions``], above, below), each the bytes ``mean_std``,
        ``order_statistics`` and ``sign_counts`` give on their rows, in one fused pass; or None
        where the backend has none (the core then takes ``edge_rows``)."""
        return None

    def mean_std(self, x: Array) -> tuple[Array, Array]:
        """Row means and standard deviations (ddof 1; NaN for a single column) of (E, B) ``x``."""
        xp = self.xp
        mean = xp.mean(x, axis=1)
        std = xp.std(x, axis=1, correction=1) if x.shape[1] > 1 else xp.full_like(mean, xp.nan)
        return mean, std

    def order_statistics(self, x: Array, positions, centre: Array | None = None, spread: Array | None = None) -> list[Array]:
        """[column p of each row of (E, B) ``x`` sorted, for p in ``positions``] (ascending).
        ``centre``, ``spread``: each row's mean and standard deviation, which a backend may use to
        look at the tails only; the result is the same.  Here, with them and rows of at least
        ``TAIL_MIN_COLUMNS`` values, the tails' candidates sorted as one flat array
        (``core.tails``: on CuPy radix sorts of ~13% of the values instead of a merge sort of
        (row, value) pairs over all of them), unless the candidates are too many."""
        if centre is not None and spread is not None and x.shape[1] >= TAIL_MIN_COLUMNS and x.shape[0]:
            found = candidate_order_statistics(self.xp, x, positions, centre, spread)
            if found is not None:
                return found
        srt = self.xp.sort(x, axis=1)
        return [srt[:, p] for p in positions]

    def sign_counts(self, x: Array) -> tuple[Array, Array]:
        """Per row of (E, B) ``x``: (number of values > 0, number < 0), integers."""
        xp = self.xp
        return xp.count_nonzero(x > 0, axis=1), xp.count_nonzero(x < 0, axis=1)
