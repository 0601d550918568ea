"""Measuring a stage: wall time after the device is synchronised, the rise of the process's
resident set over its level at the stage's start (sampled every 5 ms) and, on CuPy, the rise of
what CuPy's pool hands out (a memory hook).  A process's own peak (VmHWM) is
``bootgpu.backends.numpy_backend.peak_rss_bytes``."""

from __future__ import annotations

import time
from contextlib import contextmanager


class StageMeter:
    """Times stages and records their peak host (RSS rise) and device memory."""

    def __init__(self, backend=None):
        from bootgpu.backends.numpy_backend import NumpyBackend

        self.backend = backend  # None for the reference (host only)
        self.host = NumpyBackend()  # its track_peak samples this process's RSS
        self.device = backend is not None and backend.name == "cupy"
        self.stages: dict = {}

    def _sync(self):
        if self.backend is not None:
            self.backend.synchronize()

    @contextmanager
    def stage(self, name: str):
        self._sync()
        _release_freed_memory()
        with self.host.track_peak() as host:
            if self.device:
                with self.backend.track_peak() as dev:
                    t0 = time.perf_counter()
                    yield
                    self._sync()
                    seconds = time.perf_counter() - t0
            else:
                dev = None
                t0 = time.perf_counter()
                yield
                seconds = time.perf_counter() - t0
        self.stages[name] = {
            "seconds": seconds,
            "peak_host_bytes": int(max(0, host.peak_bytes)),
            "peak_device_bytes": int(dev.peak_bytes) if dev is not None else None,
        }


def _release_freed_memory() -> None:
    """Hand memory freed by earlier stages back to the OS (glibc's malloc_trim), so that a stage's
    RSS rise is not hidden by reuse of what an earlier stage freed."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass

