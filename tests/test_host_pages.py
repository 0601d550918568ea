"""``host_memory.use_small_pages``: bootgpu's commands run NumPy without its transparent huge-page
advice (huge-page faults may compact memory first: docs/benchmarks.md), unless the user chose with
``NUMPY_MADVISE_HUGEPAGE``, and the processes they start inherit the choice."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bootgpu.backends import host_memory

try:
    from numpy._core.multiarray import _get_madvise_hugepage, _set_madvise_hugepage
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import _get_madvise_hugepage, _set_madvise_hugepage


PROBE = ("try:\n from numpy._core.multiarray import _get_madvise_hugepage as g\n"
         "except ImportError:\n from numpy.core.multiarray import _get_madvise_hugepage as g\n")


@pytest.fixture
def numpy_pages(monkeypatch):
    """NumPy's huge-page switch on, as NumPy sets it by default on Linux >= 4.6, and the variable
    unset; both restored after (the variable set first, so that monkeypatch records its state
    before the test, which ``use_small_pages`` then writes)."""
    before = _get_madvise_hugepage()
    _set_madvise_hugepage(True)
    monkeypatch.setenv(host_memory.HUGEPAGE_VARIABLE, "unset by the fixture")
    monkeypatch.delenv(host_memory.HUGEPAGE_VARIABLE)
    yield
    _set_madvise_hugepage(before)


def test_small_pages_turn_numpy_s_advice_off_here_and_for_child_processes(numpy_pages):
    assert host_memory.use_small_pages() is True
    assert _get_madvise_hugepage() is False
    assert os.environ[host_memory.HUGEPAGE_VARIABLE] == "0"
    child = subprocess.run([sys.executable, "-c", PROBE + "print(g())"], capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "False"


@pytest.mark.parametrize("choice", ["0", "1"])
def test_a_user_s_choice_is_kept(numpy_pages, monkeypatch, choice):
    monkeypatch.setenv(host_memory.HUGEPAGE_VARIABLE, choice)
    assert host_memory.use_small_pages() is False
    assert _get_madvise_hugepage() is True  # untouched (NumPy read the variable at its own import)
    assert os.environ[host_memory.HUGEPAGE_VARIABLE] == choice


def test_the_command_line_runs_with_small_pages(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != host_memory.HUGEPAGE_VARIABLE}
    code = ("import os, sys\nfrom bootgpu.cli import main\nrc = main(['plan', '--shape', '300x40', '--no-estimate'])\n"
            + PROBE + "print('pages', g(), os.environ.get('NUMPY_MADVISE_HUGEPAGE'))\nsys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "pages False 0"
