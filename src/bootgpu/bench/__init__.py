"""`bootgpu bench`: per-stage time and peak memory of each backend next to a straightforward
reference implementation of the original algorithm, on one focus gene of a synthetic matrix.

Stages (one focus gene, gene 0 of ``bootgpu.synthetic.planted_matrix``):

``draws``        bootstrap index generation: B x m positions for LOW and for HIGH.  bootgpu draws
                 them again, chunk by chunk, inside ``bootstrap``; this row times them alone.
``ranking``      LOW/HIGH split and the base ranks of every gene in both groups.
``correlations`` Spearman r of every gene pair in both groups.
``tests_bh``     t-tests, Fisher-Z test, Benjamini-Hochberg q over all pairs, the selected edges.
``bootstrap``    B resamples of the selected edges and their summaries (mean, std, CI, p).
``focus_gene``   bootgpu: ``pipeline.analyse_focus`` end to end (the real pipeline, timed on its
                 own): the second of two calls, i.e. the per-gene cost within a study (the
                 first call, which also fills per-process caches, is ``first_call_seconds``;
                 the memory peak is the larger of the two); reference: the sum of its stages,
                 which is how it runs.

The reference (``reference.reference_focus`` and ``reference_bootstrap``) is the algorithm as the
original scripts compute it, written plainly with SciPy and statsmodels: ``scipy.stats.rankdata``
per group, the full (G, G) correlation matrix of the ranks as one matrix product, every pair's p
from ``scipy.stats.t.sf`` and ``scipy.stats.norm.sf``, ``statsmodels``
``multipletests(method="fdr_bh")`` on all pairs, and a bootstrap that re-ranks (``rankdata``) the
resampled values of the selected edges' genes once per replicate and group.  Its draws stage times
NumPy's ``Generator.integers`` (the original's method); its bootstrap then uses bootgpu's draws, so
the two implementations' outputs can be compared edge by edge (``check`` in the JSON).

Every implementation runs in a child process of its own (``python -m bootgpu.bench --worker``), so
peak memory is not blurred by what another left behind.  Peak host memory of a stage is the rise of
the process's resident set over its level at the stage's start (sampled every 5 ms); peak device
memory (CuPy) is the rise of what CuPy's pool hands out (a memory hook).  Timers stop after the
device is synchronised.

Modules, one job each:

- ``matrices``: the synthetic matrices (``synthetic_values``, ``default_planted``);
- ``meters``: ``StageMeter``, a stage's seconds and peak host and device memory;
- ``stages``: bootgpu's stages through the pipeline's public stages, and ``make_plan``, the one
  plan helper of the benchmarks (bench, asv);
- ``reference``: the SciPy/statsmodels reference;
- ``worker``: one implementation in its own process (``__main__`` runs it);
- ``check``: the selected edges each worker writes, compared with the reference's;
- ``report``: the table and the PNG;
- ``command``: `bootgpu bench`, its options and ``run_bench``.
"""

from bootgpu.bench.check import COMPARED_FIELDS, compare_edges
from bootgpu.bench.command import BENCH_BACKENDS, cmd_bench, register_commands, run_bench
from bootgpu.bench.matrices import SYNTHETIC, default_planted, synthetic_description, synthetic_values
from bootgpu.bench.meters import StageMeter
from bootgpu.bench.reference import REFERENCE, REFERENCE_DESCRIPTION, reference_bootstrap, reference_focus
from bootgpu.bench.report import format_table, write_plot
from bootgpu.bench.stages import (STAGES, bootgpu_stages, make_plan, stage_bootstrap, stage_correlations, stage_draws,
                                  stage_ranking, stage_tests_bh)
from bootgpu.bench.worker import run_worker

__all__ = [
    "BENCH_BACKENDS", "COMPARED_FIELDS", "REFERENCE", "REFERENCE_DESCRIPTION", "STAGES", "SYNTHETIC",
    "StageMeter", "bootgpu_stages", "cmd_bench", "compare_edges", "default_planted", "format_table",
    "make_plan", "reference_bootstrap", "reference_focus", "register_commands", "run_bench", "run_worker",
    "stage_bootstrap", "stage_correlations", "stage_draws", "stage_ranking", "stage_tests_bh",
    "synthetic_description", "synthetic_values", "write_plot",
]
