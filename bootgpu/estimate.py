"""How long a study will take: a few seconds of real work on the chosen backend, extrapolated.

A focus gene's time is two parts that scale differently:

- the pair tests (``pipeline.rank_groups`` .. ``q_values``, and ``pair_values`` with ``--store``
  common/full) visit every gene pair: they grow with n_genes^2 (the rank GEMMs also with the group
  size k, which a sub-matrix keeps, as it keeps every sample);
- the bootstrap (``pipeline.bootstrap_edges``) grows with the selected edges x B, and the selected
  edges are only known after a run.

``calibrate`` runs both parts on sub-matrices of G' genes (every sample), doubling G' from 256 while
the next size fits the time allowed (G' = n_genes when that fits: then nothing is extrapolated in
genes), a few focus genes at each size, after a warm-up (first calls fill caches).  The pair
tests' seconds are fitted as a + b x pairs and evaluated at n_genes.  The selected edges are
assumed to keep the density (edges per gene pair) measured on the sub-matrices of the user's data;
without data (``--shape``), a synthetic matrix (``synthetic.planted_matrix``) times the pair tests
and the bootstrap runs on random gene pairs at ``ASSUMED_EDGE_DENSITY``.  The bootstrap's seconds
are its fixed part (a bootstrap of two edges) plus a cost per edge measured at the largest size,
times the edges expected at n_genes -- an upper side estimate when G' < n_genes, since edges that
share genes cost less than new ones.  B above ``CALIBRATION_MAX_B`` is scaled linearly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from bootgpu.config import AnalysisConfig
from bootgpu.planner import Plan, plan_batches

ASSUMED_EDGE_DENSITY = 4e-4  # selected edges per gene pair without data: ALL (12,625 genes) has 32,586
# edges at its benchmark focus gene (4.1e-4); the demo's 2,000 genes 2.8e-4 at random focus genes
CALIBRATION_MAX_B = 1000  # the bootstrap is timed at min(B, this); larger B is scaled linearly
FIRST_SIZE = 256  # genes of the first sub-matrix
FOCI_PER_SIZE = 2  # focus genes timed at each sub-matrix size
DEFAULT_SECONDS = 4.0
DEFAULT_TASKS = 16  # Grid Engine array tasks the plan's lines show when none are given


def format_duration(seconds: float) -> str:
    """'0.45 s', '12 s', '6 min', '1.5 h', '2.3 days'."""
    if seconds < 10:
        return f"{seconds:.2g} s" if seconds < 1 else f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class TimeEstimate:
    """Seconds per focus gene on one backend, and the assumptions behind them.

    ``pair_seconds`` + ``bootstrap_seconds`` = ``per_focus_seconds``, as measured with ``threads``
    host threads (``Plan.threads``); ``edges_per_focus`` the selected edges assumed per focus gene."""

    backend: str
    n_genes: int
    n_bootstrap: int
    pair_seconds: float
    bootstrap_seconds: float
    edges_per_focus: float
    threads: int
    calibration_seconds: float
    calibrated_genes: int  # G' of the largest sub-matrix timed
    calibrated_foci: int  # focus genes timed, all sizes together
    source: str  # "your data" or "a synthetic matrix"
    assumptions: tuple = field(default_factory=tuple)

    @property
    def per_focus_seconds(self) -> float:
        return self.pair_seconds + self.bootstrap_seconds

    def study_seconds(self, n_focus: int, tasks: int = 1, slots: int | None = None) -> float:
        """Wall seconds for ``n_focus`` focus genes split over ``tasks`` Grid Engine array tasks
        (``run --shard K/N``: the largest shard has ceil(n_focus / tasks)), each with ``slots``
        host threads (None: as many as here).  Nodes are assumed as fast as this machine; fewer
        slots than the threads timed here are assumed proportionally slower, more no faster.
        Queue waits and reading the input are not counted."""
        if n_focus < 0 or tasks < 1 or (slots is not None and slots < 1):
            raise ValueError(f"need n_focus >= 0, tasks >= 1, slots >= 1; got {n_focus}, {tasks}, {slots}")
        per_task = -(-int(n_focus) // int(tasks))
        slowdown = 1.0 if slots is None or self.backend != "numpy" else self.threads / min(slots, self.threads)
        return per_task * self.per_focus_seconds * slowdown

    def lines(self, n_focus: int | None = None, tasks: int = DEFAULT_TASKS, slots: int | None = None) -> list[str]:
        """Plain-English lines for ``bootgpu plan`` (``n_focus`` None: every gene, as ``run`` does)."""
        n_focus = self.n_genes if n_focus is None else n_focus
        where = (f"{self.calibrated_genes:,} of {self.n_genes:,} genes" if self.calibrated_genes < self.n_genes
                 else f"all {self.n_genes:,} genes")
        out = [f"time: about {format_duration(self.per_focus_seconds)} per focus gene on {self.backend}"
               f"{f' ({self.threads} threads)' if self.threads > 1 else ''}, calibrated in "
               f"{format_duration(self.calibration_seconds)} on {where} of {self.source}",
               f"  pair tests {format_duration(self.pair_seconds)} + bootstrap {format_duration(self.bootstrap_seconds)} "
               f"(about {_count(round(self.edges_per_focus), 'selected edge')} x B = {self.n_bootstrap:,})"]
        here = format_duration(self.study_seconds(n_focus))
        which = " (every gene)" if n_focus == self.n_genes else ""
        line = f"  {_count(n_focus, 'focus gene')}{which}: ~{here} on this machine"
        if tasks > 1 and n_focus > 1:
            line += (f", ~{format_duration(self.study_seconds(n_focus, tasks, slots))} on "
                     f"{_count(min(tasks, n_focus), 'Grid Engine task')}"
                     + (f" of {_count(slots, 'slot')}" if slots and self.backend == "numpy" else ""))
        out.append(line)
        out.extend(f"  assumes {text}" for text in self.assumptions)
        return out


@dataclass
class _Timing:
    """One focus gene timed on a sub-matrix."""

    n_genes: int
    pair_seconds: float
    bootstrap_seconds: float
    edges: int

    @property
    def n_pairs(self) -> int:
        return self.n_genes * (self.n_genes - 1) // 2


class _Source:
    """Sub-matrices of G' genes, every sample, with a focus gene in row 0: rows of the user's
    matrix (the focus gene and G' - 1 others at random) or ``synthetic.planted_matrix``."""

    def __init__(self, n_genes: int, n_samples: int, values, focus, seed: int):
        self.n_genes, self.n_samples, self.values = n_genes, n_samples, values
        self.rng = np.random.default_rng(seed)
        pool = [0] if values is None else range(values.shape[0]) if focus is None else list(focus)
        self.order = self.rng.permutation(np.asarray(pool, dtype=np.int64))
        self.used = 0

    @property
    def synthetic(self) -> bool:
        return self.values is None

    def next_focus(self) -> int:
        gene = int(self.order[self.used % self.order.shape[0]])
        self.used += 1
        return gene

    def matrix(self, size: int) -> np.ndarray:
        if self.synthetic:
            from bootgpu.synthetic import planted_matrix

            n_per_class = max(0, min(4, (size - 1) // 8))
            return planted_matrix(size, self.n_samples, n_per_class, seed=int(self.rng.integers(2**31))).values
        focus = self.next_focus()
        others = self.rng.permutation(np.delete(np.arange(self.values.shape[0]), focus))[: size - 1]
        return np.ascontiguousarray(self.values[np.concatenate([[focus], others])], dtype=np.float64)


def _sub_plan(plan: Plan, n_genes: int, size: int, n_samples: int, k_low: int, k_high: int,
              cfg: AnalysisConfig) -> Plan:
    """The plan of a G'-gene sub-matrix: the run's budget, threads and working-set cap, and at
    least as many pair blocks as keep the run's threads busy (up to 2 a thread, no more than the
    run's plan has): a sub-matrix in one block would time one thread."""
    def planned(rows=None):
        return plan_batches(size, n_samples, k_low, k_high, cfg.n_bootstrap, plan.budget_bytes,
                            bootstrap_frac=cfg.bootstrap_frac, working_set_bytes=plan.working_set_bytes,
                            threads=plan.threads, store=cfg.store, rows_per_block=rows)

    sub = planned()
    full_blocks = math.ceil(n_genes / plan.rows_per_block)
    blocks = max(math.ceil(size / sub.rows_per_block), min(full_blocks, 2 * plan.threads))
    rows = max(1, math.ceil(size / blocks))
    return sub if rows >= sub.rows_per_block else planned(rows)


def _random_edges(backend, n_genes: int, n_edges: int, rng) -> dict | None:
    """``n_edges`` distinct random gene pairs (i < j), in the selection's order, r 0."""
    n_pairs = n_genes * (n_genes - 1) // 2
    n_edges = min(n_pairs, int(n_edges))
    if n_edges < 1:
        return None
    flat = np.sort(rng.choice(n_pairs, n_edges, replace=False))
    i = np.searchsorted(np.cumsum(np.arange(n_genes - 1, 0, -1)), flat, side="right")
    j = flat - (i * (2 * n_genes - i - 1)) // 2 + i + 1
    xp = backend.xp
    return {"gene_i": backend.to_device(i.astype(np.int64)), "gene_j": backend.to_device(j.astype(np.int64)),
            "r_low": xp.zeros((n_edges,), dtype=xp.float64), "r_high": xp.zeros((n_edges,), dtype=xp.float64)}


def _bootstrap_seconds(backend, groups, edges, cfg: AnalysisConfig, plan: Plan) -> float:
    from bootgpu.pipeline import bootstrap_edges

    if edges is None:
        return 0.0
    t0 = time.perf_counter()
    bootstrap_edges(backend, groups, edges, 0, cfg, plan)
    backend.synchronize()
    return time.perf_counter() - t0


def _time_focus(backend, values: np.ndarray, cfg: AnalysisConfig, plan: Plan, k_low: int, k_high: int,
                random_density: float | None, rng) -> tuple[_Timing, object]:
    """Focus gene 0 of ``values`` through ``analyse_focus``'s stages, timed: (timing, groups).
    ``random_density``: bootstrap that many random pairs per gene pair instead of the selected edges."""
    from bootgpu import pipeline

    x = backend.to_device(values)
    backend.synchronize()
    t0 = time.perf_counter()
    groups = pipeline.rank_groups(backend, x, 0, k_low, k_high, plan.threads)
    selection = pipeline.select_edges(backend, pipeline.pair_passes(backend, groups, plan), cfg.fdr_alpha,
                                      cfg.edge_selection)
    edges = selection.edges
    if edges is not None:
        pipeline.q_values(backend, selection)
    if cfg.store != "minimal":
        pipeline.pair_values(backend, selection, cfg.store == "full")
    del selection
    backend.release_memory()
    backend.synchronize()
    pair_seconds = time.perf_counter() - t0
    size = values.shape[0]
    if random_density is not None:
        edges = _random_edges(backend, size, round(random_density * size * (size - 1) / 2), rng)
    n_edges = 0 if edges is None else int(edges["gene_i"].shape[0])
    return _Timing(size, pair_seconds, _bootstrap_seconds(backend, groups, edges, cfg, plan), n_edges), groups


def _ladder(backend, source: _Source, n_genes: int, cfg: AnalysisConfig, plan: Plan, k_low: int, k_high: int,
            seconds: float) -> list[_Timing]:
    """``FOCI_PER_SIZE`` focus genes on sub-matrices of ``FIRST_SIZE``, twice, four times ... as
    many genes, up to ``n_genes``, while the next size is expected to end within ``seconds``
    (a size takes about four times the last)."""
    density = ASSUMED_EDGE_DENSITY if source.synthetic else None
    timings, start = [], time.perf_counter()
    size = min(n_genes, FIRST_SIZE)
    while True:
        sub = _sub_plan(plan, n_genes, size, source.n_samples, k_low, k_high, cfg)
        step_start = time.perf_counter()
        for _ in range(FOCI_PER_SIZE):
            timings.append(_time_focus(backend, source.matrix(size), cfg, sub, k_low, k_high, density, source.rng)[0])
        now = time.perf_counter()
        nxt = min(n_genes, 2 * size)
        if size >= n_genes or (now - start) + (now - step_start) * (nxt / size) ** 2 > seconds:
            return timings
        size = nxt


def _fixed_bootstrap_seconds(backend, source: _Source, n_genes: int, cfg: AnalysisConfig, plan: Plan, k_low: int,
                             k_high: int) -> float:
    """A warm-up focus gene on a small sub-matrix (first calls fill caches), then the bootstrap's
    fixed part: the faster of two bootstraps of two edges."""
    size = min(n_genes, 128)
    sub = _sub_plan(plan, n_genes, size, source.n_samples, k_low, k_high, cfg)
    _, groups = _time_focus(backend, source.matrix(size), cfg, sub, k_low, k_high, ASSUMED_EDGE_DENSITY * 8,
                            source.rng)
    return min(_bootstrap_seconds(backend, groups, _random_edges(backend, size, 2, source.rng), cfg, sub)
               for _ in range(2))


def _pair_seconds(timings: list[_Timing], n_genes: int) -> float:
    """Seconds of the pair tests at ``n_genes``: a + b x pairs through the largest size's mean,
    a (the part that does not grow with pairs) least-squares fitted over every size, 0 <= a."""
    top = max(t.n_genes for t in timings)
    at_top = float(np.mean([t.pair_seconds for t in timings if t.n_genes == top]))
    if top >= n_genes:
        return at_top
    pairs = np.array([t.n_pairs for t in timings], dtype=np.float64)
    secs = np.array([t.pair_seconds for t in timings])
    a = float(np.polyfit(pairs, secs, 1)[1]) if np.unique(pairs).shape[0] > 1 else 0.0
    a = min(max(a, 0.0), at_top)
    top_pairs = top * (top - 1) / 2
    return a + (at_top - a) / top_pairs * (n_genes * (n_genes - 1) / 2)


def _bootstrap_estimate(timings: list[_Timing], fixed: float, density: float, n_genes: int) -> tuple[float, float]:
    """(seconds, edges) of the bootstrap at ``n_genes`` with ``density`` edges per gene pair: the
    fixed part, where a focus gene has edges, plus a cost per edge measured at the largest size
    that had edges, times the edges expected."""
    edges = density * n_genes * (n_genes - 1) / 2
    with_edges = [t for t in timings if t.edges]
    if not with_edges or edges <= 0:
        return 0.0, edges
    top = max(t.n_genes for t in with_edges)
    at_top = [t for t in with_edges if t.n_genes == top]
    per_edge = max(0.0, sum(t.bootstrap_seconds - fixed for t in at_top)) / sum(t.edges for t in at_top)
    share = len(with_edges) / len(timings)  # focus genes with no selected edge skip the bootstrap
    return share * fixed + per_edge * edges, edges


def calibrate(backend, n_genes: int, n_samples: int, cfg: AnalysisConfig, plan: Plan, *, values=None, focus=None,
              seconds: float = DEFAULT_SECONDS, seed: int = 0) -> TimeEstimate:
    """Time a few focus genes on sub-matrices of ``values`` (host genes x samples; None: a
    synthetic matrix of ``n_samples`` samples) on ``backend`` with ``plan``'s budget and threads,
    for about ``seconds``, and extrapolate to one focus gene of ``n_genes`` x ``n_samples``.
    ``focus``: the study's focus genes (rows of ``values``) to time; None: any gene."""
    if values is not None:
        values = np.asarray(values)
        if values.shape != (n_genes, n_samples):
            raise ValueError(f"values are {values.shape}, expected ({n_genes}, {n_samples})")
    k_low, k_high = cfg.validate(n_samples)
    cal = replace(cfg, n_bootstrap=min(cfg.n_bootstrap, CALIBRATION_MAX_B))
    source = _Source(n_genes, n_samples, values, focus, seed)
    t0 = time.perf_counter()
    fixed = _fixed_bootstrap_seconds(backend, source, n_genes, cal, plan, k_low, k_high)
    timings = _ladder(backend, source, n_genes, cal, plan, k_low, k_high, max(0.0, seconds - (time.perf_counter() - t0)))
    elapsed = time.perf_counter() - t0
    if source.synthetic:
        density = ASSUMED_EDGE_DENSITY
    else:
        density = sum(t.edges for t in timings) / sum(t.n_pairs for t in timings)
    boot, edges = _bootstrap_estimate(timings, fixed, density, n_genes)
    boot *= cfg.n_bootstrap / cal.n_bootstrap
    top = max(t.n_genes for t in timings)
    estimate = TimeEstimate(backend.name, n_genes, cfg.n_bootstrap, _pair_seconds(timings, n_genes), boot, edges,
                            plan.threads, elapsed, top, len(timings),
                            "your data" if values is not None else "a synthetic matrix")
    return replace(estimate, assumptions=tuple(_assumptions(estimate, density, cal.n_bootstrap)))


def _assumptions(est: TimeEstimate, density: float, timed_b: int) -> list[str]:
    """The estimate's assumptions, in words (``TimeEstimate.lines`` prints them)."""
    edges = f"~{round(est.edges_per_focus):,} per focus gene"
    if est.source == "your data":
        out = [f"each focus gene selects edges at the rate {est.calibrated_foci} focus genes of your data did "
               f"({density:.1e} per gene pair, {edges}); focus genes with more edges take longer"]
    else:
        out = [f"{density:.0e} selected edges per gene pair ({edges}, as in the ALL leukemia data); "
               f"give --expr FILE to measure your data's"]
    if est.calibrated_genes < est.n_genes:
        out.append(f"pair tests grow with genes squared from {est.calibrated_genes:,} genes, the bootstrap with the "
                   f"selected edges (on the high side: edges that share genes cost less)")
    if timed_b < est.n_bootstrap:
        out.append(f"the bootstrap, timed at B = {timed_b:,}, grows in proportion to B")
    out.append("Grid Engine nodes as fast as this machine; queue waits and reading the input not counted")
    return out
