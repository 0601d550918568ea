"""Shared options of the asv suite, in the style of SciPy's ``benchmarks/common.py``.

- Every benchmark class is parametrised over ``BACKENDS`` x ``SIZES``; the parameters never depend
  on what is installed.  A combination that cannot run here (CuPy without a usable CUDA device)
  raises ``NotImplementedError`` in ``setup``, which asv records as skipped, not failed.
- Timers stop only after the device is synchronised (``Benchmark.sync``).
- A benchmark class names its ``stage`` and defines ``run()``; ``Benchmark`` generates the trio
  from them (``__init_subclass__``): ``time_<stage>`` (wall clock), ``peakmem_<stage>`` (peak RSS of the benchmark
  process, setup included, as asv measures it) and ``track_<stage>_peak_bytes``: the peak memory of
  the stage alone from ``backend.track_peak()``, i.e. the device pool's peak on CuPy (a memory hook;
  CuPy keeps no peak counter) and the host RSS rise on NumPy.
- bootgpu is imported inside ``safe_import()`` (SciPy's pattern): on an older commit where a name is
  missing, the benchmarks that need it are skipped instead of the whole suite failing to import.
- ``BOOTGPU_ASV_QUICK=1`` skips the large sizes (``LARGE_SIZES``) for a quick local run; the
  parameters stay the same, so results of full and quick runs line up.
- Input matrices are built once per run in ``setup_cache`` (pickled by asv, shared by every class
  that inherits it) as host arrays; ``setup`` moves them to the backend.
- Data: two synthetic shapes and two like real studies.  ``ALL`` is the real ALL leukaemia matrix
  (12,625 probes x 128 samples, k = 25; ``../shared/data/all_leukemia.tsv.gz`` beside the checkout or
  ``$BOOTGPU_ALL_DATA``, else the embedded 2,000-probe subset, so the case always runs) with its
  focus gene 0: strong modules, 32,586 selected edges.  ``modular-20000x60`` is
  ``synthetic.modular_matrix`` (k = 12, hundreds of thousands of selected edges in rewiring
  modules), for a size no shipped file has.  A speed-up that holds only on the random shapes is
  not a speed-up.
- CUDA: run GPU benchmarks with ``asv run --launch-method spawn`` so that no benchmark process
  inherits a CUDA context from a fork.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

_IMPORT_ERRORS: list = []


@contextmanager
def safe_import():
    """Imports of bootgpu names: an ImportError (an older commit without them) is recorded, and every
    benchmark then skips in ``setup`` with its message instead of the module failing to import."""
    try:
        yield
    except ImportError as exc:
        _IMPORT_ERRORS.append(exc)

with safe_import():
    from bootgpu.backends import REGISTRY
BACKENDS = [name for name, spec in REGISTRY.items() if spec.benchmarked] if not _IMPORT_ERRORS else ["numpy", "cupy"]
# size name -> (genes, samples, B).  "8763x938" is the reference shape of the original pipeline;
# "ALL" the real matrix (its genes as read: 12,625, or 2,000 for the embedded subset).
SIZES = {"1000x200": (1000, 200, 200), "8763x938": (8763, 938, 1000), "ALL": (None, 128, 1000),
         "modular-20000x60": (20000, 60, 1000)}
LARGE_SIZES = ("8763x938", "modular-20000x60")  # skipped under BOOTGPU_ASV_QUICK=1
MEMORY_BUDGET = 3 * 2**30  # what the planner may use; the same on every backend so plans compare
PLANTED_PER_CLASS = {"1000x200": 40, "8763x938": 300}


def get_backend_or_skip(name: str):
    """The bootgpu backend ``name``, or NotImplementedError (asv: skipped) when it cannot run here."""
    if _IMPORT_ERRORS:
        raise NotImplementedError(f"this commit lacks what the benchmark imports: {_IMPORT_ERRORS[0]}")
    from bootgpu.backends import get_backend, unusable_reason

    reason = unusable_reason(name)
    if reason is not None:
        raise NotImplementedError(f"{name} backend not usable: {reason}")
    return get_backend(name)


def all_leukemia_path() -> Path:
    """The full ALL matrix when it is here (``$BOOTGPU_ALL_DATA``, or ``../shared/data`` beside the
    checkout), else the embedded 2,000-probe subset of it."""
    from bootgpu.expression_io import demo_expression_path

    for path in (os.environ.get("BOOTGPU_ALL_DATA"), SHARED_ALL):
        if path and Path(path).is_file():
            return Path(path)
    return demo_expression_path()


SHARED_ALL = Path(__file__).resolve().parents[2] / "shared" / "data" / "all_leukemia.tsv.gz"


def sizes_to_run() -> list:
    """``SIZES`` less ``LARGE_SIZES`` under ``BOOTGPU_ASV_QUICK`` (those are skipped in setup)."""
    return [size for size in SIZES if not (os.environ.get("BOOTGPU_ASV_QUICK") and size in LARGE_SIZES)]


def make_matrix(size: str):
    """(genes, samples) float64 host matrix whose focus gene is gene 0."""
    if size == "ALL":
        from bootgpu.expression_io import read_expression

        return read_expression(all_leukemia_path()).values
    if size.startswith("modular"):
        from bootgpu.synthetic import modular_matrix

        genes, samples, _ = SIZES[size]
        return modular_matrix(genes, samples).values
    from bootgpu.synthetic import planted_matrix

    genes, samples, _ = SIZES[size]
    return planted_matrix(genes, samples, PLANTED_PER_CLASS[size], strength=0.6).values


def analysis(size: str):
    """(cfg, k_low, k_high) of ``size``: default analysis options with its B."""
    from bootgpu.config import AnalysisConfig

    genes, samples, n_bootstrap = SIZES[size]
    cfg = AnalysisConfig(n_bootstrap=n_bootstrap)
    k_low, k_high = cfg.validate(samples)
    return cfg, k_low, k_high


def make_plan(backend, size: str, genes: int | None = None):
    """The plan of ``size`` (``genes``: the matrix's genes where the size does not fix them)."""
    from bootgpu.bench import make_plan as plan_for

    fixed, samples, _ = SIZES[size]
    genes = fixed or genes
    cfg, k_low, k_high = analysis(size)
    return plan_for(backend, genes, samples, k_low, k_high, cfg, MEMORY_BUDGET)


def _trio(stage: str) -> dict:
    """time_<stage>, peakmem_<stage> and track_<stage>_peak_bytes, each calling ``self.run()``."""

    def time_stage(self, *params):
        self.run()

    def peakmem_stage(self, *params):
        self.run()

    def track_stage(self, *params):
        return self.tracked_peak(self.run)

    track_stage.unit = "bytes"
    named = {f"time_{stage}": time_stage, f"peakmem_{stage}": peakmem_stage, f"track_{stage}_peak_bytes": track_stage}
    for name, fn in named.items():
        fn.__name__ = name
    return named


class Benchmark:
    """Base class: parameters, skipping, synchronisation, the per-stage memory tracker, and the
    time/peakmem/track trio of a subclass's ``stage`` (its ``run()`` is the measured work)."""

    params = [BACKENDS, list(SIZES)]
    param_names = ["backend", "size"]
    timeout = 600  # the reference size takes tens of seconds per call on 2 CPU cores
    stage: str = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("stage"):
            for name, fn in _trio(cls.stage).items():
                fn.__qualname__ = f"{cls.__qualname__}.{name}"
                setattr(cls, name, fn)

    def run(self):
        raise NotImplementedError

    def setup_backend(self, backend: str, size: str):
        if size not in sizes_to_run():
            raise NotImplementedError(f"size {size} skipped: BOOTGPU_ASV_QUICK is set")
        self.backend = get_backend_or_skip(backend)
        self.xp = self.backend.xp
        self.cfg, self.k_low, self.k_high = analysis(size)

    def sync(self):
        self.backend.synchronize()

    def tracked_peak(self, run) -> int:
        """Bytes above the level at entry that ``run()`` needs, as ``backend.track_peak`` sees it."""
        self.sync()
        with self.backend.track_peak() as peak:
            run()
            self.sync()
        return int(peak.peak_bytes)


class MatrixBenchmark(Benchmark):
    """A benchmark on the synthetic matrices, built once per asv run."""

    def setup_cache(self):
        return {size: make_matrix(size) for size in sizes_to_run()}

    setup_cache.timeout = 600

    def setup_backend(self, matrices, backend: str, size: str):
        super().setup_backend(backend, size)  # skips first where the size or backend cannot run
        self.expr = self.backend.to_device(matrices[size])
        self.plan = make_plan(self.backend, size, matrices[size].shape[0])
        self.sync()
