"""``study.integrity.verify_h5`` names exactly the datasets whose stored bytes changed: numbers of
every layout a study writes (gzip + Fletcher-32 chunks, Fletcher-32 alone, compound rows, a
scalar, an empty table) read as stored, and text against its SHA-256 attribute."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from bootgpu.checksums import TEXT_DIGEST, create_checked
from bootgpu.results_io import read_meta
from bootgpu.study.integrity import verify_h5
from damage import flip_chunk

ROW = np.dtype([(f"m{i}", np.int64 if i % 3 == 0 else np.float64) for i in range(162)])  # a network metrics row
PARTNER = np.dtype([("gene", np.int32), ("delta", np.float32), ("kind", np.int8)])


@pytest.fixture()
def checked_file(tmp_path):
    rng = np.random.default_rng(5)
    path = tmp_path / "checked.h5"
    with h5py.File(path, "w") as h5:
        h5.create_group("meta").attrs.update({"study_id": "abc", "n_bootstrap": 1000, "seed": 7})
        grp = h5.create_group("focus/3")
        create_checked(grp, "boot_p", rng.random(5000).astype(np.float32), compression="gzip", compression_opts=4,
                       shuffle=True, track_times=False)
        create_checked(grp, "gene_i", rng.integers(0, 2000, 300).astype(np.int32))
        metrics = np.zeros(1, dtype=ROW)
        for name in ROW.names:
            metrics[name] = rng.integers(1, 100)
        create_checked(grp, "network/metrics", metrics)
        partners = np.zeros(40, dtype=PARTNER)
        partners["gene"], partners["delta"] = np.arange(40), rng.standard_normal(40)
        create_checked(grp, "network/partners", partners)
        create_checked(grp, "network/top_rewired", np.zeros(0, dtype=PARTNER))
        create_checked(grp, "n_tests", np.int64(1999000))
        create_checked(h5, "gene_names", [f"g{i}" for i in range(50)], dtype=h5py.string_dtype())
    return path


NUMERIC = ("focus/3/boot_p", "focus/3/gene_i", "focus/3/network/metrics", "focus/3/network/partners")


def test_a_sound_file_has_no_problems(checked_file):
    assert verify_h5(checked_file) == []


@pytest.mark.parametrize("dataset", NUMERIC)
def test_a_flipped_byte_names_its_dataset_alone(checked_file, tmp_path, dataset):
    damaged = tmp_path / "damaged.h5"
    shutil.copy(checked_file, damaged)
    flip_chunk(damaged, dataset)
    with h5py.File(damaged, "r") as h5, pytest.raises(OSError):  # the independent check: h5py's own read fails
        h5[dataset][()]
    problems = verify_h5(damaged)
    assert len(problems) == 1 and problems[0].startswith(f"{dataset}: "), problems


def test_changed_text_is_named_by_its_digest(checked_file):
    with h5py.File(checked_file, "r+") as h5:
        h5["gene_names"][7] = "not-g7"
    assert verify_h5(checked_file) == ["gene_names: its text does not match its digest"]


def test_a_file_that_is_not_hdf5_cannot_be_opened(tmp_path):
    path = tmp_path / "junk.h5"
    path.write_bytes(b"not an HDF5 file" * 100)
    problems = verify_h5(path)
    assert len(problems) == 1 and problems[0].startswith("cannot open: ")


def test_read_meta_reads_all_or_only_the_keys_asked(checked_file):
    assert read_meta(checked_file) == {"study_id": "abc", "n_bootstrap": 1000, "seed": 7}
    assert read_meta(checked_file, ("study_id",)) == {"study_id": "abc"}
    assert read_meta(checked_file, ("scope_id", "seed")) == {"seed": 7}  # a key the file lacks is left out
    assert TEXT_DIGEST not in read_meta(checked_file)


def test_verify_files_in_processes_gives_each_file_its_own_problems_in_order(checked_file, tmp_path, monkeypatch):
    from bootgpu.study import integrity

    files = []
    for k in range(6):
        path = tmp_path / f"copy-{k}.h5"
        shutil.copy(checked_file, path)
        files.append(path)
    flip_chunk(files[1], "focus/3/gene_i")
    flip_chunk(files[4], "focus/3/network/metrics")
    serial = integrity.verify_files(files, processes=1)
    assert [bool(p) for p in serial] == [False, True, False, False, True, False]
    assert serial[1][0].startswith("focus/3/gene_i: ") and serial[4][0].startswith("focus/3/network/metrics: ")
    import concurrent.futures

    started = []

    class Pool(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, processes, **kwargs):
            started.append(processes)
            super().__init__(processes, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(integrity, "PARALLEL_VERIFY_MIN", 2)
    monkeypatch.setattr(integrity, "FILES_A_PROCESS", 1)
    assert integrity.verify_files(files, processes=2) == serial and started == [2]
    monkeypatch.setattr(integrity, "FILES_A_PROCESS", 64)  # 6 files: not worth a second process
    assert integrity.verify_files(files, processes=2) == serial and started == [2]
