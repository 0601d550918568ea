"""`bootgpu export`: TSV and Parquet tables read back equal to the API's (and so to the HDF5 file,
tests/test_api.py), node tables equal to the networks' degrees, GraphML read back by networkx with
the same edges and attributes as the focus gene's differential network."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import bootgpu
from bootgpu.cli import main


@pytest.mark.parametrize("fmt", ["tsv", "parquet"])
def test_tables_round_trip(small_study, tmp_path, fmt, capsys):
    out = tmp_path / fmt
    assert main(["export", str(small_study), "--format", fmt, "--out", str(out)]) == 0
    assert "wrote 3 files" in capsys.readouterr().out
    read = (lambda p: pd.read_csv(p, sep="\t", keep_default_na=False, na_values=["nan", ""])) if fmt == "tsv" else pd.read_parquet
    edges, nodes = read(out / f"edges.{fmt}"), read(out / f"nodes.{fmt}")
    focus = read(out / f"focus_genes.{fmt}")
    with bootgpu.open_results(small_study) as res:
        for row in res.focus_index:
            gene = res.gene_names[row]
            want = res.edges(row)
            got = edges[edges["focus_gene_id"] == gene].reset_index(drop=True)
            assert list(got["gene_a"]) == list(want["gene_a"]) and list(got["gene_b"]) == list(want["gene_b"])
            assert list(got["change"]) == list(want["change"].astype(str))
            assert list(got["robust"]) == list(want["robust"])
            for key in ("r_low", "r_high", "delta", "q_diff", "ci_low", "ci_high", "boot_p"):
                tol = 1e-6 if fmt == "tsv" else 0  # TSV keeps 7 significant digits of the float32 values
                assert np.allclose(got[key], want[key], rtol=tol, atol=0), key
            mine = nodes[nodes["focus_gene_id"] == gene].set_index("gene_idx")
            diff = res.network(row, "diff")
            degree = np.diff(diff.indptr)
            assert set(mine.index) == set(np.flatnonzero(degree))
            assert all(mine.loc[g, "degree_diff"] == degree[g] for g in mine.index)
            assert all(mine.loc[g, "rewiring_score"] == mine.loc[g, ["n_disappear", "n_new", "n_sign_change"]].sum()
                       for g in mine.index)
        assert list(focus["gene_id"]) == list(res.focus_genes["gene_id"])
        assert list(focus["n_rewire"]) == list(res.focus_genes["n_rewire"])


def test_robust_only_and_per_gene(small_study, tmp_path):
    out = tmp_path / "per"
    assert main(["export", str(small_study), "--format", "tsv", "--robust-only", "--per-gene", "--gene", "#7",
                 "--out", str(out)]) == 0
    with bootgpu.open_results(small_study) as res:
        gene = res.gene_names[7]
        got = pd.read_csv(out / "edges" / f"{gene}.tsv", sep="\t")
        assert len(got) == len(res.edges(7, robust_only=True)) and got["robust"].all()
    assert not (out / "edges.tsv").exists()


def test_graphml_ego_networks_read_back_with_networkx(small_study, tmp_path):
    out = tmp_path / "g"
    assert main(["export", str(small_study), "--format", "graphml", "--gene", "#7", "--ego-top", "2", "--out", str(out)]) == 0
    files = sorted(out.glob("*.graphml"))
    with bootgpu.open_results(small_study) as res:
        focus = res.gene_names[7]
        diff = res.network(7, "diff", as_graph=True)
        assert len(files) == 1 + min(2, diff.number_of_nodes() - (focus in diff))
        for path in files:
            ego = nx.read_graphml(path)
            centre = ego.graph["centre"]
            assert ego.graph["focus_gene"] == focus
            want = nx.ego_graph(diff, centre, radius=1) if centre in diff else nx.Graph()
            assert set(ego.nodes) == set(want.nodes)
            assert {frozenset(e) for e in ego.edges} == {frozenset(e) for e in want.edges}
            text = path.read_text()
            for a, b, data in ego.edges(data=True):
                assert data["delta"] == pytest.approx(diff.edges[a, b]["delta"]) and data["change"] == diff.edges[a, b]["change"]
                for key in ("r_low", "r_high", "delta"):  # the stored float32, in its shortest form: no float64 noise
                    assert np.float32(data[key]) == np.float32(diff.edges[a, b][key])
                    assert repr(data[key]) == np.format_float_positional(np.float32(data[key]), unique=True, trim="-")
                    assert f'"{repr(data[key])}"' in text or f">{repr(data[key])}<" in text
                assert data["present_low"] == res.network(7, "low", as_graph=True).has_edge(a, b)
            for node, data in ego.nodes(data=True):
                assert data["degree_diff"] == diff.degree(node) and data["is_centre"] == (node == centre)


def test_bad_export_options_are_one_line_errors(small_study, capsys):
    assert main(["export", str(small_study), "--format", "tsv", "--gene", "NOPE", "--out", "/tmp/x-export"]) == 2
    assert "no gene 'NOPE'" in capsys.readouterr().err
    assert main(["export", str(small_study), "--format", "graphml", "--top", "0"]) == 2


def test_an_export_that_fails_leaves_nothing_behind(small_study, tmp_path, monkeypatch, capsys):
    import builtins

    from bootgpu import export as export_module
    from bootgpu.cli import main

    out = tmp_path / "exported"
    real = export_module.write_table
    calls = []

    def fails_second(frame, path, fmt):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(frame, path, fmt)

    monkeypatch.setattr(export_module, "write_table", fails_second)
    with pytest.raises(OSError):
        main(["export", str(small_study), "--format", "tsv", "--out", str(out)])
    assert not out.exists() and not list(tmp_path.glob(".exported.tmp-*"))
    monkeypatch.setattr(export_module, "write_table", real)
    real_import = builtins.__import__

    def no_pyarrow(name, *a, **kw):
        if name == "pyarrow":
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    assert main(["export", str(small_study), "--format", "parquet", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == ("bootgpu: error: --format parquet needs pyarrow (pip install pyarrow); "
                                               "--format tsv needs nothing more")
    assert not out.exists()
