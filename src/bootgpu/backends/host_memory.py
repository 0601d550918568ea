"""How much host memory this process may still allocate: the tightest of the machine's available
memory, the cgroup (v1 or v2) limit, and RLIMIT_AS / RLIMIT_DATA (Grid Engine's h_vmem arrives as
RLIMIT_AS).  Each limit is reported with its name so an error can say which one binds.  And how it
gets its pages (``use_small_pages``)."""

from __future__ import annotations

import os
import resource
from pathlib import Path


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text or text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def mem_available(meminfo: str = "/proc/meminfo") -> int:
    """MemAvailable of ``meminfo`` in bytes (free pages where the kernel has no such line)."""
    try:
        with open(meminfo) as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def cgroup_room(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Limit minus usage of this process's memory cgroup, or None when unlimited."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        if controllers == "":  # cgroup v2
            for base in (root / rel, root):
                limit = _read_int(base / "memory.max")
                if limit is not None:
                    usage = _read_int(base / "memory.current") or 0
                    return max(0, limit - usage)
        elif "memory" in controllers.split(","):  # cgroup v1
            for base in (root / "memory" / rel, root / "memory"):
                limit = _read_int(base / "memory.limit_in_bytes")
                if limit is not None and limit < 1 << 60:
                    usage = _read_int(base / "memory.usage_in_bytes") or 0
                    return max(0, limit - usage)
    return None


def _rlimit_room(which: int, used: int) -> int | None:
    soft, _ = resource.getrlimit(which)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(0, soft - used)


def host_memory_limits() -> dict[str, int]:
    """Bytes still available under each limit that applies to this process."""
    limits = {"available RAM": mem_available()}
    room = cgroup_room()
    if room is not None:
        limits["cgroup limit"] = room
    rlim_as = _rlimit_room(resource.RLIMIT_AS, _status_kib("VmSize"))
    if rlim_as is not None:
        limits["RLIMIT_AS (ulimit -v, h_vmem)"] = rlim_as
    rlim_data = _rlimit_room(resource.RLIMIT_DATA, _status_kib("VmData"))
    if rlim_data is not None:
        limits["RLIMIT_DATA (ulimit -d)"] = rlim_data
    return limits


def tightest_host_limit() -> tuple[int, str]:
    """(bytes, name) of the limit that binds first."""
    limits = host_memory_limits()
    name = min(limits, key=limits.get)
    return limits[name], name


HUGEPAGE_VARIABLE = "NUMPY_MADVISE_HUGEPAGE"  # NumPy's own switch, read when NumPy is imported


def use_small_pages() -> bool:
    """Have NumPy stop asking the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)`` on
    every array of 4 MiB or more) in this process and in the processes it starts, unless the user
    set ``NUMPY_MADVISE_HUGEPAGE``; returns whether it changed anything.

    A study allocates hundreds of MB of fresh arrays a focus gene (pair blocks, deltas).  Where the
    kernel's THP ``defrag`` setting is ``madvise`` (the usual default), each huge-page fault of
    such an array may compact memory first: measured on ALL ``--focus '#100:120'``, 2 cores, 27-29 s
    of system time with huge pages against 11-12 s without, 52-57 s against 43-46 s for the run
    (docs/benchmarks.md), with the same user time.  Setting ``NUMPY_MADVISE_HUGEPAGE=1`` keeps
    NumPy's default."""
    if HUGEPAGE_VARIABLE in os.environ:
        return False
    os.environ[HUGEPAGE_VARIABLE] = "0"  # processes started from here (fork server, spawn) import NumPy with it
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # NumPy 1.x
        try:
            from numpy.core.multiarray import _set_madvise_hugepage
        except ImportError:
            return False
    _set_madvise_hugepage(False)  # this process (and forked ones): from its next allocation on
    return True
