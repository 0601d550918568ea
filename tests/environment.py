"""What some tests need from the machine, in one place: ``@pytest.mark.requires(NAME)`` (checked
before the test and its fixtures run) or ``unavailable(NAME, reason)`` from inside a fixture that
finds out late.  A missing requirement skips, with the reason -- unless ``BOOTGPU_REQUIRE`` names it
(comma-separated; .ci/run sets ``BOOTGPU_REQUIRE=chromium,h5diff,sge,slurm`` after installing them), which
turns that skip into a failure, so CI cannot pass by skipping.

NAME: ``chromium`` (headless Chromium, its driver, selenium and the dashboard's assets;
tests/test_dashboard.py), ``h5diff`` (hdf5-tools), ``sge`` (the local Grid Engine of
sge/testing/start-local-sge.sh; tests/test_sge_integration.py), ``slurm`` (the local Slurm of
slurm/testing/start-local-slurm.sh; tests/test_slurm_integration.py), ``shared-data``
(../shared/data/all_leukemia.tsv.gz beside the checkout).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SHARED_ALL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "all_leukemia.tsv.gz"


def _h5diff():
    return None if shutil.which("h5diff") else "h5diff is not installed (Debian: apt-get install hdf5-tools)"


def _chromium():
    if not (shutil.which("chromium") or shutil.which("chromium-browser")) or not shutil.which("chromedriver"):
        return "chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)"
    return None


def _shared_data():
    return None if SHARED_ALL.is_file() else f"{SHARED_ALL} is absent (../shared/data beside the checkout)"


CHECKS = {"chromium": _chromium, "h5diff": _h5diff, "shared-data": _shared_data, "sge": None, "slurm": None}
# "sge" and "slurm" are checked by the cluster fixtures of tests/test_sge_integration.py (qstat) and
# tests/test_slurm_integration.py (scontrol, sinfo), which call unavailable()


def required() -> set:
    """The names ``BOOTGPU_REQUIRE`` makes mandatory."""
    return {name.strip() for name in os.environ.get("BOOTGPU_REQUIRE", "").split(",") if name.strip()}


def unavailable(name: str, reason: str):
    """Skip (or, when ``BOOTGPU_REQUIRE`` names ``name``, fail) because ``name`` is missing."""
    if name not in CHECKS:
        raise ValueError(f"unknown requirement {name!r}; known: {', '.join(CHECKS)}")
    if name in required():
        pytest.fail(f"BOOTGPU_REQUIRE names {name} but {reason}")
    pytest.skip(reason)


def check(name: str) -> None:
    """``unavailable(name, ...)`` when the registered check for ``name`` finds a problem."""
    if name not in CHECKS:
        raise ValueError(f"unknown requirement {name!r}; known: {', '.join(CHECKS)}")
    problem = CHECKS[name]() if CHECKS[name] else None
    if problem:
        unavailable(name, problem)
