"""The ``requires`` marker's rule (tests/environment.py): skip without the requirement, fail when
BOOTGPU_REQUIRE names it, refuse unknown names."""

from __future__ import annotations

import pytest

from environment import CHECKS, check, unavailable


def test_a_missing_requirement_skips_unless_bootgpu_require_names_it(monkeypatch):
    monkeypatch.delenv("BOOTGPU_REQUIRE", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not here"):
        unavailable("h5diff", "h5diff is not here")
    monkeypatch.setenv("BOOTGPU_REQUIRE", "sge, h5diff")
    with pytest.raises(pytest.fail.Exception, match="BOOTGPU_REQUIRE names h5diff but h5diff is not here"):
        unavailable("h5diff", "h5diff is not here")
    with pytest.raises(pytest.skip.Exception):
        unavailable("chromium", "no browser")  # not named: still a skip


def test_unknown_requirements_are_refused():
    with pytest.raises(ValueError, match="unknown requirement 'h5dif'"):
        check("h5dif")
    assert set(CHECKS) == {"chromium", "h5diff", "shared-data", "sge", "slurm"}


def test_a_present_requirement_runs_the_test(monkeypatch, tmp_path):
    monkeypatch.setitem(CHECKS, "h5diff", lambda: None)
    monkeypatch.setenv("BOOTGPU_REQUIRE", "h5diff")
    check("h5diff")  # no skip, no failure
