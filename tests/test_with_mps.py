"""scripts/with_mps.py (a private CUDA MPS daemon around a command, for scripts/gpu-check), against
a stand-in control program (tests/mps_standin.py): the command sees the daemon's folders, its
status comes back, the daemon is stopped after it, and an MPS that cannot start is reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "with_mps.py"
STANDIN = Path(__file__).resolve().parent / "mps_standin.py"

# the stand-in CUDA process: connects as a client, writes what it saw, exits with status 7
CLIENT = """
import os, socket, sys
with socket.socket(socket.AF_UNIX) as s:
    s.connect(os.path.join(os.environ["CUDA_MPS_PIPE_DIRECTORY"], "control.sock"))
    s.sendall(b"client\\n")
    s.makefile().readline()
open(sys.argv[1], "w").write(os.environ["CUDA_MPS_PIPE_DIRECTORY"])
sys.exit(7)
"""


def run(tmp_path, *args, env_extra=None):
    env = {"PATH": "/usr/bin:/bin", "BOOTGPU_MPS_CONTROL": str(STANDIN), "TMPDIR": str(tmp_path), **(env_extra or {})}
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc, rows


def test_command_runs_under_the_daemon_and_the_daemon_stops(tmp_path):
    seen = tmp_path / "seen"
    proc, rows = run(tmp_path, "--label", "ALL, MPS", "--logs", str(tmp_path / "logs"), "--",
                     sys.executable, "-c", CLIENT, str(seen))
    assert proc.returncode == 7, proc.stderr  # the command's own status
    assert rows == [{"label": "ALL, MPS", "mps": "on", "servers": "4242", "stopped": True, "clients": 1, "rc": 7}]
    pipe = Path(seen.read_text())
    assert pipe.parent.name.startswith("bootgpu-mps-") and not pipe.exists()  # private folder, removed after
    assert "NEW CLIENT 1" in (tmp_path / "logs" / "control.log").read_text()
    assert not list(tmp_path.glob("bootgpu-mps-*"))


def test_a_command_that_never_uses_the_daemon_shows_no_client(tmp_path):
    proc, rows = run(tmp_path, "--", sys.executable, "-c", "pass")
    assert proc.returncode == 0
    assert rows[0]["mps"] == "on" and rows[0]["clients"] == 0 and rows[0]["servers"] == "" and rows[0]["stopped"]


@pytest.mark.parametrize("case", ["missing", "refused"])
def test_unavailable_mps_is_reported_and_the_command_not_run(tmp_path, case):
    marker = tmp_path / "ran"
    extra = {"BOOTGPU_MPS_CONTROL": str(tmp_path / "no-such-program")} if case == "missing" else {"STANDIN_REFUSE": "1"}
    proc, rows = run(tmp_path, "--label", "x", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')",
                     env_extra=extra)
    assert proc.returncode == 3
    assert rows[0]["label"] == "x" and rows[0]["mps"].startswith("unavailable: ")
    assert ("not found" in rows[0]["mps"]) if case == "missing" else ("already running" in rows[0]["mps"])
    assert not marker.exists()
    assert not list(tmp_path.glob("bootgpu-mps-*"))
    proc, rows = run(tmp_path, "--unavailable-ok", "--", sys.executable, "-c", "pass", env_extra=extra)
    assert proc.returncode == 0 and rows[0]["mps"].startswith("unavailable: ")  # a check goes on without MPS


def test_a_stopped_run_stops_its_daemon(tmp_path):
    """SIGTERM to the process group (gpu-check's time limit) ends the command and the daemon too."""
    env = {"PATH": "/usr/bin:/bin", "BOOTGPU_MPS_CONTROL": str(STANDIN), "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--", sys.executable, "-c", "import time; time.sleep(60)"],
                            env=env, start_new_session=True, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("bootgpu-mps-*/pipe/control.sock")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob("bootgpu-mps-*/pipe/control.sock")), "the daemon did not start"
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143
    row = json.loads(out.splitlines()[-1])
    assert row["stopped"] is True
    assert not list(tmp_path.glob("bootgpu-mps-*"))  # the daemon quit and its folder is gone
