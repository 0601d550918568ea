"""Slurm's renderer of a submission (``bootgpu.cluster.model``): the ``#SBATCH`` directives, sbatch
command lines and job environment of the scheduler-neutral jobs.

A job's directives are held once, keyed by sbatch's long option ('--partition', '--time',
'--cpus-per-task', '--mem', '--gres' or '--gpus', and the lines of --sbatch-extra), and rendered
both as the ``#SBATCH --OPT=VALUE`` lines of the study's copy of its script and as sbatch arguments,
so a copy submitted by hand asks for what was submitted.  An array runs exactly the tasks still to
do (``--array=2,4-5``, with ``%N`` for --array-throttle).  The merge waits with
``--dependency=afterok:`` on the arrays' job ids, which are known only once they are submitted: a
job's command takes the ids of the jobs submitted before it.  afterok never recovers once a task
of the array failed, so a resubmission cancels that merge and submits a new one
(``bootgpu.cluster.submit``).
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bootgpu.cluster import model
from bootgpu.cluster.model import DEFAULT_MERGE_MEMORY, DEFAULT_RUNTIME, JobSpec, StudyInput  # noqa: F401
from bootgpu.cluster.resources import TaskRequest, memory_text
from bootgpu.errors import BootgpuError
from bootgpu.planner import format_bytes, parse_size
from bootgpu.study.layout import ClusterFiles

LABEL = "Slurm"
# options bootgpu sets itself, refused in --sbatch-extra (each has an option of `slurm submit`, or is
# how bootgpu runs the jobs)
MANAGED = ("--array", "--dependency", "--job-name", "--output", "--error", "--chdir", "--export", "--parsable",
           "--partition", "--account", "--qos", "--time", "--cpus-per-task", "--mem", "--mem-per-cpu", "--gres",
           "--gpus")  # fmt: skip

_DIRECTIVE = re.compile(r"#SBATCH\s+(--[A-Za-z][\w-]*)")


def _key(line: str) -> str | None:
    m = _DIRECTIVE.match(line)
    return m[1] if m else None


def _word(key: str, value: str) -> str:
    return f"{key}={value}" if value else key


def _line(key: str, value: str) -> str:
    return f"#SBATCH {_word(key, value)}\n"


def set_directives(text: str, directives: Mapping[str, str | None]) -> str:
    """Set the script's ``#SBATCH --OPT=VALUE`` lines: each key of ``directives`` ('--mem') gets the
    given value ('2242M'; '' for a switch), or its line is dropped for None; a key the script has no
    line for gets one, after its last ``#SBATCH`` line."""
    return model.rewrite_directives(text, directives, "#SBATCH", _key, _line)


def task_list(tasks: Sequence[int]) -> str:
    """Array tasks as sbatch's --array list: (1, 2, 3, 5) -> '1-3,5'."""
    runs: list[list[int]] = []
    for task in tasks:
        if runs and task == runs[-1][1] + 1:
            runs[-1][1] = task
        else:
            runs.append([task, task])
    return ",".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)


@dataclass(frozen=True)
class Job:
    """One sbatch job.  ``directives``: its resources (see the module docstring); ``options``:
    sbatch options of this submission only (--output, --chdir, --export), not written into the
    script copy; ``array``: the tasks; ``throttle``: at most this many tasks at once; ``after``: the
    names of the jobs it waits for (afterok); ``args``: the script's arguments (after its path)."""

    name: str
    template: str  # file name of the job script in the project's slurm/ folder
    script: Path  # the study's copy, which is submitted
    directives: Mapping[str, str | None]
    options: tuple[str, ...]
    array: str | None = None
    throttle: int | None = None
    after: tuple[str, ...] = ()
    args: tuple[str, ...] = ()

    def directive_args(self) -> list[str]:
        """The directives as sbatch arguments, e.g. ['--partition=gpu', '--mem=2242M']."""
        return [_word(key, value) for key, value in self.directives.items() if value is not None]

    def directive_lines(self) -> list[str]:
        """The directives as ``#SBATCH`` lines of the script copy, e.g. '#SBATCH --mem=2242M'."""
        return [f"#SBATCH {word}" for word in self.directive_args()]

    def script_text(self, template_text: str) -> str:
        """The study's copy of the job script: ``template_text`` with its ``#SBATCH`` lines set."""
        return set_directives(template_text, self.directives)

    def dependency(self, ids: Mapping[str, int] | None) -> str | None:
        """'afterok:ID:ID' on the jobs it waits for; '<NAME>' where an id is not known yet."""
        if not self.after:
            return None
        return "afterok:" + ":".join(str(ids[n]) if ids and n in ids else f"<{n}>" for n in self.after)

    def command(self, ids: Mapping[str, int] | None = None) -> list[str]:
        """``sbatch --parsable --job-name=NAME OPTIONS DIRECTIVES [--array=..] [--dependency=..] SCRIPT [ARGS]``."""
        cmd = ["sbatch", "--parsable", f"--job-name={self.name}", *self.options, *self.directive_args()]
        if self.array:
            cmd.append(f"--array={self.array}" + (f"%{self.throttle}" if self.throttle else ""))
        if dependency := self.dependency(ids):
            cmd.append(f"--dependency={dependency}")
        return [*cmd, str(self.script), *self.args]


_TIME = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}")
_GRES = re.compile(r"gpu(:[A-Za-z0-9_.-]+)?(:(\d+))?")
_GPUS = re.compile(r"([A-Za-z0-9_.-]+:)?(\d+)")
_NAME = re.compile(r"[A-Za-z0-9_.,-]+")


def gpu_count(args: argparse.Namespace) -> int:
    """GPUs per task: --gpus [TYPE:]N, or --gres gpu[:TYPE][:N] (N defaults to 1), or none."""
    if args.gpus:
        return int(_GPUS.fullmatch(args.gpus)[2])
    if args.gres:
        return int(_GRES.fullmatch(args.gres)[3] or 1)
    return 0


def extra_directives(path: str | None) -> dict[str, str]:
    """--sbatch-extra FILE: its ``#SBATCH --OPT[=VALUE]`` lines (blank and other ``#`` lines
    skipped), by option; one-line errors for anything else and for the options bootgpu sets."""
    if not path:
        return {}
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise BootgpuError(f"--sbatch-extra {path}: cannot read: {exc.strerror or exc}") from None
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        words = shlex.split(line, comments=False) if line.startswith("#SBATCH") else []
        if not line.strip() or (line.startswith("#") and not line.startswith("#SBATCH")):
            continue
        if len(words) not in (2, 3) or not words[1].startswith("--"):
            raise BootgpuError(f"--sbatch-extra {path}:{n}: not an '#SBATCH --option[=value]' line: {line.strip()!r}")
        key, _, value = words[1].partition("=")
        value = words[2] if len(words) == 3 else value
        if key in MANAGED:
            raise BootgpuError(f"--sbatch-extra {path}:{n}: {key} is set by bootgpu slurm submit (use its own option)")
        out[key] = value
    return out


def check_options(args: argparse.Namespace) -> None:
    """The site options that need no input: cores, run time, GPUs, throttle, the names given."""
    if args.cpus_per_task < 1:
        raise BootgpuError(f"--cpus-per-task must be at least 1, got {args.cpus_per_task}")
    if not _TIME.fullmatch(args.time or ""):
        raise BootgpuError(f"--time must be MINUTES, H:M:S or D-H:M:S, got {args.time!r}")
    if args.gres and not _GRES.fullmatch(args.gres):
        raise BootgpuError(f"--gres must be gpu[:TYPE][:N] (other resources: --sbatch-extra), got {args.gres!r}")
    if args.gpus and not _GPUS.fullmatch(args.gpus):
        raise BootgpuError(f"--gpus must be N or TYPE:N, got {args.gpus!r}")
    if args.array_throttle is not None and args.array_throttle < 1:
        raise BootgpuError(f"--array-throttle must be at least 1, got {args.array_throttle}")
    for flag in ("partition", "merge_partition", "account", "qos"):
        value = getattr(args, flag)
        if value and not _NAME.fullmatch(value):
            raise BootgpuError(f"--{flag.replace('_', '-')} must be a Slurm name, got {value!r}")
    parse_size(args.merge_mem, "--merge-mem")
    extra_directives(args.sbatch_extra)


def request_for(args: argparse.Namespace, study: StudyInput) -> TaskRequest:
    """Each task's memory request (``bootgpu.cluster.resources``), asked for as --mem: Slurm limits
    resident memory, so no CUDA address space is added."""
    budget = parse_size(args.memory_budget, "--memory-budget")
    return model.memory_request(study, budget, args.cpus_per_task, gpu_count(args) > 0)


class SlurmRenderer:
    """Slurm's renderer (``bootgpu.cluster.scheduler``), from `bootgpu slurm submit`'s options."""

    name = "slurm"
    label = LABEL

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.cores = args.cpus_per_task
        self.gpus = gpu_count(args)
        self.runtime = args.time
        self.merge_memory = parse_size(args.merge_mem, "--merge-mem")
        self.extra = extra_directives(args.sbatch_extra)

    def _directives(self, spec: JobSpec) -> dict[str, str | None]:
        args, res = self.args, spec.resources
        merge = spec.kind == "merge"
        partition = args.partition
        if merge:
            partition = args.merge_partition if args.merge_partition is not None else (None if self.gpus else partition)
        return {"--partition": partition or None, "--account": args.account or None, "--qos": args.qos or None,
                "--time": res.runtime, "--cpus-per-task": str(res.cores), "--mem": memory_text(res.memory),
                "--gres": args.gres if args.gres and not merge else None,
                "--gpus": args.gpus if args.gpus and not merge else None, **self.extra}  # fmt: skip

    def render(self, spec: JobSpec, files: ClusterFiles) -> Job:
        """The sbatch job of ``spec``: an array over exactly ``spec.tasks``, afterok on ``spec.after``."""
        log = files.logs_dir / ("%x.o%A.%a" if spec.tasks else "%x.o%j")
        options = (f"--output={log}", f"--chdir={files.folder.parent}", f"--export=ALL,BOOTGPU_JOB_ENV={files.job_env}")
        array = task_list(spec.tasks) if spec.tasks else None
        return Job(spec.name, spec.template, spec.script, self._directives(spec), options, array=array,
                   throttle=self.args.array_throttle if array else None, after=spec.after, args=spec.args)  # fmt: skip

    def request_words(self, request: TaskRequest) -> str:
        """What a task's memory request becomes, after 'planner peak + overhead at --memory-budget X'."""
        return f" = {format_bytes(request.need)} -> --mem={request.total_text} with {request.slots} core(s)"

    def job_env(self) -> dict[str, str]:
        """Nothing: Slurm binds the GPUs it grants itself (CUDA_VISIBLE_DEVICES)."""
        return {}

    def record(self, request: TaskRequest) -> dict:
        return {"partition": self.args.partition, "mem": request.total_text, "cpus_per_task": request.slots,
                "gpus": self.gpus}  # fmt: skip


class Submission(model.Submission):
    """A Slurm submission: the neutral one, rendered by ``SlurmRenderer``."""

    @classmethod
    def build(cls, args, study, tasks, request, shards, python, path, replicates_done=(), *, renderer=None):
        return super().build(args, study, tasks, request, shards, python, path, replicates_done,
                             renderer=renderer or SlurmRenderer(args))  # fmt: skip
