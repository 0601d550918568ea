#!/usr/bin/env python3
"""Time what a resumed study does before and after computing: checking the parts it finds (each
part's study identity and every chunk's checksum) and the finish (results.h5 assembled from the
parts, the tables, the completion record).  The parts are those of a finished study, copied back
out of its results.h5 as a damaged or growing study's are (``salvage_parts``); the run then
finds every focus gene done and only checks and finishes.  One JSON line, best of --rounds.

    bootgpu run --demo --out /tmp/emb --focus all      # a finished study (2,000 focus genes)
    python3 scripts/resume_times.py --study /tmp/emb --expr src/bootgpu/data/all_leukemia_top2000.tsv.gz

Runs in this process, on the bootgpu first on sys.path (PYTHONPATH=OLD/src times another tree).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", type=Path, required=True, help="a finished study directory (results.h5, study.json)")
    ap.add_argument("--expr", required=True, help="its expression matrix")
    ap.add_argument("--focus", default="all", help="its --focus (default all)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bootgpu-resume-times"))
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)

    import bootgpu
    import bootgpu.study.run as study_run
    from bootgpu.cli import main as cli_main
    from bootgpu.results_io import read_meta
    from bootgpu.study.directory import salvage_parts
    from bootgpu.study.layout import StudyLayout

    base = args.workdir / "base"
    shutil.rmtree(args.workdir, ignore_errors=True)
    shutil.copytree(args.study, base)
    layout = StudyLayout(base)
    meta = read_meta(layout.results)
    meta.pop("study_focus", None)
    n_parts = salvage_parts(layout, layout.results, meta, skip=set(), keep=False)

    spent: dict = {}

    def timing(name, fn):
        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0
        return timed

    study_run.StudyRun._sound_parts = timing("check_parts_s", study_run.StudyRun._sound_parts)
    study_run.finish_study = timing("finish_s", study_run.finish_study)
    best: dict = {}
    for _ in range(args.rounds):
        work = args.workdir / "study"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(base, work)
        spent.clear()
        t0 = time.perf_counter()
        code = cli_main(["run", "--expr", args.expr, "--out", str(work), "--focus", args.focus])
        spent["run_s"] = time.perf_counter() - t0
        if code:
            sys.exit(f"bootgpu run exited {code}")
        best = {k: min(v, best.get(k, v)) for k, v in spent.items()}
    print(json.dumps({"bootgpu": str(Path(bootgpu.__file__).parents[1]), "parts": n_parts,
                      **{k: round(v, 2) for k, v in best.items()},
                      "ms_per_part": {k: round(1000 * best[k] / n_parts, 2) for k in ("check_parts_s", "finish_s")}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
