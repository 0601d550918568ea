"""A Grid Engine submission of a study, as data.

``Submission.build`` turns the options, the study's input and the planner's memory request into
everything that is then written and submitted: the jobs (the array over focus genes, with
``--permutations`` the array over null replicates, and the merge held on both) with their resource
directives, the job environment, the focus list and the tasks still to run.  It reads and writes
nothing, so a test inspects it directly (as dask-jobqueue's ``Job.job_script()``);
``bootgpu.sge.jobfiles`` writes it into the study directory and ``bootgpu.sge.qsub`` submits it.

A job's resource directives are held once, keyed like the ``#$`` script lines they set ('-q',
'-pe', '-l h_vmem', '-l h_rt', '-l gpu'), and rendered both as the ``#$`` lines of the study's copy
of its script and as qsub arguments (qsub reads a ``#$`` line as whitespace-separated words, which
is how the arguments are split), so a copy submitted by hand asks for what was submitted.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bootgpu.config import AnalysisConfig
from bootgpu.errors import BootgpuError
from bootgpu.study.identity import StudyIdentity
from bootgpu.study.layout import MERGE_SCRIPT, TASK_SCRIPT, StudyLayout  # noqa: F401 (re-exported)
from bootgpu.options import RUN_FORWARDED, options_argv
from bootgpu.planner import parse_size
from bootgpu.sge.resources import TaskRequest, check_max_vmem, check_runtime, sge_size, task_request
from bootgpu.study.directory import shard_slice

DEFAULT_QUEUES = {"cpu": "cpu.q", "gpu": "gpu.q"}
DEFAULT_BACKENDS = {"cpu": "numpy", "gpu": "cupy"}
DEFAULT_PE = "smp"
DEFAULT_RUNTIME = "24:00:00"
DEFAULT_BUDGET = "4G"
DEFAULT_GENES_PER_TASK = 50
DEFAULT_MERGE_VMEM = "4G"
NULL_TASK_ARG = "null"  # the task script's argument that makes a task compute null replicates

_DIRECTIVE = re.compile(r"#\$ (-l (\w+)=|-(\w+)\s)")


def set_directives(text: str, directives: Mapping[str, str | None]) -> str:
    """Set the script's ``#$ -OPT value`` lines: each key of ``directives`` ('-q', '-pe', or '-l NAME'
    for the line requesting resource NAME) gets the given value ('cpu.q', 'smp 4', 'h_vmem=2G'),
    or its line is dropped for None.  A key the script has no line for gets one, after its last
    ``#$`` line."""
    out: list[str] = []
    seen: set[str] = set()
    after_directives = 1 if text.startswith("#!") else 0
    for line in text.splitlines(keepends=True):
        if m := _DIRECTIVE.match(line):
            key = f"-l {m[2]}" if m[2] else f"-{m[3]}"
            if key in directives:
                seen.add(key)
                if directives[key] is None:
                    continue
                line = _directive_line(key, directives[key])
        out.append(line)
        if line.startswith("#$"):
            after_directives = len(out)
    missing = [_directive_line(k, v) for k, v in directives.items() if v is not None and k not in seen]
    out[after_directives:after_directives] = missing
    return "".join(out)


def _directive_line(key: str, value: str) -> str:
    return f"#$ {key.split()[0]} {value}\n"


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

    def command(self) -> list[str]:
        """``qsub -terse -N NAME OPTIONS DIRECTIVES [-t RANGE] [-hold_jid NAMES] EXTRA SCRIPT [ARGS]``."""
        cmd = ["qsub", "-terse", "-N", self.name, *self.options, *self.directive_args()]
        if self.array:
            cmd += ["-t", self.array]
        if self.hold:
            cmd += ["-hold_jid", self.hold]
        return [*cmd, *self.extra, str(self.script), *self.args]


@dataclass(frozen=True)
class StudyInput:
    """What a submission is about, read and checked by the command: the input and study directory
    (absolute), the matrix's shape, the validated parameters, the focus genes and the identity."""

    expr: Path
    out: Path
    n_genes: int
    n_samples: int
    cfg: AnalysisConfig
    k_low: int
    k_high: int
    focus: tuple[int, ...]
    identity: StudyIdentity


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
    if re.search(r"[,:\s]", str(path)):
        raise BootgpuError(f"{label} {path}: Grid Engine options cannot carry a path with a comma, colon or space")
    return path


def split_tasks(args: argparse.Namespace, n_focus: int) -> int:
    """N, the array tasks: --tasks, or the focus genes over --genes-per-task (default 50)."""
    if args.genes_per_task is not None and args.genes_per_task < 1:
        raise BootgpuError(f"--genes-per-task must be at least 1, got {args.genes_per_task}")
    tasks = args.tasks if args.tasks is not None else math.ceil(n_focus / (args.genes_per_task or DEFAULT_GENES_PER_TASK))
    if not 1 <= tasks <= n_focus:
        raise BootgpuError(f"--tasks must be between 1 and the {n_focus} focus genes, got {tasks}")
    return tasks


@dataclass(frozen=True)
class NullPlan:
    """The null replicates of a submission with ``--permutations N``, ``per_task`` (R) to a task: task
    j (1-based) of the null array computes replicates (j-1)R .. min(jR, N)-1, so the tasks cover
    0..N-1 once each.  ``todo``: the tasks with a replicate not yet done."""

    permutations: int
    per_task: int
    todo: tuple[int, ...]

    @classmethod
    def of(cls, permutations: int, per_task: int, done: Iterable[int]) -> NullPlan:
        """The plan where replicates ``done`` (files in DIR/null/, or held by DIR/null.h5) exist."""
        done = set(done)
        plan = cls(permutations, per_task, ())
        todo = tuple(j for j in range(1, plan.tasks + 1) if not set(plan.replicates(j)) <= done)
        return cls(permutations, per_task, todo)

    @property
    def tasks(self) -> int:
        return math.ceil(self.permutations / self.per_task)

    def replicates(self, task: int) -> range:
        """Replicates of null task ``task`` (as the task script computes them)."""
        return range((task - 1) * self.per_task, min(task * self.per_task, self.permutations))

    @property
    def array_range(self) -> str | None:
        return f"{self.todo[0]}-{self.todo[-1]}" if self.todo else None


def split_null(args: argparse.Namespace, n_focus: int, tasks: int) -> tuple[int, int] | None:
    """(N, R): --permutations and --replicates-per-task (default: a focus task's most genes, since a
    replicate costs one focus gene's analysis and both arrays share --runtime), or None without
    --permutations (where --replicates-per-task is refused: it would mean nothing)."""
    n_perm, per_task = args.permutations, args.replicates_per_task
    if n_perm is None:
        if per_task is not None:
            raise BootgpuError("--replicates-per-task needs --permutations N (the null replicates to split)")
        return None
    if n_perm < 1:
        raise BootgpuError(f"--permutations must be at least 1, got {n_perm}")
    if per_task is not None and per_task < 1:
        raise BootgpuError(f"--replicates-per-task must be at least 1, got {per_task}")
    return n_perm, min(per_task or math.ceil(n_focus / tasks), n_perm)


def request_for(args: argparse.Namespace, study: StudyInput) -> TaskRequest:
    """Each task's memory request (``bootgpu.sge.resources``), refused over --max-vmem."""
    gpu = args.queue_type == "gpu"
    budget = parse_size(args.memory_budget, "--memory-budget")
    cuda = parse_size(args.cuda_vmem, "--cuda-vmem", sge=True) if gpu else 0
    request = task_request(study.n_genes, study.n_samples, study.k_low, study.k_high, study.cfg.n_bootstrap, budget,
                           args.slots, cuda, 0 if gpu else None, study.cfg.store)  # fmt: skip
    parse_size(args.merge_vmem, "--merge-vmem", sge=True)
    if args.max_vmem:
        why = (f"{study.n_genes} genes x {study.n_samples} samples, B={study.cfg.n_bootstrap}, --memory-budget "
               f"{args.memory_budget}" + (f", --cuda-vmem {args.cuda_vmem}" if cuda else ""))  # fmt: skip
        check_max_vmem(request, why, args.max_vmem, args.merge_vmem)
    return request


def job_name(out: Path, kind: str) -> str:
    """A Grid Engine job name unique to the study directory ('bootgpu_NAME_1a2b3c')."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", out.name)[:24] or "study"
    digest = hashlib.sha1(str(out).encode()).hexdigest()[:6]
    return f"{kind}_{base}_{digest}"


@dataclass(frozen=True)
class Submission:
    """One `bootgpu sge submit` of a study: its jobs, their environment and what is left to run.
    ``todo``: the tasks without a shard file; the array job runs ``todo[0]-todo[-1]`` (a task whose
    shard is complete exits at once), and is not submitted when ``todo`` is empty.  ``null`` (with
    --permutations): the null replicates' tasks, run by ``null_job`` over ``null.todo`` likewise.
    The merge job is held on the arrays submitted."""

    study: StudyInput
    layout: StudyLayout
    queue_type: str
    backend: str
    tasks: int
    todo: tuple[int, ...]
    request: TaskRequest
    task_job: Job
    merge_job: Job
    env: Mapping[str, str]
    null: NullPlan | None = None
    null_job: Job | None = None

    @classmethod
    def build(cls, args: argparse.Namespace, study: StudyInput, tasks: int, request: TaskRequest,
              shards: Iterable[tuple[int, int]], python: str, path: str,
              replicates_done: Iterable[int] = ()) -> Submission:
        """From the parsed options, the study, N tasks, each task's memory request, the (K, N) of the
        shard files already written, and the interpreter and PATH the jobs are to run with; with
        --permutations, ``replicates_done``: the null replicates on disk (files or in null.h5)."""
        layout = StudyLayout(study.out)
        written = {k for k, n in shards if n == tasks}
        todo = tuple(k for k in range(1, tasks + 1) if k not in written)
        split = split_null(args, len(study.focus), tasks)
        null = NullPlan.of(*split, replicates_done) if split else None
        task_job, null_job, merge_job = _jobs(args, layout, request, todo, null)
        backend = args.backend or DEFAULT_BACKENDS[args.queue_type]
        env = _job_env(args, study, layout, tasks, backend, request, python, path) | _null_env(null)
        return cls(study, layout, args.queue_type, backend, tasks, todo, request, task_job, merge_job, env,
                   null, null_job)  # fmt: skip

    @property
    def array_range(self) -> str | None:
        return f"{self.todo[0]}-{self.todo[-1]}" if self.todo else None

    def jobs(self) -> list[Job]:
        """The jobs to submit, in order: the array (if any task is left), the null array (if any of
        its tasks is left), then the merge."""
        null = [self.null_job] if self.null_job is not None and self.null.todo else []
        return ([self.task_job] if self.todo else []) + null + [self.merge_job]

    def commands(self) -> list[list[str]]:
        return [job.command() for job in self.jobs()]

    def task_sizes(self) -> tuple[int, int]:
        """Focus genes per task, fewest and most."""
        sizes = [len(shard_slice(list(self.study.focus), (k, self.tasks))) for k in (self.tasks, 1)]
        return sizes[0], sizes[1]

    def task_command(self, task: int) -> list[str]:
        """What array task ``task`` runs, as the job script builds it from the environment."""
        env = self.env
        return [env["BOOTGPU_PYTHON"], "-m", "bootgpu", "run", "--expr", env["BOOTGPU_EXPR"], "--out", env["BOOTGPU_OUT"],
                "--shard", f"{task}/{env['BOOTGPU_TASKS']}", "--backend", env["BOOTGPU_BACKEND"],
                "--focus", env["BOOTGPU_FOCUS"], "--memory-budget", env["BOOTGPU_MEMORY_BUDGET"],
                *env["BOOTGPU_RUN_ARGS"].split()]  # fmt: skip

    def null_task_command(self, task: int) -> list[str]:
        """What null task ``task`` runs (the task script with argument ``null``): its replicates."""
        env, reps = self.env, self.null.replicates(task)
        return [env["BOOTGPU_PYTHON"], "-m", "bootgpu", "null", "--expr", env["BOOTGPU_EXPR"], "--out",
                env["BOOTGPU_OUT"], "--permutations", env["BOOTGPU_PERMUTATIONS"], "--replicates",
                f"{reps.start}:{reps.stop}", "--backend", env["BOOTGPU_BACKEND"], "--focus", env["BOOTGPU_FOCUS"],
                "--memory-budget", env["BOOTGPU_MEMORY_BUDGET"], *env["BOOTGPU_RUN_ARGS"].split()]  # fmt: skip

    def merge_commands(self) -> list[list[str]]:
        """What the merge job runs: `bootgpu merge`, then with --permutations `bootgpu null
        --gather-only` (the replicates into null.h5, then p and q; on NumPy, computing nothing)."""
        env = self.env
        cmds = [[env["BOOTGPU_PYTHON"], "-m", "bootgpu", "merge", env["BOOTGPU_OUT"]]]
        if self.null is not None:
            cmds.append([env["BOOTGPU_PYTHON"], "-m", "bootgpu", "null", "--expr", env["BOOTGPU_EXPR"], "--out",
                         env["BOOTGPU_OUT"], "--permutations", env["BOOTGPU_PERMUTATIONS"], "--gather-only",
                         "--backend", "numpy", "--focus", env["BOOTGPU_FOCUS"], *env["BOOTGPU_RUN_ARGS"].split()])
        return cmds

    def env_text(self, now: str) -> str:
        """``DIR/sge/job.env``, which the job scripts source (POSIX sh)."""
        return (f"# Written by `bootgpu sge submit` at {now}: the environment of this study's Grid Engine jobs,\n"
                "# sourced (POSIX sh) by the job scripts next to it.  Edit with care: focus list, expression\n"
                "# and analysis options must stay those of the study (study.json).\n"
                + "".join(f"{k}={shlex.quote(v)}\n" for k, v in self.env.items()) + "export PATH\n")  # fmt: skip

    def focus_text(self) -> str:
        """``DIR/sge/focus.txt``: explicit row forms, since gene ids may look like numbers."""
        return "".join(f"#{g}\n" for g in self.study.focus)

    def record(self) -> dict:
        """The settings ``DIR/sge/study.json`` keeps of this submission."""
        s = self.study
        return {"expr": str(s.expr), "out": str(s.out), "n_genes": s.n_genes, "n_samples": s.n_samples,
                "n_focus": len(s.focus), "tasks": self.tasks, "analysis": s.cfg.as_dict(),
                "queue_type": self.queue_type, "backend": self.backend, "h_vmem": self.request.h_vmem,
                "slots": self.request.slots, "run_budget": self.request.run_budget,
                **({"permutations": self.null.permutations, "replicates_per_task": self.null.per_task,
                    "null_tasks": self.null.tasks} if self.null else {})}  # fmt: skip


def _jobs(args: argparse.Namespace, layout: StudyLayout, request: TaskRequest, todo: tuple[int, ...],
          null: NullPlan | None) -> tuple[Job, Job | None, Job]:
    """The array job (tasks ``todo``), the null array (with ``null``: its tasks to do; the same
    script and directives, since a replicate is planned as one focus gene) and the merge job held
    on the arrays that are submitted."""
    gpu = args.queue_type == "gpu"
    queue = args.queue if args.queue is not None else DEFAULT_QUEUES[args.queue_type]
    merge_queue = args.merge_queue if args.merge_queue is not None else ("" if gpu else queue)
    runtime = f"h_rt={args.runtime}"
    common = ("-S", "/bin/sh", "-wd", str(layout.root), "-o", str(layout.logs_dir), "-j", "y",
              "-v", f"BOOTGPU_JOB_ENV={layout.job_env}")  # fmt: skip
    extra = tuple(shlex.split(args.qsub_args or ""))
    array_name = job_name(layout.root, "bootgpu")
    task_directives = {"-q": queue or None, "-pe": f"{args.pe} {args.slots}" if args.pe else None,
                       "-l h_vmem": f"h_vmem={request.h_vmem}", "-l h_rt": runtime,
                       "-l gpu": f"{args.gpu_resource}=1" if gpu else None}  # fmt: skip
    merge_directives = {"-q": merge_queue or None,
                        "-l h_vmem": f"h_vmem={sge_size(parse_size(args.merge_vmem, '--merge-vmem', sge=True))}",
                        "-l h_rt": runtime}  # fmt: skip
    task_job = Job(array_name, TASK_SCRIPT, layout.job_script(TASK_SCRIPT), task_directives, common,
                   array=f"{todo[0]}-{todo[-1]}" if todo else None, extra=extra)  # fmt: skip
    null_job = None if null is None else Job(job_name(layout.root, "null"), TASK_SCRIPT, layout.job_script(TASK_SCRIPT),
                                             task_directives, common, array=null.array_range, extra=extra,
                                             args=(NULL_TASK_ARG,))  # fmt: skip
    held = [job.name for job in (task_job, null_job) if job is not None and job.array]
    merge_job = Job(job_name(layout.root, "merge"), MERGE_SCRIPT, layout.job_script(MERGE_SCRIPT), merge_directives,
                    common, hold=",".join(held) or None, extra=extra)  # fmt: skip
    return task_job, null_job, merge_job


def _job_env(args: argparse.Namespace, study: StudyInput, layout: StudyLayout, tasks: int, backend: str,
             request: TaskRequest, python: str, path: str) -> dict[str, str]:
    """What the job scripts read (the variables sge/bootgpu-task.sh lists); the analysis
    options forwarded to `bootgpu run` come from their definitions (``options.RUN_FORWARDED``)."""
    env = {
        "BOOTGPU_PYTHON": python,
        "PATH": path,
        "BOOTGPU_EXPR": str(study.expr),
        "BOOTGPU_OUT": str(study.out),
        "BOOTGPU_FOCUS": f"@{layout.focus_list}",
        "BOOTGPU_TASKS": str(tasks),
        "BOOTGPU_BACKEND": backend,
        "BOOTGPU_MEMORY_BUDGET": str(request.run_budget),
        "BOOTGPU_RUN_ARGS": " ".join(options_argv(RUN_FORWARDED, args, joined=True)),
        "BOOTGPU_SETUP": args.job_setup or "",
    }
    if args.queue_type == "gpu":
        env["BOOTGPU_GPU_GRANT_VAR"] = f"SGE_HGR_{args.gpu_resource}"
    return env


def _null_env(null: NullPlan | None) -> dict[str, str]:
    """What the task script's null mode and the merge script read (none without --permutations)."""
    if null is None:
        return {}
    return {"BOOTGPU_PERMUTATIONS": str(null.permutations), "BOOTGPU_REPLICATES_PER_TASK": str(null.per_task),
            "BOOTGPU_NULL_TASKS": str(null.tasks)}  # fmt: skip
