"""What of a study is done, for `bootgpu status`: focus genes, per shard when the split is known,
merged or not, and null replicates done.  Read from file names and /meta identities only."""

from __future__ import annotations

from pathlib import Path

import h5py

from bootgpu.errors import BootgpuError
from bootgpu.study.layout import StudyLayout
from bootgpu.cluster.jobfiles import latest_submissions
from bootgpu.study.directory import file_identity_difference, recorded_identity, shard_slice
from bootgpu.study.integrity import finished_problems


def study_progress(out: Path) -> dict:
    """What is done: focus genes, per shard (when the split is known), merged or not; ``study`` and
    ``scheduler``: the record of the last cluster submission (DIR/sge/ or DIR/slurm/study.json).

    Every shard and part file is checked against the study's identity (study.json): one from
    another study counts as not done and is listed under ``foreign``.  Only /meta attributes are
    read, one file at a time: memory does not grow with the study beyond its focus list.
    """
    layout = StudyLayout(out)
    scheduler, study = latest_submissions(layout)
    recorded = recorded_identity(layout)
    identity, focus = recorded if recorded else (None, None)
    foreign: list[tuple[Path, str]] = []

    def ours(path: Path) -> bool:
        try:
            diff = file_identity_difference(path, identity) if identity is not None else None
        except BootgpuError:  # not HDF5, truncated, unreadable: not this study's either
            diff = "not a readable bootgpu file"
        if diff:
            foreign.append((path, diff))
        return not diff

    shard_files = {key: p for key, p in layout.shards().items() if ours(p)}
    parts = {g for g, p in layout.parts().items() if ours(p)}
    tasks = study.get("tasks") if study else None
    if tasks is None:
        totals = {n for _, n in shard_files}
        tasks = totals.pop() if len(totals) == 1 else None
    shards = []
    if focus is not None and tasks:
        for k in range(1, tasks + 1):
            genes = shard_slice(focus, (k, tasks))
            written = (k, tasks) in shard_files
            done = len(genes) if written else sum(g in parts for g in genes)
            shards.append({"task": k, "genes": len(genes), "done": done, "shard_file": written})
    foreign += [(path, "not a part's name (parts are focus-NNNNNN.h5); never read") for path in layout.foreign_parts()]
    merged = layout.results.is_file() and ours(layout.results)
    unfinished = None
    if merged and identity is not None and (problems := finished_problems(layout, identity.scope_id)):
        unfinished, merged = problems[0], False
    if shards:
        n_done = sum(s["done"] for s in shards)
    elif focus is not None:
        n_done = len(focus) if merged else len(parts & set(focus))
    else:
        n_done = len(parts)
    return {"focus": focus, "tasks": tasks, "shards": shards, "done": n_done, "parts": len(parts),
            "merged": merged, "unfinished": unfinished, "study": study, "foreign": foreign,
            "null": null_progress(layout, study), "running": running_locks(layout),
            "scheduler": scheduler}  # fmt: skip


def running_locks(layout: StudyLayout) -> list[dict]:
    """The runs that hold a lock on the study now (``study.lock``; stale locks left out)."""
    from bootgpu.study.lock import LOCK_DIR, ScopeLock

    out = []
    folder = layout.root / LOCK_DIR
    for path in sorted(folder.glob("*.lock")) if folder.is_dir() else []:
        record = ScopeLock.read(path)
        if record is not None and not ScopeLock.stale(record):
            out.append({"scope": path.name.removesuffix(".lock"), **record})
    return out


def verify_study(layout: StudyLayout) -> list[tuple[Path, list[str]]]:
    """Every chunk of the study's results, shards, parts and null files read (checksums): the
    damaged files with what is wrong in each."""
    from bootgpu.study.integrity import verify_files

    files = [layout.results] if layout.results.is_file() else []
    files += list(layout.shards().values()) + list(layout.parts().values())
    files += [layout.null_results] if layout.null_results.is_file() else []
    files += list(layout.null_replicates().values())
    return [(path, problems) for path, problems in zip(files, verify_files(files)) if problems]


def _null_meta(path: Path) -> dict:
    with h5py.File(path, "r") as h5:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in h5["meta"].attrs.items()}


def null_progress(layout: StudyLayout, study: dict | None) -> dict | None:
    """Null replicates: ``total`` (the --permutations of the last submission, or None), ``done``
    (of those: a replicate file, or held by null.h5), ``gathered`` (null.h5's n_perm, 0 without
    one), ``significance`` (gene_significance.tsv written) and ``foreign`` files.  A file counts
    when its /meta ``null_id`` is the one the submission recorded (any, without a record).  None
    when the study has no null and none was submitted."""
    total = study.get("permutations") if study else None
    files = layout.null_replicates()
    if total is None and not files and not layout.null_results.is_file():
        return None
    expected = study.get("null_id") if study else None
    foreign: list[tuple[Path, str]] = []

    def ours(path: Path) -> dict | None:
        try:
            meta = _null_meta(path)
        except (OSError, KeyError, RuntimeError) as exc:
            foreign.append((path, f"not readable: {exc}"))
            return None
        if expected is not None and meta.get("null_id") != expected:
            foreign.append((path, f"null id {meta.get('null_id')}, not {expected}"))
            return None
        return meta

    gathered = 0
    if layout.null_results.is_file() and (meta := ours(layout.null_results)) is not None:
        gathered = int(meta["n_perm"])
    done = set(range(gathered)) | {r for r, path in files.items() if ours(path) is not None}
    if total is not None:
        done = {r for r in done if r < total}
    return {"total": total, "done": len(done), "gathered": gathered, "significance": layout.significance.is_file(),
            "foreign": foreign}  # fmt: skip
