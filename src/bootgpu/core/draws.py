"""Step 2: bootstrap draws as a pure function of (seed, focus gene, group, replicate, slot).

Algorithm ``splitmix64-pairs-v1`` (integer arithmetic only, so NumPy, CuPy and array_api_strict
give the same bytes, whatever the batch):

    key(seed, focus, group) = mix(mix(mix(seed + G) ^ (focus + 1)) ^ (group + 1))
    rkey(replicate)         = mix(key + (replicate + 1) * G)
    word(j)                 = mix(rkey + (j + 1) * G)                  j = 0, 1, ...
    u(slot)                 = high 32 bits of word(slot // 2) for even slots, low 32 bits for odd
    position(slot)          = (u * k) >> 32                             in [0, k)

where mix is SplitMix64's finaliser, G = 0x9E3779B97F4A7C15, all arithmetic modulo 2**64, and
group is 0 for LOW and 1 for HIGH.  Each 64-bit word serves two slots, halving the mixing work.
Nothing is carried between calls, so any replicate range of any focus gene can be drawn alone.
"""

from __future__ import annotations

import os

RNG_ALGORITHM = "splitmix64-pairs-v1"

_GAMMA = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_MASK = (1 << 64) - 1


def _u64(xp, value):
    return xp.asarray(value, dtype=xp.uint64)


_CONSTANTS: dict = {}


def _const(xp, value: int):
    """The algorithm's fixed uint64 constants, made once per namespace and process and reused: on a
    device each fresh one is a host-to-device copy (the draws of one focus gene made 396 of them);
    a forked process makes its own (a parent's device arrays are not its to use)."""
    key = (xp, value, os.getpid())
    got = _CONSTANTS.get(key)
    if got is None:
        got = _CONSTANTS[key] = _u64(xp, value)
    return got


def _mix(xp, z):
    """SplitMix64 finaliser on a uint64 array (wrapping multiplication), in place: ``z`` must be a
    fresh array.  In-place updates avoid a new 8-byte temporary per step (6x faster in NumPy)."""
    for shift, mult in ((30, _M1), (27, _M2)):
        z ^= z >> _const(xp, shift)
        z *= _const(xp, mult)
    z ^= z >> _const(xp, 31)
    return z


def stream_keys(xp, seed: int, focus, group: int):
    """uint64 keys of the (seed, focus gene, group) streams for an array of focus genes."""
    focus = xp.astype(focus, xp.uint64) if hasattr(focus, "dtype") else xp.asarray(focus, dtype=xp.uint64)
    one = _const(xp, 1)
    key = _mix(xp, _u64(xp, (seed + _GAMMA) & _MASK))
    key = _mix(xp, key ^ (focus + one))
    return _mix(xp, key ^ _u64(xp, group + 1))


def draw_positions_genes(xp, seed: int, focus, group: int, replicates, k: int, m: int):
    """Positions for several focus genes at once: (len(focus), len(replicates), m), int64."""
    reps = xp.astype(replicates, xp.uint64) if hasattr(replicates, "dtype") else xp.asarray(replicates, dtype=xp.uint64)
    gamma = _const(xp, _GAMMA)
    keys = stream_keys(xp, seed, focus, group)  # (G,)
    rkey = _mix(xp, keys[:, None] + (reps[None, :] + _const(xp, 1)) * gamma)  # (G, R)
    n_words = (m + 1) // 2
    counters = xp.arange(1, n_words + 1, dtype=xp.uint64) * gamma
    words = _mix(xp, rkey[:, :, None] + counters[None, None, :])  # (G, R, n_words)
    s32, kk = _const(xp, 32), _u64(xp, k)
    out = xp.empty((words.shape[0], words.shape[1], 2 * n_words), dtype=xp.int64)
    out[:, :, 1::2] = xp.astype(((words & _const(xp, 0xFFFFFFFF)) * kk) >> s32, xp.int64)  # odd slots: low half
    words >>= s32
    words *= kk
    words >>= s32
    out[:, :, 0::2] = xp.astype(words, xp.int64)  # even slots: high half
    return out[:, :, :m]


def draw_positions(xp, seed: int, focus: int, group: int, replicates, k: int, m: int):
    """Positions drawn with replacement from a group of size ``k``: (len(replicates), m), int64.

    ``replicates`` is a 1-D integer array (or range) of replicate numbers; slot runs over 0..m-1.
    """
    return draw_positions_genes(xp, seed, xp.asarray([focus], dtype=xp.int64), group, replicates, k, m)[0, ...]


def draw_counts(xp, positions, k: int, *, by_position: bool = False):
    """How often each group position was drawn in each replicate: (R, m) positions -> (R, k)
    int64, or with ``by_position`` (k, R) laid out position-major (what the bootstrap reads
    row by row).

    Counting by sorting and searching keeps to the array-API standard (it has no bincount).
    """
    n_rep = positions.shape[0]
    reps = xp.arange(n_rep, dtype=xp.int64)[:, None]
    keys = xp.reshape(positions * n_rep + reps if by_position else positions + reps * k, (-1,))
    keys = xp.sort(keys)
    slots = xp.arange(n_rep * k, dtype=xp.int64)
    counts = xp.searchsorted(keys, slots, side="right") - xp.searchsorted(keys, slots, side="left")
    return xp.reshape(xp.astype(counts, xp.int64), (k, n_rep) if by_position else (n_rep, k))


# --- the permutation null's random splits (bootgpu.null) -----------------------------------------

NULL_ALGORITHM = "splitmix64-null-split-v1"
NULL_SPLIT_GROUP = 2  # the stream code of null splits: bootstrap draws use groups 0 (LOW) and 1 (HIGH)
NULL_DRAW_BASE = 1 << 62  # null replicate r bootstraps its edges with the draws of "focus gene" 2**62 + r


def null_split(xp, seed: int, replicate: int, n: int, k_low: int, k_high: int):
    """(LOW, HIGH) sample indices of null replicate ``replicate``: disjoint random sets of sizes
    ``k_low`` and ``k_high`` out of ``n`` samples, each ascending, int64.

    Algorithm ``splitmix64-null-split-v1``: with key = stream_keys(seed, replicate, 2) (group code
    2, which no bootstrap stream uses), sample s gets word(s) = mix(key + (s + 1) * G); the samples
    ordered by word (ties, p ~ n^2 / 2^65, by sample index) are a uniform random permutation, whose
    first k_low are LOW and next k_high HIGH.  A pure function of (seed, replicate): any replicate
    is drawn alone, on any backend, the same."""
    key = stream_keys(xp, seed, xp.asarray([replicate], dtype=xp.int64), NULL_SPLIT_GROUP)
    counters = xp.arange(1, n + 1, dtype=xp.uint64) * _const(xp, _GAMMA)
    words = _mix(xp, key + counters)
    order = xp.argsort(words, stable=True)
    return xp.sort(order[:k_low]), xp.sort(order[k_low : k_low + k_high])


def null_draw_code(replicate: int) -> int:
    """The 'focus gene' whose bootstrap draw streams null replicate ``replicate`` uses (2**62 + r:
    never a row of a matrix, so never an observed focus gene's draws)."""
    return NULL_DRAW_BASE + int(replicate)
