"""A study's identity: everything that defines its results, so nothing is reused from disk unless it
was computed for exactly this study.

A study's results are a function of the input matrix (as read: shape, gene and sample ids, every
value), the analysis parameters, the draw algorithm, the results-format version and the focus
genes.  The identity records each of them (the input and the focus list as SHA-256 fingerprints)
and ``study_id``, a digest of them all.  It is kept in three places:

- ``DIR/study.json`` (``StudyLayout.identity``): written once, before any computation, and read by
  every later ``run``, ``merge``, ``status`` and ``sge submit`` on DIR;
- the ``/meta`` attributes of every part, shard and results file (scalars and short strings only,
  so no HDF5 attribute limit is ever reached), so each file can be checked on its own;
- the focus list itself lives in ``study.json`` and in ``results.h5`` as the dataset ``/study_focus``.

Not part of the identity, because they do not change the numbers: the backend and device, thread
counts, memory budget and batch sizes (the draws are a pure function of seed, focus gene,
replicate and slot, and every reduction is done in a fixed order).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields

import numpy as np

from bootgpu.errors import BootgpuError
from bootgpu.results_schema import RESULTS_FORMAT


FOCUS_KEYS = ("n_focus", "focus_sha256")  # the study's scope, not its analysis
_ANALYSIS_KEYS = ("low_frac", "high_frac", "n_bootstrap", "bootstrap_frac", "seed", "fdr_alpha", "ci_alpha",
                  "edge_selection", "min_effect", "corr_threshold", "ci_filter", "store")  # fmt: skip


def _sha256_strings(items) -> str:
    """Digest of a sequence of strings, unambiguous (each one length-prefixed)."""
    h = hashlib.sha256()
    for s in items:
        b = s.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def values_sha256(values: np.ndarray) -> str:
    """Digest of a genes x samples float64 matrix as read (shape and little-endian bytes)."""
    v = np.ascontiguousarray(values, dtype="<f8")
    h = hashlib.sha256(f"{v.shape[0]}x{v.shape[1]}:".encode())
    rows = max(1, (64 << 20) // max(1, v.strides[0]))  # 64 MiB at a time: no full copy of a big matrix
    for r0 in range(0, v.shape[0], rows):
        h.update(memoryview(v[r0 : r0 + rows]).cast("B"))
    return h.hexdigest()


def focus_sha256(focus) -> str:
    return hashlib.sha256(np.asarray(focus, dtype="<i8").tobytes()).hexdigest()


@dataclass(frozen=True)
class StudyIdentity:
    """What defines a study's results; compare with ``difference``."""

    results_format: int
    rng_algorithm: str
    low_frac: float
    high_frac: float
    n_bootstrap: int
    bootstrap_frac: float
    seed: int
    fdr_alpha: float
    ci_alpha: float
    edge_selection: str
    min_effect: float
    corr_threshold: float
    ci_filter: bool
    store: str
    n_genes: int
    n_samples: int
    gene_names_sha256: str
    sample_names_sha256: str
    values_sha256: str
    n_focus: int
    focus_sha256: str

    @classmethod
    def of(cls, expr, cfg, focus, rng_algorithm: str) -> "StudyIdentity":
        """The identity of analysing ``focus`` (row indices) of ``expr`` with ``cfg``."""
        analysis = cfg.as_dict()
        return cls(
            results_format=RESULTS_FORMAT, rng_algorithm=rng_algorithm,
            **{k: analysis[k] for k in _ANALYSIS_KEYS},
            n_genes=expr.n_genes, n_samples=expr.n_samples,
            gene_names_sha256=_sha256_strings(expr.gene_names),
            sample_names_sha256=_sha256_strings(expr.sample_names),
            values_sha256=values_sha256(expr.values),
            n_focus=len(focus), focus_sha256=focus_sha256(focus),
        )  # fmt: skip

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def study_id(self) -> str:
        """16 hex digits of the SHA-256 of the analysis's canonical JSON: everything but the focus
        list, which is the study's scope (a study may grow: ``grows_into``), so a focus gene's
        part is the same file whichever focus list it was computed for."""
        analysis = {k: v for k, v in self.as_dict().items() if k not in FOCUS_KEYS}
        text = json.dumps(analysis, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def scope_id(self) -> str:
        """The study id and the focus list's digest: what a finished study's record names."""
        return f"{self.study_id}-{self.focus_sha256[:16]}"

    def same_analysis(self, other: "StudyIdentity") -> bool:
        """Equal but perhaps for the focus list."""
        return self.study_id == other.study_id

    @classmethod
    def from_mapping(cls, data, where: str) -> "StudyIdentity":
        """From a study.json dict or a file's /meta attributes; ``where`` names it in errors."""
        values = {}
        for f in fields(cls):
            if f.name not in data:
                raise BootgpuError(f"{where} has no study identity ({f.name!r} missing): it was written by an "
                                   f"older bootgpu or is not a bootgpu study")
            value = data[f.name]
            value = value.item() if hasattr(value, "item") else value  # numpy scalars from h5py
            if isinstance(value, bytes):
                value = value.decode()
            values[f.name] = value
        return cls(**values)

    def difference(self, other: "StudyIdentity") -> str | None:
        """None if equal, else the first difference, worded as 'X here, not Y' for ``other``:
        e.g. 'n_bootstrap 300, not 50' where self has 300 and other 50."""
        if self == other:
            return None
        a, b = self.as_dict(), other.as_dict()
        if (a["n_genes"], a["n_samples"]) != (b["n_genes"], b["n_samples"]):
            return (f"an input of {a['n_genes']} genes x {a['n_samples']} samples, not "
                    f"{b['n_genes']} x {b['n_samples']}")
        for key, what in (("gene_names_sha256", "gene ids"), ("sample_names_sha256", "sample ids"),
                          ("values_sha256", "expression values")):  # fmt: skip
            if a[key] != b[key]:
                return f"another input (its {what} differ from this input's)"
        for key in ("results_format", "rng_algorithm", *_ANALYSIS_KEYS):
            if a[key] != b[key]:
                return f"{key} {a[key]}, not {b[key]}"
        return f"other focus genes ({a['n_focus']} genes, not these {b['n_focus']})"


def identity_attrs(identity: StudyIdentity) -> dict:
    """The /meta attributes that carry the identity (all scalars or short strings)."""
    return {**identity.as_dict(), "study_id": identity.study_id, "scope_id": identity.scope_id}
