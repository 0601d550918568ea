"""Locks on the scopes of a study directory, so that no two runs write the same files.

A run holds the lock of its scope while it computes and finishes: ``study`` (a run of the whole
study, ``merge``, ``--overwrite``), ``shard-KKKK-of-NNNN`` (``run --shard K/N``), ``null`` (the
permutation null, or gathering it) and ``null-A-B`` (``null --replicates A:B``).  Two scopes
conflict when they are the same, when either is the whole study, when shards come from different
splits (their focus genes overlap), and when one is the whole null and the other a part of it;
so the tasks of one Grid Engine or Slurm array run side by side, and nothing else runs beside a
whole-study run or an ``--overwrite``.  A run that finds a live conflicting lock stops before it
touches anything, naming the holder (host, pid, command, since when).

How, on a filesystem several hosts share (NFS): ``fcntl``/``flock`` locks are not reliable there,
so a lock is a file created with ``O_CREAT | O_EXCL`` (atomic on NFSv3 and later), holding the
holder's host, pid, process start time and command; its holder touches it every
``HEARTBEAT_SECONDS`` (a thread).  A lock is stale when its holder is gone: on the same host, its
pid is not running (or runs another process: the start time differs); on another host, the file
was not touched for ``STALE_SECONDS`` (10 min: a killed node cannot release it; clocks a few
minutes apart are tolerated).  A stale lock is taken over by renaming it away (one of two runs
racing for it wins the rename) and creating a fresh one.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import threading
import time
from pathlib import Path

from bootgpu.errors import BootgpuError

HELD: list = []  # the locks this process holds (the command line releases them whatever happens)
HEARTBEAT_SECONDS = 60.0
STALE_SECONDS = 600.0
LOCK_DIR = ".locks"


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, /proc) or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    now = _process_start(pid)
    return started is None or now is None or now == started


def scopes_conflict(a: str, b: str) -> bool:
    if a == b or "study" in (a, b):
        return True
    if a.startswith("shard-") and b.startswith("shard-"):
        return a.rsplit("-of-", 1)[1] != b.rsplit("-of-", 1)[1]  # another split: overlapping focus genes
    if "null" in (a, b):  # the whole null (or gathering it) and a range of its replicates
        other = b if a == "null" else a
        return other.startswith("null-")
    return False


def shard_scope(shard: tuple[int, int] | None) -> str:
    return "study" if shard is None else f"shard-{shard[0]:04d}-of-{shard[1]:04d}"


class ScopeLock:
    """The lock of one scope of the study in ``root``; a context manager (acquire, then release
    on any exit).  ``command`` says who holds it, for the message another run prints."""

    def __init__(self, root: Path, scope: str, command: str = ""):
        self.root, self.scope = Path(root), scope
        self.dir = self.root / LOCK_DIR
        self.path = self.dir / f"{scope}.lock"
        self.command = command or " ".join(["bootgpu", *sys.argv[1:]])[:300]
        self.record = {"host": socket.gethostname(), "pid": os.getpid(), "started": _process_start(os.getpid()),
                       "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": self.command,
                       "token": secrets.token_hex(8)}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.held = False

    # -- reading other locks ----------------------------------------------------------------------
    @staticmethod
    def read(path: Path) -> dict | None:
        try:
            record = json.loads(path.read_text())
            record["mtime"] = path.stat().st_mtime
            return record
        except (OSError, ValueError):
            return None

    @staticmethod
    def stale(record: dict | None) -> bool:
        if record is None:  # being written, or unreadable: judged by its age
            return False
        if record.get("host") == socket.gethostname():
            return not process_alive(int(record.get("pid", -1)), record.get("started"))
        return time.time() - record.get("mtime", time.time()) > STALE_SECONDS

    def _holder_error(self, path: Path, record: dict | None) -> BootgpuError:
        if record is None:
            return BootgpuError(f"{self.root} is locked ({path} is being written or unreadable); try again, or "
                                f"remove it if no bootgpu runs on this study")
        ago = max(0, int(time.time() - record.get("mtime", time.time())))
        scope = path.name.removesuffix(".lock")
        what = "the whole study" if scope == "study" else scope
        return BootgpuError(
            f"{self.root}: {what} is in use by `{record.get('command', 'bootgpu')}` on {record.get('host')} "
            f"(pid {record.get('pid')}, since {record.get('since')}, alive {ago} s ago); wait for it to end "
            f"(a lock on another host is taken over {int(STALE_SECONDS // 60)} min after its holder stops)")

    # -- taking and giving back -------------------------------------------------------------------
    def acquire(self) -> "ScopeLock":
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BootgpuError(f"cannot write to {self.root}: {exc.strerror or exc}; give an --out you can write to") from None
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                record = self.read(self.path)
                if not self.stale(record):
                    raise self._holder_error(self.path, record) from None
                self._take_over(self.path)
                continue
            except OSError as exc:
                raise BootgpuError(f"cannot write to {self.root}: {exc.strerror or exc}; give an --out you can write "
                                   f"to") from None
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(self.record) + "\n")
            self.held = True
            HELD.append(self)
            break
        else:
            raise BootgpuError(f"{self.path}: could not take the lock (other runs keep taking it)")
        try:
            for other in sorted(self.dir.glob("*.lock")):
                scope = other.name.removesuffix(".lock")
                if other == self.path or not scopes_conflict(self.scope, scope):
                    continue
                record = self.read(other)
                if self.stale(record):
                    self._take_over(other)
                elif other.exists():
                    raise self._holder_error(other, record)
        except BaseException:
            self.release()
            raise
        self._thread = threading.Thread(target=self._beat, name="bootgpu-lock", daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _take_over(path: Path) -> None:
        """Move a stale lock out of the way; of several runs doing so, one renames it, the others
        find it gone."""
        aside = path.with_name(f"{path.name}.stale-{secrets.token_hex(4)}")
        try:
            os.rename(path, aside)
            aside.unlink(missing_ok=True)
        except FileNotFoundError:
            pass

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                os.utime(self.path)
            except OSError:
                pass

    def release(self) -> None:
        self._stop.set()
        if not self.held:
            return
        self.held = False
        if self in HELD:
            HELD.remove(self)
        record = self.read(self.path)
        if record is not None and record.get("token") == self.record["token"]:  # still ours
            self.path.unlink(missing_ok=True)
        try:
            self.dir.rmdir()  # the last lock out removes the folder
        except OSError:
            pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def release_all() -> None:
    """Give back every lock this process holds (the command line's last act, whatever happened)."""
    for lock in list(HELD):
        lock.release()
