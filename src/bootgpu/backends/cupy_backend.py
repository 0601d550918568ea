"""CuPy on a CUDA device.  Imported only when asked for, so a CPU-only install never touches CUDA."""

from __future__ import annotations

import contextlib
import functools
import itertools

import numpy as np

from bootgpu.backends._base import Backend, PeakMemory


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception message (CuPy's import errors are banners)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def cupy_unusable_reason() -> str | None:
    """None when CuPy can run on a device here; otherwise why not, in a few words."""
    try:
        import cupy
    except ModuleNotFoundError as exc:
        if exc.name == "cupy":
            return "cupy is not installed; install bootgpu[gpu] (CUDA 12) or bootgpu[gpu-cuda13]"
        return f"cupy failed to import: {_first_line(exc)}"
    except Exception as exc:  # a broken CUDA install can raise anything, over several lines
        return f"cupy failed to import: {_first_line(exc)}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"CUDA driver/runtime error: {_first_line(exc)}"
    if count < 1:
        return "no CUDA device is visible"
    try:  # the core speaks the array API; CuPy's own namespace lacks parts of it (cumulative_sum ...)
        import array_api_compat.cupy  # noqa: F401
    except ImportError as exc:
        return f"array-api-compat is missing ({_first_line(exc)}); pip install array-api-compat"
    return None


class _PoolHook:
    """Counts bytes CuPy's pool hands out, to know the peak inside a block (CuPy keeps no peak).
    Each has a name of its own: blocks may nest (a run's peak around each stage's)."""

    _made = itertools.count()

    def __init__(self):
        import cupy.cuda.memory_hook as memory_hook

        class Hook(memory_hook.MemoryHook):
            name = f"bootgpu_peak_{next(_PoolHook._made)}"

            def __init__(hook):
                hook.current = 0
                hook.peak = 0
                hook.sizes = {}

            def malloc_postprocess(hook, device_id, size, mem_size, mem_ptr, pmem_id):
                hook.sizes[mem_ptr] = mem_size
                hook.current += mem_size
                hook.peak = max(hook.peak, hook.current)

            def free_postprocess(hook, device_id, mem_size, mem_ptr, pmem_id):
                hook.current -= hook.sizes.pop(mem_ptr, mem_size)

        self.hook = Hook()


@functools.lru_cache(maxsize=None)
def _kernel(name: str, itemsize: int = 0):
    """The few kernels outside the array API, compiled once per process (and cached on disk by CuPy)."""
    import cupy

    if name == "upper_triangle":  # element (r, c) of a (rows, cols) block, c > r, to its condensed position
        return cupy.ElementwiseKernel(
            "T x, int64 n_cols", "raw T out",
            "const long long r = i / n_cols, c = i - r * n_cols;"
            "if (c > r) out[r * (n_cols - 1) - r * (r - 1) / 2 + c - r - 1] = x;",
            "bootgpu_upper_triangle")
    if name == "pair_dots":  # out[e, r] = sum_p w[a_e, p, r] d[b_e, p, r], exact integers
        acc = "long long" if itemsize == 8 else "int"
        return cupy.ElementwiseKernel(
            "raw T w, raw T d, raw int64 a, raw int64 b, int64 k, int64 n_rep", "T out",
            "const long long e = i / n_rep, r = i - e * n_rep;"
            "const T* wp = &w[a[e] * k * n_rep + r]; const T* dp = &d[b[e] * k * n_rep + r];"
            f"{acc} acc = 0;"
            f"for (long long p = 0; p < k; ++p) acc += ({acc}) wp[p * n_rep] * ({acc}) dp[p * n_rep];"
            "out = (T) acc;",
            f"bootgpu_pair_dots_{itemsize}")
    if name == "weighted_dots":  # out[e, r] = sum_p w[p, r] a[p, e, r] b[p, e, r] in T (exact integers)
        return cupy.ElementwiseKernel(
            "raw A a, raw A b, raw W w, int64 k, int64 n_edges, int64 n_rep", "T out",
            "const long long e = i / n_rep, r = i - e * n_rep; T acc = 0;"
            "for (long long p = 0; p < k; ++p) {"
            "  const long long at = (p * n_edges + e) * n_rep + r;"
            "  acc += (T) w[p * n_rep + r] * (T) a[at] * (T) b[at]; }"
            "out = acc;",
            "bootgpu_weighted_dots")
    if name in ("cumsum_leading", "doubled_scan"):  # down each column of (k, N), in the input's integers
        step = ("acc += x[s * n + i]; out[s * n + i] = acc;" if name == "cumsum_leading" else
                "const T c = x[s * n + i]; acc = (s == 0) ? (T) (c - m) : (T) (acc + prev + c); prev = c;"
                "out[s * n + i] = acc;")
        return cupy.ElementwiseKernel(
            "raw T x, int64 k, int64 n, int64 m", "raw T out",
            f"T acc = 0, prev = 0; for (long long s = 0; s < k; ++s) {{ {step} }}",
            f"bootgpu_{name}")
    raise KeyError(name)


class CupyScans:
    """``core.ranks.Scans`` as one kernel each: a thread runs down one column, so nothing is
    copied (CuPy's cumsum over a leading axis moves the axis last first: two more copies of the
    (k, genes x replicates) counts, measured 1.3 GB of 4.0 at 8,763 x 938)."""

    def __init__(self, cupy):
        self.cupy = cupy

    def _scan(self, name: str, x, m: int = 0, out=None):
        x = self.cupy.ascontiguousarray(x)
        k, n = x.shape[0], x.size // max(x.shape[0], 1)
        out = self.cupy.empty_like(x) if out is None else out
        if x.size:
            _kernel(name)(x, k, n, m, out, size=n)
        return out

    def cumsum_leading(self, x):
        return self._scan("cumsum_leading", x)

    def doubled_scan(self, sorted_counts, m: int, out=None):
        if out is not None and not out.flags.c_contiguous:
            out[...] = self._scan("doubled_scan", sorted_counts, m)
            return out
        return self._scan("doubled_scan", sorted_counts, m, out)


class CupyBackend(Backend):
    name = "cupy"
    on_device = True
    pair_gathers = False  # pair_dots below: one gather-and-dot kernel, no (E, k, R) gathers
    bootstrap_share = 0.25  # of the free budget (see planner.BOOTSTRAP_MIN_ROOM): few edge chunks, few launches

    def __init__(self):
        import array_api_compat.cupy as xp  # cupy_unusable_reason() says when this is missing
        import cupy

        self.cupy = cupy
        self.xp = xp

    # processes sharing one GPU in a study by default (--processes N asks for up to N; BOOTGPU_DEVICE_PROCESSES
    # sets the default).  Measured on an H200 (docs/benchmarks.md): 8 processes took ALL (12,625 x 128,
    # small groups: launch-bound) from 0.33 to 0.20 s a focus gene, but 8,763 x 938 (k = 187) from 0.09
    # to 0.18 s (the processes' contexts take turns on the device); one is the default that never loses
    DEVICE_PROCESSES = 1

    def device_processes(self, asked: int = 0) -> int:
        import os

        if asked:
            return asked
        text = os.environ.get("BOOTGPU_DEVICE_PROCESSES", "").strip()
        return int(text) if text.isdigit() and int(text) > 0 else self.DEVICE_PROCESSES

    def device_name(self) -> str:
        dev = self.cupy.cuda.Device()
        props = self.cupy.cuda.runtime.getDeviceProperties(dev.id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        return f"cuda:{dev.id} ({name})"

    def memory_info(self) -> tuple[int, int]:
        return self.available_memory()[0], int(self.cupy.cuda.runtime.memGetInfo()[1])

    def available_memory(self) -> tuple[int, str]:
        """Free device memory (cudaMemGetInfo) plus the pool's cached blocks, capped by the CuPy
        pool limit when one is set."""
        free, _ = self.cupy.cuda.runtime.memGetInfo()
        pool = self.cupy.get_default_memory_pool()
        free += pool.free_bytes()  # cached blocks are reusable
        limit = pool.get_limit()
        if limit and limit - pool.used_bytes() < free:
            return int(max(0, limit - pool.used_bytes())), "CuPy memory pool limit"
        return int(free), "free device memory"

    def synchronize(self) -> None:
        self.cupy.cuda.get_current_stream().synchronize()

    @contextlib.contextmanager
    def track_peak(self):
        result = PeakMemory()
        hook = _PoolHook().hook
        try:
            with hook:
                yield result
        finally:
            self.synchronize()
            result.peak_bytes = int(hook.peak)

    def to_device(self, array):
        return self.cupy.asarray(np.asarray(array))

    def to_host(self, array):
        return self.cupy.asnumpy(array)

    @property
    def ieee_float32_matmul(self) -> bool:
        """cuBLAS takes TF32 inputs for float32 products only when CUPY_TF32=1."""
        import os

        return os.environ.get("CUPY_TF32", "0") == "0"

    def bincount(self, x, minlength: int, weights=None):
        return self.cupy.bincount(x, weights=weights, minlength=minlength)

    def upper_triangle(self, rect):
        # one scatter kernel: no mask, no index arrays (the generic form makes both)
        n_rows, n_cols = rect.shape
        n_rows = min(n_rows, max(n_cols - 1, 0))
        out = self.cupy.empty((n_rows * (n_cols - 1) - n_rows * (n_rows - 1) // 2,), dtype=rect.dtype)
        if out.shape[0]:
            _kernel("upper_triangle")(rect[:n_rows], n_cols, out)
        return out

    @property
    def scans(self):
        return CupyScans(self.cupy)

    def weighted_dots(self, a, b, w, dtype):
        # one kernel, no (k, E, R) temporaries (the generic form holds two)
        cp = self.cupy
        k, n_edges, n_rep = a.shape
        out = cp.empty((n_edges, n_rep), dtype=dtype)
        if out.size:
            _kernel("weighted_dots")(cp.ascontiguousarray(a), cp.ascontiguousarray(b), cp.ascontiguousarray(w), k,
                                     n_edges, n_rep, out)
        return out

    def pair_dots(self, w, d, a, b):
        # one gather-and-dot kernel per call: the generic form materialises both (E, k, R) gathers
        if a is None:
            return Backend.pair_dots(self, w, d, a, b)
        cp = self.cupy
        n_units, k, n_rep = w.shape
        out = cp.empty((a.shape[0], n_rep), dtype=w.dtype)
        if out.size:
            _kernel("pair_dots", w.dtype.itemsize)(cp.ascontiguousarray(w), cp.ascontiguousarray(d),
                                                   cp.ascontiguousarray(a, dtype=cp.int64),
                                                   cp.ascontiguousarray(b, dtype=cp.int64), k, n_rep, out)
        return out

    def cummin(self, x):
        """Hillis-Steele scan: log2(n) passes of elementwise minimum, all on the device."""
        cp = self.cupy
        out = cp.array(x, copy=True)
        shift = 1
        n = out.shape[0]
        while shift < n:
            out[shift:] = cp.minimum(out[shift:], out[:-shift].copy())
            shift *= 2
        return out

    def betainc(self, a, b, x):
        import cupyx.scipy.special as sp

        return sp.betainc(a, b, x)

    def erfc(self, x):
        import cupyx.scipy.special as sp

        return sp.erfc(x)
