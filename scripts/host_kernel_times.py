#!/usr/bin/env python3
"""Three host kernels of issue 20 against the NumPy steps they replace, in isolation, same bytes
checked; best of 5 rounds each, one JSON line:

    python3 scripts/host_kernel_times.py

- resample ranks of 10,000 genes (every other one with ties) x 25 positions x 1,000 replicates:
  ``ranks.position_ranks`` and W = c * D (int16) against ``NumpyBackend.resample_ranks`` (int8 D);
- a joint block of 164 x 12,625 float32 cells: add, int32 cast, row-slice triangle against
  ``NumpyBackend.joint_triangle``;
- 2 M joint indices into 6.8 M cells (1 % chosen): a gathered bool table and its nonzero against
  ``cell_set`` / ``positions_in``;
- a pair block of the embedded matrix's shape (1,048 rows x 2,000 genes, k = 25, ~1.55 M pairs):
  triangle, int32, offset, shift and int16 against ``level_triangle``; two gathers from the level
  tables, subtraction and abs against ``gathered_abs_diff``; ``np.bincount`` of int16 levels
  against the backend's ``bincount``; ``BHStream.bins`` and its bincount against ``bin_counts``;
  the threshold pass's comparisons and compress against ``values_in_range``.
"""

from __future__ import annotations

import json
import time

import numpy as np

from bootgpu.backends.numpy_backend import NumpyBackend
from bootgpu.core.bootstrap import GeneGroup
from bootgpu.core.draws import draw_counts, draw_positions
from bootgpu.core.ranks import group_order, position_ranks
from bootgpu.core.spearman import joint_rect, upper_triangle


def best(fn, rounds: int = 5) -> float:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def main() -> None:
    backend, rng, res = NumpyBackend(), np.random.default_rng(0), {}
    backend.prepare()
    n_genes, k, n_rep, m = 10_000, 25, 1_000, 20
    values = rng.normal(size=(n_genes, k))
    values[::2] = rng.integers(0, 40, size=(n_genes // 2, k))  # ties
    order = group_order(np, values)
    chunk = type("Chunk", (), {"genes": np.arange(n_genes), "blocks": []})()
    grp = GeneGroup.build(np, type("Group", (), {"order": order})(), chunk, m, by_gene=True)
    counts = draw_counts(np, draw_positions(np, 1, 2, 0, np.arange(n_rep), k, m), k, by_position=True).astype(np.int16)

    def core():
        d = position_ranks(np, order, counts, m, grp.rows, grp.starts, grp.ends, backend.scans).reshape(n_genes, k, n_rep)
        return d, d * counts[None]

    def own():
        return backend.resample_ranks(grp.slot_position, grp.tie_last, counts, m)

    assert np.array_equal(core()[0], own())
    res["resample_ranks_s"] = {"core D and W": round(best(core), 3), "resample_ranks": round(best(own), 3)}

    rows, cols = 164, 12_625
    rect = (rng.integers(0, 6_800_000, (rows, cols)) - 1000).astype(np.float32)
    n_pairs = rows * cols - rows * (rows + 1) // 2
    tri = upper_triangle(np, joint_rect(np, rect.copy(), 1000.0))
    assert np.array_equal(tri, backend.joint_triangle(rect, 1000.0))
    res["joint_triangle_ns_a_pair"] = {
        "add, cast, triangle": round(best(lambda: backend.upper_triangle(joint_rect(np, rect.copy(), 1000.0))) / n_pairs * 1e9, 2),
        "the copy alone (in the line above)": round(best(lambda: rect.copy()) / n_pairs * 1e9, 2),
        "joint_triangle": round(best(lambda: backend.joint_triangle(rect, 1000.0)) / n_pairs * 1e9, 2)}

    chosen = rng.random(6_800_000) < 0.01
    joint = rng.integers(0, 6_800_000, 2_000_000).astype(np.int32)
    cells = backend.cell_set(chosen)
    assert np.array_equal(np.nonzero(backend.take_in_range(chosen, joint))[0], backend.positions_in(cells, joint))
    res["selection_ns_a_pair"] = {
        "take and nonzero": round(best(lambda: np.nonzero(backend.take_in_range(chosen, joint))[0]) / joint.size * 1e9, 2),
        "positions_in": round(best(lambda: backend.positions_in(cells, joint)) / joint.size * 1e9, 2)}
    res["pair_block_ms"] = pair_block(backend, rng)
    print(json.dumps(res))


def pair_block(backend, rng) -> dict:
    """The pair passes' per-block kernels (see the docstring), in ms a block, same bytes checked."""
    from bootgpu.core.fdr import BHStream, N_BINS, bins_for_pairs
    from bootgpu.core.significance import FisherTest
    from bootgpu.core.spearman import rank_sumsq

    k, rows, n_genes = 25, 1_048, 2_000
    d = np.stack([rng.permutation(np.arange(-(k - 1), k, 2)) for _ in range(n_genes)]).astype(np.float32)
    rect = d[:rows] @ d.T
    offset = rank_sumsq(k)

    def core_levels():
        levels = upper_triangle(np, rect).astype(np.int32)
        levels += offset
        levels >>= 2
        return levels.astype(np.int16)

    levels = core_levels()
    assert np.array_equal(levels, backend.level_triangle(rect, offset, np.int16))
    n = int(levels.max()) + 1
    tables = [np.arctanh(np.clip(rng.uniform(-1, 1, n + 1), -0.9999, 0.9999)) for _ in range(2)]
    other = rng.permutation(levels)
    none = np.zeros(0)

    def core_diff():
        return np.abs(np.take(tables[0], levels) - np.take(tables[1], other))

    s = core_diff()
    assert np.array_equal(s, backend.gathered_abs_diff((tables[0], levels, n, none), (tables[1], other, n, none)))
    stream = BHStream(backend, FisherTest(k, k), "diff", n_bins=bins_for_pairs(levels.size, N_BINS))
    scale = stream.n_bins / stream.test.s_max
    assert np.array_equal(np.bincount(stream.bins(s), minlength=stream.n_bins), backend.bin_counts(s, scale, stream.n_bins))
    assert np.array_equal(np.bincount(levels, minlength=n + 1), backend.bincount(levels, n + 1))
    low, high = 2.0, 3.0
    assert np.array_equal(s[(s >= low) & (s < high)], backend.values_in_range(s, low, high))

    def ms(fn) -> float:
        return round(best(fn) * 1e3, 2)

    return {
        "pairs": int(levels.size),
        "levels: triangle, int32, offset, shift, int16": ms(core_levels),
        "level_triangle": ms(lambda: backend.level_triangle(rect, offset, np.int16)),
        "Fisher statistic: two takes, subtract, abs": ms(core_diff),
        "gathered_abs_diff": ms(lambda: backend.gathered_abs_diff((tables[0], levels, n, none), (tables[1], other, n, none))),
        "level counts: np.bincount of int16": ms(lambda: np.bincount(levels, minlength=n + 1)),
        "bincount (compiled)": ms(lambda: backend.bincount(levels, n + 1)),
        "bin counts: bins and np.bincount": ms(lambda: np.bincount(stream.bins(s), minlength=stream.n_bins)),
        "bin_counts": ms(lambda: backend.bin_counts(s, scale, stream.n_bins)),
        "screen: compare, and, compress": ms(lambda: s[(s >= low) & (s < high)]),
        "values_in_range": ms(lambda: backend.values_in_range(s, low, high)),
    }


if __name__ == "__main__":
    main()
