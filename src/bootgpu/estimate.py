"""How long a study will take: a few seconds of real work on the chosen backend, extrapolated.

A focus gene's time is two parts that scale differently:

- the pair tests (``pipeline.rank_groups`` .. ``q_values``, and ``pair_values`` with ``--store``
  common/full) visit every gene pair: they grow with n_genes^2 (the rank GEMMs also with the group
  size k, which a sub-matrix keeps, as it keeps every sample);
- the bootstrap (``pipeline.bootstrap_edges``) grows with the selected edges x B, and the selected
  edges are only known after a run.

``calibrate`` first warms up on a 64-gene sub-matrix (first calls fill caches) and times there
the parts of a focus gene that do not grow with genes.  It then times the pair tests of focus
genes (two of the data's a size, at random or from ``focus``; the synthetic one) on sub-matrices
of G' genes with every sample (k is kept), doubling G' from 256 while the next size is expected
to end within ``PAIR_SHARE`` of the time allowed (G' = n_genes when that fits: then nothing is
extrapolated in genes), and bootstraps the largest size's focus genes.  Extrapolated to n_genes:
the pair tests as fixed + ranks x genes + the rest x gene pairs; the selected edges at the density
(edges per gene pair) of the data's sub-matrices, or ``ASSUMED_EDGE_DENSITY`` for a synthetic
matrix (``synthetic.planted_matrix``, bootstrapped on random gene pairs at that density); the
bootstrap as its fixed part (two edges) plus the rest grown as edges^``BOOTSTRAP_EDGE_EXPONENT``.
B above ``CALIBRATION_MAX_B`` is scaled linearly.  The figures are for this machine, with the
plan's threads; ``TimeEstimate.study_seconds`` spreads a study over Grid Engine array tasks.
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
BOOTSTRAP_EDGE_EXPONENT = 0.85  # bootstrap seconds (less the fixed part) grow as edges^0.85: edges that
# share genes share their resample ranks (ALL demo, B = 1,000: 634 -> 4,434 edges took 0.16 -> 0.91 s)
CALIBRATION_MAX_B = 1000  # the bootstrap is timed at min(B, this); larger B is scaled linearly
FIRST_SIZE = 256  # genes of the first sub-matrix
FOCI_PER_SIZE = 2  # focus genes of the data timed at each sub-matrix size
DEFAULT_SECONDS = 4.0
PAIR_SHARE = 0.6  # of the seconds allowed, what the pair tests may take (the rest: the bootstrap)
from bootgpu.options import ESTIMATE_TASKS as DEFAULT_TASKS  # noqa: E402 (Grid Engine tasks the lines show by default)


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
    samples: tuple = ()  # with data: the seconds of each sampled focus gene (its pair tests and bootstrap)
    sample_edges: tuple = ()  # their selected edges

    @property
    def per_focus_seconds(self) -> float:
        return float(np.mean(self.samples)) if self.samples else self.pair_seconds + self.bootstrap_seconds

    def per_focus_range(self, low: float = 10, high: float = 90) -> tuple[float, float]:
        """The ``low``-th and ``high``-th percentiles of a focus gene's seconds over the sample (one
        number without data)."""
        if not self.samples:
            return self.per_focus_seconds, self.per_focus_seconds
        return float(np.percentile(self.samples, low)), float(np.percentile(self.samples, high))

    def study_range(self, n_focus: int, tasks: int = 1, slots: int | None = None, seed: int = 0) -> tuple[float, float]:
        """An 80% range of the study's wall seconds (``study_seconds``): focus genes drawn from the
        sample (a bootstrap of its times), each task's the sum of its share, the study the longest
        task.  Without data, the single figure twice."""
        point = self.study_seconds(n_focus, tasks, slots)
        if len(self.samples) < 2 or n_focus < 1:
            return point, point
        rng = np.random.default_rng(seed)
        per_task = -(-int(n_focus) // int(tasks))
        n_tasks = min(int(tasks), int(n_focus))
        draws = rng.choice(np.asarray(self.samples), size=(200, n_tasks, per_task)).sum(axis=2).max(axis=1)
        scale = point / max(per_task * self.per_focus_seconds, 1e-12)  # the slots' slowdown, as study_seconds has it
        return float(np.percentile(draws, 10) * scale), float(np.percentile(draws, 90) * scale)

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
        threads = f" ({self.threads} threads)" if self.threads > 1 else ""
        if self.samples:
            lo, hi = self.per_focus_range()
            med = float(np.median(self.samples))
            elo, ehi = np.percentile(self.sample_edges, [10, 90])
            out = [f"time per focus gene on {self.backend}{threads}: median {format_duration(med)}, 80% between "
                   f"{format_duration(lo)} and {format_duration(hi)} (mean {format_duration(self.per_focus_seconds)}), "
                   f"from {len(self.samples)} focus genes of {self.source} timed in "
                   f"{format_duration(self.calibration_seconds)}",
                   f"  their selected edges: {elo:,.0f} to {ehi:,.0f} (10th-90th percentile, max "
                   f"{max(self.sample_edges):,}) x B = {self.n_bootstrap:,}; a focus gene's time grows with them"]
        else:
            where = (f"{self.calibrated_genes:,} of {self.n_genes:,} genes" if self.calibrated_genes < self.n_genes
                     else f"all {self.n_genes:,} genes")
            out = [f"time: about {format_duration(self.per_focus_seconds)} per focus gene on {self.backend}{threads}, "
                   f"calibrated in {format_duration(self.calibration_seconds)} on {where} of {self.source}",
                   f"  pair tests {format_duration(self.pair_seconds)} + bootstrap "
                   f"{format_duration(self.bootstrap_seconds)} (about "
                   f"{_count(round(self.edges_per_focus), 'selected edge')} x B = {self.n_bootstrap:,})"]
        which = " (every gene)" if n_focus == self.n_genes else ""
        out.append(f"  {_count(n_focus, 'focus gene')}{which}: {self._range_text(n_focus)} on this machine")
        if tasks > 1 and n_focus > 1:
            of = f" of {_count(slots, 'slot')}" if slots and self.backend == "numpy" else ""
            out.append(f"  on {_count(min(tasks, n_focus), 'Grid Engine task')}{of}: "
                       f"{self._range_text(n_focus, tasks, slots)} (the longest task)")
        out.extend(f"  assumes {text}" for text in self.assumptions)
        return out

    def _range_text(self, n_focus: int, tasks: int = 1, slots: int | None = None) -> str:
        point = self.study_seconds(n_focus, tasks, slots)
        lo, hi = self.study_range(n_focus, tasks, slots)
        if hi <= lo * 1.05:
            return f"~{format_duration(point)}"
        return f"~{format_duration(point)} (80%: {format_duration(lo)} to {format_duration(hi)})"


@dataclass
class _Timing:
    """One focus gene's pair tests timed on a sub-matrix (``work``: its groups, selected edges and
    plan, kept for the bootstrap until it is timed)."""

    n_genes: int
    pair_seconds: float  # rank_groups .. q_values (and pair_values), ranks included
    rank_seconds: float
    edges: int
    work: tuple | None = None
    bootstrap_seconds: float | None = None
    bootstrap_edges: int = 0

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
                            ieee_float32_matmul=plan.ieee_float32_matmul, ranks_by_gene=plan.ranks_by_gene,
                            bootstrap_share=plan.bootstrap_share, pair_gathers=plan.pair_gathers,
                            threads=plan.threads, store=cfg.store,
                            rows_per_block=rows)

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


def _time_pairs(backend, values: np.ndarray, cfg: AnalysisConfig, plan: Plan, k_low: int, k_high: int) -> _Timing:
    """Focus gene 0 of ``values`` through ``analyse_focus``'s stages up to the bootstrap, timed."""
    from bootgpu import pipeline

    x = backend.to_device(values)
    backend.synchronize()
    t0 = time.perf_counter()
    groups = pipeline.rank_groups(backend, x, 0, k_low, k_high, plan.threads)
    backend.synchronize()
    t1 = time.perf_counter()
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
    n_edges = 0 if edges is None else int(edges["gene_i"].shape[0])
    return _Timing(values.shape[0], time.perf_counter() - t0, t1 - t0, n_edges, (groups, edges, plan))


@dataclass(frozen=True)
class _PairModel:
    """Seconds of a focus gene's pair tests: ``fixed`` + ``per_gene`` x genes (the ranks) +
    ``per_pair`` x gene pairs, the last two from the timings at one size."""

    fixed: float
    per_gene: float
    per_pair: float

    @classmethod
    def fit(cls, timings: list[_Timing], fixed: float) -> "_PairModel":
        size, n_pairs = timings[0].n_genes, timings[0].n_pairs
        rank = float(np.mean([t.rank_seconds for t in timings]))
        rest = float(np.mean([t.pair_seconds - t.rank_seconds for t in timings]))
        return cls(fixed, rank / size, max(0.0, rest - fixed) / max(1, n_pairs))

    def seconds(self, n_genes: int) -> float:
        return self.fixed + self.per_gene * n_genes + self.per_pair * n_genes * (n_genes - 1) / 2


def _warm_up(backend, source: _Source, n_genes: int, cfg: AnalysisConfig, plan: Plan, k_low: int,
             k_high: int) -> tuple[float, float]:
    """A small sub-matrix three times (the first fills caches), then the parts of a focus gene
    that do not grow with genes: (pair tests less ranks, bootstrap of two edges), the faster of
    the later runs."""
    size = min(n_genes, 64)
    sub = _sub_plan(plan, n_genes, size, source.n_samples, k_low, k_high, cfg)
    runs = [_time_pairs(backend, source.matrix(size), cfg, sub, k_low, k_high) for _ in range(3)]
    pairs = min(t.pair_seconds - t.rank_seconds for t in runs[1:])
    groups = runs[-1].work[0]
    boots = [_bootstrap_seconds(backend, groups, _random_edges(backend, size, 2, source.rng), cfg, sub)
             for _ in range(3)]
    return pairs, min(boots[1:])


def _ladder(backend, source: _Source, n_genes: int, cfg: AnalysisConfig, plan: Plan, k_low: int, k_high: int,
            fixed_pairs: float, seconds: float) -> list[_Timing]:
    """The pair tests of focus genes on sub-matrices of ``FIRST_SIZE``, twice, four times ... as
    many genes, up to ``n_genes``, while the next size is expected (``_PairModel``) to end within
    ``seconds``; only the largest size's timings keep their ``work``."""
    foci = 1 if source.synthetic else FOCI_PER_SIZE  # a synthetic matrix has one focus gene
    timings, start = [], time.perf_counter()
    size = min(n_genes, FIRST_SIZE)
    while True:
        for t in timings:
            t.work = None
        sub = _sub_plan(plan, n_genes, size, source.n_samples, k_low, k_high, cfg)
        step = [_time_pairs(backend, source.matrix(size), cfg, sub, k_low, k_high) for _ in range(foci)]
        timings.extend(step)
        nxt = min(n_genes, 2 * size)
        predicted = foci * _PairModel.fit(step, fixed_pairs).seconds(nxt)
        if size >= n_genes or (time.perf_counter() - start) + predicted > seconds:
            return timings
        size = nxt


def _time_bootstraps(backend, source: _Source, timings: list[_Timing], cfg: AnalysisConfig, density: float) -> None:
    """Bootstrap the largest size's focus genes: their selected edges, or random gene pairs at
    ``density`` where a synthetic matrix or a focus gene without edges says nothing of the edges."""
    for t in timings:
        if t.work is None:
            continue
        groups, edges, sub = t.work
        if source.synthetic or edges is None:
            edges = _random_edges(backend, t.n_genes, round(density * t.n_pairs), source.rng)
        t.bootstrap_edges = 0 if edges is None else int(edges["gene_i"].shape[0])
        t.bootstrap_seconds = _bootstrap_seconds(backend, groups, edges, cfg, sub)
        t.work = None


def _pair_seconds(timings: list[_Timing], n_genes: int, fixed: float) -> float:
    """Seconds of the pair tests at ``n_genes``: measured where the largest size is ``n_genes``,
    else ``_PairModel`` fitted at the largest size."""
    top = max(t.n_genes for t in timings)
    at_top = [t for t in timings if t.n_genes == top]
    if top >= n_genes:
        return float(np.mean([t.pair_seconds for t in at_top]))
    return _PairModel.fit(at_top, fixed).seconds(n_genes)


def _bootstrap_estimate(timings: list[_Timing], fixed: float, density: float, n_genes: int) -> tuple[float, float]:
    """(seconds, edges) of the bootstrap at ``n_genes`` with ``density`` edges per gene pair: the
    fixed part plus the rest measured at the largest size, grown with the edges expected
    (``BOOTSTRAP_EDGE_EXPONENT``)."""
    edges = density * n_genes * (n_genes - 1) / 2
    timed = [t for t in timings if t.bootstrap_seconds is not None and t.bootstrap_edges]
    if not timed or edges <= 0:
        return 0.0, edges
    measured_edges = float(np.mean([t.bootstrap_edges for t in timed]))
    growing = max(0.0, float(np.mean([t.bootstrap_seconds for t in timed])) - fixed)
    return fixed + growing * (edges / measured_edges) ** BOOTSTRAP_EDGE_EXPONENT, edges


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
        return sample_focus_genes(backend, values, cfg, plan, focus=focus, seconds=seconds, seed=seed)
    k_low, k_high = cfg.validate(n_samples)
    cal = replace(cfg, n_bootstrap=min(cfg.n_bootstrap, CALIBRATION_MAX_B))
    source = _Source(n_genes, n_samples, values, focus, seed)
    t0 = time.perf_counter()
    fixed_pairs, fixed_boot = _warm_up(backend, source, n_genes, cal, plan, k_low, k_high)
    ladder_seconds = PAIR_SHARE * seconds - (time.perf_counter() - t0)
    timings = _ladder(backend, source, n_genes, cal, plan, k_low, k_high, fixed_pairs, ladder_seconds)
    if source.synthetic:
        density = ASSUMED_EDGE_DENSITY
    else:
        density = sum(t.edges for t in timings) / sum(t.n_pairs for t in timings)
    _time_bootstraps(backend, source, timings, cal, density)
    boot, edges = _bootstrap_estimate(timings, fixed_boot, density, n_genes)
    estimate = TimeEstimate(backend.name, n_genes, cfg.n_bootstrap, _pair_seconds(timings, n_genes, fixed_pairs),
                            boot * cfg.n_bootstrap / cal.n_bootstrap, edges, plan.threads, time.perf_counter() - t0,
                            max(t.n_genes for t in timings), len(timings),
                            "your data" if values is not None else "a synthetic matrix")
    return replace(estimate, assumptions=tuple(_assumptions(estimate, density, cal.n_bootstrap)))


SAMPLE_SECONDS = 20.0  # what sampling focus genes of the data may take (at least SAMPLE_MIN of them)
SAMPLE_MIN, SAMPLE_MAX = 4, 16
BOOTSTRAP_TIMED_EDGES = (500, 4000)  # edges of the two bootstraps a focus gene's time is fitted to
BOOTSTRAP_TIMED_B = 100  # B of those bootstraps (the time grows in proportion to B)


def sample_focus_genes(backend, values: np.ndarray, cfg: AnalysisConfig, plan: Plan, *, focus=None,
                       seconds: float = SAMPLE_SECONDS, seed: int = 0) -> TimeEstimate:
    """Time whole focus genes of the data: the pair tests of focus genes drawn at random (from
    ``focus``, else every gene) on the full matrix, each giving its selected edges, and the
    bootstrap as a power of the edges (two bootstraps of the largest one's edges, at
    ``BOOTSTRAP_TIMED_EDGES``, fitted); each sampled focus gene's time is then its pair tests plus
    the bootstrap of its edges at B.  A focus gene's time is heavy-tailed (ALL: a median of 13,000
    selected edges, a mean of 73,000, a maximum of 1.26 M), so the estimate is a range."""
    from bootgpu import pipeline

    n_genes, n_samples = values.shape
    k_low, k_high = cfg.validate(n_samples)
    rng = np.random.default_rng(seed)
    pool = np.asarray(list(focus) if focus is not None else range(n_genes), dtype=np.int64)
    order = rng.permutation(pool)
    t_start = time.perf_counter()
    x = backend.to_device(values)
    pipeline.select_edges(backend, pipeline.pair_passes(backend, pipeline.rank_groups(backend, x, int(order[0]), k_low,
                                                                                      k_high, plan.threads), plan),
                          cfg.fdr_alpha, cfg.edge_selection)  # fills the study's caches: not timed
    pair_times, edges, biggest = [], [], None
    for gene in order[:SAMPLE_MAX]:
        t0 = time.perf_counter()
        timing = _time_pairs_of(backend, x, int(gene), cfg, plan, k_low, k_high)
        pair_times.append(time.perf_counter() - t0)
        edges.append(timing.edges)
        if timing.edges and (biggest is None or timing.edges > biggest.edges):
            biggest = timing
        biggest_work = biggest.work if biggest is not None else None
        timing.work = None
        if biggest is not None:
            biggest.work = biggest_work
        if len(pair_times) >= SAMPLE_MIN and time.perf_counter() - t_start > seconds:
            break
    boot = _fit_bootstrap(backend, biggest, cfg, rng)
    samples = tuple(p + boot(e) for p, e in zip(pair_times, edges))
    est = TimeEstimate(backend.name, n_genes, cfg.n_bootstrap, float(np.mean(pair_times)),
                       float(np.mean([boot(e) for e in edges])), float(np.mean(edges)), plan.threads,
                       time.perf_counter() - t_start, n_genes, len(samples), "your data", samples=samples,
                       sample_edges=tuple(int(e) for e in edges))
    return replace(est, assumptions=(
        f"the study's focus genes are like the {len(samples)} drawn at random from "
        f"{'its focus list' if focus is not None else 'every gene'} (more focus genes sampled, a tighter range)",
        f"the bootstrap grows as (selected edges)^{boot.exponent:.2f} (fitted on {boot.fitted_on:,} edges), and in "
        f"proportion to B",
        "Grid Engine nodes as fast as this machine; queue waits and reading the input not counted"))


def _time_pairs_of(backend, x, gene: int, cfg: AnalysisConfig, plan: Plan, k_low: int, k_high: int) -> _Timing:
    """Focus gene ``gene`` of the full matrix ``x`` up to its bootstrap (its groups and edges kept)."""
    from bootgpu import pipeline

    groups = pipeline.rank_groups(backend, x, gene, k_low, k_high, plan.threads)
    selection = pipeline.select_edges(backend, pipeline.pair_passes(backend, groups, plan), cfg.fdr_alpha,
                                      cfg.edge_selection)
    found = selection.edges
    if found is not None:
        pipeline.q_values(backend, selection)
    if cfg.store != "minimal":
        pipeline.pair_values(backend, selection, cfg.store == "full")
    del selection
    backend.release_memory()
    backend.synchronize()
    n_edges = 0 if found is None else int(found["gene_i"].shape[0])
    return _Timing(int(x.shape[0]), 0.0, 0.0, n_edges, (groups, found, plan))


class _BootstrapFit:
    """Seconds of a focus gene's bootstrap at B: a * edges^exponent * B / B_timed (0 without edges)."""

    def __init__(self, a: float, exponent: float, b_ratio: float, fitted_on: int):
        self.a, self.exponent, self.b_ratio, self.fitted_on = a, exponent, b_ratio, fitted_on

    def __call__(self, edges: int) -> float:
        return 0.0 if edges <= 0 else self.a * edges**self.exponent * self.b_ratio


def _fit_bootstrap(backend, biggest: _Timing | None, cfg: AnalysisConfig, rng) -> _BootstrapFit:
    """Two bootstraps of subsets of the edges of the sampled focus gene with the most, at
    ``BOOTSTRAP_TIMED_EDGES`` edges and B = ``BOOTSTRAP_TIMED_B``: a power law through them."""
    timed_b = min(cfg.n_bootstrap, BOOTSTRAP_TIMED_B)
    b_ratio = cfg.n_bootstrap / timed_b
    if biggest is None or biggest.work is None or biggest.work[1] is None:
        return _BootstrapFit(0.0, 1.0, b_ratio, 0)
    groups, found, plan = biggest.work
    small = replace(cfg, n_bootstrap=timed_b)
    sizes = sorted({min(biggest.edges, n) for n in BOOTSTRAP_TIMED_EDGES})
    times = []
    for size in sizes:
        pick = np.sort(rng.choice(biggest.edges, size, replace=False))
        index = backend.to_device(pick)
        subset = {key: backend.xp.take(value, index, axis=0) for key, value in found.items()}
        _bootstrap_seconds(backend, groups, subset, small, plan)  # the first call of a size fills caches
        times.append(min(_bootstrap_seconds(backend, groups, subset, small, plan) for _ in range(2)))
    if len(sizes) == 1 or times[0] <= 0:
        exponent = BOOTSTRAP_EDGE_EXPONENT
    else:
        exponent = float(np.clip(np.log(times[1] / times[0]) / np.log(sizes[1] / sizes[0]), 0.6, 1.2))
    return _BootstrapFit(times[-1] / sizes[-1]**exponent, exponent, b_ratio, sizes[-1])


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
        out.append(f"pair tests grow with gene pairs (ranks with genes) from {est.calibrated_genes:,} genes, the "
                   f"bootstrap as (selected edges)^{BOOTSTRAP_EDGE_EXPONENT} (edges that share genes cost less)")
    if timed_b < est.n_bootstrap:
        out.append(f"the bootstrap, timed at B = {timed_b:,}, grows in proportion to B")
    out.append("Grid Engine nodes as fast as this machine; queue waits and reading the input not counted")
    return out
