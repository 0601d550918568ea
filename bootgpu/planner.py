"""Batch sizes from a memory budget, so that every stage fits.

This is the first, coarse cost model (bytes per unit of work for each stage); ``bootgpu plan``
prints it.  Units: rows of pair space per block, replicates per bootstrap chunk, edges per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

from bootgpu.core.spearman import exact_float32_limit
from bootgpu.errors import BootgpuError

_F64 = 8


@dataclass(frozen=True)
class Plan:
    rows_per_block: int
    cache_pairs: bool
    replicate_chunk: int
    edge_chunk: int
    budget_bytes: int
    predicted_peak_bytes: int


def resident_bytes(n_genes: int, n_samples: int, k_low: int, k_high: int) -> int:
    """Expression on the device plus both groups' rank structures (4 int64 indices + d per cell)."""
    return n_genes * n_samples * _F64 + n_genes * (k_low + k_high) * (5 * _F64 + 2 * _F64)


def pair_cache_bytes(n_genes: int, k_low: int, k_high: int) -> int:
    n_pairs = n_genes * (n_genes - 1) // 2
    return sum(n_pairs * (4 if exact_float32_limit(k) else 8) for k in (k_low, k_high))


def plan_batches(
    n_genes: int,
    n_samples: int,
    k_low: int,
    k_high: int,
    n_bootstrap: int,
    budget_bytes: int,
    *,
    replicate_chunk: int | None = None,
    rows_per_block: int | None = None,
    edge_chunk: int | None = None,
) -> Plan:
    """Largest batches that fit ``budget_bytes``; explicit sizes override (tests use that)."""
    k = max(k_low, k_high)
    fixed = resident_bytes(n_genes, n_samples, k_low, k_high)
    free = budget_bytes - fixed
    unit_row = n_genes * _F64 * 16  # one row of pair space: dots, r, masks, statistics, bins
    if free < unit_row + n_genes * k * _F64 * 8:
        need = fixed + unit_row + n_genes * k * _F64 * 8
        raise BootgpuError(
            f"memory budget {budget_bytes / 2**30:.2f} GiB is too small for {n_genes} genes x "
            f"{n_samples} samples: at least {need / 2**30:.2f} GiB is needed"
        )
    cache = pair_cache_bytes(n_genes, k_low, k_high)
    cache_pairs = cache <= free // 3
    if cache_pairs:
        free -= cache
    rows = rows_per_block or max(1, min(n_genes, (free // 3) // unit_row))
    # bootstrap: per replicate ~8 float64 copies of (U, k) ranks and products, U <= n_genes
    per_rep = n_genes * k * _F64 * 8
    reps = replicate_chunk or max(1, min(n_bootstrap, (free // 2) // per_rep))
    # per edge: B deltas, sorted copy and float64 temporaries, plus gathered (R, k) rows
    per_edge = n_bootstrap * _F64 * 4 + reps * k * _F64 * 3
    edges = edge_chunk or max(1, (free // 2) // per_edge)
    peak = fixed + (cache if cache_pairs else 0) + max(rows * unit_row, reps * per_rep + edges * per_edge)
    return Plan(rows, cache_pairs, reps, edges, budget_bytes, peak)


PROCESS_OVERHEAD_BYTES = 400 * 2**20  # interpreter, NumPy/SciPy/h5py and BLAS buffers


def job_memory_request(n_genes: int, n_samples: int, k_low: int, k_high: int, n_bootstrap: int, budget_bytes: int) -> int:
    """Bytes a batch job should ask the scheduler for when it runs with ``budget_bytes``: the
    plan's predicted peak plus the process's own overhead (what Grid Engine's h_vmem must cover)."""
    plan = plan_batches(n_genes, n_samples, k_low, k_high, n_bootstrap, budget_bytes)
    return plan.predicted_peak_bytes + PROCESS_OVERHEAD_BYTES
