"""Slurm's client commands (sbatch, squeue, scancel), each run through
``bootgpu.cluster.client.call``, and squeue's answer as ``JobState`` rows.  squeue ``-t all`` also
lists jobs that ended (for MinJobAge, 300 s by default), so a failed or cancelled task is seen;
sacct is asked only about jobs squeue has forgotten, and only where it works (it fails where the
site keeps no accounting)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from bootgpu.cluster.client import QUERY_TIMEOUT_S, SUBMIT_TIMEOUT_S, call, one_line
from bootgpu.cluster.scheduler import JobState
from bootgpu.errors import BootgpuError

ALIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
         "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED"}  # fmt: skip
FAILED = {"FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}
NEVER = "DependencyNeverSatisfied"  # a pending job's reason when a job it depends on (afterok) failed
SQUEUE_FORMAT = "%F|%K|%T|%r"  # array job id (the job id of a plain job), task (N/A), state, reason


def submit(cmd: Sequence[str]) -> int:
    """Submit with ``sbatch --parsable ...`` and return the job id it prints ('4711' or '4711;cluster')."""
    out = call(cmd, SUBMIT_TIMEOUT_S)
    match = re.match(r"\s*(\d+)", out)
    if not match:
        raise BootgpuError(f"{cmd[0]} printed no job id: {one_line(out) or 'no output'} (command: {shlex.join(cmd)})")
    return int(match[1])


def state_words(state: str, reason: str) -> str:
    """A row's state for people: 'running', 'pending (Dependency)', 'failed (NonZeroExitCode)'."""
    if state == "PENDING" and reason == NEVER:
        return f"pending forever ({NEVER}: a job it waits for failed)"
    words = state.lower().replace("_", " ")
    return f"{words} ({reason})" if reason and reason != "None" else words


def parse_squeue(text: str) -> dict[int, list[JobState]]:
    """The rows of ``squeue -h -t all -o '%F|%K|%T|%r'``: array job id -> its rows (one per task
    that started, one for the tasks still pending together: '[3-5]' or '3-5%2')."""
    jobs: dict[int, list[JobState]] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 4 or not fields[0].isdigit():
            continue
        job, task, state, reason = fields
        state = state.split()[0] if state else state  # 'CANCELLED by 0'
        row = JobState("" if task == "N/A" else task, state_words(state, reason), state in ALIVE,
                       blocked=state == "PENDING" and reason == NEVER, failed=state in FAILED)  # fmt: skip
        jobs.setdefault(int(job), []).append(row)
    return jobs


def job_states(ids: Sequence[int] = ()) -> dict[int, list[JobState]]:
    """Every job squeue knows, ended ones included (``-t all``); those of ``ids`` it no longer lists
    (ended longer ago than the cluster's MinJobAge) from sacct, where the site keeps accounting
    (sacct fails without: then they are left out).  Raises BootgpuError where squeue is missing or
    fails."""
    jobs = parse_squeue(call(["squeue", "-h", "-t", "all", "-o", SQUEUE_FORMAT], QUERY_TIMEOUT_S))
    gone = [j for j in ids if j not in jobs]
    if gone:
        try:
            text = call(["sacct", "-n", "-P", "-X", "-o", "JobID,State,Reason", "-j", ",".join(map(str, gone))],
                        QUERY_TIMEOUT_S)  # fmt: skip
        except BootgpuError:  # no accounting (slurmdbd) on this cluster
            return jobs
        jobs |= {j: rows for j, rows in parse_sacct(text).items() if j in gone}
    return jobs


def parse_sacct(text: str) -> dict[int, list[JobState]]:
    """The rows of ``sacct -n -P -X -o JobID,State,Reason``: '4711_2|FAILED|None', '4712|COMPLETED|None'."""
    lines = []
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) == 3 and re.fullmatch(r"\d+(_(\d+|\[[^]]*\]))?", fields[0]):
            job, _, task = fields[0].partition("_")
            lines.append("|".join((job, task or "N/A", fields[1], fields[2])))
    return parse_squeue("\n".join(lines))


def cancel(ids: Sequence[int]) -> None:
    """scancel the jobs ``ids``."""
    call(["scancel", *map(str, ids)], QUERY_TIMEOUT_S)
