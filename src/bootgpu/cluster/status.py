"""`bootgpu status DIR`: what of a study is done (``bootgpu.cluster.progress``), and, for a study
submitted to a cluster, its last submission's jobs as the scheduler sees them (either scheduler),
each task's state, the tasks that failed with the last lines of their logs, and the command that
submits what is missing."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from bootgpu.cluster.jobfiles import JOB_KINDS
from bootgpu.cluster.progress import study_progress
from bootgpu.cluster.scheduler import JobState, Scheduler, describe, task_numbers
from bootgpu.errors import BootgpuError
from bootgpu.study.layout import StudyLayout

STATUS_TASK_LINES = 40  # `bootgpu status` lists every task up to this many, else a summary
LOG_TAIL_LINES = 8  # of a failed task's log, after its first line (where and when the task ran)


def scheduler_named(name: str) -> Scheduler:
    """The scheduler a submission record names ('sge', 'slurm')."""
    if name == "slurm":
        from bootgpu.slurm.scheduler import SLURM

        return SLURM
    from bootgpu.sge.scheduler import SGE

    return SGE


def cmd_status(args: argparse.Namespace) -> int:
    out = Path(args.dir).resolve()
    if not out.is_dir():
        raise BootgpuError(f"{out}: no such study directory")
    p = study_progress(out)
    if p["focus"] is None and not p["merged"] and not p["parts"]:
        raise BootgpuError(f"{out}: not a bootgpu study (no study.json, shards, parts or results.h5)")
    layout = StudyLayout(out)
    submitted = bool(p["study"] and p["study"].get("submissions"))
    scheduler = scheduler_named(p["scheduler"]) if submitted else None
    last = p["study"]["submissions"][-1] if submitted else {}
    live, why = _ask(scheduler, [last[k] for k, _ in JOB_KINDS if last.get(k)]) if scheduler else (None, None)
    states = _task_states(live, last.get("array_job"))
    print_progress(layout, p, states)
    if getattr(args, "verify", False) and _verify(layout):
        return 1
    if submitted:
        files = layout.cluster(p["scheduler"])
        print_failed(files.logs_dir, p, last, live)
        print_jobs(p["study"], p["merged"], scheduler, live, why)
        print(f"logs: {files.logs_dir}/")
    return 0


def _ask(scheduler: Scheduler, ids: list[int]) -> tuple[dict[int, list[JobState]] | None, str | None]:
    try:
        return scheduler.jobs(ids), None
    except BootgpuError as exc:
        return None, str(exc)


def _verify(layout: StudyLayout) -> bool:
    """`status --verify`: every chunk read; whether anything is damaged."""
    from bootgpu.cluster.progress import verify_study

    damaged = verify_study(layout)
    for path, problems in damaged:
        print(f"damaged: {path}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    print("verify: every chunk of every file read; " + (f"{len(damaged)} damaged: a rerun of the same command "
          "recomputes what they held" if damaged else "no damage found"))  # fmt: skip
    return bool(damaged)


def _task_states(live: dict[int, list[JobState]] | None, job: int | None) -> dict[int, JobState]:
    """Each array task's state, where the scheduler names it (task number -> its row)."""
    states: dict[int, JobState] = {}
    for row in (live or {}).get(job, []) if job else []:
        for task in task_numbers(row.tasks):
            states[task] = row
    return states


def print_progress(layout: StudyLayout, p: dict, states: dict[int, JobState] | None = None) -> None:
    """Focus genes done, per task (a summary beyond STATUS_TASK_LINES tasks) with the scheduler's
    state of each task where it has one, merged or not, and files that belong to another study."""
    states = states or {}
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
        row = states.get(s["task"])
        if not many or state not in ("done", "not started") or (row and row.alive):
            print(f"  task {s['task']:>4}/{p['tasks']}: {s['genes']:>5} genes  {state}"
                  + (f"  [{row.words}]" if row else ""))  # fmt: skip
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


def failed_tasks(logs_dir: Path, p: dict, last: dict, live: dict[int, list[JobState]] | None) -> list[tuple]:
    """The last submission's array tasks that ended without their result: (label, task, state words
    or None, log path or None).  A focus-gene task failed when the scheduler no longer runs it, it
    has a log and its shard is missing (or the scheduler says it failed); a null task when the
    scheduler says it failed."""
    if live is None:
        return []
    written = {s["task"] for s in p["shards"] if s["shard_file"]}
    out = []
    for key, label, range_key in (("array_job", "task", "tasks"), ("null_job", "null task", "null_tasks")):
        job = last.get(key)
        if not job:
            continue
        states = _task_states(live, job)
        for task in sorted(task_numbers(last.get(range_key) or "")):
            row = states.get(task)
            log = next(iter(sorted(logs_dir.glob(f"*.o{job}.{task}"))), None)
            if row is not None and row.alive:
                continue
            if (row is not None and row.failed) or (key == "array_job" and task not in written and log is not None):
                out.append((label, task, row.words if row else None, log))
    return out


def print_failed(logs_dir: Path, p: dict, last: dict, live: dict[int, list[JobState]] | None) -> None:
    """Each failed task of the last submission, with the last lines of its log."""
    for label, task, words, log in failed_tasks(logs_dir, p, last, live):
        print(f"failed: {label} {task} ({words or 'ended without its result'})" + (f"; last lines of {log}:" if log else ""))
        for line in log_excerpt(log.read_text(errors="replace").splitlines()) if log else []:
            print(f"    {line}")


def log_excerpt(lines: list[str]) -> list[str]:
    """A failed task's log as status shows it: the first line (the task's header: job, host, pid,
    start) and the last LOG_TAIL_LINES, with '...' where lines are left out; however many lines the
    task printed before it failed (progress, warnings, the scheduler's own), its header stays."""
    if len(lines) <= LOG_TAIL_LINES + 1:
        return lines
    tail = lines[-LOG_TAIL_LINES:]
    skipped = len(lines) - LOG_TAIL_LINES - 1
    return [lines[0], f"... ({skipped} line{'s' if skipped != 1 else ''})", *tail]


def print_jobs(study: dict, merged: bool, scheduler: Scheduler, live: dict[int, list[JobState]] | None,
               why: str | None) -> None:
    """The last submission's jobs as the scheduler sees them; how to finish the study if none can run."""
    last = study["submissions"][-1]
    for kind, label in JOB_KINDS:
        jid = last.get(kind)
        if jid is None:
            continue
        if live is None:
            print(f"job {jid} ({label}): {scheduler.query_tool} not available ({why})")
        elif jid in live:
            print(f"job {jid} ({label}): {describe(live[jid])}")
        else:
            print(f"job {jid} ({label}): finished ({scheduler.ended.format(job=jid)})")
    rows = [row for k, _ in JOB_KINDS for row in (live or {}).get(last.get(k), [])]
    blocked = any(row.blocked for row in rows)
    alive = any(row.alive and not row.blocked for row in rows)
    resubmit = "  " + shlex.join(study.get("bootgpu_submit", ["bootgpu", scheduler.name, "submit", "..."]))
    if not merged and not alive and live is not None:
        if blocked:
            print("the merge waits for a job that failed and can never run; submitting again cancels it, runs only "
                  "the unfinished tasks, then a new merge:")  # fmt: skip
        else:
            print("no job of this study is queued or running; to finish it, submit again (only unfinished "
                  "tasks run, then the merge):")  # fmt: skip
        print(resubmit)


def register_status(subparsers) -> None:
    """Add ``status`` to the CLI's subparsers."""
    status = subparsers.add_parser("status", help="progress of a study: focus genes done, per shard, merged or not, "
                                                 "null replicates done",
                                   description="Say what of the study in DIR is done: focus genes computed (per task of "
                                               "a cluster submission, with the scheduler's state of each), merged or "
                                               "not, null replicates, the runs working on it now, files that are not "
                                               "this study's, and the jobs of its last Grid Engine or Slurm submission "
                                               "(failed tasks with the end of their logs, and the command that submits "
                                               "what is missing).  Reads file names and identities only (--verify "
                                               "reads every chunk).",
                                   epilog="examples:\n  bootgpu status study/\n  bootgpu status study/ --verify   "
                                          "# also read every chunk (checksums); exit 1 on damage",
                                   formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    status.add_argument("dir", help="the study directory (--out of bootgpu run, bootgpu sge submit or bootgpu slurm "
                                    "submit)")  # fmt: skip
    status.add_argument("--verify", action="store_true",
                        help="also read every chunk of every result, shard, part and null file (their checksums) and "
                             "list what is damaged; exit 1 if anything is")  # fmt: skip
    status.set_defaults(func=cmd_status)
