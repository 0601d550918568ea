"""Every call to a Grid Engine client command (qsub, qstat) goes through ``call``: one place that
runs it, with a timeout, and whose BootgpuError names the command, its exit code and its output."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Sequence

from bootgpu.errors import BootgpuError

QSUB_TIMEOUT_S = 120
QSTAT_TIMEOUT_S = 60
OUTPUT_CHARS = 2000  # of a failed command's output, in its error message


def _one_line(text: str) -> str:
    words = " ".join(text.split())
    return words if len(words) <= OUTPUT_CHARS else words[:OUTPUT_CHARS] + " ..."


def call(cmd: Sequence[str], timeout: float) -> str:
    """Run ``cmd``; its standard output.  Raises BootgpuError, on one line, when it cannot be run,
    does not finish within ``timeout`` seconds or exits non-zero: the command, the exit code and
    what it printed (stderr, then stdout)."""
    shown = shlex.join(cmd)
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise BootgpuError(f"{cmd[0]} not found on PATH (command: {shown})") from None
    except subprocess.TimeoutExpired:
        raise BootgpuError(f"{cmd[0]} did not answer within {timeout:g} s (command: {shown})") from None
    except OSError as exc:
        raise BootgpuError(f"{cmd[0]} could not be run: {exc.strerror or exc} (command: {shown})") from None
    if proc.returncode != 0:
        output = _one_line(f"{proc.stderr}\n{proc.stdout}") or "no output"
        raise BootgpuError(f"{cmd[0]} failed with exit code {proc.returncode}: {output} (command: {shown})")
    return proc.stdout


def submit(cmd: Sequence[str]) -> int:
    """Submit with ``qsub -terse ...`` and return the job id it prints ('4711', or '4711.1-3:1' for
    an array job)."""
    out = call(cmd, QSUB_TIMEOUT_S)
    match = re.match(r"\s*(\d+)", out)
    if not match:
        raise BootgpuError(f"{cmd[0]} printed no job id: {_one_line(out) or 'no output'} (command: {shlex.join(cmd)})")
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


def describe_states(entries: list[tuple[str, str]]) -> str:
    """'running tasks 1,2; pending tasks 3' from qstat's (state, tasks) rows of one job."""
    grouped: dict[str, list[str]] = {}
    for state, tasks in entries:
        grouped.setdefault(state, []).append(tasks)
    parts = []
    for state, tasks in grouped.items():
        word = STATE_WORDS.get(state, f"state {state}")
        listed = ",".join(t for t in tasks if t)
        parts.append(f"{word} tasks {listed}" if listed else word)
    return "; ".join(parts)
