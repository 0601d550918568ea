"""Command line: argument parsing only.  A BootgpuError becomes one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bootgpu.version import __version__
from bootgpu.config import AnalysisConfig
from bootgpu.errors import BootgpuError
from bootgpu.hubs import DEFAULT_RANK_BY, check_rank_by
from bootgpu.options import (
    BACKEND_HELP, BUDGET_HELP, DRAW_OPTIONS, ESTIMATE_TASKS, add_analysis_options, add_input_options, add_options, log, plural, read_input,
)

DEMO_FOCUS_COUNT = 10  # the demo analyses the 10 most variable probes of the embedded matrix
DEMO_OUT = Path.home() / "bootgpu-demo"  # the demo's study: never in the current (perhaps the source) folder unasked


@dataclass
class StudySetup:
    """What `run` and `null` decide before computing: the study directory (claimed), the matrix,
    parameters, focus genes, backend, plan and identity."""

    out: Path
    expr: object
    cfg: AnalysisConfig
    k_low: int
    k_high: int
    focus: list
    backend: object
    plan: object
    identity: object


def _setup_study(args, plan: bool = True, scope: str = "study") -> StudySetup:
    """Parse and check a study's options in the order a bad one is reported, pick the backend,
    plan the batches (unless ``plan`` is False: nothing is to be computed), lock ``scope`` of --out
    (``study.lock``: another run of it is refused; held until the command ends) and claim --out for
    this study (``claim_study``: another study is refused)."""
    from bootgpu.backends import get_backend
    from bootgpu.core.draws import RNG_ALGORITHM
    from bootgpu.expression_io import demo_expression_path
    from bootgpu.study.identity import StudyIdentity
    from bootgpu.study.layout import StudyLayout, check_out_dir
    from bootgpu.planner import plan_batches, resolve_budget
    from bootgpu.study.directory import claim_study, parse_focus
    from bootgpu.study.lock import ScopeLock

    demo = getattr(args, "demo", False)
    if demo == bool(args.expr):
        raise BootgpuError("give exactly one of --expr FILE or --demo")
    if not args.out and not demo:
        raise BootgpuError(f"bootgpu {args.command} needs --out DIR, the study directory its results go to")
    out = check_out_dir(Path(args.out) if args.out else DEMO_OUT)
    check_rank_by(args.rank_by)
    expr = read_input(args, demo_expression_path() if demo else None)
    cfg = AnalysisConfig.from_args(args)
    k_low, k_high = cfg.validate(expr.n_samples)
    if args.focus:
        focus = parse_focus(args.focus, expr)
    elif demo:
        import numpy as np

        var = expr.values.var(axis=1)
        focus = [int(g) for g in np.argsort(-var, kind="stable")[:DEMO_FOCUS_COUNT]]
    else:
        focus = parse_focus("all", expr)
    backend = get_backend(args.backend, announce=log)
    if plan:
        backend.prepare()  # compiled kernels loaded first: the budget's room (ulimit -v) then counts them
        plan = plan_batches(expr.n_genes, expr.n_samples, k_low, k_high, cfg.n_bootstrap,
                            resolve_budget(backend, args.memory_budget), bootstrap_frac=cfg.bootstrap_frac,
                            **backend.plan_facts(),
                            threads=backend.host_threads(), store=cfg.store)
    else:
        plan = None
    identity = StudyIdentity.of(expr, cfg, focus, RNG_ALGORITHM)
    # --overwrite discards the whole study: only with nothing else running on it
    ScopeLock(out, "study" if args.overwrite else scope).acquire()  # released when the command ends (main)
    claim_study(StudyLayout(out), identity, focus, overwrite=args.overwrite, log=log)  # refuses another study
    return StudySetup(out, expr, cfg, k_low, k_high, focus, backend, plan, identity)


def cmd_run(args) -> int:
    from bootgpu.hubs import format_hubs_table
    from bootgpu.study.layout import StudyLayout
    from bootgpu.study.directory import parse_shard
    from bootgpu.study.run import StudyRun

    shard = parse_shard(args.shard)
    if shard and args.permutations:
        raise BootgpuError("--permutations with --shard: run `bootgpu null` on the study once `bootgpu merge` has run")
    if args.permutations is not None and args.permutations < 1:
        raise BootgpuError(f"--permutations must be at least 1, got {args.permutations}")
    from bootgpu.study.lock import shard_scope

    s = _setup_study(args, scope=shard_scope(shard))
    expr, cfg, out = s.expr, s.cfg, s.out
    log(f"bootgpu {__version__}: {expr.n_genes} genes x {expr.n_samples} samples, {plural(len(s.focus), 'focus gene')}, "
         f"B={cfg.n_bootstrap}, k_low={s.k_low}, k_high={s.k_high}, backend={s.backend.name} ({s.backend.device_name()})")
    t0 = time.perf_counter()
    if args.processes < 0:
        raise BootgpuError(f"--processes must be 0 (automatic) or more, got {args.processes}")
    study = StudyRun(s.backend, expr, cfg, s.plan, s.focus, out, shard, s.identity, rank_by=args.rank_by,
                     processes=args.processes)
    with MemoryReport(s.backend, s.plan.budget_bytes, s.plan.predicted_peak_bytes, args.verbose) as report:
        summary = study.run(log=log)
        if study.predicted_peak_bytes is not None:  # re-planned for the selected edges (None: nothing computed)
            report.predicted = study.predicted_peak_bytes
        if study.worker_plan_used is not None:  # the workers' own peaks, against their share of the budget
            report.workers = (study.worker_peak_bytes, study.worker_plan_used)
        elif summary.computed == 0:
            report.silent = True
    elapsed = time.perf_counter() - t0
    genes = plural(summary.n_focus, "focus gene")
    scope = f"shard {shard[0]}/{shard[1]} ({genes})" if shard else f"the study ({genes})"
    if summary.already_complete:
        log(f"{out}: {scope} is already complete: nothing to compute (--overwrite discards it and computes it again)")
    else:
        reused = f", {summary.reused} reused from an earlier run" if summary.reused else ""
        rate = f" ({elapsed / summary.computed:.2f} s per gene)" if summary.computed else ""  # not for a finish alone
        log(f"done: {plural(summary.computed, 'focus gene')} computed in {elapsed:.1f} s{rate}{reused} -> {out}")
    rows = summary.hub_rows
    if args.permutations:
        _run_null(s, args.permutations, None, args.rank_by)
        rows = _ranked_hub_rows(StudyLayout(out), args.rank_by)
    if rows is not None:
        print("Top rewiring hubs:")
        print(format_hubs_table(rows, rank_by=args.rank_by))
        print(f"All focus genes: {StudyLayout(out).hubs}; every network metric: {StudyLayout(out).network_summary}")
        print(f"next: bootgpu report {out}    # an HTML report with the hubs table and figures")
    return 0


def _ranked_hub_rows(layout, rank_by: str) -> list[dict]:
    """The hubs rows of a finished study as rewiring_hubs.tsv now holds them (p and q joined)."""
    import h5py

    from bootgpu.hubs import sort_hub_rows
    from bootgpu.results_io import read_hubs_row
    from bootgpu.significance import join_significance, read_significance

    with h5py.File(layout.results, "r") as h5:
        rows = sort_hub_rows([read_hubs_row(h5["focus"][name]) for name in h5["focus"]], rank_by)
    return join_significance(rows, read_significance(layout.significance))


def _run_null(s: StudySetup, n_perm: int, scope: range | None, rank_by: str, compute: bool = True) -> None:
    """The permutation null of a claimed study, then its gene significance when results.h5 is there;
    without ``compute``, the replicates are only gathered (a missing one is an error)."""
    from bootgpu.study.layout import StudyLayout
    from bootgpu.null import NullRun, study_significance

    t0 = time.perf_counter()
    null = NullRun(s.backend, s.expr, s.cfg, s.plan, s.out, s.identity)
    summary = null.run(n_perm, scope, log=log, compute=compute)
    elapsed = time.perf_counter() - t0
    what = f"replicates {scope.start}-{scope.stop - 1}" if scope else f"{n_perm} null replicates"
    if compute:
        log(f"null: {summary.computed} of {what} computed in {elapsed:.1f} s "
            f"({elapsed / max(summary.computed, 1):.2f} s per replicate), {summary.reused} reused")
    else:
        log(f"null: {what} gathered in {elapsed:.1f} s (--gather-only: nothing computed)")
    layout = StudyLayout(s.out)
    if not summary.assembled:
        log(f"null: run `bootgpu null` without --replicates, once every task is done, to gather {layout.null_results}")
        return
    rows = study_significance(layout, s.identity, rank_by)
    if rows is None:
        log(f"null: {layout.null_results} written; `bootgpu run` with the same options adds the observed values "
            f"and writes {layout.significance}")
        return
    significant = sum(1 for row in rows if row["n_diff_edges_q"] < 0.1)
    log(f"null: {layout.significance}: {significant} of {len(rows)} focus genes with n_diff_edges q < 0.1; "
        f"p and q joined into {layout.hubs}")


def cmd_null(args) -> int:
    from bootgpu.null import parse_replicates

    if args.permutations < 1:
        raise BootgpuError(f"--permutations must be at least 1, got {args.permutations}")
    scope = parse_replicates(args.replicates, args.permutations)
    if args.gather_only and scope is not None:
        raise BootgpuError("--gather-only gathers all --permutations replicates: give no --replicates")
    s = _setup_study(args, plan=not args.gather_only, scope="null" if scope is None else f"null-{scope.start}-{scope.stop}")
    log(f"bootgpu {__version__} null: {s.expr.n_genes} genes x {s.expr.n_samples} samples, {args.permutations} "
        f"permutations, B={s.cfg.n_bootstrap}, k_low={s.k_low}, k_high={s.k_high}, backend={s.backend.name}")
    _run_null(s, args.permutations, scope, args.rank_by, compute=not args.gather_only)
    return 0


def _shape_from(args):
    """(n_genes, n_samples, Expression or None) from --expr FILE or --shape GENESxSAMPLES."""
    import re as _re

    if bool(args.expr) == bool(getattr(args, "shape", None)):
        raise BootgpuError("give exactly one of --expr FILE or --shape GENESxSAMPLES")
    if args.expr:
        expr = read_input(args)
        return expr.n_genes, expr.n_samples, expr
    match = _re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", args.shape)
    if not match:
        raise BootgpuError(f"--shape must look like 8763x938, got {args.shape!r}")
    return int(match[1]), int(match[2]), None


def _shape_config_backend_budget(args):
    """What `plan` and `indices` share: the shape (and matrix), validated parameters, the backend
    and the memory budget, in the order in which a bad option is reported."""
    from bootgpu.backends import get_backend
    from bootgpu.planner import resolve_budget

    n_genes, n_samples, expr = _shape_from(args)
    cfg = AnalysisConfig.from_args(args)
    k_low, k_high = cfg.validate(n_samples)
    backend = get_backend(args.backend, announce=log)
    backend.prepare()  # as for run: what the backend compiles is loaded before the budget is measured
    return n_genes, n_samples, expr, cfg, k_low, k_high, backend, resolve_budget(backend, args.memory_budget)


def cmd_plan(args) -> int:
    from bootgpu.planner import MODEL_MARGIN, format_bytes, plan_batches

    n_genes, n_samples, expr, cfg, k_low, k_high, backend, budget = _shape_config_backend_budget(args)
    plan = plan_batches(n_genes, n_samples, k_low, k_high, cfg.n_bootstrap, budget, bootstrap_frac=cfg.bootstrap_frac,
                        **backend.plan_facts(),
                        threads=backend.host_threads(), store=cfg.store)
    print(f"{n_genes} genes x {n_samples} samples, k_low={k_low}, k_high={k_high}, B={cfg.n_bootstrap}; "
          f"backend {backend.name} ({backend.device_name()}), budget {format_bytes(budget)}")
    width = max(len(name) for name in plan.stages)
    for name, (batch, nbytes) in plan.stages.items():
        print(f"  {name:<{width}}  {format_bytes(nbytes):>11}  {batch}")
    print(f"  {'predicted peak (focus gene)':<{width}}  {format_bytes(plan.predicted_peak_bytes):>11}  "
          f"(x{MODEL_MARGIN} model margin included)")
    from bootgpu.sge.resources import task_request

    slots = max(1, args.slots)
    req = task_request(n_genes, n_samples, k_low, k_high, cfg.n_bootstrap, budget, slots,
                       working_set_bytes=backend.working_set_bytes, store=cfg.store)
    vmem = f"-l h_vmem={req.h_vmem} per slot (-pe smp {slots}; h_vmem is per slot, ulimit -v = h_vmem x slots)"
    if backend.name == "cupy":
        print(f"Grid Engine request: -l gpu=1 with >= {format_bytes(plan.predicted_peak_bytes)} free GPU memory, {vmem}")
    else:
        print(f"Grid Engine request: {vmem}, run with --memory-budget {req.run_budget // 2**20}M "
              f"(as bootgpu sge submit asks)")
    if args.estimate:  # a few seconds of real work on this backend (docs/time-estimate.md)
        from bootgpu.estimate import calibrate

        focus = None
        if args.focus:
            if expr is None:
                raise BootgpuError("--focus needs --expr (a --shape has no genes to name)")
            from bootgpu.study.directory import parse_focus

            focus = parse_focus(args.focus, expr)
        est = calibrate(backend, n_genes, n_samples, cfg, plan, values=expr.values if expr is not None else None,
                        focus=focus)
        n_focus = args.focus_count or (len(focus) if focus else None)
        for line in est.lines(n_focus=n_focus, tasks=args.tasks, slots=slots):
            print(line)
    return 0


def cmd_indices(args) -> int:
    from bootgpu.indices import write_indices
    from bootgpu.planner import format_bytes, plan_indices

    n_genes, n_samples, expr, cfg, k_low, k_high, backend, budget = _shape_config_backend_budget(args)
    if args.batch_size == "auto":
        fixed = None
    elif args.batch_size.isdigit() and int(args.batch_size) > 0:
        fixed = int(args.batch_size)
    else:
        raise BootgpuError(f"--batch-size must be auto or a positive integer, got {args.batch_size!r}")
    block, predicted = plan_indices(n_genes, n_samples, k_low, k_high, cfg.n_bootstrap, budget,
                                    bootstrap_frac=cfg.bootstrap_frac, threads=backend.host_threads(), genes_per_block=fixed)
    log(f"bootgpu indices: {n_genes} genes x {n_samples} samples, B={cfg.n_bootstrap}, {block} genes per block, "
         f"budget {format_bytes(budget)}, predicted peak {format_bytes(predicted)}, backend {backend.name}")
    with MemoryReport(backend, budget, predicted, args.verbose):
        stats = write_indices(backend, expr.values, cfg, Path(args.out), block, args.compression)
    log(f"wrote {args.out}: {format_bytes(stats['bytes'])} in {stats['seconds']:.1f} s ({stats['processing_mode']}, {stats['compression']})")
    return 0


def plain_bytes(n: int) -> str:
    """A size as people say it: '143 MiB', '19.2 GiB'."""
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{max(n, 0) / 2**20:.0f} MiB"


class MemoryReport:
    """Logs, after a block of work, the peak memory it took next to the prediction and budget, in
    plain words: ``memory: used 0.4 GiB at most (predicted 0.5 GiB) of a 18.3 GiB budget``; with
    ``verbose`` the byte counts follow: ``(bytes: R P B; peak RSS S, RSS at start T)``."""

    def __init__(self, backend, budget: int, predicted: int, verbose: bool = False):
        self.backend, self.budget, self.predicted, self.verbose = backend, budget, predicted, verbose
        self.workers = None  # (largest measured rise of a worker process, the plan of each)
        self.silent = False  # nothing was computed: no line

    def __enter__(self):
        from bootgpu.backends.numpy_backend import current_rss_bytes

        self.backend.prepare()  # kernels compiled or loaded before the baseline, not inside the measured work
        self.start_rss = current_rss_bytes()
        self._tracker = self.backend.track_peak()
        self.peak = self._tracker.__enter__()
        return self

    def __exit__(self, *exc):
        from bootgpu.backends.numpy_backend import peak_rss_bytes

        self._tracker.__exit__(*exc)
        if exc[0] is None and self.workers is not None:
            peak, plan = self.workers
            line = (f"memory: each worker process used {plain_bytes(peak)} at most (predicted "
                    f"{plain_bytes(self.predicted)}) of its {plain_bytes(plan.budget_bytes)} share of a "
                    f"{plain_bytes(self.budget)} budget")
            if self.verbose:
                line += f" (bytes: {peak} {self.predicted} {plan.budget_bytes} {self.budget})"
            log(line)
        elif exc[0] is None and not self.silent:
            line = (f"memory: used {plain_bytes(self.peak.peak_bytes)} at most (predicted "
                    f"{plain_bytes(self.predicted)}) of a {plain_bytes(self.budget)} budget")
            if self.verbose:
                line += (f" (bytes: {self.peak.peak_bytes} {self.predicted} {self.budget}; "
                         f"peak RSS {peak_rss_bytes()}, RSS at start {self.start_rss})")
            log(line)
        return False


def cmd_merge(args) -> int:
    from bootgpu.hubs import format_hubs_table
    from bootgpu.study.directory import merge_shards
    from bootgpu.study.layout import check_out_dir
    from bootgpu.study.lock import ScopeLock

    ScopeLock(check_out_dir(Path(args.dir), "merge"), "study").acquire()  # released when the command ends
    rows = merge_shards(Path(args.dir), args.rank_by)
    print(f"merged {len(rows)} focus genes into {Path(args.dir) / 'results.h5'}")
    print(format_hubs_table(rows, rank_by=args.rank_by))
    return 0


def cmd_info(args) -> int:
    import numpy as np

    from bootgpu.backends import get_backend
    from bootgpu.backends.cupy_backend import cupy_unusable_reason

    print(f"bootgpu {__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")
    for name in ("numpy", "cupy"):
        if name == "cupy" and (reason := cupy_unusable_reason()):
            print(f"  cupy : not usable ({reason})")
            continue
        backend = get_backend(name)
        free, total = backend.memory_info()
        print(f"  {name:<5}: {backend.device_name()}, {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB")
    print(f"  auto picks: {get_backend('auto').name}")
    return 0


def cmd_convert(args) -> int:
    from bootgpu.expression_io import write_expression_h5

    expr = read_input(args)
    write_expression_h5(expr, args.out)
    print(f"wrote {args.out}: {expr.n_genes} genes x {expr.n_samples} samples")
    return 0


RANK_BY = {"default": DEFAULT_RANK_BY, "metavar": "COLUMN",
           "help": "order of rewiring_hubs.tsv: any numeric column, largest first, e.g. n_rewire, L2L1_rewire, "
                   "L2L1_deg, L1_rewire, n_robust, mean_abs_delta (default %(default)s: the focus gene's rewired "
                   "edges; docs/networks.md)"}


RUN_EXAMPLES = """examples:
  bootgpu run --demo                                   # the embedded ALL subset, 10 focus genes
  bootgpu run --expr expr.tsv.gz --out study --focus '#0:100'
  bootgpu run --expr expr.h5 --out study --fdr-alpha 0.1 --n-bootstrap 500 --memory-budget 6G
  bootgpu run --expr expr.tsv --out study --shard 3/10 # one of 10 parts; then bootgpu merge study"""
PLAN_EXAMPLES = """examples:
  bootgpu plan --shape 8763x938                        # batch sizes and peak memory on this machine
  bootgpu plan --expr expr.tsv.gz --memory-budget 8G --slots 4 --focus-count 500 --tasks 50
  bootgpu plan --expr expr.tsv.gz --focus @genes.txt --n-bootstrap 1000     # samples those focus genes
                                                       # + time per focus gene, study time here and on 50 tasks"""
INDICES_EXAMPLES = """examples:
  bootgpu indices --expr expr.tsv.gz --out indices.h5  # layout: docs/indices-format.md
  bootgpu indices --expr expr.h5 --out indices.h5 --n-bootstrap 100 --compression lzf"""
NULL_EXAMPLES = """examples:
  bootgpu null --expr expr.tsv.gz --out study --permutations 200     # after bootgpu run --out study, same options
  bootgpu null --expr expr.tsv.gz --out study --permutations 200 --replicates 0:50   # one task's share"""


def _add_null_parser(sub, backend_names, focus_help: str) -> None:
    """`bootgpu null`: the study's options (as `run`) plus --permutations and --replicates."""
    null = sub.add_parser("null", help="permutation null shared by all focus genes: empirical p and BH q per gene "
                                       "(gene_significance.tsv; docs/null.md)", epilog=NULL_EXAMPLES,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_options(null)
    null.add_argument("--out", required=True, help="study directory (the same as bootgpu run's, to get p and q)")
    null.add_argument("--permutations", type=int, required=True, metavar="N", help="null replicates (e.g. 200)")
    null.add_argument("--replicates", metavar="A:B",
                      help="compute only replicates A..B-1 (a task's share); gather with a run without it")
    null.add_argument("--gather-only", action="store_true",
                      help="compute nothing: gather the replicate files into null.h5, then p and q; a missing "
                           "replicate is an error (the Grid Engine merge job runs this)")
    null.add_argument("--overwrite", action="store_true", help="discard a study already in --out")
    null.add_argument("--backend", choices=backend_names, default="auto", help=BACKEND_HELP)
    null.add_argument("--focus", help=focus_help)
    null.add_argument("--memory-budget", help=BUDGET_HELP)
    add_analysis_options(null)
    null.add_argument("--rank-by", **RANK_BY)
    null.set_defaults(func=cmd_null)


def _add_plan_parser(sub, BACKEND_NAMES) -> None:
    """`bootgpu plan`: batch sizes, predicted peak, the Grid Engine request and a time estimate."""
    plan = sub.add_parser("plan", help="batch sizes, predicted peak memory and the Grid Engine request for a shape",
                          epilog=PLAN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_options(plan, required=False, what="expression matrix (its shape is used)")
    plan.add_argument("--shape", help="GENESxSAMPLES, e.g. 8763x938")
    plan.add_argument("--backend", choices=BACKEND_NAMES, default="auto", help=BACKEND_HELP)
    plan.add_argument("--memory-budget", help=BUDGET_HELP)
    plan.add_argument("--slots", type=int, default=1, help="Grid Engine slots (-pe smp N) to spread h_vmem over (default %(default)s)")
    plan.add_argument("--no-estimate", dest="estimate", action="store_false",
                      help="skip the time estimate (a few seconds of calibration on the chosen backend)")
    plan.add_argument("--focus-count", type=int, metavar="N",
                      help="focus genes the time estimate is for (default: those of --focus, else every gene, as "
                           "bootgpu run)")
    plan.add_argument("--focus", help="with --expr: the study's focus genes (as bootgpu run --focus); the estimate "
                                      "samples them (default: every gene)")
    plan.add_argument("--tasks", type=int, default=ESTIMATE_TASKS,
                      help="Grid Engine array tasks the time estimate spreads the study over (default %(default)s)")
    add_options(plan, DRAW_OPTIONS)  # memory depends on the split and B only
    plan.set_defaults(func=cmd_plan)


def _add_indices_parser(sub, BACKEND_NAMES) -> None:
    """`bootgpu indices`: every gene's split and bootstrap sample indices."""
    idx = sub.add_parser("indices", help="write every gene's split and bootstrap sample indices (original layout)",
                         epilog=INDICES_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_options(idx)
    idx.add_argument("--out", required=True, help="indices.h5")
    idx.add_argument("--backend", choices=BACKEND_NAMES, default="auto", help=BACKEND_HELP)
    idx.add_argument("--batch-size", default="auto", help="genes per block: auto (from the memory budget) or N (default %(default)s)")
    idx.add_argument("--memory-budget", help=BUDGET_HELP)
    idx.add_argument("--compression", default="gzip",
                     help="gzip (level 1), gzip4, lzf, none; zstd, blosc-zstd need hdf5plugin (default %(default)s)")
    idx.add_argument("--verbose", action="store_true", help="also log exact byte counts of the memory used")
    add_options(idx, DRAW_OPTIONS)  # the split and the draws only
    idx.set_defaults(func=cmd_indices)


def build_parser() -> argparse.ArgumentParser:
    from bootgpu.backends import BACKEND_NAMES
    from bootgpu.study.directory import FOCUS_HELP

    parser = argparse.ArgumentParser(prog="bootgpu", description="Extreme-population bootstrap differential co-expression on NumPy or CuPy.")
    parser.add_argument("--version", action="version", version=f"bootgpu {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="analyse focus genes and write results.h5 + rewiring_hubs.tsv", epilog=RUN_EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_options(run, required=False)
    run.add_argument("--demo", action="store_true", help="use the embedded ALL leukemia subset (2000 x 128)")
    run.add_argument("--out", help="study directory (required; default for --demo: ~/bootgpu-demo)")
    run.add_argument("--overwrite", action="store_true",
                     help="discard a study already in --out (other parameters, input or focus genes, or finished)")
    run.add_argument("--backend", choices=BACKEND_NAMES, default="auto", help=BACKEND_HELP)
    run.add_argument("--focus", help=FOCUS_HELP.replace("(default: all)", "(default: all; demo: the 10 most variable)"))
    run.add_argument("--shard", help="K/N: run only the K-th of N shares of the focus list (every N-th focus gene "
                                     "from the K-th)")
    run.add_argument("--memory-budget", help=BUDGET_HELP)
    run.add_argument("--processes", type=int, default=0, metavar="N",
                     help="at most N worker processes computing focus genes side by side: on a CPU, sharing the "
                          "cores (default: 0, as many as the planner fits in the cores and the memory budget); on a "
                          "GPU, sharing the device (default: one process, with host processes writing its parts; "
                          "8 helps small groups, see the README); 1: no workers, every core or the whole GPU on one "
                          "focus gene at a time")
    run.add_argument("--verbose", action="store_true", help="also log exact byte counts of the memory used")
    add_analysis_options(run)
    run.add_argument("--rank-by", **RANK_BY)
    run.add_argument("--permutations", type=int, metavar="N",
                     help="then the permutation null with N replicates and each focus gene's empirical p and q "
                          "(as bootgpu null; docs/null.md)")
    run.set_defaults(func=cmd_run)

    _add_null_parser(sub, BACKEND_NAMES, FOCUS_HELP)

    merge = sub.add_parser("merge", help="combine the shard files of DIR into results.h5 + rewiring_hubs.tsv",
                           epilog="example:\n  bootgpu merge study/    # after every `bootgpu run --shard K/N --out study`",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    merge.add_argument("dir", help="the study directory the shards were written to (--out of bootgpu run)")
    merge.add_argument("--rank-by", **RANK_BY)
    merge.set_defaults(func=cmd_merge)

    info = sub.add_parser("info", help="list backends, devices and memory", epilog="example:\n  bootgpu info",
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    info.set_defaults(func=cmd_info)

    _add_plan_parser(sub, BACKEND_NAMES)
    _add_indices_parser(sub, BACKEND_NAMES)

    from bootgpu import bench, browse, cluster, export, report, sge, slurm, warmup

    bench.register_commands(sub)  # `bootgpu bench`

    browse.register_commands(sub)  # `bootgpu top`
    export.register_commands(sub)  # `bootgpu export`
    report.register_commands(sub)  # `bootgpu report`

    sge.register_commands(sub)  # `bootgpu sge submit`
    slurm.register_commands(sub)  # `bootgpu slurm submit`
    cluster.register_commands(sub)  # `bootgpu status` (a study run here, on Grid Engine or on Slurm)
    warmup.register_commands(sub)  # `bootgpu warmup`

    conv = sub.add_parser("convert", help="write the original pipeline's expression.h5 layout",
                          epilog="example:\n  bootgpu convert --expr expression.tsv.gz --out expression.h5",
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_options(conv, what="expression matrix to convert: TSV/CSV(.gz) genes x samples, or HDF5")
    conv.add_argument("--out", required=True, help="the HDF5 file to write (/expr float32, /gene_names, /sample_names)")
    conv.set_defaults(func=cmd_convert)
    finish_help(parser)
    return parser


def finish_help(parser: argparse.ArgumentParser, width: int = 100) -> None:
    """Every subcommand's page opens with a description (its one-line help where it has none)
    wrapped to ``width`` columns, and ends with examples (tests/test_cli_help.py checks both)."""
    import textwrap

    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, sub in action.choices.items():
            text = sub.description or (helps.get(name) or "")
            if text and not sub.description:
                text = text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")
            sub.description = "\n".join(
                line if line.startswith(" ") or len(line) <= width else textwrap.fill(line, width)
                for line in text.splitlines())
            finish_help(sub, width)


class Stopped(BaseException):
    """A signal a batch system sends to stop a job (SIGTERM at a time limit; SIGUSR1/SIGUSR2 ahead of
    it with Grid Engine's -notify), raised where the command is, as Ctrl-C raises KeyboardInterrupt."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


STOP_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")


def _raise_stopped(signum, frame):
    raise Stopped(signum)


def _stop_line(signum: int) -> str:
    """What an interrupted command says: by what, and what of the work is kept."""
    import signal

    from bootgpu.study.progress import RUNNING

    name = signal.Signals(signum).name if signum else "Ctrl-C"
    line = f"bootgpu: stopped by {name}"
    if RUNNING:
        unit, done, total, where = RUNNING["unit"], RUNNING["done"], RUNNING["total"], RUNNING["where"]
        line += (f": {done:,} of {total:,} {unit}{'s' if total != 1 else ''} are saved in {where}; the same command "
                 f"resumes from there")
    return line


def main(argv=None) -> int:
    import signal

    from bootgpu.backends.host_memory import use_small_pages
    from bootgpu.study.lock import release_all

    use_small_pages()  # no huge-page compaction stalls in a study's allocations (its docstring)
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = {}
    for name in STOP_SIGNALS:
        try:
            previous[name] = signal.signal(getattr(signal, name), _raise_stopped)
        except ValueError:  # not the main thread (a test's worker thread): the default handlers stay
            pass
    try:
        return args.func(args)
    except BootgpuError as exc:
        print(f"bootgpu: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"bootgpu: error: out of memory{_memory_hint(args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(_stop_line(0), file=sys.stderr)
        return 130
    except Stopped as exc:
        print(_stop_line(exc.signum), file=sys.stderr)
        return 128 + exc.signum
    finally:
        release_all()
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)


def _memory_hint(args) -> str:
    """What to do after an out-of-memory error: a smaller --memory-budget, or more memory."""
    from bootgpu.study.progress import RUNNING

    budget = getattr(args, "memory_budget", None)
    asked = f"--memory-budget {budget}" if budget else "the automatic memory budget"
    where = f" ({RUNNING['done']:,} of {RUNNING['total']:,} focus genes are saved; the same command resumes)" if RUNNING else ""
    return (f" with {asked}: the planner's prediction did not hold here; rerun with a smaller --memory-budget "
            f"(e.g. half), or ask the scheduler for more memory{where}")


if __name__ == "__main__":
    sys.exit(main())
