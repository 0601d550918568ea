"""Bootstrap draws: a pure, batch-independent, backend-independent and uniform function."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bootgpu.backends import get_backend
from bootgpu.core.draws import draw_counts, draw_positions

SEED, FOCUS, K, M = 1234, 17, 25, 20


def positions(xp, reps, *, seed=SEED, focus=FOCUS, group=0, k=K, m=M):
    return draw_positions(xp, seed, focus, group, xp.asarray(reps, dtype=xp.int64), k, m)


@pytest.mark.parametrize("chunk", [1, 7, 37, 100])
def test_draws_identical_for_any_batch_size(chunk):
    whole = positions(np, np.arange(100))
    pieces = [positions(np, np.arange(r0, min(r0 + chunk, 100))) for r0 in range(0, 100, chunk)]
    assert np.concatenate(pieces).tobytes() == whole.tobytes()


def test_draws_of_one_replicate_do_not_depend_on_its_neighbours():
    whole = positions(np, np.arange(100))
    scattered = positions(np, np.array([99, 3, 50, 3]))
    np.testing.assert_array_equal(scattered, whole[[99, 3, 50, 3]])


def test_draws_identical_on_numpy_and_strict_backends():
    strict = get_backend("strict")
    xs = strict.xp
    for group, k, m in ((0, K, M), (1, 7, 5), (1, 1000, 800)):
        a = draw_positions(np, SEED, FOCUS, group, np.arange(60), k, m)
        b = draw_positions(xs, SEED, FOCUS, group, xs.arange(60, dtype=xs.int64), k, m)
        b = np.from_dlpack(b)
        assert a.dtype == b.dtype == np.int64
        assert a.tobytes() == b.tobytes()


def test_draws_identical_on_every_backend(xp_backend):
    xp = xp_backend.xp
    dev = draw_positions(xp, SEED, FOCUS, 1, xp.arange(40, dtype=xp.int64), K, M)
    np.testing.assert_array_equal(xp_backend.to_host(dev), draw_positions(np, SEED, FOCUS, 1, np.arange(40), K, M))


@pytest.mark.parametrize("change", [{"seed": SEED + 1}, {"focus": FOCUS + 1}, {"group": 1}, {"seed": 0}])
def test_draws_differ_for_different_seed_focus_or_group(change):
    base = positions(np, np.arange(50))
    other = positions(np, np.arange(50), **change)
    # 1000 positions in [0, 25): two independent streams agree on ~1/25 of them
    assert np.mean(base == other) < 0.1


def test_draws_differ_between_replicates_and_slots():
    pos = positions(np, np.arange(200), k=1000, m=50)
    assert len({row.tobytes() for row in pos}) == 200
    assert np.mean(pos[:, :-1] == pos[:, 1:]) < 0.01  # k = 1000: adjacent slots agree 1/1000 of the time


@pytest.mark.parametrize("k", [1, 2, 7, 25, 1000, 2**31 - 1])
def test_positions_lie_in_zero_to_k(k):
    pos = positions(np, np.arange(200), k=k, m=64)
    assert pos.dtype == np.int64 and pos.shape == (200, 64)
    assert pos.min() >= 0 and pos.max() < k
    if k <= 25:
        assert set(np.unique(pos)) == set(range(k))  # 12800 draws reach every position


@pytest.mark.parametrize("k", [7, 60, 101])
def test_positions_are_uniform_chi_square(k):
    pos = positions(np, np.arange(2000), k=k, m=50)  # 100000 draws
    counts = np.bincount(pos.ravel(), minlength=k)
    assert stats.chisquare(counts).pvalue > 1e-6
    # every slot separately (a bias tied to slot numbers would show here)
    by_slot = np.stack([np.bincount(pos[:, s], minlength=k) for s in range(pos.shape[1])])
    assert stats.chisquare(by_slot.sum(axis=0)).pvalue > 1e-6
    assert stats.chisquare(by_slot[0]).pvalue > 1e-6


def test_consecutive_slots_are_independent_chi_square():
    k = 10
    pos = positions(np, np.arange(2000), k=k, m=51)
    pairs = pos[:, :-1] * k + pos[:, 1:]  # 100000 (slot, slot + 1) pairs over k*k cells
    assert stats.chisquare(np.bincount(pairs.ravel(), minlength=k * k)).pvalue > 1e-6
    reps = pos[:-1, 0] * k + pos[1:, 0]  # first slots of consecutive replicates
    assert stats.chisquare(np.bincount(reps, minlength=k * k)).pvalue > 1e-6


def test_draw_counts_equal_bincount_per_row(xp_backend):
    xp = xp_backend.xp
    for k, m in ((K, M), (5, 40), (1, 3), (300, 10)):
        pos_np = draw_positions(np, SEED, FOCUS, 0, np.arange(33), k, m)
        counts = xp_backend.to_host(draw_counts(xp, xp_backend.to_device(pos_np), k))
        expected = np.stack([np.bincount(row, minlength=k) for row in pos_np])
        assert counts.dtype == np.int64
        np.testing.assert_array_equal(counts, expected)
        assert np.all(counts.sum(axis=1) == m)
        by_position = xp_backend.to_host(draw_counts(xp, xp_backend.to_device(pos_np), k, by_position=True))
        np.testing.assert_array_equal(by_position, expected.T)
        assert by_position.flags.c_contiguous


_G, _M1, _M2, _MASK = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, (1 << 64) - 1


def _mix_py(z: int) -> int:
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def documented_position(seed, focus, group, rep, slot, k):
    """splitmix64-pairs-v1 as the draws module documents it, in plain Python integers."""
    key = _mix_py(_mix_py(_mix_py((seed + _G) & _MASK) ^ (focus + 1)) ^ (group + 1))
    rkey = _mix_py((key + (rep + 1) * _G) & _MASK)
    word = _mix_py((rkey + (slot // 2 + 1) * _G) & _MASK)
    half = word >> 32 if slot % 2 == 0 else word & 0xFFFFFFFF
    return (half * k) >> 32


@pytest.mark.parametrize("seed,focus,group,k", [(0, 0, 0, 25), (42, 8762, 1, 187), (2**63 - 1, 12345, 0, 3),
                                                (7, 1, 1, 2**31 - 1)])
def test_draws_follow_the_documented_splitmix64_stream(seed, focus, group, k):
    """Results name their RNG algorithm, so its bytes must never change silently."""
    from bootgpu.core.draws import RNG_ALGORITHM

    assert RNG_ALGORITHM == "splitmix64-pairs-v1"
    reps = np.array([0, 1, 2, 999, 123456])
    pos = draw_positions(np, seed, focus, group, reps, k, 9)
    want = [[documented_position(seed, focus, group, int(r), s, k) for s in range(9)] for r in reps]
    np.testing.assert_array_equal(pos, np.array(want, dtype=np.int64))


@pytest.mark.parametrize("name", ["numpy", "strict"])
def test_replicate_counts_hand_out_what_each_replicate_chunk_would_draw(name):
    from bootgpu.core.bootstrap import BootstrapSettings, ReplicateCounts

    backend = get_backend(name)
    xp = backend.xp
    n_boot = 4000
    cfg = BootstrapSettings(seed=SEED, focus=FOCUS, n_bootstrap=n_boot, bootstrap_frac=0.8, ci_alpha=0.05,
                            replicate_chunk=10, edge_chunk=100)
    draws = ReplicateCounts(backend, cfg)
    for code, k, m in ((1, K, M), (0, 3, 2)):  # k = 3, m = 2: some replicates draw one position twice
        draws.prepare(code, k, m)
        draws.prepare(code, k, m)  # a second edge chunk: drawn once
        bad_seen = 0
        for r0, r1 in ((0, 10), (10, 33), (90, 97), (5, 6), (0, n_boot)):
            got = draws.chunk(code, r0, r1)
            counts = backend.to_host(got.counts)
            pos = draw_positions(xp, SEED, FOCUS, code, xp.arange(r0, r1, dtype=xp.int64), k, m)
            want = backend.to_host(draw_counts(xp, pos, k, by_position=True))
            assert counts.shape == (k, r1 - r0) and counts.flags.c_contiguous
            assert counts.dtype == want.dtype and counts.tobytes() == want.tobytes()
            # S of an untied gene: ((m^3 - m) - sum_p (c_p^3 - c_p)) / 3, and 0 exactly where one
            # position was drawn m times (every gene constant): those replicates are the bad ones
            c = want.astype(np.int64)
            s_want = ((m**3 - m) - (c**3 - c).sum(axis=0)) / 3.0
            np.testing.assert_array_equal(backend.to_host(got.s), s_want)
            np.testing.assert_array_equal(got.bad, np.flatnonzero(s_want == 0))
            np.testing.assert_array_equal(backend.to_host(got.den)[:, 0], np.where(s_want > 0, s_want, 1.0))
            bad_seen += len(got.bad)
        assert code == 1 or bad_seen > 0  # k = 3, m = 2: one replicate in three draws a position twice
