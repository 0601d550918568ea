"""``bootgpu.open_results`` and `bootgpu top`: the results read back through the API equal what the
file holds (h5py, read independently), keyed by gene id or row; bad keys are one-line errors."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

import bootgpu
from bootgpu.cli import main
from bootgpu.errors import BootgpuError
from bootgpu.results_schema import CHANGE_LABELS


@pytest.fixture(scope="module")
def study(small_study):
    return small_study


def test_edges_equal_the_file_with_ids_robust_flags_and_class_labels(study):
    with bootgpu.open_results(study) as res, h5py.File(study / "results.h5") as h5:
        names = h5["gene_names"].asstr()[()]
        for row in (3, 7, 40):
            grp = h5["focus"][str(row)]
            by_id = res.edges(names[row])
            pd.testing.assert_frame_equal(by_id, res.edges(row))
            pd.testing.assert_frame_equal(by_id, res.edges(f"#{row}"))
            assert len(by_id) == grp["gene_i"].shape[0] > 0
            assert np.array_equal(by_id["gene_i"], grp["gene_i"][()]) and np.array_equal(by_id["gene_j"], grp["gene_j"][()])
            assert list(by_id["gene_a"]) == list(names[grp["gene_i"][()]])
            assert list(by_id["gene_b"]) == list(names[grp["gene_j"][()]])
            for key in ("r_low", "r_high", "delta", "q_diff", "ci_low", "ci_high", "boot_p"):
                assert np.array_equal(by_id[key].to_numpy(), grp[key][()].astype(np.float64)), key
            robust = (grp["ci_low"][()] > 0) | (grp["ci_high"][()] < 0)
            assert np.array_equal(by_id["robust"], robust)
            assert int(robust.sum()) == grp.attrs["n_robust"] == len(res.edges(row, robust_only=True))
            assert list(by_id["change"]) == [CHANGE_LABELS[c] for c in grp["change"][()]]
            assert list(by_id["change"].cat.categories) == list(CHANGE_LABELS)


def test_focus_genes_samples_and_partners(study):
    with bootgpu.open_results(study / "results.h5") as res, h5py.File(study / "results.h5") as h5:
        assert "focus_genes" not in res.__dict__  # nothing read beyond /meta until asked
        assert res.meta["n_bootstrap"] == 40 and res.focus_index == [3, 7, 40]
        table = res.focus_genes
        names = h5["gene_names"].asstr()[()]
        samples = h5["sample_names"].asstr()[()]
        assert list(table.index) == [names[3], names[7], names[40]]
        hubs = pd.read_csv(study / "rewiring_hubs.tsv", sep="\t").set_index("gene_id")
        summary = pd.read_csv(study / "network_summary.tsv", sep="\t").set_index("gene_id")
        for gene, row in table.iterrows():
            assert row["n_robust"] == hubs.loc[gene, "n_robust"] == h5["focus"][str(row["gene_idx"])].attrs["n_robust"]
            assert row["n_sign_change"] == hubs.loc[gene, "n_sign_change"]
            for metric in ("diff_n_edges", "low_clustering", "L2L1_deg", "HL_conn_L1"):
                assert row[metric] == pytest.approx(summary.loc[gene, metric], rel=1e-5, nan_ok=True), metric
        got = res.samples(names[7])
        assert got["low"] == list(samples[h5["focus/7/low_samples"][()]])
        assert got["high"] == list(samples[h5["focus/7/high_samples"][()]])
        part = res.partners(3, robust_only=False)
        edges = res.edges(3)
        mine = edges[(edges["gene_i"] == 3) | (edges["gene_j"] == 3)]
        assert len(part) == len(mine)
        assert list(part["abs_delta"]) == sorted(mine["abs_delta"], reverse=True)
        assert set(part["partner"]) == set(np.where(mine["gene_i"] == 3, mine["gene_b"], mine["gene_a"]))


def test_bad_keys_and_paths_are_one_line_errors(study, tmp_path):
    with bootgpu.open_results(study) as res:
        with pytest.raises(BootgpuError, match="no gene 'NOPE' in this study"):
            res.edges("NOPE")
        with pytest.raises(BootgpuError, match=r"\(row 5\) is not a focus gene of this study; its focus genes are "):
            res.edges(5)
        with pytest.raises(BootgpuError, match="row 150 is outside 0..149"):
            res.samples(150)
    with pytest.raises(BootgpuError, match="no results file"):
        bootgpu.open_results(tmp_path)


def test_top_prints_the_largest_changes_and_tsv_for_scripts(study, capsys):
    with bootgpu.open_results(study) as res:
        edges = res.edges(7)
        gene = res.gene_names[7]
    assert main(["top", str(study), "--gene", gene, "-n", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{gene} (row 7): top 4 of {len(edges)} selected edges, by delta"
    best = edges.sort_values("abs_delta", ascending=False, kind="stable").head(4)
    for line, (_, edge) in zip(out[2:6], best.iterrows()):
        assert line.split()[:2] == [edge["gene_a"], edge["gene_b"]]
    assert out[-1].startswith("r_low/r_high: Spearman r")
    assert main(["top", str(study), "--gene", "#7", "-n", "3", "--by", "q", "--tsv", "--robust-only"]) == 0
    tsv = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out), sep="\t")
    robust = edges[edges["robust"]].sort_values("q_diff", kind="stable").head(3)
    assert list(tsv["gene_a"]) == list(robust["gene_a"]) and tsv["robust"].all()
    assert main(["top", str(study), "--gene", "#7", "-n", "0"]) == 2
    assert "-n must be at least 1" in capsys.readouterr().err


def test_networks_equal_the_stored_degrees_and_metrics(study):
    """network(gene, which) rebuilds LOW / HIGH / differential networks from the stored edges with the
    study's filter: their degrees are the stored degree arrays, their edge counts the stored metrics."""
    with bootgpu.open_results(study) as res, h5py.File(study / "results.h5") as h5:
        for row in (3, 7, 40):
            net = h5["focus"][str(row)]["network"]
            metrics = net["metrics"][0]
            for which in ("low", "high", "diff"):
                adj = res.network(row, which)
                assert adj.shape == (150, 150) and (adj != adj.T).nnz == 0
                assert np.array_equal(np.diff(adj.indptr), net[f"degree_{which}"][()])
                assert adj.nnz // 2 == metrics[f"{which}_n_edges"]
            graph = res.network(res.gene_names[row], "diff", as_graph=True)
            assert graph.number_of_edges() == metrics["diff_n_edges"] == res.edges(row, robust_only=True).shape[0]
            edges = res.edges(row, robust_only=True)
            if len(edges):
                first = edges.iloc[0]
                attrs = graph.edges[first["gene_a"], first["gene_b"]]
                assert attrs["delta"] == pytest.approx(first["delta"]) and attrs["change"] == first["change"]
        with pytest.raises(BootgpuError, match="which must be low, high or diff"):
            res.network(3, "both")


def test_focus_table_read_at_once_equals_the_focus_genes_groups(study, tmp_path):
    """``focus_genes`` reads the study table written with the file (/focus_table, one dataset); a
    file without it (written before) gives the same table from every focus gene's group."""
    import shutil

    from bootgpu.results_io import FOCUS_ATTRS, FOCUS_TABLE

    with h5py.File(study / "results.h5") as h5:
        assert FOCUS_TABLE in h5
        counts = {name: {k: int(h5["focus"][name].attrs[k]) for k in FOCUS_ATTRS[1:]} for name in h5["focus"]}
    old = tmp_path / "results.h5"
    shutil.copy(study / "results.h5", old)
    with h5py.File(old, "a") as h5:
        del h5[FOCUS_TABLE]
        for name in h5["focus"]:
            del h5["focus"][name].attrs["counts"]
    with bootgpu.open_results(study / "results.h5") as new, bootgpu.open_results(old) as before:
        fast, slow = new.focus_genes, before.focus_genes
    pd.testing.assert_frame_equal(fast, slow)
    assert len(fast) == 3 and {k: int(v) for k, v in fast.iloc[1][list(FOCUS_ATTRS[1:])].items()} == counts["7"]


def test_files_of_format_4_read_with_the_new_class_name(study, tmp_path):
    """Format 4 called class 0 'unchanged' (labels, hubs rows, metrics, the focus table): such a
    file reads as 'subthreshold'."""
    import json
    import shutil

    old = tmp_path / "results.h5"
    shutil.copy(study / "results.h5", old)
    with h5py.File(old, "r+") as h5:
        for name in h5["focus"]:
            grp = h5["focus"][name]
            row = json.loads(grp.attrs["hubs_row"])
            grp.attrs["hubs_row"] = json.dumps({k.replace("subthreshold", "unchanged"): v for k, v in row.items()})
            if "network" in grp:
                metrics = grp["network/metrics"]
                m = json.loads(metrics.attrs["json"])
                metrics.attrs["json"] = json.dumps({k.replace("subthreshold", "unchanged"): v for k, v in m.items()})
        table = json.loads(h5["focus_table"][()].tobytes())
        table["columns"] = [c.replace("subthreshold", "unchanged") for c in table["columns"]]
        del h5["focus_table"]
        h5.create_dataset("focus_table", data=np.frombuffer(json.dumps(table).encode(), dtype=np.uint8))
    assert "n_unchanged" in json.dumps(table)
    new, legacy = bootgpu.open_results(study), bootgpu.open_results(old)
    pd.testing.assert_frame_equal(legacy.focus_genes, new.focus_genes)
    assert "n_subthreshold" in legacy.focus_genes.columns and "n_unchanged" not in legacy.focus_genes.columns
