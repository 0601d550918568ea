"""A study computed in parallel worker processes, or pipelined through host processes that write
the parts, equals the serial run dataset by dataset; progress lines reach a job log."""

from __future__ import annotations

import io

import pytest

from bootgpu.backends import get_backend
from bootgpu.cli import main
from bootgpu.config import AnalysisConfig
from bootgpu.expression_io import read_expression
from bootgpu.errors import BootgpuError
from bootgpu.planner import WORKER_OVERHEAD_BYTES, plan_batches, plan_workers
from bootgpu.study.progress import Progress, format_duration
from bootgpu.study.run import StudyRun
from snapshots import study_files as _study_files

FOCUS = "#0,#3,#7,#11,#20"
COMMON = ["--n-bootstrap", "30", "--fdr-alpha", "0.2", "--backend", "numpy", "--focus", FOCUS]


@pytest.fixture(scope="module")
def expr_tsv(tmp_path_factory, write_demo_tsv):
    return write_demo_tsv(tmp_path_factory.mktemp("data") / "expr.tsv", 60)


@pytest.fixture(scope="module")
def serial(expr_tsv, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "study"
    assert main(["run", "--expr", str(expr_tsv), "--out", str(out), *COMMON, "--processes", "1"]) == 0
    return _study_files(out)


def test_parallel_processes_equal_the_serial_run(expr_tsv, tmp_path, serial, capsys, monkeypatch):
    monkeypatch.setenv("BOOTGPU_THREADS", "2")
    out = tmp_path / "study"
    assert main(["run", "--expr", str(expr_tsv), "--out", str(out), *COMMON, "--processes", "2"]) == 0
    err = capsys.readouterr().err
    assert "2 processes of 1 thread" in err and "memory: each worker process used" in err
    assert _study_files(out) == serial


def test_host_part_writers_equal_the_serial_run(expr_tsv, tmp_path, serial):
    """The device path (the main process computes, host processes write the parts) on the strict
    backend, which stands in for CuPy here."""
    expr = read_expression(expr_tsv)
    cfg = AnalysisConfig(n_bootstrap=30, fdr_alpha=0.2)
    backend = get_backend("strict")
    k_low, k_high = cfg.validate(expr.n_samples)
    plan = plan_batches(expr.n_genes, expr.n_samples, k_low, k_high, 30, 1 << 30)
    from bootgpu.study.directory import claim_study, parse_focus
    from bootgpu.study.identity import StudyIdentity
    from bootgpu.study.layout import StudyLayout
    from bootgpu.core.draws import RNG_ALGORITHM

    focus = parse_focus(FOCUS, expr)
    out = tmp_path / "study"
    identity = StudyIdentity.of(expr, cfg, focus, RNG_ALGORITHM)
    claim_study(StudyLayout(out), identity, focus, overwrite=False, log=lambda line: None)
    study = StudyRun(backend, expr, cfg, plan, focus, out, identity=identity, writers=2)
    assert study.part_writers(len(focus)) == 2
    study.run(log=lambda line: None)
    got = _study_files(out)
    # the backend that computed the study is recorded in /meta: that is the only difference
    for name in ("meta@attrs",):
        got["results"][name] = {k: v for k, v in got["results"][name].items() if k not in ("backend", "device")}
        serial_meta = {k: v for k, v in serial["results"][name].items() if k not in ("backend", "device")}
        assert got["results"][name] == serial_meta
    for key in got["results"]:
        if key != "meta@attrs":
            assert got["results"][key] == serial["results"][key], key
    assert got["hubs"] == serial["hubs"] and got["networks"] == serial["networks"]


def test_parallel_run_resumes_an_interrupted_serial_one(expr_tsv, tmp_path, serial, capsys, monkeypatch):
    """A serial run stopped after two focus genes (Ctrl-C) is finished by a parallel one, which
    reuses the two parts; the study equals the uninterrupted serial run."""
    import bootgpu.study.run as study_module

    real, calls = study_module.analyse_focus, []

    def interrupted(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(study_module, "analyse_focus", interrupted)
    monkeypatch.setenv("BOOTGPU_THREADS", "2")
    out = tmp_path / "study"
    args = ["run", "--expr", str(expr_tsv), "--out", str(out), *COMMON]
    assert main([*args, "--processes", "1"]) == 130
    assert len(list((out / "parts").glob("*.h5"))) == 2
    monkeypatch.setattr(study_module, "analyse_focus", real)
    capsys.readouterr()
    assert main([*args, "--processes", "2"]) == 0
    assert "resuming: 2 of 5 focus genes already done" in capsys.readouterr().err
    assert _study_files(out) == serial


def test_plan_workers_shares_cores_and_budget():
    def make_plan(budget, threads):
        return plan_batches(12625, 128, 25, 25, 1000, budget, working_set_bytes=16 << 20, threads=threads)

    assert plan_workers(1, 100, 8 << 30, make_plan) == (1, None)
    assert plan_workers(16, 1, 8 << 30, make_plan) == (1, None)
    # 16 processes (one thread each while all are busy), each plan sized for all 16 cores within its
    # share: a process takes the idle ones' cores (Backend.share_cores)
    processes, plan = plan_workers(16, 100, 64 << 30, make_plan)
    assert processes == 16 and plan.threads == 16 and plan.cache_pairs
    assert plan == make_plan(((64 << 30) - 16 * WORKER_OVERHEAD_BYTES) // 16, 16)
    assert plan.budget_bytes * processes <= 64 << 30
    processes, plan = plan_workers(16, 3, 64 << 30, make_plan)  # fewer focus genes than cores
    assert processes == 3 and plan.threads == 16
    processes, plan = plan_workers(16, 100, 64 << 30, make_plan, most=4)
    assert processes == 4 and plan.threads == 16

    def narrow(budget, threads):  # a share that cannot hold chunks for every core keeps its own threads
        if threads > 4 and budget < 32 << 30:
            raise BootgpuError("too small")
        return make_plan(budget, threads)

    processes, plan = plan_workers(16, 100, 64 << 30, narrow, most=4)
    assert processes == 4 and plan.threads == 4
    # a budget too small for 16 caching processes gets fewer of them, each still caching
    small = 4 << 30
    processes, plan = plan_workers(16, 100, small, make_plan)
    assert 1 < processes < 16 and plan.cache_pairs and plan.threads in (16 // processes, 16)
    def caches(p):
        share = (small - p * WORKER_OVERHEAD_BYTES) // p
        try:
            return share > 0 and make_plan(share, 16 // p).cache_pairs
        except BootgpuError:
            return False

    assert processes == max(p for p in range(2, 17) if caches(p))


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_lines_at_a_steady_interval_when_not_a_terminal():
    stream, clock = io.StringIO(), FakeClock()
    with Progress(10, stream=stream, interval=60, clock=clock, terminal=False) as bar:
        for _ in range(3):  # 3 genes in 45 s: no line yet
            clock.now += 15
            bar.update()
        assert stream.getvalue() == ""
        clock.now += 15
        bar.update()  # 4 genes at 60 s
        assert stream.getvalue() == "progress: 4 of 10 focus genes (40.0%), 15.0 s a gene, about 2 min left\n"
        for _ in range(6):
            clock.now += 15
            bar.update()
    lines = stream.getvalue().splitlines()
    assert lines[1] == "progress: 8 of 10 focus genes (80.0%), 15.0 s a gene, about 30 s left"
    assert lines[-1] == "progress: 10 of 10 focus genes (100.0%), 15.0 s a gene, 2 min in all"
    assert len(lines) == 3


def test_progress_rate_and_durations():
    clock = FakeClock()
    bar = Progress(8763, stream=io.StringIO(), interval=60, clock=clock, terminal=False)
    bar.done, clock.now = 120, 57.0
    assert bar.line() == "progress: 120 of 8,763 focus genes (1.4%), 2.11 genes/s, about 1 h 08 min left"
    assert [format_duration(s) for s in (4, 59.4, 61, 3600, 3 * 86400 + 7200)] == ["4 s", "59 s", "1 min", "1 h 00 min",
                                                                                   "3 d 02 h"]


def test_run_logs_progress_lines_in_a_job_log(expr_tsv, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BOOTGPU_PROGRESS_SECONDS", "1e-9")  # a line after every focus gene
    out = tmp_path / "study"
    assert main(["run", "--expr", str(expr_tsv), "--out", str(out), *COMMON, "--processes", "1"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("progress: ")]
    assert [line.split(" (")[0] for line in lines] == [f"progress: {i} of 5 focus genes" for i in range(1, 5)] + [
        "progress: 5 of 5 focus genes"]
