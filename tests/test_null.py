"""The permutation null shared by all focus genes (bootgpu.null, bootgpu.significance, docs/null.md):
planted truth, p-values against an independent slow computation, and identical null values for any
replicate split, resumption and thread count."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from bootgpu.cli import main
from bootgpu.core.draws import null_split, stream_keys
from bootgpu.networks import GENE_METRICS, EdgeFilter, filter_edges, focus_network, gene_level_metrics
from bootgpu.significance import CONDITIONAL, SIGNIFICANCE_METRICS, bh_q, empirical_p
from bootgpu.synthetic import planted_matrix

N_GENES, N_SAMPLES, PER_CLASS = 120, 100, 8  # gene 0 rewires 24 planted pairs (genes 1..64)
NULL_GENES = range(70, 120)  # pure noise: their splits carry no information about co-expression
N_PERM = 59  # the smallest p is 1/60
FDR = 0.5  # null networks with edges (the original's production runs used 0.7), so p is not all ties
COMMON = ["--backend", "numpy", "--n-bootstrap", "30", "--seed", "5", "--fdr-alpha", str(FDR)]


def write_tsv(path, values: np.ndarray):
    rows = ["gene\t" + "\t".join(f"s{j}" for j in range(values.shape[1]))]
    rows += [f"g{i}\t" + "\t".join(f"{v:.6f}" for v in row) for i, row in enumerate(values)]
    path.write_text("\n".join(rows) + "\n")
    return path


def read_tsv(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=["nan"], dtype={"gene_id": str})


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A study of focus gene 0 (planted rewiring) and 50 noise genes, with the null; its directory."""
    tmp = tmp_path_factory.mktemp("null-planted")
    values = planted_matrix(N_GENES, N_SAMPLES, PER_CLASS, seed=3).values
    values[list(NULL_GENES)] = np.random.default_rng(7).standard_normal((len(NULL_GENES), N_SAMPLES))
    expr = write_tsv(tmp / "expr.tsv", values)
    out = tmp / "study"
    assert main(["run", "--expr", str(expr), "--out", str(out), "--focus", "#0,#70:120",
                 "--permutations", str(N_PERM), *COMMON]) == 0
    return expr, out


def test_planted_focus_gene_is_significant_and_null_genes_near_uniform(planted):
    _, out = planted
    table = read_tsv(out / "gene_significance.tsv").set_index("gene_idx")
    assert table.loc[0, "n_diff_edges_p"] <= 0.05
    p = table.loc[list(NULL_GENES), "n_diff_edges_p"].to_numpy()
    n = p.size
    for u in (0.05, 0.1, 0.2, 0.5):  # the fraction at or below u within 3 binomial sd of u
        assert abs(np.mean(p <= u) - u) <= 3 * np.sqrt(u * (1 - u) / n), (u, np.sort(p))


def test_q_of_the_planted_gene_with_few_focus_genes_sharing_the_null(planted, tmp_path):
    """BH across 5 focus genes: 1/60 x 5 <= 0.1.  The null serves any focus list: copied null.h5
    is this study's null (its identity has no focus list) and nothing is recomputed."""
    expr, out = planted
    other = tmp_path / "few"
    other.mkdir()
    shutil.copy(out / "null.h5", other / "null.h5")
    assert main(["run", "--expr", str(expr), "--out", str(other), "--focus", "#0,#70:74", "--permutations",
                 str(N_PERM), *COMMON]) == 0
    table = read_tsv(other / "gene_significance.tsv").set_index("gene_idx")
    assert table.loc[0, "n_diff_edges_p"] == pytest.approx(1 / (N_PERM + 1), rel=1e-5)  # 6 digits in the TSV
    assert table.loc[0, "n_diff_edges_q"] <= 0.1
    assert not (other / "null").exists()


def slow_significance(out) -> pd.DataFrame:
    """p and q recomputed independently: observed values from each focus gene's stored edges through
    ``focus_network``, loops over the null, statsmodels' fdr_bh."""
    with h5py.File(out / "results.h5", "r") as h5, h5py.File(out / "null.h5", "r") as nh:
        alpha, n_genes = float(h5["meta"].attrs["fdr_alpha"]), len(h5["gene_names"])
        rows = {}
        for name in h5["focus"]:
            grp, g = h5["focus"][name], int(name)
            edges = {k: grp[k][()] for k in ("gene_i", "gene_j", "r_low", "r_high", "delta", "q_low", "q_high",
                                             "ci_low", "ci_high")}
            net = focus_network(n_genes, g, edges, alpha, EdgeFilter())
            rows[g] = {m: float(net.metrics[m]) for m in SIGNIFICANCE_METRICS if m in net.metrics}
            rows[g]["n_diff_edges"] = float(net.metrics["n_kept"])
            d = net.partners["delta"]
            rows[g]["L1_max_abs_delta"] = float(np.abs(d).max()) if d.size else np.nan
        null = {m: nh[f"genes/{m}"][()] for m in GENE_METRICS}
        shared = nh["network/n_diff_edges"][()]
    out_rows = []
    for g, obs in rows.items():
        rec = {"gene_idx": g}
        for m in SIGNIFICANCE_METRICS:
            values = shared if m == "n_diff_edges" else null[m][g]
            if np.isnan(obs[m]):
                rec[f"{m}_p"] = np.nan
                continue
            used = [v for v in values if not np.isnan(v)]
            rec[f"{m}_p"] = (1 + sum(v >= obs[m] for v in used)) / (1 + len(used))
        out_rows.append(rec)
    frame = pd.DataFrame(out_rows).set_index("gene_idx")
    for m in SIGNIFICANCE_METRICS:
        p = frame[f"{m}_p"]
        ok = p.notna()
        frame[f"{m}_q"] = np.nan
        if ok.any():
            frame.loc[ok, f"{m}_q"] = multipletests(p[ok].to_numpy(), method="fdr_bh")[1]
    return frame


def test_p_and_q_equal_an_independent_slow_computation(planted):
    _, out = planted
    table = read_tsv(out / "gene_significance.tsv").set_index("gene_idx")
    slow = slow_significance(out)
    for m in SIGNIFICANCE_METRICS:
        for kind in ("p", "q"):
            np.testing.assert_allclose(table[f"{m}_{kind}"].to_numpy(), slow.loc[table.index, f"{m}_{kind}"].to_numpy(),
                                       rtol=1e-5, equal_nan=True, err_msg=f"{m}_{kind}")


def test_p_and_q_reach_the_hubs_table_and_the_api(planted):
    import bootgpu

    _, out = planted
    table = read_tsv(out / "gene_significance.tsv").set_index("gene_idx")
    hubs = read_tsv(out / "rewiring_hubs.tsv").set_index("gene_idx")
    with bootgpu.open_results(out) as res:
        genes = res.focus_genes.set_index("gene_idx")
        sig = res.significance.set_index("gene_idx")
    for col in ("n_diff_edges_p", "n_diff_edges_q", "L2L1_rewire_p", "L1_rewire_q"):
        np.testing.assert_allclose(hubs.loc[table.index, col], table[col], equal_nan=True)
        np.testing.assert_allclose(genes.loc[table.index, col], table[col], equal_nan=True)
        np.testing.assert_allclose(sig.loc[table.index, col], table[col], equal_nan=True)


def test_null_split_is_a_pure_function_of_seed_and_replicate():
    import array_api_strict as xs

    for r in range(5):
        low, high = null_split(np, 42, r, 50, 10, 12)
        assert low.shape == (10,) and high.shape == (12,) and not set(low) & set(high)
        assert (np.diff(low) > 0).all() and (np.diff(high) > 0).all()
        s_low, s_high = null_split(xs, 42, r, 50, 10, 12)
        np.testing.assert_array_equal(np.asarray(s_low), low)
        np.testing.assert_array_equal(np.asarray(s_high), high)
    assert not np.array_equal(null_split(np, 42, 0, 50, 10, 12)[0], null_split(np, 42, 1, 50, 10, 12)[0])
    assert not np.array_equal(null_split(np, 42, 0, 50, 10, 12)[0], null_split(np, 43, 0, 50, 10, 12)[0])
    null_key = stream_keys(np, 42, np.arange(20), 2)  # never a bootstrap stream's key (groups 0, 1)
    assert not set(null_key.tolist()) & set(stream_keys(np, 42, np.arange(20), 0).tolist() +
                                            stream_keys(np, 42, np.arange(20), 1).tolist())


def random_edges(rng, n: int, n_edges: int) -> dict:
    pairs = set()
    while len(pairs) < n_edges:
        a, b = sorted(int(x) for x in rng.integers(0, n, 2))
        if a != b:
            pairs.add((a, b))
    pairs = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    m = len(pairs)
    edges = {"gene_i": pairs[:, 0].astype(np.int32), "gene_j": pairs[:, 1].astype(np.int32),
             "r_low": rng.uniform(-1, 1, m).astype(np.float32), "r_high": rng.uniform(-1, 1, m).astype(np.float32),
             "q_low": rng.uniform(0, 0.1, m), "q_high": rng.uniform(0, 0.1, m), "robust": rng.random(m) < 0.7}
    edges["delta"] = edges["r_high"] - edges["r_low"]
    return edges


@pytest.mark.parametrize("n_edges", [0, 1, 40, 300])
def test_gene_level_metrics_equal_focus_network_for_every_gene(n_edges):
    n = 60
    edges = random_edges(np.random.default_rng(n_edges), n, n_edges)
    every = gene_level_metrics(n, filter_edges(edges, 0.05))
    for v in range(n):
        net = focus_network(n, v, edges, 0.05)
        d = net.partners["delta"]
        for m in GENE_METRICS:
            expected = (float(np.abs(d).max()) if d.size else np.nan) if m == "L1_max_abs_delta" else net.metrics[m]
            assert np.isclose(every[m][v], expected, rtol=1e-12, equal_nan=True), (v, m, every[m][v], expected)


def test_empirical_p_counts_ties_and_leaves_out_undefined_null_values():
    p, n = empirical_p(np.array([2.0, 0.5, np.nan]), np.array([[1, 2, 3, np.nan], [np.nan] * 4, [1, 1, 1, 1]]))
    np.testing.assert_array_equal(n, [3, 0, 4])
    assert p[0] == pytest.approx(3 / 4) and p[1] == 1.0 and np.isnan(p[2])
    assert "L2L1_rewire" in CONDITIONAL and "n_diff_edges" not in CONDITIONAL


def test_bh_q_equals_statsmodels_with_undefined_p_left_out():
    rng = np.random.default_rng(0)
    p = rng.random(200) ** 3
    p[::7] = np.nan
    p[5] = p[6]  # a tie
    q = bh_q(p)
    ok = ~np.isnan(p)
    np.testing.assert_allclose(q[ok], multipletests(p[ok], method="fdr_bh")[1], rtol=1e-12)
    assert np.isnan(q[~ok]).all()


def null_arrays(out) -> dict:
    with h5py.File(out / "null.h5", "r") as h5:
        data = {f"genes/{m}": h5[f"genes/{m}"][()] for m in GENE_METRICS}
        data.update({k: h5[k][()] for k in ("network/n_diff_edges", "network/n_selected", "low_samples",
                                            "high_samples")})
        data["n_perm"] = int(h5["meta"].attrs["n_perm"])
    return data


def test_null_values_identical_for_task_splits_resumption_and_threads(tmp_path, write_demo_tsv, monkeypatch):
    expr = write_demo_tsv(tmp_path / "expr.tsv", 80)
    args = ["--expr", str(expr), "--backend", "numpy", "--n-bootstrap", "20", "--fdr-alpha", "0.3", "--focus", "#0:3"]
    monkeypatch.setenv("BOOTGPU_THREADS", "2")
    assert main(["null", "--out", str(tmp_path / "whole"), "--permutations", "6", *args]) == 0
    monkeypatch.setenv("BOOTGPU_THREADS", "1")
    split = tmp_path / "split"
    assert main(["null", "--out", str(split), "--permutations", "6", "--replicates", "0:2", *args]) == 0
    assert not (split / "null.h5").exists() and len(list((split / "null").iterdir())) == 2
    assert main(["null", "--out", str(split), "--permutations", "3", *args]) == 0  # 2 reused, 1 computed
    assert main(["null", "--out", str(split), "--permutations", "6", "--replicates", "4:6", *args]) == 0
    assert main(["null", "--out", str(split), "--permutations", "6", *args]) == 0  # 3 from null.h5, 1 computed
    whole, parts = null_arrays(tmp_path / "whole"), null_arrays(split)
    assert whole["n_perm"] == parts["n_perm"] == 6
    for key in whole:
        np.testing.assert_array_equal(whole[key], parts[key], err_msg=key)
    assert whole["network/n_diff_edges"].max() > 0  # the comparison saw edges
    assert not (split / "null").exists()


def test_a_null_of_another_study_is_refused(tmp_path, write_demo_tsv, capsys):
    expr = write_demo_tsv(tmp_path / "expr.tsv", 40)
    args = ["--expr", str(expr), "--backend", "numpy", "--n-bootstrap", "10", "--permutations", "2", "--focus", "#0"]
    assert main(["null", "--out", str(tmp_path / "a"), *args]) == 0
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "null.h5", tmp_path / "b" / "null.h5")
    capsys.readouterr()
    assert main(["null", "--out", str(tmp_path / "b"), "--seed", "7", *args]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bootgpu: error")]
    assert len(errors) == 1 and "belongs to another study (seed 42, not 7)" in errors[0]


@pytest.mark.parametrize("extra, message", [(["--permutations", "0"], "--permutations must be at least 1"),
                                            (["--permutations", "4", "--replicates", "3:2"], "--replicates must be A:B")])
def test_bad_null_options_are_one_line_errors(tmp_path, write_demo_tsv, capsys, extra, message):
    expr = write_demo_tsv(tmp_path / "expr.tsv", 20)
    assert main(["null", "--expr", str(expr), "--out", str(tmp_path / "s"), "--backend", "numpy", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("bootgpu: error") == 1 and message in err
    assert not (tmp_path / "s").exists()  # refused before anything is written


def test_gather_only_computes_nothing(tmp_path, write_demo_tsv, capsys):
    """`bootgpu null --gather-only` (the Grid Engine merge job's step): a missing replicate is a
    one-line error naming it, nothing computed; with every replicate there it gathers the same
    null.h5 as one whole run, then the p and q of a merged study."""
    expr = write_demo_tsv(tmp_path / "expr.tsv", 40)
    args = ["--expr", str(expr), "--n-bootstrap", "10", "--fdr-alpha", "0.3", "--focus", "#0:2", "--permutations", "3"]
    out = tmp_path / "tasks"
    assert main(["run", "--out", str(out), "--backend", "numpy", *args[:-2], "--shard", "1/1"]) == 0
    assert main(["merge", str(out)]) == 0
    assert main(["null", "--out", str(out), "--backend", "numpy", "--replicates", "0:2", *args]) == 0
    capsys.readouterr()
    assert main(["null", "--out", str(out), "--backend", "numpy", "--gather-only", *args]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bootgpu: error")]
    assert len(errors) == 1 and "null replicates 2 are missing" in errors[0], errors
    assert sorted(p.name for p in (out / "null").iterdir()) == ["replicate-000000.h5", "replicate-000001.h5"]
    assert not (out / "null.h5").exists() and not (out / "gene_significance.tsv").exists()
    assert main(["null", "--out", str(out), "--backend", "numpy", "--replicates", "2:3", *args]) == 0
    assert main(["null", "--out", str(out), "--backend", "numpy", "--gather-only", *args]) == 0
    assert main(["run", "--out", str(tmp_path / "whole"), "--backend", "numpy", *args]) == 0
    gathered, whole = null_arrays(out), null_arrays(tmp_path / "whole")
    for key in whole:
        np.testing.assert_array_equal(gathered[key], whole[key], err_msg=key)
    for name in ("gene_significance.tsv", "rewiring_hubs.tsv"):
        assert (out / name).read_text() == (tmp_path / "whole" / name).read_text(), name
