"""Memory: budgets come from the limits a process really has, the planner's batches grow with the
budget, measured peaks stay under the prediction and the prediction under the budget, and
`bootgpu indices` at the reference shape completes under a 2 GiB address-space cap."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from bootgpu.backends.host_memory import cgroup_room, host_memory_limits
from bootgpu.errors import BootgpuError
from bootgpu.planner import plan_batches, plan_bootstrap, plan_indices, replicate_chunk_for

PLAIN_MEMORY_LINE = re.compile(r"memory: used \d+(\.\d)? [MG]iB at most \(predicted \d+(\.\d)? [MG]iB\) of a \d+(\.\d)? [MG]iB budget")
MEMORY_LINE = re.compile(r"memory: .*\(bytes: (\d+) (\d+) (\d+); peak RSS (\d+), RSS at start (\d+)\)")


def _cli(args, limit_bytes=None, timeout=600):
    def cap():
        if limit_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-m", "bootgpu", *args], capture_output=True, text=True,
                          preexec_fn=cap, timeout=timeout)


def _memory(stderr: str):
    """The byte counts of the memory line (``--verbose``) after its plain words."""
    assert PLAIN_MEMORY_LINE.search(stderr), stderr
    match = MEMORY_LINE.search(stderr)
    assert match, stderr
    rise, predicted, budget, peak_rss, start_rss = map(int, match.groups())
    return rise, predicted, budget, peak_rss - start_rss


@pytest.fixture(scope="module")
def demo_h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("mem") / "demo.h5"
    from bootgpu.expression_io import demo_expression_path

    assert _cli(["convert", "--expr", str(demo_expression_path()), "--out", str(path)]).returncode == 0
    return path


def test_planner_batches_grow_with_the_budget():
    plans = [plan_batches(8763, 938, 187, 187, 1000, b << 20) for b in (800, 1280, 2048, 4096, 16384)]
    for key in ("rows_per_block", "edge_chunk"):
        sizes = [getattr(p, key) for p in plans]
        assert sizes == sorted(sizes) and sizes[-1] > sizes[0], (key, sizes)
    # replicate chunks are sized once the selected edges are known: for the same 20,000 edges on
    # 8,000 genes they grow with the budget too, and so do the re-planned edge chunks
    replanned = [plan_bootstrap(p, 20000) for p in plans]
    reps = [replicate_chunk_for(p, 1000, 187, 149, 8000, 20000) for p in replanned]
    assert reps == sorted(reps) and reps[-1] > reps[0], reps
    edges = [p.edge_chunk for p in replanned]
    assert edges == sorted(edges) and edges[-1] == 20000 and edges[0] < 20000, edges
    # index blocks grow until a fixed cap (bigger blocks only hold more memory: the stage is write-bound)
    blocks = [plan_indices(8763, 938, 187, 187, 1000, b << 20)[0] for b in (48, 96, 192, 1024, 16384)]
    assert blocks == sorted(blocks) and blocks[2] > blocks[0] and blocks[-1] == blocks[-2]
    assert [p.cache_pairs for p in plans] == sorted(p.cache_pairs for p in plans)
    assert all(p.predicted_peak_bytes <= p.budget_bytes for p in plans)


@pytest.mark.parametrize("genes, edges", [(3000, 50_000), (12625, 400_000), (500, 2_000), (20, 30)])
def test_host_replicate_chunks_are_whole_vector_loops_within_the_cache_cap(genes, edges):
    """A host's replicate chunk (ALL's k = 25, m = 20) is within its working-set cap and, when larger
    than one, a multiple of ``HOST_VECTOR_REPLICATES`` (the compiled kernels then run no scalar
    remainder loop); a device's is not rounded."""
    from bootgpu.planner import HOST_VECTOR_REPLICATES, replicate_chunk_cap

    host = plan_bootstrap(plan_batches(12625, 128, 25, 25, 1000, 4 << 30, threads=2, working_set_bytes=16 << 20,
                                       ranks_by_gene=True), edges)
    reps = replicate_chunk_for(host, 1000, 25, 20, genes, edges)
    cap = replicate_chunk_cap(host.working_set_bytes, 25, 20, genes, edges, by_gene=True)
    assert 1 <= reps <= min(cap, 500), (reps, cap)
    assert reps <= HOST_VECTOR_REPLICATES or reps % HOST_VECTOR_REPLICATES == 0, reps
    device = plan_bootstrap(plan_batches(12625, 128, 25, 25, 1000, 4 << 30), edges)
    assert replicate_chunk_for(device, 1000, 25, 20, genes, edges) >= reps


def test_planner_says_how_much_is_needed_when_nothing_fits():
    with pytest.raises(BootgpuError, match=r"too small .* at least [0-9.]+ MiB is needed"):
        plan_batches(8763, 938, 187, 187, 1000, 100 << 20)
    with pytest.raises(BootgpuError, match=r"at least [0-9.]+ MiB is needed"):
        plan_indices(8763, 938, 187, 187, 1000, 1 << 20)


def test_rlimit_as_is_seen_as_the_binding_limit():
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30));"
            "from bootgpu.backends.host_memory import tightest_host_limit; print(*tightest_host_limit(), sep='|')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    room, name = out.split("|")
    assert name.startswith("RLIMIT_AS") and 2 << 30 < int(room) < 3 << 30


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_cgroup_limit_minus_usage(tmp_path, version, monkeypatch):
    """The cgroup room is limit - usage, read from this process's cgroup path (v1 or v2 layout)."""
    rel = Path(os.path.relpath("/", "/")) / "job.slice" / "task"
    if version == "v2":
        base = tmp_path / rel
        base.mkdir(parents=True)
        (base / "memory.max").write_text("4294967296\n")
        (base / "memory.current").write_text("1073741824\n")
        cgroup = "0::/job.slice/task\n"
    else:
        base = tmp_path / "memory" / rel
        base.mkdir(parents=True)
        (base / "memory.limit_in_bytes").write_text("2147483648\n")
        (base / "memory.usage_in_bytes").write_text("536870912\n")
        cgroup = "4:memory:/job.slice/task\n"
    real_read = Path.read_text

    def fake_read(self, *a, **k):
        return cgroup if str(self) == "/proc/self/cgroup" else real_read(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", fake_read)
    assert cgroup_room(tmp_path) == (3 << 30 if version == "v2" else 3 << 29)


def test_available_ram_is_always_a_limit():
    limits = host_memory_limits()
    assert 0 < limits["available RAM"]


def test_budget_over_the_address_space_cap_is_refused_before_allocating(demo_h5, tmp_path):
    out = tmp_path / "idx.h5"
    proc = _cli(["indices", "--expr", str(demo_h5), "--out", str(out), "--memory-budget", "3G", "--backend", "numpy"],
                limit_bytes=2 << 30)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "exceeds" in proc.stderr and "RLIMIT_AS" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("budget", ["40M", "120M", "600M"])
def test_indices_peak_under_prediction_under_budget(demo_h5, tmp_path, budget):
    proc = _cli(["indices", "--expr", str(demo_h5), "--out", str(tmp_path / "i.h5"), "--memory-budget", budget,
                 "--backend", "numpy", "--verbose"])
    assert proc.returncode == 0, proc.stderr
    rise, predicted, budget_bytes, rss_rise = _memory(proc.stderr)
    assert rise <= predicted <= budget_bytes
    assert rss_rise <= predicted


@pytest.mark.parametrize("budget", ["120M", "300M", "1G"])
def test_run_peak_under_prediction_under_budget(demo_h5, tmp_path, budget):
    proc = _cli(["run", "--expr", str(demo_h5), "--out", str(tmp_path / "r"), "--focus", "#0:2", "--n-bootstrap", "100",
                 "--memory-budget", budget, "--backend", "numpy", "--verbose", "--processes", "1"])
    assert proc.returncode == 0, proc.stderr
    rise, predicted, budget_bytes, rss_rise = _memory(proc.stderr)
    assert rise <= predicted <= budget_bytes
    assert rss_rise <= predicted


def _datasets(path):
    with h5py.File(path) as h5:
        return {name: h5["indices"][name][()] for name in h5["indices"]}, dict(h5["meta"].attrs)


@pytest.fixture(scope="module")
def indices_by_batch(demo_h5, tmp_path_factory):
    """`bootgpu indices` of the demo data with --batch-size 1, 37 and auto: {batch: path}."""
    tmp = tmp_path_factory.mktemp("indices")
    files = {}
    for batch in ("1", "37", "auto"):
        files[batch] = tmp / f"idx-{batch}.h5"
        proc = _cli(["indices", "--expr", str(demo_h5), "--out", str(files[batch]), "--batch-size", batch,
                     "--n-bootstrap", "300", "--backend", "numpy", "--memory-budget", "200M"])
        assert proc.returncode == 0, proc.stderr
    return files


def test_indices_identical_for_batch_sizes_1_37_auto(indices_by_batch):
    files = indices_by_batch
    ref, meta = _datasets(files["auto"])
    assert meta["processing_mode"].startswith("batch_") or meta["processing_mode"] == "vectorized"
    assert ref["low_boot"].shape == (2000, 300, 20) and ref["low"].dtype == np.int32
    for batch in ("1", "37"):
        got, got_meta = _datasets(files[batch])
        assert got_meta["processing_mode"] == f"batch_{batch}"
        for name in ref:
            assert np.array_equal(got[name], ref[name]), (batch, name)


@pytest.mark.requires("h5diff")
def test_indices_files_for_batch_sizes_1_37_auto_agree_under_h5diff(indices_by_batch):
    """The same check by HDF5's own tool: the /indices groups compare equal, dataset by dataset."""
    for batch in ("1", "37"):
        diff = subprocess.run(["h5diff", str(indices_by_batch["auto"]), str(indices_by_batch[batch]), "/indices",
                               "/indices"], capture_output=True, text=True)
        assert diff.returncode == 0, diff.stdout + diff.stderr


def test_indices_are_the_engines_split_and_draws(demo_h5, tmp_path):
    from bootgpu.core.draws import draw_positions
    from bootgpu.expression_io import read_expression

    out = tmp_path / "i.h5"
    assert _cli(["indices", "--expr", str(demo_h5), "--out", str(out), "--n-bootstrap", "50", "--seed", "9",
                 "--backend", "numpy"]).returncode == 0
    values = read_expression(demo_h5).values
    data, meta = _datasets(out)
    assert meta["seed"] == 9 and meta["rng_algorithm"] == "splitmix64-pairs-v1"
    for g in (0, 777, 1999):
        order = np.argsort(values[g], kind="stable")
        assert np.array_equal(data["low"][g], order[:25]) and np.array_equal(data["high"][g], order[-25:])
        for code, name, group in ((0, "low_boot", order[:25]), (1, "high_boot", order[-25:])):
            pos = draw_positions(np, 9, g, code, np.arange(50), 25, 20)
            assert np.array_equal(data[name][g], group[pos])


def test_indices_default_file_opens_with_plain_h5py_filters(demo_h5, tmp_path):
    out = tmp_path / "i.h5"
    assert _cli(["indices", "--expr", str(demo_h5), "--out", str(out), "--n-bootstrap", "20", "--backend", "numpy"]).returncode == 0
    with h5py.File(out) as h5:
        ds = h5["indices/low_boot"]
        assert ds.compression == "gzip" and ds.shuffle and ds.chunks == (1, 20, 20)


@pytest.mark.slow
def test_reference_shape_indices_complete_under_a_2_gib_address_space_cap(tmp_path):
    """8,763 x 938, B = 1,000 (the original's vectorised mode needed ~29 GB) under ulimit -v 2 GiB."""
    expr = tmp_path / "expr.h5"
    with h5py.File(expr, "w") as h5:
        h5["expr"] = np.random.default_rng(0).standard_normal((8763, 938)).astype(np.float32)
        h5["gene_names"] = np.array([f"g{i}" for i in range(8763)], dtype=object).astype(h5py.string_dtype())
        h5["sample_names"] = np.array([f"s{j}" for j in range(938)], dtype=object).astype(h5py.string_dtype())
    out = tmp_path / "indices.h5"
    proc = _cli(["indices", "--expr", str(expr), "--out", str(out), "--backend", "numpy", "--verbose"], limit_bytes=2 << 30, timeout=1500)
    assert proc.returncode == 0, proc.stderr
    rise, predicted, budget, _ = _memory(proc.stderr)
    assert rise <= predicted <= budget < 2 << 30
    with h5py.File(out) as h5:
        assert h5["indices/low_boot"].shape == (8763, 1000, 149)
        last = h5["indices/high_boot"][8762]
        assert last.min() >= 0 and last.max() < 938
    out.unlink()


PREDICTION_SCRIPT = """
import json, sys
import numpy as np
from bootgpu.backends import get_backend
from bootgpu.config import AnalysisConfig
from bootgpu.pipeline import analyse_focus
from bootgpu.planner import plan_batches
from bootgpu.synthetic import modular_matrix
from bootgpu.expression_io import read_expression, demo_expression_path

case, n_boot = sys.argv[1], int(sys.argv[2])
if case == "demo":
    values = read_expression(demo_expression_path()).values
elif case.startswith("planted:"):
    from bootgpu.synthetic import planted_matrix
    _, genes, samples = case.split(":")
    values = planted_matrix(int(genes), int(samples), 40, strength=0.6).values
else:
    genes, samples, sizes = case.split(":")
    values = modular_matrix(int(genes), int(samples), tuple(int(s) for s in sizes.split(",")), seed=1).values
backend = get_backend("numpy")
backend.prepare()  # as a run does before its memory baseline: the compiled kernels loaded
cfg = AnalysisConfig(n_bootstrap=n_boot)
k_low, k_high = cfg.validate(values.shape[1])
plan = plan_batches(values.shape[0], values.shape[1], k_low, k_high, n_boot, 2 << 30,
                    working_set_bytes=backend.working_set_bytes, threads=2)
with backend.track_peak() as peak:
    result = analyse_focus(backend, values, 0, cfg, plan, k_low, k_high)
print(json.dumps({"edges": int(result.edges["gene_i"].shape[0]), "measured": peak.peak_bytes,
                  "planned": plan.predicted_peak_bytes, "replanned": result.plan.predicted_peak_bytes}))
"""


@pytest.mark.parametrize("case,n_boot,edges", [
    ("demo", 300, (50, 1000)),  # real data (ALL probes, k = 25): the pair passes set the peak
    ("planted:2000:400", 300, (30, 200)),  # the random reference shape, smaller: few edges, k = 80
    ("1500:100:200,100", 500, (10000, 40000)),  # the bootstrap of modules' edges sets it
])
def test_replanned_prediction_is_within_1_5x_of_the_measured_peak(case, n_boot, edges):
    """One focus gene in a fresh process: the peak RSS rise is at most the prediction re-planned for
    the selected edges, and the prediction at most 1.5x the rise; with the edges known the
    prediction drops below the plan made before (which assumes the largest edge chunk)."""
    proc = subprocess.run([sys.executable, "-c", PREDICTION_SCRIPT, case, str(n_boot)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "BOOTGPU_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert edges[0] <= got["edges"] <= edges[1], got
    assert got["measured"] <= got["replanned"] <= 1.5 * got["measured"], got
    assert got["replanned"] < got["planned"], got


def test_study_reports_the_largest_replanned_prediction_of_its_focus_genes(tmp_path):
    from bootgpu.backends import get_backend
    from bootgpu.config import AnalysisConfig
    from bootgpu.expression_io import demo_expression_path, read_expression
    from bootgpu.pipeline import analyse_focus
    from bootgpu.study.run import StudyRun

    expr = read_expression(demo_expression_path())
    backend, cfg = get_backend("numpy"), AnalysisConfig(n_bootstrap=50)
    k_low, k_high = cfg.validate(expr.n_samples)
    plan = plan_batches(expr.n_genes, expr.n_samples, k_low, k_high, 50, 1 << 30, threads=1)
    focus = [0, 7, 1999]
    study = StudyRun(backend, expr, cfg, plan, focus, tmp_path / "run", processes=1)
    assert study.predicted_peak_bytes is None
    study.run(log=lambda line: None)
    each = [analyse_focus(backend, expr.values, g, cfg, plan, k_low, k_high).plan.predicted_peak_bytes for g in focus]
    assert study.predicted_peak_bytes == max(each) and study.predicted_peak_bytes < plan.predicted_peak_bytes
