"""Step 5b: the "rewiring hubs" table across focus genes -- who rewires most, and how -- and the
study's network summary (every network metric of every focus gene).

A focus gene's hubs row is built once, from its result and its networks (``bootgpu.networks``),
and stored with it (results_io: the ``hubs_row`` attribute), so tables are rebuilt at merge time
without reading edges.  Column meanings: ``HUB_LEGEND`` and docs/networks.md.
"""

from __future__ import annotations

import math

from bootgpu.errors import BootgpuError
from bootgpu.results_schema import CHANGE_LABELS

TOP_PARTNERS = 5
CLASS_COLUMNS = tuple(f"n_{label}" for label in CHANGE_LABELS)
NETWORK_COLUMNS = (
    "focus_deg_low", "focus_deg_high", "focus_deg_diff", "L1_n_nodes", "L1_rewire", "L1_frac_rewire",
    "L1_frac_disappear", "L1_frac_new", "L1_clique_density", "L2_n_nodes", "L2_rewire", "L2L1_deg", "L2L1_rewire",
    "L2L1_conn", "HL_conn_L1", "HL_conn_L2", "diff_n_edges", "diff_n_nodes_active",
)  # fmt: skip
HUB_COLUMNS = (
    "rank", "gene_idx", "gene_id", "n_tests", "n_sig_diff", "n_robust", "n_kept", *CLASS_COLUMNS, "n_rewire",
    "mean_abs_delta", "max_abs_delta", *NETWORK_COLUMNS, "partners", "top_rewired", "note",
)  # fmt: skip
DEFAULT_RANK_BY = "n_rewire"
RANKABLE = tuple(c for c in HUB_COLUMNS if c not in ("rank", "gene_idx", "gene_id", "partners", "top_rewired", "note"))
HUB_LEGEND = (
    "n_kept: the focus gene's network edges (robust differential edges: bootstrap CI excludes 0); "
    "n_rewire: of these, disappear + new + sign_change; focus_deg_*: the focus gene's own edges in LOW / HIGH / "
    "differential networks; L1: its direct partners, L2: their partners (L2L1_*: outer ring / inner ring); "
    "partners: its own strongest changes (|delta|); top_rewired: genes with most rewired edges in its network. "
    "Definitions: docs/networks.md"
)


def hub_row(res, gene_names) -> dict:
    """The hubs-table row of one focus gene's result (``FocusResult`` with its ``network``)."""
    net = res.network
    if net is None:
        raise ValueError("hub_row needs the focus gene's networks (FocusResult.network)")
    m = net.metrics
    row = {"gene_idx": int(res.focus), "gene_id": gene_names[res.focus]}
    row.update({key: int(res.attrs[key]) for key in ("n_tests", "n_sig_diff", "n_robust")})
    row.update({key: m[key] for key in ("n_kept", *CLASS_COLUMNS, "n_rewire", "mean_abs_delta", "max_abs_delta")})
    row.update({key: m[key] for key in NETWORK_COLUMNS})
    partners = net.partners
    row["partners"] = ",".join(f"{gene_names[int(g)]}({d:+.2f})"
                                for g, d in zip(partners["gene"][:TOP_PARTNERS], partners["delta"][:TOP_PARTNERS]))
    top = net.top_rewired
    row["top_rewired"] = ",".join(f"{gene_names[int(g)]}({int(n)})"
                                  for g, n in zip(top["gene"][:TOP_PARTNERS], top["n_rewired"][:TOP_PARTNERS]))
    row["note"] = str(res.attrs.get("skipped", ""))  # a focus gene not analysed says why, and is not ranked
    return {key: (v.item() if hasattr(v, "item") else v) for key, v in row.items()}


def _descending(value) -> float:
    """Sort key: larger first, NaN (no value) last."""
    return math.inf if value is None or (isinstance(value, float) and math.isnan(value)) else -float(value)


def check_rank_by(rank_by: str) -> None:
    if rank_by not in RANKABLE:
        raise BootgpuError(f"--rank-by must be one of {', '.join(RANKABLE)}, got {rank_by!r}")


def sort_hub_rows(rows: list[dict], rank_by: str = DEFAULT_RANK_BY) -> list[dict]:
    """By ``rank_by`` (descending, NaN last), then mean |delta| (descending), then gene index; each
    row gets its ``rank`` (1 = first).  Focus genes that were skipped (``note``) are not ranked:
    they follow the others in gene order, with rank '-'."""
    check_rank_by(rank_by)
    skipped = [row for row in rows if row.get("note", "").startswith("skipped")]
    ordered = sorted((row for row in rows if not row.get("note", "").startswith("skipped")),
                     key=lambda r: (_descending(r[rank_by]), _descending(r["mean_abs_delta"]), r["gene_idx"]))
    ranked = [{**row, "rank": rank} for rank, row in enumerate(ordered, start=1)]
    return ranked + [{**row, "rank": "-"} for row in sorted(skipped, key=lambda r: r["gene_idx"])]


def _cell(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def format_hubs_tsv(rows) -> str:
    """HUB_COLUMNS, then any further columns the rows carry (the permutation null's p and q,
    ``significance.join_significance``), in the first row's order."""
    extra = tuple(k for k in (rows[0] if rows else {}) if k not in HUB_COLUMNS)
    columns = (*HUB_COLUMNS, *extra)
    lines = ["\t".join(columns)]
    lines += ["\t".join(_cell(row.get(col, "")) for col in columns) for row in rows]  # rows of older files: no note
    return "\n".join(lines) + "\n"


def format_network_summary_tsv(rows: list[dict], names: tuple) -> str:
    """One row per focus gene: gene_idx, gene_id, then every network metric (``names``)."""
    lines = ["\t".join(("gene_idx", "gene_id", *names))]
    lines += ["\t".join(_cell(row[col]) for col in ("gene_idx", "gene_id", *names)) for row in rows]
    return "\n".join(lines) + "\n"


def _short_list(text: str, width: int) -> str:
    """A comma list cut at an item boundary to fit ``width`` (never mid-name), '...' when cut."""
    if len(text) <= width:
        return text
    out = ""
    for item in text.split(","):
        if len(out) + len(item) + 4 > width:
            return out + ",..." if out else item[: max(1, width - 3)] + "..."
        out = f"{out},{item}" if out else item
    return out


def format_hubs_table(rows, limit: int = 10, rank_by: str = DEFAULT_RANK_BY) -> str:
    """A short human-readable table of the top hubs, for the end of a run, with a legend."""
    head = (f"{'rank':>4}  {'gene':<16} {'robust':>7} {'kept':>6} {'rewire':>6} {'mean|d|':>7} {'L1':>4} {'L2':>5} "
            f"{'L2/L1':>6}  partners (delta)")
    lines = [head]
    for row in rows[:limit]:
        ratio = row["L2L1_deg"]
        ratio = "-" if isinstance(ratio, float) and math.isnan(ratio) else f"{ratio:.1f}"
        mean = row["mean_abs_delta"]
        mean = "-" if isinstance(mean, float) and math.isnan(mean) else f"{mean:.3f}"
        lines.append(f"{row['rank']:>4}  {row['gene_id']:<16} {row['n_robust']:>7} {row['n_kept']:>6} "
                     f"{row['n_rewire']:>6} {mean:>7} {row['L1_n_nodes']:>4} {row['L2_n_nodes']:>5} {ratio:>6}  "
                     f"{_short_list(row['partners'], 48) or '-'}")
    lines.append(f"ranked by {rank_by}. robust: edges whose bootstrap CI excludes 0; kept: those in the networks; "
                 f"rewire: disappear + new + sign_change; mean|d|: mean |delta| of kept edges; L1: direct partners; "
                 f"L2: their partners; L2/L1 = L2 / L1 (docs/networks.md)")
    return "\n".join(lines)
