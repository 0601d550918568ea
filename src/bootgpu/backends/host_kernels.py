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

import os
import threading

import numpy as np

_lock = threading.Lock()
_kernels: dict | None = None
_failed = False


def enabled() -> bool:
    """Whether the compiled kernels are used: Numba importable and ``BOOTGPU_NUMBA`` not 0."""
    return os.environ.get("BOOTGPU_NUMBA", "1") != "0" and _load() is not None


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
    for dtype in (np.int16, np.int32, np.int64):  # core.bootstrap.dot_dtype
        w = np.zeros((1, 1, 2), dtype=dtype)
        for dest in (out, out[:, :2]):  # a whole chunk's deltas, or a view of the shared buffer
            kernel("pair_ratio")(w, w, np.zeros(1, np.int64), np.zeros(1, np.int64), np.ones(2), dest, 0, 0, False)
    x, ps = np.zeros((1, 4)), np.zeros(1, np.int64)
    kernel("tail_order_statistics")(x, ps, ps + 3, np.zeros(1), np.zeros(1), np.zeros((1, 1)), np.zeros((1, 1)))


def _compile(cache: bool) -> dict:
    import numba

    global select
    # error_model "numpy": a division is IEEE's (no zero check in the loop, which also keeps it vectorised)
    jit = numba.njit(nogil=True, cache=cache, error_model="numpy")
    select = jit(_select)  # called by _tail_order_statistics: a compiled global by the time that compiles
    return {"pair_ratio": jit(_pair_ratio), "tail_order_statistics": jit(_tail_order_statistics)}


select = None  # the compiled _select (``_compile``)


def _pair_ratio(w, d, a, b, den, out, r0, c0, subtract):  # pragma: no cover - compiled
    # out[r0 + r, c0 + e] (-)= (sum_p w[a_e, p, r] d[b_e, p, r]) / den[r], edges in tiles of T:
    # their dots first (integers in the dtype of w: exact, core.bootstrap.dot_dtype), edge by edge
    # along the replicates, then turned replicate-major and divided, T adjacent values of a row
    k, n_rep, n_edges = w.shape[1], w.shape[2], a.shape[0]
    tile = 16
    dots = np.empty((tile, n_rep), dtype=w.dtype)
    turned = np.empty((n_rep, tile))
    for e0 in range(0, n_edges, tile):
        n = min(tile, n_edges - e0)
        for t in range(n):
            row = dots[t]
            row[:] = 0
            wa, db = w[a[e0 + t]], d[b[e0 + t]]
            for p in range(k):
                wr, dr = wa[p], db[p]
                for r in range(n_rep):
                    row[r] += wr[r] * dr[r]
        for t in range(n):
            row = dots[t]
            for r in range(n_rep):
                turned[r, t] = row[r]
        for r in range(n_rep):
            num, dv = turned[r], den[r]
            dest = out[r0 + r, c0 + e0:c0 + e0 + n]
            if subtract:
                for t in range(n):
                    dest[t] -= num[t] / dv
            else:
                for t in range(n):
                    dest[t] = num[t] / dv


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
    need_lo = lower[0] + 1 if lower.shape[0] else 0
    need_hi = n - upper[0] if upper.shape[0] else 0
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
        if n_lo < need_lo:
            lo[:n] = row
            n_lo = n
        if n_hi < need_hi:
            hi[:n] = row
            n_hi = n
        stop = n_lo
        for j in range(lower.shape[0]):
            out_lower[i, j] = select(lo, 0, stop, lower[j])
            stop = lower[j]
        start, shift = 0, n - n_hi
        for j in range(upper.shape[0]):
            c = upper[j] - shift
            out_upper[i, j] = select(hi, start, n_hi, c)
            start = c + 1
