"""Grid Engine's renderer of a submission (``bootgpu.cluster.model``): the directives, qsub
command lines and job environment of the scheduler-neutral jobs.

A job's resource directives are held once, keyed like the ``#$`` script lines they set ('-q',
'-pe', '-l h_vmem', '-l h_rt', '-l gpu'), and rendered both as the ``#$`` lines of the study's copy
of its script and as qsub arguments (qsub reads a ``#$`` line as whitespace-separated words, which
is how the arguments are split), so a copy submitted by hand asks for what was submitted.  The
merge is held on the arrays by name (-hold_jid).  ``Submission.build`` is the neutral build with
this renderer.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bootgpu.cluster import model
from bootgpu.cluster.model import (DEFAULT_BUDGET, DEFAULT_GENES_PER_TASK, DEFAULT_RUNTIME, NULL_TASK_ARG,  # noqa: F401
                                   JobSpec, NullPlan, StudyInput, job_name, split_null, split_tasks)  # fmt: skip
from bootgpu.cluster.resources import TaskRequest
from bootgpu.errors import BootgpuError
from bootgpu.planner import format_bytes, parse_size
from bootgpu.sge.resources import check_max_vmem, check_runtime, sge_size
from bootgpu.study.layout import MERGE_SCRIPT, TASK_SCRIPT, ClusterFiles  # noqa: F401 (re-exported)

DEFAULT_QUEUES = {"cpu": "cpu.q", "gpu": "gpu.q"}
DEFAULT_BACKENDS = {"cpu": "numpy", "gpu": "cupy"}
DEFAULT_PE = "smp"
DEFAULT_MERGE_VMEM = model.DEFAULT_MERGE_MEMORY
LABEL = "Grid Engine"

_DIRECTIVE = re.compile(r"#\$ (-l (\w+)=|-(\w+)\s)")


def _key(line: str) -> str | None:
    m = _DIRECTIVE.match(line)
    return (f"-l {m[2]}" if m[2] else f"-{m[3]}") if m else None


def _directive_line(key: str, value: str) -> str:
    return f"#$ {key.split()[0]} {value}\n"


def set_directives(text: str, directives: Mapping[str, str | None]) -> str:
    """Set the script's ``#$ -OPT value`` lines: each key of ``directives`` ('-q', '-pe', or '-l NAME'
    for the line requesting resource NAME) gets the given value ('cpu.q', 'smp 4', 'h_vmem=2G'),
    or its line is dropped for None.  A key the script has no line for gets one, after its last
    ``#$`` line."""
    return model.rewrite_directives(text, directives, "#$", _key, _directive_line)


@dataclass(frozen=True)
class Job:
    """One qsub job.  ``directives``: its resources (see the module docstring); ``options``: qsub
    options of this submission only (-S, -wd, -o, -j, -v), not written into the script copy;
    ``array``: the -t task range; ``hold``: the job names it waits for (comma-separated);
    ``extra``: --qsub-args; ``args``: the script's arguments (after its path)."""

    name: str
    template: str  # file name of the job script in the project's sge/ folder
    script: Path  # the study's copy, which is submitted
    directives: Mapping[str, str | None]
    options: tuple[str, ...]
    array: str | None = None
    hold: str | None = None
    extra: tuple[str, ...] = ()
    args: tuple[str, ...] = ()  # the script's arguments

    def directive_args(self) -> list[str]:
        """The directives as qsub arguments, e.g. ['-q', 'cpu.q', '-pe', 'smp', '2', '-l', 'h_vmem=2G']."""
        return [word for key, value in self.directives.items() if value is not None
                for word in (key.split()[0], *value.split())]  # fmt: skip

    def directive_lines(self) -> list[str]:
        """The directives as ``#$`` lines of the script copy, e.g. '#$ -pe smp 2'."""
        return [_directive_line(key, value).rstrip("\n") for key, value in self.directives.items() if value is not None]

    def script_text(self, template_text: str) -> str:
        """The study's copy of the job script: ``template_text`` with its ``#$`` lines set."""
        return set_directives(template_text, self.directives)

    def command(self, ids: Mapping[str, int] | None = None) -> list[str]:
        """``qsub -terse -N NAME OPTIONS DIRECTIVES [-t RANGE] [-hold_jid NAMES] EXTRA SCRIPT [ARGS]``
        (held by name: ``ids`` are not needed)."""
        cmd = ["qsub", "-terse", "-N", self.name, *self.options, *self.directive_args()]
        if self.array:
            cmd += ["-t", self.array]
        if self.hold:
            cmd += ["-hold_jid", self.hold]
        return [*cmd, *self.extra, str(self.script), *self.args]


def check_options(args: argparse.Namespace) -> None:
    """The site options that need no input: slots and PE, run time, GPU complex name."""
    if args.slots < 1:
        raise BootgpuError(f"--slots must be at least 1, got {args.slots}")
    if args.slots > 1 and not args.pe:
        raise BootgpuError("--slots above 1 needs a parallel environment (--pe NAME)")
    check_runtime(args.runtime)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.gpu_resource or ""):
        raise BootgpuError(f"--gpu-resource must be a complex name like gpu, got {args.gpu_resource!r}")


def check_path(label: str, path: Path) -> Path:
    """A path that goes into a qsub option (-wd, -o, -v) cannot hold a comma, colon or space."""
    return model.check_path(label, path, LABEL)


def request_for(args: argparse.Namespace, study: StudyInput) -> TaskRequest:
    """Each task's memory request (``bootgpu.cluster.resources``), refused over --max-vmem."""
    gpu = args.queue_type == "gpu"
    budget = parse_size(args.memory_budget, "--memory-budget")
    cuda = parse_size(args.cuda_vmem, "--cuda-vmem", sge=True) if gpu else 0
    request = model.memory_request(study, budget, args.slots, gpu, cuda)
    parse_size(args.merge_vmem, "--merge-vmem", sge=True)
    if args.max_vmem:
        why = (f"{study.n_genes} genes x {study.n_samples} samples, B={study.cfg.n_bootstrap}, --memory-budget "
               f"{args.memory_budget}" + (f", --cuda-vmem {args.cuda_vmem}" if cuda else ""))  # fmt: skip
        check_max_vmem(request, why, args.max_vmem, args.merge_vmem)
    return request


class SgeRenderer:
    """Grid Engine's renderer (``bootgpu.cluster.scheduler``), from `bootgpu sge submit`'s options."""

    name = "sge"
    label = LABEL

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.gpu = args.queue_type == "gpu"
        self.cores = args.slots
        self.gpus = 1 if self.gpu else 0
        self.runtime = args.runtime
        self.merge_memory = parse_size(args.merge_vmem, "--merge-vmem", sge=True)

    def _directives(self, spec: JobSpec) -> dict[str, str | None]:
        args, res = self.args, spec.resources
        runtime = f"h_rt={res.runtime}"
        h_vmem = f"h_vmem={sge_size(res.memory // res.cores)}"
        if spec.kind == "merge":
            queue = args.merge_queue if args.merge_queue is not None else ("" if self.gpu else self._queue())
            return {"-q": queue or None, "-l h_vmem": h_vmem, "-l h_rt": runtime}
        return {"-q": self._queue() or None, "-pe": f"{args.pe} {res.cores}" if args.pe else None,
                "-l h_vmem": h_vmem, "-l h_rt": runtime,
                "-l gpu": f"{args.gpu_resource}={res.gpus}" if res.gpus else None}  # fmt: skip

    def _queue(self) -> str:
        return self.args.queue if self.args.queue is not None else DEFAULT_QUEUES[self.args.queue_type]

    def render(self, spec: JobSpec, files: ClusterFiles) -> Job:
        """The qsub job of ``spec``: the array over ``spec.tasks`` (first to last; a task whose
        shard is complete exits at once), held by name on ``spec.after``."""
        options = ("-S", "/bin/sh", "-wd", str(files.folder.parent), "-o", str(files.logs_dir), "-j", "y",
                   "-v", f"BOOTGPU_JOB_ENV={files.job_env}")  # fmt: skip
        array = f"{spec.tasks[0]}-{spec.tasks[-1]}" if spec.tasks else None
        return Job(spec.name, spec.template, spec.script, self._directives(spec), options, array=array,
                   hold=",".join(spec.after) or None, extra=tuple(shlex.split(self.args.qsub_args or "")),
                   args=spec.args)  # fmt: skip

    def request_words(self, request: TaskRequest) -> str:
        """What a task's memory request becomes, after 'planner peak + overhead at --memory-budget X'."""
        return ((f" + --cuda-vmem {self.args.cuda_vmem}" if request.cuda else "")
                + f" = {format_bytes(request.need)} -> h_vmem={request.h_vmem} per slot x {request.slots} slot(s)")

    def job_env(self) -> dict[str, str]:
        """GPU queues: the variable in which the site's Grid Engine names the granted GPUs."""
        return {"BOOTGPU_GPU_GRANT_VAR": f"SGE_HGR_{self.args.gpu_resource}"} if self.gpu else {}

    def record(self, request: TaskRequest) -> dict:
        return {"queue_type": self.args.queue_type, "h_vmem": request.h_vmem, "slots": request.slots}


class Submission(model.Submission):
    """A Grid Engine submission: the neutral one, rendered by ``SgeRenderer``."""

    @classmethod
    def build(cls, args, study, tasks, request, shards, python, path, replicates_done=(), *, renderer=None):
        return super().build(args, study, tasks, request, shards, python, path, replicates_done,
                             renderer=renderer or SgeRenderer(args))  # fmt: skip
