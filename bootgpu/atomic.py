"""Atomic file writes: an output either appears complete or not at all.

A crash or error half-way through writing must never leave a truncated file
under the final name, where a later run would mistake it for a result.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(final_path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``final_path``; move it into place on success.

    The temporary file lives in the same directory so that ``os.replace`` is an
    atomic rename on the same filesystem.  If the body raises, the temporary
    file is deleted and the exception propagates, so nothing half-written is
    ever left behind.  Works with anything that writes to a path (``open``,
    ``h5py.File``, ``np.save`` ...).
    """
    final = Path(final_path)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding=encoding, newline="") as fh:
            fh.write(text)
