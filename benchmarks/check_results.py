#!/usr/bin/env python3
"""Fail unless an asv run measured every benchmark of the suite for a commit without error.

``asv run`` reports a failed benchmark in its log but its exit status is not a contract (and a
benchmark that was never run leaves no trace in it), so CI reads the results file: asv writes a
failed benchmark, or a failed parameter combination, as null and a skipped one (NotImplementedError
in setup, e.g. CuPy without a device) as NaN.  Every benchmark listed in ``benchmarks.json`` (what
asv discovered) must have a row, none may hold null, and at least one value must be measured.

    python3 benchmarks/check_results.py COMMIT [--config asv.conf.json]
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import math
import os
import subprocess
import sys


def results_dir_of(config: str) -> str:
    from asv.config import Config  # asv.conf.json allows comments: read it as asv does

    return Config.load(config).results_dir


def check(results_dir: str, commit: str) -> tuple[list[str], int, int]:
    """(problems, values measured, values skipped) of the results of ``commit``; no problems when
    every benchmark ran or was skipped on purpose."""
    suite_file = os.path.join(results_dir, "benchmarks.json")
    files = glob.glob(os.path.join(results_dir, "*", f"{commit[:8]}-*.json"))
    if not files or not os.path.exists(suite_file):
        return [f"no asv results for commit {commit[:8]} under {results_dir}"], 0, 0
    with open(suite_file) as fh:
        suite = [name for name in json.load(fh) if name != "version"]
    path = max(files, key=os.path.getmtime)
    with open(path) as fh:
        rows = json.load(fh)["results"]
    problems, measured, skipped = [], 0, 0
    for name in sorted(suite):
        row = rows.get(name)
        if row is None:
            problems.append(f"{name}: not run")
            continue
        values = row[0]
        params = row[1] if len(row) > 1 and row[1] else []
        combos = [", ".join(c) for c in itertools.product(*params)] if params else [""]
        if not isinstance(values, list):
            values = [values] * len(combos)
        for combo, value in zip(combos, values):
            if value is None:
                problems.append(f"{name}({combo}): failed")
            elif isinstance(value, float) and math.isnan(value):
                skipped += 1
            else:
                measured += 1
    if measured == 0:
        problems.append("no benchmark measured anything")
    print(f"asv results {os.path.relpath(path)}: {len(suite)} benchmarks, {len(problems)} problems")
    return problems, measured, skipped


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("commit", help="commit (hash or name) the results were recorded for")
    ap.add_argument("--config", default="asv.conf.json")
    args = ap.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", args.commit], capture_output=True, text=True, check=True).stdout.strip()
    problems, measured, skipped = check(results_dir_of(args.config), commit)
    for line in problems:
        print(f"  {line}", file=sys.stderr)
    # the closing line CI reads: values measured, benchmarks (or parameter combinations) that
    # failed or did not run, and values skipped because a backend cannot run here
    print(f"asv: {measured} passed, {len(problems)} failed, {skipped} skipped", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
