#!/usr/bin/env python3
"""The CI's order statistics of (E, B) bootstrap deltas on a backend, two ways, in one run: a sort
of every row (what a device did before) and the tails' candidates sorted as one flat array
(``core.tails``, the generic backends' path now); best of 3 after a warm-up, each synchronised,
and whether both give the same bytes (and NumPy's sort's, on the first 5,000 rows).  One JSON line.

    python3 scripts/summary_times.py --backend cupy --rows 300000
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from bootgpu.backends import get_backend
from bootgpu.core.bootstrap import _ci_positions


def deltas(n_rows: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """Rows like a focus gene's deltas: normal around an edge's delta, a few skewed or tied."""
    rng = np.random.default_rng(seed)
    x = rng.normal(rng.uniform(-0.8, 0.8, (n_rows, 1)), rng.uniform(0.05, 0.3, (n_rows, 1)), (n_rows, n_boot))
    odd = rng.random(n_rows) < 0.01
    x[odd] = np.round(x[odd], 1) + 0.0  # ties (and no -0.0, which deltas never hold: r_high - r_low)
    return x


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--n-bootstrap", type=int, default=1000)
    args = ap.parse_args()
    backend = get_backend(args.backend)
    host = deltas(args.rows, args.n_bootstrap)
    x = backend.to_device(host)
    _, positions = _ci_positions(args.n_bootstrap, 0.05)
    mean, std = backend.mean_std(x)
    ways = {"sort_s": lambda: backend.order_statistics(x, positions),
            "candidates_s": lambda: backend.order_statistics(x, positions, centre=mean, spread=std)}
    times, got = {}, {}
    for name, fn in ways.items():
        got[name] = [backend.to_host(v) for v in fn()]  # warm-up (kernels compiled)
        best = float("inf")
        for _ in range(3):
            backend.synchronize()
            t = time.perf_counter()
            fn()
            backend.synchronize()
            best = min(best, time.perf_counter() - t)
        times[name] = round(best, 4)
    identical = all(a.tobytes() == b.tobytes() for a, b in zip(got["sort_s"], got["candidates_s"]))
    some = min(args.rows, 5000)  # and both against NumPy's sort on the host, on some rows
    want = np.sort(host[:some], axis=1)[:, positions]
    exact = all(got["candidates_s"][j][:some].tobytes() == want[:, j].tobytes() for j in range(len(positions)))
    print(json.dumps({"label": f"CI order statistics of ({args.rows:,}, {args.n_bootstrap}) deltas",
                      "backend": backend.name, **times, "sort_over_candidates": round(times["sort_s"] / times["candidates_s"], 2),
                      "identical": identical and exact}))
    return 0 if identical and exact else 1


if __name__ == "__main__":
    sys.exit(main())
