"""The processes a run spreads its focus genes over, so that a study keeps the hardware busy.

- ``PartWriters`` (a device run): the device computes focus gene g + 1 while host processes build
  focus gene g's networks (igraph) and write its part file (HDF5, gzip).  Those are host work of
  up to a second or two for a focus gene with a million edges, during which the device would
  otherwise wait.
- ``GeneWorkers`` (several focus genes): P processes, each analysing whole focus genes and
  writing their parts, within its share of the memory budget (``planner.plan_workers``).  On a
  host, each with T threads (P x T <= the run's threads): the work inside one focus gene does not
  scale to 16 threads; independent focus genes do.  On a device, P processes share it: a focus
  gene issues ~1,500 small kernels and a few dozen waits for the device, so one process leaves
  the device idle most of the time, and several keep it busy (each with a CUDA context of its
  own, started from a fork server: a forked CUDA context is unusable).

Processes, not threads: networks, HDF5 (h5py serialises its calls within a process) and much of
a small focus gene's work hold the GIL.  Each focus gene is computed whole by one process, with
the draws a pure function of (seed, focus gene, replicate, slot) and every reduction in a fixed
order, so its part file holds the same values whichever process computed it, in whichever
order; parts are assembled in focus order at the end, as before.  On Linux the gene workers are
forked (the expression matrix is shared, not copied) and a device run's writers come from a fork
server (no CUDA state in them); elsewhere they are spawned.  They ignore
SIGINT: the run that started them handles it and stops them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bootgpu.config import AnalysisConfig
from bootgpu.networks import EdgeFilter, focus_network
from bootgpu.results_io import write_part

_WORKER: dict = {}  # in a worker process: what its initializer was given


def focus_networks(result, n_genes: int, cfg: AnalysisConfig):
    """The networks of a focus gene's result (``bootgpu.networks.focus_network``), with the
    study's edge filter and FDR alpha."""
    edge_filter = EdgeFilter(cfg.min_effect, cfg.corr_threshold, cfg.ci_filter)
    return focus_network(n_genes, result.focus, result.edges, cfg.fdr_alpha, edge_filter)


def finish_focus(path: Path, result, cfg: AnalysisConfig, meta: dict, gene_names) -> None:
    """A computed focus gene's networks, then its part file (atomically: complete or absent)."""
    result.network = focus_networks(result, len(gene_names), cfg)
    write_part(path, meta, result, gene_names)


def process_context(share_memory: bool):
    """Forked processes share the parent's pages (the expression matrix); a device run's writers
    start from a fork server instead, which never held a CUDA context."""
    if not sys.platform.startswith("linux"):
        return multiprocessing.get_context("spawn")
    return multiprocessing.get_context("fork" if share_memory else "forkserver")


def _ignore_interrupts() -> None:
    """A worker leaves Ctrl-C to the run that started it, and when that run stops it (SIGTERM)
    removes the file it is writing and ends at once."""
    from bootgpu.atomic import remove_in_progress

    def stop(signum, frame):
        remove_in_progress()
        os._exit(128 + signum)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGUSR1", "SIGUSR2"):
        signal.signal(getattr(signal, name), stop)


class _Pool:
    """A process pool with at most ``in_flight`` tasks queued or running; each task's result goes
    to ``on_done`` as it finishes (a worker's exception is raised there).  Used as a context
    manager: on success it waits for every task, on an error or interrupt it stops the processes."""

    def __init__(self, processes: int, initializer, initargs: tuple, on_done: Callable, in_flight: int,
                 share_memory: bool = True):
        self.executor = ProcessPoolExecutor(processes, mp_context=process_context(share_memory), initializer=initializer,
                                            initargs=initargs)
        self.pending: set = set()
        self.on_done, self.in_flight = on_done, max(1, in_flight)

    def submit(self, fn, *args) -> None:
        while len(self.pending) >= self.in_flight:
            self._collect(block=True)
        self.pending.add(self.executor.submit(fn, *args))
        self._collect(block=False)

    def _collect(self, block: bool) -> None:
        if not self.pending:
            return
        done, self.pending = wait(self.pending, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            self.on_done(future.result())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            try:  # the last tasks: a signal or an error while waiting for them stops the workers too
                while self.pending:
                    self._collect(block=True)
            except BaseException:
                self._stop()
                raise
            self.executor.shutdown()
            return False
        self._stop()
        return False

    def _stop(self) -> None:
        """Stop the workers now: a task may be minutes long (its part is written atomically, and
        a stopped worker removes its temporary file)."""
        processes = list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()


def _init_writer(cfg: AnalysisConfig, meta: dict, gene_names) -> None:
    _ignore_interrupts()
    _WORKER.update(cfg=cfg, meta=meta, gene_names=gene_names)


def _write(path: Path, result) -> int:
    finish_focus(path, result, _WORKER["cfg"], _WORKER["meta"], _WORKER["gene_names"])
    return result.focus


class PartWriters(_Pool):
    """Host processes that finish a device run's focus genes (``finish_focus``) while the device
    computes the next ones; ``on_done(focus)`` as each part is written.  At most two focus genes a
    process wait, which bounds the host memory their results hold."""

    def __init__(self, processes: int, cfg: AnalysisConfig, meta: dict, gene_names, on_done: Callable):
        super().__init__(processes, _init_writer, (cfg, meta, list(gene_names)), on_done, 2 * processes,
                         share_memory=False)

    def write(self, path: Path, result) -> None:
        self.submit(_write, path, result)


def _init_analyser(backend_name: str, values, cfg: AnalysisConfig, plan, k_low: int, k_high: int, meta: dict,
                   gene_names, cores: tuple) -> None:
    _ignore_interrupts()
    active, busy, slots = cores
    os.environ["BOOTGPU_THREADS"] = str(busy)  # this process's share of the cores
    from threadpoolctl import threadpool_limits

    from bootgpu.backends import get_backend

    backend = get_backend(backend_name)
    if plan.threads > busy and hasattr(backend, "share_cores"):
        # the plan sizes chunks for ``plan.threads``: all the cores, taken while the others are idle
        backend.share_cores(lambda: max(busy, slots // max(1, active.value)))
    expr = backend.to_device(values)
    backend.prepare()  # kernels ready (forked: already loaded) and this process's memory baseline
    _WORKER.update(backend=backend, expr=expr, cfg=cfg, plan=plan, k=(k_low, k_high), meta=meta,
                   gene_names=gene_names, blas=threadpool_limits(busy), active=active)


@dataclass(frozen=True)
class GeneReport:
    """What a run keeps of each focus gene it computed: the memory it was predicted to take and
    took (worker processes), and what a study's warnings count."""

    focus: int
    predicted: int
    measured: int = 0
    n_edges: int = 0
    nan_ci: int = 0  # selected edges without a bootstrap CI (a gene constant in some resample)
    n_tests: int = 0
    skipped: str = ""

    @classmethod
    def of(cls, result, plan, measured: int = 0) -> "GeneReport":
        import numpy as np

        predicted = result.plan.predicted_peak_bytes if result.plan is not None else plan.predicted_peak_bytes
        ci = result.edges.get("ci_low")
        nan_ci = int(np.count_nonzero(np.isnan(ci))) if ci is not None and len(ci) else 0
        return cls(int(result.focus), int(predicted), int(measured), int(len(result.edges.get("gene_i", ()))), nan_ci,
                   int(result.attrs.get("n_tests", 0)), str(result.attrs.get("skipped", "")))


def _analyse(gene: int, path: Path) -> GeneReport:
    from bootgpu.pipeline import analyse_focus

    w = _WORKER
    backend, active = w["backend"], w["active"]
    with active.get_lock():
        active.value += 1
    try:
        with backend.track_peak() as peak:
            result = analyse_focus(backend, w["expr"], gene, w["cfg"], w["plan"], *w["k"])
            finish_focus(path, result, w["cfg"], w["meta"], w["gene_names"])
    finally:
        with active.get_lock():
            active.value -= 1
    return GeneReport.of(result, w["plan"], peak.peak_bytes)


class GeneWorkers(_Pool):
    """``processes`` processes, each analysing whole focus genes (``analyse``: pipeline, networks,
    part file) with ``plan`` (its threads and share of the budget); ``on_done(GeneReport)`` as each
    part is written.  Focus genes are handed out one at a time, so
    a focus gene with a million edges does not hold back the others."""

    def __init__(self, processes: int, backend_name: str, values, cfg: AnalysisConfig, plan, k_low: int, k_high: int,
                 meta: dict, gene_names, on_done: Callable, share_memory: bool = True, busy_threads: int = 0):
        # ``busy_threads``: each process's threads while all are busy (default ``plan.threads``); a
        # plan for more lets a process take the cores of idle ones, e.g. the last, largest focus gene
        active = process_context(share_memory).Value("i", 0)  # processes analysing a focus gene now
        cores = (active, busy_threads or plan.threads, max(plan.threads, (busy_threads or plan.threads) * processes))
        super().__init__(processes, _init_analyser,
                         (backend_name, values, cfg, plan, k_low, k_high, meta, list(gene_names), cores), on_done,
                         2 * processes, share_memory=share_memory)

    def analyse(self, gene: int, path: Path) -> None:
        self.submit(_analyse, gene, path)
