"""The study directory: where each file of a study lives, in one place.

::

    DIR/study.json                  the study's identity and focus genes (bootgpu.study.identity)
    DIR/results.h5                  the finished results (docs/results-format.md)
    DIR/rewiring_hubs.tsv           one row per focus gene, ranked (bootgpu.hubs)
    DIR/network_summary.tsv         one row per focus gene, every network metric (docs/networks.md)
    DIR/finished.json               written last: the study is complete, with its outputs' sizes and SHA-256
    DIR/.locks/SCOPE.lock           the runs working on the study now (bootgpu.study.lock)
    DIR/parts/focus-NNNNNN.h5       one finished focus gene each, while a run is in progress
    DIR/shards/shard-KKKK-of-NNNN.h5  the results of `bootgpu run --shard K/N`
    DIR/null.h5                     the permutation null: every gene's metrics in each null network (bootgpu.null)
    DIR/null/replicate-NNNNNN.h5    one finished null replicate each, until null.h5 holds them
    DIR/gene_significance.tsv       empirical p and BH q per focus gene and metric (bootgpu.significance)
    DIR/sge/, DIR/slurm/            a cluster submission's files (bootgpu.cluster; ClusterFiles), one folder
                                    per scheduler (Grid Engine: bootgpu.sge, Slurm: bootgpu.slurm):
    DIR/SCHED/bootgpu-task.sh, bootgpu-merge.sh  copies of the job scripts, resource lines as submitted
    DIR/SCHED/job.env               the jobs' environment, sourced by the scripts
    DIR/SCHED/focus.txt             the focus genes as #ROW lines, the tasks' --focus
    DIR/SCHED/study.json            the submission settings and every submission's job ids
    DIR/SCHED/logs/                 one log per array task (NAME.oJOB.TASK) and per merge job (NAME.oJOB)
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from bootgpu.atomic import temporary_name
from bootgpu.errors import BootgpuError

TASK_SCRIPT = "bootgpu-task.sh"  # the job scripts, in the project's sge/ and slurm/ folders, copied into DIR/SCHED/
MERGE_SCRIPT = "bootgpu-merge.sh"
_SHARD_NAME = re.compile(r"shard-(\d+)-of-(\d+)\.h5")
_PART_NAME = re.compile(r"focus-(\d+)\.h5")
DAMAGED_DIR = "damaged"
_REPLICATE_NAME = re.compile(r"replicate-(\d+)\.h5")
SCHEDULER_DIRS = ("sge", "slurm")  # DIR/<name>/: the files of a submission to that scheduler


@dataclass(frozen=True)
class ClusterFiles:
    """A cluster submission's files: ``DIR/<scheduler>/`` (``SCHEDULER_DIRS``)."""

    folder: Path

    @property
    def job_env(self) -> Path:
        return self.folder / "job.env"

    @property
    def focus_list(self) -> Path:
        return self.folder / "focus.txt"

    @property
    def submissions(self) -> Path:
        return self.folder / "study.json"

    @property
    def logs_dir(self) -> Path:
        return self.folder / "logs"

    def job_script(self, name: str) -> Path:
        """The study's copy of the job script ``name`` (bootgpu-task.sh, bootgpu-merge.sh)."""
        return self.folder / name


@dataclass(frozen=True)
class StudyLayout:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def identity(self) -> Path:
        return self.root / "study.json"

    @property
    def results(self) -> Path:
        return self.root / "results.h5"

    @property
    def hubs(self) -> Path:
        return self.root / "rewiring_hubs.tsv"

    @property
    def network_summary(self) -> Path:
        return self.root / "network_summary.tsv"

    @property
    def finished(self) -> Path:
        return self.root / "finished.json"

    @property
    def parts_dir(self) -> Path:
        return self.root / "parts"

    @property
    def shards_dir(self) -> Path:
        return self.root / "shards"

    @property
    def null_results(self) -> Path:
        return self.root / "null.h5"

    @property
    def null_dir(self) -> Path:
        return self.root / "null"

    @property
    def significance(self) -> Path:
        return self.root / "gene_significance.tsv"

    def null_replicate(self, replicate: int) -> Path:
        return self.null_dir / f"replicate-{replicate:06d}.h5"

    def null_replicates(self) -> dict[int, Path]:
        """Finished null replicate files, by replicate number."""
        return {int(m[1]): p for m, p in _named(self.null_dir, _REPLICATE_NAME)}

    def cluster(self, scheduler: str) -> ClusterFiles:
        """The files of a submission to ``scheduler`` (one of ``SCHEDULER_DIRS``): DIR/<scheduler>/."""
        if scheduler not in SCHEDULER_DIRS:
            raise ValueError(f"unknown scheduler {scheduler!r}")
        return ClusterFiles(self.root / scheduler)

    # Grid Engine's files (DIR/sge/), by their names from before Slurm
    @property
    def sge_dir(self) -> Path:
        return self.cluster("sge").folder

    @property
    def job_env(self) -> Path:
        return self.cluster("sge").job_env

    @property
    def focus_list(self) -> Path:
        return self.cluster("sge").focus_list

    @property
    def submissions(self) -> Path:
        return self.cluster("sge").submissions

    @property
    def logs_dir(self) -> Path:
        return self.cluster("sge").logs_dir

    def job_script(self, name: str) -> Path:
        """The study's copy of the Grid Engine job script ``name`` (bootgpu-task.sh, bootgpu-merge.sh)."""
        return self.cluster("sge").job_script(name)

    def part(self, gene: int) -> Path:
        return self.parts_dir / f"focus-{gene:06d}.h5"

    def shard(self, k: int, n: int) -> Path:
        return self.shards_dir / f"shard-{k:04d}-of-{n:04d}.h5"

    def parts(self) -> dict[int, Path]:
        """Finished part files, by focus gene index: those under their one canonical name
        (``part``) only; anything else in parts/ is foreign (``foreign_parts``)."""
        return {int(m[1]): p for m, p in _named(self.parts_dir, _PART_NAME) if p.name == self.part(int(m[1])).name}

    def foreign_parts(self) -> list[Path]:
        """Files in parts/ that are not a part under its canonical name (nor a run's temporary
        file or a damaged part moved aside): never read by a run, listed by `bootgpu status`."""
        from bootgpu.atomic import temporary_owner

        if not self.parts_dir.is_dir():
            return []
        canonical = {p.name for p in self.parts().values()}
        return sorted(p for p in self.parts_dir.iterdir()
                      if p.name not in canonical and temporary_owner(p.name) is None and p.name != DAMAGED_DIR)

    @property
    def damaged_dir(self) -> Path:
        """Where parts that failed their checksums are moved, for a look (and recomputed)."""
        return self.parts_dir / DAMAGED_DIR

    def shards(self) -> dict[tuple[int, int], Path]:
        """Shard files, by (K, N)."""
        return {(int(m[1]), int(m[2])): p for m, p in _named(self.shards_dir, _SHARD_NAME)}

    def has_results(self) -> bool:
        """Anything computed: results, parts or shards.  Null files are not counted: each carries
        its null identity and is checked on reuse (``bootgpu.null``), so a null copied from a study
        of the same input and parameters serves another focus list."""
        return self.results.exists() or bool(self.parts()) or bool(self.shards())

    # -- the study record -----------------------------------------------------------------------
    def read_record(self) -> dict | None:
        """``study.json`` as a dict, or None if there is none."""
        try:
            text = self.identity.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BootgpuError(f"{self.identity}: cannot read: {exc.strerror or exc}") from None
        try:
            record = json.loads(text)
        except ValueError as exc:
            raise BootgpuError(f"{self.identity}: not a bootgpu study record ({exc})") from None
        if not isinstance(record, dict) or "identity" not in record:
            raise BootgpuError(f"{self.identity}: not a bootgpu study record (no 'identity')")
        return record

    def create_record(self, record: dict) -> bool:
        """Write ``study.json`` unless one exists (atomic and exclusive: of two runs starting at
        once, one writes it and the other finds it).  True if this call wrote it."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = temporary_name(self.identity)
        try:
            tmp.write_text(json.dumps(record, indent=1) + "\n")
            os.link(tmp, self.identity)  # fails if it exists: never replaces another run's record
            created = True
        except FileExistsError:
            created = False
        finally:
            tmp.unlink(missing_ok=True)
        return created

    def discard(self) -> None:
        """Remove everything a study wrote (``--overwrite``), its runs' temporary files included;
        other files in DIR are left alone."""
        from bootgpu.atomic import temporary_owner

        for path in (self.results, self.hubs, self.network_summary, self.null_results, self.significance,
                     self.finished, self.identity):
            path.unlink(missing_ok=True)
        for path in self.root.iterdir() if self.root.is_dir() else ():
            if temporary_owner(path.name) is not None:
                path.unlink(missing_ok=True)
        for folder in (self.parts_dir, self.shards_dir, self.null_dir, *(self.root / s for s in SCHEDULER_DIRS)):
            if folder.is_dir():
                shutil.rmtree(folder)


def _named(folder: Path, pattern: re.Pattern):
    """(match, path) of the files in ``folder`` whose whole name matches ``pattern`` (none if the
    folder does not exist)."""
    if folder.is_dir():
        for path in folder.iterdir():
            if m := pattern.fullmatch(path.name):
                yield m, path


def check_out_dir(out: Path, option: str = "--out") -> Path:
    """``out`` must be a directory or not exist yet."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BootgpuError(f"{option} {out} is a file, not a directory: give a directory for the study")
    return out
