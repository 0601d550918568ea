"""`bootgpu slurm submit` on a real Slurm: the local single-host cluster that
slurm/testing/start-local-slurm.sh starts (munged, slurmctld, slurmd; partitions cpu and gpu, one
fake GPU declared with gres.conf File=/dev/null; docs/local-slurm.md).

- partition cpu: 15 focus genes of a 40-gene slice of the embedded data in 3 array tasks; the merge
  runs once every task succeeded (--dependency=afterok) and its results equal one local
  `bootgpu run`, byte for byte;
- one array element cancelled mid-run (scancel JOB_2, after it finished some genes): the merge stays
  pending for ever (afterok never recovers), `bootgpu status` names the cancelled task with its log
  and prints the resubmit command; the same command again cancels that merge, runs only task 2
  (--array=2), which resumes from parts/, and a new merge completes the study, still equal;
- partition gpu with --gres gpu:1 (and --gpus 1): the fake GPU is granted (CUDA_VISIBLE_DEVICES),
  and on a host without a usable GPU `--backend auto` falls back to NumPy and says so in the logs;
- --permutations 3: a null array beside the focus-gene array; the merge, after both, gathers
  null.h5 and writes gene_significance.tsv, equal to one local `run --permutations`;
- --dry-run: the scripts written and printed, nothing submitted.

Job states are polled (squeue -t all lists ended jobs for the cluster's MinJobAge); sacct is not
used (the local cluster keeps no accounting).  Skipped, with the reason, where sbatch is missing or
the cluster does not answer; CI sets BOOTGPU_REQUIRE=...,slurm (tests/environment.py), which turns
that skip into a failure.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from bootgpu.cli import main
from bootgpu.study.directory import shard_slice
from environment import unavailable
from study_compare import assert_focus_equal, assert_study_equal, read_all

N_GENES = 40
FOCUS = list(range(2, 17))  # 15 focus genes -> 3 tasks of 5
TASKS = 3
OPTIONS = ["--n-bootstrap", "50", "--fdr-alpha", "0.2", "--memory-budget", "512M"]
WAIT_S = 150
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "DEADLINE",
         "BOOT_FAIL"}  # fmt: skip


def _cluster_problem() -> str | None:
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        return "sbatch is not on PATH (start a local Slurm with slurm/testing/start-local-slurm.sh)"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
        sinfo = subprocess.run(["sinfo", "-h", "-o", "%P %a %T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Slurm does not answer: {exc}"
    if ping.returncode != 0 or "UP" not in ping.stdout or sinfo.returncode != 0:
        return f"slurmctld does not answer: {' '.join((ping.stdout + ping.stderr + sinfo.stderr).split())[:200]}"
    partitions = {line.split()[0].rstrip("*"): line.split()[1:] for line in sinfo.stdout.splitlines() if line.strip()}
    for name in ("cpu", "gpu"):
        if partitions.get(name, ["down"])[0] != "up":
            return f"no partition {name} up (the tests need the local cluster of slurm/testing/start-local-slurm.sh)"
    return None


@pytest.fixture(scope="module")
def cluster():
    problem = _cluster_problem()
    if problem:
        unavailable("slurm", problem)
    jobs: list[int] = []
    yield jobs
    if jobs:
        subprocess.run(["scancel", *map(str, jobs)], capture_output=True)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, cluster):
    path = tmp_path_factory.mktemp("slurm-integration")
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def expr_tsv(workdir, write_demo_tsv):
    return write_demo_tsv(workdir / "expr40.tsv", N_GENES)


@pytest.fixture(scope="module")
def reference(workdir, expr_tsv):
    """One local `bootgpu run` of the same focus genes and options."""
    out = workdir / "local"
    focus = ",".join(f"#{g}" for g in FOCUS)
    assert main(["run", "--expr", str(expr_tsv), "--out", str(out), "--focus", focus, "--backend", "numpy", *OPTIONS]) == 0
    return out


# --- helpers ---------------------------------------------------------------------------------------

def _submit(capsys, jobs, *args) -> tuple[str, dict[str, int]]:
    """`bootgpu slurm submit ARGS`: its output and the job ids it names ('array', 'null', 'merge')."""
    code = main(["slurm", "submit", *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    ids = {}
    for label, key in (("array job", "array"), ("null array job", "null"), ("merge job", "merge")):
        if match := re.search(rf"(?:submitted |and ){label} (\d+)", out.out):
            ids[key] = int(match[1])
    assert "merge" in ids, out.out
    jobs += ids.values()
    return out.out, ids


def _states(job: int) -> dict[str, tuple[str, str]]:
    """squeue's rows of ``job`` (ended ones too): task ('' for a plain job) -> (state, reason)."""
    text = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%F|%K|%T|%r"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    rows = {}
    for line in text.splitlines():
        array, task, state, reason = line.split("|")
        if array == str(job):
            rows["" if task == "N/A" else task] = (state, reason)
    return rows


def _logs(out: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted((out / "slurm" / "logs").glob("*")))


def _wait(job: int, out: Path, until=lambda rows: rows and all(s in ENDED for s, _ in rows.values())):
    """Poll squeue until ``until(rows)`` holds for ``job``'s rows (by default: every row ended)."""
    deadline = time.monotonic() + WAIT_S
    while not until(rows := _states(job)):
        if time.monotonic() > deadline:
            pytest.fail(f"job {job}: {rows} after {WAIT_S} s\n{_logs(out)}")
        time.sleep(0.2)
    return rows


def _submit_args(expr_tsv, out, focus=FOCUS, tasks=TASKS):
    return ["--expr", str(expr_tsv), "--out", str(out), "--tasks", str(tasks),
            "--focus", ",".join(f"#{g}" for g in focus), *OPTIONS]  # fmt: skip


def _scontrol(job: int) -> str:
    return subprocess.run(["scontrol", "show", "job", str(job)], capture_output=True, text=True).stdout


def _times(job: int, key: str) -> list[str]:
    """``key`` (StartTime, EndTime) of each element of ``job`` as scontrol shows them (ISO, sortable)."""
    return re.findall(rf"\b{key}=(\S+)", _scontrol(job))


# --- the tests -------------------------------------------------------------------------------------

def test_cpu_partition_arrays_then_merge_equals_local_run(cluster, workdir, expr_tsv, reference, capsys):
    out = workdir / "cpu"
    stdout, ids = _submit(capsys, cluster, *_submit_args(expr_tsv, out), "--partition", "cpu", "--array-throttle", "2")
    assert " --array=1-3%2 " in stdout and " --partition=cpu " in stdout
    assert "--dependency=afterok:<bootgpu_cpu_" in stdout  # printed before the ids are known
    merge = _wait(ids["merge"], out)
    assert merge == {"": ("COMPLETED", "None")}, _logs(out)
    assert _states(ids["array"]) == {str(k): ("COMPLETED", "None") for k in (1, 2, 3)}
    recorded = (out / "slurm" / "study.json").read_text()
    assert f"--dependency=afterok:{ids['array']}" in recorded  # what was submitted, with the id
    # afterok: the merge started only once every task had ended
    assert min(_times(ids["merge"], "StartTime")) >= max(_times(ids["array"], "EndTime"))
    script = (out / "slurm" / "bootgpu-task.sh").read_text()
    assert "#SBATCH --partition=cpu\n" in script and "#SBATCH --cpus-per-task=1\n" in script
    assert re.search(r"#SBATCH --mem=\d+M\n", script) and "#SBATCH --time=24:00:00\n" in script
    assert_study_equal(out, reference, FOCUS)
    assert not (out / "parts").exists()
    main(["status", str(out)])
    status = capsys.readouterr().out
    assert "15 of 15 focus genes done (100%), 3 of 3 shards written" in status and "merged: yes" in status
    assert f"job {ids['merge']} (merge): completed" in status


def _paused(out: Path) -> str:
    """--job-setup that pauses task 2 of the array while it writes its second part (bootgpu.faults),
    until the file OUT/resume exists: the task is cancelled with exactly one gene done, whatever the
    machine's speed, and its resubmission (the same command) runs on once the file is there."""
    return (f'if [ "${{SLURM_ARRAY_TASK_ID:-}}" = 2 ]; then BOOTGPU_TEST_FAULT=pause:part:2; '
            f'BOOTGPU_TEST_RESUME_FILE={out}/resume; export BOOTGPU_TEST_FAULT BOOTGPU_TEST_RESUME_FILE; fi')


def _cancel_when_paused(out: Path, array_id: int, task: int) -> None:
    """scancel element ``task`` of the array once it has written its first part (and is paused)."""
    first = out / "parts" / f"focus-{shard_slice(FOCUS, (task, TASKS))[0]:06d}.h5"
    deadline = time.monotonic() + WAIT_S
    while not first.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"task {task} of job {array_id} never got going\n{_logs(out)}")
        time.sleep(0.05)
    subprocess.run(["scancel", f"{array_id}_{task}"], check=True)


def test_cancelled_task_resubmitted_completes_the_study(cluster, workdir, expr_tsv, reference, capsys):
    out = workdir / "cancelled"
    args = [*_submit_args(expr_tsv, out), "--partition", "cpu", "--job-setup", _paused(out)]
    _, ids = _submit(capsys, cluster, *args)
    _cancel_when_paused(out, ids["array"], 2)
    n_done = 1
    tasks = _wait(ids["array"], out)
    assert tasks["1"][0] == tasks["3"][0] == "COMPLETED" and tasks["2"][0] == "CANCELLED", tasks
    # afterok on an array with a cancelled task: the merge pends for ever
    merge = _wait(ids["merge"], out, until=lambda rows: rows.get("", ("", ""))[1] == "DependencyNeverSatisfied")
    assert merge[""][0] == "PENDING"
    assert not (out / "results.h5").exists()
    main(["status", str(out)])
    status = capsys.readouterr().out
    assert "2 of 3 shards written" in status and f"{10 + n_done} of 15 focus genes done" in status, status
    assert "failed: task 2 (cancelled" in status, status
    assert f"    bootgpu task 2/3: job {ids['array']}_2" in status, status  # the log's header, however long the log
    assert "the merge waits for a job that failed and can never run" in status, status
    assert "bootgpu slurm submit --expr" in status and "--tasks 3" in status, status

    # the same command again: the stuck merge is cancelled, only task 2 runs and resumes, a new merge
    (out / "resume").touch()
    stdout, ids2 = _submit(capsys, cluster, *args)
    assert " --array=2 " in stdout and f"cancelled job(s) {ids['merge']}" in stdout
    assert "; tasks 2 to run (2 already done)" in stdout
    merge = _wait(ids2["merge"], out)
    assert merge == {"": ("COMPLETED", "None")}, _logs(out)
    assert _states(ids["merge"])[""][0] == "CANCELLED"
    assert list(_states(ids2["array"])) == ["2"]
    log = next((out / "slurm" / "logs").glob(f"*.o{ids2['array']}.2")).read_text()
    assert f"resuming: {n_done} of 5 focus genes already done" in log, log
    assert_study_equal(out, reference, FOCUS)


@pytest.mark.parametrize("gpu_options", [["--gres", "gpu:1"], ["--gpus", "1"]], ids=["gres", "gpus"])
def test_gpu_partition_grants_the_gpu_and_falls_back_to_numpy(cluster, workdir, expr_tsv, reference, capsys,
                                                               gpu_options):
    from bootgpu.backends.cupy_backend import cupy_unusable_reason

    out = workdir / f"gpu-{gpu_options[0].strip('-')}"
    focus = FOCUS[:4]
    stdout, ids = _submit(capsys, cluster, *_submit_args(expr_tsv, out, focus, 2), "--partition", "gpu",
                          *gpu_options, "--backend", "auto", "--merge-partition", "cpu")  # fmt: skip
    assert f" {gpu_options[0]}={gpu_options[1]} " in stdout and " --partition=gpu " in stdout
    assert _wait(ids["merge"], out) == {"": ("COMPLETED", "None")}, _logs(out)
    assert re.search(r"TresPerNode=(gres:)?gpu:1|TresPerJob=gres:gpu:1|TresPerJob=gpu:1", _scontrol(ids["array"]))
    assert "Partition=gpu" in _scontrol(ids["array"]) and "Partition=cpu" in _scontrol(ids["merge"])
    logs = [p.read_text() for p in sorted((out / "slurm" / "logs").glob(f"*.o{ids['array']}.*"))]
    assert len(logs) == 2
    for log in logs:
        assert "granted GPU(s) 0 -> CUDA_VISIBLE_DEVICES=0" in log and "backend auto" in log, log
        if cupy_unusable_reason() is not None:
            assert "backend auto: using numpy (cupy not usable:" in log, log
    got, want = read_all(out / "results.h5"), read_all(reference / "results.h5")
    assert list(got["focus"]) == [str(g) for g in focus]
    assert_focus_equal(got["focus"], want["focus"], got["focus"])  # each focus gene as in the local run


def test_permutation_null_array_then_merge_gathers_p_values(cluster, workdir, expr_tsv, capsys):
    """--permutations 3: a null array (2 tasks of replicates 0:2, 2:3) beside the focus-gene array;
    the merge, after both, gathers null.h5 and writes gene_significance.tsv, equal to one local
    `bootgpu run --permutations 3`."""
    out, local = workdir / "null", workdir / "null-local"
    focus = FOCUS[:4]
    stdout, ids = _submit(capsys, cluster, *_submit_args(expr_tsv, out, focus, 2), "--permutations", "3",
                          "--replicates-per-task", "2")  # fmt: skip
    assert f"submitted array job {ids['array']} (tasks 1-2) and null array job {ids['null']} (tasks 1-2)" in stdout
    assert _wait(ids["merge"], out) == {"": ("COMPLETED", "None")}, _logs(out)
    assert _states(ids["null"]) == {"1": ("COMPLETED", "None"), "2": ("COMPLETED", "None")}
    assert min(_times(ids["merge"], "StartTime")) >= max(_times(ids["null"], "EndTime"))
    logs = {int(p.name.rsplit(".", 1)[1]): p.read_text() for p in (out / "slurm" / "logs").glob(f"*.o{ids['null']}.*")}
    assert "(replicates 0:2)" in logs[1] and "(replicates 2:3)" in logs[2]
    assert (out / "null.h5").is_file() and not (out / "null").exists()
    assert main(["run", "--expr", str(expr_tsv), "--out", str(local), "--focus", ",".join(f"#{g}" for g in focus),
                 "--backend", "numpy", "--permutations", "3", *OPTIONS]) == 0  # fmt: skip
    for name in ("gene_significance.tsv", "rewiring_hubs.tsv"):
        assert (out / name).read_text() == (local / name).read_text(), name
    main(["status", str(out)])
    assert "null: 3 of 3 replicates done (100%)" in capsys.readouterr().out


def test_dry_run_prints_the_scripts_and_submits_nothing(cluster, workdir, expr_tsv, capsys):
    out = workdir / "dry"
    before = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%F"], capture_output=True, text=True).stdout.split()
    code = main(["slurm", "submit", *_submit_args(expr_tsv, out), "--partition", "gpu", "--gpus", "1", "--dry-run"])
    stdout = capsys.readouterr().out
    assert code == 0 and "dry run: nothing submitted" in stdout
    after = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%F"], capture_output=True, text=True).stdout.split()
    assert max(map(int, after), default=0) == max(map(int, before), default=0)  # no new job id
    assert [line.split()[0] for line in stdout.splitlines() if line.startswith("sbatch ")] == ["sbatch", "sbatch"]
    assert "#SBATCH --gpus=1" in stdout and "#SBATCH --partition=gpu" in stdout  # the scripts' directives
    assert f"--- {out / 'slurm' / 'bootgpu-task.sh'}" in stdout and "exec \"$BOOTGPU_PYTHON\" -m bootgpu" in stdout
    assert (out / "slurm" / "bootgpu-task.sh").is_file() and not list((out / "slurm" / "logs").glob("*"))
