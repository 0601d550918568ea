#!/usr/bin/env python
"""Regenerate src/bootgpu/data/all_leukemia_top2000.tsv.gz from the full ALL matrix.

Selects the 2,000 probes with the largest variance across all samples (ties
broken by original row order), keeps them in original row order, and copies
their text lines byte for byte (numbers are never reformatted).  gzip is
written with mtime=0 and no file name so the output bytes are reproducible.

Usage: python scripts/make_demo_data.py [SOURCE] [--out DEST] [--top N]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from bootgpu.atomic import atomic_path  # noqa: E402
from bootgpu.expression_io import DEMO_FILE, read_expression  # noqa: E402

DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "all_leukemia.tsv.gz"
DEFAULT_OUT = REPO / "src" / "bootgpu" / "data" / DEMO_FILE


def top_variance_rows(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest-variance rows, ties to the earlier row, in row order."""
    order = np.argsort(-values.var(axis=1), kind="stable")
    return np.sort(order[:k])


def make_demo(source: Path, dest: Path, k: int = 2000) -> bytes:
    """Write the top-k demo file to ``dest``; return its decompressed text."""
    expr = read_expression(source)
    rows = top_variance_rows(expr.values, k)
    raw = source.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    lines = raw.splitlines(keepends=True)
    picked = [lines[0]]
    for r in rows:
        line = lines[r + 1]  # line 0 is the header
        assert line.split(b"\t", 1)[0].decode() == expr.gene_names[r], (r, line[:40])
        picked.append(line if line.endswith(b"\n") else line + b"\n")
    text = b"".join(picked)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(text)
    with atomic_path(dest) as tmp:
        tmp.write_bytes(buf.getvalue())
    return text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--top", type=int, default=2000)
    args = ap.parse_args(argv)
    text = make_demo(args.source, args.out, args.top)
    print(f"wrote {args.out}")
    n_rows = text.count(b"\n") - 1
    print(f"  rows: {n_rows}")
    print(f"  sha256 (gz):  {hashlib.sha256(args.out.read_bytes()).hexdigest()}")
    print(f"  sha256 (tsv): {hashlib.sha256(text).hexdigest()}")


if __name__ == "__main__":
    main()
