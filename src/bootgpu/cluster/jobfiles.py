"""A submission's files, where ``StudyLayout.cluster(scheduler)`` puts them (``DIR/sge/`` or
``DIR/slurm/``): the copies of the job scripts with their directive lines as submitted, ``job.env``,
``focus.txt``, the logs folder, and ``study.json``, the record of the submission settings and of
every submission's job ids."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from bootgpu.atomic import atomic_write_text
from bootgpu.errors import BootgpuError
from bootgpu.study.layout import MERGE_SCRIPT, SCHEDULER_DIRS, TASK_SCRIPT, ClusterFiles, StudyLayout

# the job ids of a submission entry in DIR/<scheduler>/study.json, with the label each is shown by
JOB_KINDS = (("array_job", "array"), ("null_job", "null"), ("merge_job", "merge"))


def scripts_dir(scheduler: str, label: str, explicit: str | None = None) -> Path:
    """The project's folder of ``scheduler``'s job scripts (``sge/``, ``slurm/``): --scripts-dir,
    $BOOTGPU_<SCHEDULER>_SCRIPTS, the source checkout this package was imported from (an editable
    install), or ``<prefix>/share/bootgpu/<scheduler>`` where a regular install puts the scripts
    (pyproject's data-files)."""
    variable = f"BOOTGPU_{scheduler.upper()}_SCRIPTS"
    if explicit:
        candidates = [Path(explicit)]
    elif os.environ.get(variable):
        candidates = [Path(os.environ[variable])]
    else:
        candidates = [Path(__file__).resolve().parents[3] / scheduler, Path(sys.prefix) / "share" / "bootgpu" / scheduler]
    for cand in candidates:
        if all((cand / name).is_file() for name in (TASK_SCRIPT, MERGE_SCRIPT)):
            return cand
    raise BootgpuError(
        f"{label} job scripts not found in {candidates[0]}; pass --scripts-dir (or set "
        f"{variable}) to the {scheduler}/ folder of the bootgpu source"
    )


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    atomic_write_text(path, text)
    path.chmod(mode)


def write_job_files(sub, source: Path, now: str) -> list[Path]:
    """Write the submission's (``bootgpu.cluster.model.Submission``) files into its folder (scripts
    from ``source``, the project's folder of the scheduler's scripts); the paths written, scripts
    first.  ``now``: the time job.env names."""
    files = sub.files
    files.logs_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for job in (sub.task_job, sub.null_job, sub.merge_job):
        if job is None or job.script in written:  # the null array runs the task script's copy
            continue
        _write(job.script, job.script_text((source / job.template).read_text()), 0o755)
        written.append(job.script)
    _write(files.job_env, sub.env_text(now))
    _write(files.focus_list, sub.focus_text())
    return [*written, files.job_env, files.focus_list]


def read_submissions(files: ClusterFiles) -> dict | None:
    """``DIR/<scheduler>/study.json``, or None where there is none."""
    path = files.submissions
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BootgpuError(f"{path}: cannot read: {exc}") from None


def write_submissions(files: ClusterFiles, record: dict) -> None:
    _write(files.submissions, json.dumps(record, indent=1) + "\n")


def latest_submissions(layout: StudyLayout) -> tuple[str | None, dict | None]:
    """(scheduler, record) of the study's most recent cluster submission (of either scheduler, by
    its record's time of change), or (None, None) where it was never submitted to one."""
    found = [(files.submissions.stat().st_mtime, name, files) for name in SCHEDULER_DIRS
             if (files := layout.cluster(name)).submissions.is_file()]  # fmt: skip
    if not found:
        return None, None
    _, name, files = max(found)
    return name, read_submissions(files)
