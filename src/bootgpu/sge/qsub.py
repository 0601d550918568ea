"""Grid Engine's client commands (qsub, qstat, qdel), each run through ``bootgpu.cluster.client.call``
(one place, with a timeout, whose BootgpuError names the command, its exit code and its output),
and qstat's answer as ``JobState`` rows."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from bootgpu.cluster.client import QUERY_TIMEOUT_S, SUBMIT_TIMEOUT_S, call, one_line
from bootgpu.cluster.scheduler import JobState, describe
from bootgpu.errors import BootgpuError

QSUB_TIMEOUT_S = SUBMIT_TIMEOUT_S
QSTAT_TIMEOUT_S = QUERY_TIMEOUT_S


def submit(cmd: Sequence[str]) -> int:
    """Submit with ``qsub -terse ...`` and return the job id it prints ('4711', or '4711.1-3:1' for
    an array job)."""
    out = call(cmd, QSUB_TIMEOUT_S)
    match = re.match(r"\s*(\d+)", out)
    if not match:
        raise BootgpuError(f"{cmd[0]} printed no job id: {one_line(out) or 'no output'} (command: {shlex.join(cmd)})")
    return int(match[1])


def qstat_jobs() -> dict[int, list[tuple[str, str]]]:
    """Live jobs of all users: job id -> [(state, tasks or '')].  Raises BootgpuError where qstat
    is missing or fails."""
    return parse_qstat(call(["qstat", "-u", "*"], QSTAT_TIMEOUT_S))


def parse_qstat(text: str) -> dict[int, list[tuple[str, str]]]:
    """The job rows of plain ``qstat`` output (a running task has a queue column, a pending one not)."""
    jobs: dict[int, list[tuple[str, str]]] = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 8 or not f[0].isdigit():
            continue
        task_col = 9 if "@" in f[7] else 8
        jobs.setdefault(int(f[0]), []).append((f[4], f[task_col] if len(f) > task_col else ""))
    return jobs


STATE_WORDS = {"r": "running", "t": "starting", "qw": "pending", "hqw": "waiting for its hold",
               "Eqw": "in error (qstat -j shows why; qmod -cj clears it)", "dr": "being deleted"}  # fmt: skip


def job_states(ids: Sequence[int] = ()) -> dict[int, list[JobState]]:
    """qstat's jobs (all of them; ``ids`` is not needed) as ``JobState`` rows: every job qstat lists
    may still run (finished jobs are in qacct, not qstat)."""
    return {job: [JobState(tasks, STATE_WORDS.get(state, f"state {state}"), True) for state, tasks in rows]
            for job, rows in qstat_jobs().items()}  # fmt: skip


def describe_states(entries: list[tuple[str, str]]) -> str:
    """'running tasks 1,2; pending tasks 3' from qstat's (state, tasks) rows of one job."""
    return describe([JobState(tasks, STATE_WORDS.get(state, f"state {state}"), True) for state, tasks in entries])


def cancel(ids: Sequence[int]) -> None:
    """qdel the jobs ``ids``."""
    call(["qdel", *map(str, ids)], QSTAT_TIMEOUT_S)
