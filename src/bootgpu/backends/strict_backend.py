"""array_api_strict on the host: runs the core with only what the array-API standard allows.

It stands in for a GPU library on CPU CI: code that leans on NumPy-only behaviour fails here.
Kernels outside the standard go through NumPy explicitly, via DLPack, as a device library would
use its own.
"""

from __future__ import annotations

import numpy as np

from bootgpu.backends._base import Backend
from bootgpu.backends.numpy_backend import NumpyBackend


def strict_unusable_reason() -> str | None:
    """None when array_api_strict is installed (a development dependency), else why not."""
    try:
        import array_api_strict  # noqa: F401
    except ImportError:
        return "array_api_strict is not installed (pip install -e '.[dev]')"
    return None


class StrictBackend(NumpyBackend):
    name = "strict"

    def __init__(self):
        import array_api_strict

        self.xp = array_api_strict

    def device_name(self) -> str:
        return "cpu (array_api_strict)"

    # as a device library: one queue, and the standard's own weighted sum (what CuPy runs)
    map_chunks = Backend.map_chunks
    imap_chunks = Backend.imap_chunks
    bincount_parts = Backend.bincount_parts
    subtract_counts = Backend.subtract_counts
    count_table = Backend.count_table
    count_into = Backend.count_into
    take_in_range = Backend.take_in_range
    cell_set = Backend.cell_set
    positions_in = Backend.positions_in
    weighted_dots = Backend.weighted_dots
    pair_dots = Backend.pair_dots
    block_dots = Backend.block_dots
    pair_piece = Backend.pair_piece
    store_ratio = Backend.store_ratio
    store_pair_ratio = Backend.store_pair_ratio
    store_pair_delta = Backend.store_pair_delta
    fused_deltas = False
    resample_ranks = Backend.resample_ranks
    ranks_by_gene = False
    flat_sorts = True
    store_gathered_ratio = Backend.store_gathered_ratio
    prepare = Backend.prepare
    column_statistics = Backend.column_statistics
    edge_rows = Backend.edge_rows
    mean_std = Backend.mean_std
    order_statistics = Backend.order_statistics
    sign_counts = Backend.sign_counts
    scans = Backend.scans
    upper_triangle = Backend.upper_triangle
    joint_triangle = Backend.joint_triangle
    level_triangle = Backend.level_triangle
    bin_counts = Backend.bin_counts
    gathered_abs_diff = Backend.gathered_abs_diff
    values_in_range = Backend.values_in_range

    def host_threads(self) -> int:
        return 1

    def to_device(self, array):
        return self.xp.asarray(np.asarray(array))

    def to_host(self, array):
        return np.from_dlpack(array)

    def _via_numpy(self, fn, x):
        return self.xp.asarray(fn(np.from_dlpack(x)))

    def bincount(self, x, minlength: int, weights=None):
        w = None if weights is None else np.from_dlpack(weights)
        return self._via_numpy(lambda a: np.bincount(a, weights=w, minlength=minlength), x)

    def cummin(self, x):
        return self._via_numpy(np.minimum.accumulate, x)

    def betainc(self, a, b, x):
        return self._via_numpy(lambda v: NumpyBackend.betainc(self, a, b, v), x)

    def erfc(self, x):
        return self._via_numpy(lambda v: NumpyBackend.erfc(self, v), x)
