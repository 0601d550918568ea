"""pytest-benchmark micro-benchmarks of the hot kernels, on every backend usable here.

Not part of the default test run (pyproject's addopts ignore this folder; naming the folder on the
command line collects it all the same); run them with

    python3 -m pytest tests/benchmarks --benchmark-only

Each benchmark's group is its backend, so the table lists one backend's kernels together
(``--benchmark-group-by=group``, the default).  Device work is synchronised inside the timed call.
The whole-pipeline and reference-shape figures come from asv (``benchmarks/``) and `bootgpu bench`.
"""

from __future__ import annotations

import pytest

from bootgpu.bench import stage_correlations, stage_tests_bh
from bootgpu.pipeline import rank_groups
from bootgpu.config import AnalysisConfig
from bootgpu.core.bootstrap import BootstrapSettings, bootstrap_deltas
from bootgpu.core.fdr import BHStream, bins_for_pairs
from bootgpu.core.significance import FisherTest
from bootgpu.planner import plan_batches
from bootgpu.synthetic import planted_matrix

GENES, SAMPLES = 1000, 200  # LOW and HIGH of 40 samples each
REPLICATE_CHUNK = 50  # replicates in the timed bootstrap chunk


@pytest.fixture(scope="module")
def matrix():
    return planted_matrix(GENES, SAMPLES, 40, strength=0.6).values


@pytest.fixture
def bench(xp_backend, benchmark):
    """``bench(fn)``: time ``fn`` on the backend, synchronising the device before the timer stops."""
    benchmark.group = f"backend {xp_backend.name}"

    def run(fn):
        def timed():
            out = fn()
            xp_backend.synchronize()
            return out

        xp_backend.synchronize()
        return benchmark(timed)

    return run


@pytest.fixture
def prepared(xp_backend, matrix):
    """Device matrix, config, plan and both groups' ranks."""
    cfg = AnalysisConfig(n_bootstrap=REPLICATE_CHUNK)
    k_low, k_high = cfg.validate(SAMPLES)
    plan = plan_batches(GENES, SAMPLES, k_low, k_high, cfg.n_bootstrap, 2**30, replicate_chunk=REPLICATE_CHUNK)
    expr = xp_backend.to_device(matrix)
    groups = rank_groups(xp_backend, expr, 0, k_low, k_high)
    return {"expr": expr, "cfg": cfg, "plan": plan, "k": (k_low, k_high), "groups": groups}


def test_ranking_of_both_groups(xp_backend, bench, prepared):
    groups = bench(lambda: rank_groups(xp_backend, prepared["expr"], 0, *prepared["k"]))
    assert groups.low.d.shape == (GENES, prepared["k"][0])


def test_rank_gemm_all_pairs(xp_backend, bench, prepared):
    xp, d = xp_backend.xp, prepared["groups"].low.d
    dots = bench(lambda: xp.matmul(d, xp.matrix_transpose(d)))
    assert dots.shape == (GENES, GENES)


def test_bh_threshold_fisher(xp_backend, bench, prepared):
    """Histogram pass, refinement and exact BH threshold of the Fisher test over all pairs."""
    passes = stage_correlations(xp_backend, prepared["groups"], prepared["plan"])
    stats = [item[2]["diff"] for item in passes]
    test = FisherTest(*prepared["k"])
    n_bins = bins_for_pairs(GENES * (GENES - 1) // 2)

    def threshold():
        stream = BHStream(xp_backend, test, "diff", n_bins)
        for s in stats:
            stream.count(s)
        ref = stream.refinement(stream.bins_for_threshold(0.05))
        for s in stats:
            ref.gather(s)
        return ref.finish().threshold(0.05)

    assert bench(threshold) > 0


def test_bootstrap_chunk_selected_edges(xp_backend, bench, prepared):
    """One chunk of REPLICATE_CHUNK replicates of every selected edge (both groups re-ranked)."""
    cfg = prepared["cfg"]
    passes = stage_correlations(xp_backend, prepared["groups"], prepared["plan"])
    sel = stage_tests_bh(xp_backend, passes, cfg)
    settings = BootstrapSettings(cfg.seed, 0, REPLICATE_CHUNK, cfg.bootstrap_frac, cfg.ci_alpha, REPLICATE_CHUNK, 10**6)
    deltas = bench(lambda: bootstrap_deltas(xp_backend, prepared["groups"].low, prepared["groups"].high, sel["gene_i"], sel["gene_j"], settings))
    assert deltas.shape == (sel["gene_i"].shape[0], REPLICATE_CHUNK)
