"""One focus gene end to end, on any backend: split, ranks, pair tests, BH, selection, bootstrap.

Pair space is visited in passes over row blocks (see ``core.fdr``): histogram, BH thresholds,
selection, q-values of the selected edges; a threshold or q-value pass that no test needs (every
value it would look at is known from counts by level) is skipped.  Blocks hold each pair as its
Spearman level where the group has level tables (``PairPasses``), so the t-tests count levels and
the Fisher statistic is two table gathers and a subtraction, with no transcendental per pair.
Small groups with at least one pair per cell of LOW levels x HIGH levels (``spearman.joint_cells``:
k <= 29, e.g. ALL's 12,625 genes at k = 25) keep one int32 joint index a pair instead
(``JointPasses``): one histogram of the indices counts all three tests (the Fisher test exactly,
by cell), the threshold and q-value passes only visit the pairs with a tied gene, and the
selection reads a table of chosen cells at each pair's index; the pair cache shrinks from ~13 to
4 bytes a pair.  Only the selected edges' values outlive a block.  Then the pair cache is dropped (and its memory
handed back), the bootstrap is re-planned for the number of selected edges
(``planner.plan_bootstrap``) and run (``core.bootstrap``); the re-made plan, with the focus gene's
predicted peak, comes back on ``FocusResult.plan``.  The result is moved to the host explicitly at
the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bootgpu.backends._base import Backend
from bootgpu.config import AnalysisConfig
from bootgpu.core.arrays import Array, Namespace
from bootgpu.core.bootstrap import (
    BootstrapSettings, bootstrap_summaries, resample_size, summary_rows,
)
from bootgpu.core.change import classify_change
from bootgpu.core.fdr import LEVEL_TEST_BINS, N_BINS, BHStream, JointHistogram, bins_for_pairs, spearman_levels
from bootgpu.core.significance import FisherTest, TTest, z_transform
from bootgpu.core.spearman import (
    JOINT_CACHE_ALLOWANCE, JOINT_PAIR_BYTES, TIED_PAIR_BYTES, GroupPairs, JointBlocks, PairBlock, PairBlocks, TiedPairs,
    GroupRanks, group_ranks, joint_cells,
)
from bootgpu.core.split import separated, split_samples
from bootgpu.planner import Plan, bootstrap_peak, plan_bootstrap, replicate_chunk_for, replicate_work_bytes
from bootgpu.results_schema import EDGE_FLOAT_FIELDS, PAIR_MASK_FIELDS, PAIR_VALUE_FIELDS, FocusResult, empty_edges

TESTS = ("low", "high", "diff")


class BlockStats:
    """What the passes read from a block's valid pairs (``PairPasses``), per test name:

    ``stats["diff"]`` Fisher's statistic; ``stats["low"]``/``["high"]`` |r| (built on demand);
    ``r(name)`` and ``r_at(name, positions)`` r; ``levels(name)`` each pair's level (pairs with a
    tied gene: the sentinel n), None where the block keeps r instead; ``binned(name)`` the t-test
    statistics of the pairs its stream counts by bin (those with a tied gene; None: none);
    ``significant(name, s_star)`` whether s >= s*, from the levels where there are levels."""

    def __init__(self, passes: "PairPasses", item: dict):
        self._passes, self._item = passes, item
        self.xp = passes.xp
        self.n_valid = item["n_valid"]  # how many of the block's pairs are valid (a host int)

    def _group(self, name: str) -> GroupPairs:
        return self._item[name]

    def __getitem__(self, name: str):
        if name == "diff":
            return self._item["s_diff"]
        return self.xp.abs(self.r(name))

    def levels(self, name: str):
        return self._group(name).levels

    def r(self, name: str):
        g = self._group(name)
        if g.r is not None:
            return g.r
        r = self._passes.levels[name].r_at(self.xp, g.levels)
        if g.tied_r.shape[0]:
            r[g.levels == g.sentinel] = g.tied_r
        return r

    def r_at(self, name: str, positions):
        xp, g = self.xp, self._group(name)
        if g.r is not None:
            return xp.take(g.r, positions)
        a = xp.take(g.levels, positions)
        r = self._passes.levels[name].r_at(xp, a)
        if g.tied_r.shape[0]:
            tied = a == g.sentinel
            if int(xp.count_nonzero(tied)):
                rank = xp.searchsorted(xp.nonzero(g.levels == g.sentinel)[0], positions[tied])
                r[tied] = xp.take(g.tied_r, rank)
        return r

    def binned(self, name: str):
        g = self._group(name)
        if g.r is not None:
            return self.xp.abs(g.r)
        return self.xp.abs(g.tied_r) if g.tied_r.shape[0] else None

    def significant(self, name: str, s_star: float):
        xp = self.xp
        if name == "diff":
            return self._item["s_diff"] >= s_star
        g = self._group(name)
        if g.r is not None:
            return xp.abs(g.r) >= s_star
        cut = self._passes.level_cut(name, s_star)  # |r| >= s*  <=>  min(a, D/2 - a) < cut
        sig = (g.levels < cut) | (g.levels > (g.sentinel - 1) - cut)
        if g.tied_r.shape[0]:
            sig[g.levels == g.sentinel] = xp.abs(g.tied_r) >= s_star
        return sig


class PairPasses:
    """Repeated passes over pair space: ``map(fn)`` yields fn(block, valid, stats) for every block,
    in block order, computing up to ``threads`` blocks at once (``block``: its rows, ``valid``: which
    of its pairs have both correlations defined, ``stats``: a ``BlockStats`` of the valid pairs).

    A group with level tables (``core.fdr.spearman_levels``) keeps each pair as its level (int16
    for k <= 57, else int32) and r only for pairs with a tied gene (``spearman.GroupPairs``);
    Fisher's z is a gather from the level table.  With ``cache`` the first pass keeps each block's
    values -- levels, the Fisher statistic (float64) and the valid flags, about 13 bytes a pair at
    k = 25 and 17 at k = 187, at most 25 (r kept as float64 where ties abound) -- so later passes
    cost only the cheap statistics; without it every pass recomputes the matrix products.  Each
    block, its matrix products included, is computed in one of the backend's threads (the rank
    GEMMs are thin, k columns deep, so two of them at once beat one BLAS-threaded GEMM with the
    per-pair work waiting behind it); whatever is reduced across blocks is reduced by the caller,
    in block order, so results do not depend on the thread count.
    """

    def __init__(self, backend, pairs: PairBlocks, tests: dict, cache: bool, threads: int = 1):
        self.backend, self.xp = backend, backend.xp
        self.pairs, self.tests, self.cache = pairs, tests, cache
        self.threads = max(1, int(threads))
        self._starts = pairs.starts()
        self._cached = [None] * len(self._starts) if cache else None
        self.levels = {name: spearman_levels(backend, grp.k) for name, grp in (("low", pairs.low), ("high", pairs.high))}
        self._cuts = {}

    def level_cut(self, name: str, s_star: float) -> int:
        key = (name, s_star)
        if key not in self._cuts:
            self._cuts[key] = self.levels[name].count_at_least(s_star)
        return self._cuts[key]

    def _compute(self, index: int) -> dict:
        xp = self.xp
        start, stop, low, high = self.pairs.compact_block(self._starts[index])
        valid = None
        for g in (low, high):  # r is undefined (NaN) for pairs with a constant gene
            if g.r is not None:
                bad = ~xp.isfinite(g.r)
            elif g.tied_r.shape[0]:
                bad = xp.zeros(g.levels.shape, dtype=xp.bool)
                bad[g.levels == g.sentinel] = ~xp.isfinite(g.tied_r)
            else:
                continue
            valid = ~bad if valid is None else valid & ~bad
        n = (low.r if low.r is not None else low.levels).shape[0]
        n_valid = n if valid is None else int(xp.count_nonzero(valid))  # counted once, read by every pass
        if valid is None:
            valid = xp.ones((n,), dtype=xp.bool)
        elif n_valid < n:
            low, high = low.select(valid), high.select(valid)
        return {"block": PairBlock(start, stop, None, None), "valid": valid, "n_valid": n_valid,
                "low": low, "high": high, "s_diff": None}

    def _derive(self, item: dict) -> None:
        """The Fisher statistic of a block (kept with it)."""
        xp = self.xp
        high, low = item["high"], item["low"]
        if high.r is None and low.r is None:  # z gathered from the level tables, ties filled in
            item["s_diff"] = self.backend.gathered_abs_diff(
                *((self.levels[name].z, g.levels, g.sentinel, z_transform(xp, g.tied_r))
                  for name, g in (("high", high), ("low", low))))
            return
        z = {}
        for name, g in (("low", low), ("high", high)):
            if g.r is not None:
                z[name] = z_transform(xp, g.r)
                continue
            z[name] = xp.take(self.levels[name].z, g.levels)
            if g.tied_r.shape[0]:
                z[name][g.levels == g.sentinel] = z_transform(xp, g.tied_r)
        item["s_diff"] = xp.abs(z["high"] - z["low"])

    def _item(self, index: int) -> dict:
        item = self._cached[index] if self._cached is not None else None
        if item is None:
            item = self._compute(index)
            if self._cached is not None:
                self._cached[index] = item
        return item

    def _run(self, fn, item: dict):
        if item["s_diff"] is None:
            self._derive(item)
        return fn(item["block"], item["valid"], BlockStats(self, item))

    def map(self, fn, binned_only: bool = False):
        """``binned_only``: fn reads only ``stats.binned`` (no use here; see ``JointPasses``)."""
        # each block, its matrix products included, in one of the backend's threads, ``threads`` at
        # a time (which bounds memory) and computing ahead while the caller reduces the last one
        yield from self.backend.imap_chunks(lambda i: self._run(fn, self._item(i)), range(len(self._starts)),
                                            self.threads)

    def __iter__(self):
        return self.map(lambda *item: item)


@dataclass
class TiedStats:
    """``TiedPairs`` of a block with what the passes read: ``valid`` (both r defined) and Fisher's
    statistic (z from the level table where the group is tie-free, else arctanh of r, as
    ``PairPasses`` computes it)."""

    pairs: TiedPairs
    valid: object
    s_diff: object


class JointStats:
    """``BlockStats`` of a ``JointPasses`` block: ``item`` holds ``joint`` and ``tied``
    (``TiedStats`` or None).  The passes read ``binned(name)`` -- the statistics of the pairs a
    stream counts by bin (for a t-test those with a tied gene in its group, for the Fisher test
    those with a tied gene in either) -- and the joint count and selection passes read ``item``.
    ``r(name)`` and ``stats[name]`` give every valid pair's r and statistic (tests, benchmarks)."""

    def __init__(self, passes: "JointPasses", item: dict):
        self._passes, self.item = passes, item
        self.xp = passes.xp

    def binned(self, name: str):
        t = self.item["tied"]
        if t is None:
            return None
        xp, p = self.xp, t.pairs
        if name == "diff":
            return t.s_diff[t.valid]
        keep = t.valid & (p.tied_low if name == "low" else p.tied_high)
        return xp.abs((p.r_low if name == "low" else p.r_high)[keep])

    def every(self, name: str):
        """(values of every pair of the block, valid mask) for ``name`` in r_low, r_high, diff."""
        xp, passes = self.xp, self._passes
        joint, t = self.item["joint"], self.item["tied"]
        if joint is None:
            joint = passes.blocks.block(self.item["block"].start).joint
        blocks = passes.blocks
        if name == "diff":
            values = passes.exact_diff_values(joint)
        else:
            a = xp.floor_divide(joint, blocks.n_high) if name == "r_low" else xp.remainder(joint, blocks.n_high)
            values = passes.levels[name[2:]].r_at(xp, a)
        valid = xp.ones(joint.shape, dtype=xp.bool)
        if t is not None:
            mask = passes.backend.bincount(t.pairs.pos, joint.shape[0]) > 0
            values[mask] = t.s_diff if name == "diff" else getattr(t.pairs, name)
            valid[mask] = t.valid
        return values, valid

    def r(self, name: str):
        values, valid = self.every(f"r_{name}")
        return values[valid]

    def __getitem__(self, name: str):
        if name == "diff":
            values, valid = self.every("diff")
            return values[valid]
        return self.xp.abs(self.r(name))


class JointPasses:
    """``PairPasses`` for small groups (``spearman.joint_cells``): each block as joint level indices
    (``spearman.JointBlocks``: int32, 4 bytes a pair) and the ``TiedPairs`` of pairs with a tied
    gene.  The count pass histograms the joint indices (``core.fdr.JointHistogram``): the t-tests' level
    counts are its marginals and the Fisher test is exact from it (``core.fdr.ExactJoint``), so the
    threshold and q-value passes need only the pairs with a tied gene -- which a block computes
    without its matrix products (``map(fn, binned_only=True)``) -- and the selection pass reads a
    table of chosen cells at each pair's index.  With ``cache`` each block's joint indices and
    tied pairs are kept from the first pass (``cache_bytes``)."""

    def __init__(self, backend, pairs: PairBlocks, tests: dict, cache: bool, threads: int = 1):
        self.backend, self.xp = backend, backend.xp
        self.pairs, self.tests = pairs, tests
        self.threads = max(1, int(threads))
        self.blocks = JointBlocks(self.xp, pairs, backend.ieee_float32_matmul, backend.joint_triangle)
        self.levels = {name: spearman_levels(backend, grp.k) for name, grp in (("low", pairs.low), ("high", pairs.high))}
        self._starts = pairs.starts()
        # the plan allows JOINT_PAIR_BYTES + JOINT_CACHE_ALLOWANCE a pair: with more pairs with a
        # tied gene than that covers, every pass recomputes its blocks instead
        allowed = int(pairs.n_pairs * (JOINT_PAIR_BYTES + JOINT_CACHE_ALLOWANCE))
        self.cache = bool(cache) and self.cache_bytes() <= allowed
        self._cached = [None] * len(self._starts) if self.cache else None
        self._cuts = {}
        self.counted = None  # the BH streams, once the count pass has set their counts

    def cache_bytes(self) -> int:
        return self.pairs.n_pairs * JOINT_PAIR_BYTES + self.blocks.n_tied_pairs * TIED_PAIR_BYTES

    def level_cut(self, name: str, s_star: float) -> int:
        key = (name, s_star)
        if key not in self._cuts:
            self._cuts[key] = self.levels[name].count_at_least(s_star)
        return self._cuts[key]

    def exact_diff_values(self, joint):
        """Fisher's statistic of pairs of tie-free genes from their joint indices."""
        xp, b = self.xp, self.blocks
        z_low, z_high = self.levels["low"].z, self.levels["high"].z
        return xp.abs(xp.take(z_high, xp.remainder(joint, b.n_high)) - xp.take(z_low, xp.floor_divide(joint, b.n_high)))

    def _tied_stats(self, tied: TiedPairs | None) -> TiedStats | None:
        if tied is None:
            return None
        xp = self.xp
        z = {}
        for name, r, is_tied, level in (("low", tied.r_low, tied.tied_low, tied.level_low),
                                        ("high", tied.r_high, tied.tied_high, tied.level_high)):
            z[name] = xp.where(is_tied, z_transform(xp, r), xp.take(self.levels[name].z, level))
        valid = xp.isfinite(tied.r_low) & xp.isfinite(tied.r_high)
        return TiedStats(tied, valid, xp.abs(z["high"] - z["low"]))

    def _item(self, index: int, binned_only: bool) -> dict:
        item = self._cached[index] if self._cached is not None else None
        if item is None:
            block = self.blocks.block(self._starts[index], tied_only=binned_only)
            item = {"block": PairBlock(block.start, block.stop, None, None), "joint": block.joint,
                    "tied": self._tied_stats(block.tied)}
            if self._cached is not None and not binned_only:
                self._cached[index] = item
        return item

    def map(self, fn, binned_only: bool = False):
        """fn(block, None, JointStats) for every block, in block order, ``threads`` at a time."""
        run = lambda i: fn(None, None, JointStats(self, self._item(i, binned_only)))  # noqa: E731
        yield from self.backend.imap_chunks(run, range(len(self._starts)), self.threads)

    def __iter__(self):
        return self.map(lambda _b, _v, stats: (stats.item["block"], None, stats))


def make_pair_passes(backend: Backend, pairs: PairBlocks, tests: dict, cache: bool, threads: int = 1,
                     joint: bool | None = None) -> "PairPasses | JointPasses":
    """``JointPasses`` where the focus gene's groups have a joint histogram (``joint_cells``),
    else ``PairPasses``; ``joint`` True or False forces one (tests; True needs level tables and at
    most ``spearman.JOINT_MAX_CELLS`` cells, whatever the number of pairs)."""
    if joint is None:
        joint = bool(joint_cells(pairs.n_genes, pairs.low.k, pairs.high.k))
    if joint:
        return JointPasses(backend, pairs, tests, cache, threads)
    return PairPasses(backend, pairs, tests, cache, threads)


def bh_streams(backend: Backend, passes: "PairPasses | JointPasses") -> dict:
    """One ``BHStream`` per test.  A t-test with level tables counts the pairs of tie-free genes by
    level, so its bins only hold the pairs with a tied gene and are sized for those; with
    ``JointPasses`` the Fisher test counts the pairs of genes tie-free in both groups by pair of
    levels (``core.fdr.ExactJoint``) and bins the others."""
    xp, pairs = backend.xp, passes.pairs
    streams = {}
    if isinstance(passes, JointPasses):
        for name, test in passes.tests.items():
            if name == "diff":
                joint = (passes.levels["low"], passes.levels["high"])
                streams[name] = BHStream(backend, test, name, bins_for_pairs(passes.blocks.n_tied_pairs), joint=joint)
            else:
                n_binned = passes.blocks.tied_pairs_of(name)
                streams[name] = BHStream(backend, test, name, bins_for_pairs(n_binned, LEVEL_TEST_BINS), passes.levels[name])
        return streams
    for name, test in passes.tests.items():
        levels = passes.levels.get(name)
        n_binned = pairs.n_pairs
        most = N_BINS
        if levels is not None:
            untied = pairs.n_genes - int(xp.count_nonzero(pairs.tied[name]))
            n_binned -= untied * (untied - 1) // 2
            most = LEVEL_TEST_BINS
        streams[name] = BHStream(backend, test, name, bins_for_pairs(n_binned, most), levels)
    return streams


def _reduce_selection(xp, blocks, counts: dict):
    """Both selection passes' reduction, in block order: add each block's counts into ``counts``
    and concatenate its selected edges (None: none); returns (counts, edges or None)."""
    parts = []
    for block_counts, part in blocks:
        for key, value in block_counts.items():
            counts[key] += value
        if part is not None:
            parts.append(part)
    return counts, _collect(xp, parts)


def _collect(xp, parts):
    return {key: xp.concat([p[key] for p in parts]) for key in parts[0]} if parts else None


@dataclass
class Groups:
    """A focus gene's LOW and HIGH groups: their sample indices (device int64) and base ranks."""

    low_idx: Array
    high_idx: Array
    low: GroupRanks
    high: GroupRanks

    @property
    def k_low(self) -> int:
        return self.low.k

    @property
    def k_high(self) -> int:
        return self.high.k


@dataclass
class Selection:
    """What the selection passes leave: the pair passes and BH streams (for ``q_values``), the
    number of pairs excluded for a NaN correlation, each test's exact BH threshold (q < alpha
    <=> s >= s*), the significance counts and the selected edges (gene_i, gene_j, r_low, r_high,
    s_*, sig_low, sig_high; None: none)."""

    passes: PairPasses | JointPasses
    streams: dict
    n_nan: int
    thresholds: dict
    counts: dict
    edges: dict | None


def pair_tests(k_low: int, k_high: int) -> dict:
    """The three tests of every gene pair, by name: t-tests in LOW and HIGH, Fisher's z between them."""
    return {"low": TTest(k_low), "high": TTest(k_high), "diff": FisherTest(k_low, k_high)}


def rank_groups(backend: Backend, expr: Array, focus: int, k_low: int, k_high: int, threads: int = 1) -> Groups:
    """Stage 1: split the samples by the focus gene's expression and rank every gene within each
    group (the two groups in the backend's threads)."""
    low_idx, high_idx = split_samples(backend.xp, expr[focus, :], k_low, k_high)
    return rank_split(backend, expr, low_idx, high_idx, threads)


def rank_split(backend: Backend, expr: Array, low_idx: Array, high_idx: Array, threads: int = 1) -> Groups:
    """Stage 1 for given groups: rank every gene within the samples ``low_idx`` and ``high_idx``
    (device int64 sample indices, disjoint; group position p is sample ``idx[p]``), the two groups
    in the backend's threads.  ``rank_groups`` splits by a focus gene; the permutation null
    (``bootgpu.null``) passes random splits."""
    xp = backend.xp
    low, high = backend.map_chunks(lambda idx: group_ranks(xp, xp.take(expr, idx, axis=1), backend.flat_sorts),
                                   (low_idx, high_idx), threads)
    return Groups(low_idx, high_idx, low, high)


def pair_passes(backend: Backend, groups: Groups, plan: Plan) -> PairPasses | JointPasses:
    """Stage 2: passes over pair space in the plan's row blocks (``PairPasses`` or ``JointPasses``);
    iterating them once computes (and, with ``plan.cache_pairs``, keeps) every block."""
    pairs = PairBlocks(backend.xp, groups.low, groups.high, plan.rows_per_block, backend.upper_triangle,
                       backend.level_triangle)
    return make_pair_passes(backend, pairs, pair_tests(groups.k_low, groups.k_high), plan.cache_pairs, plan.threads)


def select_edges(backend: Backend, passes: PairPasses | JointPasses, alpha: float, edge_selection: str) -> Selection:
    """Stage 3: the three histograms, exact BH thresholds and the selected edges."""
    xp = backend.xp
    with backend.pair_scope():
        streams = bh_streams(backend, passes)
        n_nan = _count_pass(xp, passes, streams)
        s_star = _threshold_pass(passes, streams, alpha)
        counts, edges = _selection_pass(xp, passes, passes.pairs, s_star, edge_selection)
    return Selection(passes, streams, n_nan, s_star, counts, edges)


def q_values(backend: Backend, selection: Selection) -> dict[str, Array]:
    """Stage 4: exact BH q of the selected edges for each test (q_low, q_high, q_diff)."""
    with backend.pair_scope():
        return _q_value_pass(backend, selection.passes, selection.streams, selection.edges)


class BitPacker:
    """Booleans arriving in pieces, packed as ``np.packbits`` would pack them all at once (big-endian
    bit order): whole bytes are packed as they come, the last few bits wait for the next piece."""

    def __init__(self, n_bits: int):
        self.out = np.zeros((n_bits + 7) // 8, dtype=np.uint8)
        self._rest = np.zeros(0, dtype=bool)
        self._byte = 0

    def add(self, bits: np.ndarray) -> None:
        bits = np.concatenate([self._rest, bits]) if self._rest.size else bits
        whole = bits.size // 8 * 8
        self.out[self._byte:self._byte + whole // 8] = np.packbits(bits[:whole])
        self._byte += whole // 8
        self._rest = bits[whole:]

    def finish(self) -> np.ndarray:
        if self._rest.size:
            self.out[self._byte] = np.packbits(self._rest)[0]
        return self.out


def _block_pair_values(xp, passes, s_star: dict, full: bool):
    """fn for ``passes.map``: a block's significance masks (and with ``full`` r) over every pair of
    the block, pairs whose correlation is undefined not significant (r NaN)."""

    def per_block(block, valid, stats):
        out = {}
        if isinstance(passes, JointPasses):
            r = {name: stats.every(f"r_{name}") for name in ("low", "high")}
            diff, ok = stats.every("diff")
            ok = ok & r["low"][1] & r["high"][1]
            for name in ("low", "high"):
                out[f"sig_{name}"] = ok & (xp.abs(r[name][0]) >= s_star[name])
                out[f"r_{name}"] = xp.where(ok, r[name][0], xp.nan)
            out["sig_diff"] = ok & (diff >= s_star["diff"])
        else:
            for name in TESTS:
                sig = xp.zeros(valid.shape, dtype=xp.bool)
                sig[valid] = stats.significant(name, s_star[name])
                out[f"sig_{name}"] = sig
            for name in ("low", "high"):
                r = xp.full(valid.shape, xp.nan, dtype=xp.float64)
                r[valid] = stats.r(name)
                out[f"r_{name}"] = r
        if not full:
            out = {key: value for key, value in out.items() if key.startswith("sig_")}
        return {key: passes.backend.to_host(value) for key, value in out.items()}

    return per_block


def pair_values(backend: Backend, selection: Selection, full: bool = False) -> dict[str, np.ndarray]:
    """Stage 4b (``--store common`` / ``full``): over every gene pair in condensed order, host arrays
    of the significance masks sig_low, sig_high, sig_diff packed with ``np.packbits`` (their q <
    alpha: the exact BH thresholds), and with ``full`` r_low, r_high (float32, NaN where undefined)."""
    n_pairs = selection.passes.pairs.n_pairs
    packers = {name: BitPacker(n_pairs) for name in PAIR_MASK_FIELDS}
    values = {name: np.empty(n_pairs, dtype=np.float32) for name in PAIR_VALUE_FIELDS} if full else {}
    at = 0
    with backend.pair_scope():
        fn = _block_pair_values(backend.xp, selection.passes, selection.thresholds, full)
        for block in selection.passes.map(fn):
            for name, packer in packers.items():
                packer.add(block[name])
            for name, out in values.items():
                out[at:at + block[name].shape[0]] = block[name]
            at += block["sig_diff"].shape[0]
    assert at == n_pairs, (at, n_pairs)
    return {**{name: p.finish() for name, p in packers.items()}, **values}


SKIPPED_TIES = "skipped: its values tie across the split (LOW's highest equals HIGH's lowest), so sample order, not " \
    "expression, would set its groups"


def analyse_focus(backend: Backend, expr: Array, focus: int, cfg: AnalysisConfig, plan: Plan, k_low: int,
                  k_high: int) -> FocusResult:
    """Analyse focus gene ``focus`` of ``expr`` (device array, genes x samples, float64): the
    stages above, then ``bootstrap_edges`` and ``classify``, the result moved to the host.  A focus
    gene whose LOW and HIGH values tie (``core.split.separated``) is skipped: no edges, its
    ``attrs["skipped"]`` says why."""
    xp = backend.xp
    low_idx, high_idx = split_samples(xp, expr[focus, :], k_low, k_high)
    if not separated(xp, expr[focus, :], low_idx, high_idx):
        return skipped_result(backend, focus, low_idx, high_idx, plan, SKIPPED_TIES)
    return analyse_groups(backend, rank_split(backend, expr, low_idx, high_idx, plan.threads), focus, cfg, plan)


def skipped_result(backend: Backend, focus: int, low_idx: Array, high_idx: Array, plan: Plan, why: str) -> FocusResult:
    """The result of a focus gene that was not analysed: no tests, no edges, and why."""
    attrs = dict.fromkeys(("n_tests", "n_nan", "n_sig_low", "n_sig_high", "n_sig_diff", "n_sig_edges", "n_robust"), 0)
    attrs.update(k_low=int(low_idx.shape[0]), k_high=int(high_idx.shape[0]), skipped=why)
    return FocusResult(focus, attrs, backend.to_host(low_idx).astype(np.int32), backend.to_host(high_idx).astype(np.int32),
                       empty_edges(), plan_bootstrap(plan, 0))


def analyse_groups(backend: Backend, groups: Groups, focus: int, cfg: AnalysisConfig, plan: Plan) -> FocusResult:
    """Stages 2 to 6 on ranked groups (``rank_groups`` or ``rank_split``): the selected edges with
    their q-values, bootstrap summaries and classes, on the host.  ``focus`` names the result and
    keys the bootstrap draws (``core.draws``: the permutation null passes a code no gene has)."""
    xp = backend.xp
    k_low, k_high = groups.k_low, groups.k_high
    selection = select_edges(backend, pair_passes(backend, groups, plan), cfg.fdr_alpha, cfg.edge_selection)
    sel = selection.edges
    edges = q_values(backend, selection) if sel is not None else None
    stored_pairs = pair_values(backend, selection, cfg.store == "full") if cfg.store != "minimal" else None
    n_pairs = selection.passes.pairs.n_pairs
    attrs = {"k_low": k_low, "k_high": k_high, "n_tests": n_pairs - selection.n_nan, "n_nan": selection.n_nan,
             **selection.counts}
    low_samples = backend.to_host(groups.low_idx).astype(np.int32)
    high_samples = backend.to_host(groups.high_idx).astype(np.int32)
    if sel is None:
        attrs["n_robust"] = 0
        return FocusResult(focus, attrs, low_samples, high_samples, empty_edges(), plan_bootstrap(plan, 0),
                           pairs=stored_pairs)

    del selection  # the cached pair statistics and the counts are not needed by the bootstrap
    backend.release_memory(plan.predicted_peak_bytes, plan.budget_bytes)
    boot, plan = bootstrap_edges(backend, groups, sel, focus, cfg, plan)
    edges.update(boot)
    robust, change = classify(xp, sel, edges)
    attrs["n_robust"] = int(xp.count_nonzero(robust))
    host = {key: backend.to_host(edges[key]).astype(np.float32) for key in EDGE_FLOAT_FIELDS}
    host["gene_i"] = backend.to_host(sel["gene_i"]).astype(np.int32)
    host["gene_j"] = backend.to_host(sel["gene_j"]).astype(np.int32)
    host["change"] = backend.to_host(change).astype(np.int8)
    host["robust"] = backend.to_host(robust)
    return FocusResult(focus, attrs, low_samples, high_samples, host, plan, pairs=stored_pairs)


def classify(xp: Namespace, sel: dict[str, Array], edges: dict[str, Array]) -> tuple[Array, Array]:
    """Stage 6: (robust, change) of the selected edges: robust where the bootstrap CI excludes 0,
    change the class code (``core.change``)."""
    robust = (edges["ci_low"] > 0) | (edges["ci_high"] < 0)
    return robust, classify_change(xp, sel["sig_low"], sel["sig_high"], sel["r_low"], sel["r_high"])


def _count_pass(xp, passes, streams) -> int:
    """Pass 1: the three histograms; returns the number of pairs excluded for a NaN correlation."""
    if isinstance(passes, JointPasses):
        return _joint_count_pass(xp, passes, streams)

    def per_block(block, valid, stats):
        n_bad = int(valid.shape[0]) - stats.n_valid
        out = {}
        for name in TESTS:
            stream = streams[name]
            if stream.exact is None:
                out[name] = (stream.histogram(stats[name]), None)
                continue
            binned, levels = stats.binned(name), stats.levels(name)
            out[name] = (None if binned is None else stream.histogram(binned),
                         None if levels is None else stream.level_histogram(levels))
        return n_bad, out

    n_nan = 0
    for n_bad, histograms in passes.map(per_block):
        n_nan += n_bad
        for name in TESTS:
            streams[name].add(*histograms[name])
    return n_nan


def _binned(stats, stream, name: str):
    """The statistics of a block that ``stream`` counted by bin (None: none)."""
    return stats[name] if stream.exact is None else stats.binned(name)


def _refine(passes, refs: dict) -> None:
    """One pass gathering, for each test's refinement, the statistics in its chosen bins; none
    when every chosen value is known from counts by level."""
    refs = {name: ref for name, ref in refs.items() if ref.needs_pass}
    if not refs:
        return

    def per_block(block, valid, stats):
        out = {}
        for name, ref in refs.items():
            s = _binned(stats, ref.stream, name)
            out[name] = None if s is None else ref.pick(s)
        return out

    for picked in passes.map(per_block, binned_only=True):
        for name in refs:
            if picked[name] is not None:
                refs[name].add(picked[name])


def _threshold_pass(passes, streams, alpha: float) -> dict:
    """Pass 2: exact BH thresholds, q < alpha  <=>  s >= s*."""
    refs = {name: streams[name].refinement(streams[name].bins_for_threshold(alpha)) for name in TESTS}
    _refine(passes, refs)
    return {name: refs[name].finish().threshold(alpha) for name in TESTS}


def _selection_pass(xp, passes, pairs, s_star: dict, edge_selection: str):
    """Pass 3: significance counts, and the selected edges with their r, statistics and flags."""
    if isinstance(passes, JointPasses):
        return _joint_selection_pass(xp, passes, pairs, s_star, edge_selection)

    def per_block(block, valid, stats):
        sig = {name: stats.significant(name, s_star[name]) for name in TESTS}
        sig_edges = (sig["low"] | sig["high"]) & sig["diff"]
        counts = {f"n_sig_{name}": int(xp.count_nonzero(sig[name])) for name in TESTS}
        counts["n_sig_edges"] = int(xp.count_nonzero(sig_edges))
        chosen = sig_edges if edge_selection == "sig_edges" else sig["diff"]
        if int(xp.count_nonzero(chosen)) == 0:
            return counts, None
        where = xp.nonzero(chosen)[0]
        if stats.n_valid < valid.shape[0]:  # positions among the valid pairs -> in the block
            where_in_block = xp.take(xp.nonzero(valid)[0], where)
        else:  # every pair valid (the rule): no (pairs,) index array to make
            where_in_block = where
        gene_i, gene_j = pairs.genes_of(block, where_in_block)
        r = {name: stats.r_at(name, where) for name in ("low", "high")}
        part = {"gene_i": gene_i, "gene_j": gene_j, "r_low": r["low"], "r_high": r["high"]}
        part.update({"s_low": xp.abs(r["low"]), "s_high": xp.abs(r["high"]), "s_diff": xp.take(stats["diff"], where)})
        part.update({f"sig_{name}": sig[name][chosen] for name in ("low", "high")})
        return counts, part

    counts = dict.fromkeys(("n_sig_low", "n_sig_high", "n_sig_diff", "n_sig_edges"), 0)
    return _reduce_selection(xp, passes.map(per_block), counts)


def _joint_count_pass(xp, passes: JointPasses, streams) -> int:
    """Pass 1 of ``JointPasses``: the joint histogram of the pairs of genes tie-free in both groups
    (every block's joint indices counted, less the placeholders at pairs with a tied gene), whose
    marginals -- plus the levels of pairs tied only in the other group -- are the t-tests' level
    counts and which is the Fisher test's exact counts; the pairs with a tied gene go to the bins
    (``JointStats.binned``)."""
    backend, blocks = passes.backend, passes.blocks
    counter = JointHistogram(backend, blocks.n_cells, passes.threads)

    def per_block(block, valid, stats):
        item, out = stats.item, {}
        t = item["tied"]
        if t is None:
            return 0, item["joint"], out
        p, ok = t.pairs, t.valid
        out["placeholders"] = xp.take(item["joint"], p.pos)
        out["levels_low"] = p.level_low[ok & ~p.tied_low & p.tied_high]  # tie-free in LOW only
        out["levels_high"] = p.level_high[ok & ~p.tied_high & p.tied_low]
        for name in TESTS:
            s = stats.binned(name)
            if s.shape[0]:
                out[name] = streams[name].histogram(s)
        return int(ok.shape[0]) - int(xp.count_nonzero(ok)), item["joint"], out

    n_nan, parts = 0, {"placeholders": [], "levels_low": [], "levels_high": []}
    for n_bad, joint, out in passes.map(per_block):
        n_nan += n_bad
        counter.add(joint)
        for key, part in parts.items():
            if key in out and out[key].shape[0]:
                part.append(out[key])
        for name in TESTS:
            if name in out:
                streams[name].add(out[name])
    cells = counter.finish()
    if parts["placeholders"]:
        cells = backend.subtract_counts(cells, parts["placeholders"])
    table = xp.reshape(cells, (blocks.n_low, blocks.n_high))
    for name, axis, n in (("low", 1, blocks.n_low), ("high", 0, blocks.n_high)):
        counts = xp.sum(table, axis=axis, dtype=xp.int64)
        if parts[f"levels_{name}"]:
            counts = counts + xp.astype(backend.bincount(xp.concat(parts[f"levels_{name}"]), n), xp.int64)
        streams[name].set_level_counts(counts)
    streams["diff"].set_level_counts(cells)
    passes.counted = streams
    return n_nan


def _joint_selection_pass(xp, passes: JointPasses, pairs, s_star: dict, edge_selection: str):
    """Pass 3 of ``JointPasses``.  Significance of a pair of tie-free genes is a function of its
    cell: the counts come from the histogram, and the selection reads a table of chosen cells at
    each pair's joint index; pairs with a tied gene are tested one by one and merged in."""
    blocks, streams = passes.blocks, passes.counted
    n_low, n_high = blocks.n_low, blocks.n_high
    sig = {}
    for name, n in (("low", n_low), ("high", n_high)):
        a, cut = xp.arange(n, dtype=xp.int64), passes.level_cut(name, s_star[name])
        sig[name] = (a < cut) | (a > (n - 1) - cut)  # |r| >= s*  <=>  min(a, D/2 - a) < cut
    exact, table = streams["diff"].exact, xp.reshape(streams["diff"].level_counts, (n_low, n_high))
    chosen = xp.zeros((n_low, n_high), dtype=xp.bool)  # the cells whose pairs are edges
    n_diff = n_edges = 0  # device scalars, read once
    for rows in exact.row_parts(passes.backend.working_set_bytes):  # on a host no temporary of every cell
        diff = exact.values(xp, rows) >= s_star["diff"]
        edges = (sig["low"][rows, None] | sig["high"][None, :]) & diff
        chosen[rows, :] = edges if edge_selection == "sig_edges" else diff
        n_diff = n_diff + xp.sum(table[rows, :][diff])
        n_edges = n_edges + xp.sum(table[rows, :][edges])
        del diff, edges

    def total(mask, counts):
        return int(xp.sum(counts[mask]))

    counts = {"n_sig_low": total(sig["low"], streams["low"].level_counts),
              "n_sig_high": total(sig["high"], streams["high"].level_counts),
              "n_sig_diff": int(n_diff), "n_sig_edges": int(n_edges)}
    chosen_cells = passes.backend.cell_set(xp.reshape(chosen, (-1,)))
    del chosen, table

    def per_block(block, valid, stats):
        item = stats.item
        joint, t = item["joint"], item["tied"]
        where = passes.backend.positions_in(chosen_cells, joint)
        block_counts = dict.fromkeys(counts, 0)
        if t is not None:
            p, ok = t.pairs, t.valid
            if where.shape[0]:  # the placeholders of pairs with a tied gene say nothing
                at = xp.take(p.pos, xp.clip(xp.searchsorted(p.pos, where), 0, p.pos.shape[0] - 1))
                where = where[at != where]
            t_sig = {"low": ok & (xp.abs(p.r_low) >= s_star["low"]), "high": ok & (xp.abs(p.r_high) >= s_star["high"]),
                     "diff": ok & (t.s_diff >= s_star["diff"])}
            t_edges = (t_sig["low"] | t_sig["high"]) & t_sig["diff"]
            block_counts["n_sig_low"] = int(xp.count_nonzero(t_sig["low"] & p.tied_low))  # the others are in the
            block_counts["n_sig_high"] = int(xp.count_nonzero(t_sig["high"] & p.tied_high))  # level counts
            block_counts["n_sig_diff"] = int(xp.count_nonzero(t_sig["diff"]))
            block_counts["n_sig_edges"] = int(xp.count_nonzero(t_edges))
            t_where = xp.nonzero(t_edges if edge_selection == "sig_edges" else t_sig["diff"])[0]
        else:
            t_where = xp.zeros((0,), dtype=xp.int64)
        if where.shape[0] + t_where.shape[0] == 0:
            return block_counts, None
        cells = xp.take(joint, where)
        a, b = xp.floor_divide(cells, n_high), xp.remainder(cells, n_high)
        part = {"pos": where, "r_low": passes.levels["low"].r_at(xp, a), "r_high": passes.levels["high"].r_at(xp, b),
                "s_diff": passes.exact_diff_values(cells), "sig_low": xp.take(sig["low"], a),
                "sig_high": xp.take(sig["high"], b)}
        if t_where.shape[0]:
            p = t.pairs
            tied = {"pos": xp.take(p.pos, t_where), "r_low": xp.take(p.r_low, t_where),
                    "r_high": xp.take(p.r_high, t_where), "s_diff": xp.take(t.s_diff, t_where),
                    "sig_low": xp.take(t_sig["low"], t_where), "sig_high": xp.take(t_sig["high"], t_where)}
            order = xp.argsort(xp.concat([part["pos"], tied["pos"]]), stable=True)
            part = {key: xp.take(xp.concat([part[key], tied[key]]), order) for key in part}
        gene_i, gene_j = pairs.genes_of(item["block"], part["pos"])
        out = {"gene_i": gene_i, "gene_j": gene_j, "r_low": part["r_low"], "r_high": part["r_high"],
               "s_low": xp.abs(part["r_low"]), "s_high": xp.abs(part["r_high"]), "s_diff": part["s_diff"],
               "sig_low": part["sig_low"], "sig_high": part["sig_high"]}
        return block_counts, out

    return _reduce_selection(xp, passes.map(per_block), counts)


def _q_value_pass(backend, passes, streams, sel) -> dict:
    """Pass 4: exact BH q of the selected edges for each test."""
    refs = {}
    for name in TESTS:
        query_bins = streams[name].bins(sel[f"s_{name}"])
        refs[name] = streams[name].refinement(streams[name].bins_for_queries(query_bins))
    _refine(passes, refs)
    return {f"q_{name}": refs[name].finish().q_values(sel[f"s_{name}"]) for name in TESTS}


def bootstrap_edges(backend: Backend, groups: Groups, sel: dict[str, Array], focus: int, cfg: AnalysisConfig,
                    plan: Plan) -> tuple[dict[str, Array], Plan]:
    """Stage 5: (bootstrap summaries of the selected edges plus r and delta, the plan re-made for
    their number, ``planner.plan_bootstrap``, with its predicted peak for the replicate chunks used)."""
    plan = plan_bootstrap(plan, int(sel["gene_i"].shape[0]))
    low, high, k_low, k_high = groups.low, groups.high, groups.k_low, groups.k_high
    delta = sel["r_high"] - sel["r_low"]
    k = max(k_low, k_high)
    m = resample_size(k, cfg.bootstrap_frac)
    boot_cfg = BootstrapSettings(
        cfg.seed, focus, cfg.n_bootstrap, cfg.bootstrap_frac, cfg.ci_alpha, plan.replicate_chunk, plan.edge_chunk,
        plan.threads, dense_density=backend.dense_density(m),
        summary_rows=summary_rows(cfg.n_bootstrap, cached=bool(plan.working_set_bytes)),
        memory=(plan.predicted_peak_bytes, plan.budget_bytes),
    )
    work = []  # per edge chunk: what it holds while its replicate chunks run (replicate_work_bytes)

    def replicate_chunk(n_genes: int, n_edges: int, dense_outputs: int, sparse_edges: int, ties: bool,
                        dense_edges: int | None = None) -> int:
        reps = replicate_chunk_for(plan, cfg.n_bootstrap, k, m, n_genes, n_edges, dense_outputs, sparse_edges, ties,
                                   dense_edges)
        work.append(replicate_work_bytes(plan, cfg.n_bootstrap, reps, k, m, n_genes, n_edges, dense_outputs, sparse_edges,
                                         ties, dense_edges))
        return reps

    out = bootstrap_summaries(backend, low, high, sel["gene_i"], sel["gene_j"], delta, boot_cfg, replicate_chunk)
    out.update(r_low=sel["r_low"], r_high=sel["r_high"], delta=delta)
    return out, bootstrap_peak(plan, work)
