"""What makes a study's files trustworthy once written: checksums inside them, a completion record
written last, and the sweeping of what dead runs left behind.

- Every numeric dataset of a part, shard, results or null file carries HDF5's Fletcher-32 checksum
  (``results_io``), which HDF5 checks on every read of a chunk; text datasets (gene and sample
  ids) carry a SHA-256 attribute.  ``verify_h5`` reads every chunk and names what fails.
- A study is complete when ``DIR/finished.json`` -- written after results.h5 and the tables, each
  with its size and SHA-256 -- matches them.  Anything else is an interrupted finish, which the
  same command repairs (tables rebuilt from results.h5) or redoes.
- Temporary files (``.NAME.tmp-HOST-PID-TOKEN``) of processes that are gone are removed by the run
  that holds the lock of their scope (``study.lock``): within a scope no live process can own them.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
from pathlib import Path

import h5py
import numpy as np

from bootgpu.atomic import atomic_write_text, temporary_owner
from bootgpu.checksums import TEXT_DIGEST, text_digest
from bootgpu.errors import BootgpuError
from bootgpu.study.layout import StudyLayout


def file_digest(path: Path) -> dict:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return {"size": path.stat().st_size, "sha256": h.hexdigest()}


def finished_files(layout: StudyLayout) -> dict[str, Path]:
    """The outputs a finished study holds (network_summary.tsv only where focus genes have networks)."""
    files = {"results.h5": layout.results, "rewiring_hubs.tsv": layout.hubs}
    if layout.network_summary.exists():
        files["network_summary.tsv"] = layout.network_summary
    return files


def record_finished(layout: StudyLayout, scope_id: str) -> None:
    """``finished.json``, last: the study (``StudyIdentity.scope_id``: its analysis and focus
    list) is complete, and these are its outputs."""
    record = {"scope_id": scope_id, "files": {name: file_digest(path) for name, path in finished_files(layout).items()}}
    atomic_write_text(layout.finished, json.dumps(record, indent=1) + "\n")


def finished_problems(layout: StudyLayout, scope_id: str) -> list[str]:
    """Why the study in ``layout`` is not complete ([] when it is): no completion record, or an
    output missing, changed or of another study."""
    try:
        record = json.loads(layout.finished.read_text())
    except FileNotFoundError:
        return [f"{layout.finished.name} is missing"]
    except (OSError, ValueError) as exc:
        return [f"{layout.finished.name} is unreadable ({exc})"]
    if record.get("scope_id") != scope_id:
        return [f"{layout.finished.name} is another study's (or its focus genes were others)"]
    problems = []
    for name, want in record.get("files", {}).items():
        path = layout.root / name
        if not path.exists():
            problems.append(f"{name} is missing")
        elif path.stat().st_size != want.get("size") or file_digest(path)["sha256"] != want.get("sha256"):
            problems.append(f"{name} changed after the study finished (truncated or damaged)")
    for name in ("results.h5", "rewiring_hubs.tsv"):
        if name not in record.get("files", {}):
            problems.append(f"{name} is not in {layout.finished.name}")
    return problems


def digest_path(path: Path) -> Path:
    """Where a shard's SHA-256 is kept, beside it (written after the shard is in place)."""
    return path.with_name(path.name + ".sha256")


def record_digest(path: Path) -> None:
    atomic_write_text(digest_path(path), json.dumps(file_digest(path)) + "\n")


def digest_matches(path: Path) -> bool | None:
    """Whether ``path`` still has the SHA-256 recorded when it was written (None: none recorded,
    as when a run stopped between the two): a whole-file check at disk speed, where reading every
    chunk of 20,000 focus genes' datasets took minutes."""
    try:
        want = json.loads(digest_path(path).read_text())
    except (OSError, ValueError):
        return None
    return path.stat().st_size == want.get("size") and file_digest(path)["sha256"] == want.get("sha256")


def verify_h5(path: Path) -> list[str]:
    """Every chunk of every dataset of ``path`` read (HDF5 checks each chunk's checksum), and text
    datasets against their digest: the datasets that fail, as 'focus/12/boot_p: ...' ([] if none)."""
    try:
        with h5py.File(path, "r") as h5:
            names: list[bytes] = []
            h5py.h5o.visit(h5.id, lambda name, info: names.append(name) if info.type == h5py.h5o.TYPE_DATASET else None,
                           info=True)
            return [problem for name in names if (problem := _dataset_problem(h5, name)) is not None]
    except (OSError, RuntimeError) as exc:
        return [f"cannot open: {str(exc).splitlines()[0][:160]}"]


PARALLEL_VERIFY_MIN = 512  # files from which verify_files starts processes (~0.3 s each) to read them
FILES_A_PROCESS = 64  # at least, so that each process started reads for longer than it took to start


def verify_files(paths: list[Path], processes: int | None = None) -> list[list[str]]:
    """``verify_h5`` of each of ``paths``, in their order: in worker processes (``processes``,
    default the cores granted) where there are enough files to pay for starting them -- a resumed
    study reads every part it reuses, ~5 ms each, which for 30,000 focus genes is minutes on one
    core.  Processes, not threads: h5py serialises its calls within a process."""
    from bootgpu.backends._base import granted_cores

    processes = min(processes or granted_cores(), max(1, len(paths) // FILES_A_PROCESS))
    if processes <= 1 or len(paths) < PARALLEL_VERIFY_MIN:
        return [verify_h5(path) for path in paths]
    from concurrent.futures import ProcessPoolExecutor

    from bootgpu.study.workers import process_context

    with ProcessPoolExecutor(processes, mp_context=process_context(share_memory=False)) as pool:  # no CUDA state in them
        return list(pool.map(verify_h5, paths, chunksize=max(1, len(paths) // (8 * processes))))


def _dataset_problem(h5: h5py.File, raw: bytes) -> str | None:
    """What is wrong with dataset ``raw`` (its path in ``h5``), None if nothing.  Numbers are read
    as stored (the file's type as the memory type): HDF5 checks every chunk's checksum all the
    same, without converting a 162-field network row to NumPy (~1.5 ms a read) or making h5py
    objects (a resumed study checks every part: 16 -> 5 ms a part of the embedded study)."""
    name = raw.decode("utf-8", "surrogateescape")
    try:
        dsid = h5py.h5d.open(h5.id, raw)
        tid = dsid.get_type()
        if h5py.h5a.exists(dsid, TEXT_DIGEST.encode()) or tid.detect_class(h5py.h5t.VLEN) or (
                tid.get_class() == h5py.h5t.STRING and tid.is_variable_str()):
            ds = h5[name]
            data = ds[()]
            if TEXT_DIGEST in ds.attrs:
                values = [v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else str(v) for v in data.tolist()]
                if text_digest(values) != ds.attrs[TEXT_DIGEST]:
                    return f"{name}: its text does not match its digest"
            return None
        n = dsid.get_space().get_simple_extent_npoints()
        if n:
            dsid.read(h5py.h5s.ALL, h5py.h5s.ALL, np.empty(n * tid.get_size(), dtype=np.uint8), mtype=tid)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        return f"{name}: {str(exc).splitlines()[0][:160]}"
    return None


def damaged_focus_genes(problems: list[str]) -> list[str]:
    """The focus genes (group names under /focus) that ``verify_h5``'s problems touch; the
    problems outside /focus make the whole file damaged: then ['*']."""
    genes = []
    for problem in problems:
        match = re.match(r"focus/([^/:]+)[/:]", problem)
        if match:
            genes.append(match[1])
        else:
            return ["*"]
    return list(dict.fromkeys(genes))


def sweep_temporaries(folders, names=None) -> list[Path]:
    """Remove the temporary files in ``folders`` left by processes that are gone: every one whose
    host is this one and whose pid is not running, and, where ``names`` is None (the caller holds
    the whole study's lock), every other one too (no live run can own it).  ``names``: only the
    temporaries of these final names.  Returns what was removed."""
    from bootgpu.study.lock import process_alive

    removed = []
    host = socket.gethostname()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            owner = temporary_owner(path.name)
            if owner is None:
                continue
            final, their_host, pid = owner
            if names is not None and final not in names:
                continue
            if names is not None and their_host == host and process_alive(pid, None):
                continue  # another run's, alive
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


def check_writable_space(folder: Path, need: int, what: Path) -> None:
    """Refuse, in one line, to write ``what`` (about ``need`` bytes) where there is not that much
    free space, before anything is written."""
    import shutil

    free = shutil.disk_usage(folder).free
    if free < need:
        raise BootgpuError(f"{what}: not enough free space on {folder} ({_mib(need)} needed, {_mib(free)} free); "
                           f"free some space and rerun the same command (it resumes)")


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n / 1024:,.0f} KiB"
