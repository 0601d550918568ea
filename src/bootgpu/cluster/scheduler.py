"""What a scheduler is to the neutral code: a ``Scheduler`` (its name, its client commands as
functions, how it renders a submission) and the ``JobState`` its queue query answers with.

Grid Engine's is ``bootgpu.sge.scheduler.SGE``, Slurm's ``bootgpu.slurm.scheduler.SLURM``; nothing
outside those packages knows a scheduler's flags.  A renderer (``Scheduler.renderer(args)``) is
built from the command's options and provides, for ``bootgpu.cluster.model.Submission.build``:

- ``name`` and ``label``: the scheduler's (as ``Scheduler``);
- ``cores``, ``gpus``, ``runtime``, ``merge_memory`` (bytes): the neutral resource request's parts
  that come from the scheduler's own options;
- ``render(spec, files)``: a job (``model.JobSpec``) as that scheduler's job, which has ``name``,
  ``template``, ``script``, ``args``, ``array`` (its task range as the scheduler writes it, or None),
  ``command(ids)`` (the submit command; ``ids``: job name -> id of the jobs submitted before it),
  ``directive_lines()`` and ``script_text(template_text)`` (the study's copy of its job script);
- ``job_env()``: the scheduler's additions to the job environment;
- ``record()``: the settings DIR/<scheduler>/study.json keeps besides the neutral ones.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class JobState:
    """One row of a scheduler's answer about a job: ``tasks`` ('' for the whole job, '3', or a range
    as the scheduler writes it), ``words`` (its state for people), ``alive`` (queued, held or
    running: it may still run), ``blocked`` (pending on a dependency that can never be satisfied),
    ``failed`` (ended and the scheduler says it failed, was cancelled or timed out)."""

    tasks: str
    words: str
    alive: bool
    blocked: bool = False
    failed: bool = False


@dataclass(frozen=True)
class Scheduler:
    """``name``: DIR/<name>/, the project's <name>/ folder of job scripts, `bootgpu <name> submit`;
    ``label``: for people ('Grid Engine'); ``submit_tool``, ``query_tool``, ``cancel_tool``: its
    client commands' names (qsub, qstat, qdel); ``renderer``: options -> renderer (see the module
    docstring); ``submit``: a submit command -> the job id; ``jobs``: what the scheduler knows of
    its jobs (those of the ids given at least), id -> rows (raises BootgpuError where it cannot tell); ``cancel``: cancel jobs by id; ``ended``: where
    a finished job's exit status is ('{job}' is filled in)."""

    name: str
    label: str
    submit_tool: str
    query_tool: str
    cancel_tool: str
    renderer: Callable[[argparse.Namespace], object]
    submit: Callable[[Sequence[str]], int]
    jobs: Callable[[Sequence[int]], dict[int, list[JobState]]]
    cancel: Callable[[Sequence[int]], None]
    ended: str


def describe(states: list[JobState]) -> str:
    """'running tasks 1,2; pending tasks 3-4' from one job's rows, grouped by state in order."""
    grouped: dict[str, list[str]] = {}
    for state in states:
        grouped.setdefault(state.words, []).append(state.tasks)
    parts = []
    for words, tasks in grouped.items():
        listed = ",".join(t for t in tasks if t)
        parts.append(f"{words} tasks {listed}" if listed else words)
    return "; ".join(parts)


def task_numbers(text: str) -> set[int]:
    """The array tasks a row names: '3', '2-4', '2-6:2' (Grid Engine), '[2-3,5%2]' (Slurm)."""
    out: set[int] = set()
    for piece in text.strip("[]").split("%")[0].split(","):
        bounds, _, step = piece.partition(":")
        first, _, last = bounds.partition("-")
        if first.isdigit() and (not last or last.isdigit()) and (not step or step.isdigit()):
            out |= set(range(int(first), int(last or first) + 1, int(step or 1)))
    return out
