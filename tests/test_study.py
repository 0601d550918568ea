"""Whole studies through the command line: a study directory is only ever continued by the same
study (identity: input, parameters, focus genes), resumes byte for byte, scales past HDF5's
attribute limit, and `--focus` means gene ids first."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

import bootgpu.study.run as study_module
from bootgpu.cli import main
from bootgpu.results_schema import FocusResult, empty_edges

# --processes 1: these tests replace the engine in this process (worker processes are tests/test_workers.py's)
FAST = ["--n-bootstrap", "20", "--fdr-alpha", "0.2", "--backend", "numpy", "--processes", "1"]


@pytest.fixture(scope="module")
def expr_tsv(tmp_path_factory, write_demo_tsv):
    return write_demo_tsv(tmp_path_factory.mktemp("data") / "expr.tsv", 40)


def _run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if not line.startswith("bootgpu: warning:")]
    return code, captured.out, "\n".join(err) + ("\n" if err else "")


def _snapshot(root):
    """Every file under ``root`` with the SHA-256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


class CountingEngine:
    """Wraps the study's analyse_focus: counts calls, and raises KeyboardInterrupt (as Ctrl-C or
    a killed job would stop a run) once ``stop_after`` focus genes are done."""

    def __init__(self, monkeypatch, stop_after=None):
        self.calls, self.stop_after, self.real = 0, stop_after, study_module.analyse_focus
        monkeypatch.setattr(study_module, "analyse_focus", self)

    def __call__(self, *args, **kwargs):
        if self.stop_after is not None and self.calls >= self.stop_after:
            raise KeyboardInterrupt
        self.calls += 1
        return self.real(*args, **kwargs)


def _interrupted(monkeypatch, capsys, args, after):
    engine = CountingEngine(monkeypatch, stop_after=after)
    code, _, err = _run(args, capsys)
    assert code == 130 and "stopped by Ctrl-C" in err and "the same command resumes" in err
    monkeypatch.setattr(study_module, "analyse_focus", engine.real)


def test_identical_command_resumes_and_equals_an_uninterrupted_run_byte_for_byte(expr_tsv, tmp_path, capsys, monkeypatch):
    args = ["run", "--expr", str(expr_tsv), "--focus", "#0:5", *FAST]
    assert _run([*args, "--out", str(tmp_path / "whole")], capsys)[0] == 0
    _interrupted(monkeypatch, capsys, [*args, "--out", str(tmp_path / "resumed")], after=3)
    assert len(list((tmp_path / "resumed" / "parts").iterdir())) == 3
    engine = CountingEngine(monkeypatch)
    code, _, err = _run([*args, "--out", str(tmp_path / "resumed")], capsys)
    assert code == 0 and "resuming: 3 of 5 focus genes already done" in err
    assert engine.calls == 2 and "done: 2 focus genes computed" in err and "3 reused" in err
    for name in ("results.h5", "rewiring_hubs.tsv"):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "resumed" / name).read_bytes(), name
    assert not (tmp_path / "resumed" / "parts").exists()


@pytest.mark.parametrize("change, message", [
    (["--n-bootstrap", "50", "--seed", "7"], "holds a study with n_bootstrap 20, not 50"),
    (["--fdr-alpha", "0.1"], "holds a study with fdr_alpha 0.2, not 0.1"),
    (["--focus", "#1:6"], "holds a study with other focus genes (5 genes, not these 5)"),  # #0 dropped
])  # fmt: skip
def test_resume_with_other_parameters_is_refused_before_computing(expr_tsv, tmp_path, capsys, monkeypatch, change, message):
    out = tmp_path / "study"
    args = ["run", "--expr", str(expr_tsv), "--out", str(out), "--focus", "#0:5", *FAST]
    _interrupted(monkeypatch, capsys, args, after=2)
    before = _snapshot(out)
    engine = CountingEngine(monkeypatch)
    code, stdout, err = _run([*args, *change], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert "use another --out, or --overwrite to discard it" in err
    assert engine.calls == 0 and _snapshot(out) == before


def test_a_study_grows_by_more_focus_genes_reusing_every_finished_one(expr_tsv, tmp_path, capsys, monkeypatch):
    """The identity names the analysis, the focus list its scope: more focus genes with the same
    options reuse every finished focus gene (of a finished study, and of an interrupted one) and
    compute only the new ones; the results equal a fresh study of all of them."""
    from snapshots import study_files

    fresh = tmp_path / "fresh"
    assert _run(["run", "--expr", str(expr_tsv), "--out", str(fresh), "--focus", "#0:7", *FAST], capsys)[0] == 0
    out = tmp_path / "study"
    base = ["run", "--expr", str(expr_tsv), "--out", str(out), *FAST]
    assert _run([*base, "--focus", "#0:3"], capsys)[0] == 0  # finished with 3
    _interrupted(monkeypatch, capsys, [*base, "--focus", "#0:5"], after=1)  # grown to 5, stopped after one more
    engine = CountingEngine(monkeypatch)
    code, _, err = _run([*base, "--focus", "#0:7"], capsys)
    assert code == 0, err
    assert engine.calls == 3  # only #4, #5, #6: #0-#3 are reused
    assert "the study grows by 2 focus genes (5 finished or under way are kept)" in err
    assert study_files(out) == study_files(fresh)
    code, _, err = _run([*base, "--focus", "#1:7"], capsys)  # fewer: another study
    assert code == 2 and "other focus genes" in err


def test_resume_with_another_input_is_refused(expr_tsv, tmp_path, capsys, monkeypatch, write_demo_tsv):
    out = tmp_path / "study"
    args = ["--out", str(out), "--focus", "#0:5", *FAST]
    _interrupted(monkeypatch, capsys, ["run", "--expr", str(expr_tsv), *args], after=2)
    before = _snapshot(out)
    edited = tmp_path / "edited.tsv"
    lines = expr_tsv.read_text().splitlines()
    cells = lines[7].split("\t")
    cells[9] = "9.5"
    lines[7] = "\t".join(cells)
    edited.write_text("\n".join(lines) + "\n")
    smaller = write_demo_tsv(tmp_path / "smaller.tsv", 30)
    engine = CountingEngine(monkeypatch)
    for other, message in ((edited, "another input (its expression values differ"),
                           (smaller, "an input of 40 genes x 128 samples, not 30 x 128")):  # fmt: skip
        code, _, err = _run(["run", "--expr", str(other), *args], capsys)
        assert code == 2 and err.count("\n") == 1 and message in err, err
    assert engine.calls == 0 and _snapshot(out) == before


def test_overwrite_discards_the_study(expr_tsv, tmp_path, capsys, monkeypatch):
    out = tmp_path / "study"
    args = ["run", "--expr", str(expr_tsv), "--focus", "#0:4", *FAST]
    _interrupted(monkeypatch, capsys, [*args, "--out", str(out)], after=2)
    (out / "notes.txt").write_text("mine")  # not the study's: left alone
    code, _, err = _run([*args, "--out", str(out), "--seed", "7", "--overwrite"], capsys)
    assert code == 0 and "--overwrite: discarded the study" in err
    assert _run([*args, "--out", str(tmp_path / "fresh"), "--seed", "7"], capsys)[0] == 0
    assert (out / "results.h5").read_bytes() == (tmp_path / "fresh" / "results.h5").read_bytes()
    assert (out / "notes.txt").read_text() == "mine"
    with h5py.File(out / "results.h5") as h5:
        assert h5["meta"].attrs["seed"] == 7


def test_finished_study_is_left_alone(expr_tsv, tmp_path, capsys, monkeypatch):
    out = tmp_path / "study"
    args = ["run", "--expr", str(expr_tsv), "--out", str(out), "--focus", "#0:3", *FAST]
    assert _run(args, capsys)[0] == 0
    before = _snapshot(out)
    engine = CountingEngine(monkeypatch)
    code, stdout, err = _run(args, capsys)
    assert code == 0 and "the study (3 focus genes) is already complete" in err and engine.calls == 0
    assert "Top rewiring hubs" in stdout and _snapshot(out) == before
    code, _, err = _run([*args, "--n-bootstrap", "30"], capsys)  # FAST's 20 is overridden: another study
    assert code == 2 and "n_bootstrap 20, not 30" in err and _snapshot(out) == before


def test_out_must_be_given_and_be_a_directory(expr_tsv, tmp_path, capsys):
    code, _, err = _run(["run", "--expr", str(expr_tsv), "--focus", "#0", *FAST], capsys)
    assert code == 2 and err.count("\n") == 1 and "needs --out DIR" in err
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    code, _, err = _run(["run", "--expr", str(expr_tsv), "--out", str(target), "--focus", "#0", *FAST], capsys)
    assert code == 2 and err.count("\n") == 1 and "is a file, not a directory" in err
    assert target.read_text() == "keep me"


def test_results_without_a_study_record_are_not_reused(expr_tsv, tmp_path, capsys):
    out = tmp_path / "old"
    (out / "parts").mkdir(parents=True)
    (out / "parts" / "focus-000000.h5").write_bytes(b"made by an older bootgpu")
    code, _, err = _run(["run", "--expr", str(expr_tsv), "--out", str(out), "--focus", "#0", *FAST], capsys)
    assert code == 2 and "without a study record" in err and "--overwrite" in err


def test_a_part_of_another_study_is_refused(expr_tsv, tmp_path, capsys, monkeypatch):
    """study.json matches, but a part file was copied in from another study (another seed)."""
    args = ["run", "--expr", str(expr_tsv), "--focus", "#0:3", *FAST]
    _interrupted(monkeypatch, capsys, [*args, "--out", str(tmp_path / "a")], after=1)
    _interrupted(monkeypatch, capsys, [*args, "--out", str(tmp_path / "b"), "--seed", "9"], after=2)
    foreign = tmp_path / "b" / "parts" / "focus-000001.h5"
    (tmp_path / "a" / "parts" / foreign.name).write_bytes(foreign.read_bytes())
    engine = CountingEngine(monkeypatch)
    code, _, err = _run([*args, "--out", str(tmp_path / "a")], capsys)
    assert code == 2 and "focus-000001.h5: this part belongs to another study (seed 9, not 42)" in err
    assert engine.calls == 0

    # the finish checks each part open, as it reads it: the same verdict and words as by its path
    from bootgpu.errors import BootgpuError
    from bootgpu.study.directory import check_file_identity, recorded_identity
    from bootgpu.study.layout import StudyLayout

    identity = recorded_identity(StudyLayout(tmp_path / "a"))[0]
    part = tmp_path / "a" / "parts" / foreign.name
    for opened in (False, True):
        with h5py.File(part, "r") as h5, pytest.raises(BootgpuError) as refused:
            check_file_identity(h5 if opened else part, identity, "part")
        assert str(refused.value).startswith(f"{part}: this part belongs to another study (seed 9, not 42)")
    with h5py.File(tmp_path / "a" / "parts" / "focus-000000.h5", "r") as h5:
        check_file_identity(h5, identity, "part")  # its own part passes


# --- gene ids ----------------------------------------------------------------------------------

def _numeric_ids_tsv(path, n_genes=24, n_samples=20):
    """Entrez-style numeric gene ids, in an order where id and row index disagree."""
    rng = np.random.default_rng(3)
    ids = [str(i) for i in (1014, 2, 11, 7, *range(5000, 5000 + n_genes - 4))]
    lines = ["gene\t" + "\t".join(f"s{j}" for j in range(n_samples))]
    lines += [ids[g] + "\t" + "\t".join(f"{v:.5f}" for v in rng.standard_normal(n_samples)) for g in range(n_genes)]
    path.write_text("\n".join(lines) + "\n")
    return path, ids


def test_focus_tokens_are_gene_ids_first(tmp_path):
    from bootgpu.expression_io import read_expression
    from bootgpu.study.directory import parse_focus

    path, ids = _numeric_ids_tsv(tmp_path / "entrez.tsv")
    expr = read_expression(path)
    assert parse_focus("1014", expr) == [0]  # an id, though 1014 is past the last row
    assert parse_focus("7", expr) == [3]  # gene "7" is row 3
    assert parse_focus("#7", expr) == [7] and parse_focus("#2:4,11", expr) == [2, 3]
    assert parse_focus("#:2", expr) == [0, 1] and parse_focus("#22:", expr) == [22, 23]
    assert parse_focus("all", expr) == list(range(24))
    (tmp_path / "focus.txt").write_text("7\n#0\n5003\t11\n")
    assert parse_focus(f"@{tmp_path / 'focus.txt'}", expr) == [3, 0, 7, 2]


@pytest.mark.parametrize("spec, message", [
    ("8", "no gene has the id '8'; for row 8 (0-based) write #8"),
    ("0:3", "no gene has the id '0:3'; for a range of rows write #0:3"),
    ("#24", "row #24 is out of range (the matrix has 24 genes, #0 to #23)"),
    ("#3:30", "rows #3:30 are outside #0:24"),
    ("1015", "no gene has the id '1015' (closest: 5015, 1014, 11)"),
])  # fmt: skip
def test_focus_token_that_matches_nothing_says_what_would(tmp_path, capsys, spec, message):
    path, _ = _numeric_ids_tsv(tmp_path / "entrez.tsv")
    code, _, err = _run(["run", "--expr", str(path), "--out", str(tmp_path / "o"), "--focus", spec, *FAST], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "o").exists()


def test_closest_gene_ids_are_suggested(expr_tsv):
    from bootgpu.errors import BootgpuError
    from bootgpu.expression_io import read_expression
    from bootgpu.study.directory import parse_focus

    expr = read_expression(expr_tsv)
    wrong = expr.gene_names[5][:-1] + "x"
    with pytest.raises(BootgpuError, match=rf"closest: {expr.gene_names[5]}"):
        parse_focus(wrong, expr)


# --- orientation ------------------------------------------------------------------------------

def _transpose_tsv(src, dst):
    rows = [line.split("\t") for line in src.read_text().splitlines()]
    dst.write_text("\n".join("\t".join(col) for col in zip(*rows)) + "\n")
    return dst


def test_samples_in_rows_gives_the_transposed_matrix_results(expr_tsv, tmp_path, capsys):
    from bootgpu.expression_io import read_expression, write_expression_h5

    flipped = _transpose_tsv(expr_tsv, tmp_path / "samples_x_genes.tsv")
    args = ["--focus", "#0:3", *FAST]
    assert _run(["run", "--expr", str(expr_tsv), "--out", str(tmp_path / "genes"), *args], capsys)[0] == 0
    code, _, err = _run(["run", "--expr", str(flipped), "--samples-in-rows", "--out", str(tmp_path / "flip"), *args], capsys)
    assert code == 0, err
    assert (tmp_path / "genes" / "results.h5").read_bytes() == (tmp_path / "flip" / "results.h5").read_bytes()
    # HDF5 with /expr stored samples x genes
    expr = read_expression(expr_tsv)
    h5_path = tmp_path / "samples_x_genes.h5"
    write_expression_h5(expr, tmp_path / "genes.h5")
    with h5py.File(tmp_path / "genes.h5") as src, h5py.File(h5_path, "w") as dst:
        dst["expr"] = src["expr"][()].T
        for key in ("gene_names", "sample_names"):
            dst.create_dataset(key, data=src[key][()], dtype=h5py.string_dtype())
    back = read_expression(h5_path, samples_in_rows=True)
    assert back.gene_names == expr.gene_names and back.sample_names == expr.sample_names
    np.testing.assert_array_equal(back.values, expr.values.astype(np.float32))
    code, _, err = _run(["run", "--expr", str(h5_path), "--out", str(tmp_path / "h5"), *args], capsys)
    assert code == 2 and "expected (40, 128)" in err  # without the option the shape says what is wrong


def test_transposed_input_is_warned_about(expr_tsv, tmp_path, capsys):
    plan = ["plan", "--backend", "numpy"]
    assert main([*plan, "--expr", str(expr_tsv)]) == 0  # 40 genes x 128 samples: more samples than genes
    err = capsys.readouterr().err
    assert "bootgpu: warning:" in err and "more samples (128) than genes (40)" in err and "--samples-in-rows" in err
    flipped = _transpose_tsv(expr_tsv, tmp_path / "samples_x_genes.tsv")
    geo = tmp_path / "geo.tsv"  # 128 rows of GEO sample ids x 40 genes
    lines = flipped.read_text().splitlines()
    geo.write_text("\n".join([lines[0]] + [f"GSM{100 + i}\t" + line.split("\t", 1)[1] for i, line in enumerate(lines[1:])]) + "\n")
    assert main([*plan, "--expr", str(geo)]) == 0
    err = capsys.readouterr().err
    assert "row ids look like sample ids ('GSM100'" in err and "--samples-in-rows" in err
    assert main([*plan, "--expr", str(geo), "--samples-in-rows"]) == 0  # the user has said how it is stored
    assert "warning" not in capsys.readouterr().err


# --- scale --------------------------------------------------------------------------------------

def _fake_result(focus, n_genes):
    """A small, valid result standing in for the engine (see the scale tests' docstrings)."""
    edges = empty_edges()
    j = (focus + 1) % n_genes
    edges.update(gene_i=np.array([min(focus, j)], np.int32), gene_j=np.array([max(focus, j)], np.int32),
                 change=np.array([2], np.int8), robust=np.array([True]))  # fmt: skip
    for key in edges:
        if edges[key].dtype == np.float32:
            edges[key] = np.array([0.5], np.float32)
    attrs = dict(k_low=4, k_high=4, n_tests=10, n_nan=0, n_sig_low=0, n_sig_high=1, n_sig_diff=1, n_sig_edges=1, n_robust=1)
    return FocusResult(focus, attrs, np.arange(4, dtype=np.int32), np.arange(4, 8, dtype=np.int32), edges)


def _big_h5(path, n_genes, n_samples=10):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["expr"] = rng.standard_normal((n_genes, n_samples)).astype(np.float32)
        f.create_dataset("gene_names", data=[str(100000 + g) for g in range(n_genes)], dtype=h5py.string_dtype())
        f.create_dataset("sample_names", data=[f"S{s}" for s in range(n_samples)], dtype=h5py.string_dtype())
    return path


def test_forty_thousand_focus_genes_through_run_and_status(tmp_path, capsys, monkeypatch):
    """40,001 focus genes: version 1 kept the focus list as an HDF5 attribute, which HDF5 refuses
    past 16,383 int32 values, in every part and shard.

    The engine is replaced by a stub: one real focus gene of a 40,001-gene matrix is 800 M gene
    pairs (minutes on 2 cores), and what is tested here is the study's bookkeeping through the
    command line: study record, parts, shard files and status.
    """
    n_genes, tasks = 40_001, 10_000
    expr = _big_h5(tmp_path / "big.h5", n_genes)
    monkeypatch.setattr(study_module, "analyse_focus", lambda backend, e, focus, *a: _fake_result(focus, n_genes))
    out = tmp_path / "study"
    common = ["--expr", str(expr), "--out", str(out), "--low-frac", "0.4", "--high-frac", "0.4", *FAST]
    for k in (1, tasks):
        code, _, err = _run(["run", *common, "--shard", f"{k}/{tasks}"], capsys)
        assert code == 0, err
    first, last = out / "shards" / f"shard-0001-of-{tasks}.h5", out / "shards" / f"shard-{tasks}-of-{tasks}.h5"
    with h5py.File(first) as h5, h5py.File(last) as h5_last:
        assert list(h5["focus"]) == ["0", "10000", "20000", "30000", "40000"] and list(h5_last["focus"]) == ["9999", "19999", "29999", "39999"]
        assert "study_focus" not in h5 and all(np.ndim(v) == 0 for v in h5["meta"].attrs.values())
        assert h5["meta"].attrs["n_focus"] == n_genes and h5["meta"].attrs["shard"] == f"1/{tasks}"
    assert json.loads((out / "study.json").read_text())["focus"] == list(range(n_genes))
    code, stdout, _ = _run(["status", str(out)], capsys)
    assert code == 0 and f"9 of {n_genes} focus genes done (0%), 2 of {tasks} shards written" in stdout
    assert "9998 tasks not started" in stdout and len(stdout.splitlines()) < 20


def _clone_shards():
    """``scripts/bench_merge.clone_shards``: shard files of a large study made by copying one real
    focus group (HDF5 object copy, milliseconds a gene) instead of computing each."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "bench_merge.py"
    spec = importlib.util.spec_from_file_location("bench_merge", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.clone_shards


@pytest.mark.slow
def test_merge_of_twenty_thousand_focus_genes(expr_tsv, tmp_path, capsys):
    template = tmp_path / "template"
    assert _run(["run", "--expr", str(expr_tsv), "--out", str(template), "--focus", "#0", *FAST], capsys)[0] == 0
    out, n_focus = tmp_path / "study", 20_001
    _clone_shards()(out, n_focus, 3, template / "results.h5")
    code, stdout, _ = _run(["status", str(out)], capsys)
    assert code == 0 and f"{n_focus} of {n_focus} focus genes done (100%), 3 of 3 shards written" in stdout
    code, stdout, err = _run(["merge", str(out)], capsys)
    assert code == 0, err
    assert f"merged {n_focus} focus genes" in stdout
    with h5py.File(out / "results.h5") as h5, h5py.File(template / "results.h5") as ref:
        assert h5["study_focus"][()].tolist() == list(range(n_focus)) and len(h5["focus"]) == n_focus
        for key in ("gene_i", "r_high", "boot_p"):
            assert np.array_equal(h5[f"focus/20000/{key}"][()], ref[f"focus/0/{key}"][()])
    hubs = (out / "rewiring_hubs.tsv").read_text().splitlines()
    assert len(hubs) == n_focus + 1 and hubs[1].split("\t")[:2] == ["1", "0"]  # rank 1: ties by gene index
    summary = (out / "network_summary.tsv").read_text().splitlines()
    assert len(summary) == n_focus + 1 and summary[-1].split("\t")[0] == str(n_focus - 1)


def test_merge_refuses_a_shard_of_another_study(expr_tsv, tmp_path, capsys):
    out, other = tmp_path / "study", tmp_path / "other"
    common = ["--expr", str(expr_tsv), "--focus", "#0:4", *FAST]
    assert _run(["run", *common, "--out", str(out), "--shard", "1/2"], capsys)[0] == 0
    assert _run(["run", *common, "--out", str(other), "--shard", "2/2", "--seed", "3"], capsys)[0] == 0
    shard = "shards/shard-0002-of-0002.h5"
    (out / shard).write_bytes((other / shard).read_bytes())
    code, stdout, _ = _run(["status", str(out)], capsys)
    assert code == 0 and "2 of 4 focus genes done" in stdout and "not this study's" in stdout and "seed 3, not 42" in stdout
    code, _, err = _run(["merge", str(out)], capsys)
    assert code == 2 and "shard-0002-of-0002.h5: this shard belongs to another study (seed 3, not 42)" in err
    assert not (out / "results.h5").exists()


def test_merge_and_status_load_no_compute_code():
    """`bootgpu merge` and `status` read results through ``results_schema`` and ``study``: in a fresh
    interpreter, importing them loads neither the pipeline, the core nor a backend."""
    code = ("import sys, bootgpu.study, bootgpu.results_io, bootgpu.hubs, bootgpu.study.layout, bootgpu.cluster.progress, bootgpu.cluster.status; "
            "print(sorted(m for m in sys.modules if m.startswith(('bootgpu.core', 'bootgpu.pipeline', "
            "'bootgpu.backends', 'bootgpu.planner', 'bootgpu.networks'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout
