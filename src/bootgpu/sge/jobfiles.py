"""The study's Grid Engine files, where ``StudyLayout`` puts them (``DIR/sge/``): the copies of the
job scripts with their ``#$`` lines as submitted, ``job.env``, ``focus.txt``, the logs folder, and
``study.json``, the record of the submission settings and of every submission's job ids."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from bootgpu.atomic import atomic_write_text
from bootgpu.errors import BootgpuError
from bootgpu.study.layout import MERGE_SCRIPT, TASK_SCRIPT, StudyLayout

SCRIPTS = "sge"  # the project's folder of job scripts (and where an install puts them: share/bootgpu/sge)


def scripts_dir(explicit: str | None = None) -> Path:
    """The project's ``sge/`` folder: --scripts-dir, $BOOTGPU_SGE_SCRIPTS, the source checkout
    this package was imported from (an editable install), or ``<prefix>/share/bootgpu/sge`` where
    a regular install puts the scripts (pyproject's data-files)."""
    if explicit:
        candidates = [Path(explicit)]
    elif os.environ.get("BOOTGPU_SGE_SCRIPTS"):
        candidates = [Path(os.environ["BOOTGPU_SGE_SCRIPTS"])]
    else:
        candidates = [Path(__file__).resolve().parents[3] / SCRIPTS, Path(sys.prefix) / "share" / "bootgpu" / SCRIPTS]
    for cand in candidates:
        if all((cand / name).is_file() for name in (TASK_SCRIPT, MERGE_SCRIPT)):
            return cand
    raise BootgpuError(
        f"Grid Engine job scripts not found in {candidates[0]}; pass --scripts-dir (or set "
        f"BOOTGPU_SGE_SCRIPTS) to the sge/ folder of the bootgpu source"
    )


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    atomic_write_text(path, text)
    path.chmod(mode)


def write_job_files(sub: "Submission", source: Path, now: str) -> list[Path]:  # noqa: F821 (sge.submission)
    """Write the submission's files into ``DIR/sge/`` (scripts from ``source``, the project's
    ``sge/`` folder); the paths written, scripts first.  ``now``: the time job.env names."""
    layout = sub.layout
    layout.logs_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for job in (sub.task_job, sub.null_job, sub.merge_job):
        if job is None or job.script in written:  # the null array runs the task script's copy
            continue
        _write(job.script, job.script_text((source / job.template).read_text()), 0o755)
        written.append(job.script)
    _write(layout.job_env, sub.env_text(now))
    _write(layout.focus_list, sub.focus_text())
    return [*written, layout.job_env, layout.focus_list]


def read_submissions(layout: StudyLayout) -> dict | None:
    """``DIR/sge/study.json``, or None where there is none."""
    path = layout.submissions
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BootgpuError(f"{path}: cannot read: {exc}") from None


def write_submissions(layout: StudyLayout, record: dict) -> None:
    _write(layout.submissions, json.dumps(record, indent=1) + "\n")
