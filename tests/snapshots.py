"""What "the same results" means in the tests: every dataset and attribute of a study's HDF5 files
(values, not file bytes: HDF5 may lay a file out differently) and the text of its tables."""

from __future__ import annotations

import h5py
import numpy as np


def _value(v):
    if isinstance(v, np.ndarray):
        return v.tolist() if v.dtype.kind == "O" else v.tobytes()
    return v


def datasets(path) -> dict:
    """Every dataset (its bytes) and every attribute of an HDF5 file, by path."""
    out = {}

    def visit(name, obj):
        out[name + "@attrs"] = {k: _value(v) for k, v in obj.attrs.items()}
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()].tobytes() if obj.dtype.kind != "O" else list(obj[()])

    with h5py.File(path) as h5:
        h5.visititems(visit)
        out["/@attrs"] = dict(h5.attrs)
    return out


def study_files(out) -> dict:
    """A finished study: results.h5's datasets, the two tables' text."""
    return {"results": datasets(out / "results.h5"), "hubs": (out / "rewiring_hubs.tsv").read_text(),
            "networks": (out / "network_summary.tsv").read_text()}
