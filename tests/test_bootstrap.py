"""Bootstrap of selected edges: re-ranked resample correlations equal scipy on the resampled values,
independent of chunking, and summarised as numpy would."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from scipy import stats

from bootgpu.backends import get_backend
from bootgpu.core.bootstrap import BootstrapSettings, bootstrap_deltas, resample_size, summarise
from bootgpu.core.draws import draw_positions
from bootgpu.core.spearman import group_ranks

SEED, FOCUS, B = 77, 5, 23


def groups(ties: bool):
    rng = np.random.default_rng(4)
    low, high = rng.standard_normal((10, 17)), rng.standard_normal((10, 21))
    low[1] += 0.8 * low[0]
    high[1] -= 0.8 * high[0]
    if ties:
        low, high = np.round(low), np.round(high * 0.7)
    return low, high


def settings(n_bootstrap=B, replicate_chunk=B, edge_chunk=1000, frac=0.8, threads=1):
    return BootstrapSettings(SEED, FOCUS, n_bootstrap, frac, 0.05, replicate_chunk, edge_chunk, threads)


def scipy_deltas(low, high, gene_i, gene_j, cfg):
    """(E, B) r_high_b - r_low_b from scipy.spearmanr on explicitly resampled values (NaN if constant)."""
    out = np.empty((len(gene_i), cfg.n_bootstrap))
    pos = {}
    for code, values in ((0, low), (1, high)):
        k = values.shape[1]
        pos[code] = draw_positions(np, SEED, FOCUS, code, np.arange(cfg.n_bootstrap), k, int(k * cfg.bootstrap_frac))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        for e, (i, j) in enumerate(zip(gene_i, gene_j)):
            for b in range(cfg.n_bootstrap):
                rl = stats.spearmanr(low[i, pos[0][b]], low[j, pos[0][b]]).statistic
                rh = stats.spearmanr(high[i, pos[1][b]], high[j, pos[1][b]]).statistic
                out[e, b] = rh - rl
    return out


def engine_deltas(backend, low, high, gene_i, gene_j, cfg):
    xp = backend.xp
    gl, gh = group_ranks(xp, backend.to_device(low)), group_ranks(xp, backend.to_device(high))
    d = bootstrap_deltas(backend, gl, gh, backend.to_device(np.asarray(gene_i, dtype=np.int64)),
                         backend.to_device(np.asarray(gene_j, dtype=np.int64)), cfg)
    return backend.to_host(d)


def engine_deltas_np(low, high, gene_i, gene_j, cfg):
    return engine_deltas(get_backend("numpy"), low, high, gene_i, gene_j, cfg)


EDGES = ([0, 0, 1, 2, 5, 8, 3], [1, 9, 4, 7, 6, 9, 4])


@pytest.mark.parametrize("ties", [False, True])
def test_bootstrap_deltas_equal_scipy_spearman_of_resampled_values(xp_backend, ties):
    low, high = groups(ties)
    cfg = settings()
    got = engine_deltas(xp_backend, low, high, *EDGES, cfg)
    assert got.shape == (len(EDGES[0]), B) and got.dtype == np.float64
    np.testing.assert_allclose(got, scipy_deltas(low, high, *EDGES, cfg), rtol=0, atol=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_compiled_host_ranks_gene_by_gene_where_a_device_takes_the_per_edge_way(monkeypatch, ties):
    """EDGES (7 edges on 10 genes) are a per-edge chunk (``EdgeGroup``) for a backend that does not
    rank gene by gene (strict, as a device); the NumPy backend with its compiled ranks takes the
    gene way there, with the same bytes (and scipy's Spearman of the resampled values)."""
    import bootgpu.core.bootstrap as core_bootstrap

    assert core_bootstrap.per_edge_way(10, 7, 0) and not core_bootstrap.per_edge_way(10, 7, 0, by_gene=True)
    calls = []
    original = core_bootstrap.EdgeGroup.correlations
    monkeypatch.setattr(core_bootstrap.EdgeGroup, "correlations",
                        lambda self, *a: calls.append(1) or original(self, *a))
    low, high = groups(ties)
    strict = engine_deltas(get_backend("strict"), low, high, *EDGES, settings())
    assert calls, "the strict backend took the per-edge way"
    calls.clear()
    numpy_backend = get_backend("numpy")
    host = engine_deltas(numpy_backend, low, high, *EDGES, settings())
    assert not calls and numpy_backend.ranks_by_gene  # numba is a dependency: the compiled ranks
    assert host.tobytes() == strict.tobytes()
    np.testing.assert_allclose(host, scipy_deltas(low, high, *EDGES, settings()), rtol=0, atol=1e-12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("replicate_chunk,threads", [(1, 1), (4, 1), (7, 1), (B, 1), (1, 2), (4, 3), (7, 2)])
def test_bootstrap_deltas_identical_for_any_replicate_chunk_and_threads(replicate_chunk, threads, ties):
    low, high = groups(ties)
    want = engine_deltas_np(low, high, *EDGES, settings())
    got = engine_deltas_np(low, high, *EDGES, settings(replicate_chunk=replicate_chunk, threads=threads))
    assert got.tobytes() == want.tobytes()


def test_edge_deltas_do_not_depend_on_the_other_edges_computed_with_it():
    """An edge's deltas are the same bytes alone, among 5 disjoint edges and among all 45 pairs
    of the 10 genes (each gene then in 9 edges)."""
    low, high = groups(True)
    iu, ju = np.triu_indices(10, 1)
    together = engine_deltas_np(low, high, iu, ju, settings())
    disjoint_i, disjoint_j = [0, 2, 4, 6, 8], [1, 3, 5, 7, 9]
    sparse = engine_deltas_np(low, high, disjoint_i, disjoint_j, settings())
    for e, (i, j) in enumerate(zip(disjoint_i, disjoint_j)):
        pair = np.flatnonzero((iu == i) & (ju == j))[0]
        assert sparse[e].tobytes() == together[pair].tobytes()
        alone = engine_deltas_np(low, high, [i], [j], settings())
        assert alone[0].tobytes() == together[pair].tobytes()


def test_gene_constant_in_a_resample_gives_nan_replicates_and_nan_summary():
    rng = np.random.default_rng(0)
    low, high = rng.standard_normal((3, 12)), rng.standard_normal((3, 12))
    low[2] = 0.0
    low[2, 0] = 1.0  # varies in the group, but a resample missing position 0 makes it constant
    cfg = settings(n_bootstrap=40, frac=0.5)
    got = engine_deltas_np(low, high, [0, 1], [2, 2], cfg)
    want = scipy_deltas(low, high, [0, 1], [2, 2], cfg)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got).any() and not np.isnan(got).all()
    np.testing.assert_allclose(got, want, atol=1e-12, equal_nan=True)
    summary = summarise(np, got, np.zeros(2), 0.05)
    for key in ("ci_low", "ci_high", "boot_p"):
        assert np.all(np.isnan(summary[key]))


@pytest.mark.parametrize("n_boot,ci_alpha", [(23, 0.05), (100, 0.05), (1000, 0.1), (7, 0.3), (2, 0.05)])
def test_summary_equals_numpy_mean_std_quantile_and_two_sided_p(xp_backend, n_boot, ci_alpha):
    rng = np.random.default_rng(n_boot)
    deltas = np.concatenate([rng.normal(0.3, 0.2, (4, n_boot)), rng.normal(0.0, 0.1, (3, n_boot)),
                             np.zeros((1, n_boot)), -np.abs(rng.normal(0, 1, (1, n_boot)))])
    deltas[5, : n_boot // 2] = 0.0  # zeros count as neither side
    base = rng.normal(0, 0.2, deltas.shape[0])
    got = summarise(xp_backend.xp, xp_backend.to_device(deltas), xp_backend.to_device(base), ci_alpha)
    got = {k: xp_backend.to_host(v) for k, v in got.items()}
    np.testing.assert_allclose(got["boot_mean"], deltas.mean(axis=1), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got["boot_std"], deltas.std(axis=1, ddof=1), rtol=1e-12, atol=1e-15)
    lo, hi = np.quantile(deltas, [ci_alpha / 2, 1 - ci_alpha / 2], axis=1)
    np.testing.assert_allclose(got["ci_low"], lo, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got["ci_high"], hi, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got["bias"], deltas.mean(axis=1) - base, rtol=1e-12, atol=1e-15)
    above, below = (deltas > 0).mean(axis=1), (deltas < 0).mean(axis=1)
    np.testing.assert_allclose(got["boot_p"], np.maximum(2 * np.minimum(above, below), 1 / n_boot), rtol=1e-12)
    assert got["boot_p"][7] == 1.0 / n_boot  # all zeros: no side, the floor of 1/B


@pytest.mark.parametrize("k,frac,m", [(25, 0.8, 20), (12, 0.5, 6), (7, 0.99, 6), (10, 1.0, 10), (33, 0.3, 9)])
def test_resample_size_is_floor_of_k_times_fraction(k, frac, m):
    assert resample_size(k, frac) == m


# m = 255 (last float32-exact size), 256, 336; 16,400 (ranks no longer fit int16: int32)
@pytest.mark.parametrize("k", [319, 320, 420, 20500])
def test_bootstrap_deltas_exact_for_large_resamples(k):
    rng = np.random.default_rng(k)
    low, high = rng.standard_normal((5, k)), np.round(rng.standard_normal((5, k)) * 3)
    low[1] += low[0]
    cfg = settings(n_bootstrap=4)
    edges = ([0, 0, 2, 3], [1, 4, 3, 4])
    got = engine_deltas_np(low, high, *edges, cfg)
    np.testing.assert_allclose(got, scipy_deltas(low, high, *edges, cfg), rtol=0, atol=1e-12)


def all_pairs(n):
    iu, ju = np.triu_indices(n, 1)
    return iu, ju


@pytest.mark.parametrize("ties", [False, True])
def test_dense_blocks_and_sparse_dots_give_the_same_bytes_and_equal_scipy(xp_backend, ties):
    """Every edge through the matrix product of 4-gene tiles, every edge through the per-edge
    integer dots, and the default mix: the same bytes, and scipy's Spearman of the resampled values."""
    low, high = groups(ties)
    iu, ju = all_pairs(10)
    dense = engine_deltas(xp_backend, low, high, iu, ju, dataclasses.replace(settings(), dense_tile=4, dense_density=0.0))
    sparse = engine_deltas(xp_backend, low, high, iu, ju, dataclasses.replace(settings(), dense_density=2.0))
    assert dense.tobytes() == sparse.tobytes()
    np.testing.assert_allclose(dense, scipy_deltas(low, high, iu, ju, settings()), rtol=0, atol=1e-12)


def test_genes_with_and_without_ties_mixed_give_the_same_bytes_whichever_way(xp_backend):
    """A few genes with tied values in one group: their edges take the summed S (a ``tied``
    block, never dense), all others r = dots / s; dense, sparse and mixed layouts give the same
    bytes, and scipy's Spearman of the resampled values."""
    low, high = groups(False)
    low[[2, 7]] = np.round(low[[2, 7]])  # tied in LOW only
    high[4, :6] = 0.5  # tied in HIGH only
    iu, ju = all_pairs(10)
    ways = [engine_deltas(xp_backend, low, high, iu, ju, dataclasses.replace(settings(), **kw))
            for kw in ({"dense_tile": 4, "dense_density": 0.0}, {"dense_density": 2.0}, {"dense_tile": 4, "dense_density": 0.3})]
    assert ways[0].tobytes() == ways[1].tobytes() == ways[2].tobytes()
    np.testing.assert_allclose(ways[0], scipy_deltas(low, high, iu, ju, settings()), rtol=0, atol=1e-12)


def test_edge_layout_sends_a_filled_block_to_the_matrix_product_and_keeps_every_edge_once():
    from bootgpu.core.bootstrap import edge_layout

    backend = get_backend("numpy")
    block_i, block_j = np.meshgrid(np.arange(100, 140), np.arange(200, 240), indexing="ij")  # 40 x 40 all selected
    stray = np.array([[1, 5], [7, 900], [300, 301]])
    gi = np.concatenate([block_i.ravel(), stray[:, 0]])
    gj = np.concatenate([block_j.ravel(), stray[:, 1]])
    cfg = dataclasses.replace(settings(), dense_tile=64)
    chunks = edge_layout(backend, gi, gj, 700, cfg, np.zeros(1000, dtype=bool))
    assert [c.n_edges for c in chunks] == [700, 700, 203]
    seen = np.concatenate([c.edges for c in chunks])
    assert np.array_equal(np.sort(seen), np.arange(1603))
    dense = [b for c in chunks for b in c.blocks if b.dense]
    sparse = [b for c in chunks for b in c.blocks if not b.dense]
    assert sum(b.stop - b.start for b in dense) == 1600 and sum(b.stop - b.start for b in sparse) == 3
    assert not any(b.tied for b in sparse)
    tied = np.zeros(1000, dtype=bool)
    tied[[100, 7]] = True  # the block's row gene 100 and a stray edge's gene: their edges go last, never dense
    chunks = edge_layout(backend, gi, gj, 10_000, cfg, tied)
    (chunk,) = chunks
    kinds = [("dense" if b.dense else "tied" if b.tied else "sparse", b.stop - b.start) for b in chunk.blocks]
    assert kinds[-2:] == [("sparse", 2), ("tied", 41)] and sum(n for kind, n in kinds if kind == "dense") == 1560
    tied_edges = chunk.edges[chunk.blocks[-1].start:]
    assert np.all(tied[gi[tied_edges]] | tied[gj[tied_edges]])
    for c in chunks:  # each dense block's rows x cols hold exactly its edges, at their flat index
        genes = c.genes
        assert np.array_equal(genes, np.unique(np.concatenate([gi[c.edges], gj[c.edges]])))  # the chunk's genes, sorted
        assert np.array_equal(genes[c.iu], gi[c.edges]) and np.array_equal(genes[c.ju], gj[c.edges])
        for b in c.blocks:
            e = c.edges[b.start:b.stop]
            if b.dense:
                rows, cols = genes[b.a][b.flat // b.b.shape[0]], genes[b.b][b.flat % b.b.shape[0]]
                assert np.array_equal(np.minimum(rows, cols), np.minimum(gi[e], gj[e]))
                assert np.array_equal(np.maximum(rows, cols), np.maximum(gi[e], gj[e]))
            else:
                assert np.array_equal(genes[b.a], gi[e]) and np.array_equal(genes[b.b], gj[e])


def test_tile_pairs_follow_the_z_order_curve_of_their_interleaved_bits():
    from bootgpu.core.bootstrap import z_order

    lo, hi = np.meshgrid(np.arange(70), np.arange(70), indexing="ij")
    want = [int("".join(a + b for a, b in zip(f"{i:07b}", f"{j:07b}")), 2) for i, j in zip(lo.ravel(), hi.ravel())]
    assert z_order(lo.ravel(), hi.ravel()).tolist() == want


def test_edge_layout_gives_each_chunk_the_edges_of_a_few_tiles_of_genes():
    """Scattered edges (no dense tile pair) over 4,096 genes, in 16 chunks: on the Z-order curve over
    the 136 tile pairs each chunk's edges fall on a patch of them (at most 10 of the 16 tiles of
    genes; half the genes a chunk on average), where in the caller's order each chunk would touch
    ~3,540 genes (1 - (1 - 2/4096)^4096 of them)."""
    from bootgpu.core.bootstrap import edge_layout

    backend = get_backend("numpy")
    rng = np.random.default_rng(3)
    iu, ju = np.triu_indices(4096, 1)
    pick = rng.permutation(iu.shape[0])[:65_536]
    cfg = dataclasses.replace(settings(), dense_tile=256)
    chunks = edge_layout(backend, iu[pick], ju[pick], 4096, cfg, np.zeros(4096, dtype=bool))
    assert np.array_equal(np.sort(np.concatenate([c.edges for c in chunks])), np.arange(65_536))
    assert all(not b.dense for c in chunks for b in c.blocks)
    assert len(chunks) == 16 and max(int(c.genes.shape[0]) for c in chunks) <= 10 * 256
    assert sum(int(c.genes.shape[0]) for c in chunks) < 0.5 * 4096 * len(chunks)


@pytest.mark.parametrize("edge_chunk,replicate_chunk,threads", [(1, 1, 1), (7, 5, 2), (13, B, 1), (1000, 3, 3)])
def test_summaries_in_any_edge_chunks_equal_summaries_of_all_deltas(edge_chunk, replicate_chunk, threads):
    from bootgpu.core.bootstrap import bootstrap_summaries

    backend = get_backend("numpy")
    low, high = groups(True)
    iu, ju = all_pairs(10)
    cfg = settings(replicate_chunk=replicate_chunk, edge_chunk=edge_chunk, threads=threads)
    cfg = dataclasses.replace(cfg, dense_tile=4, dense_density=0.3)  # a mix of dense and sparse blocks
    base = np.linspace(-0.5, 0.5, iu.shape[0])
    gl, gh = group_ranks(np, low), group_ranks(np, high)
    got = bootstrap_summaries(backend, gl, gh, iu.astype(np.int64), ju.astype(np.int64), base, cfg)
    want = summarise(np, engine_deltas_np(low, high, iu, ju, settings()), base, 0.05)
    for key in want:
        assert got[key].tobytes() == want[key].tobytes(), key
