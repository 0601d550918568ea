"""Grid Engine: `bootgpu sge submit` (a study as one array job plus a merge job) and
`bootgpu status DIR` (progress of a study).

A study directory DIR holds, besides what `bootgpu run --shard` and `bootgpu merge` write
(``parts/``, ``shards/``, ``results.h5``, ``rewiring_hubs.tsv``), a folder ``DIR/sge/``:

- ``bootgpu-cpu.sh`` or ``bootgpu-gpu.sh`` and ``bootgpu-merge.sh``: copies of the job scripts in
  the project's ``sge/`` folder, their ``#$`` resource lines set to what was submitted, so that
  ``qsub`` of a copy by hand asks for the same resources;
- ``job.env``: the jobs' environment (interpreter, PATH, input, options), sourced by the scripts;
- ``focus.txt``: the study's focus genes as 0-based row indices, one per line;
- ``study.json``: the study's settings and every submission (commands, job ids);
- ``logs/``: one log per array task and one for the merge.

Memory: Grid Engine's ``h_vmem`` is per slot and becomes ``ulimit -v`` = h_vmem x slots for the
job.  Each task asks for the planner's predicted peak at ``--memory-budget`` plus the process's
overhead (``planner.job_memory_request``), plus room for BLAS threads on extra slots (and
``--cuda-vmem`` on GPU queues), divided over the slots and rounded up to MiB.  The run is then told
``--memory-budget`` = what that request leaves after those overheads, so it plans within it.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from bootgpu.errors import BootgpuError
from bootgpu.planner import PROCESS_OVERHEAD_BYTES, format_bytes, job_memory_request, parse_size

SGE_DIR = "sge"  # DIR/sge: scripts, job.env, focus.txt, study.json, logs/
LOGS_DIR = "logs"
STUDY_FILE = "study.json"
ENV_FILE = "job.env"
FOCUS_FILE = "focus.txt"
TASK_SCRIPTS = {"cpu": "bootgpu-cpu.sh", "gpu": "bootgpu-gpu.sh"}
MERGE_SCRIPT = "bootgpu-merge.sh"
DEFAULT_QUEUES = {"cpu": "cpu.q", "gpu": "gpu.q"}
DEFAULT_BACKENDS = {"cpu": "numpy", "gpu": "cupy"}
DEFAULT_PE = "smp"
DEFAULT_RUNTIME = "24:00:00"
DEFAULT_BUDGET = "4G"
DEFAULT_GENES_PER_TASK = 50
DEFAULT_MERGE_VMEM = "4G"
STATUS_TASK_LINES = 40  # `bootgpu status` lists every task up to this many, else a summary
# Virtual memory each extra BLAS thread maps (OpenBLAS buffers and stack): measured 80 MiB per
# thread with NumPy's OpenBLAS 0.3.31; rounded up.  The job scripts run one thread per slot.
THREAD_VMEM_BYTES = 128 * 2**20


# --- sizes and times ----------------------------------------------------------------------------

def sge_size(n_bytes: int) -> str:
    """Bytes as a Grid Engine memory value, rounded up to whole MiB ('1400M', '4G')."""
    mib = max(1, math.ceil(n_bytes / 2**20))
    return f"{mib // 1024}G" if mib % 1024 == 0 else f"{mib}M"


def check_runtime(text: str) -> str:
    if not re.fullmatch(r"\d+(:\d{1,2}){0,2}", text or ""):
        raise BootgpuError(f"--runtime must be H:M:S (or seconds), got {text!r}")
    return text


# --- the job scripts ----------------------------------------------------------------------------

def scripts_dir(explicit: str | None = None) -> Path:
    """The project's ``sge/`` folder: --scripts-dir, $BOOTGPU_SGE_SCRIPTS, the source checkout
    this package was imported from (an editable install), or ``<prefix>/share/bootgpu/sge`` where
    a regular install puts the scripts (pyproject's data-files)."""
    candidates = []
    if explicit:
        candidates.append(Path(explicit))
    elif os.environ.get("BOOTGPU_SGE_SCRIPTS"):
        candidates.append(Path(os.environ["BOOTGPU_SGE_SCRIPTS"]))
    else:
        candidates.append(Path(__file__).resolve().parent.parent / SGE_DIR)
        candidates.append(Path(sys.prefix) / "share" / "bootgpu" / SGE_DIR)
    for cand in candidates:
        if all((cand / name).is_file() for name in (*TASK_SCRIPTS.values(), MERGE_SCRIPT)):
            return cand
    raise BootgpuError(
        f"Grid Engine job scripts not found in {candidates[0]}; pass --scripts-dir (or set "
        f"BOOTGPU_SGE_SCRIPTS) to the sge/ folder of the bootgpu source"
    )


def set_directives(text: str, directives: dict[str, str | None]) -> str:
    """Set the script's ``#$ -OPT value`` lines: each key of ``directives`` ('-q', '-pe', or '-l NAME'
    for the line requesting resource NAME) gets the given value ('cpu.q', 'smp 4', 'h_vmem=2G'),
    or its line is dropped for None."""
    lines = text.splitlines(keepends=True)
    out = []
    for line in lines:
        m = re.match(r"#\$ (-l (\w+)=|-(\w+)\s)", line)
        if m:
            key = f"-l {m[2]}" if m[2] else f"-{m[3]}"
            if key in directives:
                value = directives[key]
                if value is None:
                    continue
                line = f"#$ {key.split()[0]} {value}\n"
        out.append(line)
    return "".join(out)


# --- study directory ----------------------------------------------------------------------------

def study_paths(out: Path) -> dict[str, Path]:
    sge = out / SGE_DIR
    return {"sge": sge, "logs": sge / LOGS_DIR, "study": sge / STUDY_FILE, "env": sge / ENV_FILE,
            "focus": sge / FOCUS_FILE}  # fmt: skip


def read_study(out: Path) -> dict | None:
    path = study_paths(out)["study"]
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BootgpuError(f"{path}: cannot read: {exc}") from None


def _write_text(path: Path, text: str, mode: int = 0o644) -> None:
    from bootgpu.atomic import atomic_write_text

    atomic_write_text(path, text)
    path.chmod(mode)


def job_name(out: Path, kind: str) -> str:
    """A Grid Engine job name unique to the study directory ('bootgpu_NAME_1a2b3c')."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", out.name)[:24] or "study"
    digest = hashlib.sha1(str(out).encode()).hexdigest()[:6]
    return f"{kind}_{base}_{digest}"


def shard_done(out: Path, task: int, tasks: int) -> bool:
    from bootgpu.layout import StudyLayout

    return StudyLayout(out).shard(task, tasks).is_file()


# --- qstat --------------------------------------------------------------------------------------

def qstat_jobs() -> dict[int, list[tuple[str, str]]] | None:
    """Live jobs of all users from ``qstat``: job id -> [(state, tasks or '')]; None if qstat is
    not available or does not answer."""
    if shutil.which("qstat") is None:
        return None
    try:
        proc = subprocess.run(["qstat", "-u", "*"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    jobs: dict[int, list[tuple[str, str]]] = {}
    for line in proc.stdout.splitlines():
        f = line.split()
        if len(f) < 8 or not f[0].isdigit():
            continue
        has_queue = "@" in f[7]
        task_col = 9 if has_queue else 8
        jobs.setdefault(int(f[0]), []).append((f[4], f[task_col] if len(f) > task_col else ""))
    return jobs


STATE_WORDS = {"r": "running", "t": "starting", "qw": "pending", "hqw": "waiting for its hold",
               "Eqw": "in error (qstat -j shows why; qmod -cj clears it)", "dr": "being deleted"}


def describe_states(entries: list[tuple[str, str]]) -> str:
    """'running tasks 1,2; pending tasks 3' from qstat's (state, tasks) rows of one job."""
    grouped: dict[str, list[str]] = {}
    for state, tasks in entries:
        grouped.setdefault(state, []).append(tasks)
    parts = []
    for state, tasks in grouped.items():
        word = STATE_WORDS.get(state, f"state {state}")
        listed = ",".join(t for t in tasks if t)
        parts.append(f"{word} tasks {listed}" if listed else word)
    return "; ".join(parts)


# --- bootgpu sge submit -------------------------------------------------------------------------

def task_request(n_genes: int, n_samples: int, k_low: int, k_high: int, n_bootstrap: int, budget: int,
                 slots: int, cuda: int = 0, working_set_bytes: int | None = None) -> dict:
    """h_vmem per slot and the run's budget for a task planned with ``budget`` (see the module
    docstring); `bootgpu plan` prints the same request."""
    if working_set_bytes is None:  # the backend the task runs: NumPy on CPU queues, CuPy (no cap) on GPU ones
        from bootgpu.backends.numpy_backend import NumpyBackend

        working_set_bytes = 0 if cuda else NumpyBackend.working_set_bytes
    peak_plus_overhead = job_memory_request(n_genes, n_samples, k_low, k_high, n_bootstrap, budget, slots,
                                            working_set_bytes)
    extra = THREAD_VMEM_BYTES * (slots - 1)
    need = peak_plus_overhead + extra + cuda
    per_slot_mib = math.ceil(need / slots / 2**20)
    total = per_slot_mib * 2**20 * slots
    run_budget = total - PROCESS_OVERHEAD_BYTES - extra - cuda - n_genes * n_samples * 8  # the matrix is loaded first
    return {"budget": budget, "need": need, "per_slot": per_slot_mib * 2**20, "total": total,
            "run_budget": run_budget, "cuda": cuda}  # fmt: skip


def _task_request(args, n_genes: int, n_samples: int, k_low: int, k_high: int, n_bootstrap: int) -> dict:
    budget = parse_size(args.memory_budget, "--memory-budget")
    cuda = parse_size(args.cuda_vmem, "--cuda-vmem", sge=True) if args.queue_type == "gpu" else 0
    return task_request(n_genes, n_samples, k_low, k_high, n_bootstrap, budget, args.slots, cuda,
                        0 if args.queue_type == "gpu" else None)


def cmd_submit(args) -> int:
    from bootgpu.config import AnalysisConfig
    from bootgpu.options import read_input
    from bootgpu.core.draws import RNG_ALGORITHM
    from bootgpu.identity import StudyIdentity
    from bootgpu.layout import StudyLayout, check_out_dir
    from bootgpu.study import claim_study, other_study_error, parse_focus, recorded_identity, shard_slice

    if args.slots < 1:
        raise BootgpuError(f"--slots must be at least 1, got {args.slots}")
    if args.slots > 1 and not args.pe:
        raise BootgpuError("--slots above 1 needs a parallel environment (--pe NAME)")
    runtime = check_runtime(args.runtime)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.gpu_resource or ""):
        raise BootgpuError(f"--gpu-resource must be a complex name like gpu, got {args.gpu_resource!r}")
    expr_path = Path(args.expr).resolve()
    out = Path(args.out).resolve()
    for label, path in (("--expr", expr_path), ("--out", out)):
        if re.search(r"[,:\s]", str(path)):
            raise BootgpuError(f"{label} {path}: Grid Engine options cannot carry a path with a comma, colon or space")
    check_out_dir(out)
    expr = read_input(args, expr_path)
    cfg = AnalysisConfig.from_args(args)
    k_low, k_high = cfg.validate(expr.n_samples)
    focus = parse_focus(args.focus or "all", expr)
    if args.genes_per_task is not None and args.genes_per_task < 1:
        raise BootgpuError(f"--genes-per-task must be at least 1, got {args.genes_per_task}")
    if args.tasks is not None:
        tasks = args.tasks
    else:
        tasks = math.ceil(len(focus) / (args.genes_per_task or DEFAULT_GENES_PER_TASK))
    if not 1 <= tasks <= len(focus):
        raise BootgpuError(f"--tasks must be between 1 and the {len(focus)} focus genes, got {tasks}")
    per_task = [len(shard_slice(focus, (k, tasks))) for k in (1, tasks)]

    req = _task_request(args, expr.n_genes, expr.n_samples, k_low, k_high, cfg.n_bootstrap)
    merge_vmem = parse_size(args.merge_vmem, "--merge-vmem", sge=True)
    if args.max_vmem:
        limit = parse_size(args.max_vmem, "--max-vmem", sge=True)
        if req["per_slot"] > limit:
            raise BootgpuError(
                f"each task needs {format_bytes(req['need'])} ({expr.n_genes} genes x {expr.n_samples} samples, "
                f"B={cfg.n_bootstrap}, --memory-budget {args.memory_budget}"
                + (f", --cuda-vmem {args.cuda_vmem}" if req["cuda"] else "")
                + f"): h_vmem={sge_size(req['per_slot'])} per slot x {args.slots} slot(s), over --max-vmem "
                f"{args.max_vmem} per slot; lower --memory-budget, add --slots, or ask for a queue that allows more"
            )
        if merge_vmem > limit:
            raise BootgpuError(f"--merge-vmem {args.merge_vmem} is over --max-vmem {args.max_vmem}")

    backend = args.backend or DEFAULT_BACKENDS[args.queue_type]
    queue = args.queue if args.queue is not None else DEFAULT_QUEUES[args.queue_type]
    merge_queue = args.merge_queue if args.merge_queue is not None else (queue if args.queue_type == "cpu" else "")
    source = scripts_dir(args.scripts_dir)
    paths = study_paths(out)
    focus_text = "".join(f"#{g}\n" for g in focus)  # explicit row forms: gene ids may look like numbers
    settings = {"expr": str(expr_path), "out": str(out), "n_genes": expr.n_genes, "n_samples": expr.n_samples,
                "n_focus": len(focus), "tasks": tasks, "analysis": cfg.as_dict()}  # fmt: skip

    # An existing study in DIR: the same study only (its identity: input, parameters, focus genes),
    # no jobs still alive, only unfinished tasks again.  Checked before anything is written or queued.
    layout = StudyLayout(out)
    identity = StudyIdentity.of(expr, cfg, focus, RNG_ALGORITHM)
    recorded = recorded_identity(layout)
    if not args.overwrite:
        if recorded is not None and (diff := recorded[0].difference(identity)):
            raise other_study_error(out, diff)
        other = {n for _, n in layout.shards() if n != tasks}
        if other:
            raise BootgpuError(f"{layout.shards_dir} holds shards of a {min(other)}-task split; submit with --tasks {min(other)}")
    old = read_study(out)
    if old and not args.dry_run:
        live = qstat_jobs()
        ids = [j for s in old.get("submissions", []) for j in (s.get("array_job"), s.get("merge_job")) if j]
        alive = sorted(j for j in ids if live and j in live)
        if alive:
            raise BootgpuError(f"{out}: jobs {', '.join(map(str, alive))} of this study are still queued or running; "
                               f"wait for them or qdel them first (bootgpu status {out})")
    if claim_study(layout, identity, focus, overwrite=args.overwrite, log=print):
        old = None  # --overwrite discarded the study, its submissions with it
    todo = [k for k in range(1, tasks + 1) if not shard_done(out, k, tasks)]
    if layout.results.is_file() and not todo:
        raise BootgpuError(f"{out}: the study is complete and merged (results.h5); nothing to submit")

    # Write the scripts, the environment and the focus list.
    paths["logs"].mkdir(parents=True, exist_ok=True)
    task_script = paths["sge"] / TASK_SCRIPTS[args.queue_type]
    merge_script = paths["sge"] / MERGE_SCRIPT
    vmem, rt = sge_size(req["per_slot"]), runtime
    pe = f"{args.pe} {args.slots}" if args.pe else None
    gpu_request = f"{args.gpu_resource}=1" if args.queue_type == "gpu" else None
    _write_text(task_script, set_directives((source / TASK_SCRIPTS[args.queue_type]).read_text(), {
        "-q": queue or None, "-pe": pe, "-l h_vmem": f"h_vmem={vmem}", "-l h_rt": f"h_rt={rt}",
        "-l gpu": gpu_request}), 0o755)  # fmt: skip
    _write_text(merge_script, set_directives((source / MERGE_SCRIPT).read_text(), {
        "-q": merge_queue or None, "-l h_vmem": f"h_vmem={sge_size(merge_vmem)}", "-l h_rt": f"h_rt={rt}"}), 0o755)  # fmt: skip
    _write_text(paths["focus"], focus_text)
    run_args = [f"--{k.replace('_', '-')}={v}" for k, v in cfg.as_dict().items()]
    if args.samples_in_rows:
        run_args.append("--samples-in-rows")
    env = {
        "BOOTGPU_PYTHON": sys.executable,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BOOTGPU_EXPR": str(expr_path),
        "BOOTGPU_OUT": str(out),
        "BOOTGPU_FOCUS": f"@{paths['focus']}",
        "BOOTGPU_TASKS": str(tasks),
        "BOOTGPU_BACKEND": backend,
        "BOOTGPU_MEMORY_BUDGET": str(req["run_budget"]),
        "BOOTGPU_RUN_ARGS": " ".join(run_args),
        "BOOTGPU_SETUP": args.job_setup or "",
    }
    if args.queue_type == "gpu":
        env["BOOTGPU_GPU_GRANT_VAR"] = f"SGE_HGR_{args.gpu_resource}"
    now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    _write_text(paths["env"], (
        f"# Written by `bootgpu sge submit` at {now}: the environment of this study's Grid Engine jobs,\n"
        "# sourced (POSIX sh) by the job scripts next to it.  Edit with care: focus list, expression\n"
        "# and analysis options must stay those of the study (study.json).\n"
        + "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()) + "export PATH\n"))  # fmt: skip

    # The qsub command lines.
    array_name, merge_name = job_name(out, "bootgpu"), job_name(out, "merge")
    common = ["-S", "/bin/sh", "-wd", str(out), "-o", str(paths["logs"]), "-j", "y",
              "-v", f"BOOTGPU_JOB_ENV={paths['env']}"]  # fmt: skip
    extra = shlex.split(args.qsub_args or "")
    array_cmd = ["qsub", "-terse", "-N", array_name, *common]
    if queue:
        array_cmd += ["-q", queue]
    if pe:
        array_cmd += ["-pe", args.pe, str(args.slots)]
    array_cmd += ["-l", f"h_vmem={vmem}", "-l", f"h_rt={rt}"]
    if gpu_request:
        array_cmd += ["-l", gpu_request]
    array_range = f"{todo[0]}-{todo[-1]}" if todo else None
    array_cmd += ["-t", array_range or "1", *extra, str(task_script)]
    merge_cmd = ["qsub", "-terse", "-N", merge_name, *common]
    if merge_queue:
        merge_cmd += ["-q", merge_queue]
    merge_cmd += ["-l", f"h_vmem={sge_size(merge_vmem)}", "-l", f"h_rt={rt}"]
    if todo:
        merge_cmd += ["-hold_jid", array_name]
    merge_cmd += [*extra, str(merge_script)]
    commands = ([array_cmd] if todo else []) + [merge_cmd]

    print(f"study {out}: {len(focus)} focus genes of {expr.n_genes} genes x {expr.n_samples} samples, "
          f"{tasks} tasks of {per_task[0] if per_task[0] == per_task[-1] else f'{per_task[-1]}-{per_task[0]}'} genes"
          + (f"; tasks {array_range} to run ({tasks - len(todo)} already done"
             + (", those inside the range exit at once)" if len(todo) < len(range(todo[0], todo[-1] + 1)) else ")")
             if todo and len(todo) < tasks else "")
          + ("; all shards done, merge only" if not todo else ""))  # fmt: skip
    print(f"each task: backend {backend}, planner peak + overhead at --memory-budget {args.memory_budget}"
          + (f" + --cuda-vmem {args.cuda_vmem}" if req["cuda"] else "")
          + f" = {format_bytes(req['need'])} -> h_vmem={vmem} per slot x {args.slots} slot(s), runs with --memory-budget "
          f"{req['run_budget']} ({format_bytes(req['run_budget'])})")  # fmt: skip
    print(f"wrote {task_script}, {merge_script}, {paths['env']}, {paths['focus']}")
    for cmd in commands:
        print(shlex.join(cmd))
    record = dict(old or {})
    record.update(settings)
    record.update({"bootgpu_submit": submit_command(args, tasks),
                   "queue_type": args.queue_type, "backend": backend, "h_vmem": vmem, "slots": args.slots,
                   "run_budget": req["run_budget"]})  # fmt: skip
    record.setdefault("submissions", [])
    if args.dry_run:
        _write_text(paths["study"], json.dumps(record, indent=1) + "\n")
        print("dry run: nothing submitted")
        return 0

    if shutil.which("qsub") is None:
        raise BootgpuError("qsub not found on PATH: is this a Grid Engine submit host? (--dry-run writes the scripts only)")
    submission = {"time": now, "tasks": array_range, "commands": [shlex.join(c) for c in commands]}
    array_id = _qsub(array_cmd) if todo else None
    submission["array_job"] = array_id
    try:
        merge_id = _qsub(merge_cmd)
    except BootgpuError as exc:
        record["submissions"].append(submission)
        _write_text(paths["study"], json.dumps(record, indent=1) + "\n")
        raise BootgpuError(f"array job {array_id} submitted, but the merge job failed: {exc}") from None
    submission["merge_job"] = merge_id
    record["submissions"].append(submission)
    _write_text(paths["study"], json.dumps(record, indent=1) + "\n")
    if array_id:
        print(f"submitted array job {array_id} (tasks {array_range}) and merge job {merge_id} (runs after {array_id})")
    else:
        print(f"submitted merge job {merge_id}")
    print(f"watch:   qstat -u {shlex.quote(getpass.getuser())}   or   bootgpu status {out}")
    print(f"logs:    {paths['logs']}/")
    print(f"results: {out / 'results.h5'} and {out / 'rewiring_hubs.tsv'} once job {merge_id} has run")
    return 0


def submit_command(args, tasks: int) -> list[str]:
    """The `bootgpu sge submit` command that submits this study again, every option explicit."""
    cmd = ["bootgpu", "sge", "submit", "--expr", str(Path(args.expr).resolve()), "--out", str(Path(args.out).resolve()),
           "--queue-type", args.queue_type, "--tasks", str(tasks)]  # fmt: skip
    for option in ("queue", "merge_queue", "pe", "slots", "runtime", "max_vmem", "merge_vmem", "cuda_vmem",
                   "gpu_resource", "backend", "qsub_args", "job_setup", "scripts_dir", "focus", "memory_budget",
                   "low_frac", "high_frac", "n_bootstrap", "bootstrap_frac", "seed", "fdr_alpha", "ci_alpha",
                   "edge_selection"):  # fmt: skip
        value = getattr(args, option)
        if option == "focus":  # the study's own copy: same genes, from any working directory
            value = f"@{study_paths(Path(args.out).resolve())['focus']}"
        elif option == "scripts_dir" and value:
            value = str(Path(value).resolve())
        if value is not None:
            cmd += [f"--{option.replace('_', '-')}", str(value)]
    if args.samples_in_rows:
        cmd.append("--samples-in-rows")
    return cmd


def _qsub(cmd: list[str]) -> int:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BootgpuError(f"qsub failed: {exc}") from None
    first = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else ""
    match = re.match(r"(\d+)", first)
    if proc.returncode != 0 or not match:
        why = " ".join((proc.stderr or proc.stdout).split()) or f"exit code {proc.returncode}"
        raise BootgpuError(f"qsub refused the job: {why}")
    return int(match[1])


# --- bootgpu status -----------------------------------------------------------------------------

def study_progress(out: Path) -> dict:
    """What is done: focus genes, per shard (when the split is known), merged or not.

    Every shard and part file is checked against the study's identity (study.json): one from
    another study counts as not done and is listed under ``foreign``.  Only /meta attributes are
    read, one file at a time: memory does not grow with the study beyond its focus list.
    """
    from bootgpu.layout import StudyLayout
    from bootgpu.study import file_identity_difference, recorded_identity, shard_slice

    layout = StudyLayout(out)
    study = read_study(out)
    recorded = recorded_identity(layout)
    identity, focus = recorded if recorded else (None, None)
    foreign: list[tuple[Path, str]] = []

    def ours(path: Path) -> bool:
        diff = file_identity_difference(path, identity) if identity is not None else None
        if diff:
            foreign.append((path, diff))
        return not diff

    shard_files = {key: p for key, p in layout.shards().items() if ours(p)}
    parts = {g for g, p in layout.parts().items() if ours(p)}
    tasks = study.get("tasks") if study else None
    if tasks is None:
        totals = {n for _, n in shard_files}
        tasks = totals.pop() if len(totals) == 1 else None
    shards = []
    if focus is not None and tasks:
        for k in range(1, tasks + 1):
            genes = shard_slice(focus, (k, tasks))
            written = (k, tasks) in shard_files
            done = len(genes) if written else sum(g in parts for g in genes)
            shards.append({"task": k, "genes": len(genes), "done": done, "shard_file": written})
    merged = layout.results.is_file() and ours(layout.results)
    if shards:
        n_done = sum(s["done"] for s in shards)
    elif focus is not None:
        n_done = len(focus) if merged else len(parts & set(focus))
    else:
        n_done = len(parts)
    return {"focus": focus, "tasks": tasks, "shards": shards, "done": n_done, "parts": len(parts),
            "merged": merged, "study": study, "foreign": foreign}  # fmt: skip


def cmd_status(args) -> int:
    out = Path(args.dir).resolve()
    if not out.is_dir():
        raise BootgpuError(f"{out}: no such study directory")
    p = study_progress(out)
    if p["focus"] is None and not p["merged"] and not p["parts"]:
        raise BootgpuError(f"{out}: not a bootgpu study (no study.json, shards, parts or results.h5)")
    total = len(p["focus"]) if p["focus"] is not None else None
    head = f"study {out}: "
    if total is not None:
        head += f"{p['done']} of {total} focus genes done ({100 * p['done'] / max(total, 1):.0f}%)"
    else:
        head += f"{p['done']} focus genes done"
    if p["tasks"]:
        n_shards = sum(s["shard_file"] for s in p["shards"])
        head += f", {n_shards} of {p['tasks']} shards written"
    print(head)
    many = len(p["shards"]) > STATUS_TASK_LINES  # then only the tasks under way get a line each
    for s in p["shards"]:
        if s["shard_file"]:
            state = "done"
        elif s["done"]:
            state = f"{s['done']} done (running, or interrupted: a rerun resumes from parts/)"
        else:
            state = "not started"
        if not many or state not in ("done", "not started"):
            print(f"  task {s['task']:>4}/{p['tasks']}: {s['genes']:>5} genes  {state}")
    if many:
        n_written = sum(s["shard_file"] for s in p["shards"])
        n_idle = sum(not s["shard_file"] and not s["done"] for s in p["shards"])
        print(f"  {n_written} tasks done, {n_idle} tasks not started")
    merged_line = "merged: yes -> " + str(out / "results.h5") if p["merged"] else "merged: no"
    print(merged_line)
    for path, diff in p["foreign"]:
        print(f"not this study's: {path} ({diff}); remove it, the task that wrote it runs again")

    study = p["study"]
    if study and study.get("submissions"):
        last = study["submissions"][-1]
        live = qstat_jobs()
        for kind in ("array_job", "merge_job"):
            jid = last.get(kind)
            if jid is None:
                continue
            label = "array" if kind == "array_job" else "merge"
            if live is None:
                print(f"job {jid} ({label}): qstat not available")
            elif jid in live:
                print(f"job {jid} ({label}): {describe_states(live[jid])}")
            else:
                print(f"job {jid} ({label}): finished (qacct -j {jid} has its exit status)")
        alive = live is not None and any(last.get(k) in live for k in ("array_job", "merge_job"))
        if not p["merged"] and not alive and live is not None:
            print("no job of this study is queued or running; to finish it, submit again (only unfinished "
                  "tasks run, then the merge):")
            print("  " + shlex.join(study.get("bootgpu_submit", ["bootgpu", "sge", "submit", "..."])))
    if study:
        print(f"logs: {study_paths(out)['logs']}/")
    return 0


# --- the command line ---------------------------------------------------------------------------

def register_commands(subparsers) -> None:
    """Add ``sge submit`` and ``status`` to the CLI's subparsers."""
    from bootgpu.backends import BACKEND_NAMES
    from bootgpu.options import add_analysis_options, add_input_options
    from bootgpu.study import FOCUS_HELP

    sge = subparsers.add_parser("sge", help="run a study on a Grid Engine cluster (SGE/UGE/OGS)")
    sge_sub = sge.add_subparsers(dest="sge_command", required=True)
    sub = sge_sub.add_parser(
        "submit", help="submit a study as an array job over shards of focus genes, then a merge job",
        description="Submit a study as one Grid Engine array job (task K runs `bootgpu run --shard K/N`) and "
                    "a merge job that waits for it (-hold_jid).  Run it again with the same options to "
                    "resubmit what did not finish.",
    )  # fmt: skip
    add_input_options(sub, what="expression matrix (TSV/CSV(.gz) or HDF5), readable from the nodes")
    sub.add_argument("--out", required=True, help="study directory, on a file system shared with the nodes")
    sub.add_argument("--queue-type", required=True, choices=("cpu", "gpu"),
                     help="cpu: --backend numpy; gpu: --backend cupy, -l gpu=1")  # fmt: skip
    n = sub.add_mutually_exclusive_group()
    n.add_argument("--tasks", type=int, help="array tasks (shards) N")
    n.add_argument("--genes-per-task", type=int, help=f"focus genes per task (default {DEFAULT_GENES_PER_TASK})")
    sub.add_argument("--queue", help="queue for the tasks (-q; default cpu.q or gpu.q; '' for none)")
    sub.add_argument("--merge-queue", help="queue for the merge job (default: --queue on cpu, none on gpu)")
    sub.add_argument("--pe", default=DEFAULT_PE, help="parallel environment for the slots (default %(default)s; '' for none)")
    sub.add_argument("--slots", type=int, default=1, help="slots (threads) per task (default %(default)s)")
    sub.add_argument("--runtime", default=DEFAULT_RUNTIME, help="h_rt per task and for the merge, H:M:S (default %(default)s)")
    sub.add_argument("--max-vmem", help="largest h_vmem per slot the queue allows (e.g. 16G); refuse to submit above it")
    sub.add_argument("--merge-vmem", default=DEFAULT_MERGE_VMEM, help="h_vmem of the merge job (default %(default)s)")
    sub.add_argument("--cuda-vmem", default="0",
                     help="gpu queue: virtual memory the CUDA driver maps, added to h_vmem (default %(default)s; see README)")  # fmt: skip
    sub.add_argument("--gpu-resource", default="gpu",
                     help="gpu queue: the site's GPU complex, requested as -l NAME=1 (default %(default)s)")  # fmt: skip
    sub.add_argument("--backend", choices=BACKEND_NAMES, help="backend of the tasks (default numpy on cpu, cupy on gpu)")
    sub.add_argument("--qsub-args", help="more qsub options for both jobs, e.g. \"-P project -m ea\"")
    sub.add_argument("--job-setup", help="shell command the jobs run first, e.g. \"module load cuda/12.4\"")
    sub.add_argument("--scripts-dir", help="folder with the job scripts (default: the sge/ folder of the bootgpu source)")
    sub.add_argument("--dry-run", action="store_true", help="write the scripts and print the qsub command lines; submit nothing")
    sub.add_argument("--focus", help=FOCUS_HELP)
    sub.add_argument("--overwrite", action="store_true",
                     help="discard a study already in --out (other parameters, input or focus genes) before submitting")
    sub.add_argument("--memory-budget", default=DEFAULT_BUDGET,
                     help="what each task plans for (device memory on gpu), e.g. 6G (default %(default)s)")  # fmt: skip
    add_analysis_options(sub)
    sub.set_defaults(func=cmd_submit)

    status = subparsers.add_parser("status", help="progress of a study: focus genes done, per shard, merged or not")
    status.add_argument("dir")
    status.set_defaults(func=cmd_status)


__all__ = ["register_commands", "cmd_submit", "cmd_status", "study_progress", "parse_size", "sge_size"]
