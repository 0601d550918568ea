"""Step 2: bootstrap draws as a pure function of (seed, focus gene, group, replicate, slot).

Algorithm ``splitmix64-stream-v1`` (integer arithmetic only, so NumPy, CuPy and array_api_strict
give the same bytes, whatever the batch):

    key(seed, focus, group) = mix(mix(mix(seed + G) ^ (focus + 1)) ^ (group + 1))
    rkey(replicate)         = mix(key + (replicate + 1) * G)
    word(slot)              = mix(rkey + (slot + 1) * G)
    position                = ((word >> 32) * k) >> 32            in [0, k)

where mix is SplitMix64's finaliser, G = 0x9E3779B97F4A7C15, all arithmetic modulo 2**64, and
group is 0 for LOW and 1 for HIGH.  Nothing is carried between calls, so any replicate range of
any focus gene can be drawn on its own.
"""

from __future__ import annotations

RNG_ALGORITHM = "splitmix64-stream-v1"

_GAMMA = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_MASK = (1 << 64) - 1


def _u64(xp, value):
    return xp.asarray(value, dtype=xp.uint64)


def _mix(xp, z):
    """SplitMix64 finaliser on a uint64 array (wrapping multiplication)."""
    s30, s27, s31 = _u64(xp, 30), _u64(xp, 27), _u64(xp, 31)
    z = (z ^ (z >> s30)) * _u64(xp, _M1)
    z = (z ^ (z >> s27)) * _u64(xp, _M2)
    return z ^ (z >> s31)


def _mix_int(z: int) -> int:
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def stream_key(seed: int, focus: int, group: int) -> int:
    """The 64-bit key of one (seed, focus gene, group) stream; plain Python integers."""
    key = _mix_int((seed + _GAMMA) & _MASK)
    key = _mix_int(key ^ (focus + 1))
    return _mix_int(key ^ (group + 1))


def draw_positions(xp, seed: int, focus: int, group: int, replicates, k: int, m: int):
    """Positions drawn with replacement from a group of size ``k``: shape (len(replicates), m), int64.

    ``replicates`` is a 1-D integer array (or range) of replicate numbers; slot runs over 0..m-1.
    """
    reps = xp.asarray(replicates, dtype=xp.uint64) if not hasattr(replicates, "dtype") else xp.astype(replicates, xp.uint64)
    gamma = _u64(xp, _GAMMA)
    rkey = _mix(xp, _u64(xp, stream_key(seed, focus, group)) + (reps + _u64(xp, 1)) * gamma)
    slots = xp.arange(1, m + 1, dtype=xp.uint64) * gamma
    words = _mix(xp, rkey[:, None] + slots[None, :])
    s32 = _u64(xp, 32)
    return xp.astype(((words >> s32) * _u64(xp, k)) >> s32, xp.int64)


def draw_counts(xp, positions, k: int):
    """How often each group position was drawn in each replicate: (R, m) positions -> (R, k) int64.

    Counting by sorting and searching keeps to the array-API standard (it has no bincount).
    """
    n_rep = positions.shape[0]
    keys = xp.reshape(positions + xp.arange(n_rep, dtype=xp.int64)[:, None] * k, (-1,))
    keys = xp.sort(keys)
    slots = xp.arange(n_rep * k, dtype=xp.int64)
    counts = xp.searchsorted(keys, slots, side="right") - xp.searchsorted(keys, slots, side="left")
    return xp.reshape(xp.astype(counts, xp.int64), (n_rep, k))
