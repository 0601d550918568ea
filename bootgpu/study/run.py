"""Running a study's focus genes on one backend, resumably: each finished focus gene is kept as a
part file, and when the run's scope is done the parts are streamed into the shard file or the
study's results and hubs table (``bootgpu.study.directory``).  ``claim_study`` must have accepted the
directory first.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import h5py
import scipy.stats  # noqa: F401  (networks.powerlaw_fit imports it lazily: loaded here, before a run
#                             measures its memory, so the report counts the analysis and not this import)

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
from bootgpu.results_io import assemble_results, read_hubs_row, study_meta
from bootgpu.significance import join_significance, read_significance
from bootgpu.study.directory import check_file_identity, finish_study, remove_if_empty, shard_slice
from bootgpu.study.progress import Progress
from bootgpu.study.workers import GeneWorkers, PartWriters, finish_focus


@dataclass
class RunSummary:
    """What ``StudyRun.run`` did: focus genes in this run's scope, computed now, reused from disk,
    whether everything was already complete, and the hubs table (None for a shard)."""

    n_focus: int
    computed: int
    reused: int
    already_complete: bool
    hub_rows: list | None


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

    def __post_init__(self):
        self.layout = StudyLayout(self.out)
        if self.identity is None:
            self.identity = StudyIdentity.of(self.expr, self.cfg, self.focus, RNG_ALGORITHM)

    def meta(self) -> dict:
        return study_meta(self.identity, self.backend.name, self.backend.device_name())

    def run(self, log=print) -> RunSummary:
        """Analyse every focus gene of this run's scope not already finished, then write the shard
        file or the study's results and hubs table.  ``claim_study`` must have run first."""
        genes = shard_slice(self.focus, self.shard) if self.shard else self.focus
        target = self.layout.shard(*self.shard) if self.shard else self.layout.results
        if target.exists():
            check_file_identity(target, self.identity, "shard" if self.shard else "results file")
            return RunSummary(len(genes), 0, len(genes), True, None if self.shard else self._hub_rows_of(target))
        parts = self.layout.parts()
        done = [g for g in genes if g in parts]
        for g in done:
            check_file_identity(parts[g], self.identity, "part")
        todo = [g for g in genes if g not in parts]
        if done:
            log(f"resuming: {len(done)} of {len(genes)} focus genes already done")
        self.layout.parts_dir.mkdir(parents=True, exist_ok=True)
        meta = self.meta()
        if todo:
            with Progress(len(todo)) as bar:
                self._compute(todo, meta, bar, log)
        sources = [(self.layout.part(g), [str(g)]) for g in genes]
        rows = None
        if self.shard:
            target.parent.mkdir(exist_ok=True)
            assemble_results(target, {**meta, "shard": f"{self.shard[0]}/{self.shard[1]}"},
                             self.expr.gene_names, self.expr.sample_names, sources)
        else:
            rows = finish_study(self.layout, meta, self.expr.gene_names, self.expr.sample_names, sources, self.focus,
                                self.rank_by)
        for gene in genes:
            self.layout.part(gene).unlink()
        if not self.shard:  # other shards may be running in this directory; merge_shards tidies up
            remove_if_empty(self.layout.parts_dir)
        return RunSummary(len(genes), len(todo), len(done), False, rows)

    def _compute(self, todo: list[int], meta: dict, bar: Progress, log) -> None:
        """Every focus gene of ``todo`` to its part file: in parallel processes (``GeneWorkers``:
        on a host with several cores, each with its share of them; on a device, several processes
        sharing it, so that one's kernels run while another launches its own or builds networks),
        else here, with host processes finishing a device's focus genes (``PartWriters``)."""
        processes, plan = self.worker_plan(len(todo))
        if processes > 1:
            on = f"sharing {self.backend.device_name()}" if self.backend.on_device else \
                f"of {plan.threads} thread{'s' if plan.threads > 1 else ''}"
            log(f"{processes} processes {on}, {format_bytes(plan.budget_bytes)} of the budget each")
            self.worker_plan_used = plan

            def done(item):
                _, predicted, measured = item
                self.predicted_peak_bytes = max(self.predicted_peak_bytes or 0, predicted)
                self.worker_peak_bytes = max(self.worker_peak_bytes or 0, measured)
                bar.update(1)

            with GeneWorkers(processes, self.backend.name, self.expr.values, self.cfg, plan, *self.k, meta,
                             self.expr.gene_names, done, share_memory=not self.backend.on_device) as pool:
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
                                bootstrap_frac=self.cfg.bootstrap_frac, working_set_bytes=self.backend.working_set_bytes,
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
        return rows


