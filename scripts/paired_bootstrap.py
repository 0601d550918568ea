"""The bootstrap stage of saved selections, old and new alternating in one process (so both see
the machine in the same state); seconds per round and whether the two give the same summaries.
``old`` is another tree's ``column_statistics`` kernel (a worktree of 913dd78) with row-major
tile pairs, ``new`` this tree's; with ``BOOTGPU_PAIRED=ranks``, ``old`` is this tree without the
fused resample ranks (``Backend.resample_ranks`` off: ``ranks.position_ranks``); with
``BOOTGPU_PAIRED=deltas`` this tree without one-pass deltas (``Backend.fused_deltas`` off: r_high
stored, then r_low taken from it); OLD_TREE unused in both.

    python3 scripts/bootstrap_stage.py extract --data all --focus 111 --out /tmp/sel111.npz
    python3 scripts/paired_bootstrap.py OLD_TREE THREADS /tmp/sel111.npz [more.npz ...]
"""
import os
import importlib.util
import pathlib
import sys
import time

import numpy as np
from bootgpu import pipeline
from bootgpu.backends import get_backend, host_kernels
from bootgpu.core import bootstrap as bs
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bootstrap_stage import plan_for

spec = importlib.util.spec_from_file_location("old_hk", str(pathlib.Path(__file__).resolve().parents[1] / "src/bootgpu/backends/host_kernels.py") if os.environ.get("BOOTGPU_PAIRED") in ("ranks", "deltas") else str(pathlib.Path(sys.argv[1]) / "src/bootgpu/backends/host_kernels.py"))
old_hk = importlib.util.module_from_spec(spec); spec.loader.exec_module(old_hk)
old_hk._load()
new_kernel, new_z = host_kernels.kernel, bs.z_order
def old_kernel(name):
    return old_hk.kernel(name) if name == "column_statistics" else new_kernel(name)
def old_z(lo, hi):
    lo, hi = np.asarray(lo, np.int64), np.asarray(hi, np.int64)
    return lo * 4096 + hi  # row-major, as before (tiles < 4096)
backend = get_backend("numpy")
RANKS = os.environ.get("BOOTGPU_PAIRED") == "ranks"
DELTAS = os.environ.get("BOOTGPU_PAIRED") == "deltas"
new_ranks = type(backend).resample_ranks
new_fused = type(backend).fused_deltas
def use(variant):
    if RANKS:
        type(backend).resample_ranks = (lambda self, *a: None) if variant == "old" else new_ranks
        return
    if DELTAS:
        type(backend).fused_deltas = False if variant == "old" else new_fused
        return
    host_kernels.kernel = old_kernel if variant == "old" else new_kernel
    bs.z_order = old_z if variant == "old" else new_z

res = {}
for path in sys.argv[3:]:
    z = np.load(path)
    values = z["values"]
    cfg, k_low, k_high, plan = plan_for(backend, values, 1000, "3G", int(sys.argv[2]))
    groups = pipeline.rank_groups(backend, values, int(z["focus"]), k_low, k_high)
    sel = {"gene_i": z["gene_i"].astype(np.int64), "gene_j": z["gene_j"].astype(np.int64), "r_low": z["r_low"], "r_high": z["r_high"]}
    outs = {}
    for rnd in range(3):
        for variant in (("old", "new") if rnd % 2 == 0 else ("new", "old")):
            use(variant)
            t0, c0 = time.perf_counter(), time.process_time()
            out, _ = pipeline.bootstrap_edges(backend, groups, sel, int(z["focus"]), cfg, plan)
            res.setdefault((path, variant), []).append((round(time.perf_counter() - t0, 2), round(time.process_time() - c0, 2)))
            outs[variant] = out
    same = all(np.asarray(outs["old"][k]).tobytes() == np.asarray(outs["new"][k]).tobytes() for k in ("boot_mean", "boot_std", "ci_low", "ci_high", "bias", "boot_p"))
    for variant in ("old", "new"):
        print(path, variant, res[(path, variant)], "identical" if same else "DIFFER", flush=True)
