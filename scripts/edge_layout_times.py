#!/usr/bin/env python3
"""Seconds of the bootstrap's host edge layout (``core.bootstrap.edge_layout``) on saved selections,
dense tiles off (as on a device) and on (as on a host, without and with tied genes); one JSON line each, best of ``--repeat``.

    python3 scripts/bootstrap_stage.py extract --data all --focus 111 --out /tmp/sel111.npz
    python3 scripts/edge_layout_times.py /tmp/sel111.npz [--save layout.npz | --check layout.npz]

``--save`` keeps every chunk's and block's arrays, ``--check`` compares them with saved ones byte for
byte (e.g. another checkout's, with ``PYTHONPATH=...``): ``identical`` or the first that differs.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from bootgpu.backends import get_backend
from bootgpu.core.bootstrap import DENSE_DENSITY, NEVER_DENSE, BootstrapSettings, edge_layout

CASES = (("device", NEVER_DENSE, 14940, 0.0), ("host", DENSE_DENSITY, 200_000, 0.0),
         ("host, a third of the genes tied", DENSE_DENSITY, 200_000, 1 / 3))


def arrays(chunks) -> dict:
    out = {}
    for c, chunk in enumerate(chunks):
        for key in ("edges", "genes", "iu", "ju"):
            out[f"{c}.{key}"] = np.asarray(getattr(chunk, key))
        for k, block in enumerate(chunk.blocks):
            out[f"{c}.{k}.range"] = np.array([block.start, block.stop, block.dense, block.tied])
            for key in ("a", "b", "flat"):
                if getattr(block, key) is not None:
                    out[f"{c}.{k}.{key}"] = np.asarray(getattr(block, key))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sel", nargs="+")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--save")
    ap.add_argument("--check")
    args = ap.parse_args()
    backend = get_backend("numpy")
    saved, want = {}, dict(np.load(args.check)) if args.check else None
    for path in args.sel:
        sel = np.load(path)
        for name, density, chunk, tied_share in CASES:
            tied = np.random.default_rng(0).random(sel["values"].shape[0]) < tied_share
            cfg = BootstrapSettings(1, 0, 1000, 0.8, 0.05, 1, chunk, dense_density=density)
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                chunks = edge_layout(backend, sel["gene_i"], sel["gene_j"], chunk, cfg, tied)
                times.append(time.perf_counter() - t0)
            got = {f"{path}:{name}:{k}": v for k, v in arrays(chunks).items()}
            saved.update(got)
            row = {"sel": path, "layout": name, "edges": int(sel["gene_i"].shape[0]), "chunks": len(chunks),
                   "seconds": round(min(times), 4)}
            if want is not None:
                bad = [k for k in got if k not in want or want[k].dtype != got[k].dtype or want[k].tobytes() != got[k].tobytes()]
                row["check"] = "identical" if not bad and len(got) == sum(k.startswith(f"{path}:{name}:") for k in want) else bad[:1]
            print(json.dumps(row), flush=True)
    if args.save:
        np.savez(args.save, **saved)


if __name__ == "__main__":
    main()
