#!/usr/bin/env python3
"""Time `bootgpu report` on a study of 20,001 focus genes, and per focus gene at real edge counts.

Cases (each report runs in its own process, measured with /usr/bin/time):
  study  a 20,001-gene input (``bootgpu.synthetic.partner_matrix(20001, 128)``: focus gene 0 has
         partners in every class), focus gene 0 computed once (B = 100) and copied under all
         20,001 rows (``scripts/bench_merge.py`` ``clone_shards``, 3 shards), merged; then
         `bootgpu report DIR` (default --top 20): the hubs table of 20,001 rows and 20 genes' figures.
  edges  the ALL data (../shared/data/all_leukemia.tsv.gz, 12,625 x 128), focus row 0 (B = 100:
         32,586 selected edges) copied under rows 0..20, merged; `bootgpu report DIR --top 20`:
         the per-gene figures at a real study's edge count.

    python scripts/bench_report.py [--cases study edges] [--workdir /tmp/bootgpu-bench-report]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALL_DATA = ROOT.parent / "shared" / "data" / "all_leukemia.tsv.gz"


def _bench_merge():
    spec = importlib.util.spec_from_file_location("bench_merge", ROOT / "scripts" / "bench_merge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bootgpu(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bootgpu", *args], check=True, capture_output=True)


def cloned_study(work: Path, expr: Path, focus: str, n_focus: int) -> Path:
    """A merged study of ``n_focus`` focus genes (rows 0..n_focus-1), each a copy of ``focus``'s group."""
    bench_merge = _bench_merge()
    template = work / "template"
    _bootgpu("run", "--expr", str(expr), "--out", str(template), "--focus", focus, "--n-bootstrap", "100", "--backend", "numpy")
    study = work / "study"
    bench_merge.clone_shards(study, n_focus, 3, template / "results.h5")
    _bootgpu("merge", str(study))
    shutil.rmtree(study / "shards")
    return study


def time_report(study: Path, *extra: str) -> dict:
    out = _bench_merge().timed([sys.executable, "-m", "bootgpu", "report", str(study), *extra])
    html = study / "report" / "index.html"
    out.update(html_mib=round(html.stat().st_size / 2**20, 1), figures=len(list((study / "report" / "figures").glob("*.png"))))
    return out


def case_study(work: Path) -> dict:
    from bootgpu.expression_io import Expression, write_expression_h5
    from bootgpu.synthetic import partner_matrix

    m = partner_matrix(20001, 128, n_per_class=6)
    expr = work / "partner.h5"
    write_expression_h5(Expression(m.values, tuple(f"g{i:05d}" for i in range(20001)),
                                   tuple(f"s{j:03d}" for j in range(128))), expr)
    t0 = time.perf_counter()
    study = cloned_study(work, expr, "#0", 20001)
    made = time.perf_counter() - t0
    import h5py

    with h5py.File(study / "results.h5") as h5:
        edges = int(h5["focus/0/gene_i"].shape[0])
    return {"case": "study", "focus_genes": 20001, "edges_per_focus_gene": edges, "study_made_s": round(made, 1),
            "report": time_report(study)}


def case_edges(work: Path) -> dict:
    if not ALL_DATA.is_file():
        return {"case": "edges", "skipped": f"{ALL_DATA} is absent"}
    study = cloned_study(work, ALL_DATA, "#0", 21)
    import h5py

    with h5py.File(study / "results.h5") as h5:
        edges = int(h5["focus/0/gene_i"].shape[0])
    return {"case": "edges", "focus_genes": 21, "edges_per_focus_gene": edges, "report": time_report(study, "--top", "20")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["study", "edges"], choices=["study", "edges"])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bootgpu-bench-report"))
    args = ap.parse_args(argv)
    for case in args.cases:
        work = args.workdir / case
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        print(json.dumps({"study": case_study, "edges": case_edges}[case](work)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
