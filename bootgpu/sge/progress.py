"""What of a study is done, for `bootgpu status`: focus genes, per shard when the split is known,
merged or not.  Read from file names and /meta identities only."""

from __future__ import annotations

from pathlib import Path

from bootgpu.layout import StudyLayout
from bootgpu.sge.jobfiles import read_submissions
from bootgpu.study import file_identity_difference, recorded_identity, shard_slice


def study_progress(out: Path) -> dict:
    """What is done: focus genes, per shard (when the split is known), merged or not.

    Every shard and part file is checked against the study's identity (study.json): one from
    another study counts as not done and is listed under ``foreign``.  Only /meta attributes are
    read, one file at a time: memory does not grow with the study beyond its focus list.
    """
    layout = StudyLayout(out)
    study = read_submissions(layout)
    recorded = recorded_identity(layout)
    identity, focus = recorded if recorded else (None, None)
    foreign: list[tuple[Path, str]] = []

    def ours(path: Path) -> bool:
        diff = file_identity_difference(path, identity) if identity is not None else None
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
    merged = layout.results.is_file() and ours(layout.results)
    if shards:
        n_done = sum(s["done"] for s in shards)
    elif focus is not None:
        n_done = len(focus) if merged else len(parts & set(focus))
    else:
        n_done = len(parts)
    return {"focus": focus, "tasks": tasks, "shards": shards, "done": n_done, "parts": len(parts),
            "merged": merged, "study": study, "foreign": foreign}  # fmt: skip
