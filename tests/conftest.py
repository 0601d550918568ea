"""Shared fixtures: the array backends the core runs on, and a slice of the embedded demo data."""

from __future__ import annotations

import numpy as np
import pytest

from bootgpu.backends import REGISTRY, get_backend, unusable_reason
from bootgpu.expression_io import demo_expression_path, read_expression
from environment import check


DEMO_GENES = 120  # genes of the demo slice; all 128 samples are kept


def pytest_configure(config):
    config.addinivalue_line("markers", "requires(*names): needs these from the machine (tests/environment.py); "
                                       "skipped without them unless BOOTGPU_REQUIRE names them")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("requires"):
        for name in mark.args:
            check(name)


@pytest.fixture(params=[pytest.param(name, marks=[pytest.mark.gpu] if spec.device else [])
                        for name, spec in REGISTRY.items()])
def xp_backend(request):
    """Each backend of the registry in turn; one that cannot run here (CuPy without a usable device)
    is skipped, with the reason."""
    reason = unusable_reason(request.param)
    if reason is not None:
        pytest.skip(f"{request.param} backend not usable: {reason}")
    return get_backend(request.param)


@pytest.fixture(scope="session")
def demo_values() -> np.ndarray:
    """The first DEMO_GENES genes of the demo matrix (genes x 128 samples, float64), read-only."""
    values = np.array(read_expression(demo_expression_path()).values[:DEMO_GENES], dtype=np.float64)
    values.setflags(write=False)
    return values


def _write_demo_tsv(path, n_genes: int):
    """The first ``n_genes`` demo genes x all 128 samples as a TSV (6 decimals, as the source)."""
    expr = read_expression(demo_expression_path())
    rows = ["gene\t" + "\t".join(expr.sample_names)]
    rows += [expr.gene_names[g] + "\t" + "\t".join(f"{v:.6f}" for v in expr.values[g]) for g in range(n_genes)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="session")
def write_demo_tsv():
    """``write_demo_tsv(path, n_genes) -> path``: a small real input file for CLI-level tests."""
    return _write_demo_tsv


@pytest.fixture(scope="session")
def small_study(tmp_path_factory, write_demo_tsv):
    """A finished study on 150 demo genes: focus genes rows 3, 7 and 40, B = 40, fdr_alpha 0.2 (so
    they have networks); its directory.  Read-only: tests that change a study make their own."""
    from bootgpu.cli import main

    tmp = tmp_path_factory.mktemp("small-study")
    expr = write_demo_tsv(tmp / "expr.tsv", 150)
    out = tmp / "study"
    assert main(["run", "--expr", str(expr), "--out", str(out), "--focus", "#3,#7,#40", "--n-bootstrap", "40",
                 "--fdr-alpha", "0.2", "--backend", "numpy"]) == 0
    return out
