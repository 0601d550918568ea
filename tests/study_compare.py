"""Two study directories compared byte for byte (what the cluster integration tests check: a
study run as array jobs plus a merge equals one local `bootgpu run`): every attribute and dataset
of every focus gene of results.h5, its meta, gene and sample names, and rewiring_hubs.tsv."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def read_all(path: Path) -> dict:
    with h5py.File(path) as h5:
        focus = {}
        for name in h5["focus"]:  # every dataset, nested groups (network) included
            data: dict = {}
            h5["focus"][name].visititems(lambda k, obj: data.__setitem__(k, obj[()]) if isinstance(obj, h5py.Dataset) else None)
            focus[name] = (dict(h5["focus"][name].attrs), data)
        return {"meta": dict(h5["meta"].attrs), "gene_names": h5["gene_names"][()],
                "sample_names": h5["sample_names"][()], "focus": focus}  # fmt: skip


def same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):  # byte for byte: NaN-safe, compound rows too
        return np.asarray(a).dtype == np.asarray(b).dtype and np.asarray(a).tobytes() == np.asarray(b).tobytes()
    return a == b


def assert_focus_equal(got: dict, want: dict, names) -> None:
    for name in names:
        (attrs_g, data_g), (attrs_w, data_w) = got[name], want[name]
        assert attrs_g.keys() == attrs_w.keys() and all(same(attrs_g[k], attrs_w[k]) for k in attrs_w), name
        assert data_g.keys() == data_w.keys(), name
        for key in data_w:
            assert data_g[key].dtype == data_w[key].dtype and data_g[key].tobytes() == data_w[key].tobytes(), (name, key)


def assert_study_equal(out: Path, reference: Path, focus) -> None:
    got, want = read_all(out / "results.h5"), read_all(reference / "results.h5")
    assert got["meta"].keys() == want["meta"].keys()
    for key in want["meta"]:
        assert same(got["meta"][key], want["meta"][key]), key
    assert np.array_equal(got["gene_names"], want["gene_names"])
    assert np.array_equal(got["sample_names"], want["sample_names"])
    assert list(got["focus"]) == list(want["focus"]) == [str(g) for g in focus]
    assert_focus_equal(got["focus"], want["focus"], want["focus"])
    assert (out / "rewiring_hubs.tsv").read_text() == (reference / "rewiring_hubs.tsv").read_text()
