"""The strict backend with every array operation counted: what a device library would launch.

On a GPU each namespace call and each array operator is at least one kernel launch (or one host
round trip for ``int(x)``, ``bool(x)``, ``to_host``), and their number, not the arithmetic, sets the
time of a small focus gene.  ``CountingBackend`` runs the core on ``array_api_strict`` with the
device facts of a GPU backend (no working-set cap, one queue) and counts, inside ``with
backend.counting() as counts``, every top-level namespace call and array operator (a call made
inside another counted call is part of it) and every synchronisation.  ``counts.by_site`` says where
in bootgpu each operation was issued, to find the loops that issue many.  Tests use it to hold the
number of operations of a focus gene independent of its number of edges.
"""

from __future__ import annotations

import collections
import contextlib
import os
import sys
import threading
import weakref
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from bootgpu.backends._base import Backend, PeakMemory
from bootgpu.backends.strict_backend import StrictBackend

SYNC_METHODS = ("__bool__", "__int__", "__float__", "__index__", "__complex__", "__iter__")
METADATA = {"__repr__", "__str__", "__reduce__", "__new__", "__array_namespace__", "__dlpack__", "__dlpack_device__",
            "__buffer__", "__array__"}
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Memory:
    """Bytes of the arrays alive that operations made, as a device allocator would hold them: each
    array's root buffer (views share their base's) is counted once while it lives."""

    def __init__(self):
        self.current = self.peak = 0
        self._live: set = set()

    def add(self, result) -> None:
        if isinstance(result, (tuple, list)):
            for item in result:
                self.add(item)
            return
        buf = getattr(result, "_array", None)
        if not isinstance(buf, np.ndarray):
            return
        while isinstance(buf.base, np.ndarray):
            buf = buf.base
        key = id(buf)
        if key in self._live or buf.base is not None:  # counted already, or memory numpy does not own
            return
        self._live.add(key)
        self.current += buf.nbytes
        self.peak = max(self.peak, self.current)
        weakref.finalize(buf, self._free, key, buf.nbytes)

    def _free(self, key, nbytes) -> None:
        if key in self._live:
            self._live.discard(key)
            self.current -= nbytes


@dataclass
class OpCounts:
    """Operations counted: ``ops`` (kernels a device would launch), ``syncs`` (host round trips),
    per operation name and per bootgpu source line that issued them."""

    ops: int = 0
    syncs: int = 0
    by_name: collections.Counter = field(default_factory=collections.Counter)
    by_site: collections.Counter = field(default_factory=collections.Counter)
    sites: bool = False

    def add(self, name: str, sync: bool) -> None:
        if sync:
            self.syncs += 1
        else:
            self.ops += 1
        self.by_name[name] += 1
        if self.sites:
            self.by_site[_site()] += 1

    def top_sites(self, n: int = 20) -> list[tuple[str, int]]:
        return self.by_site.most_common(n)


def _site() -> str:
    """The innermost frame of bootgpu's own code outside this module, as path:line."""
    frame = sys._getframe(2)
    here = os.path.abspath(__file__)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if path.startswith(_PACKAGE) and path != here:
            return f"{os.path.relpath(path, _PACKAGE)}:{frame.f_lineno} {frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


class _State(threading.local):
    depth = 0
    counts: OpCounts | None = None
    memory: tuple = ()  # the trackers of every track_peak block open, innermost last


_state = _State()


def _counted(name: str, fn, sync: bool = False):
    def wrapper(*args, **kwargs):
        counts, memory = _state.counts, _state.memory
        if (counts is None and not memory) or _state.depth:
            return fn(*args, **kwargs)
        _state.depth += 1
        try:
            result = fn(*args, **kwargs)
        finally:
            _state.depth -= 1
            if counts is not None:
                counts.add(name, sync)
        for tracker in memory:
            tracker.add(result)
        return result

    wrapper.__name__ = getattr(fn, "__name__", name)
    wrapper.__wrapped__ = fn
    return wrapper


def _namespace(xp) -> ModuleType:
    """A module whose functions are ``xp``'s, counted; constants and dtypes are ``xp``'s own."""
    ns = ModuleType(f"counting({xp.__name__})")
    for name in dir(xp):
        if name.startswith("_"):
            continue
        value = getattr(xp, name)
        if callable(value) and not isinstance(value, type) and name not in ("finfo", "iinfo", "isdtype", "result_type",
                                                                              "can_cast", "broadcast_shapes"):
            value = _counted(name, value)
        setattr(ns, name, value)
    return ns


class CountingBackend(StrictBackend):
    """``array_api_strict`` with a GPU backend's facts (no working-set cap) and counted operations."""

    name = "counting"
    working_set_bytes = 0
    bootstrap_share = 0.25  # as CupyBackend's
    dense_density = Backend.dense_density  # as a device: every edge gathered, no dense tiles

    def device_name(self) -> str:
        return "cpu (array_api_strict, operations counted)"

    def __init__(self, device_bytes: int | None = None, pair_gathers: bool = True):
        super().__init__()
        self._strict = self.xp
        self.xp = _namespace(self._strict)
        self.device_bytes = device_bytes  # a device of this many bytes (None: the host's memory)
        self.pair_gathers = pair_gathers  # False: pair_dots as CuPy's one gather-and-dot kernel

    def pair_dots(self, w, d, a, b):
        if self.pair_gathers:
            return super().pair_dots(w, d, a, b)
        # as one kernel (CupyBackend.pair_dots): one operation, and only its output held
        return _counted("pair_dots", super().pair_dots)(w, d, a, b)

    @contextlib.contextmanager
    def _operators_counted(self):
        from array_api_strict._array_object import Array

        saved = {}
        for name, value in list(vars(Array).items()):
            if name.startswith("__") and callable(value) and name not in METADATA:
                saved[name] = value
                setattr(Array, name, _counted(name, value, sync=name in SYNC_METHODS))
        try:
            yield
        finally:
            for name, value in saved.items():
                setattr(Array, name, value)

    @contextlib.contextmanager
    def counting(self, sites: bool = False):
        """Count operations issued inside the block into the ``OpCounts`` yielded."""
        counts = OpCounts(sites=sites)
        previous, _state.counts = _state.counts, counts
        try:
            with self._operators_counted():
                yield counts
        finally:
            _state.counts = previous

    @contextlib.contextmanager
    def track_peak(self):
        """The peak of bytes held by arrays that operations inside the block made (what CuPy's
        pool hook measures, less the temporaries inside one operation)."""
        result, memory = PeakMemory(), _Memory()
        previous, _state.memory = _state.memory, (*_state.memory, memory)
        try:
            with self._operators_counted():
                yield result
        finally:
            _state.memory = previous
            result.peak_bytes = memory.peak

    def available_memory(self) -> tuple[int, str]:
        if self.device_bytes is None:
            return super().available_memory()
        return self.device_bytes, "the counting backend's device size"

    def to_host(self, array):
        counts = _state.counts
        if counts is not None and not _state.depth:
            counts.add("to_host", True)
        return super().to_host(array)

    def to_device(self, array):
        counts = _state.counts
        if counts is not None and not _state.depth:
            counts.add("to_device", False)
        _state.depth += 1
        try:
            result = super().to_device(array)
        finally:
            _state.depth -= 1
        for tracker in _state.memory:
            tracker.add(result)
        return result
