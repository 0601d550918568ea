"""The permutation null shared by all focus genes (docs/null.md).

Under the null (a focus gene's expression says nothing about co-expression) LOW and HIGH are random
disjoint sample sets of sizes k_low and k_high, whichever gene is the focus.  Null replicate r draws
such a split (``core.draws.null_split``: a pure function of seed and r), runs exactly the observed
pipeline on it (``pipeline.rank_split`` then ``analyse_groups``: the same tests, BH, selection and
bootstrap, with draw streams no focus gene uses, ``core.draws.null_draw_code``), applies the study's
edge filter (``networks.filter_edges``) and computes every gene's gene-level metrics in that one
network at once (``networks.gene_level_metrics``).  So n_perm null networks give every gene n_perm
null values.

On disk (``StudyLayout``): each finished replicate is ``DIR/null/replicate-NNNNNN.h5`` (resumable:
replicates done are skipped on a rerun), and once replicates 0..n_perm-1 are all there they are
gathered into ``DIR/null.h5``: ``/genes/<metric>`` (n_genes, n_perm) per metric of
``networks.GENE_METRICS`` (int32 counts, float64 otherwise, NaN where undefined), ``/network/<name>``
(n_perm,) (``n_diff_edges``, ``n_selected``, ``n_rewire``), ``/low_samples`` and ``/high_samples``
(n_perm, k) int32, ``/gene_names``, and ``/meta``: the null identity (``null_identity``), its
``null_id`` and ``n_perm``.  Every file is written under a temporary name and renamed.  A replicate
does not depend on n_perm or on which task computed it, so any split of the replicates, and a later
run with more permutations, gives the same values (replicates already in null.h5 are reused).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from bootgpu.atomic import atomic_path, atomic_write_bytes
from bootgpu.checksums import create_checked
from bootgpu.config import AnalysisConfig
from bootgpu.core.draws import NULL_ALGORITHM, null_draw_code, null_split
from bootgpu.errors import BootgpuError
from bootgpu.expression_io import Expression
from bootgpu.study.identity import FOCUS_KEYS, StudyIdentity
from bootgpu.study.layout import StudyLayout
from bootgpu.networks import GENE_METRICS, INT_GENE_METRICS, EdgeFilter, filter_edges, gene_level_metrics
from bootgpu.networks import REWIRING
from bootgpu.pipeline import analyse_groups, rank_split
from bootgpu.results_io import h5_image
from bootgpu.planner import Plan
from bootgpu.significance import NETWORK_METRIC

NETWORK_VALUES = (NETWORK_METRIC, "n_selected", "n_rewire")  # one value per null network


def null_identity(identity: StudyIdentity) -> dict:
    """What defines the null values: the study's identity less its focus list, plus the split
    algorithm.  ``null_id``: 16 hex digits of its canonical JSON's SHA-256."""
    out = {k: v for k, v in identity.as_dict().items() if k not in FOCUS_KEYS}  # the null serves every gene
    out["null_algorithm"] = NULL_ALGORITHM
    return out


def null_id(ident: dict) -> str:
    return hashlib.sha256(json.dumps(ident, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _difference(theirs: dict, ours: dict) -> str | None:
    for key in ours:
        a, b = theirs.get(key), ours[key]
        a = a.decode() if isinstance(a, bytes) else (a.item() if hasattr(a, "item") else a)
        if a != b:
            return f"{key} {a}, not {b}"
    return None


def check_null_file(path: Path, ident: dict, what: str) -> dict:
    """The /meta of a null file, which must carry the null identity ``ident``."""
    try:
        with h5py.File(path, "r") as h5:
            meta = dict(h5["meta"].attrs)
    except (OSError, KeyError) as exc:
        raise BootgpuError(f"{path}: not a readable bootgpu null file ({exc})") from None
    if (diff := _difference(meta, ident)) is not None:
        raise BootgpuError(f"{path}: this {what} belongs to another study ({diff}): remove it, or rerun with --overwrite")
    return meta


def edge_filter_of(cfg: AnalysisConfig) -> EdgeFilter:
    return EdgeFilter(cfg.min_effect, cfg.corr_threshold, cfg.ci_filter)


@dataclass
class NullReplicate:
    """One null network's values: ``genes`` metric -> (n_genes,), ``network`` name -> int, the split."""

    replicate: int
    genes: dict
    network: dict
    low_samples: np.ndarray
    high_samples: np.ndarray


def null_replicate(backend, expr_dev, replicate: int, cfg: AnalysisConfig, plan: Plan, k_low: int,
                   k_high: int) -> NullReplicate:
    """Null replicate ``replicate`` of the matrix ``expr_dev`` (device, genes x samples): its random
    split, the observed pipeline on it, the study's edge filter and every gene's metrics."""
    n_genes, n_samples = int(expr_dev.shape[0]), int(expr_dev.shape[1])
    low_idx, high_idx = null_split(backend.xp, cfg.seed, replicate, n_samples, k_low, k_high)
    groups = rank_split(backend, expr_dev, low_idx, high_idx, plan.threads)
    result = analyse_groups(backend, groups, null_draw_code(replicate), cfg, plan)
    del groups
    kept = filter_edges(result.edges, cfg.fdr_alpha, edge_filter_of(cfg))
    network = {NETWORK_METRIC: len(kept), "n_selected": kept.n_selected,
               "n_rewire": int(np.count_nonzero(np.isin(kept.change, REWIRING)))}
    return NullReplicate(replicate, gene_level_metrics(n_genes, kept), network, result.low_samples,
                         result.high_samples)


def write_replicate(path: Path, meta: dict, rep: NullReplicate) -> None:
    """One null replicate's file, made in memory and written atomically (``results_io.h5_image``)."""
    def fill(h5):
        m = h5.create_group("meta")
        for key, value in {**meta, "replicate": rep.replicate}.items():
            m.attrs[key] = value
        for name in GENE_METRICS:
            dtype = np.int32 if name in INT_GENE_METRICS else np.float64
            create_checked(h5, f"genes/{name}", rep.genes[name].astype(dtype), compression="gzip", compression_opts=4,
                           shuffle=True)
        net = h5.create_group("network")
        for name in NETWORK_VALUES:
            net.attrs[name] = int(rep.network[name])
        create_checked(h5, "low_samples", rep.low_samples.astype(np.int32))
        create_checked(h5, "high_samples", rep.high_samples.astype(np.int32))

    atomic_write_bytes(path, h5_image(fill))


def read_replicate(path: Path) -> NullReplicate:
    with h5py.File(path, "r") as h5:
        genes = {name: h5[f"genes/{name}"][()] for name in GENE_METRICS}
        network = {name: int(h5["network"].attrs[name]) for name in NETWORK_VALUES}
        return NullReplicate(int(h5["meta"].attrs["replicate"]), genes, network, h5["low_samples"][()],
                             h5["high_samples"][()])


@dataclass
class NullValues:
    """The assembled null (``null.h5`` read back): ``genes`` metric -> (n_genes, n_perm) arrays,
    ``network`` name -> (n_perm,), the splits and the meta."""

    genes: dict
    network: dict
    low_samples: np.ndarray
    high_samples: np.ndarray
    meta: dict

    @property
    def n_perm(self) -> int:
        return int(self.network[NETWORK_METRIC].shape[0])


def read_null(path: Path, rows=None) -> NullValues:
    """``null.h5`` (layout in the module docstring); ``rows``: only these genes' rows (in order)."""
    with h5py.File(path, "r") as h5:
        meta = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in h5["meta"].attrs.items()}
        take = slice(None) if rows is None else np.asarray(rows, dtype=np.int64)
        genes = {}
        for name in GENE_METRICS:
            data = h5[f"genes/{name}"]
            genes[name] = data[()] if rows is None else data[()][take]
        network = {name: h5[f"network/{name}"][()] for name in NETWORK_VALUES}
        return NullValues(genes, network, h5["low_samples"][()], h5["high_samples"][()], meta)


def write_null(path: Path, meta: dict, gene_names, reps: list[NullReplicate]) -> None:
    """``null.h5`` from replicates 0..n_perm-1 (in order), atomically."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            m = h5.create_group("meta")
            for key, value in {**meta, "n_perm": len(reps)}.items():
                m.attrs[key] = value
            create_checked(h5, "gene_names", np.array(gene_names, dtype=object), dtype=h5py.string_dtype())
            n_genes = len(gene_names)
            for name in GENE_METRICS:
                data = np.stack([r.genes[name] for r in reps], axis=1)
                data = data.astype(np.int32 if name in INT_GENE_METRICS else np.float64)
                create_checked(h5, f"genes/{name}", data, chunks=(min(n_genes, 1024), len(reps)), compression="gzip",
                               compression_opts=4, shuffle=True)
            for name in NETWORK_VALUES:
                create_checked(h5, f"network/{name}", np.array([r.network[name] for r in reps], dtype=np.int64))
            create_checked(h5, "low_samples", np.stack([r.low_samples for r in reps]).astype(np.int32))
            create_checked(h5, "high_samples", np.stack([r.high_samples for r in reps]).astype(np.int32))


def _replicates_of(null: NullValues) -> list[NullReplicate]:
    """The columns of an assembled null as replicates (to extend it to more permutations)."""
    return [NullReplicate(r, {k: v[:, r] for k, v in null.genes.items()}, {k: int(v[r]) for k, v in null.network.items()},
                          null.low_samples[r], null.high_samples[r]) for r in range(null.n_perm)]


@dataclass
class NullSummary:
    """What ``NullRun.run`` did: replicates in its scope, computed now, reused, and whether
    ``null.h5`` holds all n_perm of them at the end."""

    n_scope: int
    computed: int
    reused: int
    assembled: bool


@dataclass
class NullRun:
    """Computing a study's null replicates resumably, then gathering them into ``null.h5``.
    ``claim_study`` must have accepted the directory first."""

    backend: object
    expr: Expression
    cfg: AnalysisConfig
    plan: Plan
    out: Path
    identity: StudyIdentity

    def __post_init__(self):
        self.layout = StudyLayout(self.out)
        self.ident = null_identity(self.identity)

    def meta(self) -> dict:
        from bootgpu.version import __version__

        return {"bootgpu_version": __version__, "backend": self.backend.name,
                "device": self.backend.device_name(), **self.ident, "null_id": null_id(self.ident)}

    def assembled(self) -> int:
        """Replicates held by an existing null.h5 of this study (0 without one)."""
        if not self.layout.null_results.exists():
            return 0
        return int(check_null_file(self.layout.null_results, self.ident, "null file")["n_perm"])

    def run(self, n_perm: int, scope: range | None = None, log=print, compute: bool = True) -> NullSummary:
        """Compute the replicates of ``scope`` (default: 0..n_perm-1) not yet on disk; without a
        ``scope``, then gather replicates 0..n_perm-1 into null.h5.  Without ``compute`` nothing is
        computed: a replicate not on disk makes the gathering fail, naming it."""
        if n_perm < 1:
            raise BootgpuError(f"--permutations must be at least 1, got {n_perm}")
        k_low, k_high = self.cfg.validate(self.expr.n_samples)
        whole = scope is None
        scope = range(n_perm) if whole else scope
        in_null = self.assembled()
        if whole and in_null == n_perm:
            return NullSummary(len(scope), 0, len(scope), True)
        files = self.layout.null_replicates()
        for r in scope:
            if r in files:
                check_null_file(files[r], self.ident, "null replicate")
        todo = [r for r in scope if r not in files and r >= in_null]
        if len(todo) < len(scope) and compute:
            log(f"resuming: {len(scope) - len(todo)} of {len(scope)} null replicates already done")
        if todo and compute:
            self._compute(todo, k_low, k_high, len(scope))
        if whole:
            self._gather(n_perm, in_null)
        return NullSummary(len(scope), len(todo), len(scope) - len(todo), whole)

    def _compute(self, todo: list[int], k_low: int, k_high: int, scope_size: int | None = None) -> None:
        from bootgpu.study.progress import Progress, note_run

        self.layout.null_dir.mkdir(parents=True, exist_ok=True)
        total = scope_size or len(todo)
        note_run("null replicate", total - len(todo), total, self.layout.null_dir)
        meta = self.meta()
        expr_dev = self.backend.to_device(self.expr.values)
        with Progress(len(todo), unit="null replicate") as bar:
            for r in todo:
                rep = null_replicate(self.backend, expr_dev, r, self.cfg, self.plan, k_low, k_high)
                write_replicate(self.layout.null_replicate(r), meta, rep)
                bar.update(1)

    def _gather(self, n_perm: int, in_null: int) -> None:
        """null.h5 from the replicates 0..n_perm-1 (those of an existing null.h5 first), then the
        replicate files it took are removed."""
        reps = _replicates_of(read_null(self.layout.null_results))[:n_perm] if in_null else []
        files = self.layout.null_replicates()
        missing = [r for r in range(len(reps), n_perm) if r not in files]
        if missing:
            raise BootgpuError(f"{self.layout.null_dir}: null replicates {_few(missing)} are missing")
        reps += [read_replicate(files[r]) for r in range(len(reps), n_perm)]
        write_null(self.layout.null_results, self.meta(), self.expr.gene_names, reps)
        for r in range(n_perm):
            if r in files:
                files[r].unlink()
        if self.layout.null_dir.is_dir() and not any(self.layout.null_dir.iterdir()):
            self.layout.null_dir.rmdir()


def _few(items: list[int], limit: int = 5) -> str:
    return ",".join(map(str, items[:limit])) + (f",... ({len(items)})" if len(items) > limit else "")


def parse_replicates(spec: str | None, n_perm: int) -> range | None:
    """``--replicates A:B``: replicates A..B-1, within 0..n_perm-1."""
    if spec is None:
        return None
    parts = spec.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts) or not 0 <= int(parts[0]) < int(parts[1]) <= n_perm:
        raise BootgpuError(f"--replicates must be A:B with 0 <= A < B <= --permutations ({n_perm}), got {spec!r}")
    return range(int(parts[0]), int(parts[1]))


def _observed(h5: h5py.File) -> tuple[list[int], dict, list[dict]]:
    """(focus genes, metric -> (F,) observed values, hubs rows) of a results file, from each focus
    gene's stored network metrics and partners (no edges are read)."""
    from bootgpu.results_io import read_hubs_row, read_network_metrics
    from bootgpu.significance import SIGNIFICANCE_METRICS, observed_value

    focus, values, rows = [], {name: [] for name in SIGNIFICANCE_METRICS}, []
    for name in h5["focus"]:
        grp = h5["focus"][name]
        metrics = read_network_metrics(grp)
        if metrics is None:
            raise BootgpuError(f"{h5.filename}: focus gene {name} has no network metrics (an older results format)")
        partner_delta = grp["network/partners"]["delta"]
        for metric in SIGNIFICANCE_METRICS:
            values[metric].append(observed_value(metrics, partner_delta, metric))
        focus.append(int(name))
        rows.append(read_hubs_row(grp))
    return focus, {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}, rows


def study_significance(layout: StudyLayout, identity: StudyIdentity, rank_by: str) -> list[dict] | None:
    """Write gene_significance.tsv (empirical p and BH q of every focus gene and metric,
    ``bootgpu.significance``) and rewrite rewiring_hubs.tsv with their p and q columns, from the
    study's results.h5 and null.h5 (each checked to be this study's); returns the rows, or None
    when the study has no results.h5 yet."""
    from bootgpu.atomic import atomic_write_text
    from bootgpu.hubs import format_hubs_tsv, sort_hub_rows
    from bootgpu.significance import join_significance, significance_table, write_significance_tsv
    from bootgpu.study.directory import check_file_identity

    if not layout.results.exists():
        return None
    check_file_identity(layout.results, identity, "results file")
    check_null_file(layout.null_results, null_identity(identity), "null file")
    with h5py.File(layout.results, "r") as h5:
        focus, observed, hub_rows = _observed(h5)
        gene_names = h5["gene_names"].asstr()[()].tolist()
    null = read_null(layout.null_results, rows=focus)
    values = {**null.genes, NETWORK_METRIC: null.network[NETWORK_METRIC]}
    rows = significance_table(focus, gene_names, observed, values)
    write_significance_tsv(layout.significance, rows)
    hubs = join_significance(sort_hub_rows(hub_rows, rank_by), {row["gene_idx"]: row for row in rows})
    atomic_write_text(layout.hubs, format_hubs_tsv(hubs))
    if layout.finished.exists():  # a finished study: its record lists the table just rewritten
        from bootgpu.study.integrity import record_finished

        record_finished(layout, identity.scope_id)
    return rows
