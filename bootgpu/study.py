"""A study: many focus genes, one backend, resumable.  Parses --focus and --shard, runs each focus
gene, keeps one part file per finished gene, and assembles the results file and hubs table.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bootgpu.atomic import atomic_write_text
from bootgpu.config import AnalysisConfig
from bootgpu.core.draws import RNG_ALGORITHM
from bootgpu.errors import BootgpuError
from bootgpu.expression_io import Expression
from bootgpu.hubs import format_hubs_tsv, hub_rows
from bootgpu.pipeline import analyse_focus
from bootgpu.planner import Plan
from bootgpu.results_io import read_results, study_meta, write_part, write_results

RESULTS_FILE = "results.h5"
HUBS_FILE = "rewiring_hubs.tsv"
PARTS_DIR = "parts"
SHARDS_DIR = "shards"


def parse_focus(spec: str, expr: Expression) -> list[int]:
    """``all`` | ``A:B`` (0-based, B excluded) | integers | gene ids, comma-separated | ``@file``.

    In a file, tokens are separated by newlines, commas or whitespace.  Order is kept, duplicates
    are dropped.
    """
    spec = spec.strip()
    if spec.startswith("@"):
        path = Path(spec[1:])
        if not path.is_file():
            raise BootgpuError(f"--focus file {path} not found")
        tokens = [t for t in re.split(r"[\s,]+", path.read_text()) if t]
        if not tokens:
            raise BootgpuError(f"--focus file {path} lists no genes")
    else:
        tokens = [t.strip() for t in spec.split(",") if t.strip()]
    genes: list[int] = []
    for tok in tokens:
        if tok == "all":
            genes.extend(range(expr.n_genes))
        elif re.fullmatch(r"-?\d*:-?\d*", tok):
            a, b = tok.split(":")
            start, stop = int(a) if a else 0, int(b) if b else expr.n_genes
            if not (0 <= start <= stop <= expr.n_genes):
                raise BootgpuError(f"--focus range {tok!r} is outside 0:{expr.n_genes}")
            genes.extend(range(start, stop))
        elif re.fullmatch(r"\d+", tok):
            idx = int(tok)
            if idx >= expr.n_genes:
                raise BootgpuError(f"--focus gene index {idx} is out of range (the matrix has {expr.n_genes} genes)")
            genes.append(idx)
        else:
            genes.append(expr.gene_index(tok))
    if not genes:
        raise BootgpuError("--focus selects no genes")
    return list(dict.fromkeys(genes))


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    if spec is None:
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", spec.strip())
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise BootgpuError(f"--shard must be K/N with 1 <= K <= N, got {spec!r}")
    return int(match[1]), int(match[2])


def shard_slice(genes: list[int], shard: tuple[int, int]) -> list[int]:
    """The K-th of N contiguous, near-equal parts (sizes differ by at most one)."""
    k, n = shard
    q, r = divmod(len(genes), n)
    start = (k - 1) * q + min(k - 1, r)
    return genes[start : start + q + (1 if k - 1 < r else 0)]


def shard_file(out: Path, shard: tuple[int, int]) -> Path:
    return out / SHARDS_DIR / f"shard-{shard[0]:04d}-of-{shard[1]:04d}.h5"


class Progress:
    """A one-line progress bar on a terminal; silent when stderr is a log file."""

    def __init__(self, total: int, stream=None):
        self.total, self.done = total, 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.t0 = time.perf_counter()

    def step(self, label: str) -> None:
        self.done += 1
        if not self.tty:
            return
        width = 30
        filled = width * self.done // max(self.total, 1)
        rate = (time.perf_counter() - self.t0) / self.done
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {label[:20]:<20} {rate:6.2f} s/gene"
        )
        if self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


@dataclass
class StudyRun:
    """Everything a run needs, decided up front."""

    backend: object
    expr: Expression
    cfg: AnalysisConfig
    plan: Plan
    focus: list[int]
    out: Path
    shard: tuple[int, int] | None = None
    # after run(): the largest predicted peak of the focus genes analysed, each re-planned for its
    # selected edges (FocusResult.plan); None when every focus gene was already done
    predicted_peak_bytes: int | None = None

    def meta(self) -> dict:
        meta = study_meta(self.cfg, self.backend.name, self.backend.device_name(), self.expr.n_genes,
                          self.expr.n_samples, RNG_ALGORITHM)
        meta["study_focus"] = np.asarray(self.focus, dtype=np.int32)
        return meta

    def part_path(self, gene: int) -> Path:
        return self.out / PARTS_DIR / f"focus-{gene:06d}.h5"

    def run(self, log=print) -> list:
        """Analyse every focus gene not already finished; return all results in focus order."""
        k_low, k_high = self.cfg.validate(self.expr.n_samples)
        genes = shard_slice(self.focus, self.shard) if self.shard else self.focus
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / PARTS_DIR).mkdir(exist_ok=True)
        meta = self.meta()
        todo = [g for g in genes if not self.part_path(g).exists()]
        if len(todo) < len(genes):
            log(f"resuming: {len(genes) - len(todo)} of {len(genes)} focus genes already done")
        expr_dev = self.backend.to_device(self.expr.values)
        progress = Progress(len(todo))
        for gene in todo:
            result = analyse_focus(self.backend, expr_dev, gene, self.cfg, self.plan, k_low, k_high)
            if result.plan is not None:
                self.predicted_peak_bytes = max(self.predicted_peak_bytes or 0, result.plan.predicted_peak_bytes)
            write_part(self.part_path(gene), meta, result, self.expr.gene_names[gene])
            progress.step(self.expr.gene_names[gene])
        results = [read_results(self.part_path(g))[1][0] for g in genes]
        if self.shard:
            target = shard_file(self.out, self.shard)
            target.parent.mkdir(exist_ok=True)
            write_results(target, meta, self.expr.gene_names, self.expr.sample_names, results)
        else:
            finish_study(self.out, meta, self.expr.gene_names, self.expr.sample_names, results)
        for gene in genes:
            self.part_path(gene).unlink()
        if not self.shard:  # other shards may be running in this directory; merge_shards tidies up
            _remove_if_empty(self.out / PARTS_DIR)
        return results


def finish_study(out: Path, meta, gene_names, sample_names, results) -> list[dict]:
    """Write results.h5 and rewiring_hubs.tsv (both atomically); return the hub rows."""
    write_results(out / RESULTS_FILE, meta, gene_names, sample_names, results)
    rows = hub_rows(results, gene_names)
    atomic_write_text(out / HUBS_FILE, format_hubs_tsv(rows))
    return rows


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def merge_shards(out: Path) -> list[dict]:
    """Combine ``shards/*.h5`` into the final results; every focus gene must appear exactly once."""
    import h5py

    files = sorted((out / SHARDS_DIR).glob("shard-*-of-*.h5"))
    if not files:
        raise BootgpuError(f"{out / SHARDS_DIR}: no shard files to merge")
    totals = {int(re.search(r"-of-(\d+)", f.name)[1]) for f in files}
    if len(totals) != 1:
        raise BootgpuError(f"{out / SHARDS_DIR}: shard files from different splits {sorted(totals)}")
    n = totals.pop()
    present = {int(re.search(r"shard-(\d+)", f.name)[1]) for f in files}
    missing = sorted(set(range(1, n + 1)) - present)
    if missing:
        raise BootgpuError(f"{out}: missing shards {', '.join(map(str, missing))} of {n}")
    meta, results, seen = None, [], {}
    for f in files:
        m, res = read_results(f)
        meta = meta or m
        for r in res:
            if r.focus in seen:
                raise BootgpuError(f"focus gene {r.focus} appears in both {seen[r.focus]} and {f.name}")
            seen[r.focus] = f.name
            results.append(r)
    with h5py.File(files[0], "r") as h5:
        gene_names = [g.decode() if isinstance(g, bytes) else g for g in h5["gene_names"][()]]
        sample_names = [s.decode() if isinstance(s, bytes) else s for s in h5["sample_names"][()]]
    expected = [int(g) for g in meta.get("study_focus", [])]
    lost = [g for g in expected if g not in seen]
    if lost:
        shown = ", ".join(gene_names[g] for g in lost[:20]) + (" ..." if len(lost) > 20 else "")
        raise BootgpuError(f"{out}: {len(lost)} focus genes missing from the shards: {shown}")
    order = {g: i for i, g in enumerate(expected)}
    results.sort(key=lambda r: order.get(r.focus, r.focus))
    rows = finish_study(out, meta, gene_names, sample_names, results)
    _remove_if_empty(out / PARTS_DIR)
    return rows
