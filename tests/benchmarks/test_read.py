"""pytest-benchmark: reading the expression matrix a study starts from, the real ALL matrix
(12,625 x 128, gzipped TSV; ``../shared/data`` beside the checkout or ``$BOOTGPU_ALL_DATA``, else
the embedded 2,000-probe subset) through ``expression_io.read_expression``, as ``bootgpu run``
reads it.  Run with ``python3 -m pytest tests/benchmarks --benchmark-only`` (see test_micro.py)."""

from __future__ import annotations

import os
from pathlib import Path

from bootgpu.expression_io import demo_expression_path, read_expression

SHARED_ALL = Path(__file__).resolve().parents[3] / "shared" / "data" / "all_leukemia.tsv.gz"


def _all_leukemia() -> Path:
    for path in (os.environ.get("BOOTGPU_ALL_DATA"), SHARED_ALL):
        if path and Path(path).is_file():
            return Path(path)
    return demo_expression_path()


def test_read_all_leukemia(benchmark):
    path = _all_leukemia()
    expr = benchmark(read_expression, path)
    assert expr.values.shape[1] == 128
