"""Damage as a bad disk or a stray write does it: bytes inverted inside a file's stored data."""

from __future__ import annotations

from pathlib import Path

import h5py


def flip_chunk(path: Path, dataset: str) -> None:
    """Invert the byte in the middle of the first chunk of ``dataset``, in the file itself."""
    with h5py.File(path, "r") as h5:
        info = h5[dataset].id.get_chunk_info(0)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
