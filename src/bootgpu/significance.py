"""Gene-level significance from the permutation null (docs/null.md): empirical p per focus gene and
metric, Benjamini-Hochberg q across focus genes, ``gene_significance.tsv`` and its columns in
``rewiring_hubs.tsv``.

No compute code (nothing here imports the pipeline): the observed values are read from each focus
gene's stored network metrics in ``results.h5``, the null values from ``null.h5`` (``bootgpu.null``
writes it).

Sidedness: every metric is tested one-sided, upper tail, p = (1 + #{null >= observed}) / (1 + n),
because each measures how much a gene rewires (more edges, more partners, more rewired edges,
larger |delta|, a wider second ring); a value below the null is "less of a hub than a random
split", not evidence of rewiring.  Ties count against the gene (>=), so discrete counts are
conservative.  Metrics that are undefined (NaN) when a gene has no partner or no rewired edge
(ratios and means: ``CONDITIONAL``) are tested conditionally on being defined: n is the number of
null networks in which the gene's value is defined, and replicates where it is not are left out
(counting them as below the observed value would make any defined ratio look significant).  A
gene whose observed value is undefined gets no p (NaN) and takes no part in BH.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bootgpu.atomic import atomic_write_text
from bootgpu.errors import BootgpuError

NETWORK_METRIC = "n_diff_edges"  # one value per null network, shared by every gene: its edge count
SIGNIFICANCE_METRICS = (
    NETWORK_METRIC, "focus_deg_low", "focus_deg_high", "focus_deg_diff", "L1_n_nodes", "L1_rewire",
    "L1_frac_rewire", "L1_mean_abs_delta", "L1_max_abs_delta", "L2L1_deg", "L2L1_rewire",
)  # fmt: skip
CONDITIONAL = frozenset({"L1_frac_rewire", "L1_mean_abs_delta", "L1_max_abs_delta", "L2L1_deg", "L2L1_rewire"})
SUFFIXES = ("", "_p", "_q", "_n_null")  # gene_significance.tsv: observed value, p, q, null values used
HUB_SUFFIXES = ("_p", "_q")  # what rewiring_hubs.tsv takes of it


def significance_columns(suffixes=SUFFIXES) -> tuple:
    return tuple(f"{m}{s}" for m in SIGNIFICANCE_METRICS for s in suffixes)


def empirical_p(observed: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p, n) per gene: ``observed`` (G,), ``null`` (G, R) or (R,) shared by every gene.

    p = (1 + #{defined null >= observed}) / (1 + n), n the defined (non-NaN) null values of the
    gene; NaN where the observed value is NaN."""
    observed = np.asarray(observed, dtype=np.float64)
    null = np.asarray(null, dtype=np.float64)
    if null.ndim == 1:
        null = np.broadcast_to(null, (observed.shape[0], null.shape[0]))
    defined = ~np.isnan(null)
    n = defined.sum(axis=1)
    with np.errstate(invalid="ignore"):
        count = (defined & (null >= observed[:, None])).sum(axis=1)
    p = (1.0 + count) / (1.0 + n)
    p[np.isnan(observed)] = np.nan
    return p, n


def bh_q(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q of the defined p-values (as statsmodels' ``fdr_bh``), NaN kept NaN."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    where = np.flatnonzero(~np.isnan(p))
    m = where.size
    if m == 0:
        return q
    order = np.argsort(p[where], kind="stable")
    ranked = p[where][order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    q[where[order]] = np.minimum(ranked, 1.0)
    return q


def observed_value(metrics: dict, partner_delta: np.ndarray, name: str) -> float:
    """A focus gene's observed value of ``name`` from its stored network metrics and partners."""
    if name == NETWORK_METRIC:
        return float(metrics["n_kept"])
    if name == "L1_max_abs_delta":
        return float(np.abs(partner_delta).max()) if len(partner_delta) else math.nan
    value = metrics[name]
    return math.nan if value is None else float(value)


def significance_table(focus: list[int], gene_names, observed: dict, null: dict) -> list[dict]:
    """One row per focus gene (gene_idx, gene_id, then each metric's value, p, q and n_null).
    ``observed``: metric -> (F,) over ``focus``; ``null``: metric -> (F, R) rows of the focus
    genes, or (R,) for ``NETWORK_METRIC``."""
    rows = [{"gene_idx": int(g), "gene_id": gene_names[g]} for g in focus]
    for name in SIGNIFICANCE_METRICS:
        p, n = empirical_p(observed[name], null[name])
        q = bh_q(p)
        for i, row in enumerate(rows):
            row.update({name: float(observed[name][i]), f"{name}_p": float(p[i]), f"{name}_q": float(q[i]),
                        f"{name}_n_null": int(n[i])})
    return rows


def _cell(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def format_significance_tsv(rows: list[dict]) -> str:
    columns = ("gene_idx", "gene_id", *significance_columns())
    lines = ["\t".join(columns)] + ["\t".join(_cell(row[c]) for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


def write_significance_tsv(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, format_significance_tsv(rows))


def read_significance(path: Path) -> dict[int, dict] | None:
    """gene_idx -> {column: float} of ``gene_significance.tsv`` (None if there is none)."""
    path = Path(path)
    if not path.is_file():
        return None
    lines = path.read_text().splitlines()
    if not lines or not lines[0].startswith("gene_idx\tgene_id"):
        raise BootgpuError(f"{path}: not a bootgpu gene_significance.tsv")
    header = lines[0].split("\t")
    table = {}
    for line in lines[1:]:
        cells = dict(zip(header, line.split("\t")))
        table[int(cells["gene_idx"])] = {k: float(v) for k, v in cells.items() if k not in ("gene_idx", "gene_id")}
    return table


def join_significance(rows: list[dict], table: dict[int, dict] | None) -> list[dict]:
    """Hub rows with each metric's p and q (``HUB_SUFFIXES``) from ``table`` added; unchanged
    without a table.  A focus gene missing from it gets NaN."""
    if table is None:
        return rows
    columns = significance_columns(HUB_SUFFIXES)
    empty = dict.fromkeys(columns, math.nan)
    return [{**row, **{c: table.get(int(row["gene_idx"]), empty).get(c, math.nan) for c in columns}} for row in rows]
