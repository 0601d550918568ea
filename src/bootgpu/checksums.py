"""Datasets that carry a checksum, so damage inside a file is found where the file is read.

Numeric datasets get HDF5's Fletcher-32 filter (checked by HDF5 on every read of a chunk, at a
cost measured in microseconds); variable-length text, which HDF5 cannot filter, gets the SHA-256
of its values as an attribute (``study.integrity.verify_h5`` checks it).
"""

from __future__ import annotations

import hashlib

import h5py
import numpy as np

TEXT_DIGEST = "sha256"


def text_digest(values) -> str:
    return hashlib.sha256("\n".join(values).encode("utf-8", "surrogatepass")).hexdigest()


def create_checked(group: h5py.Group, name: str, data, dtype=None, **kwargs) -> h5py.Dataset:
    """``group.create_dataset(name, data=data, ...)`` with a checksum: Fletcher-32 for numbers
    (chunked, as the filter needs), a SHA-256 attribute for text."""
    kwargs.setdefault("track_times", False)
    text = dtype is not None and h5py.check_string_dtype(np.dtype(dtype)) is not None
    if text:
        ds = group.create_dataset(name, data=data, dtype=dtype, **kwargs)
        ds.attrs[TEXT_DIGEST] = text_digest([str(v) for v in np.asarray(data, dtype=object).reshape(-1).tolist()])
        return ds
    data = np.asarray(data)
    if data.ndim == 0:  # a scalar cannot be chunked, so it cannot be filtered
        return group.create_dataset(name, data=data, dtype=dtype, **kwargs)
    return group.create_dataset(name, data=data, dtype=dtype, fletcher32=True, **kwargs)
