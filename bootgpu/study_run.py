"""Running a study's focus genes on one backend, resumably: each finished focus gene is kept as a
part file, and when the run's scope is done the parts are streamed into the shard file or the
study's results and hubs table (``bootgpu.study``).  ``claim_study`` must have accepted the
directory first.
"""

from __future__ import annotations

import sys
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
from bootgpu.networks import EdgeFilter, focus_network
from bootgpu.identity import StudyIdentity
from bootgpu.layout import StudyLayout
from bootgpu.pipeline import analyse_focus
from bootgpu.planner import Plan
from bootgpu.results_io import assemble_results, read_hubs_row, study_meta, write_part
from bootgpu.significance import join_significance, read_significance
from bootgpu.study import check_file_identity, finish_study, remove_if_empty, shard_slice


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
    # after run(): the largest predicted peak of the focus genes analysed, each re-planned for its
    # selected edges (FocusResult.plan); None when every focus gene was already done
    predicted_peak_bytes: int | None = None

    def __post_init__(self):
        self.layout = StudyLayout(self.out)
        if self.identity is None:
            self.identity = StudyIdentity.of(self.expr, self.cfg, self.focus, RNG_ALGORITHM)

    def meta(self) -> dict:
        return study_meta(self.identity, self.backend.name, self.backend.device_name())

    def run(self, log=print) -> RunSummary:
        """Analyse every focus gene of this run's scope not already finished, then write the shard
        file or the study's results and hubs table.  ``claim_study`` must have run first."""
        k_low, k_high = self.cfg.validate(self.expr.n_samples)
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
            expr_dev = self.backend.to_device(self.expr.values)
            with progress_bar(len(todo)) as bar:
                for gene in todo:
                    name = self.expr.gene_names[gene]
                    bar.set_postfix_str(name[:24], refresh=False)
                    result = analyse_focus(self.backend, expr_dev, gene, self.cfg, self.plan, k_low, k_high)
                    result.network = focus_networks(result, self.expr.n_genes, self.cfg)
                    if result.plan is not None:
                        self.predicted_peak_bytes = max(self.predicted_peak_bytes or 0, result.plan.predicted_peak_bytes)
                    write_part(self.layout.part(gene), meta, result, self.expr.gene_names)
                    bar.update(1)
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


def focus_networks(result, n_genes: int, cfg: AnalysisConfig):
    """The networks of a focus gene's result (``bootgpu.networks.focus_network``), with the
    study's edge filter and FDR alpha."""
    edge_filter = EdgeFilter(cfg.min_effect, cfg.corr_threshold, cfg.ci_filter)
    return focus_network(n_genes, result.focus, result.edges, cfg.fdr_alpha, edge_filter)


def progress_bar(total: int):
    """Focus genes done, rate and ETA on a terminal (tqdm); silent when stderr is not one."""
    from tqdm import tqdm

    return tqdm(total=total, unit="gene", desc="focus genes", file=sys.stderr, disable=not sys.stderr.isatty(),
                dynamic_ncols=True, smoothing=0.1)
