"""`bootgpu slurm submit` and the scheduler-neutral submission model without a scheduler.

The same study built into one model and rendered by both renderers: the same jobs, tasks, resources
(memory from the planner, cores, GPUs, run time), dependency of the merge on the arrays and job
environment, each in its scheduler's words (``#$`` / ``#SBATCH`` lines and qsub / sbatch arguments,
-hold_jid by name / afterok by id).  Then Slurm's own: exact --array lists with a throttle,
--sbatch-extra, bad options as one-line errors, the task script run by sh with a stand-in
interpreter, squeue's answer, and the submit / status / resubmit flow against stand-in sbatch,
squeue and scancel (a merge left pending by afterok is cancelled and replaced).
The real Slurm runs are in test_slurm_integration.py."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bootgpu.cli import build_parser, main
from bootgpu.cluster.model import JobSpec, Resources, split_tasks
from bootgpu.cluster.scheduler import task_numbers
from bootgpu.cluster.submit import read_study_input
from bootgpu.sge import submission as sge
from bootgpu.slurm import sbatch
from bootgpu.slurm import submission as slurm
from bootgpu.slurm.commands import SUBMIT_OPTIONS, submit_command
from bootgpu.study.layout import MERGE_SCRIPT, TASK_SCRIPT, StudyLayout

ROOT = Path(__file__).resolve().parent.parent
N_GENES = 40
FAST = ["--n-bootstrap", "50", "--fdr-alpha", "0.2"]


@pytest.fixture(scope="module")
def expr_tsv(tmp_path_factory, write_demo_tsv):
    return write_demo_tsv(tmp_path_factory.mktemp("slurm-data") / "expr40.tsv", N_GENES)


def _main(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    err = "".join(line for line in captured.err.splitlines(keepends=True) if not line.startswith("bootgpu: warning:"))
    return code, captured.out, err


def _build(module, argv, shards=(), replicates_done=()):
    """The Submission `bootgpu {sge,slurm} submit ARGV` builds, through the command's steps."""
    args = build_parser().parse_args(argv)
    module.check_options(args)
    study = read_study_input(args)
    tasks = split_tasks(args, len(study.focus))
    sub = module.Submission.build(args, study, tasks, module.request_for(args, study), shards, sys.executable,
                                  "/usr/bin:/bin", replicates_done)  # fmt: skip
    return sub, args


def _pair(expr_tsv, tmp_path, common, sge_site, slurm_site, **kw):
    """The same study through both commands (into the same directory: the model is the same)."""
    base = ["--expr", str(expr_tsv), "--out", str(tmp_path / "study"), *common, *FAST]
    return (_build(sge, ["sge", "submit", *base, *sge_site], **kw)[0],
            _build(slurm, ["slurm", "submit", *base, *slurm_site], **kw)[0])  # fmt: skip


def _value(cmd: list[str], flag: str) -> list[str]:
    """Every value of sbatch's ``--flag=value`` in a command line."""
    return [w.split("=", 1)[1] for w in cmd if w.startswith(flag + "=")]


def _qsub(cmd: list[str], flag: str) -> list[str]:
    return [cmd[i + 1] for i, w in enumerate(cmd[:-1]) if w == flag]


# --- one model, two renderers --------------------------------------------------------------------

def test_both_renderers_render_the_same_cpu_model(expr_tsv, tmp_path):
    common = ["--tasks", "3", "--focus", "#0:12", "--memory-budget", "1G", "--permutations", "5",
              "--replicates-per-task", "2", "--job-setup", "module load x"]  # fmt: skip
    g, s = _pair(expr_tsv, tmp_path, common, ["--queue-type", "cpu", "--slots", "2", "--runtime", "2:30:00"],
                 ["--partition", "cpu", "--cpus-per-task", "2", "--time", "2:30:00"])  # fmt: skip
    # the model: the same tasks, memory request, null split and environment (but the header)
    assert g.todo == s.todo == (1, 2, 3) and g.null.todo == s.null.todo == (1, 2, 3)
    assert g.request == s.request and g.request.slots == 2
    assert {k: v for k, v in g.env.items()} == dict(s.env) | {"BOOTGPU_FOCUS": f"@{tmp_path / 'study' / 'sge' / 'focus.txt'}"}
    assert s.env["BOOTGPU_FOCUS"] == f"@{tmp_path / 'study' / 'slurm' / 'focus.txt'}"
    same_focus = lambda cmds: json.loads(json.dumps(cmds).replace("/sge/focus.txt", "/slurm/focus.txt"))  # noqa: E731
    assert same_focus([g.task_command(2), g.null_task_command(3), g.merge_commands()]) == \
        [s.task_command(2), s.null_task_command(3), s.merge_commands()]  # what each task runs: the same
    assert "Grid Engine jobs" in g.env_text("now") and "Slurm jobs" in s.env_text("now")
    # Grid Engine: h_vmem per slot, -pe, -t first-last, -hold_jid by name
    array, null, merge = g.commands()
    assert _qsub(array, "-t") == ["1-3"] and _qsub(null, "-t") == ["1-3"] and null[-1] == "null"
    assert f"h_vmem={g.request.h_vmem}" in _qsub(array, "-l") and "h_rt=2:30:00" in _qsub(array, "-l")
    assert _qsub(merge, "-hold_jid") == [f"{g.task_job.name},{g.null_job.name}"]
    # Slurm: --mem for the whole task (slots x per slot), --cpus-per-task, --array, afterok by id
    array, null, merge = s.commands({s.task_job.name: 11, s.null_job.name: 12})
    assert _value(array, "--array") == ["1-3"] and _value(null, "--array") == ["1-3"] and null[-1] == "null"
    assert _value(array, "--mem") == [s.request.total_text] and s.request.total == 2 * s.request.per_slot
    assert _value(array, "--cpus-per-task") == ["2"] and _value(array, "--time") == ["2:30:00"]
    assert _value(array, "--partition") == ["cpu"] and _value(merge, "--partition") == ["cpu"]
    assert _value(merge, "--dependency") == ["afterok:11:12"] and not _value(array, "--dependency")
    assert _value(merge, "--mem") == ["4G"] and _value(merge, "--cpus-per-task") == ["1"]
    assert _value(array, "--export") == [f"ALL,BOOTGPU_JOB_ENV={tmp_path / 'study' / 'slurm' / 'job.env'}"]
    assert _value(array, "--output") == [f"{tmp_path / 'study' / 'slurm' / 'logs'}/%x.o%A.%a"]
    assert _value(merge, "--output") == [f"{tmp_path / 'study' / 'slurm' / 'logs'}/%x.o%j"]
    # before submission the ids are placeholders naming the jobs
    assert _value(s.commands()[-1], "--dependency") == [f"afterok:<{s.task_job.name}>:<{s.null_job.name}>"]


def test_both_renderers_render_the_same_gpu_model(expr_tsv, tmp_path):
    g, s = _pair(expr_tsv, tmp_path, ["--tasks", "2", "--focus", "#0:4"], ["--queue-type", "gpu"],
                 ["--partition", "gpu", "--gres", "gpu:1"])  # fmt: skip
    assert g.backend == s.backend == "cupy" and g.request == s.request
    assert "gpu=1" in _qsub(g.commands()[0], "-l") and not any("gpu" in v for v in _qsub(g.commands()[1], "-l"))
    assert g.env["BOOTGPU_GPU_GRANT_VAR"] == "SGE_HGR_gpu" and "BOOTGPU_GPU_GRANT_VAR" not in s.env
    array, merge = s.commands()
    assert _value(array, "--gres") == ["gpu:1"] and _value(array, "--partition") == ["gpu"]
    assert not _value(merge, "--gres") and not _value(merge, "--partition")  # the merge needs no GPU
    s2 = _build(slurm, ["slurm", "submit", "--expr", str(expr_tsv), "--out", str(tmp_path / "s2"), "--tasks", "2",
                        "--focus", "#0:4", "--gpus", "a100:2", "--backend", "auto", *FAST])[0]  # fmt: skip
    assert _value(s2.commands()[0], "--gpus") == ["a100:2"] and s2.renderer.gpus == 2 and s2.backend == "auto"


def test_directives_are_the_script_lines_and_the_sbatch_arguments(expr_tsv, tmp_path):
    extra = tmp_path / "extra.sbatch"
    extra.write_text("# site extras\n#SBATCH --mail-type=END\n#SBATCH --exclusive\n\n#SBATCH --constraint avx2\n")
    s, _ = _build(slurm, ["slurm", "submit", "--expr", str(expr_tsv), "--out", str(tmp_path / "study"), "--tasks", "2",
                          "--focus", "#0:4", "--account", "lab", "--qos", "long", "--sbatch-extra", str(extra), *FAST])
    for job in (s.task_job, s.merge_job):
        text = job.script_text((ROOT / "slurm" / job.template).read_text())
        lines = [line for line in text.splitlines() if line.startswith("#SBATCH ")]
        assert sorted(set(lines) - {"#SBATCH --nodes=1", "#SBATCH --ntasks=1"}) == sorted(job.directive_lines())
        assert [line.split(" ", 1)[1] for line in job.directive_lines()] == job.directive_args()
        cmd = job.command()
        assert cmd[cmd.index(job.directive_args()[0]):][:len(job.directive_args())] == job.directive_args()
        for word in ("--mail-type=END", "--exclusive", "--constraint=avx2", "--account=lab", "--qos=long"):
            assert word in cmd and f"#SBATCH {word}" in text
        assert text.count("#SBATCH --mem=") == 1 and text.startswith("#!/bin/sh\n")
    assert "--partition" not in " ".join(s.task_job.command())  # none given: the site's default


def test_arrays_list_exactly_the_tasks_left_with_a_throttle(expr_tsv, tmp_path):
    argv = ["slurm", "submit", "--expr", str(expr_tsv), "--out", str(tmp_path / "study"), "--tasks", "6", "--focus",
            "#0:12", "--array-throttle", "2", *FAST]  # fmt: skip
    s, _ = _build(slurm, argv, shards=[(1, 6), (3, 6), (4, 6), (2, 5)])
    assert s.todo == (2, 5, 6) and s.array_range == "2,5-6"
    assert _value(s.commands()[0], "--array") == ["2,5-6%2"]
    assert task_numbers("2,5-6%2") == {2, 5, 6} and task_numbers("[3-5]") == {3, 4, 5} and task_numbers("2-6:2") == {2, 4, 6}
    assert slurm.task_list([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"
    g, _ = _build(sge, ["sge", "submit", *argv[2:6], "--queue-type", "cpu", "--tasks", "6", "--focus", "#0:12", *FAST],
                  shards=[(1, 6), (3, 6), (4, 6)])  # fmt: skip
    assert g.array_range == "2-6"  # Grid Engine: first to last, a finished task inside exits at once
    s, _ = _build(slurm, argv, shards=[(k, 6) for k in range(1, 7)])
    assert s.jobs() == [s.merge_job] and not _value(s.commands()[0], "--dependency")


def test_model_jobspecs_render_per_kind(tmp_path):
    """A JobSpec by hand through each renderer: the merge gets the merge's settings."""
    args = build_parser().parse_args(["slurm", "submit", "--expr", "x", "--out", str(tmp_path), "--partition", "p",
                                      "--merge-partition", "m", "--gres", "gpu:2"])  # fmt: skip
    renderer = slurm.SlurmRenderer(args)
    files = StudyLayout(tmp_path).cluster("slurm")
    spec = JobSpec("merge", "merge_x", MERGE_SCRIPT, files.job_script(MERGE_SCRIPT), Resources(1, 3 * 2**30, 0, "1:00:00"),
                   after=("a", "b"))  # fmt: skip
    job = renderer.render(spec, files)
    assert job.directives["--partition"] == "m" and job.directives["--gres"] is None and job.directives["--mem"] == "3G"
    assert job.command({"a": 1})[-2] == "--dependency=afterok:1:<b>"
    task = renderer.render(JobSpec("array", "t", TASK_SCRIPT, files.job_script(TASK_SCRIPT),
                                   Resources(4, 4 * 2**30, 2, "1:00:00"), (1, 2)), files)  # fmt: skip
    assert task.directives["--gres"] == "gpu:2" and task.directives["--cpus-per-task"] == "4" and task.array == "1-2"


def test_submit_command_repeats_every_option(expr_tsv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rel").mkdir()
    argv = ["slurm", "submit", "--expr", os.path.relpath(expr_tsv), "--out", "rel/study", "--genes-per-task", "3",
            "--partition", "gpu", "--gpus", "1", "--time", "1-00:00:00", "--array-throttle", "3", "--qos", "q",
            "--seed", "3", "--dry-run", "--overwrite"]  # fmt: skip
    sub, args = _build(slurm, argv)
    cmd = submit_command(args, sub)
    assert cmd[:3] == ["bootgpu", "slurm", "submit"] and "--dry-run" not in cmd and "--overwrite" not in cmd
    again = build_parser().parse_args(cmd[1:])
    out = tmp_path.resolve() / "rel" / "study"
    decided = {"expr": str(Path(expr_tsv).resolve()), "out": str(out), "tasks": sub.tasks, "genes_per_task": None,
               "focus": f"@{out / 'slurm' / 'focus.txt'}", "dry_run": False, "overwrite": False}
    assert vars(again) == {**vars(args), **decided}
    assert {o.dest for o in SUBMIT_OPTIONS} <= set(vars(again))


def test_bad_options_are_one_line_errors(expr_tsv, tmp_path, capsys):
    base = ["slurm", "submit", "--expr", str(expr_tsv), "--out", str(tmp_path / "s"), "--dry-run"]
    bad_extra = tmp_path / "bad.sbatch"
    bad_extra.write_text("#SBATCH --array=1-9\n")
    short = tmp_path / "short.sbatch"
    short.write_text("#SBATCH -A lab\n")
    for extra, needle in (
        (["--tasks", "0"], "--tasks"),
        (["--time", "2h"], "--time"),
        (["--gres", "fpga:1"], "--gres"),
        (["--gpus", "many"], "--gpus"),
        (["--cpus-per-task", "0"], "--cpus-per-task"),
        (["--array-throttle", "0"], "--array-throttle"),
        (["--partition", "a b"], "--partition"),
        (["--merge-mem", "lots"], "--merge-mem"),
        (["--sbatch-extra", str(tmp_path / "none")], "cannot read"),
        (["--sbatch-extra", str(bad_extra)], "--array is set by bootgpu"),
        (["--sbatch-extra", str(short)], "not an '#SBATCH --option"),
        (["--out", "/tmp/a,b"], "Slurm options cannot carry"),
        (["--replicates-per-task", "2"], "--permutations"),
    ):
        code, _, err = _main([*base, *extra], capsys)
        assert code == 2 and err.count("\n") == 1 and needle in err, (extra, err)


def test_dry_run_prints_the_scripts_and_writes_the_submission(expr_tsv, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-sbatch-here"))
    out = tmp_path / "study"
    argv = ["slurm", "submit", "--expr", str(expr_tsv), "--out", str(out), "--tasks", "3", "--focus", "#0:6", *FAST,
            "--dry-run"]  # fmt: skip
    code, stdout, err = _main(argv, capsys)
    assert code == 0, err
    sub, _ = _build(slurm, argv)
    assert [shlex.split(line) for line in stdout.splitlines() if line.startswith("sbatch ")] == sub.commands()
    for job in (sub.task_job, sub.merge_job):
        assert f"--- {job.script}\n{job.script.read_text()}" in stdout and os.access(job.script, os.X_OK)
    record = json.loads((out / "slurm" / "study.json").read_text())
    assert record["scheduler"] == "slurm" and record["submissions"] == [] and record["mem"] == sub.request.total_text
    assert "BOOTGPU_TASKS=3\n" in (out / "slurm" / "job.env").read_text() and not (out / "sge").exists()


# --- the job scripts, run by sh without a scheduler ----------------------------------------------

def _run_script(name, tmp_path, *args, **env):
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho \"ARGS $*\"\necho \"CUDA=${CUDA_VISIBLE_DEVICES-unset} THREADS=$OMP_NUM_THREADS\"\n")
    python.chmod(0o755)
    job_env = tmp_path / "job.env"
    job_env.write_text(f"BOOTGPU_PYTHON={python}\nBOOTGPU_EXPR=/data/expr.tsv\nBOOTGPU_OUT={tmp_path / 'out'}\n"
                       "BOOTGPU_FOCUS=@/data/focus.txt\nBOOTGPU_TASKS=3\nBOOTGPU_MEMORY_BUDGET=1000\n"
                       "BOOTGPU_RUN_ARGS='--n-bootstrap=50 --seed=7'\nBOOTGPU_PERMUTATIONS=5\n"
                       "BOOTGPU_REPLICATES_PER_TASK=2\nBOOTGPU_NULL_TASKS=3\n")  # fmt: skip
    base = {"PATH": os.environ["PATH"], "BOOTGPU_JOB_ENV": str(job_env)}
    return subprocess.run(["sh", str(ROOT / "slurm" / name), *args], env={**base, **env}, capture_output=True, text=True)


def test_scripts_are_posix_sh_with_sbatch_directives():
    for name in (TASK_SCRIPT, MERGE_SCRIPT):
        path = ROOT / "slurm" / name
        assert os.access(path, os.X_OK), name
        subprocess.run(["sh", "-n", str(path)], check=True)
        directives = [line for line in path.read_text().splitlines() if line.startswith("#SBATCH")]
        assert {"#SBATCH --time=24:00:00", "#SBATCH --mem=4G", "#SBATCH --cpus-per-task=1"} <= set(directives)
        assert not any("gres" in d or "gpus" in d or "partition" in d for d in directives)


def test_task_script_runs_its_shard_and_null_replicates(tmp_path):
    proc = _run_script(TASK_SCRIPT, tmp_path, SLURM_ARRAY_TASK_ID="2", SLURM_ARRAY_JOB_ID="77", SLURM_JOB_ID="79",
                       SLURM_CPUS_PER_TASK="2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (f"ARGS -m bootgpu run --expr /data/expr.tsv --out {tmp_path / 'out'} --shard 2/3 --backend numpy "
            "--focus @/data/focus.txt --memory-budget 1000 --n-bootstrap=50 --seed=7") in proc.stdout
    assert "bootgpu task 2/3: job 77_2 (79)" in proc.stdout and "THREADS=2" in proc.stdout
    proc = _run_script(TASK_SCRIPT, tmp_path, "null", SLURM_ARRAY_TASK_ID="3")
    assert proc.returncode == 0 and "--permutations 5 --replicates 4:5" in proc.stdout
    proc = _run_script(TASK_SCRIPT, tmp_path)
    assert proc.returncode == 2 and "not an array task; submit with --array=1-3" in proc.stderr


def test_gpu_task_reports_the_gpu_slurm_granted(tmp_path):
    proc = _run_script(TASK_SCRIPT, tmp_path, SLURM_ARRAY_TASK_ID="1", SLURM_JOB_GPUS="0", CUDA_VISIBLE_DEVICES="0",
                       BOOTGPU_BACKEND="auto")  # fmt: skip
    assert proc.returncode == 0 and "granted GPU(s) 0 -> CUDA_VISIBLE_DEVICES=0" in proc.stdout
    assert "CUDA=0 " in proc.stdout and "--backend auto" in proc.stdout
    proc = _run_script(TASK_SCRIPT, tmp_path, SLURM_ARRAY_TASK_ID="1")
    assert "granted GPU" not in proc.stdout and "CUDA=unset" in proc.stdout


# --- squeue's answer, and the flow against stand-in sbatch / squeue / scancel ------------------------

SQUEUE = "101|1|COMPLETED|None\n101|3|COMPLETED|None\n101|2|CANCELLED|None\n102|N/A|PENDING|DependencyNeverSatisfied\n"


def test_squeue_rows():
    jobs = sbatch.parse_squeue(SQUEUE + "103|[4-6%2]|PENDING|JobArrayTaskLimit\nnot a row\n")
    assert [r.tasks for r in jobs[101]] == ["1", "3", "2"] and not any(r.alive for r in jobs[101])
    assert [r.failed for r in jobs[101]] == [False, False, True] and jobs[101][2].words == "cancelled"
    assert jobs[102][0].blocked and jobs[102][0].alive and "DependencyNeverSatisfied" in jobs[102][0].words
    assert jobs[103][0].words == "pending (JobArrayTaskLimit)" and task_numbers(jobs[103][0].tasks) == {4, 5, 6}


def test_sacct_is_asked_only_about_jobs_squeue_forgot_and_only_where_it_works(tmp_path, monkeypatch):
    calls = tmp_path / "calls"
    _fake_slurm(tmp_path / "bin", calls, monkeypatch, squeue="104|N/A|PENDING|Dependency\n")
    assert set(sbatch.job_states([103, 104])) == {104}  # sacct fails: 103 is left out, not an error
    (tmp_path / "bin" / "sacct").write_text(f"#!/bin/sh\necho \"$*\" >> {calls}\n"
                                            "printf '103_1|COMPLETED|None\\n103_2|CANCELLED by 0|None\\n103_2.batch|CANCELLED|None\\n'\n")
    jobs = sbatch.job_states([103, 104])
    assert [(r.tasks, r.words, r.failed) for r in jobs[103]] == [("1", "completed", False), ("2", "cancelled", True)]
    assert calls.read_text() == "-n -P -X -o JobID,State,Reason -j 103\n"  # only the job squeue no longer lists


def _fake_slurm(bindir: Path, calls: Path, monkeypatch, squeue: str = "") -> None:
    """sbatch that logs its arguments and answers 101, 102, ...; squeue that prints ``squeue``;
    scancel that logs; sacct as where no accounting is kept (it fails)."""
    bindir.mkdir(exist_ok=True)
    (bindir / "sbatch").write_text(f"#!/bin/sh\nn=$(grep -c '^sbatch' {calls} 2>/dev/null)\n"
                                   f"printf 'sbatch %s\\n' \"$*\" >> {calls}\necho $((101 + n))\n")  # fmt: skip
    (bindir / "squeue").write_text(f"#!/bin/sh\nprintf '%s' '{squeue}'\n")
    (bindir / "scancel").write_text(f"#!/bin/sh\nprintf 'scancel %s\\n' \"$*\" >> {calls}\n")
    (bindir / "sacct").write_text("#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n")
    for tool in ("sbatch", "squeue", "scancel", "sacct"):
        (bindir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")


def test_submit_status_and_resubmission_after_a_cancelled_task(expr_tsv, tmp_path, capsys, monkeypatch):
    calls, out = tmp_path / "calls", tmp_path / "study"
    args = ["slurm", "submit", "--expr", str(expr_tsv), "--out", str(out), "--tasks", "3", "--focus", "#0:6", *FAST]
    _fake_slurm(tmp_path / "bin", calls, monkeypatch)
    code, stdout, err = _main(args, capsys)
    assert code == 0, err
    array_call, merge_call = calls.read_text().splitlines()
    assert "--array=1-3 " in array_call and "--dependency=afterok:101 " in merge_call
    assert "submitted array job 101 (tasks 1-3) and merge job 102 (runs after 101)" in stdout
    assert "squeue -u" in stdout
    record = json.loads((out / "slurm" / "study.json").read_text())
    assert [(s["array_job"], s["merge_job"]) for s in record["submissions"]] == [(101, 102)]
    assert "--dependency=afterok:101" in record["submissions"][0]["commands"][1]
    # task 2 was cancelled (its log says so); the merge pends for ever
    # (a long log: status shows its header line, how many lines it leaves out, and the last lines)
    progress = [f"progress: {i} of 2 focus genes ({i} min)" for i in range(12)]
    (out / "slurm" / "logs" / "bootgpu_study_x.o101.2").write_text(
        "\n".join(["bootgpu task 2/3: job 101_2", *progress, "slurmstepd: CANCELLED"]) + "\n")
    _fake_slurm(tmp_path / "bin", calls, monkeypatch, squeue=SQUEUE)
    code, stdout, _ = _main(["status", str(out)], capsys)
    assert code == 0
    assert "task    2/3:     2 genes  not started  [cancelled]" in stdout
    assert "failed: task 2 (cancelled); last lines of" in stdout and "    slurmstepd: CANCELLED" in stdout
    shown = stdout.split("last lines of", 1)[1].splitlines()[1:11]
    assert shown == ["    bootgpu task 2/3: job 101_2", "    ... (5 lines)", *[f"    {line}" for line in progress[5:]],
                     "    slurmstepd: CANCELLED"], stdout
    assert "job 102 (merge): pending forever (DependencyNeverSatisfied" in stdout
    assert "the merge waits for a job that failed and can never run" in stdout
    assert "  bootgpu slurm submit --expr" in stdout
    # the same command again: the stuck merge is cancelled and replaced, every task runs again (no shards here)
    code, stdout, err = _main(args, capsys)
    assert code == 0, err
    lines = calls.read_text().splitlines()
    assert lines[2] == "scancel 102" and "--dependency=afterok:103 " in lines[4]
    assert "cancelled job(s) 102 of the last submission" in stdout
    # while a task runs, a resubmission is refused
    _fake_slurm(tmp_path / "bin", calls, monkeypatch, squeue="103|2|RUNNING|None\n104|N/A|PENDING|Dependency\n")
    code, _, err = _main(args, capsys)
    assert code == 2 and "jobs 103, 104 of this study are still queued or running" in err and "scancel" in err


def test_submit_without_sbatch_is_a_clear_error(expr_tsv, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, _, err = _main(["slurm", "submit", "--expr", str(expr_tsv), "--out", str(tmp_path / "s"), "--tasks", "2",
                          "--focus", "#0:4", *FAST], capsys)  # fmt: skip
    assert code == 2 and "sbatch not found on PATH: is this a Slurm submit host?" in err and err.count("\n") == 1
