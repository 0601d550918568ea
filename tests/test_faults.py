"""Faults a study directory must survive (issue 21), each against an uninterrupted run: a run killed
at named points, SIGTERM / SIGINT / SIGUSR1, two runs on one directory, --overwrite during a run, a
part under another name, a full disk, flipped bytes in a chunk, a memory budget under ulimit -v, an
--out one cannot write, degenerate data.  Each ends in results equal to the uninterrupted run's,
or in a refusal of one line with exit code 2; never a study of mixed runs with exit 0, a traceback
or a segmentation fault.  docs/reliability.md lists the promises these tests hold.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from damage import flip_chunk
from snapshots import study_files

FOCUS = "#0,#3,#7,#11,#20,#31"
N_FOCUS = 6
ANALYSIS = ["--n-bootstrap", "20", "--fdr-alpha", "0.2", "--backend", "numpy", "--processes", "1"]


def _run(args, env=None, check_clean=True, **kw) -> subprocess.CompletedProcess:
    """``bootgpu ARGS`` in a process of its own (faults kill processes)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "bootgpu", *args], capture_output=True, text=True, env=full_env,
                          timeout=600, **kw)
    if check_clean:
        _assert_clean_exit(proc)
    return proc


def _assert_clean_exit(proc) -> None:
    """No traceback, no segmentation fault: a refusal is one line starting 'bootgpu: '."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode not in (139, -11, 134, -6), proc.stderr
    if proc.returncode == 2:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("bootgpu: error:")]
        assert len(errors) == 1, proc.stderr


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*.tmp-*")]


@pytest.fixture(scope="module")
def expr_tsv(tmp_path_factory, write_demo_tsv):
    return write_demo_tsv(tmp_path_factory.mktemp("data") / "expr.tsv", 150)


@pytest.fixture(scope="module")
def reference(expr_tsv, tmp_path_factory):
    """The uninterrupted study: its files, as tests compare them."""
    out = tmp_path_factory.mktemp("ref") / "study"
    proc = _run(["run", "--expr", str(expr_tsv), "--out", str(out), "--focus", FOCUS, *ANALYSIS])
    assert proc.returncode == 0, proc.stderr
    return study_files(out)


def _args(expr_tsv, out, *extra):
    return ["run", "--expr", str(expr_tsv), "--out", str(out), "--focus", FOCUS, *ANALYSIS, *extra]


# -- killed at named points, then resumed -------------------------------------------------------

@pytest.mark.parametrize("fault", ["kill:part:3", "kill:assemble:2", "kill:results", "kill:tables"])
def test_killed_run_resumes_to_the_same_study(expr_tsv, tmp_path, reference, fault):
    out = tmp_path / "study"
    killed = _run(_args(expr_tsv, out), env={"BOOTGPU_TEST_FAULT": fault}, check_clean=False)
    assert killed.returncode == -signal.SIGKILL
    again = _run(_args(expr_tsv, out))
    assert again.returncode == 0, again.stderr
    if fault in ("kill:results", "kill:tables"):  # results.h5 was in place: the finish is completed, nothing computed
        assert "finish was interrupted" in again.stderr and "rebuilding its tables" in again.stderr
    assert study_files(out) == reference
    assert not _temporaries(out) and not (out / "parts").exists() and not (out / ".locks").exists()
    assert json.loads((out / "finished.json").read_text())["files"].keys() == {"results.h5", "rewiring_hubs.tsv",
                                                                             "network_summary.tsv"}


def test_a_truncated_or_missing_table_of_a_finished_study_is_rebuilt(expr_tsv, tmp_path, reference):
    out = tmp_path / "study"
    assert _run(_args(expr_tsv, out)).returncode == 0
    summary = out / "network_summary.tsv"
    summary.write_text(summary.read_text()[:100])  # truncated
    (out / "rewiring_hubs.tsv").unlink()
    again = _run(_args(expr_tsv, out))
    assert again.returncode == 0 and "rebuilding its tables" in again.stderr
    assert study_files(out) == reference
    status = _run(["status", str(out)])
    assert "merged: yes" in status.stdout


# -- signals ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, code", [("SIGTERM", 143), ("SIGINT", 130), ("SIGUSR1", 138), ("SIGUSR2", 140)])
def test_a_signal_stops_the_run_in_one_line_and_the_same_command_resumes(expr_tsv, tmp_path, reference, name, code):
    out = tmp_path / "study"
    # the run starts with every signal at its default (a shell's background job ignores SIGINT, and
    # a process inherits that), as a run started in a terminal does
    stopped = _run(_args(expr_tsv, out), env={"BOOTGPU_TEST_FAULT": f"{name}:part:3"},
                   preexec_fn=lambda: signal.signal(getattr(signal, name), signal.SIG_DFL))
    assert stopped.returncode == code, stopped.stderr
    last = stopped.stderr.strip().splitlines()[-1]
    what = "Ctrl-C" if name == "SIGINT" else name
    assert last == (f"bootgpu: stopped by {what}: 2 of {N_FOCUS} focus genes are saved in {out / 'parts'}; the same "
                    f"command resumes from there")
    assert not _temporaries(out) and len(list((out / "parts").glob("focus-*.h5"))) == 2
    again = _run(_args(expr_tsv, out))
    assert again.returncode == 0 and f"resuming: 2 of {N_FOCUS}" in again.stderr
    assert study_files(out) == reference


def test_sigterm_stops_worker_processes_without_leaving_files(expr_tsv, tmp_path, reference):
    out = tmp_path / "study"
    args = [a for a in _args(expr_tsv, out) if a not in ("--processes", "1")] + ["--processes", "2"]
    env = {"BOOTGPU_THREADS": "2", "BOOTGPU_TEST_FAULT": "pause:part:2"}  # until stopped
    proc = subprocess.Popen([sys.executable, "-m", "bootgpu", *args], env={**os.environ, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not list((out / "parts").glob("focus-*.h5")) and time.time() < deadline:  # a worker is into its second
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "stopped by SIGTERM" in err and "Traceback" not in err, err
    assert not _temporaries(out) and not (out / ".locks").exists()
    again = _run(_args(expr_tsv, out))
    assert again.returncode == 0
    assert study_files(out) == reference


# -- two runs on one directory ---------------------------------------------------------------------

def _start_paused(args, out):
    """A run that holds its lock at its first part (``BOOTGPU_TEST_FAULT=pause``) until the test
    creates ``out``'s sibling file 'resume' (``_resume``)."""
    env = {**os.environ, "BOOTGPU_TEST_FAULT": "pause:part:1", "BOOTGPU_TEST_RESUME_FILE": str(out.parent / "resume")}
    proc = subprocess.Popen([sys.executable, "-m", "bootgpu", *args], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not list((out / ".locks").glob("*.lock")) and time.time() < deadline:
        time.sleep(0.05)
    assert list((out / ".locks").glob("*.lock")), "the first run never took its lock"
    return proc


def _resume(out) -> None:
    (out.parent / "resume").write_text("")


def test_two_identical_runs_at_once_the_second_refuses_naming_the_first(expr_tsv, tmp_path, reference):
    out = tmp_path / "study"
    first = _start_paused(_args(expr_tsv, out), out)
    second = _run(_args(expr_tsv, out))
    assert second.returncode == 2
    line = second.stderr.strip().splitlines()[-1]
    assert "the whole study is in use by `bootgpu run" in line and f"pid {first.pid}" in line and "since" in line
    _resume(out)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert study_files(out) == reference


def test_overwrite_during_a_run_is_refused_and_never_mixes_studies(expr_tsv, tmp_path, reference):
    out = tmp_path / "study"
    first = _start_paused(_args(expr_tsv, out), out)
    other = _args(expr_tsv, out, "--overwrite")
    other[other.index("20")] = "40"  # another B: another study
    refused = _run(other)
    assert refused.returncode == 2 and "in use by" in refused.stderr
    _resume(out)
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert study_files(out) == reference  # every focus gene of the first study, B = 20


def test_shards_of_one_split_run_side_by_side_but_not_beside_the_whole_study(expr_tsv, tmp_path, reference):
    out = tmp_path / "study"
    first = _start_paused(_args(expr_tsv, out, "--shard", "1/2"), out)
    second = _run(_args(expr_tsv, out, "--shard", "2/2"))  # the other shard: side by side
    assert second.returncode == 0, second.stderr
    whole = _run(_args(expr_tsv, out))  # the whole study while shard 1 runs: refused
    assert whole.returncode == 2 and "shard-0001-of-0002 is in use" in whole.stderr
    other_split = _run(_args(expr_tsv, out, "--shard", "1/3"))  # another split overlaps shard 1/2's genes
    assert other_split.returncode == 2 and "in use" in other_split.stderr
    _resume(out)
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert _run(["merge", str(out)]).returncode == 0
    assert study_files(out) == reference


def test_a_lock_left_by_a_dead_process_is_taken_over(expr_tsv, tmp_path, reference):
    import socket

    out = tmp_path / "study"
    (out / ".locks").mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record = {"host": socket.gethostname(), "pid": int(dead.stdout), "started": None, "since": "then",
              "command": "bootgpu run (killed)", "token": "0" * 16}
    (out / ".locks" / "study.lock").write_text(json.dumps(record))
    assert _run(_args(expr_tsv, out)).returncode == 0
    assert study_files(out) == reference


def test_a_live_lock_on_another_host_is_respected_until_it_is_stale(expr_tsv, tmp_path):
    from bootgpu.study import lock as lock_module

    out = tmp_path / "study"
    (out / ".locks").mkdir(parents=True)
    path = out / ".locks" / "study.lock"
    path.write_text(json.dumps({"host": "node-17.cluster", "pid": 4242, "started": None, "since": "earlier",
                                "command": "bootgpu run --out study", "token": "1" * 16}))
    refused = _run(_args(expr_tsv, out))
    assert refused.returncode == 2 and "on node-17.cluster (pid 4242" in refused.stderr
    old = time.time() - lock_module.STALE_SECONDS - 60
    os.utime(path, (old, old))  # its holder stopped touching it ten minutes ago: gone
    assert _run(_args(expr_tsv, out)).returncode == 0


# -- a part under another name --------------------------------------------------------------------

def test_a_foreign_part_under_an_alias_name_is_never_merged(expr_tsv, tmp_path, reference):
    other = tmp_path / "other"  # a study with B = 30, stopped with its parts on disk
    other_args = _args(expr_tsv, other)
    other_args[other_args.index("20")] = "30"
    assert _run(other_args, env={"BOOTGPU_TEST_FAULT": "kill:results"}, check_clean=False).returncode == -9
    out = tmp_path / "study"
    assert _run(_args(expr_tsv, out), env={"BOOTGPU_TEST_FAULT": "kill:part:1"}, check_clean=False).returncode == -9
    shutil.copy(other / "parts" / "focus-000007.h5", out / "parts" / "focus-07.h5")  # an alias of focus gene 7
    status = _run(["status", str(out)])
    assert status.returncode == 0 and "focus-07.h5 (not a part's name" in status.stdout
    assert _run(_args(expr_tsv, out)).returncode == 0
    assert study_files(out) == reference
    with h5py.File(out / "results.h5") as h5:
        assert h5["focus/7/boot_p"][()].min() >= 1 / 20


def test_a_part_of_another_study_under_the_right_name_is_refused(expr_tsv, tmp_path):
    other = tmp_path / "other"
    other_args = _args(expr_tsv, other)
    other_args[other_args.index("20")] = "30"
    _run(other_args, env={"BOOTGPU_TEST_FAULT": "kill:results"}, check_clean=False)
    out = tmp_path / "study"
    _run(_args(expr_tsv, out), env={"BOOTGPU_TEST_FAULT": "kill:part:1"}, check_clean=False)
    shutil.copy(other / "parts" / "focus-000007.h5", out / "parts" / "focus-000007.h5")
    refused = _run(_args(expr_tsv, out))
    assert refused.returncode == 2 and "focus-000007.h5: this part belongs to another study (n_bootstrap" in refused.stderr


# -- a full disk ---------------------------------------------------------------------------------

def test_a_full_disk_while_writing_a_part_is_one_line_and_resumable(expr_tsv, tmp_path, reference):
    out = tmp_path / "study"
    full = _run(_args(expr_tsv, out), env={"BOOTGPU_TEST_FAULT": "enospc:part:3"})
    assert full.returncode == 2
    line = full.stderr.strip().splitlines()[-1]
    assert line.startswith(f"bootgpu: error: {out / 'parts' / 'focus-000007.h5'}: cannot write: no space left")
    assert "free some space and rerun the same command" in line
    assert not _temporaries(out) and len(list((out / "parts").glob("focus-*.h5"))) == 2
    assert _run(_args(expr_tsv, out)).returncode == 0
    assert study_files(out) == reference


def test_too_little_space_for_the_results_is_refused_before_writing(expr_tsv, tmp_path, reference, monkeypatch):
    from bootgpu.study import integrity

    out = tmp_path / "study"
    _run(_args(expr_tsv, out), env={"BOOTGPU_TEST_FAULT": "kill:assemble:1"}, check_clean=False)
    real = shutil.disk_usage
    monkeypatch.setattr(integrity.shutil if hasattr(integrity, "shutil") else shutil, "disk_usage",
                        lambda path: real(path)._replace(free=1000))
    from bootgpu.cli import main

    code = main(_args(expr_tsv, out)[:])
    assert code == 2
    assert not (out / "results.h5").exists() and not _temporaries(out)
    monkeypatch.setattr(shutil, "disk_usage", real)
    assert main(_args(expr_tsv, out)) == 0
    assert study_files(out) == reference


def test_a_real_full_filesystem_never_crashes(expr_tsv, tmp_path):
    """A 3 MiB tmpfs, where the kernel allows mounting one: the run stops with one line."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (the injected ENOSPC tests above cover the same paths)")
    try:
        proc = _run(_args(expr_tsv, mount / "study", "--n-bootstrap", "200"))
        assert proc.returncode in (0, 2), proc.stderr
        if proc.returncode == 2:
            assert "no space left" in proc.stderr or "not enough free space" in proc.stderr
            assert not _temporaries(mount)
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


# -- flipped bytes ----------------------------------------------------------------------------------

def test_a_damaged_part_is_moved_aside_and_recomputed(expr_tsv, tmp_path, reference):
    out = tmp_path / "study"
    _run(_args(expr_tsv, out), env={"BOOTGPU_TEST_FAULT": "kill:part:4"}, check_clean=False)
    flip_chunk(out / "parts" / "focus-000003.h5", "focus/3/boot_p")
    status = _run(["status", str(out), "--verify"])
    assert status.returncode == 1 and "damaged: " in status.stdout and "focus-000003.h5" in status.stdout
    again = _run(_args(expr_tsv, out))
    assert again.returncode == 0 and "focus-000003.h5 is damaged" in again.stderr and "recomputing it" in again.stderr
    assert study_files(out) == reference
    assert list((out / "parts" / "damaged").iterdir()) if (out / "parts").exists() else True


def test_a_damaged_results_file_is_reported_in_one_line_and_repaired_by_the_same_command(expr_tsv, tmp_path,
                                                                                         reference):
    out = tmp_path / "study"
    assert _run(_args(expr_tsv, out)).returncode == 0
    flip_chunk(out / "results.h5", "focus/7/ci_low")
    status = _run(["status", str(out), "--verify"])
    assert status.returncode == 1 and "focus/7/ci_low" in status.stdout
    assert "merged: not finished (results.h5 changed" in status.stdout
    for cmd in (["top", str(out), "--gene", "#7"], ["export", str(out), "--format", "tsv", "--gene", "#7"]):
        proc = _run(cmd)
        assert proc.returncode == 2 and "damaged" in proc.stderr and "rerun" in proc.stderr, (cmd, proc.stderr)
    again = _run(_args(expr_tsv, out))
    assert again.returncode == 0 and "results.h5 is damaged (focus/7/ci_low" in again.stderr
    assert "recomputing 1" in again.stderr
    assert study_files(out) == reference


def test_a_damaged_shard_is_named_by_merge(expr_tsv, tmp_path):
    out = tmp_path / "study"
    for k in (1, 2):
        assert _run(_args(expr_tsv, out, "--shard", f"{k}/2")).returncode == 0
    flip_chunk(out / "shards" / "shard-0002-of-0002.h5", "focus/11/delta")  # shard 2 of 2: #3, #11, #31
    merge = _run(["merge", str(out)])
    assert merge.returncode == 2
    assert "shard-0002-of-0002.h5: damaged in focus gene 11" in merge.stderr and "--shard 2/2" in merge.stderr
    assert not (out / "results.h5").exists()


# -- memory budgets under ulimit -v ----------------------------------------------------------------

@pytest.fixture(scope="module")
def all_shaped(tmp_path_factory):
    """12,625 genes x 128 samples (ALL's shape: k = 25, joint level tables), as HDF5."""
    from bootgpu.expression_io import Expression, write_expression_h5

    values = np.random.default_rng(3).standard_normal((12625, 128))
    path = tmp_path_factory.mktemp("all-shaped") / "expr.h5"
    write_expression_h5(Expression(values, [f"g{i}" for i in range(12625)], [f"s{j}" for j in range(128)]), path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("budget", ["150M", "400M", "1G"])
def test_a_budget_under_ulimit_v_holds_or_is_refused_with_the_smallest_that_works(all_shaped, tmp_path, budget):
    import resource
    import re

    from bootgpu.planner import parse_size

    def run(budget: str):
        limit = parse_size(budget, "budget") + 900 * 2**20  # the interpreter and libraries (~410 MB of address space) on top

        def limited():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        return _run(["run", "--expr", str(all_shaped), "--out", str(tmp_path / "study"), "--focus", "#0", "--backend",
                     "numpy", "--memory-budget", budget, "--verbose", "--n-bootstrap", "200"], preexec_fn=limited)

    proc = run(budget)
    if budget == "150M":
        assert proc.returncode == 2
        found = re.search(r"memory budget 150\.00 MiB is too small .*: at least (\d+\.\d\d) MiB is needed", proc.stderr)
        assert found, proc.stderr
        assert not (tmp_path / "study" / "results.h5").exists()
        budget = f"{math.ceil(float(found.group(1)))}M"  # the smallest that works: it must
        proc = run(budget)
    assert proc.returncode == 0, proc.stderr
    used, predicted, budget_bytes = (int(v) for v in re.search(r"\(bytes: (\d+) (\d+) (\d+);", proc.stderr).groups())
    assert used <= predicted <= budget_bytes == parse_size(budget, "budget")


# -- an --out one cannot write ----------------------------------------------------------------------

def _nobody_can_run_python() -> bool:
    probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                            "import bootgpu.cli, numpy, h5py"],
                           capture_output=True)
    return probe.returncode == 0


def test_an_out_in_a_directory_one_cannot_write_is_one_line(expr_tsv, monkeypatch, capsys):
    """As user nobody where this machine lets nobody run this Python (then for real: a directory
    only root may write); else the same error, injected where the study's first file is made."""
    base = Path(tempfile.mkdtemp(prefix="bootgpu-perm-"))
    try:
        base.chmod(0o755)  # readable by everyone, writable by its owner only
        data = base / "expr.tsv"
        shutil.copy(expr_tsv, data)
        data.chmod(0o644)
        args = ["run", "--expr", str(data), "--out", str(base / "study"), "--focus", "#0", *ANALYSIS]
        if os.geteuid() == 0 and shutil.which("setpriv") and _nobody_can_run_python():
            proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                                   "bootgpu", *args], capture_output=True, text=True, env={**os.environ, "HOME": str(base)})
            _assert_clean_exit(proc)
            code, err = proc.returncode, proc.stderr
        else:
            import errno

            from bootgpu.cli import main

            real_mkdir = Path.mkdir

            def refused(self, *a, **kw):
                if str(self).startswith(str(base / "study")):
                    raise PermissionError(errno.EACCES, "Permission denied", str(self))
                return real_mkdir(self, *a, **kw)

            monkeypatch.setattr(Path, "mkdir", refused)
            code, err = main(args), capsys.readouterr().err
        assert code == 2
        assert err.strip().splitlines()[-1] == (f"bootgpu: error: cannot write to {base / 'study'}: Permission denied; "
                                                f"give an --out you can write to")
        assert not (base / "study").exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- degenerate data ---------------------------------------------------------------------------------

def _matrix_tsv(path: Path, values: np.ndarray) -> Path:
    rows = ["gene\t" + "\t".join(f"s{j}" for j in range(values.shape[1]))]
    rows += [f"g{i}\t" + "\t".join(f"{v:.6g}" for v in row) for i, row in enumerate(values)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_constant_focus_gene_is_skipped_with_a_warning_and_not_ranked(tmp_path):
    values = np.random.default_rng(4).standard_normal((60, 50))
    values[5] = 3.0  # constant: its split would be sample order
    values[9, :] = np.repeat([1.0, 2.0], 25)  # two values, each half the samples: LOW and HIGH tie too? no: 10 and 10
    expr = _matrix_tsv(tmp_path / "expr.tsv", values)
    out = tmp_path / "study"
    proc = _run(["run", "--expr", str(expr), "--out", str(out), "--focus", "#0,#5,#9", *ANALYSIS])
    assert proc.returncode == 0, proc.stderr
    assert "bootgpu: warning: focus gene g5 its values tie across the split" in proc.stderr
    rows = [line.split("\t") for line in (out / "rewiring_hubs.tsv").read_text().splitlines()]
    header, body = rows[0], rows[1:]
    last = dict(zip(header, body[-1]))
    assert last["gene_id"] == "g5" and last["rank"] == "-" and last["note"].startswith("skipped: its values tie")
    assert [dict(zip(header, r))["rank"] for r in body[:-1]] == ["1", "2"]  # g0 and g9 ranked
    with h5py.File(out / "results.h5") as h5:
        assert h5["focus/5"].attrs["n_tests"] == 0 and h5["focus/5/gene_i"].shape == (0,)


def test_heavy_ties_warn_once_about_edges_without_a_ci(tmp_path):
    rng = np.random.default_rng(5)
    values = rng.poisson(0.6, (80, 40)).astype(np.float64)  # counts: most values 0 or 1
    values[0] = np.arange(40)  # a focus gene with a clean split
    expr = _matrix_tsv(tmp_path / "expr.tsv", values)
    proc = _run(["run", "--expr", str(expr), "--out", str(tmp_path / "study"), "--focus", "#0", "--low-frac", "0.25",
                 "--high-frac", "0.25", "--n-bootstrap", "50", "--fdr-alpha", "0.9", "--backend", "numpy"])
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "have no bootstrap CI" in line]
    assert len(warnings) == 1 and "heavy ties" in warnings[0]


def test_identical_columns_warn_that_nothing_could_be_tested(tmp_path):
    values = np.tile(np.random.default_rng(6).standard_normal((30, 1)), (1, 40))
    values[0] = np.arange(40)  # the focus gene varies; every other gene is constant across samples
    expr = _matrix_tsv(tmp_path / "expr.tsv", values)
    proc = _run(["run", "--expr", str(expr), "--out", str(tmp_path / "study"), "--focus", "#0", *ANALYSIS])
    assert proc.returncode == 0, proc.stderr
    assert "focus gene g0: no gene pair could be tested" in proc.stderr


def test_status_lists_an_unreadable_file_with_a_part_name_instead_of_failing(expr_tsv, tmp_path):
    out = tmp_path / "study"
    _run(_args(expr_tsv, out), env={"BOOTGPU_TEST_FAULT": "kill:part:2"}, check_clean=False)
    (out / "parts" / "focus-000099.h5").write_text("not HDF5")
    status = _run(["status", str(out)])
    assert status.returncode == 0
    assert "focus-000099.h5 (not a readable bootgpu file)" in status.stdout


def test_a_quoted_id_with_the_separator_is_one_field(tmp_path):
    from bootgpu.expression_io import read_expression

    path = tmp_path / "expr.csv"
    path.write_text('gene,s1,s2,s3,s4\n"ACTB, beta-actin",1,2,3,4\n"GAPDH","5","6","7","8"\n')
    expr = read_expression(path)
    assert expr.gene_names == ("ACTB, beta-actin", "GAPDH")
    np.testing.assert_array_equal(expr.values, [[1, 2, 3, 4], [5, 6, 7, 8]])
