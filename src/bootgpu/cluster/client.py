"""Every call to a scheduler's client command (qsub, qstat, sbatch, squeue, scontrol, scancel) goes
through ``call``: one place that runs it, with a timeout, and whose BootgpuError names the command,
its exit code and its output."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence

from bootgpu.errors import BootgpuError

SUBMIT_TIMEOUT_S = 120
QUERY_TIMEOUT_S = 60
OUTPUT_CHARS = 2000  # of a failed command's output, in its error message


def one_line(text: str) -> str:
    """``text`` on one line, cut at OUTPUT_CHARS."""
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
        output = one_line(f"{proc.stderr}\n{proc.stdout}") or "no output"
        raise BootgpuError(f"{cmd[0]} failed with exit code {proc.returncode}: {output} (command: {shown})")
    return proc.stdout
