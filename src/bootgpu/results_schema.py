"""What a focus gene's results are, without array code: the fields of its edges, the labels of the
classes of change, the results file format version, and ``FocusResult`` (host arrays).

The pipeline produces ``FocusResult``s; results I/O, merge and status read and write them through
these names only, so `bootgpu merge` and `bootgpu status` never load the compute core.  The file
layout built from them is described in docs/results-format.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

RESULTS_FORMAT = 5  # 1: /meta/study_focus was an attribute (and copied into every part and shard);
#                    2: no network group, no edge-filter parameters in the identity; 3: no store mode;
#                    4: class 0 was "unchanged", no checksums, no finished.json (read as 5: LEGACY_NAMES)
PAIR_MASK_FIELDS = ("sig_low", "sig_high", "sig_diff")  # --store common: every pair, bit-packed
PAIR_VALUE_FIELDS = ("r_low", "r_high")  # --store full: every pair's r, float32 (NaN: undefined)

CHANGE_LABELS = ("subthreshold", "disappear", "new", "sign_change", "strengthen", "weaken")  # index = code
# subthreshold: a robust differential edge (its correlation changes between LOW and HIGH) that is significant in
# neither group alone, or equally strong in both; files of format 4 and older called it "unchanged"
LEGACY_NAMES = {"unchanged": "subthreshold"}


def modern_name(name: str) -> str:
    """A stored column or label name as this version calls it (``LEGACY_NAMES``, also inside
    metric names such as L1_n_unchanged)."""
    for old, new in LEGACY_NAMES.items():
        if old in name:
            name = name.replace(old, new)
    return name
EDGE_FLOAT_FIELDS = (
    "r_low", "r_high", "delta", "q_low", "q_high", "q_diff",
    "boot_mean", "boot_std", "ci_low", "ci_high", "bias", "boot_p",
)  # fmt: skip
EDGE_INDEX_FIELDS = ("gene_i", "gene_j")  # int32 rows of the input matrix, gene_i < gene_j
EDGE_FLAG_FIELDS = ("change", "robust")  # int8 code into CHANGE_LABELS; bool: the CI excludes 0


@dataclass
class StoredNetwork:
    """A focus gene's networks as stored (``network`` group): what tables and re-writes need of a
    ``networks.FocusNetwork``, read back without recomputing it."""

    metrics: dict  # name -> int or float, in METRIC_NAMES order
    degrees: dict  # "low", "high", "diff" -> (n_genes,) int32
    partners: dict  # field -> array (networks.direct_partners)
    top_rewired: dict  # field -> array (networks.top_rewired)


@dataclass
class FocusResult:
    """Host (NumPy) results of one focus gene; ``edges`` holds the selected edges' arrays (the
    fields above)."""

    focus: int
    attrs: dict
    low_samples: Any  # (k_low,) int32 sample indices
    high_samples: Any
    edges: dict = field(default_factory=dict)
    plan: Any = None  # planner.Plan re-made for this focus gene's selected edges (planner.plan_bootstrap):
    #                   its predicted_peak_bytes is the prediction for this focus gene
    network: Any = None  # networks.FocusNetwork (study_run computes it on the host) or a StoredNetwork
    pairs: dict | None = None  # --store common/full: PAIR_MASK_FIELDS (np.packbits of every pair in
    #                            condensed order) and with full PAIR_VALUE_FIELDS; None with minimal


def empty_edges() -> dict:
    """The edges of a focus gene with no selected edge: every field, zero-length, in its dtype."""
    out = {key: np.zeros(0, dtype=np.float32) for key in EDGE_FLOAT_FIELDS}
    out.update(gene_i=np.zeros(0, np.int32), gene_j=np.zeros(0, np.int32), change=np.zeros(0, np.int8))
    out["robust"] = np.zeros(0, dtype=bool)
    return out
