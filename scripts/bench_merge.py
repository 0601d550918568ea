#!/usr/bin/env python3
"""Time `bootgpu merge` and `bootgpu status` on a study of many focus genes, and their peak memory.

The shards are made by copying one real focus gene (computed here on the embedded ALL subset, or
taken from --template) under every focus index: an HDF5 object copy takes milliseconds, where
computing 20,000 focus genes would take hours, and the merge's cost depends only on the number and
size of the focus groups.  Each command runs in its own process, measured with /usr/bin/time.

    python scripts/bench_merge.py --focus-genes 20000 --shards 20 [--workdir /tmp/bench-merge]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py


def clone_shards(out: Path, n_focus: int, n_shards: int, template: Path):
    """Shard files of an ``n_focus``-gene study (rows 0..n_focus-1 of the template's input), each
    focus group a copy of the template's first one, each with its SHA-256 sidecar as a shard run
    writes it; returns the study identity."""
    from bootgpu.study.identity import StudyIdentity, focus_sha256
    from bootgpu.study.layout import StudyLayout
    from bootgpu.results_io import read_meta, write_meta
    from bootgpu.study.directory import claim_study, shard_slice
    from bootgpu.study.integrity import record_digest

    with h5py.File(template) as h5:
        gene_names = h5["gene_names"].asstr()[()].tolist()
        sample_names = h5["sample_names"].asstr()[()].tolist()
    meta = read_meta(template)
    meta.pop("shard", None)
    focus = list(range(n_focus))
    fields = StudyIdentity.from_mapping(meta, str(template)).as_dict()
    identity = StudyIdentity(**{**fields, "n_focus": n_focus, "focus_sha256": focus_sha256(focus)})
    layout = StudyLayout(out)
    claim_study(layout, identity, focus, log=lambda line: None)
    meta.update(study_id=identity.study_id, n_focus=n_focus, focus_sha256=identity.focus_sha256)
    layout.shards_dir.mkdir(parents=True, exist_ok=True)
    with h5py.File(template) as src:
        group = src["focus"][next(iter(src["focus"]))]
        row = json.loads(group.attrs["hubs_row"])
        for k in range(1, n_shards + 1):
            with h5py.File(layout.shard(k, n_shards), "w", track_order=True) as h5:
                write_meta(h5, {**meta, "shard": f"{k}/{n_shards}"}, gene_names, sample_names)
                dst = h5.create_group("focus", track_order=True)
                for g in shard_slice(focus, (k, n_shards)):
                    src.copy(group, dst, name=str(g))
                    dst[str(g)].attrs["hubs_row"] = json.dumps({**row, "gene_idx": g, "gene_id": gene_names[g % len(gene_names)]})
            record_digest(layout.shard(k, n_shards))  # as a shard run does once its file is in place
    return identity


def timed(cmd: list[str]) -> dict:
    """Wall seconds and peak RSS (GNU time) of one command."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    match = re.search(r"TIME ([\d.]+) (\d+)", proc.stderr)
    return {"seconds": float(match[1]) if match else wall, "peak_rss_mib": int(match[2]) / 1024 if match else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--focus-genes", type=int, default=20000)
    ap.add_argument("--shards", type=int, default=20)
    ap.add_argument("--template", type=Path, help="a results.h5 whose first focus gene is copied (default: "
                    "focus gene 1007_s_at of the embedded ALL subset, B = 1000: 975 edges)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bootgpu-bench-merge"))
    args = ap.parse_args(argv)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    template = args.template
    if template is None:
        subprocess.run([sys.executable, "-m", "bootgpu", "run", "--demo", "--out", str(args.workdir / "template"),
                        "--focus", "1007_s_at", "--backend", "numpy"], check=True, capture_output=True)  # fmt: skip
        template = args.workdir / "template" / "results.h5"
    with h5py.File(template) as h5:
        n_edges = int(h5["focus"][next(iter(h5["focus"]))]["gene_i"].shape[0])
    out = args.workdir / "study"
    t0 = time.perf_counter()
    clone_shards(out, args.focus_genes, args.shards, template)
    made = time.perf_counter() - t0
    status = timed([sys.executable, "-m", "bootgpu", "status", str(out)])
    merge = timed([sys.executable, "-m", "bootgpu", "merge", str(out)])
    size = (out / "results.h5").stat().st_size
    report = {"focus_genes": args.focus_genes, "shards": args.shards, "edges_per_focus_gene": n_edges,
              "shards_made_s": round(made, 1), "status": status, "merge": merge,
              "merge_ms_per_focus_gene": round(1000 * merge["seconds"] / args.focus_genes, 2),
              "results_h5_mib": round(size / 2**20, 1)}  # fmt: skip
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
