"""``--store common`` and ``full``: every gene pair's significance masks (bit-packed) and r, equal to
the independent reference (scipy spearmanr, scipy t / normal p-values, statsmodels fdr_bh over all
pairs), through both kinds of pair passes, the results file, a merge and the Python API."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import bootgpu
from bootgpu.backends import get_backend
from bootgpu.config import AnalysisConfig
from bootgpu.core.draws import draw_positions
from bootgpu.errors import BootgpuError
from bootgpu.pipeline import BitPacker, analyse_focus
from bootgpu.planner import plan_batches, stored_pair_bytes
from bootgpu.results_schema import PAIR_MASK_FIELDS

sys.path.insert(0, str(Path(__file__).parent))
from reference import reference_focus  # noqa: E402
from test_pipeline_reference import tied_matrix_with_constant_gene  # noqa: E402

NUMPY = get_backend("numpy")


@pytest.mark.parametrize("sizes", [[1], [3, 5, 8, 0, 17, 1], [8, 8], [7] * 9])
def test_bit_packer_equals_packbits_of_the_whole(sizes):
    bits = np.random.default_rng(len(sizes)).random(sum(sizes)) < 0.3
    packer = BitPacker(bits.size)
    at = 0
    for n in sizes:
        packer.add(bits[at:at + n])
        at += n
    np.testing.assert_array_equal(packer.finish(), np.packbits(bits))


def reference_pairs(values, focus, cfg):
    def draws(group, k, m):
        return draw_positions(np, cfg.seed, focus, group, np.arange(cfg.n_bootstrap), k, m)

    keep = ("low_frac", "high_frac", "n_bootstrap", "bootstrap_frac", "fdr_alpha", "ci_alpha", "edge_selection")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return reference_focus(values, focus, draws=draws, **{k: getattr(cfg, k) for k in keep})["pairs"]


@pytest.mark.parametrize("joint", [False, True])
def test_full_store_equals_the_reference_on_tied_data(monkeypatch, joint):
    """Heavy ties and a gene constant in LOW (NaN r: never significant); with ``joint`` the pair
    passes keep joint level indices (as on ALL), otherwise levels per group."""
    from bootgpu import pipeline

    monkeypatch.setattr(pipeline, "joint_cells", (lambda *a: 1) if joint else (lambda *a: 0))
    values = tied_matrix_with_constant_gene(140)  # k = 28: within the joint histogram's limit
    cfg = AnalysisConfig(n_bootstrap=20, fdr_alpha=0.2, store="full")
    k_low, k_high = cfg.validate(values.shape[1])
    plan = plan_batches(values.shape[0], values.shape[1], k_low, k_high, cfg.n_bootstrap, 1 << 30, rows_per_block=7,
                        store="full")
    got = analyse_focus(NUMPY, NUMPY.to_device(values), 0, cfg, plan, k_low, k_high)
    want = reference_pairs(values, 0, cfg)
    n_pairs = values.shape[0] * (values.shape[0] - 1) // 2
    for name in PAIR_MASK_FIELDS:
        mask = np.unpackbits(got.pairs[name], count=n_pairs).astype(bool)
        np.testing.assert_array_equal(mask, want[name], err_msg=name)
        assert mask.any() and not mask.all()
    for name in ("r_low", "r_high"):
        assert got.pairs[name].dtype == np.float32
        np.testing.assert_allclose(got.pairs[name], want[name].astype(np.float32), rtol=0, atol=1e-7, equal_nan=True)
    assert np.isnan(got.pairs["r_low"]).sum() == values.shape[0] - 1  # gene 39's pairs


def test_store_common_through_run_merge_and_api(tmp_path, write_demo_tsv):
    """`bootgpu run --store common` on two shards, merged: the API unpacks masks whose counts are
    the focus gene's n_sig_* and whose sig_diff pairs are its selected edges."""
    expr = write_demo_tsv(tmp_path / "expr.tsv", 120)
    out = tmp_path / "study"
    base = [sys.executable, "-m", "bootgpu", "run", "--expr", str(expr), "--out", str(out), "--focus", "#0,#1",
            "--n-bootstrap", "20", "--store", "common", "--fdr-alpha", "0.2"]
    for shard in ("1/2", "2/2"):
        subprocess.run([*base, "--shard", shard], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "bootgpu", "merge", str(out)], check=True, capture_output=True)
    with bootgpu.open_results(out / "results.h5") as res:
        assert res.meta["store"] == "common"
        for gene in res.focus_genes["gene_id"]:
            pairs = res.pair_significance(gene)
            assert list(pairs.columns) == list(PAIR_MASK_FIELDS) and len(pairs) == 120 * 119 // 2
            row = res.focus_genes.loc[gene]
            for name in ("low", "high", "diff"):
                assert int(pairs[f"sig_{name}"].sum()) == row[f"n_sig_{name}"]
            edges = res.edges(gene)
            i, j = edges["gene_i"].to_numpy(), edges["gene_j"].to_numpy()
            condensed = i * (2 * 120 - i - 1) // 2 + j - i - 1
            np.testing.assert_array_equal(np.flatnonzero(pairs["sig_diff"].to_numpy()), condensed)
            np.testing.assert_array_equal(pairs["sig_low"].to_numpy()[condensed], edges["q_low"].to_numpy() < 0.2)


def test_minimal_store_has_no_pairs_and_says_how_to_get_them(small_study):
    with bootgpu.open_results(small_study / "results.h5") as res:
        gene = res.focus_genes["gene_id"].iloc[0]
        with pytest.raises(BootgpuError, match="--store common"):
            res.pair_significance(gene)


def test_planner_counts_the_stored_pairs():
    assert stored_pair_bytes(8763, "minimal") == 0
    n_pairs = 8763 * 8762 // 2
    assert stored_pair_bytes(8763, "common") == 3 * (n_pairs + 7) // 8
    assert stored_pair_bytes(8763, "full") == 3 * (n_pairs + 7) // 8 + 8 * n_pairs
    plans = {s: plan_batches(8763, 938, 187, 187, 1000, 8 << 30, store=s) for s in ("minimal", "full")}
    assert plans["full"].resident_bytes - plans["minimal"].resident_bytes == stored_pair_bytes(8763, "full")
