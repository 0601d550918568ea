"""`bootgpu indices`: every gene's LOW/HIGH split and bootstrap sample indices, in the original
pipeline's HDF5 layout, streamed in gene blocks sized by the planner.

Layout (int32 sample indices, one gene per chunk):
  indices/low (n_genes, k_low), indices/high (n_genes, k_high),
  indices/low_boot (n_genes, B, m_low), indices/high_boot (n_genes, B, m_high)
  meta attrs: low_frac, high_frac, n_bootstrap, bootstrap_frac, seed, processing_mode
  ("vectorized" when all genes fit one block, else "batch_<genes per block>"), rng_algorithm.
Draws are the engine's (``core.draws``), so the file is the same for any block size or backend.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np

from bootgpu.atomic import atomic_path
from bootgpu.config import AnalysisConfig
from bootgpu.core.draws import RNG_ALGORITHM, draw_positions_genes

# Compression of the index datasets, measured in docs/benchmarks.md ("bootgpu indices"):
# every choice here opens with plain h5py.
COMPRESSION = {
    "gzip": {"compression": "gzip", "compression_opts": 1, "shuffle": True},
    "gzip4": {"compression": "gzip", "compression_opts": 4, "shuffle": True},
    "lzf": {"compression": "lzf", "shuffle": True},
    "none": {},
}
DEFAULT_COMPRESSION = "gzip"
try:  # Intel ISA-L's deflate: the same zlib stream, ~7x faster (pip install bootgpu[fast])
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - depends on the environment
    import zlib as _zlib
DRAW_GENES = 2  # genes drawn per step inside a block: 3x faster than whole blocks on NumPy


def _filters(name: str) -> dict:
    if name in COMPRESSION:
        return COMPRESSION[name]
    if name in ("zstd", "blosc-zstd"):  # optional: needs hdf5plugin to write and to read
        try:
            import hdf5plugin
        except ImportError as exc:
            from bootgpu.errors import BootgpuError

            raise BootgpuError(f"--compression {name} needs the hdf5plugin package ({exc})") from None
        if name == "zstd":
            return dict(hdf5plugin.Zstd(clevel=3))
        return dict(hdf5plugin.Blosc(cname="zstd", clevel=3, shuffle=hdf5plugin.Blosc.SHUFFLE))
    from bootgpu.errors import BootgpuError

    raise BootgpuError(f"unknown --compression {name!r}; choose gzip, gzip4, lzf, none, zstd or blosc-zstd")


def split_block(xp, values, k_low: int, k_high: int):
    """LOW and HIGH sample indices of every gene of a block (rows = focus genes), as in ``split``."""
    order = xp.argsort(values, axis=1, stable=True)
    n = values.shape[1]
    return order[:, :k_low], order[:, n - k_high :]


def _shuffle_deflate(chunk: np.ndarray, level: int) -> bytes:
    """What HDF5's shuffle + deflate filters make of one chunk (byte planes, then a zlib stream).
    Done here, in threads (zlib and ISA-L release the GIL), and written with write_direct_chunk.
    ISA-L levels stop at 3; any deflate level decodes with HDF5's gzip filter."""
    planes = np.ascontiguousarray(chunk).view(np.uint8).reshape(-1, chunk.itemsize).T
    return _zlib.compress(np.ascontiguousarray(planes).tobytes(), min(level, 3) if _zlib.__name__.startswith("isal") else level)


class _ChunkWriter:
    """Writes one-gene chunks; gzip chunks are compressed by a thread pool while the caller draws
    the next block, other filters go through h5py.  At most two blocks are in flight."""

    def __init__(self, filters: dict):
        self.level = filters.get("compression_opts") if filters.get("compression") == "gzip" else None
        self.pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1) if self.level else None
        self.pending: list = []

    def put(self, dataset, g0: int, block: np.ndarray) -> None:
        if self.pool is None:
            dataset[g0 : g0 + block.shape[0]] = block
            return
        futures = [self.pool.submit(_shuffle_deflate, block[i], self.level) for i in range(block.shape[0])]
        self.pending.append((dataset, g0, futures))

    def flush(self, keep: int = 0) -> None:
        while len(self.pending) > keep:
            dataset, g0, futures = self.pending.pop(0)
            for i, fut in enumerate(futures):
                dataset.id.write_direct_chunk((g0 + i,) + (0,) * (dataset.ndim - 1), fut.result())

    def close(self) -> None:
        self.flush()
        if self.pool:
            self.pool.shutdown()


def write_indices(backend, values, cfg: AnalysisConfig, path: os.PathLike, genes_per_block: int,
                  compression: str = DEFAULT_COMPRESSION, progress=None) -> dict:
    """Write the indices file atomically; return timing and size figures."""
    xp = backend.xp
    n_genes, n_samples = values.shape
    k_low, k_high = cfg.validate(n_samples)
    m_low, m_high = int(k_low * cfg.bootstrap_frac), int(k_high * cfg.bootstrap_frac)
    n_boot = cfg.n_bootstrap
    filters = _filters(compression)
    block = max(1, min(genes_per_block, n_genes))
    mode = "vectorized" if block >= n_genes else f"batch_{block}"
    reps = xp.arange(n_boot, dtype=xp.int64)
    t0 = time.perf_counter()
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            grp = h5.create_group("indices")
            shapes = {"low": (k_low,), "high": (k_high,), "low_boot": (n_boot, m_low), "high_boot": (n_boot, m_high)}
            ds = {name: grp.create_dataset(name, shape=(n_genes, *shape), dtype=np.int32, chunks=(1, *shape),
                                           track_times=False, **filters) for name, shape in shapes.items()}
            meta = h5.create_group("meta")
            for key in ("low_frac", "high_frac", "n_bootstrap", "bootstrap_frac", "seed"):
                meta.attrs[key] = getattr(cfg, key)
            meta.attrs["processing_mode"] = mode
            meta.attrs["rng_algorithm"] = RNG_ALGORITHM
            meta.attrs["compression"] = compression
            writer = _ChunkWriter(filters)
            threads = backend.host_threads()
            draw_pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None
            try:
                for g0 in range(0, n_genes, block):
                    g1 = min(g0 + block, n_genes)
                    low, high = split_block(xp, backend.to_device(values[g0:g1]), k_low, k_high)
                    for name, group, code, m in (("low", low, 0, m_low), ("high", high, 1, m_high)):
                        group = xp.astype(group, xp.int32)  # gathered draws come out int32 directly
                        ds[name][g0:g1] = backend.to_host(group)
                        out = xp.empty((g1 - g0, n_boot, m), dtype=xp.int32)

                        def fill(s0, group=group, code=code, m=m, out=out, g0=g0, g1=g1):
                            s1 = min(s0 + DRAW_GENES, g1 - g0)
                            genes = xp.arange(g0 + s0, g0 + s1, dtype=xp.int64)
                            pos = draw_positions_genes(xp, cfg.seed, genes, code, reps, group.shape[1], m)
                            samples = xp.take_along_axis(group[s0:s1, :], xp.reshape(pos, (s1 - s0, n_boot * m)), axis=1)
                            out[s0:s1, ...] = xp.reshape(samples, (s1 - s0, n_boot, m))

                        # small steps keep temporaries in cache; host backends draw them in threads
                        steps = range(0, g1 - g0, DRAW_GENES)
                        if draw_pool:
                            list(draw_pool.map(fill, steps))
                        else:
                            for s0 in steps:
                                fill(s0)
                        writer.put(ds[f"{name}_boot"], g0, backend.to_host(out))
                        del out
                    writer.flush(keep=2)  # the block just drawn compresses while the next is drawn
                    if progress:
                        progress(g1)
            finally:
                writer.close()
                if draw_pool:
                    draw_pool.shutdown()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "bytes": os.path.getsize(path), "processing_mode": mode, "compression": compression}
