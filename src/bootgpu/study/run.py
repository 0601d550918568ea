"""Running a study's focus genes on one backend, resumably: each finished focus gene is kept as a
part file, and when the run's scope is done the parts are streamed into the shard file or the
study's results and hubs table (``bootgpu.study.directory``).  ``claim_study`` must have accepted the
directory first.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import h5py

from bootgpu.config import AnalysisConfig
from bootgpu.core.draws import RNG_ALGORITHM
from bootgpu.expression_io import Expression
from bootgpu.atomic import atomic_write_text
from bootgpu.hubs import DEFAULT_RANK_BY, format_hubs_tsv, sort_hub_rows
from bootgpu.study.identity import StudyIdentity
from bootgpu.study.layout import StudyLayout
from bootgpu.pipeline import analyse_focus
from bootgpu.backends._base import granted_cores
from bootgpu.planner import (
    DEVICE_CONTEXT_BYTES, WORKER_OVERHEAD_BYTES, Plan, format_bytes, plan_batches, plan_workers,
)
from bootgpu.errors import BootgpuError
from bootgpu.results_io import assemble_results, read_hubs_row, read_meta, study_meta
from bootgpu.significance import join_significance, read_significance
from bootgpu.study.directory import (
    check_file_identity, finish_study, move_aside, rebuild_tables, remove_if_empty, salvage_parts, shard_slice,
)
from bootgpu.study.integrity import (
    damaged_focus_genes, finished_problems, record_digest, record_finished, sweep_temporaries, verify_files, verify_h5,
)
from bootgpu.study.progress import Progress, note_run
from bootgpu.study.workers import GeneReport, GeneWorkers, PartWriters, finish_focus


@dataclass
class RunSummary:
    """What ``StudyRun.run`` did: focus genes in this run's scope, computed now, reused from disk,
    whether everything was already complete, and the hubs table (None for a shard)."""

    n_focus: int
    computed: int
    reused: int
    already_complete: bool
    hub_rows: list | None
    repaired: bool = False  # an interrupted finish was completed (tables rebuilt from results.h5)


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
    identity: StudyIdentity | None = None
    rank_by: str = DEFAULT_RANK_BY  # the hubs table's order (a presentation choice, not the identity's)
    processes: int = 0  # most worker processes of a host run (0: as the planner says; 1: none)
    writers: int | None = None  # host processes writing a device run's parts (None: the granted cores but one)
    # after run(): the largest predicted peak of the focus genes analysed, each re-planned for its
    # selected edges (FocusResult.plan); None when every focus gene was already done
    predicted_peak_bytes: int | None = None
    worker_peak_bytes: int | None = None  # with worker processes: the largest rise one measured
    worker_plan_used: Plan | None = None  # with worker processes: the plan of each
    reports: list = field(default_factory=list)  # a GeneReport per focus gene computed by run()

    def __post_init__(self):
        self.layout = StudyLayout(self.out)
        if self.identity is None:
            self.identity = StudyIdentity.of(self.expr, self.cfg, self.focus, RNG_ALGORITHM)

    def meta(self) -> dict:
        return study_meta(self.identity, self.backend.name, self.backend.device_name())

    def run(self, log=print) -> RunSummary:
        """Analyse every focus gene of this run's scope not already finished, then write the shard
        file or the study's results and hubs table, and (for the whole study) the completion record
        last.  A finished study is checked (``integrity.finished_problems``) and an interrupted
        finish repaired; a damaged results file has its sound focus genes salvaged into parts and
        the others recomputed; reused parts are read whole first (checksums), and a damaged one is
        moved aside and recomputed.  ``claim_study`` must have run, under the scope's lock."""
        genes = shard_slice(self.focus, self.shard) if self.shard else self.focus
        target = self.layout.shard(*self.shard) if self.shard else self.layout.results
        self._sweep(genes)
        if target.exists():
            check_file_identity(target, self.identity, "shard" if self.shard else "results file")
            if self.shard:
                return RunSummary(len(genes), 0, len(genes), True, None)
            finished = self._finished(target, genes, log)
            if finished is not None:
                return finished
        parts = self._sound_parts(genes, log)
        done = [g for g in genes if g in parts]
        todo = [g for g in genes if g not in parts]
        if done:
            log(f"resuming: {len(done)} of {len(genes)} focus genes already done")
        self.layout.parts_dir.mkdir(parents=True, exist_ok=True)
        meta = self.meta()
        if todo:
            note_run("focus gene", len(done), len(genes), self.layout.parts_dir)
            with Progress(len(todo)) as bar:
                self._compute(todo, meta, bar, log)
            for line in study_warnings(self.reports, self.expr.gene_names):
                log(f"bootgpu: warning: {line}")
        sources = [(self.layout.part(g), [str(g)]) for g in genes]
        check = lambda path: check_file_identity(path, self.identity, "part")  # noqa: E731  (as each is read)
        rows = None
        if self.shard:
            target.parent.mkdir(exist_ok=True)
            assemble_results(target, {**meta, "shard": f"{self.shard[0]}/{self.shard[1]}"},
                             self.expr.gene_names, self.expr.sample_names, sources, check=check)
            record_digest(target)  # merge checks the whole file against it
        else:
            rows = finish_study(self.layout, meta, self.expr.gene_names, self.expr.sample_names, sources, self.focus,
                                self.rank_by, check=check)
        self._remove_parts(genes)
        return RunSummary(len(genes), len(todo), len(done), False, rows)

    def _sweep(self, genes: list[int]) -> None:
        """Remove what runs of this scope that are gone left half-written (this run holds the
        scope's lock): the whole study's temporaries, or this shard's."""
        if self.shard:
            names = {self.layout.part(g).name for g in genes} | {self.layout.shard(*self.shard).name}
            sweep_temporaries([self.layout.parts_dir, self.layout.shards_dir], names)
        else:
            sweep_temporaries([self.layout.root, self.layout.parts_dir, self.layout.shards_dir])

    def _finished(self, target: Path, genes: list[int], log) -> RunSummary | None:
        """The summary of a study whose results file exists: complete, or its interrupted finish
        repaired (tables rebuilt from results.h5); None when results.h5 is damaged, after its sound
        focus genes were salvaged into parts, for the run to recompute the others."""
        held = read_meta(target).get("scope_id")
        if held != self.identity.scope_id:  # a study grown since these results: keep them as parts
            with h5py.File(target, "r") as h5:
                kept = [int(name) for name in h5["focus"]]
            if not set(kept) <= set(genes):
                raise BootgpuError(f"{target}: holds focus genes this study does not have; rerun with --overwrite")
            salvage_parts(self.layout, target, self.meta(), skip=set(), keep=False)
            log(f"{target.name} holds {len(kept)} of the {len(genes)} focus genes: keeping them, computing the others")
            return None
        problems = finished_problems(self.layout, self.identity.scope_id)
        if not problems:
            self._remove_parts(genes)  # left by a finish stopped after results.h5 was in place
            return RunSummary(len(genes), 0, len(genes), True, self._hub_rows_of(target))
        damaged = verify_h5(target)
        if not damaged:
            log(f"{self.layout.root}: the study's finish was interrupted ({problems[0]}); rebuilding its tables from "
                f"{target.name}")
            rows = rebuild_tables(self.layout, self.rank_by)
            self._remove_parts(genes)
            return RunSummary(len(genes), 0, len(genes), True, rows, repaired=True)
        bad = damaged_focus_genes(damaged)
        log(f"bootgpu: warning: {target} is damaged ({damaged[0]}"
            + (f"; {len(damaged) - 1} more" if len(damaged) > 1 else "")
            + f"): keeping its sound focus genes, recomputing {len(bad)}")
        salvage_parts(self.layout, target, self.meta(), skip=set(bad))
        return None

    def _sound_parts(self, genes: list[int], log) -> dict[int, Path]:
        """This scope's parts that are this study's and read whole; a damaged part is moved to
        parts/damaged/ (with a warning) and recomputed."""
        parts = self.layout.parts()
        found = [g for g in genes if g in parts]
        for g in found:
            check_file_identity(parts[g], self.identity, "part")
        sound = {}
        for g, damaged in zip(found, verify_files([parts[g] for g in found])):
            if damaged:
                aside = move_aside(parts[g], self.layout.damaged_dir)
                log(f"bootgpu: warning: {parts[g]} is damaged ({damaged[0]}): moved to {aside}; recomputing it")
                continue
            sound[g] = parts[g]
        return sound

    def _remove_parts(self, genes: list[int]) -> None:
        for gene in genes:
            self.layout.part(gene).unlink(missing_ok=True)
        if not self.shard:  # other shards may be running in this directory; merge_shards tidies up
            remove_if_empty(self.layout.parts_dir)

    def _compute(self, todo: list[int], meta: dict, bar: Progress, log) -> None:
        """Every focus gene of ``todo`` to its part file: in parallel processes (``GeneWorkers``:
        on a host with several cores, each with its share of them; on a device, several processes
        sharing it, so that one's kernels run while another launches its own or builds networks),
        else here, with host processes finishing a device's focus genes (``PartWriters``)."""
        processes, plan = self.worker_plan(len(todo))
        if processes > 1:
            busy = 1 if self.backend.on_device else max(1, self.backend.host_threads() // processes)
            on = f"sharing {self.backend.device_name()}" if self.backend.on_device else \
                f"of {busy} thread{'s' if busy > 1 else ''}" + \
                (f" (up to {plan.threads} while others are idle)" if plan.threads > busy else "")
            log(f"{processes} processes {on}, {format_bytes(plan.budget_bytes)} of the budget each")
            self.worker_plan_used = plan

            def done(report: GeneReport):
                self.reports.append(report)
                self.predicted_peak_bytes = max(self.predicted_peak_bytes or 0, report.predicted)
                self.worker_peak_bytes = max(self.worker_peak_bytes or 0, report.measured)
                bar.update(1)

            with GeneWorkers(processes, self.backend.name, self.expr.values, self.cfg, plan, *self.k, meta,
                             self.expr.gene_names, done, share_memory=not self.backend.on_device, busy_threads=busy) as pool:
                for gene in todo:
                    pool.analyse(gene, self.layout.part(gene))
            return
        expr_dev = self.backend.to_device(self.expr.values)
        writers = self.part_writers(len(todo))
        pool = PartWriters(writers, self.cfg, meta, self.expr.gene_names, lambda _: bar.update(1)) if writers else None
        with pool or contextlib.nullcontext():
            for gene in todo:
                bar.set_postfix_str(self.expr.gene_names[gene][:24])
                result = analyse_focus(self.backend, expr_dev, gene, self.cfg, self.plan, *self.k)
                self.reports.append(GeneReport.of(result, self.plan))
                if result.plan is not None:
                    self.predicted_peak_bytes = max(self.predicted_peak_bytes or 0, result.plan.predicted_peak_bytes)
                if pool is not None:
                    pool.write(self.layout.part(gene), result)
                else:
                    finish_focus(self.layout.part(gene), result, self.cfg, meta, self.expr.gene_names)
                    bar.update(1)

    @property
    def k(self) -> tuple[int, int]:
        return self.cfg.validate(self.expr.n_samples)

    def worker_plan(self, n_focus: int) -> tuple[int, Plan | None]:
        """(processes, each one's plan) for ``n_focus`` focus genes (``planner.plan_workers``;
        ``processes`` caps them): on a host, up to its cores; on a device, up to the processes the
        backend shares it among (``Backend.device_processes``) and the cores; (1, None): here."""
        if self.processes == 1:
            return 1, None
        k_low, k_high = self.k
        device = self.backend.on_device

        def make_plan(budget: int, threads: int) -> Plan:
            return plan_batches(self.expr.n_genes, self.expr.n_samples, k_low, k_high, self.cfg.n_bootstrap, budget,
                                bootstrap_frac=self.cfg.bootstrap_frac, **self.backend.plan_facts(),
                                threads=1 if device else threads, store=self.cfg.store)

        slots = min(self.backend.device_processes(self.processes), granted_cores()) if device else self.backend.host_threads()
        overhead = DEVICE_CONTEXT_BYTES if device else WORKER_OVERHEAD_BYTES
        return plan_workers(slots, n_focus, self.plan.budget_bytes, make_plan, self.processes, overhead)

    def part_writers(self, n_focus: int) -> int:
        """Host processes finishing a device run's focus genes: ``writers`` if set, else the granted
        cores but the one that drives the device, none for a single focus gene or on a host backend
        (it computes)."""
        if self.writers is not None:
            return self.writers
        if not self.backend.on_device or n_focus <= 1:
            return 0
        return max(1, min(granted_cores() - 1, n_focus))

    def _hub_rows_of(self, results: Path) -> list[dict]:
        """The finished study's hubs rows, ranked by this run's ``rank_by`` (the table is rewritten
        when that changes the order)."""
        with h5py.File(results, "r") as h5:
            rows = sort_hub_rows([read_hubs_row(h5["focus"][name]) for name in h5["focus"]], self.rank_by)
        rows = join_significance(rows, read_significance(self.layout.significance))
        text = format_hubs_tsv(rows)
        if not self.layout.hubs.exists() or self.layout.hubs.read_text() != text:
            atomic_write_text(self.layout.hubs, text)
            record_finished(self.layout, self.identity.scope_id)  # the table it lists has changed
        return rows




NAN_CI_WARNING = 0.02  # a study says so when more than this share of its selected edges have no CI


def study_warnings(reports: list, gene_names) -> list[str]:
    """What a run says once about the focus genes it computed: those skipped (and why), those
    with no testable gene pair, and a share of selected edges without a bootstrap CI that
    points at ties in the data."""
    out = []

    def few(genes):
        names = [gene_names[g] for g in genes[:5]]
        return ", ".join(names) + (f" and {len(genes) - 5} more" if len(genes) > 5 else "")

    skipped = [r for r in reports if r.skipped]
    for why in dict.fromkeys(r.skipped for r in skipped):
        genes = [r.focus for r in skipped if r.skipped == why]
        out.append(f"focus gene{'s' if len(genes) > 1 else ''} {few(genes)} {why.removeprefix('skipped: ')}: "
                   f"skipped, listed unranked in the hubs table")
    untested = [r.focus for r in reports if not r.skipped and r.n_tests == 0]
    if untested:
        out.append(f"focus gene{'s' if len(untested) > 1 else ''} {few(untested)}: no gene pair could be tested (every "
                   f"pair has a gene constant within LOW or HIGH): are the samples' columns identical, or the values "
                   f"heavily rounded?")
    edges = sum(r.n_edges for r in reports)
    nan_ci = sum(r.nan_ci for r in reports)
    if edges and nan_ci > NAN_CI_WARNING * edges:
        out.append(f"{nan_ci:,} of {edges:,} selected edges ({100 * nan_ci / edges:.0f}%) have no bootstrap CI: a gene "
                   f"was constant in some resamples, which heavy ties cause (integer-rounded values, counts, small "
                   f"groups); larger groups (--low-frac/--high-frac) or continuous values (e.g. log counts) avoid it")
    return out
