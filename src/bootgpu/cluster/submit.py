"""`bootgpu sge submit` and `bootgpu slurm submit`: one flow for either scheduler.  It reads and
checks the study, builds a ``Submission`` with the scheduler's renderer, writes its files, submits
its jobs through the scheduler's client and prints what it did; a resubmission submits only what
is missing."""

from __future__ import annotations

import argparse
import datetime as _dt
import getpass
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from bootgpu.cluster.jobfiles import JOB_KINDS, read_submissions, scripts_dir, write_job_files, write_submissions
from bootgpu.cluster.model import StudyInput, Submission, check_path, split_null, split_tasks
from bootgpu.cluster.resources import TaskRequest
from bootgpu.cluster.scheduler import Scheduler, task_numbers
from bootgpu.config import AnalysisConfig
from bootgpu.core.draws import RNG_ALGORITHM
from bootgpu.errors import BootgpuError
from bootgpu.options import Option, log, options_argv, read_input
from bootgpu.planner import format_bytes
from bootgpu.study.directory import claim_study, other_study_error, parse_focus, recorded_identity
from bootgpu.study.identity import StudyIdentity
from bootgpu.study.layout import ClusterFiles, StudyLayout, check_out_dir

NULL_RECORD_KEYS = ("permutations", "replicates_per_task", "null_tasks", "null_id")  # of DIR/<scheduler>/study.json


def submit_study(args: argparse.Namespace, scheduler: Scheduler, options: Iterable[Option],
                 request_for: Callable[[argparse.Namespace, StudyInput], TaskRequest]) -> int:
    """The submit command of ``scheduler`` (its site options already checked): ``options``, the
    command's, written back into the command that submits the study again; ``request_for``: each
    task's memory request (and the scheduler's refusals of it)."""
    study = read_study_input(args, scheduler.label)
    tasks = split_tasks(args, len(study.focus))
    split_null(args, len(study.focus), tasks)  # refuses bad --permutations / --replicates-per-task before any write
    request = request_for(args, study)
    source = scripts_dir(scheduler.name, scheduler.label, args.scripts_dir)
    renderer = scheduler.renderer(args)
    layout = StudyLayout(study.out)
    files = layout.cluster(scheduler.name)
    old, stuck = check_resubmission(args, layout, files, study, tasks, scheduler)
    if claim_study(layout, study.identity, list(study.focus), overwrite=args.overwrite, log=print):
        old, stuck = None, []  # --overwrite discarded the study, its submissions with it
    done, null_record = null_done(layout, study) if args.permutations else ((), {})
    sub = Submission.build(args, study, tasks, request, layout.shards(), python=sys.executable,
                           path=os.environ.get("PATH", "/usr/bin:/bin"), replicates_done=done, renderer=renderer)
    if layout.results.is_file() and not sub.todo and (sub.null is None or null_complete(layout, sub)):
        raise BootgpuError(f"{study.out}: the study is complete and merged (results.h5"
                           + (", null.h5, gene_significance.tsv" if sub.null else "") + "); nothing to submit")
    now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    written = write_job_files(sub, source, now)
    print_plan(args, sub, written)
    earlier = {k: v for k, v in (old or {}).items() if k not in NULL_RECORD_KEYS}  # this submission's null, or none
    record = {**earlier, **sub.record(), **null_record,
              "bootgpu_submit": submit_command(args, sub, options, scheduler.name)}  # fmt: skip
    record.setdefault("submissions", [])
    if args.dry_run:
        write_submissions(files, record)
        for path in written[:-2]:  # the job scripts as they would be submitted
            print(f"--- {path}\n{path.read_text()}", end="")
        print("dry run: nothing submitted")
        return 0
    if shutil.which(scheduler.submit_tool) is None:
        raise BootgpuError(f"{scheduler.submit_tool} not found on PATH: is this a {scheduler.label} submit host? "
                           "(--dry-run writes the scripts only)")  # fmt: skip
    if stuck:
        scheduler.cancel(stuck)
        print(f"cancelled job(s) {', '.join(map(str, stuck))} of the last submission: waiting for jobs that failed, "
              "they could never run")  # fmt: skip
    ids = submit_jobs(sub, record, now, scheduler)
    print_submitted(sub, ids, scheduler)
    return 0


def null_done(layout: StudyLayout, study: StudyInput) -> tuple[set[int], dict]:
    """The null replicates on disk, as the null tasks would find them: files in DIR/null/ (by name;
    the task checks each file's identity) and those DIR/null.h5 holds (checked here); and what the
    submission record keeps of the null (its ``null_id``, which `bootgpu status` checks files
    against)."""
    from bootgpu.null import check_null_file, null_id, null_identity  # loads the pipeline: only with --permutations

    ident = null_identity(study.identity)
    done = set(layout.null_replicates())
    if layout.null_results.is_file():
        done |= set(range(int(check_null_file(layout.null_results, ident, "null file")["n_perm"])))
    return done, {"null_id": null_id(ident)}


def null_complete(layout: StudyLayout, sub: Submission) -> bool:
    """Whether DIR/null.h5 holds exactly the N replicates asked for and the p / q are written."""
    import h5py

    if not (layout.null_results.is_file() and layout.significance.is_file()):
        return False
    with h5py.File(layout.null_results, "r") as h5:
        return int(h5["meta"].attrs["n_perm"]) == sub.null.permutations


def read_study_input(args: argparse.Namespace, scheduler: str = "Grid Engine") -> StudyInput:
    """The input and study directory (absolute, usable in the scheduler's options), the matrix, the
    validated parameters and focus genes, and the study's identity."""
    expr_path = check_path("--expr", Path(args.expr).resolve(), scheduler)
    out = check_path("--out", Path(args.out).resolve(), scheduler)
    check_out_dir(out)
    expr = read_input(args, expr_path)
    cfg = AnalysisConfig.from_args(args)
    k_low, k_high = cfg.validate(expr.n_samples)
    focus = parse_focus(args.focus or "all", expr)
    identity = StudyIdentity.of(expr, cfg, focus, RNG_ALGORITHM)
    return StudyInput(expr_path, out, expr.n_genes, expr.n_samples, cfg, k_low, k_high, tuple(focus), identity)


def check_resubmission(args: argparse.Namespace, layout: StudyLayout, files: ClusterFiles, study: StudyInput,
                       tasks: int, scheduler: Scheduler) -> tuple[dict | None, list[int]]:
    """A study already in DIR may be submitted again only as the same study (input, parameters,
    focus genes) and split, with none of its jobs alive; checked before anything is written or
    queued.  Returns its submission record (DIR/<scheduler>/study.json), if any, and the jobs of it
    that wait for a failed job and so can never run (Slurm's afterok): to cancel and replace."""
    if not args.overwrite:
        recorded = recorded_identity(layout)
        if recorded is not None and (diff := recorded[0].difference(study.identity)):
            raise other_study_error(layout.root, diff)
        other = {n for _, n in layout.shards() if n != tasks}
        if other:
            raise BootgpuError(f"{layout.shards_dir} holds shards of a {min(other)}-task split; submit with --tasks {min(other)}")
    old = read_submissions(files)
    if not old or args.dry_run:
        return old, []
    ids = [j for s in old.get("submissions", []) for j in (s.get(k) for k, _ in JOB_KINDS) if j]
    try:
        live = scheduler.jobs(ids)
    except BootgpuError as exc:
        log(f"bootgpu: warning: cannot tell whether jobs {', '.join(map(str, ids))} still run: {exc}")
        live = {}
    states = {j: live[j] for j in ids if j in live}
    stuck = sorted(j for j, rows in states.items() if rows and all(s.blocked for s in rows))
    alive = sorted(j for j, rows in states.items() if j not in stuck and any(s.alive for s in rows))
    if alive:
        raise BootgpuError(f"{layout.root}: jobs {', '.join(map(str, alive))} of this study are still queued or "
                           f"running; wait for them or {scheduler.cancel_tool} them first "
                           f"(bootgpu status {layout.root})")  # fmt: skip
    return old, stuck


def submit_command(args: argparse.Namespace, sub: Submission, options: Iterable[Option], scheduler: str) -> list[str]:
    """The `bootgpu SCHEDULER submit` command that submits this study again, every option explicit:
    each option of the parser (``options``) as given, with absolute paths, the number of tasks
    decided and the study's own copy of its focus list (the same genes from any directory)."""
    decided = {"expr": sub.study.expr, "out": sub.study.out, "tasks": sub.tasks, "focus": f"@{sub.files.focus_list}",
               "scripts_dir": Path(args.scripts_dir).resolve() if args.scripts_dir else None,
               "replicates_per_task": sub.null.per_task if sub.null else None}  # fmt: skip
    return ["bootgpu", scheduler, "submit", *options_argv(options, args, values=decided)]


def print_plan(args: argparse.Namespace, sub: Submission, written: list[Path]) -> None:
    """The study, the split, each task's memory request, the files written and the submit command lines."""
    s, req, todo = sub.study, sub.request, sub.todo
    fewest, most = sub.task_sizes()
    line = (f"study {s.out}: {len(s.focus)} focus genes of {s.n_genes} genes x {s.n_samples} samples, "
            f"{sub.tasks} tasks of {most if fewest == most else f'{fewest}-{most}'} genes")  # fmt: skip
    if todo and len(todo) < sub.tasks:
        gaps = task_numbers(sub.array_range) != set(todo)
        line += (f"; tasks {sub.array_range} to run ({sub.tasks - len(todo)} already done"
                 + (", those inside the range exit at once)" if gaps else ")"))  # fmt: skip
    elif not todo:
        line += "; all shards done, merge only"
    print(line)
    print(f"each task: backend {sub.backend}, planner peak + overhead at --memory-budget {args.memory_budget}"
          f"{sub.renderer.request_words(req)}, runs with --memory-budget {req.run_budget} "
          f"({format_bytes(req.run_budget)})")  # fmt: skip
    if sub.null is not None:
        print_null_plan(sub)
    print(f"wrote {', '.join(map(str, written))}")
    for cmd in sub.commands():
        print(shlex.join(cmd))


def print_null_plan(sub: Submission) -> None:
    """The null replicates' split and what is left of it."""
    null = sub.null
    todo = sum(len(null.replicates(j)) for j in null.todo)
    line = (f"null: {null.permutations} replicates in {null.tasks} tasks of {null.per_task}, each planned and "
            f"requested as one focus gene's analysis")  # fmt: skip
    if not null.todo:
        line += "; all done, gathered by the merge"
    elif len(null.todo) < null.tasks:
        line += f"; tasks {sub.null_range} to run ({null.permutations - todo} replicates already done)"
    print(line)


def submit_jobs(sub: Submission, record: dict, now: str, scheduler: Scheduler) -> dict[str, int | None]:
    """Submit the array (if any task is left), the null array (likewise) and the merge, each after
    the jobs it waits for (by id where the scheduler needs ids); record their ids and commands in
    DIR/<scheduler>/study.json, as far as they were accepted.  The ids by JOB_KINDS key."""
    entry = {"time": now, "tasks": sub.array_range, "commands": []}
    if sub.null is not None:
        entry["null_tasks"] = sub.null_range
    jobs = {"array_job": sub.task_job if sub.todo else None,
            "null_job": sub.null_job if sub.null is not None and sub.null.todo else None, "merge_job": sub.merge_job}
    ids: dict[str, int | None] = {}
    by_name: dict[str, int] = {}
    try:
        for key, job in jobs.items():
            if job is None:
                ids[key] = entry[key] = None
                continue
            cmd = job.command(by_name)
            entry["commands"].append(shlex.join(cmd))
            ids[key] = entry[key] = by_name[job.name] = scheduler.submit(cmd)
    except BootgpuError as exc:
        accepted = ", ".join(f"{label} job {ids[k]}" for k, label in JOB_KINDS if ids.get(k))
        if not accepted:
            raise
        record["submissions"].append(entry)
        write_submissions(sub.files, record)
        failed = next(label for k, label in JOB_KINDS if k not in ids)
        raise BootgpuError(f"{accepted} submitted, but the {failed} job failed: {exc}") from None
    record["submissions"].append(entry)
    write_submissions(sub.files, record)
    return ids


def print_submitted(sub: Submission, ids: dict[str, int | None], scheduler: Scheduler) -> None:
    array_id, null_id, merge_id = ids["array_job"], ids["null_job"], ids["merge_job"]
    arrays = ([f"array job {array_id} (tasks {sub.array_range})"] if array_id else []) + \
             ([f"null array job {null_id} (tasks {sub.null_range})"] if null_id else [])  # fmt: skip
    if arrays:
        after = " and ".join(str(i) for i in (array_id, null_id) if i)
        print(f"submitted {' and '.join(arrays)} and merge job {merge_id} (runs after {after})")
    else:
        print(f"submitted merge job {merge_id}")
    files, layout = sub.files, sub.layout
    print(f"watch:   {scheduler.query_tool} -u {shlex.quote(getpass.getuser())}   or   bootgpu status {layout.root}")
    print(f"logs:    {files.logs_dir}/")
    null = f", {layout.null_results} and {layout.significance}" if sub.null is not None else ""
    print(f"results: {layout.results}{null} and {layout.hubs} once job {merge_id} has run")
