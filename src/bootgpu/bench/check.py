"""The edge check: each implementation's selected edges are written to ``OUT_DIR/IMPL.npz`` by its
worker, and every backend's are compared with the reference's, edge by edge."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bootgpu.bench.reference import REFERENCE

COMPARED_FIELDS = ("r_low", "r_high", "q_low", "q_high", "q_diff", "boot_mean", "boot_std", "ci_low", "ci_high", "boot_p")


def save_edges(out_dir: Path, impl: str, edges: dict) -> None:
    """``out_dir/IMPL.npz``: the edges' genes and ``COMPARED_FIELDS`` (host arrays)."""
    np.savez(out_dir / f"{impl}.npz", **{key: edges[key] for key in ("gene_i", "gene_j", *COMPARED_FIELDS)})


def compare_edges(out_dir: Path, impl: str) -> dict:
    """Selected edges of ``impl`` against the reference's: same pairs, largest differences."""
    a, b = np.load(out_dir / f"{impl}.npz"), np.load(out_dir / f"{REFERENCE}.npz")
    key_a = a["gene_i"].astype(np.int64) * (1 << 32) + a["gene_j"]
    key_b = b["gene_i"].astype(np.int64) * (1 << 32) + b["gene_j"]
    same = bool(np.array_equal(np.sort(key_a), np.sort(key_b)))
    out: dict = {"same_selected_edges": same, "n_selected": [int(key_a.size), int(key_b.size)]}
    if same and key_a.size:
        ia, ib = np.argsort(key_a), np.argsort(key_b)
        out["max_abs_diff"] = {f: float(np.nanmax(np.abs(a[f][ia] - b[f][ib]))) for f in COMPARED_FIELDS}
    return out
