"""Tests for bootgpu.expression_io and bootgpu.atomic."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from bootgpu.atomic import atomic_path, atomic_write_text
from bootgpu.errors import BootgpuError
from bootgpu.expression_io import (
    Expression,
    demo_expression_path,
    read_expression,
    write_expression_h5,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "all_leukemia.tsv.gz"
needs_shared = pytest.mark.requires("shared-data")

GENES = ("g1", "g2", "g3")
SAMPLES = ("007", "010", "s3")
VALUES = np.array([[1.5, 2.25, -3.0], [4.0, 5.125, 6.0], [7.0, 8.0, 9.5e-3]])


def write_table(path: Path, rows: list[list[str]], delim: str = "\t", gz: bool = False) -> Path:
    text = "".join(delim.join(r) + "\n" for r in rows)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def good_rows() -> list[list[str]]:
    rows = [["gene", *SAMPLES]]
    rows += [[g, *(repr(float(v)) for v in vals)] for g, vals in zip(GENES, VALUES)]
    return rows


def assert_expected(expr: Expression) -> None:
    assert expr.gene_names == GENES
    assert expr.sample_names == SAMPLES
    assert expr.values.dtype == np.float64 and expr.values.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(expr.values, VALUES)
    assert (expr.n_genes, expr.n_samples) == (3, 3)


# --- round trips --------------------------------------------------------------

@pytest.mark.parametrize("name,delim,gz", [
    ("m.tsv", "\t", False), ("m.txt", "\t", False), ("m.csv", ",", False),
    ("m.tsv.gz", "\t", True), ("m.csv.gz", ",", True),
    ("m.dat", "\t", False), ("m.dat", ",", True),  # sniffed delimiter, gzip by magic
])
def test_text_round_trip(tmp_path, name, delim, gz):
    assert_expected(read_expression(write_table(tmp_path / name, good_rows(), delim, gz)))


def test_crlf_bom_quoted_names_and_trailing_blank_lines(tmp_path):
    rows = good_rows()
    rows[0] = ['"gene"', *(f'"{s}"' for s in SAMPLES)]
    text = "\ufeff" + "".join(",".join(r) + "\r\n" for r in rows) + "\r\n\n"
    p = tmp_path / "r.csv"
    p.write_bytes(text.encode())
    assert_expected(read_expression(p))


def test_gzip_detected_by_magic_not_name(tmp_path):
    p = write_table(tmp_path / "plain_name.tsv", good_rows(), gz=True)
    assert_expected(read_expression(p))


def test_leading_zero_sample_names_preserved(tmp_path):
    rows = [["id", "01005", "0001", "1"], ["a", "1", "2", "3"], ["b", "4", "5", "6"]]
    expr = read_expression(write_table(tmp_path / "z.tsv", rows))
    assert expr.sample_names == ("01005", "0001", "1")
    assert all(isinstance(s, str) for s in expr.sample_names)


def make_h5(path: Path, genes=GENES, samples=SAMPLES, values=VALUES, as_bytes=False,
            skip=()) -> Path:
    enc = (lambda xs: np.array([x.encode() for x in xs])) if as_bytes else list
    with h5py.File(path, "w") as f:
        if "expr" not in skip:
            f["expr"] = values
        if "gene_names" not in skip:
            f.create_dataset("gene_names", data=enc(genes),
                             **({} if as_bytes else {"dtype": h5py.string_dtype()}))
        if "sample_names" not in skip:
            f.create_dataset("sample_names", data=enc(samples),
                             **({} if as_bytes else {"dtype": h5py.string_dtype()}))
    return path


@pytest.mark.parametrize("as_bytes", [False, True])
def test_h5_round_trip(tmp_path, as_bytes):
    assert_expected(read_expression(make_h5(tmp_path / "m.h5", as_bytes=as_bytes)))


def test_h5_detected_by_magic(tmp_path):
    assert_expected(read_expression(make_h5(tmp_path / "matrix.bin")))


def test_write_expression_h5_round_trip(tmp_path):
    expr = Expression(VALUES * np.pi, GENES, SAMPLES)
    out = tmp_path / "out.h5"
    write_expression_h5(expr, out)
    with h5py.File(out) as f:
        assert f["expr"].dtype == np.float32 and f["expr"].shape == (3, 3)
        assert h5py.check_string_dtype(f["gene_names"].dtype).encoding == "utf-8"
        assert h5py.check_string_dtype(f["sample_names"].dtype).encoding == "utf-8"
    back = read_expression(out)
    assert back.gene_names == GENES and back.sample_names == SAMPLES
    assert back.values.dtype == np.float64
    np.testing.assert_array_equal(back.values, expr.values.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(back.values, expr.values, rtol=1e-7)
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5"]  # no temp file left


def test_write_expression_h5_unicode_names(tmp_path):
    expr = Expression(VALUES, ("α-gene", "β", "γ"), ("ü1", "007", "名"))
    write_expression_h5(expr, tmp_path / "u.h5")
    back = read_expression(tmp_path / "u.h5")
    assert back.gene_names == expr.gene_names and back.sample_names == expr.sample_names


def test_gene_index(tmp_path):
    expr = read_expression(write_table(tmp_path / "m.tsv", good_rows()))
    assert expr.gene_index("g2") == 1
    with pytest.raises(BootgpuError, match="'nope'") as exc:
        expr.gene_index("nope")
    assert "m.tsv" in str(exc.value)


# --- demo data ----------------------------------------------------------------

def test_demo_file_loads():
    path = demo_expression_path()
    assert isinstance(path, Path) and path.is_file()
    expr = read_expression(path)
    assert (expr.n_genes, expr.n_samples) == (2000, 128)
    assert expr.sample_names[0] == "01005"
    assert np.all((expr.values > 1.5) & (expr.values < 15))


@needs_shared
def test_demo_rows_are_top_variance_of_source():
    full = read_expression(SHARED)
    assert (full.n_genes, full.n_samples) == (12625, 128)
    var = full.values.var(axis=1)
    keep = np.sort(np.argsort(-var, kind="stable")[:2000])
    demo = read_expression(demo_expression_path())
    assert demo.gene_names == tuple(full.gene_names[i] for i in keep)
    assert demo.sample_names == full.sample_names
    np.testing.assert_array_equal(demo.values, full.values[keep])
    # every demo line is the source line copied verbatim
    src = gzip.decompress(SHARED.read_bytes()).splitlines()
    dem = gzip.decompress(demo_expression_path().read_bytes()).splitlines()
    assert dem[0] == src[0]
    assert dem[1:] == [src[i + 1] for i in keep]


@needs_shared
def test_make_demo_data_reproduces_bundled_file(tmp_path):
    spec = importlib.util.spec_from_file_location("make_demo_data",
                                                  REPO / "scripts" / "make_demo_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "demo.tsv.gz"
    mod.make_demo(SHARED, out)
    bundled = demo_expression_path().read_bytes()
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(bundled)
    readme = (REPO / "src" / "bootgpu" / "data" / "README.md").read_text()
    assert hashlib.sha256(bundled).hexdigest() in readme


@needs_shared
def test_full_source_loads_whole():
    # its reading time is tests/benchmarks/test_read.py's (pytest-benchmark), never a threshold here
    expr = read_expression(SHARED)
    assert expr.values.shape == (12625, 128) and expr.values.dtype.kind == "f"
    assert len(set(expr.gene_names)) == 12625 and len(expr.sample_names) == 128


# --- bad input ------------------------------------------------------------------

def expect_error(path: Path, *fragments: str) -> str:
    with pytest.raises(BootgpuError) as exc:
        read_expression(path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert path.name in msg
    for f in fragments:
        assert f in msg, (f, msg)
    return msg


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nothere.tsv", "not found")


def test_empty_file(tmp_path):
    (tmp_path / "e.tsv").write_text("")
    expect_error(tmp_path / "e.tsv", "empty")
    (tmp_path / "blank.tsv").write_text("\n\n  \n")
    expect_error(tmp_path / "blank.tsv", "empty")


def test_empty_gzip(tmp_path):
    (tmp_path / "e.tsv.gz").write_bytes(gzip.compress(b""))
    expect_error(tmp_path / "e.tsv.gz", "empty")


def test_corrupt_gzip(tmp_path):
    (tmp_path / "c.tsv.gz").write_bytes(gzip.compress(b"gene\ta\tb\n")[:-6])
    expect_error(tmp_path / "c.tsv.gz", "gzip")


def test_header_only(tmp_path):
    expect_error(write_table(tmp_path / "h.tsv", [good_rows()[0]]), "no data rows")


def test_wrong_field_count(tmp_path):
    rows = good_rows()
    rows[2] = rows[2][:-1]
    expect_error(write_table(tmp_path / "w.tsv", rows), "line 3", "'g2'", "3 fields", "expected 4")
    rows = good_rows()
    rows[3].append("1.0")
    expect_error(write_table(tmp_path / "w2.csv", rows, ","), "line 4", "'g3'", "5 fields")


@pytest.mark.parametrize("bad", ["abc", "", "NA", "1.2.3", "#5", "1_000"])
def test_text_in_number_cell(tmp_path, bad):
    rows = good_rows()
    rows[2][2] = bad
    expect_error(write_table(tmp_path / "t.tsv", rows),
                 "line 3", "gene 'g2'", "sample '010'", f"{bad!r} is not a number")


def test_text_in_number_cell_gz_csv(tmp_path):
    rows = good_rows()
    rows[3][3] = "oops"
    expect_error(write_table(tmp_path / "t.csv.gz", rows, ",", gz=True),
                 "line 4", "gene 'g3'", "sample 's3'", "'oops'")


@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
def test_non_finite(tmp_path, bad):
    rows = good_rows()
    rows[1][3] = bad
    expect_error(write_table(tmp_path / "n.tsv", rows), "line 2", "gene 'g1'", "sample 's3'")


def test_duplicate_gene(tmp_path):
    rows = good_rows()
    rows[3][0] = "g1"
    expect_error(write_table(tmp_path / "d.tsv", rows), "duplicate gene id 'g1'", "line 2", "line 4")


def test_duplicate_sample(tmp_path):
    rows = good_rows()
    rows[0][3] = "007"
    expect_error(write_table(tmp_path / "d.tsv", rows), "duplicate sample id '007'",
                 "column 2", "column 4")


def test_empty_ids(tmp_path):
    rows = good_rows()
    rows[2][0] = ""
    expect_error(write_table(tmp_path / "g.tsv", rows), "line 3", "empty gene id")
    rows = good_rows()
    rows[0][2] = ""
    expect_error(write_table(tmp_path / "s.tsv", rows), "column 3", "empty sample id")


def test_fewer_than_two_samples(tmp_path):
    rows = [["gene", "only"], ["g1", "1.0"], ["g2", "2.0"]]
    expect_error(write_table(tmp_path / "one.tsv", rows), "'only'", "at least 2 samples")
    expect_error(write_table(tmp_path / "none.tsv", [["gene"], ["g1"]]), "line 1: no tab in the header, so no sample columns")


def test_no_delimiter_in_header(tmp_path):
    (tmp_path / "x.dat").write_text("gene\ng1\n")
    expect_error(tmp_path / "x.dat", "line 1", "delimiter")


@pytest.mark.parametrize("key", ["expr", "gene_names", "sample_names"])
def test_h5_missing_dataset(tmp_path, key):
    expect_error(make_h5(tmp_path / "m.h5", skip=(key,)), f"'/{key}'", "missing")


def test_h5_bad_content(tmp_path):
    expect_error(make_h5(tmp_path / "shape.h5", values=VALUES.T[:2]), "'/expr'", "shape")
    v = VALUES.copy()
    v[1, 2] = np.nan
    expect_error(make_h5(tmp_path / "nan.h5", values=v), "gene 'g2'", "sample 's3'", "nan")
    expect_error(make_h5(tmp_path / "dup.h5", genes=("a", "b", "a")), "duplicate gene id 'a'")
    expect_error(make_h5(tmp_path / "dups.h5", samples=("x", "y", "x")), "duplicate sample id 'x'")


def test_h5_suffix_but_not_hdf5(tmp_path):
    (tmp_path / "fake.h5").write_text("gene\ta\tb\n")
    expect_error(tmp_path / "fake.h5", "HDF5")


# --- atomic writes ----------------------------------------------------------------

def test_atomic_path_replaces_on_success(tmp_path):
    final = tmp_path / "out.txt"
    final.write_text("old")
    with atomic_path(final) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.txt.tmp-")
        assert f"-{os.getpid()}-" in tmp.name
        tmp.write_text("new")
        assert final.read_text() == "old"  # not visible until the block ends
    assert final.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize("writer", ["open", "h5py"])
def test_atomic_path_leaves_nothing_on_error(tmp_path, writer):
    final = tmp_path / "out.bin"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(final) as tmp:
            if writer == "open":
                tmp.write_text("partial")
            else:
                with h5py.File(tmp, "w") as f:
                    f["x"] = np.arange(3)
            assert tmp.exists()
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    final = tmp_path / "keep.txt"
    final.write_text("old")
    with pytest.raises(ValueError):
        with atomic_path(final) as tmp:
            tmp.write_text("half")
            raise ValueError
    assert final.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_atomic_write_text(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "héllo\n")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


# --- inputs the way R and spreadsheets write them ------------------------------------------

@pytest.mark.parametrize("name", ["m.csv", "m.txt", "m.dat"])
def test_semicolon_separated_files_are_detected(tmp_path, name):
    """European spreadsheet exports: ';' between fields, even in a .csv."""
    assert_expected(read_expression(write_table(tmp_path / name, good_rows(), ";")))


@pytest.mark.parametrize("delim", ["\t", ","])
def test_r_write_table_header_without_a_row_name_cell(tmp_path, delim):
    """write.table(m, sep=...) writes the column names only: the header is one field shorter."""
    rows = good_rows()
    rows[0] = [f'"{s}"' for s in SAMPLES]  # and R quotes them
    assert_expected(read_expression(write_table(tmp_path / "r.txt", rows, delim)))


def test_sep_option_overrides_detection(tmp_path):
    rows = [["gene", "a,1", "b,2"], ["g1", "1.0", "2.0"], ["g2", "3.0", "4.5"]]  # commas inside tab-separated ids
    path = write_table(tmp_path / "m.dat", rows, "\t")
    expr = read_expression(path, sep="tab")
    assert expr.sample_names == ("a,1", "b,2") and expr.values[1, 1] == 4.5
    with pytest.raises(BootgpuError, match="--sep must be tab, comma or semicolon, got 'pipe'"):
        read_expression(path, sep="pipe")


@pytest.mark.parametrize("name,head", [
    ("data.xlsx", b"PK\x03\x04" + b"\x00" * 30), ("data.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 30),
    ("renamed.csv", b"PK\x03\x04" + b"\x00" * 30),
])
def test_excel_workbooks_are_refused_with_what_to_do(tmp_path, name, head):
    (tmp_path / name).write_bytes(head)
    expect_error(tmp_path / name, "not a text table", "save the sheet as CSV")


# --- decimal commas, quotes, files that are not what their name says, transposed matrices, AnnData --------

@pytest.mark.parametrize("delim", [";", "\t"])
def test_decimal_commas_are_read_where_fields_are_not_comma_separated(tmp_path, delim):
    rows = [["gene", *SAMPLES]] + [[g, *(repr(float(v)).replace(".", ",") for v in vals)] for g, vals in zip(GENES, VALUES)]
    rows[1][1] = "1,5"
    assert_expected(read_expression(write_table(tmp_path / "m.csv", rows, delim)))


def test_a_lone_decimal_comma_is_refused_with_the_hint(tmp_path):
    rows = good_rows()
    rows[2][2] = "5,125"  # one cell in a file of decimal points
    msg = expect_error(write_table(tmp_path / "m.tsv", rows), "line 3", "'5,125' is not a number",
                       "looks like a decimal comma")
    assert "sample '010'" in msg


def test_quote_everything_csv_is_read(tmp_path):
    rows = [[f'"{c}"' for c in row] for row in good_rows()]
    assert_expected(read_expression(write_table(tmp_path / "m.csv", rows, ",")))


def test_a_binary_file_named_xlsx_is_not_called_a_workbook(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"\x00\x01\xfe\xff" * 40)
    msg = expect_error(path, "not a text table", "is not UTF-8 text", "its name says .xlsx, but it is not a workbook")
    assert "save the sheet" not in msg


def _wide(tmp_path: Path, column_ids) -> Path:
    """A samples x genes table: 12 sample rows, one column per id."""
    rng = np.random.default_rng(0)
    rows = [["sample", *column_ids]] + [[f"P{i}", *(f"{v:.4f}" for v in rng.standard_normal(len(column_ids)))]
                                        for i in range(12)]
    return write_table(tmp_path / "wide.tsv", rows)


def test_a_clearly_transposed_matrix_is_refused_unless_an_option_says_which(tmp_path, capsys):
    from bootgpu.cli import main

    path = _wide(tmp_path, [f"{1000 + i}_at" for i in range(30)])  # Affymetrix probe ids as columns
    args = ["plan", "--backend", "numpy", "--expr", str(path), "--low-frac", "0.4", "--high-frac", "0.4",
            "--no-estimate"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"bootgpu: error: {path}: looks like samples x genes (12 rows x 30 columns; its column ids look like "
                   f"gene ids ('1000_at', ...)): rerun with --samples-in-rows if it holds samples in rows, or "
                   f"--genes-in-rows if it is genes x samples")
    assert main([*args, "--samples-in-rows"]) == 0 and "30 genes x 12 samples" in capsys.readouterr().out
    assert main([*args, "--genes-in-rows"]) == 0 and "12 genes x 30 samples" in capsys.readouterr().out
    assert main([*args, "--genes-in-rows", "--samples-in-rows"]) == 2


def test_anndata_h5ad_cells_x_genes_with_layers(tmp_path):
    anndata = pytest.importorskip("anndata")
    import scipy.sparse as sp

    rng = np.random.default_rng(1)
    counts = rng.poisson(3.0, (12, 7)).astype(np.float32)  # 12 cells x 7 genes
    data = anndata.AnnData(X=sp.csr_matrix(np.log1p(counts)))
    data.obs_names = [f"cell{i}" for i in range(12)]
    data.var_names = [f"GENE{j}" for j in range(7)]
    data.layers["counts"] = counts
    path = tmp_path / "cells.h5ad"
    data.write_h5ad(path)
    expr = read_expression(path)
    assert expr.gene_names == tuple(f"GENE{j}" for j in range(7)) and expr.sample_names == tuple(f"cell{i}" for i in range(12))
    np.testing.assert_array_equal(expr.values, np.log1p(counts).T.astype(np.float64))
    np.testing.assert_array_equal(read_expression(path, layer="counts").values, counts.T)
    with pytest.raises(BootgpuError, match="no layer 'raw' \\(layers: counts; without --layer, X is read\\)"):
        read_expression(path, layer="raw")
    with pytest.raises(BootgpuError, match="--layer is for AnnData .h5ad input"):
        read_expression(write_table(tmp_path / "m.tsv", good_rows()), layer="counts")
