"""`bootgpu export DIR --format tsv|parquet|graphml`: a study's results as files other tools open.

- ``tsv`` / ``parquet``: ``edges`` (one long table of every chosen focus gene's edges, with gene
  ids and a ``focus_gene_id`` column; ``--per-gene``: one file per focus gene under ``edges/``),
  ``nodes`` (per focus gene, every gene in its differential network: degrees in LOW / HIGH /
  differential, edges per class, rewiring score = disappear + new + sign_change, sum |delta|) and
  ``focus_genes`` (one row per focus gene: counts and every network metric).
- ``graphml``: 1-hop ego networks in a focus gene's differential network, for Cytoscape and Gephi:
  around the focus gene itself and its ``--ego-top`` most rewired genes (``--gene`` chooses the
  focus genes; default: the top ``--top`` of rewiring_hubs.tsv).  Node attributes: gene id,
  degrees, rewiring score, whether it is the focus gene / the centre; edge attributes: r_low,
  r_high, delta, class, presence in LOW / HIGH.

Every file is written under a temporary name and renamed (``bootgpu.atomic``); Parquet needs
pyarrow (a dependency).
"""

from __future__ import annotations

import os

import argparse
import re
from pathlib import Path

import numpy as np

from bootgpu.atomic import atomic_path
from bootgpu.errors import BootgpuError
from bootgpu.results_schema import CHANGE_LABELS

FORMATS = ("tsv", "parquet", "graphml")
REWIRING_LABELS = ("disappear", "new", "sign_change")


def safe_name(gene_id: str) -> str:
    """A gene id as a file name (characters other than letters, digits, '.', '-', '_' become '_')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", gene_id) or "_"


def write_table(frame, path: Path, fmt: str) -> Path:
    """``frame`` as ``path`` + .tsv or .parquet, atomically."""
    path = path.with_name(f"{path.name}.{fmt}")
    with atomic_path(path) as tmp:
        if fmt == "tsv":
            frame.to_csv(tmp, sep="\t", index=False, float_format="%.7g")
        else:
            try:
                frame.to_parquet(tmp, index=False)
            except ImportError as exc:
                raise BootgpuError(f"--format parquet needs pyarrow ({exc}); pip install pyarrow") from None
    return path


def node_table(res, gene) -> "pd.DataFrame":  # noqa: F821
    """Every gene of focus gene ``gene``'s differential network: degrees, edges per class, rewiring
    score and sum |delta| (the same edges as its network: ``Results.network``)."""
    import pandas as pd

    graph = res.network(gene, "diff", as_graph=True)
    low, high = (res.network(gene, which) for which in ("low", "high"))
    rows = []
    for node in graph.nodes:
        idx = res.row(node)
        edges = graph.edges(node, data=True)
        counts = {label: 0 for label in CHANGE_LABELS}
        for _, _, data in edges:
            counts[data["change"]] += 1
        rows.append({"gene_id": node, "gene_idx": idx, "degree_low": int(low.indptr[idx + 1] - low.indptr[idx]),
                     "degree_high": int(high.indptr[idx + 1] - high.indptr[idx]), "degree_diff": graph.degree(node),
                     **{f"n_{label}": n for label, n in counts.items()},
                     "rewiring_score": sum(counts[label] for label in REWIRING_LABELS),
                     "sum_abs_delta": float(sum(abs(d["delta"]) for _, _, d in edges))})  # fmt: skip
    frame = pd.DataFrame(rows, columns=["gene_id", "gene_idx", "degree_low", "degree_high", "degree_diff",
                                        *(f"n_{label}" for label in CHANGE_LABELS), "rewiring_score", "sum_abs_delta"])
    return frame.sort_values(["rewiring_score", "gene_idx"], ascending=[False, True], kind="stable").reset_index(drop=True)


def ego_graph(res, gene, centre: str):
    """The 1-hop ego network of ``centre`` in focus gene ``gene``'s differential network, with node
    and edge attributes (GraphML-safe types: str, int, float, bool)."""
    import networkx as nx

    graph = res.network(gene, "diff", as_graph=True)
    nodes = node_table(res, gene).set_index("gene_id")
    focus_id = res.gene_names[res.row(gene)]
    ego = nx.ego_graph(graph, centre, radius=1) if centre in graph else nx.Graph()
    ego.graph.update(focus_gene=focus_id, centre=centre, network="differential")
    for node in ego.nodes:
        row = nodes.loc[node]
        ego.nodes[node].update(gene_id=node, degree_low=int(row["degree_low"]), degree_high=int(row["degree_high"]),
                               degree_diff=int(row["degree_diff"]), rewiring_score=int(row["rewiring_score"]),
                               is_focus=node == focus_id, is_centre=node == centre)  # fmt: skip
    kept = {(a, b): d for a, b, d in graph.edges(data=True)}
    low, high = res.network(gene, "low", as_graph=True), res.network(gene, "high", as_graph=True)
    for a, b in ego.edges:
        ego.edges[a, b].update(kept.get((a, b)) or kept[(b, a)])
        ego.edges[a, b].update(present_low=low.has_edge(a, b), present_high=high.has_edge(a, b))
    return ego


def write_graphml(graph, path: Path) -> Path:
    import networkx as nx

    with atomic_path(path) as tmp:
        nx.write_graphml(graph, tmp)
    return path


def _chosen(res, genes: list[str] | None, top: int | None) -> list[int]:
    if genes:
        return [res.row(g) for g in genes]
    rows = res.focus_index
    if top is None:
        return rows
    table = res.focus_genes
    order = table.sort_values(["n_rewire", "gene_idx"], ascending=[False, True], kind="stable")
    return [int(g) for g in order["gene_idx"][:top]]


def export(res, out: Path, fmt: str, genes=None, robust_only: bool = False, per_gene: bool = False,
           top: int = 5, ego_top: int = 3) -> list[Path]:
    """Write the export files of ``res`` (``bootgpu.api.Results``) under ``out``; return their paths.
    They are written into a folder of their own beside ``out`` first and moved into ``out`` when
    all are written: an export that fails leaves nothing behind."""
    import shutil
    import tempfile

    if fmt not in FORMATS:
        raise BootgpuError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise BootgpuError("--format parquet needs pyarrow (pip install pyarrow); --format tsv needs nothing more") from None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        written = _export(res, staging, fmt, genes, robust_only, per_gene, top, ego_top)
        out.mkdir(exist_ok=True)
        final = []
        for path in written:
            target = out / path.relative_to(staging)
            target.parent.mkdir(exist_ok=True)
            os.replace(path, target)
            final.append(target)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _export(res, out: Path, fmt: str, genes, robust_only: bool, per_gene: bool, top: int, ego_top: int) -> list[Path]:
    import pandas as pd

    written: list[Path] = []
    if fmt == "graphml":
        for row in _chosen(res, genes, top):
            focus_id = res.gene_names[row]
            top_rewired = node_table(res, row)
            centres = [focus_id] + [g for g in top_rewired["gene_id"] if g != focus_id][:ego_top]
            for centre in centres:
                name = f"{safe_name(focus_id)}.ego-{safe_name(centre)}.graphml"
                written.append(write_graphml(ego_graph(res, row, centre), out / name))
        return written
    rows = _chosen(res, genes, None)
    edges, nodes = [], []
    for row in rows:
        focus_id = res.gene_names[row]
        frame = res.edges(row, robust_only=robust_only).assign(change=lambda f: f["change"].astype(str))
        frame.insert(0, "focus_gene_id", focus_id)
        frame.insert(1, "focus_gene_idx", row)
        if per_gene:
            (out / "edges").mkdir(exist_ok=True)
            written.append(write_table(frame, out / "edges" / safe_name(focus_id), fmt))
        else:
            edges.append(frame)
        node = node_table(res, row)
        node.insert(0, "focus_gene_id", focus_id)
        nodes.append(node)
    if edges:
        written.append(write_table(pd.concat(edges, ignore_index=True), out / "edges", fmt))
    written.append(write_table(pd.concat(nodes, ignore_index=True) if nodes else pd.DataFrame(), out / "nodes", fmt))
    focus = res.focus_genes.reset_index(drop=True)
    written.append(write_table(focus[focus["gene_idx"].isin(rows)], out / "focus_genes", fmt))
    return written


def cmd_export(args) -> int:
    from bootgpu.api import open_results

    if args.top < 1 or args.ego_top < 0:
        raise BootgpuError("--top must be at least 1 and --ego-top at least 0")
    out = Path(args.out) if args.out else Path(args.dir) / "export"
    with open_results(args.dir) as res:
        paths = export(res, out, args.format, args.gene, args.robust_only, args.per_gene, args.top, args.ego_top)
    print(f"wrote {len(paths)} files to {out}: {', '.join(p.name for p in paths[:6])}" + (", ..." if len(paths) > 6 else ""))
    return 0


EXPORT_DESCRIPTION = """\
Write a study's results as files other tools open.
  tsv, parquet  edges (every chosen focus gene's edges in one table, with gene ids and a
                focus_gene_id column; --per-gene: one file per focus gene under edges/), nodes
                (per focus gene, every gene of its differential network: degrees in LOW / HIGH /
                differential, edges per class, rewiring score, sum |delta|) and focus_genes (one
                row per focus gene: counts and every network metric)
  graphml       1-hop ego networks in a focus gene's differential network, for Cytoscape and
                Gephi: around the focus gene and its --ego-top most rewired genes (--gene chooses
                the focus genes; default: the top --top of rewiring_hubs.tsv)"""


def register_commands(subparsers) -> None:
    """Add `bootgpu export` to the CLI's subparsers."""
    p = subparsers.add_parser(
        "export", help="edges, nodes and focus-gene tables as TSV/Parquet, ego networks as GraphML",
        description=EXPORT_DESCRIPTION,
        epilog="Examples:\n  bootgpu export ~/bootgpu-demo --format tsv\n"
               "  bootgpu export out/ --format parquet --robust-only --out tables/\n"
               "  bootgpu export out/ --format graphml --gene 38355_at --ego-top 5   # open in Cytoscape or Gephi",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("dir", help="study directory (or its results.h5)")
    p.add_argument("--format", required=True, choices=FORMATS, help="tsv, parquet (needs pyarrow) or graphml")
    p.add_argument("--gene", nargs="+", help="focus genes to export (ids or #ROW; default: all for tables, "
                                              "the top --top hubs for graphml)")
    p.add_argument("--out", help="output folder (default DIR/export)")
    p.add_argument("--robust-only", action="store_true", help="edges table: only edges whose bootstrap CI excludes 0")
    p.add_argument("--per-gene", action="store_true", help="one edges file per focus gene (edges/<gene>.tsv)")
    p.add_argument("--top", type=int, default=5, help="graphml without --gene: this many top hubs by n_rewire (default %(default)s)")
    p.add_argument("--ego-top", type=int, default=3,
                   help="graphml: ego networks of the focus gene and of its this many most rewired genes (default %(default)s)")
    p.set_defaults(func=cmd_export)
