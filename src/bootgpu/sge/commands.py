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
from bootgpu.study.identity import StudyIdentity
from bootgpu.study.layout import StudyLayout, check_out_dir
from bootgpu.options import ANALYSIS_OPTIONS, add_options, input_options, log, option, options_argv, read_input
from bootgpu.planner import format_bytes
from bootgpu.sge import qsub
from bootgpu.sge.jobfiles import read_submissions, scripts_dir, write_job_files, write_submissions
from bootgpu.sge.progress import study_progress
from bootgpu.sge.submission import (DEFAULT_BUDGET, DEFAULT_GENES_PER_TASK, DEFAULT_MERGE_VMEM, DEFAULT_PE,
                                    DEFAULT_RUNTIME, StudyInput, Submission, check_options, check_path,
                                    request_for, split_null, split_tasks)  # fmt: skip
from bootgpu.study.directory import FOCUS_HELP, claim_study, other_study_error, parse_focus, recorded_identity

NULL_RECORD_KEYS = ("permutations", "replicates_per_task", "null_tasks", "null_id")  # of DIR/sge/study.json
STATUS_TASK_LINES = 40  # `bootgpu status` lists every task up to this many, else a summary

# The options of `sge submit` besides the input and analysis ones, in the order of its help.  Each is
# also written into the command that submits the study again (study.json, `bootgpu status`), unless
# marked resubmit=False.
TASKS = option("--tasks", type=int, help="array tasks (shards) N")
GENES_PER_TASK = option("--genes-per-task", type=int, resubmit=False,
                        help=f"focus genes per task (default {DEFAULT_GENES_PER_TASK})")  # fmt: skip
NULL_OPTIONS = (
    option("--permutations", type=int, metavar="N",
           help="also the permutation null (bootgpu null; docs/null.md): an array job over N null replicates, "
                "gathered by the merge job into null.h5 with each focus gene's p and q"),
    option("--replicates-per-task", type=int, metavar="R",
           help="null replicates per task (default: as many as a focus-gene task's genes, at most N)"),
)  # fmt: skip
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
SUBMIT_OPTIONS = (*STUDY_OPTIONS, TASKS, GENES_PER_TASK, *NULL_OPTIONS, *SITE_OPTIONS, *ANALYSIS_OPTIONS)  # parser order


# --- bootgpu sge submit ------------------------------------------------------------------------

def cmd_submit(args: argparse.Namespace) -> int:
    check_options(args)
    study = read_study_input(args)
    tasks = split_tasks(args, len(study.focus))
    split_null(args, len(study.focus), tasks)  # refuses bad --permutations / --replicates-per-task before any write
    request = request_for(args, study)
    source = scripts_dir(args.scripts_dir)
    layout = StudyLayout(study.out)
    old = check_resubmission(args, layout, study, tasks)
    if claim_study(layout, study.identity, list(study.focus), overwrite=args.overwrite, log=print):
        old = None  # --overwrite discarded the study, its submissions with it
    done, null_record = null_done(layout, study) if args.permutations else ((), {})
    sub = Submission.build(args, study, tasks, request, layout.shards(), python=sys.executable,
                           path=os.environ.get("PATH", "/usr/bin:/bin"), replicates_done=done)  # fmt: skip
    if layout.results.is_file() and not sub.todo and (sub.null is None or null_complete(layout, sub)):
        raise BootgpuError(f"{study.out}: the study is complete and merged (results.h5"
                           + (", null.h5, gene_significance.tsv" if sub.null else "") + "); nothing to submit")
    now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    written = write_job_files(sub, source, now)
    print_plan(args, sub, written)
    earlier = {k: v for k, v in (old or {}).items() if k not in NULL_RECORD_KEYS}  # this submission's null, or none
    record = {**earlier, **sub.record(), **null_record, "bootgpu_submit": submit_command(args, sub)}
    record.setdefault("submissions", [])
    if args.dry_run:
        write_submissions(layout, record)
        print("dry run: nothing submitted")
        return 0
    ids = submit_jobs(sub, record, now)
    print_submitted(sub, ids)
    return 0


def null_done(layout: StudyLayout, study: StudyInput) -> tuple[set[int], dict]:
    """The null replicates on disk, as the null tasks would find them: files in DIR/null/ (by name;
    the task checks each file's identity) and those DIR/null.h5 holds (checked here); and what
    DIR/sge/study.json records of the null (its ``null_id``, which `bootgpu status` checks files
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
        ids = [j for s in old.get("submissions", []) for j in (s.get(k) for k, _ in JOB_KINDS) if j]
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
               "scripts_dir": Path(args.scripts_dir).resolve() if args.scripts_dir else None,
               "replicates_per_task": sub.null.per_task if sub.null else None}  # fmt: skip
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
        line += f"; tasks {null.array_range} to run ({null.permutations - todo} replicates already done)"
    print(line)


JOB_KINDS = (("array_job", "array"), ("null_job", "null"), ("merge_job", "merge"))  # keys of a submission entry


def submit_jobs(sub: Submission, record: dict, now: str) -> dict[str, int | None]:
    """qsub the array (if any task is left), the null array (likewise) and the merge; record their
    ids in DIR/sge/study.json, as far as they were accepted.  The ids by JOB_KINDS key."""
    if shutil.which("qsub") is None:
        raise BootgpuError("qsub not found on PATH: is this a Grid Engine submit host? (--dry-run writes the scripts only)")
    entry = {"time": now, "tasks": sub.array_range, "commands": [shlex.join(c) for c in sub.commands()]}
    if sub.null is not None:
        entry["null_tasks"] = sub.null.array_range
    jobs = {"array_job": sub.task_job if sub.todo else None,
            "null_job": sub.null_job if sub.null is not None and sub.null.todo else None, "merge_job": sub.merge_job}
    ids: dict[str, int | None] = {}
    try:
        for key, job in jobs.items():
            ids[key] = entry[key] = qsub.submit(job.command()) if job is not None else None
    except BootgpuError as exc:
        accepted = ", ".join(f"{label} job {ids[k]}" for k, label in JOB_KINDS if ids.get(k))
        if not accepted:
            raise
        record["submissions"].append(entry)
        write_submissions(sub.layout, record)
        failed = next(label for k, label in JOB_KINDS if k not in ids)
        raise BootgpuError(f"{accepted} submitted, but the {failed} job failed: {exc}") from None
    record["submissions"].append(entry)
    write_submissions(sub.layout, record)
    return ids


def print_submitted(sub: Submission, ids: dict[str, int | None]) -> None:
    array_id, null_id, merge_id = ids["array_job"], ids["null_job"], ids["merge_job"]
    arrays = ([f"array job {array_id} (tasks {sub.array_range})"] if array_id else []) + \
             ([f"null array job {null_id} (tasks {sub.null.array_range})"] if null_id else [])  # fmt: skip
    if arrays:
        after = " and ".join(str(i) for i in (array_id, null_id) if i)
        print(f"submitted {' and '.join(arrays)} and merge job {merge_id} (runs after {after})")
    else:
        print(f"submitted merge job {merge_id}")
    layout = sub.layout
    print(f"watch:   qstat -u {shlex.quote(getpass.getuser())}   or   bootgpu status {layout.root}")
    print(f"logs:    {layout.logs_dir}/")
    null = f", {layout.null_results} and {layout.significance}" if sub.null is not None else ""
    print(f"results: {layout.results}{null} and {layout.hubs} once job {merge_id} has run")


# --- bootgpu status ----------------------------------------------------------------------------

def cmd_status(args: argparse.Namespace) -> int:
    out = Path(args.dir).resolve()
    if not out.is_dir():
        raise BootgpuError(f"{out}: no such study directory")
    p = study_progress(out)
    if p["focus"] is None and not p["merged"] and not p["parts"]:
        raise BootgpuError(f"{out}: not a bootgpu study (no study.json, shards, parts or results.h5)")
    print_progress(StudyLayout(out), p)
    if getattr(args, "verify", False):
        from bootgpu.sge.progress import verify_study

        damaged = verify_study(StudyLayout(out))
        for path, problems in damaged:
            print(f"damaged: {path}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        print("verify: every chunk of every file read; " + (f"{len(damaged)} damaged: a rerun of the same command "
              "recomputes what they held" if damaged else "no damage found"))
        if damaged:
            return 1
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
    if p["merged"]:
        print(f"merged: yes -> {layout.results}")
    elif p.get("unfinished"):
        print(f"merged: not finished ({p['unfinished']}); rerun the same command (or bootgpu merge) to finish it")
    else:
        print("merged: no")
    for run in p.get("running", []):
        scope = "the whole study" if run["scope"] == "study" else run["scope"]
        print(f"running: {scope}: `{run.get('command')}` on {run.get('host')} (pid {run.get('pid')}, since {run.get('since')})")
    if p["null"] is not None:
        print_null_progress(layout, p["null"])
    for path, diff in p["foreign"]:
        print(f"not this study's: {path} ({diff}); remove it, the task that wrote it runs again")


def print_null_progress(layout: StudyLayout, null: dict) -> None:
    """Null replicates done of the N submitted (or found), gathered or not, p and q written or not."""
    total, done = null["total"], null["done"]
    if total:
        line = f"null: {done} of {total} replicates done ({100 * done / total:.0f}%)"
    else:
        line = f"null: {done} replicates done"
    if null["gathered"]:
        line += f"; {null['gathered']} gathered in {layout.null_results}"
    print(line + (f"; p and q in {layout.significance}" if null["significance"] else ""))
    for path, diff in null["foreign"]:
        print(f"not this study's null: {path} ({diff}); remove it, the task that wrote it runs again")


def print_jobs(study: dict, merged: bool) -> None:
    """The last submission's jobs as qstat sees them; how to finish the study if none is alive."""
    last = study["submissions"][-1]
    try:
        live, why = qsub.qstat_jobs(), None
    except BootgpuError as exc:
        live, why = None, str(exc)
    for kind, label in JOB_KINDS:
        jid = last.get(kind)
        if jid is None:
            continue
        if live is None:
            print(f"job {jid} ({label}): qstat not available ({why})")
        elif jid in live:
            print(f"job {jid} ({label}): {qsub.describe_states(live[jid])}")
        else:
            print(f"job {jid} ({label}): finished (qacct -j {jid} has its exit status)")
    alive = live is not None and any(last.get(k) in live for k, _ in JOB_KINDS)
    if not merged and not alive and live is not None:
        print("no job of this study is queued or running; to finish it, submit again (only unfinished "
              "tasks run, then the merge):")
        print("  " + shlex.join(study.get("bootgpu_submit", ["bootgpu", "sge", "submit", "..."])))


# --- the command line --------------------------------------------------------------------------

def register_commands(subparsers) -> None:
    """Add ``sge submit`` and ``status`` to the CLI's subparsers."""
    sge = subparsers.add_parser("sge", help="run a study on a Grid Engine cluster (SGE/UGE/OGS)",
                                epilog="example:\n  bootgpu sge submit --expr /shared/expr.tsv.gz --out /shared/study "
                                       "--queue-type cpu --tasks 100",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sge_sub = sge.add_subparsers(dest="sge_command", required=True)
    sub = sge_sub.add_parser(
        "submit", help="submit a study as an array job over shards of focus genes, then a merge job",
        description="Submit a study as one Grid Engine array job (task K runs `bootgpu run --shard K/N`) and "
                    "a merge job that waits for it (-hold_jid); with --permutations N also an array job over "
                    "the null replicates (`bootgpu null --replicates A:B`), which the merge gathers.  Run it "
                    "again with the same options to resubmit what did not finish.",
        epilog="examples:\n"
               "  bootgpu sge submit --expr /shared/expr.tsv.gz --out /shared/study --queue-type cpu --tasks 100\n"
               "  bootgpu sge submit --expr /shared/expr.h5 --out /shared/study --queue-type gpu --tasks 8 "
               "--permutations 200\n"
               "  bootgpu sge submit ... --dry-run       # print the job scripts and qsub commands, submit nothing",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_options(sub, STUDY_OPTIONS)
    split = sub.add_mutually_exclusive_group()
    add_options(split, (TASKS, GENES_PER_TASK))
    add_options(sub, (*NULL_OPTIONS, *SITE_OPTIONS, *ANALYSIS_OPTIONS))
    sub.set_defaults(func=cmd_submit)

    status = subparsers.add_parser("status", help="progress of a study: focus genes done, per shard, merged or not, "
                                                 "null replicates done",
                                   description="Say what of the study in DIR is done: focus genes computed (per task of "
                                               "a cluster submission), merged or not, null replicates, the runs working on "
                                               "it now, files that are not this study's, and the jobs of its last "
                                               "submission.  Reads file names and identities only (--verify reads every "
                                               "chunk).",
                                   epilog="examples:\n  bootgpu status study/\n  bootgpu status study/ --verify   "
                                          "# also read every chunk (checksums); exit 1 on damage",
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    status.add_argument("dir", help="the study directory (--out of bootgpu run or bootgpu sge submit)")
    status.add_argument("--verify", action="store_true",
                        help="also read every chunk of every result, shard, part and null file (their checksums) and "
                             "list what is damaged; exit 1 if anything is")
    status.set_defaults(func=cmd_status)
