"""Step 3d: exact Benjamini-Hochberg over every gene pair, without sorting (or even computing) all
p-values.

BH's q of a pair is  min over pairs y with p_y >= p_x  of  p_y / (F(y) / m),  F(y) = #{p <= p_y},
capped at 1 (statsmodels' ``fdr_bh``).  Each test's p is a non-increasing function of a statistic
s (see ``significance``), so ordering by p is ordering by s, descending.  (statsmodels sorts the
p-values themselves; where float64 rounding puts the p of two nearby statistics an ulp out of
order, its q differs from this one in the last bits.)

Three ways of counting a pair, mixed freely within one test:

- **By level (t-tests, exact, no refinement).**  Between two tie-free genes of a k-sample group,
  r = S / sqrt(D D) with S = 4 a - D for an integer level a = 0 .. D/2, D = (k^3 - k)/3
  (``spearman.n_signed_levels``): s = |r| takes only D//4 + 1 values, known in advance and in
  descending order (``ExactLevels``).  The count pass histograms the pairs' levels
  (``level_histogram``, (k^3 - k)/6 + 1 entries: 2,601 at k = 25); folding a and D/2 - a gives the
  count of every value of s, so F, p and the BH terms of these pairs come from counts alone, with
  no pair gathered or sorted, however the significant pairs are spread.  Groups with more than
  ``LEVELS_MAX`` levels (k > 232) count every pair by bin.
- **By pair of levels (the Fisher test of small groups, exact, no refinement).**  Between genes
  tie-free in both groups, s = |z_high[b] - z_low[a]| is a function of the pair's two levels.
  Where the pipeline keeps each pair as the joint index a * n_high + b (``spearman.JointBlocks``:
  small groups with at least a pair per cell, 6.8 M cells at k = 25), the count pass histograms
  the joint indices (``JointHistogram``): its marginals are the t-tests' level counts and the
  histogram itself the Fisher test's counts by cell (``ExactJoint``).  Each cell's value of s is
  computed with the per-pair code's float64 operations on the same z tables, hence the same bits;
  counts per bin are a weighted histogram of the cells' bins, and the values of chosen bins come
  from the cells listed by bin.  F, p and the BH terms of these pairs then come from counts alone,
  like the t-tests', so thresholds and q-values need a pass over pairs only where pairs with a
  tied gene sit in the deciding bins.
- **By bin (the Fisher test without joint indices, pairs with a tied or constant gene, large
  groups).**  r of such a pair has its own denominator (t-tests), or s is a function of two levels
  whose pairs are not counted jointly (Fisher), so s is binned:

  1. ``count``: a histogram of s over fine bins (sized for the pairs counted this way), streamed
     over pair blocks.  The counts by level are added to the bins their values fall in
     (``total_counts``), and from bin counts alone every bin gets a lower and an upper bound on the
     smallest BH term inside it.
  2. ``refine``: only bins whose bounds could decide the answer are seen exactly: the values
     counted by level in them are taken from the counts, and the pairs counted by bin are
     gathered in one pass (skipped entirely when none of the chosen bins holds such a pair,
     ``Refinement.needs_pass``), as distinct values with multiplicities; only these distinct
     values are sorted and their exact terms computed.  A bin whose lower bound is not below what
     later bins certainly reach can never hold the minimum, so skipping it changes nothing: the
     result equals the full sort.

``threshold`` (significance is q < alpha, i.e. s >= s*) and ``q_values`` of query pairs come from
the refined values.  Everything, bin and level bookkeeping included, stays on the backend's
device: a focus gene moves only the thresholds s* (three scalars) to the host.  Tables that
depend only on the group sizes (bin-edge p-values, level tables, the Fisher tables by cell) are
cached per backend for the whole study.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bootgpu.core.significance import z_transform
from bootgpu.core.spearman import LEVELS_MAX, n_signed_levels, rank_sumsq  # noqa: F401 (LEVELS_MAX re-exported)

N_BINS = 1 << 20  # the most bins; about 36 pairs a bin at 8,763 genes
MIN_BINS = 1 << 12
BIN_BOOKKEEPING_BYTES = 80  # per bin and test: counts, bounds, edge p-values and their temporaries


LEVEL_TEST_BINS = N_BINS >> 2  # the most bins of a t-test with level tables: only its pairs with a
# tied gene are binned (none on random data, a fifth of ALL's), and its refinement gathers only those


def bins_for_pairs(n_pairs: int, most: int = N_BINS) -> int:
    """Histogram size for ``n_pairs`` pairs: a power of two near n_pairs / 32, within
    [MIN_BINS, most].  Finer bins mean fewer pairs to refine but more host bookkeeping."""
    target = max(1, n_pairs // 32)
    return int(min(most, max(MIN_BINS, 1 << (target - 1).bit_length())))


_SLACK = 1e-12  # relative widening of bin bounds against rounding of p at bin edges


_EDGE_PVALUES: dict = {}  # (backend name, device, test, n_bins) -> (p at lower edges, p at upper edges)
_EDGE_PVALUES_KEPT = 12  # t-tests size their bins by the pairs with ties, which vary by focus gene
_TABLES: dict = {}  # (kind, backend name, device, ...) -> level tables, the same for a whole study
_TABLES_KEPT = 8
_JOINT_TABLES: dict = {}  # ("joint", backend name, device, k_low, k_high) -> ExactJoint.order (4 bytes a cell)
_JOINT_TABLES_KEPT = 2
_JOINT_BIN_STARTS: dict = {}  # the same key and n_bins -> ExactJoint.bin_starts (8 bytes a bin)
_JOINT_BIN_STARTS_KEPT = 2


def _cached(store: dict, kept: int, key, make):
    if key not in store:
        if len(store) >= kept:
            del store[next(iter(store))]  # the oldest
        store[key] = make()
    return store[key]


LEVEL_BOOKKEEPING_BYTES = 48  # per signed level and group: the z table (8), the t-test's level counts (8)
# and two blocks' level histograms in flight (16), its values of s with their bins, folded counts and
# cumulative sums (16 per value, one value per two levels)


def exact_level_bytes(k_low: int, k_high: int, n_bins: int, threads: int = 1) -> int:
    """Device bytes of the level tables and level histograms of one focus gene (both groups), and
    of each t-test's count of values per bin (int64, ``n_bins`` at most)."""
    extra = max(0, threads - 2) * 8  # further blocks' histograms in flight
    return sum(n_signed_levels(k) * (LEVEL_BOOKKEEPING_BYTES + extra) + 8 * n_bins
               for k in (k_low, k_high) if n_signed_levels(k))


@dataclass(frozen=True)
class SpearmanLevels:
    """Every value r takes between two tie-free genes of a k-sample group, by level.

    With doubled centred ranks d (integers), S = d_i . d_j = 4 a - D and r = S / sqrt(D D) for a
    level a = 0 .. D/2, D = (k^3 - k)/3 (``spearman.n_signed_levels``).  ``r_at`` computes r as the
    pipeline does for such a pair, so it is the same float64; ``z`` is Fisher's z of every level,
    plus a 0 at the sentinel level n that marks a pair with a tied gene (whose r is kept apart)."""

    k: int
    rank_sumsq: int
    n: int
    z: Any  # (n + 1,) float64: z_transform(r) of every level, then 0

    def r_at(self, xp, a):
        """r of levels ``a`` (any integer array)."""
        big_d = float(self.rank_sumsq)
        return xp.astype(xp.astype(a, xp.int64) * 4 - self.rank_sumsq, xp.float64) / math.sqrt(big_d * big_d)

    def r(self, xp, stop: int | None = None):
        """r of levels 0 .. stop - 1 (default: all)."""
        return self.r_at(xp, xp.arange(self.n if stop is None else stop, dtype=xp.int64))

    def count_at_least(self, s: float) -> int:
        """How many values of |r| (|S| = D, D - 4, ...) are >= s; level a has |r| >= s exactly when
        min(a, D/2 - a) is below this count.  Host arithmetic: Python floats are the same IEEE
        doubles, so (4 j - D) / sqrt(D D) here is r_at's value bit for bit."""
        big_d = self.rank_sumsq
        den = math.sqrt(float(big_d) * float(big_d))
        lo, hi = 0, big_d // 4 + 1  # |r| of j = 0 .. D//4 is descending: find the first below s
        while lo < hi:
            mid = (lo + hi) // 2
            if abs(float(4 * mid - big_d) / den) >= s:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def levels(self, xp, r):
        """Level a of each r of a pair of tie-free genes (int32): round((r + 1) D / 4), exact since
        r carries ~1e-16 relative error."""
        quarter = self.rank_sumsq / 4.0
        return xp.astype(xp.round(r * quarter + quarter), xp.int32)


def spearman_levels(backend, k: int) -> SpearmanLevels | None:
    """The level tables of a k-sample group on ``backend`` (cached); None when k is too large."""
    n = n_signed_levels(k)
    if not n:
        return None

    def make():
        xp = backend.xp
        table = SpearmanLevels(k, rank_sumsq(k), n, None)
        z = xp.concat([z_transform(xp, table.r(xp)), xp.zeros((1,), dtype=xp.float64)])
        return SpearmanLevels(k, table.rank_sumsq, n, z)

    return _cached(_TABLES, _TABLES_KEPT, ("levels", backend.name, backend.device_name(), k), make)


@dataclass(frozen=True)
class ExactLevels:
    """The t-test's view of a group's levels: s = |r| takes (D - 4 j)/D for j = 0 .. D//4, which
    is descending in j; level a has j = min(a, D/2 - a).  ``bins``: each value's BH bin
    (non-decreasing), ``bin_ends[t]``: how many values fall in bins <= t.

    An exact source of a ``BHStream`` (see ``ExactJoint`` for the other): ``n`` raw counts (here
    per signed level) in ``BHStream.level_counts``, turned into counts per bin (``bin_totals``) and
    the values of chosen bins with their multiplicities (``picked``)."""

    n: int  # signed levels (histogram length)
    values: Any  # (n_desc,) float64, descending
    bins: Any  # (n_desc,) int32
    bin_ends: Any  # (n_bins,) int64

    def fold(self, xp, counts):
        """Counts per signed level -> counts per value of s (descending)."""
        h = self.n // 2
        if self.n % 2:  # D = 0 (mod 4): level h is S = 0
            return xp.concat([counts[:h] + xp.flip(counts[h + 1:]), counts[h:h + 1]])
        return counts[:h] + xp.flip(counts[h:])

    def bin_totals(self, stream):
        """Pairs counted by level, per bin (values are sorted by bin: a cumulative sum)."""
        xp = stream.xp
        zero = xp.zeros((1,), dtype=xp.int64)
        upto = xp.take(xp.concat([zero, xp.cumulative_sum(stream.value_counts())]), self.bin_ends)
        return upto - xp.concat([zero, upto[:-1]])

    def picked(self, stream, bin_mask):
        """(values, multiplicities) of the values counted by level that fall in chosen bins."""
        xp = stream.xp
        value_counts = stream.value_counts()
        keep = xp.take(bin_mask, self.bins) & (value_counts > 0)
        return self.values[keep], value_counts[keep]


def exact_levels(backend, stream: "BHStream", levels: SpearmanLevels) -> ExactLevels:
    def make():
        xp = backend.xp
        n_desc = levels.rank_sumsq // 4 + 1
        values = xp.abs(levels.r(xp, n_desc))  # levels 0 .. D//4: S = -D .. <= 0, |S| descending
        bins = stream.bins(values)
        bin_ends = xp.searchsorted(bins, xp.arange(stream.n_bins, dtype=bins.dtype), side="right")
        return ExactLevels(levels.n, values, bins, xp.astype(bin_ends, xp.int64))

    key = ("exact", backend.name, backend.device_name(), levels.k, stream.n_bins)
    return _cached(_TABLES, _TABLES_KEPT, key, make)


def _pvalues(stream: "BHStream", s):
    """The test's p of statistics ``s`` (descending).  Where the stream counts by level, the p of
    every level value is computed once per study and group size (``test.pvalue`` over
    ``ExactLevels.values``: 545,000 values at k = 187) and looked up; a value off the table (a pair
    with a tied gene) is computed.  The same function of the same float64 s either way."""
    xp, backend, exact = stream.xp, stream.backend, stream.exact
    if not isinstance(exact, ExactLevels) or s.shape[0] == 0:
        return stream.test.pvalue(backend, s)
    key = ("level-p", backend.name, backend.device_name(), exact.n, stream.test)
    table = _cached(_TABLES, _TABLES_KEPT, key, lambda: stream.test.pvalue(backend, exact.values))
    at = xp.clip(xp.searchsorted(-exact.values, -s), 0, exact.values.shape[0] - 1)  # values: descending
    p = xp.take(table, at)
    off = xp.take(exact.values, at) != s
    if bool(xp.any(off)):
        p[off] = stream.test.pvalue(backend, s[off])
    return p


@dataclass(frozen=True)
class ExactJoint:
    """Fisher's statistic by pair of levels (an exact source of a ``BHStream``, like
    ``ExactLevels``).  Between tie-free genes s = |z_high[b] - z_low[a]| is a function of the
    pair's LOW level a and HIGH level b, so the count pass histograms the cells a * n_high + b
    (``n`` = n_low * n_high raw counts in ``BHStream.level_counts``) and every value of s is known
    from the counts.  ``value_at`` computes s of cells with the per-pair code's float64 operations
    (two table gathers, a subtraction, abs: the same bits).  ``order`` holds the cells by
    descending s, which is by ascending BH bin whatever the number of bins (a bin is a range of s),
    so it is made once per pair of group sizes; ``bin_starts`` says where each of the stream's bins
    starts in it (``picked`` reads the chosen bins' cells from it; ``bin_totals`` bins the cells
    in table order instead, which reads the counts in sequence)."""

    n_low: int
    n_high: int
    z_low: Any  # (n_low + 1,) the groups' z tables (SpearmanLevels.z)
    z_high: Any
    order: Any  # (n_low * n_high,) int32: the cells by descending s
    bin_starts: Any  # (n_bins + 1,) int64: where each bin's cells start in ``order``

    @property
    def n(self) -> int:
        return self.n_low * self.n_high

    def value_at(self, xp, cells):
        """s of cells (integer array of a * n_high + b)."""
        a, b = xp.floor_divide(cells, self.n_high), xp.remainder(cells, self.n_high)
        return xp.abs(xp.take(self.z_high, b) - xp.take(self.z_low, a))

    def values(self, xp, rows: slice = slice(None)):
        """s of every cell of table rows ``rows`` (default all), (rows, n_high) float64: the same
        bits as ``value_at`` (a temporary: 8 bytes a cell)."""
        return xp.abs(self.z_high[None, :self.n_high] - self.z_low[:self.n_low][rows, None])

    def row_parts(self, part_bytes: int) -> list[slice]:
        """Ranges of the table's rows whose float64 values take at most ``part_bytes`` (the
        backend's ``working_set_bytes``; 0: the whole table in one), for work on every cell a part
        at a time.  On the host a part of ALL's 6.8 M cells is 13 MB, which glibc serves from its
        heap (below its 32 MiB mmap threshold) instead of fresh zeroed pages (54 MB each, several
        a focus gene); a device makes the whole table in one go, in fewer operations."""
        step = max(1, part_bytes // (8 * self.n_high)) if part_bytes else self.n_low
        return [slice(a0, min(a0 + step, self.n_low)) for a0 in range(0, self.n_low, step)]

    def bin_totals(self, stream):
        """Pairs counted by cell, per bin (int64): each cell's bin from its s (``stream.bins`` of
        the same float64 as ``value_at``, so the bin ``bin_starts`` puts it in), the counts summed
        by bin, a row part (``row_parts``) at a time.  The float64 sums are exact integers (a
        study has far fewer than 2**53 pairs).  Reading the counts in cell order, not through
        ``order``: ALL's 6.8 M cells 0.14 -> 0.03 s a focus gene."""
        xp, backend = stream.xp, stream.backend
        counts = xp.reshape(stream.level_counts, (self.n_low, self.n_high))
        totals = None
        for rows in self.row_parts(backend.working_set_bytes):
            bins = stream.bins(xp.reshape(self.values(xp, rows), (-1,)))
            part = backend.bincount(bins, stream.n_bins, weights=xp.astype(xp.reshape(counts[rows, :], (-1,)), xp.float64))
            totals = part if totals is None else totals + part
        return xp.astype(totals, xp.int64)

    def picked(self, stream, bin_mask):
        """(values, multiplicities) of the cells with pairs that fall in chosen bins (repeated
        values are merged by ``Refinement.finish``, so their order does not matter): the chosen
        bins' ranges of ``order``."""
        xp, backend = stream.xp, stream.backend
        chosen = xp.nonzero(bin_mask)[0]
        starts, stops = xp.take(self.bin_starts, chosen), xp.take(self.bin_starts, chosen + 1)
        sizes = stops - starts
        total = int(backend.to_host(xp.sum(sizes))) if chosen.shape[0] else 0
        if total == 0:
            return xp.zeros((0,), dtype=xp.float64), xp.zeros((0,), dtype=xp.int64)
        # positions start .. stop - 1 of every chosen bin, in order: a running count within ranges
        ends = xp.cumulative_sum(sizes)
        owner = xp.searchsorted(ends, xp.arange(total, dtype=xp.int64), side="right")
        at = xp.take(starts, owner) + (xp.arange(total, dtype=xp.int64) - xp.take(ends - sizes, owner))
        cells = xp.take(self.order, at)
        counts = xp.take(stream.level_counts, cells)
        keep = counts > 0
        return self.value_at(xp, cells[keep]), counts[keep]


def exact_joint(backend, stream: "BHStream", low: SpearmanLevels, high: SpearmanLevels) -> ExactJoint:
    """The ``ExactJoint`` of a stream: the cells' order by s, kept for the study (one sort of the
    cells per pair of group sizes), and where the stream's bins start in it (kept per number of
    bins, which varies by focus gene with its pairs with a tied gene)."""
    xp = backend.xp
    base = ("joint", backend.name, backend.device_name(), low.k, high.k)

    def order():
        s = xp.reshape(ExactJoint(low.n, high.n, low.z, high.z, None, None).values(xp), (-1,))
        return xp.astype(xp.argsort(-s, stable=True), xp.int32)

    cells = _cached(_JOINT_TABLES, _JOINT_TABLES_KEPT, base, order)
    table = ExactJoint(low.n, high.n, low.z, high.z, cells, None)

    def starts():  # bins of the cells in order ascend: each bin's first position by a search
        sorted_bins = stream.bins(table.value_at(xp, cells))
        return xp.astype(xp.searchsorted(sorted_bins, xp.arange(stream.n_bins + 1, dtype=sorted_bins.dtype)), xp.int64)

    bin_starts = _cached(_JOINT_BIN_STARTS, _JOINT_BIN_STARTS_KEPT, base + (stream.n_bins,), starts)
    return ExactJoint(low.n, high.n, low.z, high.z, cells, bin_starts)


class JointHistogram:
    """Counts of joint indices (``spearman.JointBlocks``) streamed in blocks.  Blocks are counted
    in batches of about ``BATCH_PAIRS`` pairs a thread, ``threads`` batches at once, each thread
    into its own table (``Backend.count_table``, kept for the focus gene; the NumPy backend's
    compiled kernel counts int32 values straight into a byte a cell, other backends ``bincount``
    a batch and add it), and the tables read (``Backend.table_counts``) into an int64 total at the
    end, by ranges of cells in the same threads -- or earlier, where a narrow table could
    otherwise overflow (``Backend.table_capacity``).  Integer counts: the same for any batching."""

    BATCH_PAIRS = 1 << 23  # ALL focus 0, one thread: count pass 4.8 s CPU with 2 M, 4.2 s with 4 M, 3.7 s with 8 M (bincount)
    SPILL_AT = None  # pairs a table counts before it is added to the total (None: its capacity)

    def __init__(self, backend, n_cells: int, threads: int = 1):
        self.backend, self.xp = backend, backend.xp
        self.n_cells = n_cells
        self.threads = max(1, int(threads))
        self._pending, self._n_pending = [], 0
        self._tables = [None] * self.threads  # a table per thread, and the pairs counted into it
        self._counted = [0] * self.threads
        self.total = None

    def add(self, joint) -> None:
        """A block's joint indices (kept until the batch is counted)."""
        self._pending.append(joint)
        self._n_pending += int(joint.shape[0])
        if self._n_pending >= self.BATCH_PAIRS * self.threads:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        backend = self.backend
        groups, sizes, share = [[]], [0], -(-self._n_pending // self.threads)
        for joint in self._pending:  # consecutive blocks, about ``share`` pairs a group
            if sizes[-1] >= share and len(groups) < self.threads:
                groups.append([])
                sizes.append(0)
            groups[-1].append(joint)
            sizes[-1] += int(joint.shape[0])
        self._pending, self._n_pending = [], 0
        for i, size in enumerate(sizes):
            if self._tables[i] is None:
                self._tables[i] = backend.count_table(self.n_cells)
            elif self._counted[i] + size > (self.SPILL_AT or backend.table_capacity(self._tables[i])):  # a cell could overflow
                self._spill(i)
            self._counted[i] += size
        backend.map_chunks(lambda i: backend.count_into(self._tables[i], groups[i]), range(len(groups)), self.threads)

    def _spill(self, i: int) -> None:
        table = self._tables[i]
        counts = self.backend.table_counts(table, 0, self.n_cells)
        self.total = counts if self.total is None else self.total + counts
        self._tables[i], self._counted[i] = self.backend.count_table(self.n_cells), 0

    def finish(self):
        """The counts of every cell (int64)."""
        xp, backend = self.xp, self.backend
        self.flush()
        tables = [t for t in self._tables if t is not None]
        self._tables = [None] * self.threads
        if self.total is None:
            if not tables:
                return xp.zeros(self.n_cells, dtype=xp.int64)
            first, tables = tables[0], tables[1:]
            self.total = backend.table_counts(first, 0, self.n_cells)  # an int64 table is the total
            del first
        if tables:
            step = -(-self.n_cells // self.threads)

            def add(lo: int) -> None:
                hi = min(lo + step, self.n_cells)
                for table in tables:
                    self.total[lo:hi] += backend.table_counts(table, lo, hi)

            backend.map_chunks(add, range(0, self.n_cells, step), self.threads)
        return self.total


def joint_table_bytes(n_cells: int, threads: int = 1, compiled: bool = False) -> tuple[int, int]:
    """Device bytes of the joint tables of a focus gene: (held for the study -- the Fisher tables
    ``ExactJoint``, the cells in order of s, int32, for two pairs of group sizes --, held during the
    pass at their peak -- the count pass's histogram (``JointHistogram``) or the selection's tables
    (the counts, every cell's statistic and the chosen cells' counts, up to 8 bytes a cell each)).
    Without the ``compiled`` kernel a thread holds an int64 table, its batch's fresh ``bincount``
    table and the batch concatenated as int64.  The kernel's tables (a byte a cell, and 4 bytes of
    wraps a cell, written only where a byte wraps) and the int64 total take less, but
    the allowance stays what it was before the kernel (the total, a table per thread and
    a batch): with the smaller figure the smallest plan for ALL under ``ulimit -v`` measured 2%
    above its prediction (tests/test_faults.py, the budget it names as the smallest)."""
    batches = threads * JointHistogram.BATCH_PAIRS * 8
    count = 8 * n_cells * (1 + threads) + batches if compiled else 16 * n_cells * threads + batches
    return 8 * n_cells, max(count, 8 * n_cells * 3)


def _edge_pvalues(backend, test, n_bins: int):
    """p at the (widened) edges of every bin, t order, on the device; the same for every focus
    gene of a study (tests depend only on group sizes), so it is computed once per backend."""
    key = (backend.name, backend.device_name(), test, n_bins)
    if key not in _EDGE_PVALUES:
        if len(_EDGE_PVALUES) >= _EDGE_PVALUES_KEPT:
            del _EDGE_PVALUES[next(iter(_EDGE_PVALUES))]  # the oldest
        xp = backend.xp
        width = test.s_max / n_bins
        b = xp.astype(xp.arange(n_bins - 1, -1, -1, dtype=xp.int64), xp.float64)  # s-bin index of t = 0..n-1
        lo = xp.clip((b - 1) * width, 0.0, test.s_max)  # one bin of margin on each side against
        hi = xp.clip((b + 2) * width, 0.0, test.s_max)  # rounding in the bin assignment
        _EDGE_PVALUES[key] = (test.pvalue(backend, lo), test.pvalue(backend, hi))
    return _EDGE_PVALUES[key]


class BHStream:
    """Exact BH for one test over statistics that arrive in blocks."""

    def __init__(self, backend, test, which: str, n_bins: int = N_BINS, levels: SpearmanLevels | None = None,
                 joint: tuple | None = None):
        """``levels``: the group's level tables (t-tests only); pairs of tie-free genes are then
        counted by level (``level_histogram``) and only the other pairs by bin (``histogram``).
        ``joint``: (LOW, HIGH) level tables (the Fisher test): pairs of genes tie-free in both
        groups are counted by pair of levels (``ExactJoint``; the counts are set by the caller,
        ``set_level_counts``) and only the other pairs by bin."""
        self.backend, self.xp = backend, backend.xp
        self.test, self.which = test, which
        self.n_bins = n_bins
        self.counts = self.xp.zeros(n_bins, dtype=self.xp.int64)  # pairs counted by bin
        if joint is not None:
            self.exact = exact_joint(backend, self, *joint)
        else:
            self.exact = exact_levels(backend, self, levels) if levels is not None else None
        self.level_counts = None  # raw counts of the exact source (after pass 1)

    # -- bins (t = 0 holds the largest s, i.e. the smallest p) ---------------------------------
    def bins(self, s):
        xp = self.xp
        b = xp.astype(s * (self.n_bins / self.test.s_max), xp.int32)  # s >= 0: truncation is floor
        return (self.n_bins - 1) - xp.minimum(b, self.n_bins - 1)

    def histogram(self, s):
        """Pass 1, per block (any thread): the bin counts of a block of statistics (valid pairs)."""
        counts = self.backend.bin_counts(s, self.n_bins / self.test.s_max, self.n_bins)
        if counts is not None:
            return counts
        return self.xp.astype(self.backend.bincount(self.bins(s), self.n_bins), self.xp.int64, copy=False)

    def level_histogram(self, levels):
        """Pass 1, per block: counts per level of the pairs of tie-free genes (``levels``, int32;
        the value ``exact.n`` marks a pair counted by bin instead, and is dropped)."""
        n = self.exact.n
        return self.xp.astype(self.backend.bincount(levels, n + 1)[:n], self.xp.int64, copy=False)

    def add(self, histogram, level_histogram=None) -> None:
        """Pass 1, in block order: add a block's ``histogram`` (and ``level_histogram``; None: none)."""
        if histogram is not None:
            self.counts += histogram
        if level_histogram is not None:
            self.set_level_counts(level_histogram)

    def set_level_counts(self, counts) -> None:
        """Add raw counts of the exact source (``exact.n`` of them, int64; the first array given
        is kept, not copied)."""
        self.level_counts = counts if self.level_counts is None else self.level_counts + counts

    def count(self, s, levels=None) -> None:
        self.add(self.histogram(s), None if levels is None else self.level_histogram(levels))

    def value_counts(self):
        """Pairs counted by level, per value of s (``exact.values``, descending; ``ExactLevels``
        only); after pass 1."""
        if not hasattr(self, "_value_counts"):
            if self.level_counts is None:
                self.level_counts = self.xp.zeros(self.exact.n, dtype=self.xp.int64)
            self._value_counts = self.exact.fold(self.xp, self.level_counts)
        return self._value_counts

    @property
    def total_counts(self):
        """Pairs per bin, whichever way they were counted (after pass 1)."""
        if not hasattr(self, "_total"):
            self._total = self.counts
            if self.exact is not None:
                if self.level_counts is None:
                    self.level_counts = self.xp.zeros(self.exact.n, dtype=self.xp.int64)
                self._total = self.counts + self.exact.bin_totals(self)
        return self._total

    def _bounds(self):
        """Per bin (lower, upper) bound on the smallest BH term of its pairs; inf when empty."""
        if hasattr(self, "_lb"):
            return self._lb, self._ub
        xp = self.xp
        p_lo, p_hi = _edge_pvalues(self.backend, self.test, self.n_bins)
        counts = self.total_counts
        self.m = int(xp.sum(counts))
        empty = counts == 0
        frac = xp.astype(xp.cumulative_sum(counts), xp.float64) / max(self.m, 1)
        frac = xp.where(empty, 1.0, frac)
        self._lb = xp.where(empty, xp.inf, p_hi / frac * (1 - _SLACK))
        self._ub = xp.where(empty, xp.inf, p_lo / frac * (1 + _SLACK))
        return self._lb, self._ub

    # -- which bins must be seen exactly (boolean masks over bins, on the device) ----------------
    def bins_for_threshold(self, alpha: float):
        """Bins that decide s*: the last bin surely holding a term < alpha, and later ones that might."""
        xp = self.xp
        lb, ub = self._bounds()
        t = xp.arange(self.n_bins, dtype=xp.int64)
        t_sure = xp.max(xp.where(ub < alpha, t, -1))
        return ((lb < alpha) & (t > t_sure)) | (t == t_sure)

    def bins_for_queries(self, query_bins):
        """Bins that decide q of pairs in ``query_bins`` (their bin numbers, a device array).

        q of a pair in bin t0 is the minimum of its own bin's terms (from it onwards) and of the
        exact minima of later bins.  A later bin t can lower that only if its lower bound is at
        most the best upper bound after t0 (SU[t0 + 1]) and below the cap of 1; SU grows with t0,
        so the query bin closest below t is the one to test against.
        """
        xp, backend = self.xp, self.backend
        lb, ub = self._bounds()
        n = self.n_bins
        is_query = backend.bincount(xp.astype(query_bins, xp.int64), n) > 0
        suffix_ub = xp.concat([xp.flip(backend.cummin(xp.flip(ub))), xp.asarray([xp.inf], dtype=xp.float64)])
        t = xp.arange(n, dtype=xp.int64)
        last_query = -backend.cummin(-xp.where(is_query, t, -1))  # running maximum
        below = xp.concat([xp.asarray([-1], dtype=xp.int64), last_query[:-1]])  # largest query bin < t
        reach = xp.where(below >= 0, xp.take(suffix_ub, xp.maximum(below, 0) + 1), -xp.inf)
        need = is_query | ((lb <= reach) & (lb < 1.0))
        return need & (self.total_counts > 0)

    def refinement(self, bin_mask) -> "Refinement":
        return Refinement(self, bin_mask)


def _distinct_desc(xp, values, mult):
    """Distinct values in descending order with their multiplicities (``mult`` None = ones)."""
    if values.shape[0] == 0:
        return values, xp.zeros((0,), dtype=xp.int64)
    order = xp.argsort(-values, stable=True)
    v = xp.take(values, order)
    c = xp.ones(v.shape, dtype=xp.int64) if mult is None else xp.take(mult, order)
    new = xp.concat([xp.ones((1,), dtype=xp.bool), v[1:] != v[:-1]])
    ends = xp.cumulative_sum(c)
    last = xp.concat([xp.nonzero(new)[0][1:] - 1, xp.asarray([v.shape[0] - 1], dtype=xp.int64)])
    total = xp.take(ends, last)
    return v[new], total - xp.concat([xp.zeros((1,), dtype=xp.int64), total[:-1]])


class Refinement:
    """Exact BH terms for every pair in a chosen set of bins (gathered over one pass of blocks)."""

    def __init__(self, stream: BHStream, bin_mask):
        self.stream, self.xp = stream, stream.xp
        self.bin_mask = bin_mask
        self._parts = []
        xp, n = stream.xp, stream.n_bins
        if stream.exact is not None:  # values counted by level: taken straight from the counts
            self._parts.append(stream.exact.picked(stream, bin_mask))
        # the statistic range that holds every chosen bin with pairs counted by bin, one bin wider
        # on each side (against rounding in ``bins``): a cheap comparison screens a block before
        # bins are computed
        binned = bin_mask & (stream.counts > 0)
        t = xp.arange(n, dtype=xp.int64)
        t_first = int(stream.backend.to_host(xp.min(xp.where(binned, t, n))))
        t_last = int(stream.backend.to_host(xp.max(xp.where(binned, t, -1))))
        width = stream.test.s_max / n
        self._empty = t_last < 0
        self.needs_pass = not self._empty  # False: no pair needs to be seen again
        self._s_low = (n - 2 - t_last) * width  # bin t holds s in [(n-1-t) w, (n-t) w)
        self._s_high = math.inf if t_first <= 1 else (n + 1 - t_first) * width

    def pick(self, s):
        """Pass 2, per block (any thread): the statistics of pairs that fall in the chosen bins, as
        distinct values with counts (small groups give heavily tied statistics; this keeps
        memory to the number of distinct values)."""
        xp = self.xp
        if self._empty:
            return _distinct_desc(xp, s[:0], None)
        s = self.stream.backend.values_in_range(s, self._s_low, self._s_high)
        keep = xp.take(self.bin_mask, self.stream.bins(s))
        return _distinct_desc(xp, s[keep], None)

    def add(self, picked) -> None:
        """Pass 2, in block order: keep a block's ``pick``."""
        self._parts.append(picked)

    def gather(self, s) -> None:
        self.add(self.pick(s))

    def finish(self) -> "Refinement":
        xp, st = self.xp, self.stream
        backend = st.backend
        if self._parts:
            values = xp.concat([v for v, _ in self._parts])
            mult = xp.concat([c for _, c in self._parts])
        else:
            values, mult = xp.zeros((0,), dtype=xp.float64), xp.zeros((0,), dtype=xp.int64)
        self._parts = []
        s_sorted, mult = _distinct_desc(xp, values, mult)  # descending s = ascending p
        self.keys = -s_sorted
        # F(y) = #pairs with s >= s_y = pairs in earlier bins + gathered ones (whole bins) up to y
        counts = st.total_counts
        gathered = xp.where(self.bin_mask, counts, 0)
        before_all = xp.cumulative_sum(counts) - counts
        before_gathered = xp.cumulative_sum(gathered) - gathered
        base = xp.take(before_all - before_gathered, st.bins(s_sorted))
        f_count = base + xp.cumulative_sum(mult)
        p = _pvalues(st, s_sorted)
        term = p / (xp.astype(f_count, xp.float64) / st.m)
        self.s_sorted, self.term = s_sorted, term
        self.suffix_min = xp.flip(backend.cummin(xp.flip(term))) if term.shape[0] else term
        return self

    def threshold(self, alpha: float) -> float:
        """s* such that q < alpha exactly when s >= s*; +inf when no pair is significant."""
        xp = self.xp
        passing = self.s_sorted[self.term < alpha]
        if passing.shape[0] == 0:
            return math.inf
        return float(self.stream.backend.to_host(xp.min(passing)))

    def q_values(self, s_query):
        """BH q of pairs with statistics ``s_query`` (their bins must have been refined)."""
        xp = self.xp
        idx = xp.searchsorted(self.keys, -s_query, side="left")
        return xp.minimum(xp.take(self.suffix_min, idx), 1.0)
