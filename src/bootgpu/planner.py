"""Batch sizes from a memory budget, so that every stage fits.

The cost model gives, for each stage, the bytes one unit of work needs (a row of pair space, a
replicate, an edge, a gene of indices), from the array sizes and temporaries the code makes.  The
planner picks the largest units that keep every stage inside the budget; if even the smallest unit
does not fit, one error says how much memory is needed.  Budgets are bytes *above* what the process
already holds (what RLIMIT_AS room or free device memory measures); predicted peaks are the same.

Stages: the resident rank structures and BH bookkeeping; the pair passes (``pair_stage_bytes``);
the bootstrap of the selected edges.  A focus gene's peak is the resident part plus the larger of
the other two: the pair cache is freed (and handed back) before the bootstrap.  The bootstrap's
size is only known after the selection pass, so it is planned twice: ``plan_batches`` plans the
largest edge chunk a re-plan could choose (the bootstrap may use what the pair passes used, and
at least ``BOOTSTRAP_MIN_ROOM``), which bounds the peak for any edge count (what a batch job must
ask for, ``job_memory_request``); ``plan_bootstrap`` re-plans it for the edges counted, and
``bootstrap_peak`` turns the replicate chunks the edge chunks got into the focus gene's predicted
peak (``FocusResult.plan``).  The byte constants were calibrated against measured peaks (VmHWM and
sampled RSS) on real and synthetic data; docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace

from bootgpu.core.bootstrap import (per_edge_way, dot_dtype_bytes, exact_dtype_bytes, rank_dtype_bytes, resample_size,
                                    summary_rows)
from bootgpu.backends import host_kernels
from bootgpu.core.fdr import BIN_BOOKKEEPING_BYTES, LEVEL_TEST_BINS, bins_for_pairs, exact_level_bytes, joint_table_bytes
from bootgpu.core.spearman import (
    JOINT_CACHE_ALLOWANCE, JOINT_PAIR_BYTES, LEVELS_MAX, TIED_PAIR_BYTES, joint_cells, joint_product_bytes,
    n_signed_levels,
)
from bootgpu.config import SAFETY_FRACTION
from bootgpu.errors import BootgpuError

F64 = 8
MODEL_MARGIN = 1.15  # allocator slack and small arrays the model leaves out
PAIR_ROW_BYTES = 112  # per pair-space cell of a block, when sizing blocks (an upper bound of the two below)
PAIR_CELL_BYTES = 16  # per cell of a block's (rows, columns) products: dots and r of the group being computed
PAIR_BYTES = 72  # per pair (j > i) of a block in any pass: r of both groups, valid mask, statistics, bins, picks
PAIR_BYTES_LEVELS = 24  # the same with level tables (pair_value_bytes)
PAIR_CELL_BYTES_COMPILED = 8  # per cell with the NumPy backend's compiled kernels: one group's products (float32
# or float64; NumpyBackend.level_triangle makes the levels from them in one pass, with no float triangle or int32
# copy beside them)
PAIR_BYTES_COMPILED_LEVELS = 7  # per pair of a block with level tables and those kernels: no gathered z of each
# group, no intp copies for the counts, no boolean masks to screen or compress (NumpyBackend.gathered_abs_diff,
# bincount, bin_counts, values_in_range), beside the cache (pair_value_bytes) and each block's level counts.
# Measured pair-pass peaks (RSS rise, scripts/pair_peaks.py, 2 threads, 2-5 runs each): demo 40.4-45.7, planted
# 2,000 x 400 39.4-39.6, 4,000 x 200 125.9-134.4, 3,000 x 938 113.7-138.0 MB against 40.1, 50.7, 129.8 and
# 133.9 predicted: the same run's spread is ~5 MB (two blocks' temporaries meeting or not), which the model's
# margin on the whole focus gene covers (resident + this stage, x MODEL_MARGIN: 73.9, 113.5, 254.2 and 444.4 MB
# against 53.9-59.2, 79.4-79.6, 166.0-174.5 and 252.4-276.6 measured).  9 bytes covered every run's stage but
# put 2,000 x 400's whole prediction at 1.51x its peak (tests/test_memory.py holds 1.5x), where the stage
# over-predicts: its cache of int32 levels is most of it and the temporaries few
PAIR_BYTES_JOINT = 8  # the same with joint indices (core.spearman.JointBlocks): the block's int32
# indices and the selection's flags
PAIR_CACHE_BYTES = 25  # per cached pair at most: per group its level (2-4 bytes; with r of the pairs
# with a tied gene, up to 8) or r (float64, where such pairs are half the block), the Fisher statistic
# (float64) and the valid flag; typically 13 (k <= 57) or 17 bytes
HELD_RANK_BYTES = 72  # per gene and group sample: a group's sort structure and ranks, as measured held
INDEX_BLOCK_CAP_BYTES = 384 * 2**20  # `bootgpu indices` is write-bound: larger blocks are no faster
PROCESS_OVERHEAD_BYTES = 768 * 2**20  # interpreter, NumPy/SciPy/h5py/igraph, Numba and BLAS buffers (batch requests):
# a one-thread shard run of 40 genes peaked at 404 MiB of address space (VmPeak) before the compiled kernels, whose
# Numba and LLVM add 190 MiB (VmPeak 410 -> 600 MB once loaded), and a second thread's glibc arena (64 MiB,
# MALLOC_ARENA_MAX=2) and stack must fit too; 400 MiB once left a task 0.4 MiB and it failed under load
BOOTSTRAP_MIN_ROOM = 2**30  # the bootstrap may use what the pair stage used, and at least this much
# (and on a device its share of the free budget, ``Backend.bootstrap_share``: each edge chunk is a
# fixed number of launches, so ALL focus 108's 357,492 edges in 26 chunks of 13,767 were 7,675
# operations on the counting backend, in one chunk 2,316; a job's host memory request never takes it)
DEVICE_PAIR_TEMP_BYTES = 64  # per pair of a block of levels or r on CuPy: the int64 index and scan temporaries
# inside its take, nonzero and bincount (measured on an H200: 8,763 x 938, one block of 38 M pairs, pair
# passes 3.88 GiB against 1.49 GiB of arrays; docs/benchmarks.md); joint blocks showed none
SUMMARY_COPIES = 5  # (rows, B) float64 arrays summarising rows of deltas holds at once
SELECTED_EDGE_BYTES = 360  # per selected edge, all of them, held through the bootstrap (see selected_edge_bytes)
GENE_STRUCTURE_ARRAYS = 7  # int64 (k, genes) arrays an edge chunk's group holds through its replicates: the subset's
# sort structure (perm, unsort, tie_first, tie_last), the rank rows and, ranked gene by gene, slot positions and
# tie ends (core.bootstrap.GeneGroup; EdgeGroup holds fewer)


def format_bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class Plan:
    budget_bytes: int
    rows_per_block: int
    cache_pairs: bool
    replicate_chunk: int
    edge_chunk: int
    index_genes_per_block: int
    predicted_peak_bytes: int
    replicate_room_bytes: int = 0  # 0: replicate_chunk was given explicitly and is kept as is
    stages: dict = field(default_factory=dict, compare=False)  # name -> (batch text, bytes)
    working_set_bytes: int = 0  # cap on one chunk's largest array (0: none)
    threads: int = 1  # chunks of a stage in flight at once (host threads), each within its share
    resident_bytes: int = 0  # held for the whole focus gene (resident_bytes())
    pair_stage_bytes: int = 0  # the pair passes' cache and blocks
    bootstrap_room_bytes: int = 0  # what the bootstrap may use once the edges are known (0: fixed sizes)
    n_bootstrap: int = 0
    k: int = 0  # larger group size, and its resample size
    m: int = 0
    n_edges: int | None = None  # set by plan_bootstrap: the selected edges this plan is for
    ieee_float32_matmul: bool = False  # the device's float32 products are IEEE (joint blocks from one product)
    ranks_by_gene: bool = False  # the backend ranks resamples itself (own_ranks): D alone, in int8 while m < 128
    bootstrap_share: float = 0.0  # of the free budget the bootstrap may take (Backend.bootstrap_share)
    pair_gathers: bool = True  # a device's sparse dots hold their gathered rows (Backend.pair_gathers)

def resident_bytes(n_genes: int, n_samples: int, k_low: int, k_high: int, threads: int = 1) -> int:
    """Both groups' rank structures (measured: 72 bytes a gene and group sample held; the sort
    temporaries of ranking a group are freed before the pair passes, which need more), plus the
    three BH histograms with their bounds and cached bin-edge p-values, and the groups' Spearman
    level tables with the t-tests' level histograms (``core.fdr.exact_level_bytes``: ~(k^3 - k)/6
    entries per group; all on the device).  The expression matrix is not counted: a run measures
    its budget after loading it (``job_memory_request`` adds it).  Where pairs are kept as joint
    indices (``core.spearman.joint_cells``) the study's Fisher tables are resident too
    (``core.fdr.joint_table_bytes``: 8 bytes a cell, 6.8 M cells at k = 25), and the BH bins are
    sized for the pairs with a tied gene the plan allows (``JOINT_CACHE_ALLOWANCE``)."""
    n_pairs = n_genes * (n_genes - 1) // 2
    cells = joint_cells(n_genes, k_low, k_high)
    # bins are sized for the pairs counted by bin: with joint indices, those with a tied gene
    n_bins = bins_for_pairs(int(n_pairs * JOINT_CACHE_ALLOWANCE / TIED_PAIR_BYTES) if cells else n_pairs)
    # a t-test with level tables bins only its pairs with a tied gene, in at most LEVEL_TEST_BINS
    t_bins = [min(n_bins, LEVEL_TEST_BINS) if n_signed_levels(k) else n_bins for k in (k_low, k_high)]
    return (HELD_RANK_BYTES * n_genes * (k_low + k_high) + (n_bins + sum(t_bins)) * BIN_BOOKKEEPING_BYTES
            + exact_level_bytes(k_low, k_high, min(t_bins), threads) + (joint_table_bytes(cells, threads)[0] if cells else 0))


def level_pairs(k_low: int, k_high: int) -> bool:
    """Whether both groups keep pairs as Spearman levels (``core.spearman.LEVELS_MAX``)."""
    return all(n_signed_levels(k) <= LEVELS_MAX for k in (k_low, k_high))


def pair_value_bytes(k_low: int, k_high: int, n_genes: int = 0) -> tuple[int, float]:
    """(bytes per pair of a block in a pass, bytes per cached pair).  Groups with level tables keep
    a level per pair and group (int16 up to k = 57, else int32) where others keep float64 r:
    measured on the demo matrix and ALL (k = 25), a pass then holds about half as much per pair.
    Small groups with enough genes (``core.spearman.joint_cells``) keep one int32 joint index a
    pair, plus what pairs with a tied gene need (``JOINT_CACHE_ALLOWANCE`` a pair: a focus gene
    with more such pairs recomputes its blocks, ``pipeline.JointPasses``)."""
    if n_genes and joint_cells(n_genes, k_low, k_high):
        return PAIR_BYTES_JOINT, JOINT_PAIR_BYTES + JOINT_CACHE_ALLOWANCE
    if not level_pairs(k_low, k_high):
        return PAIR_BYTES, PAIR_CACHE_BYTES
    level = 2 if max(k_low, k_high) <= 57 else 4
    return PAIR_BYTES_LEVELS, 2 * level + F64 + 1


def pair_cache_bytes(n_genes: int, k_low: int = 0, k_high: int = 0) -> int:
    per_pair = pair_value_bytes(k_low, k_high, n_genes)[1] if k_low and k_high else PAIR_CACHE_BYTES
    return int(n_genes * (n_genes - 1) // 2 * per_pair)


def pair_stage_bytes(n_genes: int, rows: int, threads: int, cache_pairs: bool, k_low: int = 0, k_high: int = 0,
                     device: bool = False, ieee_float32: bool = False) -> int:
    """Peak of the pair passes above the resident arrays (calibrated on the demo matrix, ALL
    12,625 x 128 and random 8,763 x 938; docs/benchmarks.md).  A pass holds a wave of ``threads``
    blocks: each block's (rows, columns) products and its pairs' values.  With the cache, the
    first pass also holds the cache filled so far (blocks shrink along the triangle while it
    grows), the later passes the whole cache and a wave's pair values.  With joint indices the
    joint histogram or the selection's cell tables come on top (``core.fdr.joint_table_bytes``).
    On a ``device`` (CuPy) blocks of levels or r hold ``DEVICE_PAIR_TEMP_BYTES`` more a pair, and a
    joint block holds its products (``core.spearman.joint_product_bytes``: 8 bytes a cell where the
    device's float32 products are IEEE, ``ieee_float32``, else 12) and then their int32 copy beside
    its pairs, not both at once: on ALL's one block of 159 M cells the host model's sum (16 bytes a
    cell and the pairs) was 2.9x what CuPy held (docs/benchmarks.md)."""
    def pairs_above(r):  # pairs (i, j > i) of rows 0..r-1
        r = min(r, n_genes - 1)
        return r * n_genes - r * (r + 1) // 2

    pair_bytes, cache_bytes = (pair_value_bytes(k_low, k_high, n_genes) if k_low and k_high
                               else (PAIR_BYTES, PAIR_CACHE_BYTES))
    n_cells = joint_cells(n_genes, k_low, k_high) if k_low and k_high else 0
    products = joint_product_bytes(k_low, k_high, ieee_float32) if device and n_cells else 0
    if device and not n_cells:
        pair_bytes += DEVICE_PAIR_TEMP_BYTES
    compiled = not device and host_kernels.wanted()  # the NumPy backend counts in place (JointHistogram)
    cell_bytes, level_counts = PAIR_CELL_BYTES, 0
    if compiled and not n_cells and k_low and k_high and level_pairs(k_low, k_high):
        cell_bytes, pair_bytes = PAIR_CELL_BYTES_COMPILED, PAIR_BYTES_COMPILED_LEVELS
        # each block's level counts, a table of every level (int64) a group, in every thread
        level_counts = threads * 8 * sum(n_signed_levels(k) + 1 for k in (k_low, k_high))
    tables = joint_table_bytes(n_cells, threads, compiled)[1] if n_cells else 0  # the histogram or the selection's tables
    first = later = 0
    for start in range(0, max(n_genes - 1, 1), rows * threads):
        starts = [start + t * rows for t in range(threads)]
        cells = sum(max(0, min(rows, n_genes - 1 - r0)) * (n_genes - r0) for r0 in starts)
        pairs = pairs_above(start + threads * rows) - pairs_above(start)
        cached = int(pairs_above(start) * cache_bytes) if cache_pairs else 0
        block = (max(cells * products, cells * 4 + pairs * pair_bytes) if products
                 else cells * cell_bytes + pairs * pair_bytes)
        first = max(first, cached + block)
        later = max(later, pairs * pair_bytes)
    return tables + level_counts + max(first, (pair_cache_bytes(n_genes, k_low, k_high) if cache_pairs else 0) + later)


def own_ranks(working_set_bytes: int, ranks_by_gene: bool | None = None) -> bool:
    """Whether a backend ranks resamples itself (``Backend.resample_ranks``), holding D alone: its
    fact ``ranks_by_gene`` where given (``Backend.plan_facts``); where not (a plan made from sizes
    alone, as a job script's memory request), the NumPy backend's, the one with a working-set cap:
    its compiled kernels when they will be used."""
    if ranks_by_gene is not None:
        return bool(ranks_by_gene)
    return bool(working_set_bytes) and host_kernels.wanted()


def own_rank_bytes(m: int) -> int:
    """Bytes of one resample rank a backend that ranks gene by gene makes (``NumpyBackend.resample_ranks``:
    int8 while m < 128, else int16)."""
    return 1 if m < 2**7 else 2


def replicate_bytes(k: int, m: int, n_genes: int, n_edges: int, dense_outputs: int = 0, gathered_edges: int = 0,
                    ties: bool = True, dense_edges: int | None = None, own: bool = False, gathers: bool = True) -> int:
    """One replicate of an edge chunk's bootstrap for one group (the groups take turns), at the
    larger of its two phases: ranks -- the genes' sorted counts, their doubled scan and the ranks D
    gathered from it (then W = c * D); then the dots, with D and W held: the largest dense block's
    product output (``dense_outputs`` = rows x columns) with its gathered rows and their float
    copies, then with its edges' values (``dense_edges``, at most the outputs), then those with a
    float64 temporary; ``gathered_edges`` rows gathered at once for the sparse dots (a device
    gathers a whole block, with its dots and a float64 temporary -- without ``gathers``, a kernel
    that gathers as it sums, the dots and the temporary alone; NumPy works in cache-sized pieces:
    0).  r goes straight into the edge chunk's deltas (``edge_bytes``), so nothing per edge is held
    across replicates -- except on the per-edge way (``core.bootstrap.EdgeGroup``, chunks
    whose genes are barely shared): both ends' ranks gathered per edge, the dots and r (with ties,
    S of both ends too) for the whole chunk.  ``own``: the backend ranks resamples itself
    (``own_ranks``), D alone in int8 while m < 128 (W formed where used), both groups' at once
    (``Backend.fused_deltas``: a sparse block's deltas in one pass); a chunk with tied genes keeps
    the room of the core's D and W beside them for its tied blocks' dots and r (a bound the model
    does not refine)."""
    dot, exact, rank = dot_dtype_bytes(m), exact_dtype_bytes(m), rank_dtype_bytes(m)
    if per_edge_way(n_genes, n_edges, dense_outputs, own):
        return 3 * k * n_genes * rank + 2 * k * n_edges * rank + n_edges * F64 * (7 if ties else 4) + 48 * m + 40 * k
    ranks = 3 * k * n_genes * dot
    held = 2 * k * n_genes * dot
    if own:
        d = 2 * k * n_genes * min(own_rank_bytes(m), dot)
        ranks = d
        held = d + (2 * k * n_genes * dot if ties else 0)
    dense = 0
    if dense_outputs:
        block_edges = dense_outputs if dense_edges is None else min(dense_edges, dense_outputs)
        rows = 2 * k * min(n_genes, 512) * (dot + exact)
        dense = max(dense_outputs * exact + max(rows, block_edges * exact), block_edges * (exact + F64))
    gathered = gathered_edges * ((2 * k * dot if gathers else 0) + dot + F64)
    return max(ranks, held + max(dense, gathered)) + 48 * m + 40 * k


PER_EDGE_WORKING_SET = 4  # the per-edge way's cap, in working sets (see replicate_chunk_cap)


def replicate_chunk_cap(working_set_bytes: int, k: int, m: int, n_genes: int, n_edges: int = 0,
                        dense_outputs: int = 0, by_gene: bool = False) -> int:
    """Replicates whose largest arrays -- (genes, k, R) ranks (counted at the rank dtype: measured
    as fast as the dot dtype's halved chunks; ranked gene by gene (``by_gene``), at the int8 or
    int16 the backend makes them) and the (R, rows, columns) matrix product of a dense block --
    stay within the cap (per-edge values are stored as they are made, in pieces)."""
    rank = own_rank_bytes(m) if by_gene else rank_dtype_bytes(m)
    largest = max(k * max(n_genes, 1) * rank, dense_outputs * exact_dtype_bytes(m))
    if per_edge_way(n_genes, n_edges, dense_outputs, by_gene):  # core.bootstrap.EdgeGroup
        # its gathers move a row of R ranks per gene and position: per-row overhead, not cache size,
        # sets their speed, so R is larger and a power of two (NumPy copies 2^j-byte rows fastest).
        # Measured on 8,763 x 938 (923 edges, 1,846 genes): R = 24 (the cap) 1.25 s, 16 1.15 s,
        # 32 1.07 s, 64 0.95 s, 128 1.05 s for the stage
        reps = max(1, PER_EDGE_WORKING_SET * working_set_bytes // largest)
        return 1 << (reps.bit_length() - 1)
    return max(1, working_set_bytes // largest)


def gene_structure_bytes(k: int, n_genes: int) -> int:
    """Both groups' sort structures of an edge chunk's genes, held while its replicates run
    (``GENE_STRUCTURE_ARRAYS``); 8,763 x 938 (k = 187), 923 edges on 1,822 genes: 38 MB, where
    the replicates in flight hold 44 MB."""
    return 2 * GENE_STRUCTURE_ARRAYS * F64 * k * n_genes


def edge_bytes(n_bootstrap: int, k: int = 0) -> int:
    """One edge of an edge chunk: its B float64 deltas, held until the chunk is summarised."""
    return F64 * n_bootstrap


def summary_bytes(n_rows: int, n_bootstrap: int, threads: int = 1, cached: bool = True) -> int:
    """Temporaries of summarising ``n_rows`` rows of deltas at once in each of ``threads`` threads
    (the rows' copy, the partitioned or sorted copy, the deviations, sign masks), rows capped as
    ``core.bootstrap.summary_rows`` does (``cached``: a host's pieces; else the whole edge chunk)."""
    rows = min(n_rows, summary_rows(n_bootstrap, cached) or n_rows)
    return threads * SUMMARY_COPIES * F64 * n_bootstrap * rows


def summary_edge_bytes(n_bootstrap: int, cached: bool) -> int:
    """Summary bytes that grow with an edge chunk: none on a host (pieces of fixed size), all of
    them on a device (``summary_bytes`` of one edge)."""
    return 0 if cached else SUMMARY_COPIES * F64 * n_bootstrap


def selected_edge_bytes(n_edges: int) -> int:
    """Every selected edge's arrays, held through the bootstrap: gene ids, r, statistics, flags and
    q of the selection, the host layout (edge order, row and column ends), and the summaries
    (per-chunk pieces, their concatenation and the copy back in selection order)."""
    return n_edges * SELECTED_EDGE_BYTES


def index_gene_bytes(n_samples: int, n_bootstrap: int, m_low: int, m_high: int) -> int:
    """One gene of a `bootgpu indices` block: its split (int64 order and sort temporaries) and its
    int32 sample indices, held twice (the block being drawn and the one being compressed) plus
    their compressed copies."""
    return 3 * n_samples * F64 + n_bootstrap * (m_low + m_high) * 4 * 3


def index_fixed_bytes(n_bootstrap: int, m_max: int, threads: int) -> int:
    """Draw temporaries of the threads (2 genes each: 64-bit words, positions, gathered indices)
    and HDF5's chunk caches and buffers."""
    return threads * 2 * n_bootstrap * m_max * F64 * 6 + 16 * 2**20


def plan_indices(n_genes: int, n_samples: int, k_low: int, k_high: int, n_bootstrap: int, budget_bytes: int,
                 *, bootstrap_frac: float = 0.8, threads: int = 1, genes_per_block: int | None = None) -> tuple[int, int]:
    """(genes per block, predicted peak bytes) for `bootgpu indices` within ``budget_bytes``."""
    m_low, m_high = int(k_low * bootstrap_frac), int(k_high * bootstrap_frac)
    per_gene = index_gene_bytes(n_samples, n_bootstrap, m_low, m_high)
    fixed = index_fixed_bytes(n_bootstrap, max(m_low, m_high), threads)
    usable = int(budget_bytes / MODEL_MARGIN)
    if genes_per_block is None:
        if usable < fixed + per_gene:
            need = int((fixed + per_gene) * MODEL_MARGIN)
            raise BootgpuError(
                f"memory budget {format_bytes(budget_bytes)} is too small for bootstrap indices with "
                f"{n_samples} samples and B = {n_bootstrap}: at least {format_bytes(need)} is needed"
            )
        room = min(usable - fixed, INDEX_BLOCK_CAP_BYTES)  # bigger blocks only hold more memory
        genes_per_block = max(1, min(n_genes, room // per_gene))
    return genes_per_block, int((fixed + genes_per_block * per_gene) * MODEL_MARGIN)


def _pair_space(n_genes: int, k_low: int, k_high: int, free: int, rows_per_block: int | None,
                working_set_bytes: int, threads: int) -> tuple[bool, int]:
    """(cache the pair statistics?, rows of pair space per block) within ``free`` bytes."""
    row = n_genes * PAIR_ROW_BYTES
    # cache the pair statistics when they fit.  With a working-set cap (CPU) blocks are
    # small, so the cache is kept whenever it fits with a wave of capped blocks -- a plan made with
    # its own predicted peak as budget (what a Grid Engine task is told) then makes the same choice;
    # without one (GPU), when it takes at most half of what is free, leaving room for big blocks.
    cache = pair_cache_bytes(n_genes, k_low, k_high)
    if working_set_bytes:
        capped = rows_per_block or max(1, min(n_genes, working_set_bytes // (n_genes * F64)))
        cache_pairs = pair_stage_bytes(n_genes, capped, threads, True, k_low, k_high) <= free
    else:
        cache_pairs = cache <= free // 2
    pair_free = free - (cache if cache_pairs else 0)
    rows = rows_per_block or max(1, min(n_genes, pair_free // (row * threads)))
    if working_set_bytes and not rows_per_block:
        rows = max(1, min(rows, working_set_bytes // (n_genes * F64)))
    return cache_pairs, rows


def plan_batches(
    n_genes: int,
    n_samples: int,
    k_low: int,
    k_high: int,
    n_bootstrap: int,
    budget_bytes: int,
    *,
    bootstrap_frac: float = 0.8,
    replicate_chunk: int | None = None,
    rows_per_block: int | None = None,
    edge_chunk: int | None = None,
    index_genes_per_block: int | None = None,
    working_set_bytes: int = 0,
    ieee_float32_matmul: bool = False,
    ranks_by_gene: bool | None = None,
    bootstrap_share: float = 0.0,
    pair_gathers: bool = True,
    threads: int = 1,
    store: str = "minimal",
    fit: bool = True,
) -> Plan:
    """Largest batches that fit ``budget_bytes``; explicit sizes override (tests use that).
    With ``fit`` a plan whose predicted peak would exceed the budget takes fewer threads, then
    smaller pair blocks, and a budget no plan fits is refused with the smallest one that does.

    ``working_set_bytes`` (a backend fact: ``Backend.working_set_bytes``) caps the largest array of
    a pair block or replicate chunk; on a CPU, blocks that stay in cache run 2-3x faster than
    blocks that fill the budget.  0 means no cap (GPUs prefer big batches).  ``ieee_float32_matmul``
    (``Backend.ieee_float32_matmul``) says how a device makes joint blocks (``pair_stage_bytes``),
    ``ranks_by_gene`` (``Backend.ranks_by_gene``; None: ``own_ranks`` infers it) how it ranks resamples,
    ``bootstrap_share`` (``Backend.bootstrap_share``) how much of the free budget the bootstrap may
    take beyond what the pair stage used, ``pair_gathers`` (``Backend.pair_gathers``) whether a
    device's sparse dots hold their gathered rows.
    """
    ranks_by_gene = own_ranks(working_set_bytes, ranks_by_gene)
    k = max(k_low, k_high)
    m = resample_size(k, bootstrap_frac)
    usable = int(budget_bytes / MODEL_MARGIN)
    fixed = resident_bytes(n_genes, n_samples, k_low, k_high, threads) + stored_pair_bytes(n_genes, store)
    free = usable - fixed
    row = n_genes * PAIR_ROW_BYTES
    per_edge = edge_bytes(n_bootstrap, k)
    smallest = row + per_edge + replicate_bytes(k, m, 2, 1)
    if free < smallest:
        need = int((fixed + smallest) * MODEL_MARGIN)
        raise BootgpuError(
            f"memory budget {format_bytes(budget_bytes)} is too small for {n_genes} genes x {n_samples} samples "
            f"(B = {n_bootstrap}): at least {format_bytes(need)} is needed"
        )
    cache_pairs, rows = _pair_space(n_genes, k_low, k_high, free, rows_per_block, working_set_bytes, threads)
    # bootstrap (before the edges are known): the largest edge chunk a re-plan would choose
    pair_work = pair_stage_bytes(n_genes, rows, threads, cache_pairs, k_low, k_high, device=not working_set_bytes,
                                 ieee_float32=ieee_float32_matmul)
    boot_room = min(free, max(pair_work, BOOTSTRAP_MIN_ROOM, int(free * bootstrap_share)))
    edges, reps, room, boot_work = _bootstrap_batches(n_genes, n_bootstrap, k, m, boot_room, edge_chunk, replicate_chunk,
                                                      working_set_bytes, ranks_by_gene, pair_gathers, threads)
    try:  # `bootgpu indices` is a separate command: a budget too small for it still plans a run
        index_genes, index_peak = plan_indices(n_genes, n_samples, k_low, k_high, n_bootstrap, budget_bytes,
                                               bootstrap_frac=bootstrap_frac, genes_per_block=index_genes_per_block)
    except BootgpuError:
        index_genes, index_peak = 0, 0
    stages = _stages(fixed, rows, threads, cache_pairs, pair_work, edges, reps, boot_work, index_genes, index_peak)
    peak = int((fixed + max(pair_work, boot_work)) * MODEL_MARGIN)
    if fit and peak > budget_bytes and not (rows_per_block or replicate_chunk or edge_chunk):
        return _within_budget(locals())
    return Plan(budget_bytes, rows, cache_pairs, reps, edges, index_genes, peak, room, stages, working_set_bytes, threads,
                resident_bytes=fixed, pair_stage_bytes=pair_work, ieee_float32_matmul=ieee_float32_matmul,
                bootstrap_room_bytes=0 if (edge_chunk or replicate_chunk) else boot_room,
                n_bootstrap=n_bootstrap, k=k, m=m, ranks_by_gene=ranks_by_gene, bootstrap_share=bootstrap_share,
                pair_gathers=pair_gathers)


def _bootstrap_batches(n_genes: int, n_bootstrap: int, k: int, m: int, boot_room: int, edge_chunk, replicate_chunk,
                       working_set_bytes: int, ranks_by_gene: bool, pair_gathers: bool, threads: int) -> tuple:
    """(edge chunk, replicate chunk, replicate room a thread, the stage's bytes) in ``boot_room``,
    before the edges are known: the largest edge chunk a re-plan would choose."""
    cached = bool(working_set_bytes)  # summaries in cache-sized pieces (host), else whole chunks (device)
    edges = edge_chunk or _largest_edge_chunk(boot_room, n_genes * (n_genes - 1) // 2, n_bootstrap, threads, cached)
    genes_in_chunk = min(2 * edges, n_genes)
    gathered = 0 if working_set_bytes else edges
    per_rep = replicate_bytes(k, m, genes_in_chunk, edges, 0, gathered, own=ranks_by_gene, gathers=pair_gathers)
    structure = gene_structure_bytes(k, genes_in_chunk)
    reps = replicate_chunk or max(1, min(-(-n_bootstrap // threads),
                                         (boot_room - edges * (edge_bytes(n_bootstrap, k) + SELECTED_EDGE_BYTES)
                                          - structure) // (per_rep * threads)))
    room = 0 if replicate_chunk else reps * per_rep  # per thread, re-divided at run time by the actual gene subset
    if working_set_bytes and not replicate_chunk:  # as replicate_chunk_for does at run time
        reps = min(reps, replicate_chunk_cap(working_set_bytes, k, m, genes_in_chunk, edges, by_gene=ranks_by_gene))
    boot_work = bootstrap_stage_bytes(edges, edges, n_bootstrap, threads * reps * per_rep + structure, threads, cached)
    return edges, reps, room, boot_work


def _stages(fixed, rows, threads, cache_pairs, pair_work, edges, reps, boot_work, index_genes, index_peak) -> dict:
    """The plan's stages as `bootgpu plan` lists them: name -> (batch in words, bytes)."""
    return {
        "resident (expression, rank structures)": ("", fixed),
        "base correlations and tests": (
            f"{rows} rows of pair space per block" + (f", {threads} blocks at once" if threads > 1 else "")
            + (", pair statistics cached" if cache_pairs else ", recomputed per pass"),
            pair_work,
        ),
        "bootstrap of selected edges": (
            f"up to {edges} edges x {reps} replicates per chunk" + (f", {threads} chunks at once" if threads > 1 else "")
            + " (re-planned for the selected edges)",
            boot_work,
        ),
        "bootstrap indices (bootgpu indices)": (
            f"{index_genes} genes per block" if index_genes else "does not fit this budget", int(index_peak / MODEL_MARGIN)
        ),
    }


def _within_budget(plan_args: dict) -> Plan:
    """A plan whose predicted peak exceeds its budget made again with fewer threads (each holds
    its own blocks and tables), then smaller pair blocks; where even one thread and one row a
    block do not fit, one error with the smallest budget that does."""
    keys = ("n_genes", "n_samples", "k_low", "k_high", "n_bootstrap")
    args = [plan_args[k] for k in keys]
    kwargs = {k: plan_args[k] for k in ("bootstrap_frac", "index_genes_per_block", "working_set_bytes",
                                        "ieee_float32_matmul", "ranks_by_gene", "bootstrap_share", "pair_gathers",
                                        "store")}

    def fitting(budget: int, threads: int) -> Plan | None:
        for t in range(threads, 0, -1):
            plan = plan_batches(*args, budget, **kwargs, threads=t, fit=False)
            rows = plan.rows_per_block
            while plan.predicted_peak_bytes > budget and rows > 1:
                rows = max(1, rows // 2)
                plan = plan_batches(*args, budget, **kwargs, threads=t, rows_per_block=rows, fit=False)
            if plan.predicted_peak_bytes <= budget:
                return plan
        return None

    budget = plan_args["budget_bytes"]
    plan = fitting(budget, plan_args["threads"])
    if plan is not None:
        return plan
    low, high = budget, 2 * budget
    while fitting(high, 1) is None:
        low, high = high, 2 * high
    while high - low > max(1 << 20, high // 100):  # the smallest budget with a plan that fits it, to 1%
        mid = (low + high) // 2
        low, high = (low, mid) if fitting(mid, 1) is not None else (mid, high)
    raise BootgpuError(
        f"memory budget {format_bytes(budget)} is too small for {args[0]} genes x {args[1]} samples "
        f"(B = {args[4]}): at least {format_bytes(high)} is needed (the rank tables and BH bookkeeping alone take "
        f"{format_bytes(int(plan_args['fixed'] * MODEL_MARGIN))})")


def _largest_edge_chunk(boot_room: int, n_pairs: int, n_bootstrap: int, threads: int, cached: bool) -> int:
    """The edges of the largest chunk a re-plan can choose: half the bootstrap room for the edges'
    arrays, deltas and (on a device) whole-chunk summaries; the other half for the replicates."""
    summary = summary_bytes(n_pairs, n_bootstrap, threads) if cached else 0  # the most a chunk's pieces take
    per_edge = edge_bytes(n_bootstrap) + SELECTED_EDGE_BYTES + summary_edge_bytes(n_bootstrap, cached)
    return max(1, min(n_pairs, ((boot_room - summary) // 2) // per_edge))


def bootstrap_stage_bytes(n_edges: int, edge_chunk: int, n_bootstrap: int, replicate_work: int, threads: int = 1,
                          cached: bool = True) -> int:
    """The bootstrap stage's peak above the resident arrays: every selected edge's arrays, one
    edge chunk's deltas, and the larger of its replicate chunks in flight and its summary pieces
    (``threads`` at once; ``cached``: host pieces, else the whole chunk)."""
    return (selected_edge_bytes(n_edges) + edge_chunk * edge_bytes(n_bootstrap)
            + max(replicate_work, summary_bytes(edge_chunk, n_bootstrap, threads, cached)))


def plan_bootstrap(plan: Plan, n_edges: int) -> Plan:
    """The plan re-made for ``n_edges`` selected edges (known after the selection pass): edge
    chunks no larger than the edges, the replicate room of the bootstrap room that is left, and
    the predicted peak for these edges.  ``bootstrap_peak`` refines it with the replicate chunks
    the edge chunks' actual genes get.  A plan with fixed sizes keeps them."""
    n_edges = max(1, int(n_edges))
    if not plan.bootstrap_room_bytes:
        edges, room = min(plan.edge_chunk, n_edges), plan.replicate_room_bytes
    else:
        per_edge = edge_bytes(plan.n_bootstrap)
        free = int(plan.budget_bytes / MODEL_MARGIN) - plan.resident_bytes
        total = min(free, max(plan.bootstrap_room_bytes, selected_edge_bytes(n_edges) + BOOTSTRAP_MIN_ROOM))
        room_left = total - selected_edge_bytes(n_edges)
        cached = bool(plan.working_set_bytes)
        summary = summary_bytes(n_edges, plan.n_bootstrap, plan.threads) if cached else 0
        edges = max(1, min(n_edges, ((room_left - summary) // 2) // (per_edge + summary_edge_bytes(plan.n_bootstrap, cached))))
        room = max(1, (room_left - edges * per_edge) // plan.threads)
    replanned = replace(plan, edge_chunk=edges, replicate_room_bytes=room, n_edges=n_edges)
    return bootstrap_peak(replanned, [])


def bootstrap_peak(plan: Plan, replicate_work: list) -> Plan:
    """``plan`` (from ``plan_bootstrap``) with its predicted peak for the replicate chunks used:
    ``replicate_work`` holds, per edge chunk, the bytes of its replicate chunks in flight (none
    known yet: the whole replicate room)."""
    work = max(replicate_work) if replicate_work else plan.threads * plan.replicate_room_bytes
    boot = bootstrap_stage_bytes(plan.n_edges or 0, plan.edge_chunk, plan.n_bootstrap, work, plan.threads,
                                 bool(plan.working_set_bytes))
    stages = dict(plan.stages)
    stages["bootstrap of selected edges"] = (f"{plan.n_edges} edges in chunks of {plan.edge_chunk}", boot)
    peak = int((plan.resident_bytes + max(plan.pair_stage_bytes, boot)) * MODEL_MARGIN)
    return replace(plan, predicted_peak_bytes=peak, stages=stages)


def planned_replicate_bytes(plan: Plan, k: int, m: int, n_genes: int, n_edges: int, dense_outputs: int = 0,
                            sparse_edges: int = 0, ties: bool = True, dense_edges: int | None = None) -> int:
    """``replicate_bytes`` of an edge chunk with the plan's backend facts: its sparse edges
    gathered at once on a device (a host works in cache-sized pieces), the backend's own ranks,
    and the gathers only where its sparse dots hold them (``Plan.pair_gathers``)."""
    gathered = 0 if plan.working_set_bytes else sparse_edges
    return replicate_bytes(k, m, n_genes, n_edges, dense_outputs, gathered, ties, dense_edges, own=plan.ranks_by_gene,
                           gathers=plan.pair_gathers)


def replicate_chunk_for(plan: Plan, n_bootstrap: int, k: int, m: int, n_genes: int, n_edges: int,
                        dense_outputs: int = 0, sparse_edges: int = 0, ties: bool = True,
                        dense_edges: int | None = None) -> int:
    """Replicates per chunk for an edge chunk of known genes, edges and largest dense block: the
    planned replicate room divided by what one replicate of *these* needs (more replicates when
    fewer genes), and within the working-set cap."""
    if not plan.replicate_room_bytes:
        return plan.replicate_chunk
    room = plan.replicate_room_bytes - -(-gene_structure_bytes(k, n_genes) // plan.threads)  # a thread's share
    reps = room // planned_replicate_bytes(plan, k, m, n_genes, n_edges, dense_outputs, sparse_edges, ties, dense_edges)
    if plan.working_set_bytes:
        reps = min(reps, replicate_chunk_cap(plan.working_set_bytes, k, m, n_genes, n_edges, dense_outputs,
                                             plan.ranks_by_gene))
    reps = max(1, min(-(-n_bootstrap // plan.threads), reps))  # every thread gets a chunk
    if plan.working_set_bytes and reps > HOST_VECTOR_REPLICATES:  # whole loop iterations of int16 replicates on a host
        reps -= reps % HOST_VECTOR_REPLICATES
    return int(reps)


HOST_VECTOR_REPLICATES = 32  # replicate chunks on a host in multiples of this: no scalar remainders in the kernels
# (16 int16 lanes, two vectors a loop iteration: an odd multiple of 16 ran 5-13% slower in the deltas kernel,
# ALL focus 113 and 114's bootstrap stage 3-15%; docs/benchmarks.md)


def replicate_work_bytes(plan: Plan, n_bootstrap: int, reps: int, k: int, m: int, n_genes: int, n_edges: int,
                         dense_outputs: int = 0, sparse_edges: int = 0, ties: bool = True,
                         dense_edges: int | None = None) -> int:
    """What an edge chunk holds while its replicate chunks of ``reps`` run: those in flight at once
    (``planned_replicate_bytes`` each, at most the plan's threads) and both groups' sort structures
    of its genes (``gene_structure_bytes``); ``bootstrap_peak`` takes the largest over the chunks."""
    in_flight = min(plan.threads, -(-n_bootstrap // reps)) * reps
    return (in_flight * planned_replicate_bytes(plan, k, m, n_genes, n_edges, dense_outputs, sparse_edges, ties,
                                                dense_edges)
            + gene_structure_bytes(k, n_genes))


def stored_pair_bytes(n_genes: int, store: str) -> int:
    """Host bytes of what ``--store`` keeps of every pair for the results (``pipeline.pair_values``):
    common, three significance masks at a bit a pair; full, also r_low and r_high at 4 bytes each."""
    n_pairs = n_genes * (n_genes - 1) // 2
    if store == "minimal":
        return 0
    return 3 * (n_pairs + 7) // 8 + (8 * n_pairs if store == "full" else 0)


def job_memory_request(n_genes: int, n_samples: int, k_low: int, k_high: int, n_bootstrap: int, budget_bytes: int,
                       threads: int = 1, working_set_bytes: int = 0, store: str = "minimal") -> int:
    """Bytes a batch job should ask the scheduler for when it runs with ``budget_bytes`` and
    ``threads`` threads on a backend with ``working_set_bytes`` (NumPy's for CPU jobs): the same
    plan the run makes, its predicted peak (the bootstrap at the largest edge chunk a re-plan can
    choose, as the edge count is not known before the run), plus the expression matrix and the
    process's own overhead (what Grid Engine's h_vmem must cover)."""
    plan = plan_batches(n_genes, n_samples, k_low, k_high, n_bootstrap, budget_bytes, threads=threads,
                        working_set_bytes=working_set_bytes, store=store)
    return plan.predicted_peak_bytes + n_genes * n_samples * F64 + PROCESS_OVERHEAD_BYTES




WORKER_OVERHEAD_BYTES = 256 * 2**20  # a worker process's own interpreter, libraries and heap (forked: shared until written)
DEVICE_CONTEXT_BYTES = 768 * 2**20  # a process's own CUDA context and libraries on the device (outside CuPy's pool)


def plan_workers(slots: int, n_focus: int, budget_bytes: int, make_plan, most: int = 0,
                 overhead: int = WORKER_OVERHEAD_BYTES) -> tuple[int, Plan | None]:
    """(processes, the plan of each) for a host run of ``n_focus`` focus genes on ``slots`` cores
    within ``budget_bytes``: the most processes, up to one a core and one a focus gene, each with
    ``slots // processes`` threads and an equal share of the budget less its own ``overhead``, whose
    plan still caches the pair statistics where one process's plan would (recomputing every pass
    costs more than a process gains).  ``make_plan(budget, threads) -> Plan``; ``most``: at most
    this many processes (0: no cap).  (1, None): compute in the run's own process, with all its
    threads."""
    if slots <= 1 or n_focus <= 1:
        return 1, None
    whole = make_plan(budget_bytes, slots)
    for processes in range(min(slots, n_focus, most or slots), 1, -1):
        share = (budget_bytes - processes * overhead) // processes
        if share <= 0:
            continue
        try:
            plan = make_plan(share, max(1, slots // processes))
        except BootgpuError:  # too small a share
            continue
        if plan.cache_pairs or not whole.cache_pairs:
            return processes, _widest(plan, share, slots, make_plan)
    return 1, None


def _widest(plan: Plan, share: int, slots: int, make_plan) -> Plan:
    """A worker's plan sized for every core (``slots`` chunks in flight) where its share of the
    budget holds that as it holds ``plan`` (pairs cached alike): a worker runs its share of the
    cores while the others are busy and takes theirs while they are idle (``Backend.share_cores``)."""
    if plan.threads >= slots:
        return plan
    try:
        wide = make_plan(share, slots)
    except BootgpuError:
        return plan
    return wide if wide.threads == slots and wide.cache_pairs == plan.cache_pairs else plan


def parse_size(text: str, option: str, *, sge: bool = False) -> int:
    """A memory size in bytes.  Binary units (K, M, G, T = 1024-based, any case, optional 'iB');
    with ``sge`` Grid Engine's own convention: K/M/G/T 1024-based, k/m/g/t 1000-based."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?B)?\s*", text or "")
    if not match:
        raise BootgpuError(f"{option}: cannot read memory size {text!r}; use e.g. 6G, 512M or a byte count")
    unit = match[2]
    base = 1000 if (sge and unit.islower()) else 1024
    power = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}[unit.lower()]
    return int(float(match[1]) * base**power)


def resolve_budget(backend, requested: str | None) -> int:
    """The memory budget of a run: ``requested`` (e.g. '6G', or BOOTGPU_MEMORY_BUDGET) if it fits
    what the backend may allocate, else an error before anything is allocated; by default a safety
    fraction of that room."""
    text = requested or os.environ.get("BOOTGPU_MEMORY_BUDGET")
    room, limit = backend.available_memory()
    if text:
        budget = parse_size(text, "--memory-budget" if requested else "BOOTGPU_MEMORY_BUDGET")
        if budget > room:
            raise BootgpuError(
                f"memory budget {format_bytes(budget)} exceeds the {format_bytes(room)} this process may "
                f"allocate on {backend.name} ({limit}); ask for less"
            )
        return budget
    return int(room * SAFETY_FRACTION)
