"""Backends own the device facts; the core only ever sees ``backend.xp`` and the calls below.

A backend is chosen once (``get_backend``) and passed down.  ``REGISTRY`` is the one list of
backends: its name, the module and class that implement it, whether it runs on a device, and how
to tell whether it can run here.  The CLI, ``bootgpu bench``, the asv suite and the test fixtures
read it.  Importing this package never imports CuPy: a backend's module is loaded only when that
backend is asked for (as einops does).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from bootgpu.backends._base import Backend, PeakMemory
from bootgpu.errors import BootgpuError


@dataclass(frozen=True)
class BackendSpec:
    """One backend: ``module``.``cls`` implements it; ``check`` names a function of that module
    returning None when it can run here, else why not (None: always usable)."""

    name: str
    module: str
    cls: str
    device: bool  # runs on an accelerator (its tests are marked ``gpu``)
    benchmarked: bool  # part of the asv suite and of `bootgpu bench`'s default choice
    check: str | None = None
    summary: str = ""

    def unusable_reason(self) -> str | None:
        """None when this backend can run here; otherwise why not, in a few words."""
        if self.check is None:
            return None
        return getattr(import_module(self.module), self.check)()

    def create(self) -> Backend:
        return getattr(import_module(self.module), self.cls)()


REGISTRY = {
    spec.name: spec
    for spec in (
        BackendSpec("numpy", "bootgpu.backends.numpy_backend", "NumpyBackend", False, True,
                    summary="NumPy on the host CPU, threaded"),
        BackendSpec("cupy", "bootgpu.backends.cupy_backend", "CupyBackend", True, True, "cupy_unusable_reason",
                    summary="CuPy on a CUDA device"),
        BackendSpec("strict", "bootgpu.backends.strict_backend", "StrictBackend", False, False, "strict_unusable_reason",
                    summary="array_api_strict on the host: the GPU code path, checked on CPU"),
    )
}  # fmt: skip
BACKEND_NAMES = ("auto", *REGISTRY)


def unusable_reason(name: str) -> str | None:
    """None when backend ``name`` can run here, else why not."""
    return _spec(name).unusable_reason()


def _spec(name: str) -> BackendSpec:
    if name not in REGISTRY:
        raise BootgpuError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    return REGISTRY[name]


def get_backend(name: str = "auto", *, announce=None) -> Backend:
    """Return the backend called ``name``; ``auto`` prefers a device backend (CuPy) when one is
    usable, else NumPy.  ``announce`` (a callable taking one line) is told what ``auto`` chose and why."""
    if name != "auto":
        spec = _spec(name)
        reason = spec.unusable_reason()
        if reason:
            raise BootgpuError(f"--backend {name} is not usable: {reason}")
        return spec.create()
    reasons = []
    for spec in REGISTRY.values():
        if spec.device:
            reason = spec.unusable_reason()
            if reason is None:
                backend = spec.create()
                if announce:
                    announce(f"backend auto: using {spec.name} on {backend.device_name()}")
                return backend
            reasons.append(f"{spec.name} not usable: {reason}")
    if announce:
        announce(f"backend auto: using numpy ({'; '.join(reasons) or 'no device backend'})")
    return REGISTRY["numpy"].create()


__all__ = ["Backend", "PeakMemory", "BackendSpec", "REGISTRY", "BACKEND_NAMES", "get_backend", "unusable_reason"]
