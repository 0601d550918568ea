#!/usr/bin/env python3
"""A study's throughput as a user runs it: ``bootgpu run`` in a process of its own (start included),
timed; one JSON line with seconds per focus gene, both over the computation (the run's own "done:"
line) and over the whole command.

    python3 scripts/study_throughput.py --expr ../shared/data/all_leukemia.tsv.gz --focus '#0:300' --backend cupy
    python3 scripts/study_throughput.py --planted 8763x938 --focus '#0:100' --backend cupy   # writes the matrix once

``--label`` names the row (gpu-check's table).  Extra ``bootgpu run`` options follow ``--``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def planted_h5(shape: str, folder: Path) -> Path:
    """bootgpu.synthetic.planted_matrix(G, S, 300, strength=0.6) as an HDF5 input, written once."""
    path = folder / f"planted-{shape}.h5"
    if not path.exists():
        from bootgpu.expression_io import Expression, write_expression_h5
        from bootgpu.synthetic import planted_matrix

        genes, samples = (int(v) for v in shape.lower().split("x"))
        values = planted_matrix(genes, samples, 300, strength=0.6).values
        write_expression_h5(Expression(values, [f"g{i}" for i in range(genes)], [f"s{j}" for j in range(samples)]), path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--expr")
    ap.add_argument("--planted", metavar="GENESxSAMPLES")
    ap.add_argument("--focus", required=True)
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--label", default="")
    ap.add_argument("--warmup", action="store_true", help="bootgpu warmup on the input first (not timed): a study's "
                    "steady throughput, not its first run's kernel compilation")
    ap.add_argument("--work", default=os.environ.get("TMPDIR", "/tmp"), help="where the study (and matrix) go")
    ap.add_argument("extra", nargs="*", help="more bootgpu run options (after --)")
    args = ap.parse_args()
    work = Path(args.work)
    expr = Path(args.expr) if args.expr else planted_h5(args.planted, work)
    out = Path(tempfile.mkdtemp(prefix="throughput-", dir=work))
    if args.warmup:
        subprocess.run([sys.executable, "-m", "bootgpu", "warmup", "--expr", str(expr), "--backend", args.backend],
                       check=True, capture_output=True)
    cmd = [sys.executable, "-m", "bootgpu", "run", "--expr", str(expr), "--out", str(out / "study"), "--focus", args.focus,
           "--backend", args.backend, *args.extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    done = re.search(r"done: ([\d,]+) focus genes? computed in ([\d.]+) s", proc.stderr)
    row = {"label": args.label, "backend": args.backend, "expr": expr.name, "focus": args.focus, "rc": proc.returncode,
           "wall_s": round(wall, 2)}
    if done:
        genes, seconds = int(done[1].replace(",", "")), float(done[2])
        row.update(genes=genes, compute_s=seconds, s_per_gene=round(seconds / genes, 4), wall_s_per_gene=round(wall / genes, 4))
    workers = re.search(r"^(\d+) processes (?:of (\d+) threads?|sharing)", proc.stderr, re.M)
    if workers:  # a host's worker processes, or a device's (each one host thread driving it)
        row["processes"], row["threads"] = int(workers[1]), int(workers[2] or 1)
    memory = re.search(r"^memory: .*$", proc.stderr, re.M)
    if memory:
        row["memory"] = memory[0]
    if proc.returncode:
        row["stderr_tail"] = proc.stderr[-2000:]
    print(json.dumps(row), flush=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
