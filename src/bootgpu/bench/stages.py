"""bootgpu's stages of one focus gene, one at a time, through the public pipeline stages of
``bootgpu.pipeline`` (``rank_groups``, ``pair_passes``, ``select_edges``, ``q_values``,
``bootstrap_edges``), and the plan they run under.  The asv suite (``benchmarks/``) and the
pytest micro-benchmarks time the same functions."""

from __future__ import annotations

from bootgpu.bench.meters import StageMeter

STAGES = ("draws", "ranking", "correlations", "tests_bh", "bootstrap", "focus_gene")


def make_plan(backend, n_genes, n_samples, k_low, k_high, cfg, budget_bytes):
    """The plan `bootgpu run` would use for this shape and budget on ``backend``."""
    from bootgpu.planner import plan_batches

    return plan_batches(n_genes, n_samples, k_low, k_high, cfg.n_bootstrap, budget_bytes,
                        bootstrap_frac=cfg.bootstrap_frac, **backend.plan_facts(), threads=backend.host_threads())


def stage_draws(backend, cfg, focus: int, k_low: int, k_high: int):
    """Positions of all B replicates for LOW and HIGH: two (B, m) int64 device arrays."""
    from bootgpu.core.bootstrap import HIGH, LOW, resample_size
    from bootgpu.core.draws import draw_positions

    xp = backend.xp
    reps = xp.arange(cfg.n_bootstrap, dtype=xp.int64)
    return tuple(draw_positions(xp, cfg.seed, focus, code, reps, k, resample_size(k, cfg.bootstrap_frac))
                 for code, k in ((LOW, k_low), (HIGH, k_high)))


def stage_ranking(backend, expr, focus: int, k_low: int, k_high: int, threads: int = 1):
    """The LOW/HIGH split of ``focus`` and both groups' base ranks (``pipeline.rank_groups``)."""
    from bootgpu.pipeline import rank_groups

    return rank_groups(backend, expr, focus, k_low, k_high, threads)


def stage_correlations(backend, groups, plan):
    """One pass over pair space computing every pair's values in both groups (``pipeline.pair_passes``):
    with ``plan.cache_pairs`` the blocks are kept for the BH passes, as in the pipeline."""
    from bootgpu.pipeline import pair_passes

    with backend.pair_scope():
        passes = pair_passes(backend, groups, plan)
        for _ in passes:
            pass
    return passes


def stage_tests_bh(backend, passes, cfg):
    """The pipeline's BH passes over pair space (``pipeline.select_edges`` and ``q_values``).
    Returns the selected edges (gene_i, gene_j, r_low, r_high, s_*, sig_*, q_*) or None."""
    from bootgpu.pipeline import q_values, select_edges

    selection = select_edges(backend, passes, cfg.fdr_alpha, cfg.edge_selection)
    if selection.edges is not None:
        selection.edges.update(q_values(backend, selection))
    return selection.edges


def stage_bootstrap(backend, groups, sel, cfg, plan, focus: int):
    """The pipeline's bootstrap of the selected edges ``sel`` (``pipeline.bootstrap_edges``)."""
    from bootgpu.pipeline import bootstrap_edges

    return bootstrap_edges(backend, groups, sel, focus, cfg, plan)[0]


def bootgpu_stages(backend, expr, focus, cfg, plan, k_low, k_high, meter: StageMeter) -> int:
    """bootgpu's stages one after another, through the pipeline's own pass functions; returns the
    number of selected edges (to check against the pipeline's own run)."""
    with meter.stage("draws"):
        positions = stage_draws(backend, cfg, focus, k_low, k_high)
    del positions
    with meter.stage("ranking"):
        groups = stage_ranking(backend, expr, focus, k_low, k_high, plan.threads)
    with meter.stage("correlations"):
        passes = stage_correlations(backend, groups, plan)
    with meter.stage("tests_bh"):
        sel = stage_tests_bh(backend, passes, cfg)
    del passes
    with meter.stage("bootstrap"):
        if sel is not None:
            stage_bootstrap(backend, groups, sel, cfg, plan, focus)
    return 0 if sel is None else int(sel["gene_i"].shape[0])
