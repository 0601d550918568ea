"""Test-only fault injection at named points, so the fault tests stop a run exactly there.

``BOOTGPU_TEST_FAULT=KIND:POINT[:N]`` makes the N-th (default first) call of ``fault_point(POINT)``
in this process act out KIND: ``kill`` (SIGKILL to itself: nothing runs after it, as when a node
dies or the OOM killer strikes), a signal's name (``SIGTERM``, as a batch system's time limit;
``SIGINT``, ``SIGUSR1`` ...) sent to itself, ``enospc`` (an ``OSError`` 'No space left on device',
as a full disk gives) or ``pause`` (until the file ``BOOTGPU_TEST_RESUME_FILE`` exists, at most
``BOOTGPU_TEST_PAUSE_SECONDS``, default 120, so that another run meets this one).  Points: ``part`` (a
part file half-written), ``assemble`` (results.h5 half-assembled), ``results`` (results.h5 in
place, tables not yet written), ``tables`` (tables written, finished.json not yet).  Unset, the
calls do nothing.
"""

from __future__ import annotations

import errno
import os
import signal

_hits: dict = {}


def fault_point(point: str) -> None:
    spec = os.environ.get("BOOTGPU_TEST_FAULT")
    if not spec:
        return
    kind, _, rest = spec.partition(":")
    name, _, nth = rest.partition(":")
    if name != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] != int(nth or 1):
        return
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind.startswith("SIG"):
        os.kill(os.getpid(), getattr(signal, kind))
    elif kind == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    elif kind == "pause":
        import time

        resume = os.environ.get("BOOTGPU_TEST_RESUME_FILE")
        deadline = time.monotonic() + float(os.environ.get("BOOTGPU_TEST_PAUSE_SECONDS", "120"))
        while time.monotonic() < deadline and not (resume and os.path.exists(resume)):
            time.sleep(0.05)
