"""The progress a run reports while it computes focus genes.

On a terminal, a tqdm bar (done / total, rate, ETA).  Anywhere else -- a Grid Engine or Slurm job
log, a file, a pipe -- a plain line at a steady interval and one at the end:

    progress: 120 of 8,763 focus genes (1.4%), 2.10 genes/s, about 1 h 08 min left

so a job log says how far a study is and when it will end.  ``BOOTGPU_PROGRESS_SECONDS`` sets the
interval (default 60 s).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, TextIO

DEFAULT_INTERVAL = 60.0
RUNNING: dict = {}  # the run in progress in this process: unit, done, total, where (what an interrupt reports)


def progress_interval() -> float:
    """Seconds between progress lines (``BOOTGPU_PROGRESS_SECONDS``, default 60)."""
    text = os.environ.get("BOOTGPU_PROGRESS_SECONDS", "").strip()
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value > 0 else DEFAULT_INTERVAL


def format_duration(seconds: float) -> str:
    """'45 s', '12 min', '1 h 08 min', '2 d 03 h'."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.0f} min"
    hours, minutes = divmod(int(round(minutes)), 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def note_run(unit: str, done: int, total: int, where) -> None:
    """Record the run this process is making (``done`` of ``total`` saved in ``where`` so far), for
    the line an interrupted command prints."""
    RUNNING.clear()
    RUNNING.update(unit=unit, done=int(done), total=int(total), where=str(where))


class Progress:
    """Focus genes done out of ``total``: ``update(n)`` as they finish, ``close()`` at the end (or
    use it as a context manager).  ``stream`` is where it goes (stderr); ``clock`` is for tests."""

    def __init__(self, total: int, stream: TextIO | None = None, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic, terminal: bool | None = None, unit: str = "focus gene"):
        self.total, self.stream, self.clock, self.unit = int(total), stream or sys.stderr, clock, unit
        self.interval = progress_interval() if interval is None else interval
        self.done = 0
        self.start = self.last = clock()
        if terminal is None:
            terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar = None
        if terminal:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit=unit.split()[-1], desc=unit + "s", file=self.stream,
                             dynamic_ncols=True, smoothing=0.1)

    def set_postfix_str(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def update(self, n: int = 1) -> None:
        self.done += n
        if RUNNING:
            RUNNING["done"] += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = self.clock()
        if now - self.last >= self.interval and self.done < self.total:
            self.last = now
            self._line(now)

    def line(self, now: float | None = None) -> str:
        """The progress line as it stands."""
        now = self.clock() if now is None else now
        elapsed = max(now - self.start, 1e-9)
        plural = self.unit + ("" if self.total == 1 else "s")
        text = f"progress: {self.done:,} of {self.total:,} {plural}"
        if self.total:
            text += f" ({100 * self.done / self.total:.1f}%)"
        if self.done:
            rate = self.done / elapsed
            word = self.unit.split()[-1]
            text += f", {rate:.2f} {word}s/s" if rate >= 0.1 else f", {elapsed / self.done:.1f} s a {word}"
            if self.done < self.total:
                text += f", about {format_duration((self.total - self.done) / rate)} left"
            else:
                text += f", {format_duration(elapsed)} in all"
        return text

    def _line(self, now: float) -> None:
        print(self.line(now), file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.total and self.done:
            self._line(self.clock())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            RUNNING.clear()
            self.close()
        elif self._bar is not None:
            self._bar.close()
        return False
