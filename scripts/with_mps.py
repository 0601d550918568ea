#!/usr/bin/env python3
"""Run a command with a private CUDA MPS control daemon, so that the CUDA processes it starts share
one GPU context (their kernels run side by side) instead of taking turns on the device.

    python3 scripts/with_mps.py --label 'ALL, 8 processes, MPS' -- python3 scripts/study_throughput.py ...

Why: several bootgpu processes sharing a GPU (``--processes N`` on CuPy) each hold a CUDA context
of their own, and without MPS the device runs one context at a time (measured on an H200: ALL 0.33
-> 0.20 s a focus gene with 8 processes, but 8,763 x 938 0.09 -> 0.18 s).  This script measures
what MPS changes; it does not need root: the daemon runs as the caller, with its pipe and log
folders in a temporary folder of its own (``CUDA_MPS_PIPE_DIRECTORY``, ``CUDA_MPS_LOG_DIRECTORY``,
which the command inherits), and is stopped (``quit``) when the command ends.

Prints one JSON line: the label, whether MPS ran (``mps``: "unavailable: why" when the daemon could
not start; the command then does not run) and how many clients the daemon's log shows connecting
(0: the command did not use it).  Exits with the command's status, or 3 when MPS is unavailable
(0 with ``--unavailable-ok``: a check that measures MPS where it can).
``--logs DIR`` keeps the daemon's logs.  ``BOOTGPU_MPS_CONTROL`` names the control program
(default ``nvidia-cuda-mps-control``; the tests give a stand-in).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNAVAILABLE = 3


def _control(env: dict, text: str, control: str) -> tuple[int, str]:
    """One command to the running daemon (the control program's stdin): its status and reply (not
    0 where no daemon answers on the pipe folder)."""
    try:
        proc = subprocess.run([control], input=text + "\n", capture_output=True, text=True, env=env, timeout=30)
    except subprocess.TimeoutExpired:
        return 124, ""
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _clients(log_dir: Path) -> int:
    """Client connections the daemon logged (control.log: one 'NEW CLIENT' line each)."""
    log = log_dir / "control.log"
    if not log.exists():
        return 0
    return len(re.findall(r"new client", log.read_text(errors="replace"), re.I))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="")
    ap.add_argument("--logs", help="copy the daemon's logs here")
    ap.add_argument("--unavailable-ok", action="store_true", help="exit 0 when MPS cannot start")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the command (after --)")
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command given")
    control = os.environ.get("BOOTGPU_MPS_CONTROL", "nvidia-cuda-mps-control")
    row: dict = {"label": args.label, "mps": "unavailable"}

    def report() -> None:
        print(json.dumps(row), flush=True)

    if shutil.which(control) is None:
        row["mps"] = f"unavailable: {control} not found"
        report()
        return 0 if args.unavailable_ok else UNAVAILABLE
    # stopped (a check's time limit: SIGTERM to the process group), the daemon, which leaves the
    # group, is stopped all the same, and the folder removed
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    work = Path(tempfile.mkdtemp(prefix="bootgpu-mps-"))
    pipe, logs = work / "pipe", work / "log"
    env = dict(os.environ, CUDA_MPS_PIPE_DIRECTORY=str(pipe), CUDA_MPS_LOG_DIRECTORY=str(logs))
    rc, started = 1, None  # 1: the command never finished (stopped, or it could not start)
    try:
        pipe.mkdir()
        logs.mkdir()
        started = subprocess.run([control, "-d"], env=env, capture_output=True, text=True, timeout=30)
        if not (started.returncode == 0 and _wait(lambda: _control(env, "get_server_list", control)[0] == 0, 10)):
            why = (started.stderr or started.stdout).strip().splitlines()[-1:] or [f"rc {started.returncode}, no answer"]
            row["mps"] = f"unavailable: {control} -d: {why[0]}"
            return 0 if args.unavailable_ok else UNAVAILABLE
        row["mps"] = "on"
        rc = subprocess.run(command, env=env).returncode
        row["servers"] = _control(env, "get_server_list", control)[1]
    finally:
        if started is not None and started.returncode == 0:
            _control(env, "quit", control)
            row["stopped"] = _wait(lambda: _control(env, "get_server_list", control)[0] != 0, 20)
            row["clients"] = _clients(logs)
            row["rc"] = rc
            if args.logs and logs.exists():
                shutil.copytree(logs, args.logs, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)
        report()
    return rc


if __name__ == "__main__":
    sys.exit(main())
