"""`bootgpu sge submit` and `bootgpu status`: thin commands.  Submit reads and checks the study,
builds a ``Submission``, writes its files, calls qsub and prints; status reads the study's
progress and asks qstat about its jobs."""

from __future__ import annotations

import argparse
import datetime as _dt
import getpass
import os
import shlex
import shutil
import sys
from pathlib import Path

from bootgpu.backends import BACKEND_NAMES
from bootgpu.config import AnalysisConfig
from bootgpu.core.draws import RNG_ALGORITHM
from bootgpu.errors import BootgpuError
from bootgpu.identity import StudyIdentity
from bootgpu.layout import StudyLayout, check_out_dir
from bootgpu.options import ANALYSIS_OPTIONS, add_options, input_options, log, option, options_argv, read_input
from bootgpu.planner import format_bytes
from bootgpu.sge import qsub
from bootgpu.sge.jobfiles import read_submissions, scripts_dir, write_job_files, write_submissions
from bootgpu.sge.progress import study_progress
from bootgpu.sge.submission import (DEFAULT_BUDGET, DEFAULT_GENES_PER_TASK, DEFAULT_MERGE_VMEM, DEFAULT_PE,
                                    DEFAULT_RUNTIME, StudyInput, Submission, check_options, check_path,
                                    request_for, split_tasks)  # fmt: skip
from bootgpu.study import FOCUS_HELP, claim_study, other_study_error, parse_focus, recorded_identity

STATUS_TASK_LINES = 40  # `bootgpu status` lists every task up to this many, else a summary

# The options of `sge submit` besides the input and analysis ones, in the order of its help.  Each is
# also written into the command that submits the study again (study.json, `bootgpu status`), unless
# marked resubmit=False.
TASKS = option("--tasks", type=int, help="array tasks (shards) N")
GENES_PER_TASK = option("--genes-per-task", type=int, resubmit=False,
                        help=f"focus genes per task (default {DEFAULT_GENES_PER_TASK})")  # fmt: skip
SITE_OPTIONS = (
    option("--queue", help="queue for the tasks (-q; default cpu.q or gpu.q; '' for none)"),
    option("--merge-queue", help="queue for the merge job (default: --queue on cpu, none on gpu)"),
    option("--pe", default=DEFAULT_PE, help="parallel environment for the slots (default %(default)s; '' for none)"),
    option("--slots", type=int, default=1, help="slots (threads) per task (default %(default)s)"),
    option("--runtime", default=DEFAULT_RUNTIME, help="h_rt per task and for the merge, H:M:S (default %(default)s)"),
    option("--max-vmem", help="largest h_vmem per slot the queue allows (e.g. 16G); refuse to submit above it"),
    option("--merge-vmem", default=DEFAULT_MERGE_VMEM, help="h_vmem of the merge job (default %(default)s)"),
    option("--cuda-vmem", default="0",
           help="gpu queue: virtual memory the CUDA driver maps, added to h_vmem (default %(default)s; see README)"),
    option("--gpu-resource", default="gpu",
           help="gpu queue: the site's GPU complex, requested as -l NAME=1 (default %(default)s)"),
    option("--backend", choices=BACKEND_NAMES, help="backend of the tasks (default numpy on cpu, cupy on gpu)"),
    option("--qsub-args", help="more qsub options for both jobs, e.g. \"-P project -m ea\""),
    option("--job-setup", help="shell command the jobs run first, e.g. \"module load cuda/12.4\""),
    option("--scripts-dir", help="folder with the job scripts (default: the sge/ folder of the bootgpu source)"),
    option("--dry-run", action="store_true", resubmit=False,
           help="write the scripts and print the qsub command lines; submit nothing"),
    option("--focus", help=FOCUS_HELP),
    option("--overwrite", action="store_true", resubmit=False,
           help="discard a study already in --out (other parameters, input or focus genes) before submitting"),
    option("--memory-budget", default=DEFAULT_BUDGET,
           help="what each task plans for (device memory on gpu), e.g. 6G (default %(default)s)"),
)  # fmt: skip
STUDY_OPTIONS = (
    *input_options(what="expression matrix (TSV/CSV(.gz) or HDF5), readable from the nodes"),
    option("--out", required=True, help="study directory, on a file system shared with the nodes"),
    option("--queue-type", required=True, choices=("cpu", "gpu"), help="cpu: --backend numpy; gpu: --backend cupy, -l gpu=1"),
)  # fmt: skip
SUBMIT_OPTIONS = (*STUDY_OPTIONS, TASKS, GENES_PER_TASK, *SITE_OPTIONS, *ANALYSIS_OPTIONS)  # parser order


# --- bootgpu sge submit ------------------------------------------------------------------------

def cmd_submit(args: argparse.Namespace) -> int:
    check_options(args)
    study = read_study_input(args)
    tasks = split_tasks(args, len(study.focus))
    request = request_for(args, study)
    source = scripts_dir(args.scripts_dir)
    layout = StudyLayout(study.out)
    old = check_resubmission(args, layout, study, tasks)
    if claim_study(layout, study.identity, list(study.focus), overwrite=args.overwrite, log=print):
        old = None  # --overwrite discarded the study, its submissions with it
    sub = Submission.build(args, study, tasks, request, layout.shards(), python=sys.executable,
                           path=os.environ.get("PATH", "/usr/bin:/bin"))  # fmt: skip
    if layout.results.is_file() and not sub.todo:
        raise BootgpuError(f"{study.out}: the study is complete and merged (results.h5); nothing to submit")
    now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    written = write_job_files(sub, source, now)
    print_plan(args, sub, written)
    record = {**(old or {}), **sub.record(), "bootgpu_submit": submit_command(args, sub)}
    record.setdefault("submissions", [])
    if args.dry_run:
        write_submissions(layout, record)
        print("dry run: nothing submitted")
        return 0
    array_id, merge_id = submit_jobs(sub, record, now)
    print_submitted(sub, array_id, merge_id)
    return 0


def read_study_input(args: argparse.Namespace) -> StudyInput:
    """The input and study directory (absolute, usable in qsub options), the matrix, the validated
    parameters and focus genes, and the study's identity."""
    expr_path = check_path("--expr", Path(args.expr).resolve())
    out = check_path("--out", Path(args.out).resolve())
    check_out_dir(out)
    expr = read_input(args, expr_path)
    cfg = AnalysisConfig.from_args(args)
    k_low, k_high = cfg.validate(expr.n_samples)
    focus = parse_focus(args.focus or "all", expr)
    identity = StudyIdentity.of(expr, cfg, focus, RNG_ALGORITHM)
    return StudyInput(expr_path, out, expr.n_genes, expr.n_samples, cfg, k_low, k_high, tuple(focus), identity)


def check_resubmission(args: argparse.Namespace, layout: StudyLayout, study: StudyInput, tasks: int) -> dict | None:
    """A study already in DIR may be submitted again only as the same study (input, parameters,
    focus genes) and split, with none of its jobs alive; checked before anything is written or
    queued.  Returns its submission record (DIR/sge/study.json), if any."""
    if not args.overwrite:
        recorded = recorded_identity(layout)
        if recorded is not None and (diff := recorded[0].difference(study.identity)):
            raise other_study_error(layout.root, diff)
        other = {n for _, n in layout.shards() if n != tasks}
        if other:
            raise BootgpuError(f"{layout.shards_dir} holds shards of a {min(other)}-task split; submit with --tasks {min(other)}")
    old = read_submissions(layout)
    if old and not args.dry_run:
        ids = [j for s in old.get("submissions", []) for j in (s.get("array_job"), s.get("merge_job")) if j]
        try:
            live = qsub.qstat_jobs()
        except BootgpuError as exc:
            log(f"bootgpu: warning: cannot tell whether jobs {', '.join(map(str, ids))} still run: {exc}")
            live = {}
        alive = sorted(j for j in ids if j in live)
        if alive:
            raise BootgpuError(f"{layout.root}: jobs {', '.join(map(str, alive))} of this study are still queued or "
                               f"running; wait for them or qdel them first (bootgpu status {layout.root})")  # fmt: skip
    return old


def submit_command(args: argparse.Namespace, sub: Submission) -> list[str]:
    """The `bootgpu sge submit` command that submits this study again, every option explicit:
    each option of the parser (``SUBMIT_OPTIONS``) as given, with absolute paths, the number of
    tasks decided and the study's own copy of its focus list (the same genes from any directory)."""
    decided = {"expr": sub.study.expr, "out": sub.study.out, "tasks": sub.tasks, "focus": f"@{sub.layout.focus_list}",
               "scripts_dir": Path(args.scripts_dir).resolve() if args.scripts_dir else None}  # fmt: skip
    return ["bootgpu", "sge", "submit", *options_argv(SUBMIT_OPTIONS, args, values=decided)]


def print_plan(args: argparse.Namespace, sub: Submission, written: list[Path]) -> None:
    """The study, the split, each task's memory request, the files written and the qsub command lines."""
    s, req, todo = sub.study, sub.request, sub.todo
    fewest, most = sub.task_sizes()
    line = (f"study {s.out}: {len(s.focus)} focus genes of {s.n_genes} genes x {s.n_samples} samples, "
            f"{sub.tasks} tasks of {most if fewest == most else f'{fewest}-{most}'} genes")  # fmt: skip
    if todo and len(todo) < sub.tasks:
        gaps = len(todo) < todo[-1] - todo[0] + 1
        line += (f"; tasks {sub.array_range} to run ({sub.tasks - len(todo)} already done"
                 + (", those inside the range exit at once)" if gaps else ")"))  # fmt: skip
    elif not todo:
        line += "; all shards done, merge only"
    print(line)
    print(f"each task: backend {sub.backend}, planner peak + overhead at --memory-budget {args.memory_budget}"
          + (f" + --cuda-vmem {args.cuda_vmem}" if req.cuda else "")
          + f" = {format_bytes(req.need)} -> h_vmem={req.h_vmem} per slot x {req.slots} slot(s), runs with "
          f"--memory-budget {req.run_budget} ({format_bytes(req.run_budget)})")  # fmt: skip
    print(f"wrote {', '.join(map(str, written))}")
    for cmd in sub.commands():
        print(shlex.join(cmd))


def submit_jobs(sub: Submission, record: dict, now: str) -> tuple[int | None, int]:
    """qsub the array (if any task is left) and the merge; record both in DIR/sge/study.json."""
    if shutil.which("qsub") is None:
        raise BootgpuError("qsub not found on PATH: is this a Grid Engine submit host? (--dry-run writes the scripts only)")
    entry = {"time": now, "tasks": sub.array_range, "commands": [shlex.join(c) for c in sub.commands()]}
    array_id = qsub.submit(sub.task_job.command()) if sub.todo else None
    entry["array_job"] = array_id
    try:
        merge_id = qsub.submit(sub.merge_job.command())
    except BootgpuError as exc:
        record["submissions"].append(entry)
        write_submissions(sub.layout, record)
        raise BootgpuError(f"array job {array_id} submitted, but the merge job failed: {exc}") from None
    entry["merge_job"] = merge_id
    record["submissions"].append(entry)
    write_submissions(sub.layout, record)
    return array_id, merge_id


def print_submitted(sub: Submission, array_id: int | None, merge_id: int) -> None:
    if array_id:
        print(f"submitted array job {array_id} (tasks {sub.array_range}) and merge job {merge_id} (runs after {array_id})")
    else:
        print(f"submitted merge job {merge_id}")
    layout = sub.layout
    print(f"watch:   qstat -u {shlex.quote(getpass.getuser())}   or   bootgpu status {layout.root}")
    print(f"logs:    {layout.logs_dir}/")
    print(f"results: {layout.results} and {layout.hubs} once job {merge_id} has run")


# --- bootgpu status ----------------------------------------------------------------------------

def cmd_status(args: argparse.Namespace) -> int:
    out = Path(args.dir).resolve()
    if not out.is_dir():
        raise BootgpuError(f"{out}: no such study directory")
    p = study_progress(out)
    if p["focus"] is None and not p["merged"] and not p["parts"]:
        raise BootgpuError(f"{out}: not a bootgpu study (no study.json, shards, parts or results.h5)")
    print_progress(StudyLayout(out), p)
    if p["study"] and p["study"].get("submissions"):
        print_jobs(p["study"], p["merged"])
    if p["study"]:
        print(f"logs: {StudyLayout(out).logs_dir}/")
    return 0


def print_progress(layout: StudyLayout, p: dict) -> None:
    """Focus genes done, per task (a summary beyond STATUS_TASK_LINES tasks), merged or not, and
    files that belong to another study."""
    total = len(p["focus"]) if p["focus"] is not None else None
    head = f"study {layout.root}: "
    if total is not None:
        head += f"{p['done']} of {total} focus genes done ({100 * p['done'] / max(total, 1):.0f}%)"
    else:
        head += f"{p['done']} focus genes done"
    if p["tasks"]:
        head += f", {sum(s['shard_file'] for s in p['shards'])} of {p['tasks']} shards written"
    print(head)
    many = len(p["shards"]) > STATUS_TASK_LINES  # then only the tasks under way get a line each
    for s in p["shards"]:
        if s["shard_file"]:
            state = "done"
        elif s["done"]:
            state = f"{s['done']} done (running, or interrupted: a rerun resumes from parts/)"
        else:
            state = "not started"
        if not many or state not in ("done", "not started"):
            print(f"  task {s['task']:>4}/{p['tasks']}: {s['genes']:>5} genes  {state}")
    if many:
        n_written = sum(s["shard_file"] for s in p["shards"])
        n_idle = sum(not s["shard_file"] and not s["done"] for s in p["shards"])
        print(f"  {n_written} tasks done, {n_idle} tasks not started")
    print(f"merged: yes -> {layout.results}" if p["merged"] else "merged: no")
    for path, diff in p["foreign"]:
        print(f"not this study's: {path} ({diff}); remove it, the task that wrote it runs again")


def print_jobs(study: dict, merged: bool) -> None:
    """The last submission's jobs as qstat sees them; how to finish the study if none is alive."""
    last = study["submissions"][-1]
    try:
        live, why = qsub.qstat_jobs(), None
    except BootgpuError as exc:
        live, why = None, str(exc)
    for kind, label in (("array_job", "array"), ("merge_job", "merge")):
        jid = last.get(kind)
        if jid is None:
            continue
        if live is None:
            print(f"job {jid} ({label}): qstat not available ({why})")
        elif jid in live:
            print(f"job {jid} ({label}): {qsub.describe_states(live[jid])}")
        else:
            print(f"job {jid} ({label}): finished (qacct -j {jid} has its exit status)")
    alive = live is not None and any(last.get(k) in live for k in ("array_job", "merge_job"))
    if not merged and not alive and live is not None:
        print("no job of this study is queued or running; to finish it, submit again (only unfinished "
              "tasks run, then the merge):")
        print("  " + shlex.join(study.get("bootgpu_submit", ["bootgpu", "sge", "submit", "..."])))


# --- the command line --------------------------------------------------------------------------

def register_commands(subparsers) -> None:
    """Add ``sge submit`` and ``status`` to the CLI's subparsers."""
    sge = subparsers.add_parser("sge", help="run a study on a Grid Engine cluster (SGE/UGE/OGS)")
    sge_sub = sge.add_subparsers(dest="sge_command", required=True)
    sub = sge_sub.add_parser(
        "submit", help="submit a study as an array job over shards of focus genes, then a merge job",
        description="Submit a study as one Grid Engine array job (task K runs `bootgpu run --shard K/N`) and "
                    "a merge job that waits for it (-hold_jid).  Run it again with the same options to "
                    "resubmit what did not finish.",
    )  # fmt: skip
    add_options(sub, STUDY_OPTIONS)
    split = sub.add_mutually_exclusive_group()
    add_options(split, (TASKS, GENES_PER_TASK))
    add_options(sub, (*SITE_OPTIONS, *ANALYSIS_OPTIONS))
    sub.set_defaults(func=cmd_submit)

    status = subparsers.add_parser("status", help="progress of a study: focus genes done, per shard, merged or not")
    status.add_argument("dir")
    status.set_defaults(func=cmd_status)
