"""Atomic file writes: an output either appears complete or not at all.

A crash or error half-way through writing must never leave a truncated file
under the final name, where a later run would mistake it for a result.  The
temporary name ``.NAME.tmp-HOST-PID-TOKEN`` says whose it is, so a later run
knows whether its writer is gone (``study.integrity.sweep_temporaries``).
Errors of the filesystem (full, over quota, read-only, I/O) become one line
naming the file (``storage_error``).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from bootgpu.errors import BootgpuError

_TEMPORARY = re.compile(r"\.(?P<final>.+)\.tmp-(?:(?P<host>.+)-)?(?P<pid>\d+)-(?P<token>[0-9a-f]{8})")
STORAGE_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                  errno.EROFS: "the filesystem is read-only", errno.EIO: "input/output error",
                  errno.EACCES: "permission denied", errno.EPERM: "permission denied"}


def temporary_name(final: Path) -> Path:
    host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
    return final.with_name(f".{final.name}.tmp-{host}-{os.getpid()}-{secrets.token_hex(4)}")


def temporary_owner(name: str) -> tuple[str, str | None, int] | None:
    """(final name, host or None, pid) of a temporary file's name, else None."""
    match = _TEMPORARY.fullmatch(name)
    return (match["final"], match["host"], int(match["pid"])) if match else None


def storage_error(path, exc: OSError) -> BootgpuError | None:
    """One line for an error of the filesystem while writing ``path`` (None for other errors)."""
    if not isinstance(exc, OSError) or exc.errno not in STORAGE_ERRNOS:
        return None
    where = Path(path).parent
    text = f"{path}: cannot write: {STORAGE_ERRNOS[exc.errno]}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            import shutil

            text += f" ({shutil.disk_usage(where).free / 2**20:,.0f} MiB free on {where})"
        except OSError:
            pass
        text += "; free some space and rerun the same command (it resumes)"
    return BootgpuError(text)


IN_PROGRESS: set = set()  # the temporary files this process is writing now (a stopped worker removes them)


def remove_in_progress() -> None:
    """Remove the temporary files this process is writing (a worker stopped by SIGTERM)."""
    for tmp in list(IN_PROGRESS):
        try:
            os.unlink(tmp)
        except OSError:
            pass


@contextmanager
def atomic_path(final_path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``final_path``; move it into place on success.

    The temporary file lives in the same directory so that ``os.replace`` is an
    atomic rename on the same filesystem.  If the body raises, the temporary
    file is deleted and the exception propagates (an error of the filesystem as
    one line, ``storage_error``), so nothing half-written is ever left behind.
    Works with anything that writes to a path (``open``, ``h5py.File``,
    ``np.save`` ...).
    """
    final = Path(final_path)
    tmp = temporary_name(final)
    IN_PROGRESS.add(tmp)
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        error = storage_error(final, exc)
        if error is not None:
            raise error from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        IN_PROGRESS.discard(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fault: str = "") -> None:
    """Write ``data`` to ``path`` atomically and durably (flushed to the disk before the rename).
    ``fault``: the name of this write for the fault tests (``bootgpu.faults``)."""
    from bootgpu.faults import fault_point

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            half = len(data) // 2
            fh.write(data[:half])
            if fault:
                fault_point(fault)  # a fault test stops it here, half-written
            fh.write(data[half:])
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding=encoding, newline="") as fh:
            fh.write(text)
