"""Step 5b: the "rewiring hubs" table across focus genes: who rewires most, and how."""

from __future__ import annotations

import numpy as np

from bootgpu.results_schema import CHANGE_LABELS

HUB_COLUMNS = (
    "focus_index", "gene", "n_tests", "n_sig_diff", "n_sig_edges", "n_robust",
    *(f"n_{label}" for label in CHANGE_LABELS[1:]), "mean_abs_delta_robust", "top_partners",
)  # fmt: skip
TOP_PARTNERS = 5


def hub_row(res, gene_names) -> dict:
    """The hubs-table row of one focus gene's result (FocusResult).

    Class counts and mean |delta| are over robust edges (bootstrap CI excludes 0).  An edge is
    any gene pair whose co-expression the focus gene's level rewires; top partners are the genes
    on the most robust edges (their degree in that focus gene's differential network).
    """
    e = res.edges
    robust = e["robust"]
    delta = e["delta"][robust].astype(np.float64)
    change = e["change"][robust]
    ends = np.concatenate([e["gene_i"][robust], e["gene_j"][robust]])
    genes, degree = np.unique(ends, return_counts=True)
    top = np.lexsort((genes, -degree))[:TOP_PARTNERS]  # by degree, then gene index
    row = {
        "focus_index": int(res.focus),
        "gene": gene_names[res.focus],
        "n_tests": int(res.attrs["n_tests"]),
        "n_sig_diff": int(res.attrs["n_sig_diff"]),
        "n_sig_edges": int(res.attrs["n_sig_edges"]),
        "n_robust": int(res.attrs["n_robust"]),
        "mean_abs_delta_robust": float(np.mean(np.abs(delta))) if delta.size else float("nan"),
    }
    for code, label in enumerate(CHANGE_LABELS[1:], start=1):
        row[f"n_{label}"] = int(np.count_nonzero(change == code))
    row["top_partners"] = ",".join(f"{gene_names[int(genes[t])]}({int(degree[t])})" for t in top)
    return row


def sort_hub_rows(rows: list[dict]) -> list[dict]:
    """By robust edges (descending), then mean |delta| (descending), then focus index."""
    return sorted(rows, key=lambda r: (-r["n_robust"], -np.nan_to_num(r["mean_abs_delta_robust"], nan=-1.0),
                                       r["focus_index"]))


def hub_rows(results, gene_names) -> list[dict]:
    """One row per focus gene (see ``hub_row``), sorted (see ``sort_hub_rows``)."""
    return sort_hub_rows([hub_row(res, gene_names) for res in results])


def format_hubs_tsv(rows) -> str:
    lines = ["\t".join(HUB_COLUMNS)]
    for row in rows:
        cells = []
        for col in HUB_COLUMNS:
            value = row[col]
            cells.append(f"{value:.6g}" if isinstance(value, float) else str(value))
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


def format_hubs_table(rows, limit: int = 10) -> str:
    """A short human-readable table of the top hubs, for the end of a run."""
    head = f"{'rank':>4}  {'gene':<18} {'robust':>7} {'sig_diff':>8} {'mean|d|':>8}  top partners"
    lines = [head]
    for rank, row in enumerate(rows[:limit], start=1):
        lines.append(
            f"{rank:>4}  {row['gene']:<18} {row['n_robust']:>7} {row['n_sig_diff']:>8} "
            f"{row['mean_abs_delta_robust']:>8.3f}  {row['top_partners'][:60]}"
        )
    return "\n".join(lines)
