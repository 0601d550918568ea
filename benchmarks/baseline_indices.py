#!/usr/bin/env python3
"""The original pipeline's index generation method, re-implemented as a baseline for timing
`bootgpu indices` on the same machine in the same run.

Method (as the original's batch mode describes it): genes in batches of ``--batch-size``; per
batch, argpartition for LOW/HIGH, one ``Generator.integers`` draw of positions for the whole
batch, a fancy-index gather, and writes into int32 datasets chunked one gene per chunk with
h5py's gzip level 4 + shuffle filters.  ``--batch-size 0`` is the vectorised mode (all genes at
once).  Prints one JSON line: seconds, peak RSS, file size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import h5py
import numpy as np


def baseline(expr, out, low_frac=0.2, high_frac=0.2, n_bootstrap=1000, bootstrap_frac=0.8, seed=0, batch=100):
    n_genes, n = expr.shape
    k_low, k_high = int(n * low_frac), int(n * high_frac)
    m_low, m_high = int(k_low * bootstrap_frac), int(k_high * bootstrap_frac)
    rng = np.random.default_rng(seed)
    filters = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    batch = batch or n_genes
    with h5py.File(out, "w") as h5:
        grp = h5.create_group("indices")
        ds = {
            "low": grp.create_dataset("low", (n_genes, k_low), np.int32, chunks=(1, k_low), **filters),
            "high": grp.create_dataset("high", (n_genes, k_high), np.int32, chunks=(1, k_high), **filters),
            "low_boot": grp.create_dataset("low_boot", (n_genes, n_bootstrap, m_low), np.int32,
                                           chunks=(1, n_bootstrap, m_low), **filters),
            "high_boot": grp.create_dataset("high_boot", (n_genes, n_bootstrap, m_high), np.int32,
                                            chunks=(1, n_bootstrap, m_high), **filters),
        }
        for g0 in range(0, n_genes, batch):
            g1 = min(g0 + batch, n_genes)
            block = expr[g0:g1]
            low = np.argpartition(block, k_low, axis=1)[:, :k_low].astype(np.int32)
            high = np.argpartition(block, n - k_high, axis=1)[:, n - k_high:].astype(np.int32)
            ds["low"][g0:g1] = low
            ds["high"][g0:g1] = high
            rows = np.arange(g1 - g0)[:, None, None]
            pos = rng.integers(0, k_low, size=(g1 - g0, n_bootstrap, m_low), dtype=np.int32)
            ds["low_boot"][g0:g1] = low[rows, pos]
            pos = rng.integers(0, k_high, size=(g1 - g0, n_bootstrap, m_high), dtype=np.int32)
            ds["high_boot"][g0:g1] = high[rows, pos]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=8763)
    ap.add_argument("--samples", type=int, default=938)
    ap.add_argument("--n-bootstrap", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    expr = np.random.default_rng(0).standard_normal((args.genes, args.samples))
    t0 = time.perf_counter()
    baseline(expr, args.out, n_bootstrap=args.n_bootstrap, batch=args.batch_size)
    seconds = time.perf_counter() - t0
    print(json.dumps({"method": "original batch mode (re-implemented)", "batch_size": args.batch_size,
                      "genes": args.genes, "samples": args.samples, "n_bootstrap": args.n_bootstrap,
                      "seconds": seconds, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                      "file_gib": os.path.getsize(args.out) / 2**30}))


if __name__ == "__main__":
    main()
