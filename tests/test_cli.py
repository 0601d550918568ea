"""The command line: results layout, shards + merge equal one run, and every bad input is one
line on stderr, exit code 2, and no output left behind."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from bootgpu.cli import main
from bootgpu.expression_io import read_expression
from bootgpu.results_io import EDGE_DATASETS, FOCUS_ATTRS

FAST = ["--n-bootstrap", "20", "--fdr-alpha", "0.2"]


@pytest.fixture(scope="module")
def small_tsv(tmp_path_factory, write_demo_tsv):
    """60 demo genes x all 128 samples as a TSV."""
    return write_demo_tsv(tmp_path_factory.mktemp("data") / "small.tsv", 60)


def _run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_writes_documented_layout(small_tsv, tmp_path, capsys):
    out = tmp_path / "res"
    code, stdout, _ = _run(["run", "--expr", str(small_tsv), "--out", str(out), "--focus", "#0:3", "--backend", "numpy", *FAST], capsys)
    assert code == 0
    assert "Top rewiring hubs" in stdout
    assert stdout.splitlines()[-1].startswith(f"next: bootgpu report {out}")  # what to run next, last
    assert sorted(p.name for p in out.iterdir()) == ["finished.json", "network_summary.tsv", "results.h5", "rewiring_hubs.tsv", "study.json"]
    with h5py.File(out / "results.h5") as h5:
        meta = h5["meta"].attrs
        for key in ("bootgpu_version", "backend", "device", "n_genes", "n_samples", "low_frac", "high_frac",
                    "n_bootstrap", "bootstrap_frac", "seed", "fdr_alpha", "ci_alpha", "edge_selection", "rng_algorithm",
                    "results_format", "study_id", "values_sha256", "gene_names_sha256", "sample_names_sha256",
                    "n_focus", "focus_sha256", "min_effect", "corr_threshold", "ci_filter", "store"):
            assert key in meta, key
        assert meta["n_genes"] == 60 and meta["n_bootstrap"] == 20 and meta["results_format"] == 5
        assert all(np.ndim(v) == 0 for v in meta.values())  # lists are datasets, never attributes
        assert h5["study_focus"][()].tolist() == [0, 1, 2]
        record = json.loads((out / "study.json").read_text())
        assert record["focus"] == [0, 1, 2] and record["study_id"] == meta["study_id"]
        assert list(h5["focus"]) == ["0", "1", "2"]
        assert h5["gene_names"].shape == (60,) and h5["sample_names"].shape == (128,)
        for name in h5["focus"]:
            grp = h5["focus"][name]
            assert set(FOCUS_ATTRS) <= set(grp.attrs)
            assert grp["low_samples"].dtype == np.int32 and grp["low_samples"].shape == (grp.attrs["k_low"],)
            n_edges = grp["gene_i"].shape[0]
            assert n_edges == grp.attrs["n_sig_diff"]
            for key in EDGE_DATASETS:
                assert grp[key].shape == (n_edges,), key
            assert np.all(grp["gene_i"][()] < grp["gene_j"][()])
            assert list(grp["change"].attrs["labels"]) == [b"subthreshold", b"disappear", b"new", b"sign_change",
                                                           b"strengthen", b"weaken"] or list(
                grp["change"].attrs["labels"]) == ["subthreshold", "disappear", "new", "sign_change", "strengthen", "weaken"]
            net = grp["network"]
            metrics = net["metrics"][0]
            robust = (grp["ci_low"][()] > 0) | (grp["ci_high"][()] < 0)
            assert metrics["n_kept"] == robust.sum() == grp.attrs["n_robust"] == metrics["diff_n_edges"]
            stored = json.loads(net["metrics"].attrs["json"])  # the fast copy merge and the API read
            assert list(stored) == list(metrics.dtype.names)
            assert all(stored[k] == metrics[k] or (np.isnan(stored[k]) and np.isnan(metrics[k])) for k in stored)
            for which in ("low", "high", "diff"):
                assert net[f"degree_{which}"].shape == (60,) and net[f"degree_{which}"][()].sum() == 2 * metrics[f"{which}_n_edges"]
    hubs = (out / "rewiring_hubs.tsv").read_text().splitlines()
    assert hubs[0].split("\t")[:4] == ["rank", "gene_idx", "gene_id", "n_tests"]
    assert len(hubs) == 4
    summary = (out / "network_summary.tsv").read_text().splitlines()
    assert summary[0].split("\t")[:4] == ["gene_idx", "gene_id", "n_selected", "n_kept"] and len(summary) == 4


def _read_all(path):
    """{focus gene: (attrs, {dataset path: values})}, nested groups (network) included."""
    def datasets(grp):
        out = {}
        grp.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        return out

    with h5py.File(path) as h5:
        return {name: ({k: h5["focus"][name].attrs[k] for k in h5["focus"][name].attrs}, datasets(h5["focus"][name]))
                for name in h5["focus"]}


def test_shards_then_merge_equal_one_run(small_tsv, tmp_path, capsys):
    common = ["--expr", str(small_tsv), "--focus", "#0:7", "--backend", "numpy", *FAST]
    assert _run(["run", "--out", str(tmp_path / "one"), *common], capsys)[0] == 0
    for k in (1, 2, 3):
        assert _run(["run", "--out", str(tmp_path / "split"), "--shard", f"{k}/3", *common], capsys)[0] == 0
    assert not (tmp_path / "split" / "results.h5").exists()
    assert _run(["merge", str(tmp_path / "split")], capsys)[0] == 0
    one, split = _read_all(tmp_path / "one" / "results.h5"), _read_all(tmp_path / "split" / "results.h5")
    assert list(one) == list(split) == [str(g) for g in range(7)]
    for name in one:
        assert one[name][0] == split[name][0]
        for key, value in one[name][1].items():
            other = split[name][1][key]  # byte for byte (NaN-safe, compound rows included)
            assert value.dtype == other.dtype and value.tobytes() == other.tobytes(), (name, key)
    assert (tmp_path / "one" / "rewiring_hubs.tsv").read_text() == (tmp_path / "split" / "rewiring_hubs.tsv").read_text()


def test_merge_reports_missing_shard(small_tsv, tmp_path, capsys):
    common = ["--expr", str(small_tsv), "--focus", "#0:4", "--backend", "numpy", *FAST]
    assert _run(["run", "--out", str(tmp_path), "--shard", "1/2", *common], capsys)[0] == 0
    code, _, err = _run(["merge", str(tmp_path)], capsys)
    assert code == 2 and "missing shards 2 of 2" in err and err.count("\n") == 1


def _write(path, text, gz=False):
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def _matrix_text(n_genes=24, n_samples=20, seed=0):
    rng = np.random.default_rng(seed)
    rows = ["gene\t" + "\t".join(f"s{j:02d}" for j in range(n_samples))]
    for g in range(n_genes):
        rows.append(f"g{g}\t" + "\t".join(f"{v:.4f}" for v in rng.standard_normal(n_samples)))
    return "\n".join(rows) + "\n"


def _with_cell(gene: int, column: int, text: str) -> str:
    """The test matrix with the cell of gene ``gene``, sample column ``column`` (1-based) replaced."""
    lines = _matrix_text().splitlines()
    cells = lines[gene + 1].split("\t")
    cells[column] = text
    lines[gene + 1] = "\t".join(cells)
    return "\n".join(lines) + "\n"


BAD_CASES = {
    "missing_file": (lambda d: d / "nope.tsv", [], "nope.tsv"),
    "empty_file": (lambda d: _write(d / "empty.tsv", ""), [], "empty.tsv"),
    "text_in_number": (lambda d: _write(d / "t.tsv", _with_cell(1, 3, "abc")), [], "'g1', sample 's02'"),
    "nan_value": (lambda d: _write(d / "n.tsv", _with_cell(2, 2, "NaN")), [], "g2"),
    "gzip_text_in_number": (lambda d: _write(d / "t.tsv.gz", _with_cell(4, 5, "1.2.3"), gz=True), [], "g4"),
    "duplicate_gene": (lambda d: _write(d / "dup.tsv", _matrix_text().replace("g3\t", "g1\t")), [], "g1"),
    "too_few_samples_in_group": (lambda d: _write(d / "few.tsv", _matrix_text(n_samples=12)), [], "LOW group has 2 samples"),
    "fraction_out_of_range": (lambda d: _write(d / "f.tsv", _matrix_text()), ["--low-frac", "1.5"], "--low-frac"),
    "unknown_focus_gene": (lambda d: _write(d / "u.tsv", _matrix_text()), ["--focus", "g1,BRCA1"], "BRCA1"),
    "focus_index_out_of_range": (lambda d: _write(d / "i.tsv", _matrix_text()), ["--focus", "#99"], "#99"),
    "focus_number_not_an_id": (lambda d: _write(d / "n.tsv", _matrix_text()), ["--focus", "7"], "write #7"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_one_line_exit_2_no_output(case, tmp_path, capsys):
    make, extra, needle = BAD_CASES[case]
    path = make(tmp_path)
    out = tmp_path / "out"
    code, stdout, err = _run(["run", "--expr", str(path), "--out", str(out), "--backend", "numpy", *extra], capsys)
    assert code == 2
    assert err.startswith("bootgpu: error: ") and err.count("\n") == 1, err
    assert needle in err
    assert not out.exists()


def test_cupy_backend_without_device_fails_in_one_line(tmp_path):
    from bootgpu.backends.cupy_backend import cupy_unusable_reason

    if cupy_unusable_reason() is None:
        pytest.skip("a CUDA device is usable here; the error path needs a machine without one")
    proc = subprocess.run([sys.executable, "-m", "bootgpu", "run", "--demo", "--out", str(tmp_path / "o"), "--backend", "cupy"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--backend cupy is not usable" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_convert_writes_original_layout(small_tsv, tmp_path, capsys):
    target = tmp_path / "expression.h5"
    assert _run(["convert", "--expr", str(small_tsv), "--out", str(target)], capsys)[0] == 0
    with h5py.File(target) as h5:
        assert h5["expr"].dtype == np.float32 and h5["expr"].shape == (60, 128)
    back = read_expression(target)
    src = read_expression(small_tsv)
    assert back.gene_names == src.gene_names and back.sample_names == src.sample_names
    np.testing.assert_array_equal(back.values, src.values.astype(np.float32))


def test_hdf5_input_gives_same_results_as_text(small_tsv, tmp_path, capsys):
    """The analysis reads float64 from text and float32 from HDF5; ranks see the same order."""
    target = tmp_path / "expression.h5"
    _run(["convert", "--expr", str(small_tsv), "--out", str(target)], capsys)
    for name, src in (("txt", small_tsv), ("h5", target)):
        assert _run(["run", "--expr", str(src), "--out", str(tmp_path / name), "--focus", "#0", "--backend", "numpy", *FAST], capsys)[0] == 0
    a, b = _read_all(tmp_path / "txt" / "results.h5"), _read_all(tmp_path / "h5" / "results.h5")
    assert a["0"][0] == b["0"][0]


def test_info_lists_backends(capsys):
    code, stdout, _ = _run(["info"], capsys)
    assert code == 0 and "numpy" in stdout and "cupy" in stdout and "auto picks" in stdout


def test_console_script_entry_point_runs_demo_subset(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bootgpu", "run", "--demo", "--focus", "#0", "--n-bootstrap", "10",
                           "--out", str(tmp_path / "demo"), "--backend", "auto"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "backend auto: using" in proc.stderr
    assert "Top rewiring hubs" in proc.stdout
