"""Backends own the device facts; the core only ever sees ``backend.xp`` and the calls below.

A backend is chosen once (``get_backend``) and passed down.  Importing this package never imports
CuPy: the CuPy module is loaded only when that backend is asked for (as einops does).
"""

from __future__ import annotations

from bootgpu.backends._base import Backend, PeakMemory
from bootgpu.errors import BootgpuError

BACKEND_NAMES = ("auto", "numpy", "cupy", "strict")


def get_backend(name: str = "auto", *, announce=None) -> Backend:
    """Return the backend called ``name``; ``auto`` prefers CuPy when a CUDA device is usable.

    ``announce`` (a callable taking one line) is told which backend ``auto`` chose and why.
    """
    if name == "numpy":
        from bootgpu.backends.numpy_backend import NumpyBackend

        return NumpyBackend()
    if name == "strict":
        from bootgpu.backends.strict_backend import StrictBackend

        return StrictBackend()
    if name == "cupy":
        from bootgpu.backends.cupy_backend import CupyBackend, cupy_unusable_reason

        reason = cupy_unusable_reason()
        if reason:
            raise BootgpuError(f"--backend cupy is not usable: {reason}")
        return CupyBackend()
    if name == "auto":
        from bootgpu.backends.cupy_backend import cupy_unusable_reason

        reason = cupy_unusable_reason()
        if reason is None:
            from bootgpu.backends.cupy_backend import CupyBackend

            backend = CupyBackend()
            if announce:
                announce(f"backend auto: using cupy on {backend.device_name()}")
            return backend
        from bootgpu.backends.numpy_backend import NumpyBackend

        if announce:
            announce(f"backend auto: using numpy (cupy not usable: {reason})")
        return NumpyBackend()
    raise BootgpuError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")


__all__ = ["Backend", "PeakMemory", "get_backend", "BACKEND_NAMES"]
