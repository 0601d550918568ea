"""The small interface every backend implements (namespace, memory, transfers, extra kernels)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class PeakMemory:
    """Filled in by ``Backend.track_peak``: bytes above the level at entry, on the backend's device."""

    peak_bytes: int = 0


class Backend:
    """Base class. ``xp`` is an array-API namespace; arrays of it live on ``device_name()``.

    The core never converts a device array to NumPy implicitly: it calls ``to_host``.  Kernels the
    array-API standard lacks (bincount, running minimum, special functions) are backend methods so
    each library can use its own fast implementation.
    """

    name: str = "base"
    xp: Any = None
    working_set_bytes: int = 0  # largest array a batch should make (0: no cap); see planner

    # --- device facts -------------------------------------------------------------------------
    def device_name(self) -> str:
        raise NotImplementedError

    def memory_info(self) -> tuple[int, int]:
        """(free, total) bytes of the memory this backend allocates from."""
        raise NotImplementedError

    def available_memory(self) -> tuple[int, str]:
        """(bytes this process may still allocate here, name of the limit that binds)."""
        free, _ = self.memory_info()
        return free, "free memory"

    def host_threads(self) -> int:
        """Threads worth using for independent pieces of array work (host backends: the cores)."""
        return 1

    def synchronize(self) -> None:
        """Block until queued device work is done (a no-op on the host)."""

    @contextlib.contextmanager
    def track_peak(self):
        """Context manager yielding a ``PeakMemory`` filled in when the block exits."""
        yield PeakMemory()

    # --- transfers ----------------------------------------------------------------------------
    def to_device(self, array: np.ndarray):
        return self.xp.asarray(array)

    def to_host(self, array) -> np.ndarray:
        return np.asarray(array)

    # --- kernels outside the array-API standard ------------------------------------------------
    def bincount(self, x, minlength: int):
        raise NotImplementedError

    def cummin(self, x):
        """Running minimum along a 1-D array."""
        raise NotImplementedError

    def betainc(self, a: float, b: float, x):
        """Regularised incomplete beta I_x(a, b), elementwise, float64."""
        raise NotImplementedError

    def erfc(self, x):
        raise NotImplementedError
