"""`bootgpu sge submit` and `bootgpu status` without a scheduler.

The ``Submission`` object itself, built from the command's options: the array and held merge jobs
for both queue types (array range, -hold_jid, h_vmem from the planner, PE, runtime, -l gpu=1), each
job's directives rendered once and the same way as ``#$`` lines and as qsub arguments, what each
task runs, the tasks still to run once some shards exist, and the command that submits the study
again.  Then what --dry-run writes, the --max-vmem refusal, the job scripts themselves (run by sh
with a stand-in interpreter), the one qsub/qstat wrapper and its errors, and the submit flow against
stand-in qsub/qstat commands (job ids, resubmission of unfinished tasks only).
The real Grid Engine runs are in test_sge_integration.py."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bootgpu.cli import build_parser, main
from bootgpu.config import AnalysisConfig
from bootgpu.errors import BootgpuError
from bootgpu.planner import PROCESS_OVERHEAD_BYTES, job_memory_request, parse_size
from bootgpu.sge import qsub
from bootgpu.sge.commands import SUBMIT_OPTIONS, read_study_input, submit_command
from bootgpu.sge.resources import THREAD_VMEM_BYTES, sge_size
from bootgpu.sge.submission import (MERGE_SCRIPT, TASK_SCRIPT, Submission, check_options, request_for,
                                    set_directives, split_tasks)  # fmt: skip

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "sge"
N_GENES = 40
FAST = ["--n-bootstrap", "50", "--fdr-alpha", "0.2"]


@pytest.fixture(scope="module")
def expr_tsv(tmp_path_factory, write_demo_tsv):
    """The first 40 demo genes x all 128 samples."""
    return write_demo_tsv(tmp_path_factory.mktemp("sge-data") / "expr40.tsv", N_GENES)


def _main(args, capsys):
    """(exit code, stdout, stderr without the input-orientation warning: the 40-gene test matrix has
    more samples than genes, which tests/test_cli.py checks is warned about)."""
    code = main(args)
    captured = capsys.readouterr()
    err = "".join(line for line in captured.err.splitlines(keepends=True) if not line.startswith("bootgpu: warning:"))
    return code, captured.out, err


def _submit_args(expr_tsv, out, *options) -> list[str]:
    return ["sge", "submit", "--expr", str(expr_tsv), "--out", str(out), *options, *FAST]


def _submission(argv, shards=(), python=sys.executable, replicates_done=()) -> tuple[Submission, object]:
    """(the Submission `bootgpu sge submit ARGV` builds where the shard files ``shards`` (K, N) and
    null replicates ``replicates_done`` exist, the parsed options), through the same steps as the
    command, writing nothing."""
    args = build_parser().parse_args(argv)
    check_options(args)
    study = read_study_input(args)
    tasks = split_tasks(args, len(study.focus))
    return Submission.build(args, study, tasks, request_for(args, study), shards, python, "/usr/bin:/bin",
                            replicates_done), args  # fmt: skip


def _qsub_lines(stdout: str) -> list[list[str]]:
    return [shlex.split(line) for line in stdout.splitlines() if line.startswith("qsub ")]


def _option(cmd: list[str], flag: str) -> list[str]:
    """Every value of ``flag`` in a command line ('-l' may appear several times)."""
    return [cmd[i + 1] for i, word in enumerate(cmd[:-1]) if word == flag]


def _expected_h_vmem(budget: str, slots: int, n_bootstrap: int, extra: int = 0) -> tuple[str, int]:
    """h_vmem per slot as the module docstring of bootgpu.sge.resources defines it, from the planner:
    the plan the task's backend makes (NumPy's working-set cap on CPU queues, none on GPU queues,
    which are the ones with ``extra`` CUDA address space), plus the expression matrix."""
    from bootgpu.backends.numpy_backend import NumpyBackend

    k_low, k_high = AnalysisConfig(n_bootstrap=n_bootstrap).validate(128)
    working_set = 0 if extra else NumpyBackend.working_set_bytes
    need = job_memory_request(N_GENES, 128, k_low, k_high, n_bootstrap, parse_size(budget, "x"), slots, working_set)
    need += THREAD_VMEM_BYTES * (slots - 1) + extra
    per_slot_mib = math.ceil(need / slots / 2**20)
    matrix = N_GENES * 128 * 8
    return (sge_size(per_slot_mib * 2**20),
            per_slot_mib * 2**20 * slots - PROCESS_OVERHEAD_BYTES - THREAD_VMEM_BYTES * (slots - 1) - extra - matrix)


def _script_copy(job) -> str:
    """The study's copy of ``job``'s script, as jobfiles writes it."""
    return job.script_text((SCRIPTS / job.template).read_text())


def _resource_lines(script: str) -> list[str]:
    """A script's ``#$`` lines other than the fixed -S, -j, -r, sorted."""
    return sorted(line for line in script.splitlines() if line.startswith("#$ ") and line.split()[1] not in ("-S", "-j", "-r"))


# --- the Submission object ------------------------------------------------------------------------

CPU_OPTIONS = ["--queue-type", "cpu", "--tasks", "3", "--focus", "#0:12", "--slots", "2", "--pe", "mpslots",
               "--runtime", "2:30:00", "--memory-budget", "1G"]  # fmt: skip


def test_cpu_submission_is_an_array_then_a_held_merge(expr_tsv, tmp_path):
    out = tmp_path / "study"
    sub, _ = _submission(_submit_args(expr_tsv, out, *CPU_OPTIONS))
    array, merge = sub.commands()
    vmem, run_budget = _expected_h_vmem("1G", 2, 50)
    # the array: 3 tasks, cpu.q, the PE and slots, h_vmem from the planner, the runtime
    assert sub.todo == (1, 2, 3) and _option(array, "-t") == ["1-3"]
    assert _option(array, "-q") == ["cpu.q"]
    assert _option(array, "-pe") == ["mpslots"] and array[array.index("-pe") + 2] == "2"
    assert sorted(_option(array, "-l")) == sorted([f"h_vmem={vmem}", "h_rt=2:30:00"])
    assert _option(array, "-S") == ["/bin/sh"] and _option(array, "-wd") == [str(out)]
    assert array[-1] == str(out / "sge" / TASK_SCRIPT)
    # the merge waits for the array (by its unique job name), on the same queue, no PE, no GPU
    assert _option(merge, "-hold_jid") == _option(array, "-N")
    assert _option(merge, "-q") == ["cpu.q"] and not _option(merge, "-pe") and not _option(merge, "-t")
    assert "h_rt=2:30:00" in _option(merge, "-l") and not any("gpu" in v for v in _option(merge, "-l"))
    assert merge[-1] == str(out / "sge" / MERGE_SCRIPT)
    # the script copy's resource lines are what is submitted
    script = _script_copy(sub.task_job)
    for line in (f"#$ -l h_vmem={vmem}\n", "#$ -l h_rt=2:30:00\n", "#$ -pe mpslots 2\n", "#$ -q cpu.q\n"):
        assert line in script
    env = sub.env
    assert env["BOOTGPU_PYTHON"] == sys.executable
    assert env["BOOTGPU_BACKEND"] == "numpy" and env["BOOTGPU_TASKS"] == "3" and "BOOTGPU_GPU_GRANT_VAR" not in env
    assert env["BOOTGPU_MEMORY_BUDGET"] == str(run_budget)
    assert "--n-bootstrap=50" in env["BOOTGPU_RUN_ARGS"].split() and "--fdr-alpha=0.2" in env["BOOTGPU_RUN_ARGS"].split()
    assert sub.focus_text().split() == [f"#{g}" for g in range(12)]


def test_gpu_submission_requests_a_gpu_on_gpu_queue(expr_tsv, tmp_path):
    out = tmp_path / "study"
    sub, _ = _submission(_submit_args(expr_tsv, out, "--queue-type", "gpu", "--genes-per-task", "4", "--focus", "#0:10",
                                      "--cuda-vmem", "2G"))  # fmt: skip
    array, merge = sub.commands()
    vmem, _ = _expected_h_vmem("4G", 1, 50, extra=2 * 2**30)
    assert sub.tasks == 3 and _option(array, "-t") == ["1-3"]  # ceil(10 / 4)
    assert _option(array, "-q") == ["gpu.q"]
    assert sorted(_option(array, "-l")) == sorted([f"h_vmem={vmem}", "h_rt=24:00:00", "gpu=1"])
    assert _option(array, "-pe") == ["smp"] and array[array.index("-pe") + 2] == "1"
    assert array[-1] == str(out / "sge" / TASK_SCRIPT)
    # the merge needs no GPU: no -l gpu, no queue (the site's default), held on the array
    assert _option(merge, "-hold_jid") == _option(array, "-N")
    assert not _option(merge, "-q") and not any("gpu" in v for v in _option(merge, "-l"))
    script = _script_copy(sub.task_job)
    assert "#$ -l gpu=1\n" in script and "#$ -q gpu.q\n" in script and f"#$ -l h_vmem={vmem}\n" in script
    assert "#$ -q cpu.q" not in script
    assert sub.env["BOOTGPU_BACKEND"] == "cupy" and sub.env["BOOTGPU_GPU_GRANT_VAR"] == "SGE_HGR_gpu"
    assert "#$ -q" not in _script_copy(sub.merge_job)


SITE_OPTIONS = ["--queue-type", "gpu", "--tasks", "2", "--focus", "#0:4", "--queue", "", "--pe", "", "--backend", "auto",
                "--qsub-args", "-P bio -m ea", "--job-setup", "module load cuda/12.4", "--gpu-resource", "cuda"]  # fmt: skip


def test_site_options(expr_tsv, tmp_path):
    """No queue, no PE, a site qsub option, a setup command and another backend."""
    sub, _ = _submission(_submit_args(expr_tsv, tmp_path / "study", *SITE_OPTIONS))
    array, merge = sub.commands()
    assert not _option(array, "-q") and not _option(array, "-pe")
    assert "cuda=1" in _option(array, "-l") and "gpu=1" not in _option(array, "-l")
    for cmd in (array, merge):
        assert _option(cmd, "-P") == ["bio"] and _option(cmd, "-m") == ["ea"]
    script = _script_copy(sub.task_job)
    assert "#$ -q" not in script and "#$ -pe" not in script
    assert "#$ -l cuda=1\n" in script and "#$ -l gpu" not in script
    env = sub.env
    assert env["BOOTGPU_BACKEND"] == "auto" and env["BOOTGPU_SETUP"] == "module load cuda/12.4"
    assert env["BOOTGPU_GPU_GRANT_VAR"] == "SGE_HGR_cuda"
    assert "BOOTGPU_SETUP='module load cuda/12.4'\n" in sub.env_text("now")


@pytest.mark.parametrize("options", [CPU_OPTIONS, SITE_OPTIONS, ["--queue-type", "cpu", "--tasks", "2", "--focus", "#0:4",
                                     "--merge-queue", "long.q", "--merge-vmem", "2g"]], ids=["cpu", "site", "merge-queue"])
def test_directives_are_rendered_the_same_as_script_lines_and_qsub_arguments(expr_tsv, tmp_path, options):
    sub, _ = _submission(_submit_args(expr_tsv, tmp_path / "study", *options))
    for job in (sub.task_job, sub.merge_job):
        script = _script_copy(job)
        # every directive is one #$ line of the copy, and the copy asks for nothing else
        assert _resource_lines(script) == sorted(job.directive_lines())
        # the qsub arguments are those lines' words, in the command line as one run
        assert [w for line in job.directive_lines() for w in line.split()[1:]] == job.directive_args()
        cmd, args = job.command(), job.directive_args()
        assert any(cmd[i:i + len(args)] == args for i in range(len(cmd)))
        assert "#$ -S /bin/sh\n" in script and _option(cmd, "-S") == ["/bin/sh"]
    if "--merge-queue" in options:  # the merge's copy asks for its queue too, though the script has no -q line
        assert "#$ -q long.q\n" in _script_copy(sub.merge_job) and "#$ -q" not in (SCRIPTS / MERGE_SCRIPT).read_text()
        assert "h_vmem=1908M" in sub.merge_job.directive_args()  # 2g: 2 * 10**9 bytes, rounded up to MiB


def test_tasks_still_to_run_after_some_shards_exist(expr_tsv, tmp_path):
    argv = _submit_args(expr_tsv, tmp_path / "study", "--queue-type", "cpu", "--tasks", "4", "--focus", "#0:9")
    sub, _ = _submission(argv, shards=[(1, 4), (3, 4), (2, 3)])  # a shard of another split does not count
    assert sub.todo == (2, 4) and sub.array_range == "2-4"
    array, merge = sub.commands()
    assert _option(array, "-t") == ["2-4"] and _option(merge, "-hold_jid") == _option(array, "-N")
    sub, _ = _submission(argv, shards=[(1, 4), (2, 4), (3, 4)])
    assert sub.todo == (4,) and sub.array_range == "4-4" and _option(sub.commands()[0], "-t") == ["4-4"]
    sub, _ = _submission(argv, shards=[(k, 4) for k in range(1, 5)])
    assert sub.todo == () and sub.jobs() == [sub.merge_job]  # all done: the merge alone, held on nothing
    assert not _option(sub.commands()[0], "-hold_jid") and sub.commands()[0][-1].endswith(MERGE_SCRIPT)


def test_task_command_is_what_the_task_script_runs(expr_tsv, tmp_path):
    python = _stand_in_python(tmp_path / "python")
    sub, _ = _submission(_submit_args(expr_tsv, tmp_path / "study", *CPU_OPTIONS, "--samples-in-rows", "--seed", "7"),
                         python=str(python))  # fmt: skip
    assert sub.task_command(2)[:12] == [str(python), "-m", "bootgpu", "run", "--expr", str(expr_tsv), "--out",
                                        str(tmp_path / "study"), "--shard", "2/3", "--backend", "numpy"]  # fmt: skip
    assert {"--seed=7", "--samples-in-rows", "--edge-selection=sig_diff"} <= set(sub.task_command(2))
    job_env = tmp_path / "job.env"
    job_env.write_text(sub.env_text("now"))
    script = tmp_path / TASK_SCRIPT
    script.write_text(_script_copy(sub.task_job))
    for task in (1, 3):
        proc = subprocess.run(["sh", str(script)], env={"PATH": os.environ["PATH"], "BOOTGPU_JOB_ENV": str(job_env),
                                                        "SGE_TASK_ID": str(task)}, capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert f"ARGS {' '.join(sub.task_command(task)[1:])}\n" in proc.stdout


def test_analysis_options_reach_the_tasks_from_their_definitions(expr_tsv, tmp_path):
    """Every option `bootgpu run` takes from bootgpu.options.RUN_FORWARDED is forwarded, none named
    by hand: one per AnalysisConfig field, plus --samples-in-rows and --sep."""
    from dataclasses import fields

    from bootgpu.options import ANALYSIS_OPTIONS, RUN_FORWARDED

    assert [o.dest for o in ANALYSIS_OPTIONS] == [f.name for f in fields(AnalysisConfig)]
    sub, args = _submission(_submit_args(expr_tsv, tmp_path / "study", *CPU_OPTIONS, "--ci-alpha", "0.1"))
    forwarded = sub.env["BOOTGPU_RUN_ARGS"].split()
    assert forwarded == [w for o in RUN_FORWARDED for w in o.argv(getattr(args, o.dest), joined=True)]
    # switches at their default (--no-ci-filter, --samples-in-rows) add no word; --sep adds its own
    assert len(forwarded) == len(ANALYSIS_OPTIONS) - 1 + 1 and "--sep=auto" in forwarded
    assert "--ci-alpha=0.1" in forwarded
    run = build_parser().parse_args(["run", "--expr", "x", "--out", "y", *forwarded])
    assert AnalysisConfig.from_args(run) == AnalysisConfig.from_args(args) == sub.study.cfg
    assert {o.dest for o in RUN_FORWARDED} <= set(vars(run))


def test_submit_command_repeats_every_option(expr_tsv, tmp_path, monkeypatch):
    """The command recorded for resubmission parses to the same options, with absolute paths, the
    tasks decided and the study's focus list; --dry-run and --overwrite are not repeated."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rel").mkdir()
    argv = ["sge", "submit", "--expr", os.path.relpath(expr_tsv), "--out", "rel/study", *SITE_OPTIONS[:2],
            "--genes-per-task", "3", *SITE_OPTIONS[4:], "--max-vmem", "64G", "--seed", "3", "--dry-run", "--overwrite"]
    sub, args = _submission(argv)
    cmd = submit_command(args, sub)
    assert cmd[:3] == ["bootgpu", "sge", "submit"] and "--dry-run" not in cmd and "--overwrite" not in cmd
    again = build_parser().parse_args(cmd[1:])
    out = tmp_path.resolve() / "rel" / "study"
    decided = {"expr": str(Path(expr_tsv).resolve()), "out": str(out), "tasks": 2, "genes_per_task": None,
               "focus": f"@{out / 'sge' / 'focus.txt'}", "dry_run": False, "overwrite": False}
    assert vars(again) == {**vars(args), **decided}
    assert {o.dest for o in SUBMIT_OPTIONS} <= set(vars(again))


# --- what --dry-run writes -------------------------------------------------------------------------

def test_dry_run_writes_the_submission_and_prints_its_commands(expr_tsv, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-qsub-here"))  # --dry-run needs no scheduler
    out = tmp_path / "study"
    argv = _submit_args(expr_tsv, out, *CPU_OPTIONS, "--dry-run")
    code, stdout, err = _main(argv, capsys)
    assert code == 0, err
    sub, _ = _submission(argv)
    assert _qsub_lines(stdout) == sub.commands()
    assert "dry run: nothing submitted" in stdout
    # the scripts are written, resource lines set to what is submitted; nothing else ran
    for job in (sub.task_job, sub.merge_job):
        assert job.script.read_text() == _script_copy(job) and os.access(job.script, os.X_OK)
    assert f"#$ -l h_vmem={_expected_h_vmem('1G', 2, 50)[0]}\n" in (out / "sge" / TASK_SCRIPT).read_text()
    env = (out / "sge" / "job.env").read_text()
    assert f"BOOTGPU_PYTHON={shlex.quote(sys.executable)}\n" in env
    assert "BOOTGPU_BACKEND=numpy\n" in env and "BOOTGPU_TASKS=3\n" in env
    assert f"BOOTGPU_MEMORY_BUDGET={_expected_h_vmem('1G', 2, 50)[1]}\n" in env
    assert "--n-bootstrap=50" in env and "--fdr-alpha=0.2" in env
    assert (out / "sge" / "focus.txt").read_text().split() == [f"#{g}" for g in range(12)]
    assert not (out / "shards").exists() and not (out / "parts").exists()
    record = json.loads((out / "sge" / "study.json").read_text())
    assert record["submissions"] == [] and record["tasks"] == 3 and record["h_vmem"] == sub.request.h_vmem


def test_max_vmem_refused_before_submission(expr_tsv, tmp_path, capsys, monkeypatch):
    calls = tmp_path / "qsub-calls"
    _fake_scheduler(tmp_path / "bin", calls, monkeypatch)
    out = tmp_path / "study"
    code, stdout, err = _main(["sge", "submit", "--expr", str(expr_tsv), "--out", str(out), "--queue-type", "cpu",
                               "--tasks", "2", "--focus", "#0:4", "--memory-budget", "2G", "--max-vmem", "300M",
                               "--merge-vmem", "300M", *FAST], capsys)  # fmt: skip
    assert code == 2  # the process overhead alone is over 300M
    assert err.startswith("bootgpu: error: ") and err.count("\n") == 1, err
    assert "--max-vmem 300M" in err and "h_vmem=" in err and "lower --memory-budget" in err
    assert not out.exists() and not calls.exists()
    # the same study fits when the budget is lowered
    code, _, err = _main(["sge", "submit", "--expr", str(expr_tsv), "--out", str(out), "--queue-type", "cpu",
                          "--tasks", "2", "--focus", "#0:4", "--memory-budget", "256M", "--max-vmem", "1G",
                          "--merge-vmem", "1G", *FAST], capsys)  # fmt: skip
    assert code == 0, err
    assert len(calls.read_text().splitlines()) == 2


def test_bad_options_are_one_line_errors(expr_tsv, tmp_path, capsys):
    base = ["sge", "submit", "--expr", str(expr_tsv), "--out", str(tmp_path / "s"), "--queue-type", "cpu", "--dry-run"]
    for extra, needle in (
        (["--tasks", "0"], "--tasks"),
        (["--tasks", "41"], "--tasks"),
        (["--genes-per-task", "0"], "--genes-per-task"),
        (["--queue-type", "gpu", "--gpu-resource", "gpu=2"], "--gpu-resource"),
        (["--out", "/tmp/a,b"], "comma"),
        (["--runtime", "2h"], "--runtime"),
        (["--memory-budget", "lots"], "--memory-budget"),
        (["--slots", "2", "--pe", ""], "--pe"),
        (["--focus", "NOPE"], "NOPE"),
        (["--memory-budget", "1K"], "memory budget"),
    ):
        code, _, err = _main([*base, *extra], capsys)
        assert code == 2 and err.count("\n") == 1 and needle in err, (extra, err)


def test_directive_rewriting_and_sizes():
    text = "#!/bin/sh\n#$ -S /bin/sh\n#$ -q cpu.q\n#$ -pe smp 1\n#$ -l h_rt=24:00:00\n#$ -l h_vmem=4G\necho\n"
    text += "#$ -l gpu=1\n"
    got = set_directives(text, {"-q": None, "-pe": "mpi 4", "-l h_vmem": "h_vmem=1500M", "-l h_rt": "h_rt=1:00:00",
                                "-l gpu": "cuda=1"})  # fmt: skip
    assert got == ("#!/bin/sh\n#$ -S /bin/sh\n#$ -pe mpi 4\n#$ -l h_rt=1:00:00\n#$ -l h_vmem=1500M\necho\n"
                   "#$ -l cuda=1\n")  # fmt: skip
    assert sge_size(4 * 2**30) == "4G" and sge_size(1) == "1M" and sge_size(2**20 + 1) == "2M"
    assert parse_size("2G", "x") == parse_size("2g", "x") == 2 * 2**30
    assert parse_size("2g", "x", sge=True) == 2 * 10**9 and parse_size("2G", "x", sge=True) == 2 * 2**30
    assert parse_size("12342042K", "x", sge=True) == 12342042 * 1024


# --- the job scripts, run by sh without a scheduler ----------------------------------------------

def test_scripts_are_posix_sh_with_site_directives():
    for name in (TASK_SCRIPT, MERGE_SCRIPT):
        path = SCRIPTS / name
        assert os.access(path, os.X_OK), name
        subprocess.run(["sh", "-n", str(path)], check=True)
        directives = [line for line in path.read_text().splitlines() if line.startswith("#$")]
        assert "#$ -S /bin/sh" in directives and any(d.startswith("#$ -l h_vmem=") for d in directives)
        assert any(d.startswith("#$ -l h_rt=") for d in directives)
    # one task script for both queue types: a CPU queue's site defaults; a GPU queue's copy gets
    # -q gpu.q and -l gpu=1 from the submission (test_gpu_submission_requests_a_gpu_on_gpu_queue)
    text = (SCRIPTS / TASK_SCRIPT).read_text()
    assert "#$ -q cpu.q\n" in text and "#$ -pe smp 1\n" in text
    assert "#$ -l gpu" not in text


def _stand_in_python(path: Path) -> Path:
    """An 'interpreter' that prints its arguments and the environment a task sets up."""
    path.write_text("#!/bin/sh\necho \"ARGS $*\"\necho \"CUDA=${CUDA_VISIBLE_DEVICES-unset} "
                    "THREADS=$OMP_NUM_THREADS/$OPENBLAS_NUM_THREADS SETUP=${SETUP_RAN:-no}\"\n")  # fmt: skip
    path.chmod(0o755)
    return path


def _run_script(name, tmp_path, **env):
    job_env = tmp_path / "job.env"
    job_env.write_text(
        f"BOOTGPU_PYTHON={_stand_in_python(tmp_path / 'python')}\nBOOTGPU_EXPR=/data/expr.tsv\n"
        f"BOOTGPU_OUT={tmp_path / 'out'}\nBOOTGPU_FOCUS=@/data/focus.txt\nBOOTGPU_TASKS=3\n"
        "BOOTGPU_MEMORY_BUDGET=1000\nBOOTGPU_RUN_ARGS='--n-bootstrap=50 --seed=7'\n"
        "BOOTGPU_SETUP='SETUP_RAN=yes; export SETUP_RAN'\n"
    )  # fmt: skip
    base = {"PATH": os.environ["PATH"], "BOOTGPU_JOB_ENV": str(job_env), "NSLOTS": "2"}
    return subprocess.run(["sh", str(SCRIPTS / name)], env={**base, **env}, capture_output=True, text=True)


def test_task_script_runs_its_shard(tmp_path):
    proc = _run_script(TASK_SCRIPT, tmp_path, SGE_TASK_ID="2", JOB_ID="77")
    assert proc.returncode == 0, proc.stderr
    assert (f"ARGS -m bootgpu run --expr /data/expr.tsv --out {tmp_path / 'out'} --shard 2/3 --backend numpy "
            "--focus @/data/focus.txt --memory-budget 1000 --n-bootstrap=50 --seed=7") in proc.stdout
    assert "THREADS=2/2 SETUP=yes" in proc.stdout and "bootgpu task 2/3: job 77" in proc.stdout
    # a shard file is not taken on its name: the task runs, and `bootgpu run` checks its identity
    (tmp_path / "out" / "shards").mkdir(parents=True)
    (tmp_path / "out" / "shards" / "shard-0002-of-0003.h5").write_bytes(b"")
    proc = _run_script(TASK_SCRIPT, tmp_path, SGE_TASK_ID="2")
    assert proc.returncode == 0 and "--shard 2/3" in proc.stdout
    # outside an array job it refuses
    proc = _run_script(TASK_SCRIPT, tmp_path, SGE_TASK_ID="undefined")
    assert proc.returncode == 2 and "not an array task" in proc.stderr


GPU_ENV = {"BOOTGPU_BACKEND": "cupy", "BOOTGPU_GPU_GRANT_VAR": "SGE_HGR_gpu"}  # what a GPU queue's job.env adds


@pytest.mark.parametrize("granted, visible", [("0", "0"), ("gpu1", "1"), ("0 1", "0,1"), ("cuda2,cuda3", "2,3"),
                                              ("GPU-5a1b-77", "GPU-5a1b-77")])  # fmt: skip
def test_gpu_task_binds_the_granted_device(tmp_path, granted, visible):
    proc = _run_script(TASK_SCRIPT, tmp_path, SGE_TASK_ID="1", SGE_HGR_gpu=granted, CUDA_VISIBLE_DEVICES="7", **GPU_ENV)
    assert proc.returncode == 0, proc.stderr
    assert f"CUDA={visible} " in proc.stdout and "--backend cupy" in proc.stdout


def test_gpu_task_leaves_site_binding_alone(tmp_path):
    proc = _run_script(TASK_SCRIPT, tmp_path, SGE_TASK_ID="1", CUDA_VISIBLE_DEVICES="3", **GPU_ENV)
    assert proc.returncode == 0 and "CUDA=3 " in proc.stdout
    proc = _run_script(TASK_SCRIPT, tmp_path, SGE_TASK_ID="1", **GPU_ENV)
    assert proc.returncode == 0 and "CUDA=unset " in proc.stdout
    proc = _run_script(TASK_SCRIPT, tmp_path, SGE_TASK_ID="1", **{**GPU_ENV, "BOOTGPU_GPU_GRANT_VAR": "SITE_GPUS"},
                       SITE_GPUS="4")  # fmt: skip
    assert proc.returncode == 0 and "CUDA=4 " in proc.stdout
    proc = _run_script(TASK_SCRIPT, tmp_path, SGE_TASK_ID="1", **{**GPU_ENV, "BOOTGPU_GPU_GRANT_VAR": "A;B"})
    assert proc.returncode == 2 and "bad BOOTGPU_GPU_GRANT_VAR" in proc.stderr


def test_cpu_task_binds_no_gpu(tmp_path):
    proc = _run_script(TASK_SCRIPT, tmp_path, SGE_TASK_ID="1", SGE_HGR_gpu="0", CUDA_VISIBLE_DEVICES="3")
    assert proc.returncode == 0 and "CUDA=3 " in proc.stdout and "--backend numpy" in proc.stdout
    assert "granted GPU" not in proc.stdout and "SGE_HGR" not in proc.stdout


# --- the submit flow against stand-in qsub / qstat ------------------------------------------------

def _fake_scheduler(bindir: Path, calls: Path, monkeypatch, live: str = "") -> None:
    """qsub that logs its arguments and answers job ids 101, 102, ...; qstat that lists ``live``."""
    bindir.mkdir(exist_ok=True)
    (bindir / "qsub").write_text(
        "#!/bin/sh\n"
        f"n=$(cat {calls} 2>/dev/null | wc -l)\n"
        f"printf '%s\\n' \"$*\" >> {calls}\n"
        "id=$((101 + n))\n"
        "case \"$*\" in *' -t '*) echo \"$id.1-3:1\" ;; *) echo \"$id\" ;; esac\n"
    )  # fmt: skip
    (bindir / "qstat").write_text(f"#!/bin/sh\nprintf '%s' '{live}'\n")
    for tool in ("qsub", "qstat"):
        (bindir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")


QSTAT_HEADER = ("job-ID  prior   name       user         state submit/start at     queue                          "
                "slots ja-task-ID \n" + "-" * 100 + "\n")  # fmt: skip


def test_submit_prints_job_ids_and_records_them(expr_tsv, tmp_path, capsys, monkeypatch):
    calls = tmp_path / "calls"
    _fake_scheduler(tmp_path / "bin", calls, monkeypatch)
    out = tmp_path / "study"
    args = ["sge", "submit", "--expr", str(expr_tsv), "--out", str(out), "--queue-type", "cpu", "--tasks", "3",
            "--focus", "#0:6", "--memory-budget", "512M", *FAST]  # fmt: skip
    code, stdout, err = _main(args, capsys)
    assert code == 0, err
    array_call, merge_call = calls.read_text().splitlines()
    assert "-t 1-3" in array_call and "-hold_jid" in merge_call
    assert "submitted array job 101 (tasks 1-3) and merge job 102 (runs after 101)" in stdout
    assert "qstat -u" in stdout and f"bootgpu status {out}" in stdout
    study = json.loads((out / "sge" / "study.json").read_text())
    assert [(s["array_job"], s["merge_job"]) for s in study["submissions"]] == [(101, 102)]
    # status lists the jobs through qstat
    _fake_scheduler(tmp_path / "bin", calls, monkeypatch, live=QSTAT_HEADER +
                    "    101 0.55 bootgpu_s  me  r  11/28/2026 12:10:01 cpu.q@node1  1 1\n"
                    "    101 0.00 bootgpu_s  me  qw 11/28/2026 12:10:00               1 2-3:1\n"
                    "    102 0.00 merge_stu  me  hqw 11/28/2026 12:10:00              1\n")  # fmt: skip
    code, stdout, _ = _main(["status", str(out)], capsys)
    assert code == 0
    assert "job 101 (array): running tasks 1; pending tasks 2-3:1" in stdout
    assert "job 102 (merge): waiting for its hold" in stdout
    # submitting again while the study's jobs are alive is refused
    code, _, err = _main(args, capsys)
    assert code == 2 and "101, 102" in err and "still queued or running" in err


def test_resubmission_runs_only_unfinished_tasks(expr_tsv, tmp_path, capsys, monkeypatch):
    """Tasks 1 and 3 finished, task 2 was killed after two genes: the new array is -t 2-2."""
    out = tmp_path / "study"
    common = ["--expr", str(expr_tsv), "--out", str(out), "--focus", "#0:9", "--backend", "numpy", *FAST]
    for k in (1, 3):
        assert _main(["run", *common, "--shard", f"{k}/3"], capsys)[0] == 0
    # what a killed task 2 leaves: two of its three focus genes (3, 4, 5) in parts/, made here from the
    # same study's shard 2 computed elsewhere
    planted = tmp_path / "planted"
    assert _main(["run", *common, "--out", str(planted), "--shard", "2/3"], capsys)[0] == 0
    from bootgpu.expression_io import read_expression
    from bootgpu.results_io import read_results, write_part

    meta, results = read_results(planted / "shards" / "shard-0002-of-0003.h5")
    (out / "parts").mkdir(exist_ok=True)
    for r in results[:2]:
        write_part(out / "parts" / f"focus-{r.focus:06d}.h5", meta, r, read_expression(expr_tsv).gene_names)

    code, stdout, _ = _main(["status", str(out)], capsys)
    assert code == 0
    assert "8 of 9 focus genes done" in stdout and "2 of 3 shards written" in stdout
    assert re.search(r"task +2/3: +3 genes +2 done \(running, or interrupted", stdout)
    assert "merged: no" in stdout

    calls = tmp_path / "calls"
    _fake_scheduler(tmp_path / "bin", calls, monkeypatch)
    code, stdout, err = _main(["sge", "submit", "--expr", str(expr_tsv), "--out", str(out), "--queue-type", "cpu",
                               "--tasks", "3", "--focus", "#0:9", *FAST], capsys)  # fmt: skip
    assert code == 0, err
    array_call, merge_call = calls.read_text().splitlines()
    assert " -t 2-2 " in array_call and "-hold_jid" in merge_call
    assert "tasks 2-2 to run (2 already done)" in stdout
    # a different study in the same directory, or another split, is refused
    code, _, err = _main(["sge", "submit", "--expr", str(expr_tsv), "--out", str(out), "--queue-type", "cpu",
                          "--tasks", "3", "--focus", "#0:9", "--seed", "5", *FAST, "--dry-run"], capsys)  # fmt: skip
    assert code == 2 and "holds a study with seed 42, not 5" in err and "--overwrite" in err
    assert not (out / "results.h5").exists() and len(calls.read_text().splitlines()) == 2  # nothing queued
    code, _, err = _main(["sge", "submit", "--expr", str(expr_tsv), "--out", str(tmp_path / "other"), "--queue-type",
                          "cpu", "--tasks", "3", "--focus", "#0:9", *FAST, "--dry-run"], capsys)  # fmt: skip
    assert code == 0


def test_submit_without_qsub_is_a_clear_error(expr_tsv, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = _main(["sge", "submit", "--expr", str(expr_tsv), "--out", str(tmp_path / "s"), "--queue-type",
                          "cpu", "--tasks", "2", "--focus", "#0:4", *FAST], capsys)  # fmt: skip
    assert code == 2 and "qsub not found" in err and "--dry-run" in err


def _tool(bindir: Path, name: str, body: str, monkeypatch) -> None:
    """A stand-in Grid Engine client ``name`` running the sh ``body``, first on PATH."""
    bindir.mkdir(exist_ok=True)
    (bindir / name).write_text(f"#!/bin/sh\n{body}\n")
    (bindir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")


REFUSAL = "echo 'Unable to run job: Job was rejected because job requests unknown queue \"nope.q\".' >&2; echo Exiting.; exit 1"


def test_qsub_wrapper_error_names_command_exit_code_and_output(tmp_path, monkeypatch):
    _tool(tmp_path / "bin", "qsub", REFUSAL, monkeypatch)
    cmd = ["qsub", "-terse", "-N", "bootgpu_x", "-q", "nope.q", "-t", "1-2", "/shared/study/sge/bootgpu-task.sh"]
    with pytest.raises(BootgpuError) as refused:
        qsub.submit(cmd)
    message = str(refused.value)
    assert "qsub failed with exit code 1" in message and 'unknown queue "nope.q"' in message and "Exiting." in message
    assert f"(command: {shlex.join(cmd)})" in message and "\n" not in message
    _tool(tmp_path / "bin", "qsub", "echo 'Your job is being held'", monkeypatch)  # exit 0 but no job id
    with pytest.raises(BootgpuError, match=r"qsub printed no job id: Your job is being held \(command: qsub -terse"):
        qsub.submit(cmd)
    _tool(tmp_path / "bin", "qstat", "echo 'error: commlib error: can not connect' >&2; exit 2", monkeypatch)
    with pytest.raises(BootgpuError, match=r"qstat failed with exit code 2: error: commlib error.*\(command: qstat -u '\*'\)"):
        qsub.qstat_jobs()
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    with pytest.raises(BootgpuError, match=r"qstat not found on PATH \(command: qstat"):
        qsub.qstat_jobs()


def test_refused_jobs_are_one_line_errors_and_recorded_as_far_as_submitted(expr_tsv, tmp_path, capsys, monkeypatch):
    out = tmp_path / "study"
    argv = _submit_args(expr_tsv, out, "--queue-type", "cpu", "--tasks", "2", "--focus", "#0:4", "--queue", "nope.q")
    _tool(tmp_path / "bin", "qsub", REFUSAL, monkeypatch)
    code, _, err = _main(argv, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "exit code 1" in err and 'unknown queue "nope.q"' in err and "(command: qsub -terse " in err
    assert not (out / "sge" / "study.json").exists()  # nothing was queued
    # the array is accepted, the merge refused: the array job is recorded, status says what qstat says
    _tool(tmp_path / "bin", "qsub", "case \"$*\" in *' -t '*) echo 101.1-2:1 ;; *) " + REFUSAL + " ;; esac", monkeypatch)
    code, _, err = _main(argv, capsys)
    assert code == 2 and err.startswith("bootgpu: error: array job 101 submitted, but the merge job failed: qsub failed")
    record = json.loads((out / "sge" / "study.json").read_text())
    assert [(s["array_job"], s.get("merge_job")) for s in record["submissions"]] == [(101, None)]
    _tool(tmp_path / "bin", "qstat", "echo 'error: commlib error' >&2; exit 2", monkeypatch)
    code, stdout, _ = _main(["status", str(out)], capsys)
    assert code == 0 and "job 101 (array): qstat not available (qstat failed with exit code 2: error: commlib error" in stdout


def test_status_of_plain_shard_runs_and_of_a_finished_study(expr_tsv, tmp_path, capsys):
    out = tmp_path / "study"
    common = ["--expr", str(expr_tsv), "--out", str(out), "--focus", "#0:4", "--backend", "numpy", *FAST]
    assert _main(["run", *common, "--shard", "1/2"], capsys)[0] == 0
    code, stdout, _ = _main(["status", str(out)], capsys)
    assert code == 0 and "2 of 4 focus genes done (50%), 1 of 2 shards written" in stdout
    assert re.search(r"task +2/2: +2 genes +not started", stdout)
    assert _main(["run", *common, "--shard", "2/2"], capsys)[0] == 0
    assert _main(["merge", str(out)], capsys)[0] == 0
    assert not (out / "parts").exists()
    code, stdout, _ = _main(["status", str(out)], capsys)
    assert "4 of 4 focus genes done (100%)" in stdout and "merged: yes" in stdout
    code, _, err = _main(["status", str(tmp_path / "nothing")], capsys)
    assert code == 2 and "no such study directory" in err


# --- the permutation null (--permutations): a second array over null replicates -------------------

NULL_OPTIONS = [*CPU_OPTIONS, "--permutations", "10", "--replicates-per-task", "3"]


def _replicates(cmd: list[str]) -> range:
    first, end = cmd[cmd.index("--replicates") + 1].split(":")
    return range(int(first), int(end))


def test_null_submission_is_a_second_array_and_the_merge_waits_for_both(expr_tsv, tmp_path):
    out = tmp_path / "study"
    sub, _ = _submission(_submit_args(expr_tsv, out, *NULL_OPTIONS))
    array, null, merge = sub.commands()
    assert sub.null.tasks == 4 and sub.null.todo == (1, 2, 3, 4) and _option(null, "-t") == ["1-4"]
    # planned as one focus gene each: the task job's directives, script copy and options, with argument null
    assert sub.null_job.directives == sub.task_job.directives
    assert sub.null_job.directive_args() == sub.task_job.directive_args() and sub.null_job.options == sub.task_job.options
    assert array[array.index("-q"):array.index("-t")] == null[null.index("-q"):null.index("-t")]
    assert null[-2:] == [str(out / "sge" / TASK_SCRIPT), "null"] and array[-1] == str(out / "sge" / TASK_SCRIPT)
    assert _script_copy(sub.null_job) == _script_copy(sub.task_job)
    assert _option(null, "-N")[0].startswith("null_study_") and _option(null, "-N") != _option(array, "-N")
    # the merge is held on both arrays, by their names
    assert _option(merge, "-hold_jid") == [f"{_option(array, '-N')[0]},{_option(null, '-N')[0]}"]
    assert merge[-1] == str(out / "sge" / MERGE_SCRIPT) and not _option(merge, "-t")
    env = sub.env
    assert (env["BOOTGPU_PERMUTATIONS"], env["BOOTGPU_REPLICATES_PER_TASK"], env["BOOTGPU_NULL_TASKS"]) == ("10", "3", "4")
    # each null task runs `bootgpu null` with the study's input, focus list and analysis options
    cmd = sub.null_task_command(2)
    assert cmd[:12] == [sys.executable, "-m", "bootgpu", "null", "--expr", str(expr_tsv), "--out", str(out),
                        "--permutations", "10", "--replicates", "3:6"]  # fmt: skip
    assert cmd[cmd.index("--backend") + 1] == "numpy" and cmd[cmd.index("--focus") + 1] == env["BOOTGPU_FOCUS"]
    assert cmd[-len(env["BOOTGPU_RUN_ARGS"].split()):] == env["BOOTGPU_RUN_ARGS"].split()
    assert sub.record()["permutations"] == 10 and sub.record()["null_tasks"] == 4
    # without --permutations: no null job, no null variables
    plain, _ = _submission(_submit_args(expr_tsv, out, *CPU_OPTIONS))
    assert plain.null is None and plain.null_job is None and len(plain.commands()) == 2
    assert not any(k.startswith(("BOOTGPU_PERMUTATIONS", "BOOTGPU_NULL")) for k in plain.env)


@pytest.mark.parametrize("n_perm, extra, per_task", [(10, ["--replicates-per-task", "3"], 3), (7, ["--replicates-per-task", "7"], 7),
                                                     (2, ["--replicates-per-task", "5"], 2), (200, [], 4), (9, [], 4)])  # fmt: skip
def test_null_tasks_cover_every_replicate_once(expr_tsv, tmp_path, n_perm, extra, per_task):
    """Task j of M computes replicates (j-1)R .. min(jR, N)-1, in Python and in the task script; by
    default R is a focus task's most genes (12 genes in 3 tasks: 4), at most N."""
    python = _stand_in_python(tmp_path / "python")
    sub, _ = _submission(_submit_args(expr_tsv, tmp_path / "study", *CPU_OPTIONS, "--permutations", str(n_perm), *extra),
                         python=str(python))  # fmt: skip
    assert sub.null.per_task == per_task and sub.null.tasks == math.ceil(n_perm / per_task)
    ranges = [_replicates(sub.null_task_command(j)) for j in range(1, sub.null.tasks + 1)]
    covered = [r for rng in ranges for r in rng]
    assert covered == list(range(n_perm)) and all(len(rng) for rng in ranges)
    job_env = tmp_path / "job.env"
    job_env.write_text(sub.env_text("now"))
    script = tmp_path / TASK_SCRIPT
    script.write_text(_script_copy(sub.null_job))
    for task in sorted({1, sub.null.tasks}):
        proc = subprocess.run(["sh", str(script), *sub.null_job.args], capture_output=True, text=True,
                              env={"PATH": os.environ["PATH"], "BOOTGPU_JOB_ENV": str(job_env), "SGE_TASK_ID": str(task)})
        assert proc.returncode == 0, proc.stderr
        assert f"ARGS {' '.join(sub.null_task_command(task)[1:])}\n" in proc.stdout
        assert f"bootgpu null task {task}/{sub.null.tasks} (replicates " in proc.stdout
    proc = subprocess.run(["sh", str(script), "null"], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "BOOTGPU_JOB_ENV": str(job_env),
                               "SGE_TASK_ID": str(sub.null.tasks + 1)})  # fmt: skip
    assert proc.returncode == 2 and "beyond the" in proc.stderr


def test_null_tasks_still_to_run_and_the_merge_holds(expr_tsv, tmp_path):
    argv = _submit_args(expr_tsv, tmp_path / "study", *NULL_OPTIONS)  # 10 replicates, tasks 0:3 3:6 6:9 9:10
    sub, _ = _submission(argv, replicates_done=[0, 1, 2, 3, 4, 9])  # task 2 lacks replicate 5, task 3 all
    assert sub.null.todo == (2, 3) and sub.null.array_range == "2-3"
    array, null, merge = sub.commands()
    assert _option(null, "-t") == ["2-3"] and _option(merge, "-hold_jid") == [f"{sub.task_job.name},{sub.null_job.name}"]
    # focus genes all done: the null array alone, the merge held on it
    shards = [(k, 3) for k in (1, 2, 3)]
    sub, _ = _submission(argv, shards=shards, replicates_done=[4, 5])
    assert sub.todo == () and [j.name for j in sub.jobs()] == [sub.null_job.name, sub.merge_job.name]
    assert _option(sub.commands()[1], "-hold_jid") == [sub.null_job.name]
    # the null done (e.g. held by null.h5): the focus array alone before the merge; both done: the merge alone
    sub, _ = _submission(argv, replicates_done=range(10))
    assert sub.null.todo == () and [j.name for j in sub.jobs()] == [sub.task_job.name, sub.merge_job.name]
    assert _option(sub.commands()[1], "-hold_jid") == [sub.task_job.name]
    sub, _ = _submission(argv, shards=shards, replicates_done=range(12))
    assert sub.jobs() == [sub.merge_job] and not _option(sub.commands()[0], "-hold_jid")


def test_permutations_refused_where_they_make_no_sense(expr_tsv, tmp_path, capsys):
    base = ["sge", "submit", "--expr", str(expr_tsv), "--out", str(tmp_path / "s"), "--queue-type", "cpu", "--dry-run"]
    for extra, needle in (
        (["--replicates-per-task", "5"], "--replicates-per-task needs --permutations"),
        (["--permutations", "0"], "--permutations must be at least 1"),
        (["--permutations", "10", "--replicates-per-task", "0"], "--replicates-per-task must be at least 1"),
    ):
        code, _, err = _main([*base, *extra], capsys)
        assert code == 2 and err.count("\n") == 1 and needle in err, (extra, err)
    assert not (tmp_path / "s").exists()
    code, _, err = _main(["null", "--expr", str(expr_tsv), "--out", str(tmp_path / "s"), "--permutations", "4",
                          "--replicates", "0:2", "--gather-only"], capsys)  # fmt: skip
    assert code == 2 and "--gather-only gathers all --permutations replicates" in err


def test_merge_script_gathers_the_null_when_submitted_with_permutations(expr_tsv, tmp_path):
    python = _stand_in_python(tmp_path / "python")
    for options, n_commands in ((NULL_OPTIONS, 2), (CPU_OPTIONS, 1)):
        sub, _ = _submission(_submit_args(expr_tsv, tmp_path / "study", *options), python=str(python))
        job_env = tmp_path / "job.env"
        job_env.write_text(sub.env_text("now"))
        script = tmp_path / MERGE_SCRIPT
        script.write_text(_script_copy(sub.merge_job))
        proc = subprocess.run(["sh", str(script)], capture_output=True, text=True,
                              env={"PATH": os.environ["PATH"], "BOOTGPU_JOB_ENV": str(job_env)})  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert [line[5:] for line in proc.stdout.splitlines() if line.startswith("ARGS ")] == \
            [" ".join(cmd[1:]) for cmd in sub.merge_commands()]  # fmt: skip
        assert len(sub.merge_commands()) == n_commands
    gather = _submission(_submit_args(expr_tsv, tmp_path / "study", *NULL_OPTIONS))[0].merge_commands()[1]
    assert gather[3:4] == ["null"] and "--gather-only" in gather and gather[gather.index("--backend") + 1] == "numpy"
    assert "--replicates" not in gather and "--memory-budget" not in gather
    again = build_parser().parse_args(gather[3:])
    assert again.gather_only and again.permutations == 10


def test_null_submission_flow_status_and_resubmission(expr_tsv, tmp_path, capsys, monkeypatch):
    """Three jobs submitted and recorded; status counts replicate files (one of another study is
    not counted); a resubmission runs only the null tasks not done."""
    calls = tmp_path / "calls"
    _fake_scheduler(tmp_path / "bin", calls, monkeypatch)
    out = tmp_path / "study"
    common = ["--expr", str(expr_tsv), "--out", str(out), "--focus", "#0:4", *FAST]
    submit = ["sge", "submit", *common, "--queue-type", "cpu", "--tasks", "2", "--permutations", "4",
              "--replicates-per-task", "2"]  # fmt: skip
    code, stdout, err = _main(submit, capsys)
    assert code == 0, err
    array_call, null_call, merge_call = calls.read_text().splitlines()
    assert "-t 1-2" in null_call and null_call.endswith("bootgpu-task.sh null") and "-hold_jid bootgpu_" in merge_call
    assert "null: 4 replicates in 2 tasks of 2" in stdout
    assert "submitted array job 101 (tasks 1-2) and null array job 102 (tasks 1-2) and merge job 103 (runs after 101 and 102)" in stdout
    record = json.loads((out / "sge" / "study.json").read_text())
    assert [(s["array_job"], s["null_job"], s["merge_job"]) for s in record["submissions"]] == [(101, 102, 103)]
    assert record["permutations"] == 4 and "--permutations" in record["bootgpu_submit"]
    # null task 1 ran (replicates 0 and 1); a replicate file of another study (seed 5) is in the way
    assert _main(["null", *common, "--permutations", "4", "--replicates", "0:2", "--backend", "numpy"], capsys)[0] == 0
    other = tmp_path / "other"
    assert _main(["null", *common, "--out", str(other), "--permutations", "4", "--replicates", "3:4", "--seed", "5",
                  "--backend", "numpy"], capsys)[0] == 0  # fmt: skip
    (other / "null" / "replicate-000003.h5").rename(out / "null" / "replicate-000003.h5")
    code, stdout, _ = _main(["status", str(out)], capsys)
    assert code == 0 and "null: 2 of 4 replicates done (50%)" in stdout
    assert "not this study's null: " in stdout and "replicate-000003.h5" in stdout
    assert "job 102 (null): finished" in stdout
    (out / "null" / "replicate-000003.h5").unlink()
    code, stdout, err = _main(submit, capsys)
    assert code == 0, err
    assert "tasks 2-2 to run (2 replicates already done)" in stdout
    assert " -t 2-2 " in calls.read_text().splitlines()[4] and calls.read_text().splitlines()[4].endswith(" null")
