"""A cluster submission of a study, as data, for either scheduler.

``Submission.build`` turns the options, the study's input and the planner's memory request into
everything that is then written and submitted: the jobs (the array over focus genes, with
``--permutations`` the array over null replicates, and the merge that waits for the arrays) with
their resource request, the job environment, the focus list and the tasks still to run.  It reads
and writes nothing, so a test inspects it directly (as dask-jobqueue's ``Job.job_script()``).

The jobs are first neutral ``JobSpec``s (what runs, on which tasks, with which ``Resources``, after
which jobs); a scheduler's renderer (``bootgpu.cluster.scheduler``) turns each into that
scheduler's job: its directives (``#$`` or ``#SBATCH`` lines of the study's copy of its script) and
its submit command.  ``bootgpu.cluster.jobfiles`` writes the submission into the study directory
and ``bootgpu.cluster.submit`` submits it.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bootgpu.cluster.resources import TaskRequest, task_request
from bootgpu.config import AnalysisConfig
from bootgpu.errors import BootgpuError
from bootgpu.options import RUN_FORWARDED, options_argv
from bootgpu.study.directory import shard_slice
from bootgpu.study.identity import StudyIdentity
from bootgpu.study.layout import MERGE_SCRIPT, TASK_SCRIPT, ClusterFiles, StudyLayout

DEFAULT_GENES_PER_TASK = 50
DEFAULT_BUDGET = "4G"
DEFAULT_MERGE_MEMORY = "4G"
DEFAULT_RUNTIME = "24:00:00"
NULL_TASK_ARG = "null"  # the task script's argument that makes a task compute null replicates


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


def check_path(label: str, path: Path, scheduler: str = "Grid Engine") -> Path:
    """A path that goes into a scheduler option (a working directory, a log path, an exported
    variable) cannot hold a comma, colon or space."""
    if re.search(r"[,:\s]", str(path)):
        raise BootgpuError(f"{label} {path}: {scheduler} options cannot carry a path with a comma, colon or space")
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
    replicate costs one focus gene's analysis and both arrays share the run time), or None without
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


def memory_request(study: StudyInput, budget: int, cores: int, gpu: bool, cuda: int = 0) -> TaskRequest:
    """Each task's memory (``bootgpu.cluster.resources``) for the study planned at ``budget``: with
    NumPy's working-set cap on CPU nodes, none (CuPy) on GPU nodes; ``cuda``: the CUDA driver's
    address space where virtual memory is limited (Grid Engine's --cuda-vmem)."""
    return task_request(study.n_genes, study.n_samples, study.k_low, study.k_high, study.cfg.n_bootstrap, budget,
                        cores, cuda, 0 if gpu else None, study.cfg.store)  # fmt: skip


def job_name(out: Path, kind: str) -> str:
    """A job name unique to the study directory ('bootgpu_NAME_1a2b3c')."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", out.name)[:24] or "study"
    digest = hashlib.sha1(str(out).encode()).hexdigest()[:6]
    return f"{kind}_{base}_{digest}"


def rewrite_directives(text: str, directives: Mapping[str, str | None], prefix: str,
                       key_of: Callable[[str], str | None], line_of: Callable[[str, str], str]) -> str:
    """Set a job script's directive lines (those starting with ``prefix``, '#$' or '#SBATCH'): the
    line whose key (``key_of(line)``) is a key of ``directives`` gets ``line_of(key, value)``, or is
    dropped for None; a key the script has no line for gets one after its last directive line."""
    out: list[str] = []
    seen: set[str] = set()
    after_directives = 1 if text.startswith("#!") else 0
    for line in text.splitlines(keepends=True):
        key = key_of(line) if line.startswith(prefix) else None
        if key is not None and key in directives:
            seen.add(key)
            if directives[key] is None:
                continue
            line = line_of(key, directives[key])
        out.append(line)
        if line.startswith(prefix):
            after_directives = len(out)
    missing = [line_of(k, v) for k, v in directives.items() if v is not None and k not in seen]
    out[after_directives:after_directives] = missing
    return "".join(out)


@dataclass(frozen=True)
class Resources:
    """What one job (each task of an array) asks for: ``cores``, ``memory`` in bytes for the whole
    task (Grid Engine's renderer divides it over the slots), ``gpus``, ``runtime`` (H:M:S)."""

    cores: int
    memory: int
    gpus: int
    runtime: str


@dataclass(frozen=True)
class JobSpec:
    """One job, scheduler-neutral: ``kind`` ('array', 'null' or 'merge'), its unique ``name``, the
    job script (``template`` in the project's scheduler folder, ``script`` the study's copy),
    ``resources``, ``tasks`` (an array's tasks to run; () for the merge), ``after`` (the names of
    the jobs it must wait for, each to succeed), ``args`` (the script's arguments)."""

    kind: str
    name: str
    template: str
    script: Path
    resources: Resources
    tasks: tuple[int, ...] = ()
    after: tuple[str, ...] = ()
    args: tuple[str, ...] = ()


def job_specs(files: ClusterFiles, out: Path, task_resources: Resources, merge_resources: Resources,
              todo: tuple[int, ...], null: NullPlan | None) -> tuple[JobSpec, JobSpec | None, JobSpec]:
    """The array job (tasks ``todo``), the null array (with ``null``: its tasks to do; the same
    script and resources, since a replicate is planned as one focus gene) and the merge job, which
    waits for the arrays that have tasks to run."""
    task = JobSpec("array", job_name(out, "bootgpu"), TASK_SCRIPT, files.job_script(TASK_SCRIPT), task_resources, todo)
    null_spec = None if null is None else JobSpec("null", job_name(out, "null"), TASK_SCRIPT, task.script,
                                                  task_resources, null.todo, args=(NULL_TASK_ARG,))  # fmt: skip
    after = tuple(spec.name for spec in (task, null_spec) if spec is not None and spec.tasks)
    merge = JobSpec("merge", job_name(out, "merge"), MERGE_SCRIPT, files.job_script(MERGE_SCRIPT), merge_resources,
                    after=after)  # fmt: skip
    return task, null_spec, merge


@dataclass(frozen=True)
class Submission:
    """One `bootgpu sge submit` or `bootgpu slurm submit` of a study: its jobs (rendered for the
    scheduler), their environment and what is left to run.  ``todo``: the tasks without a shard
    file; the array job runs them (a task whose shard is complete exits at once), and is not
    submitted when ``todo`` is empty.  ``null`` (with --permutations): the null replicates' tasks,
    run by ``null_job`` over ``null.todo`` likewise.  The merge job waits for the arrays submitted."""

    study: StudyInput
    layout: StudyLayout
    files: ClusterFiles
    renderer: object  # the scheduler's renderer (bootgpu.cluster.scheduler)
    backend: str
    tasks: int
    todo: tuple[int, ...]
    request: TaskRequest
    task_job: object
    merge_job: object
    env: Mapping[str, str]
    null: NullPlan | None = None
    null_job: object | None = None

    @classmethod
    def build(cls, args: argparse.Namespace, study: StudyInput, tasks: int, request: TaskRequest,
              shards: Iterable[tuple[int, int]], python: str, path: str, replicates_done: Iterable[int] = (), *,
              renderer) -> Submission:
        """From the parsed options, the study, N tasks, each task's memory request, the (K, N) of the
        shard files already written, the interpreter and PATH the jobs are to run with, with
        --permutations ``replicates_done`` (the null replicates on disk), and the scheduler's
        ``renderer`` (``bootgpu.cluster.scheduler``)."""
        layout = StudyLayout(study.out)
        files = layout.cluster(renderer.name)
        written = {k for k, n in shards if n == tasks}
        todo = tuple(k for k in range(1, tasks + 1) if k not in written)
        split = split_null(args, len(study.focus), tasks)
        null = NullPlan.of(*split, replicates_done) if split else None
        task_res = Resources(renderer.cores, request.total, renderer.gpus, renderer.runtime)
        merge_res = Resources(1, renderer.merge_memory, 0, renderer.runtime)
        specs = job_specs(files, study.out, task_res, merge_res, todo, null)
        task_job, null_job, merge_job = (None if s is None else renderer.render(s, files) for s in specs)
        backend = args.backend or ("cupy" if renderer.gpus else "numpy")
        env = _job_env(args, study, files, tasks, backend, request, python, path) | renderer.job_env() | _null_env(null)
        return cls(study, layout, files, renderer, backend, tasks, todo, request, task_job, merge_job, env, null,
                   null_job)  # fmt: skip

    @property
    def array_range(self) -> str | None:
        """The array's tasks as the scheduler is given them ('2-4'), or None when none is left."""
        return self.task_job.array if self.todo else None

    @property
    def null_range(self) -> str | None:
        return self.null_job.array if self.null is not None and self.null.todo else None

    def jobs(self) -> list:
        """The jobs to submit, in order: the array (if any task is left), the null array (if any of
        its tasks is left), then the merge."""
        null = [self.null_job] if self.null_job is not None and self.null.todo else []
        return ([self.task_job] if self.todo else []) + null + [self.merge_job]

    def commands(self, ids: Mapping[str, int] | None = None) -> list[list[str]]:
        """The submit commands; ``ids`` (job name -> id) fills in what a job waits for where the
        scheduler names jobs by id (Slurm), placeholders otherwise."""
        return [job.command(ids) for job in self.jobs()]

    def task_sizes(self) -> tuple[int, int]:
        """Focus genes per task, fewest and most."""
        sizes = [len(shard_slice(list(self.study.focus), (k, self.tasks))) for k in (self.tasks, 1)]
        return sizes[0], sizes[1]

    def _bootgpu(self, *words: str) -> list[str]:
        return [self.env["BOOTGPU_PYTHON"], "-m", "bootgpu", *words]

    def task_command(self, task: int) -> list[str]:
        """What array task ``task`` runs, as the job script builds it from the environment."""
        env = self.env
        return self._bootgpu("run", "--expr", env["BOOTGPU_EXPR"], "--out", env["BOOTGPU_OUT"],
                             "--shard", f"{task}/{env['BOOTGPU_TASKS']}", "--backend", env["BOOTGPU_BACKEND"],
                             "--focus", env["BOOTGPU_FOCUS"], "--memory-budget", env["BOOTGPU_MEMORY_BUDGET"],
                             *env["BOOTGPU_RUN_ARGS"].split())  # fmt: skip

    def null_task_command(self, task: int) -> list[str]:
        """What null task ``task`` runs (the task script with argument ``null``): its replicates."""
        env, reps = self.env, self.null.replicates(task)
        return self._bootgpu("null", "--expr", env["BOOTGPU_EXPR"], "--out", env["BOOTGPU_OUT"], "--permutations",
                             env["BOOTGPU_PERMUTATIONS"], "--replicates", f"{reps.start}:{reps.stop}", "--backend",
                             env["BOOTGPU_BACKEND"], "--focus", env["BOOTGPU_FOCUS"], "--memory-budget",
                             env["BOOTGPU_MEMORY_BUDGET"], *env["BOOTGPU_RUN_ARGS"].split())  # fmt: skip

    def merge_commands(self) -> list[list[str]]:
        """What the merge job runs: `bootgpu merge`, then with --permutations `bootgpu null
        --gather-only` (the replicates into null.h5, then p and q; on NumPy, computing nothing)."""
        env = self.env
        cmds = [self._bootgpu("merge", env["BOOTGPU_OUT"])]
        if self.null is not None:
            cmds.append(self._bootgpu("null", "--expr", env["BOOTGPU_EXPR"], "--out", env["BOOTGPU_OUT"],
                                      "--permutations", env["BOOTGPU_PERMUTATIONS"], "--gather-only", "--backend",
                                      "numpy", "--focus", env["BOOTGPU_FOCUS"], *env["BOOTGPU_RUN_ARGS"].split()))
        return cmds

    def env_text(self, now: str) -> str:
        """``DIR/<scheduler>/job.env``, which the job scripts source (POSIX sh)."""
        renderer = self.renderer
        return (f"# Written by `bootgpu {renderer.name} submit` at {now}: the environment of this study's "
                f"{renderer.label} jobs,\n"
                "# sourced (POSIX sh) by the job scripts next to it.  Edit with care: focus list, expression\n"
                "# and analysis options must stay those of the study (study.json).\n"
                + "".join(f"{k}={shlex.quote(v)}\n" for k, v in self.env.items()) + "export PATH\n")  # fmt: skip

    def focus_text(self) -> str:
        """``DIR/<scheduler>/focus.txt``: explicit row forms, since gene ids may look like numbers."""
        return "".join(f"#{g}\n" for g in self.study.focus)

    def record(self) -> dict:
        """The settings ``DIR/<scheduler>/study.json`` keeps of this submission."""
        s = self.study
        return {"scheduler": self.renderer.name, "expr": str(s.expr), "out": str(s.out),
                "n_genes": s.n_genes, "n_samples": s.n_samples, "n_focus": len(s.focus), "tasks": self.tasks,
                "analysis": s.cfg.as_dict(), **self.renderer.record(self.request), "backend": self.backend,
                "run_budget": self.request.run_budget,
                **({"permutations": self.null.permutations, "replicates_per_task": self.null.per_task,
                    "null_tasks": self.null.tasks} if self.null else {})}  # fmt: skip


def _job_env(args: argparse.Namespace, study: StudyInput, files: ClusterFiles, tasks: int, backend: str,
             request: TaskRequest, python: str, path: str) -> dict[str, str]:
    """What the job scripts read (the variables bootgpu-task.sh lists); the analysis options
    forwarded to `bootgpu run` come from their definitions (``options.RUN_FORWARDED``)."""
    return {
        "BOOTGPU_PYTHON": python,
        "PATH": path,
        "BOOTGPU_EXPR": str(study.expr),
        "BOOTGPU_OUT": str(study.out),
        "BOOTGPU_FOCUS": f"@{files.focus_list}",
        "BOOTGPU_TASKS": str(tasks),
        "BOOTGPU_BACKEND": backend,
        "BOOTGPU_MEMORY_BUDGET": str(request.run_budget),
        "BOOTGPU_RUN_ARGS": " ".join(options_argv(RUN_FORWARDED, args, joined=True)),
        "BOOTGPU_SETUP": args.job_setup or "",
    }


def _null_env(null: NullPlan | None) -> dict[str, str]:
    """What the task script's null mode and the merge script read (none without --permutations)."""
    if null is None:
        return {}
    return {"BOOTGPU_PERMUTATIONS": str(null.permutations), "BOOTGPU_REPLICATES_PER_TASK": str(null.per_task),
            "BOOTGPU_NULL_TASKS": str(null.tasks)}  # fmt: skip
