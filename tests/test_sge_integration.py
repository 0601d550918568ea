"""`bootgpu sge submit` on a real Grid Engine: the local single-host cluster that
sge/testing/start-local-sge.sh starts (queues cpu.q and gpu.q, a per-job gpu consumable, PE smp,
requestable h_vmem; docs/local-grid-engine.md).

- cpu.q: 15 focus genes of a 40-gene slice of the embedded data in 3 array tasks; the merge runs
  after every task (-hold_jid) and its results equal one local `bootgpu run`, array for array;
- a task killed mid-run (SIGKILL to its process, after it finished some genes): the merge reports
  the missing shard, a resubmission runs only that task, which resumes from parts/, and the merged
  results are complete and still equal;
- gpu.q: submitted with -l gpu=1; on a host without a usable GPU the tasks' `--backend auto` falls
  back to NumPy and says so in their logs.
- --permutations 3: a null array over the replicates beside the focus-gene array; the merge, held
  on both, gathers null.h5 and writes gene_significance.tsv, equal to one local `run --permutations`.

Skipped, with the reason, where `qsub` is missing or the cluster does not answer; CI sets
BOOTGPU_REQUIRE=...,sge (after starting the cluster in .ci/run; tests/environment.py), which turns
that skip into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bootgpu.cli import main
from bootgpu.study.directory import shard_slice
from environment import unavailable
from study_compare import assert_focus_equal, assert_study_equal, read_all

ENV_FILE = Path("/tmp/bootgpu-local-sge.env")
N_GENES = 40
FOCUS = list(range(2, 17))  # 15 focus genes -> 3 tasks of 5
TASKS = 3
OPTIONS = ["--n-bootstrap", "50", "--fdr-alpha", "0.2", "--memory-budget", "512M"]
WAIT_S = 150


def _load_client_env() -> None:
    """SGE_ROOT and SGE_CELL from the client environment start-local-sge.sh wrote; the client
    directories go at the end of PATH if qsub is not on it (never first: that would change which
    python3 other tests find)."""
    if ENV_FILE.is_file():
        for line in ENV_FILE.read_text().splitlines():
            match = re.fullmatch(r'export (SGE_ROOT|SGE_CELL)="?([^"]*)"?', line.strip())
            if match:
                os.environ.setdefault(match[1], match[2])
    if shutil.which("qsub") is None:
        os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/bin:/usr/sbin"


def _cluster_problem() -> str | None:
    _load_client_env()
    if shutil.which("qsub") is None:
        return "qsub is not on PATH (start one with sge/testing/start-local-sge.sh)"
    try:
        proc = subprocess.run(["qstat", "-f"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"qstat does not answer: {exc}"
    if proc.returncode != 0:
        return f"the Grid Engine does not answer: {' '.join(proc.stderr.split())[:200]}"
    for queue in ("cpu.q", "gpu.q"):
        if not re.search(rf"^{re.escape(queue)}@", proc.stdout, re.MULTILINE):
            return f"no queue {queue} (the tests need the local cluster of sge/testing/start-local-sge.sh)"
    return None


@pytest.fixture(scope="module")
def cluster():
    problem = _cluster_problem()
    if problem:
        unavailable("sge", problem)
    jobs: list[int] = []
    yield jobs
    live = subprocess.run(["qstat", "-u", "*"], capture_output=True, text=True).stdout.split()
    left = [str(j) for j in jobs if str(j) in live]
    if left:
        subprocess.run(["qdel", *left], capture_output=True)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, cluster):
    path = tmp_path_factory.mktemp("sge-integration")
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

def _submit(capsys, jobs, *args) -> tuple[str, int | None, int]:
    code = main(["sge", "submit", *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    match = re.search(r"submitted array job (\d+) \(tasks ([\d-]+)\) and merge job (\d+)", out.out)
    assert match, out.out
    array_id, merge_id = int(match[1]), int(match[3])
    jobs += [array_id, merge_id]
    return out.out, array_id, merge_id


def _alive(job: int) -> bool:
    return subprocess.run(["qstat", "-j", str(job)], capture_output=True).returncode == 0


def _qacct(job: int) -> list[dict]:
    """qacct -j JOB as one dict per task (accounting is unbuffered on the local cluster)."""
    for _ in range(50):
        proc = subprocess.run(["qacct", "-j", str(job)], capture_output=True, text=True)
        if proc.returncode == 0:
            break
        time.sleep(0.2)
    records = []
    for block in proc.stdout.split("=" * 62)[1:]:
        rec = {}
        for line in block.strip().splitlines():
            key, _, value = line.partition(" ")
            rec[key] = value.strip()
        records.append(rec)
    return records


def _wait_for(job: int, out: Path) -> list[dict]:
    deadline = time.monotonic() + WAIT_S
    while _alive(job):
        if time.monotonic() > deadline:
            state = subprocess.run(["qstat", "-f"], capture_output=True, text=True).stdout
            pytest.fail(f"job {job} still queued or running after {WAIT_S} s\n{state}\n{_logs(out)}")
        time.sleep(0.5)
    return _qacct(job)


def _logs(out: Path) -> str:
    """Every job log of the study, for a failure's message."""
    return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted((out / "sge" / "logs").glob("*")))


def _epoch(text: str) -> float:
    return time.mktime(time.strptime(text, "%a %b %d %H:%M:%S %Y"))


def _assert_study_equal(out: Path, reference: Path) -> None:
    assert_study_equal(out, reference, FOCUS)


def _submit_args(expr_tsv, out, queue_type="cpu", focus=FOCUS, tasks=TASKS):
    return ["--expr", str(expr_tsv), "--out", str(out), "--queue-type", queue_type, "--tasks", str(tasks),
            "--focus", ",".join(f"#{g}" for g in focus), *OPTIONS]  # fmt: skip


# --- the tests -------------------------------------------------------------------------------------

def test_cpu_queue_array_then_merge_equals_local_run(cluster, workdir, expr_tsv, reference, capsys):
    out = workdir / "cpu"
    stdout, array_id, merge_id = _submit(capsys, cluster, *_submit_args(expr_tsv, out))
    assert " -t 1-3 " in stdout and "-hold_jid bootgpu_cpu_" in stdout
    merge = _wait_for(merge_id, out)
    tasks = _qacct(array_id)
    assert sorted(int(t["taskid"]) for t in tasks) == [1, 2, 3]
    for t in tasks + merge:
        assert t["exit_status"] == "0" and t["failed"].split()[0] == "0" and t["qname"] == "cpu.q", t
    assert "h_vmem=" in tasks[0]["category"] and "-pe smp 1" in tasks[0]["category"]
    # -hold_jid: the merge started only once every task had ended
    assert _epoch(merge[0]["start_time"]) >= max(_epoch(t["end_time"]) for t in tasks)
    _assert_study_equal(out, reference)
    assert not (out / "parts").exists()


def _task_pid(log: Path) -> int | None:
    match = re.search(r"pid (\d+)", log.read_text()) if log.is_file() else None
    return int(match[1]) if match else None


def _kill_task_mid_run(out: Path, array_id: int, task: int) -> int:
    """SIGKILL task ``task`` of the array once it has finished some but not all of its genes.
    Returns how many of its genes were done.  Only the process this test's job started is killed:
    its pid comes from the task's log and its environment must name this job and task."""
    genes = shard_slice(FOCUS, (task, TASKS))
    shard = out / "shards" / f"shard-{task:04d}-of-{TASKS:04d}.h5"
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        logs = list((out / "sge" / "logs").glob(f"*.o{array_id}.{task}"))
        log = logs[0] if logs else None
        pid = _task_pid(log) if log else None
        done = [g for g in genes if (out / "parts" / f"focus-{g:06d}.h5").exists()]
        assert not shard.exists(), "the task finished before it could be killed; make it slower"
        if pid and done:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"JOB_ID={array_id}".encode() in environ and f"SGE_TASK_ID={task}".encode() in environ
            os.kill(pid, signal.SIGKILL)
            return len(done)
        time.sleep(0.01)
    pytest.fail(f"task {task} of job {array_id} never got going")


def test_killed_task_resubmitted_completes_the_study(cluster, workdir, expr_tsv, reference, capsys):
    out = workdir / "killed"
    args = _submit_args(expr_tsv, out)
    _, array_id, merge_id = _submit(capsys, cluster, *args)
    n_done = _kill_task_mid_run(out, array_id, 2)
    assert 1 <= n_done < 5
    merge = _wait_for(merge_id, out)
    tasks = {int(t["taskid"]): t for t in _qacct(array_id)}
    assert tasks[1]["exit_status"] == tasks[3]["exit_status"] == "0", _logs(out)
    assert tasks[2]["exit_status"] != "0"  # killed
    # the merge ran anyway, found the hole and said what is missing
    assert merge[0]["exit_status"] != "0"
    merge_log = next((out / "sge" / "logs").glob(f"*.o{merge_id}")).read_text()
    assert "missing shards 2 of 3" in merge_log and "task    2/3" in merge_log
    assert not (out / "results.h5").exists()
    main(["status", str(out)])
    status = capsys.readouterr().out
    assert "2 of 3 shards written" in status and "no job of this study is queued or running" in status

    # the same command again: only task 2 runs, it resumes from parts/, and the merge completes
    stdout, array2, merge2 = _submit(capsys, cluster, *args)
    assert " -t 2-2 " in stdout
    merge = _wait_for(merge2, out)
    assert merge[0]["exit_status"] == "0"
    assert [int(t["taskid"]) for t in _qacct(array2)] == [2]
    log = next((out / "sge" / "logs").glob(f"*.o{array2}.2")).read_text()
    assert f"resuming: {n_done} of 5 focus genes already done" in log, log
    _assert_study_equal(out, reference)


def test_gpu_queue_requests_a_gpu_and_falls_back_to_numpy(cluster, workdir, expr_tsv, reference, capsys):
    from bootgpu.backends.cupy_backend import cupy_unusable_reason

    out = workdir / "gpu"
    focus = FOCUS[:4]
    stdout, array_id, merge_id = _submit(capsys, cluster, *_submit_args(expr_tsv, out, "gpu", focus, 2),
                                         "--backend", "auto", "--merge-queue", "cpu.q")  # fmt: skip
    assert " -l gpu=1 " in stdout and " -q gpu.q " in stdout
    merge = _wait_for(merge_id, out)
    tasks = _qacct(array_id)
    assert len(tasks) == 2
    for t in tasks:
        assert t["exit_status"] == "0" and t["qname"] == "gpu.q", t
        assert "gpu=1" in t["category"], t["category"]
    assert merge[0]["exit_status"] == "0" and merge[0]["qname"] == "cpu.q"
    logs = [p.read_text() for p in sorted((out / "sge" / "logs").glob(f"*.o{array_id}.*"))]
    assert len(logs) == 2
    for log in logs:
        assert "backend auto" in log
        if cupy_unusable_reason() is not None:
            assert "backend auto: using numpy (cupy not usable:" in log, log
    got, want = read_all(out / "results.h5"), read_all(reference / "results.h5")
    assert list(got["focus"]) == [str(g) for g in focus]
    assert_focus_equal(got["focus"], want["focus"], got["focus"])  # each focus gene as in the local run


def test_permutation_null_array_then_merge_gathers_p_values(cluster, workdir, expr_tsv, capsys):
    """--permutations 3: a null array (2 tasks of replicates 0:2, 2:3) beside the focus-gene array,
    the merge held on both gathers null.h5 and writes gene_significance.tsv with p values, equal to
    one local `bootgpu run --permutations 3`."""
    out, local = workdir / "null", workdir / "null-local"
    focus = FOCUS[:4]
    root = Path(__file__).resolve().parent.parent / "src"  # the jobs import bootgpu from this source tree
    code = main(["sge", "submit", *_submit_args(expr_tsv, out, focus=focus, tasks=2), "--permutations", "3",
                 "--replicates-per-task", "2", "--job-setup", f"PYTHONPATH={root}; export PYTHONPATH"])  # fmt: skip
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    match = re.search(r"submitted array job (\d+) \(tasks 1-2\) and null array job (\d+) \(tasks 1-2\) and merge job (\d+)",
                      stdout)  # fmt: skip
    assert match, stdout
    array_id, null_id, merge_id = map(int, match.groups())
    cluster += [array_id, null_id, merge_id]
    merge = _wait_for(merge_id, out)
    nulls = _qacct(null_id)
    assert sorted(int(t["taskid"]) for t in nulls) == [1, 2]
    for t in _qacct(array_id) + nulls + merge:
        assert t["exit_status"] == "0" and t["failed"].split()[0] == "0", t
    assert _epoch(merge[0]["start_time"]) >= max(_epoch(t["end_time"]) for t in nulls)
    logs = {int(p.name.rsplit(".", 1)[1]): p.read_text() for p in (out / "sge" / "logs").glob(f"*.o{null_id}.*")}
    assert "(replicates 0:2)" in logs[1] and "(replicates 2:3)" in logs[2]
    table = (out / "gene_significance.tsv").read_text().splitlines()
    header = table[0].split("\t")
    assert len(table) == 1 + len(focus) and "n_diff_edges_p" in header and "n_diff_edges_q" in header
    p_values = [float(row.split("\t")[header.index("n_diff_edges_p")]) for row in table[1:]]
    assert all(0.25 <= p <= 1 for p in p_values)  # (1 + #null >= obs) / (1 + 3)
    assert (out / "null.h5").is_file() and not (out / "null").exists()
    assert main(["run", "--expr", str(expr_tsv), "--out", str(local), "--focus", ",".join(f"#{g}" for g in focus),
                 "--backend", "numpy", "--permutations", "3", *OPTIONS]) == 0  # fmt: skip
    for name in ("gene_significance.tsv", "rewiring_hubs.tsv"):
        assert (out / name).read_text() == (local / name).read_text(), name
    main(["status", str(out)])
    assert "null: 3 of 3 replicates done (100%)" in capsys.readouterr().out
