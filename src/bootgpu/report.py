"""`bootgpu report DIR [--top 20] [--out DIR/report]`: one HTML file a biologist can open offline
and send around, with the figures the original pipeline's users look at.

DIR/report/index.html holds the study's parameters and data, the hubs table of every focus gene
(click a column header to sort), study-wide figures (network edges per focus gene; the top hubs by
n_rewire, L1_rewire and L2L1_rewire) and, for each of the top --top focus genes of
rewiring_hubs.tsv: r_low vs r_high by class of change, delta with its bootstrap CI for its
strongest edges, edges per class, LOW / HIGH / differential ego networks side by side (around the
focus gene, or its most rewired gene when it has no partner) and the degree distributions of its
LOW and HIGH networks.  Every figure is embedded in the page (base64 PNG), so the one file opens
offline and can be mailed, and is also written to figures/ beside it.

Fast at any study size: the table and the study figures come from one read of the study's
rewiring_hubs.tsv and network_summary.tsv (``study_table``; ``Results.focus_genes`` reads every
focus group, minutes at 20,000 focus genes, and is the fallback for a results file without them),
and only the top genes' edges are read.  Colours (Okabe-Ito, colour-blind safe) are one per class of
change throughout: ``CLASS_COLOURS``.  Draws with matplotlib (a dependency).
"""

from __future__ import annotations

import argparse
import base64
import html
import importlib.util
import io
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bootgpu.atomic import atomic_path, atomic_write_text
from bootgpu.errors import BootgpuError
from bootgpu.export import REWIRING_LABELS, safe_name
from bootgpu.results_schema import CHANGE_LABELS
from bootgpu.version import __version__

# Okabe & Ito (2008), "Color Universal Design"; grey for edges that did not change class.
CLASS_COLOURS = {
    "subthreshold": "#999999",
    "disappear": "#0072B2",  # blue: present in LOW only (LOW's colour)
    "new": "#D55E00",  # vermillion: present in HIGH only (HIGH's colour)
    "sign_change": "#CC79A7",  # reddish purple
    "strengthen": "#009E73",  # bluish green
    "weaken": "#E69F00",  # orange
}
GROUP_COLOURS = {"low": CLASS_COLOURS["disappear"], "high": CLASS_COLOURS["new"]}
NEUTRAL = "#56B4E9"  # sky blue: bars that are not a class
DPI = 100
FOREST_EDGES = 20
EGO_NEIGHBOURS = 30  # the ego networks show the centre's strongest changes only (readable labels)
STUDY_TOP = 20
TABLE_COLUMNS = (
    "rank", "gene_id", "gene_idx", "n_robust", "n_kept", "n_rewire", *(f"n_{label}" for label in CHANGE_LABELS),
    "mean_abs_delta", "max_abs_delta", "focus_deg_low", "focus_deg_high", "focus_deg_diff", "L1_n_nodes",
    "L1_rewire", "L2_n_nodes", "L2L1_deg", "L2L1_rewire", "L2L1_conn", "partners", "top_rewired",
)  # fmt: skip
TEXT_COLUMNS = ("gene_id", "partners", "top_rewired")


@dataclass
class Figure:
    """One figure of the report: its file name under ``figures/``, PNG bytes, caption and alt text."""

    name: str
    png: bytes
    caption: str
    alt: str


@dataclass
class GeneSection:
    row: int
    gene_id: str
    rank: int
    summary: str
    figures: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # what is not drawn, and why


# -- data ---------------------------------------------------------------------------------------------


@dataclass
class GeneEdges:
    """One focus gene's selected edges (``Results.edges``) and which of them its networks keep,
    with the network's class of change, presence in LOW / HIGH and per-gene degrees."""

    frame: object  # pandas DataFrame, Results.edges
    kept: np.ndarray  # (E,) bool: in the differential network (docs/networks.md, edge filter)
    change: np.ndarray  # (K,) int8 class code of each kept edge (KeptEdges.change)
    present_low: np.ndarray  # (K,) bool
    present_high: np.ndarray
    n_genes: int

    def kept_frame(self):
        out = self.frame[self.kept].reset_index(drop=True)
        out["net_change"] = np.asarray(CHANGE_LABELS, dtype=object)[self.change]
        out["present_low"], out["present_high"] = self.present_low, self.present_high
        return out

    def degrees(self, which: str) -> np.ndarray:
        """(n_genes,) edges per gene in the LOW, HIGH or differential network."""
        mask = {"low": self.present_low, "high": self.present_high, "diff": np.ones(len(self.change), bool)}[which]
        kept = self.frame[self.kept]
        ends = np.concatenate([kept["gene_i"].to_numpy()[mask], kept["gene_j"].to_numpy()[mask]])
        return np.bincount(ends, minlength=self.n_genes)

    def rewiring_score(self) -> np.ndarray:
        """(n_genes,) disappear + new + sign_change edges per gene in the differential network."""
        codes = [CHANGE_LABELS.index(label) for label in REWIRING_LABELS]
        mask = np.isin(self.change, codes)
        kept = self.frame[self.kept]
        ends = np.concatenate([kept["gene_i"].to_numpy()[mask], kept["gene_j"].to_numpy()[mask]])
        return np.bincount(ends, minlength=self.n_genes)


def gene_edges(res, row: int) -> GeneEdges:
    """Read focus gene ``row``'s edges once and apply the study's edge filter (as
    ``Results.network`` does)."""
    from bootgpu.networks import EdgeFilter, filter_edges

    frame = res.edges(row)
    m = res.meta
    edge_filter = EdgeFilter(float(m.get("min_effect", 0.0)), float(m.get("corr_threshold", 0.0)), bool(m.get("ci_filter", True)))
    arrays = {key: frame[key].to_numpy() for key in ("gene_i", "gene_j", "r_low", "r_high", "delta", "q_low", "q_high", "robust")}
    kept = filter_edges(arrays, float(m["fdr_alpha"]), edge_filter)
    mask = np.abs(frame["delta"].to_numpy()) >= edge_filter.min_effect
    if edge_filter.ci_filter:
        mask &= frame["robust"].to_numpy()
    assert int(mask.sum()) == len(kept), "report's edge mask disagrees with networks.filter_edges"
    return GeneEdges(frame, mask, kept.change, kept.present_low, kept.present_high, len(res.gene_names))


def study_table(res, log=lambda line: None):
    """One row per focus gene, ranked (column ``rank``, 1 = top, ascending): hubs-table columns,
    every network metric of ``STUDY_METRICS``.

    Read from the study's rewiring_hubs.tsv and network_summary.tsv beside the results file when
    they list exactly its focus genes (pandas reads 20,000 rows in about a second; the rank is the
    run's --rank-by), else from ``Results.focus_genes`` (every focus group's attributes and metrics
    row: some 20 ms a focus gene, minutes at 20,000) ranked by n_rewire as `bootgpu run` ranks by
    default."""
    import pandas as pd

    from bootgpu.hubs import DEFAULT_RANK_BY

    hubs_path, summary_path = res.path.parent / "rewiring_hubs.tsv", res.path.parent / "network_summary.tsv"
    if hubs_path.is_file() and summary_path.is_file():
        text = {"gene_id": str, "partners": str, "top_rewired": str}
        hubs = pd.read_csv(hubs_path, sep="\t", dtype=text, keep_default_na=False, na_values=["nan"])
        idx = hubs["gene_idx"].to_numpy()
        focus = np.sort(np.asarray(res.focus_index, dtype=np.int64))
        if (len(idx) == len(focus) and np.array_equal(np.sort(idx), focus)
                and (hubs["gene_id"].to_numpy() == res.gene_names[idx]).all()):
            wanted = [c for c in STUDY_METRICS if c not in hubs.columns]
            metrics = pd.read_csv(summary_path, sep="\t", usecols=["gene_idx", *wanted])
            table = hubs.merge(metrics, on="gene_idx", how="left", validate="one_to_one")
            return table.sort_values("rank", kind="stable").reset_index(drop=True)
        log(f"{hubs_path} does not list this results file's focus genes: reading every focus group instead")
    table = res.focus_genes.reset_index(drop=True)
    if len(table) == 0:
        return table
    table = table.sort_values([DEFAULT_RANK_BY, "mean_abs_delta", "gene_idx"], ascending=[False, False, True],
                              kind="stable", na_position="last").reset_index(drop=True)
    return table.assign(rank=np.arange(1, len(table) + 1))


STUDY_METRICS = tuple(f"L1_n_{label}" for label in REWIRING_LABELS)  # network_summary.tsv columns the report uses


# -- figures ------------------------------------------------------------------------------------------


def _new_figure(width: float, height: float, left: float = 0.75, right: float = 0.2, bottom: float = 0.6,
                top: float = 0.4, wspace: float = 0.25):
    """A matplotlib Figure drawn by Agg, without pyplot's global state, with fixed margins (inches):
    a layout engine measures every label of every figure, which was most of the report's time."""
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                        wspace=wspace)
    return fig


def _title(ax, text: str, pad: float = 6) -> None:
    """A title ``pad`` points above the axes: ``set_title`` would measure the tick labels at every
    draw to place itself, a third of a small figure's time."""
    from matplotlib.transforms import offset_copy

    ax.text(0.5, 1.0, text, ha="center", va="bottom", fontsize=10,
            transform=offset_copy(ax.transAxes, fig=ax.figure, y=pad, units="points"))


def _label_width(labels, fontsize: float) -> float:
    """Inches a column of tick labels needs (about 0.6 em a character)."""
    return max((len(str(t)) for t in labels), default=0) * 0.6 * fontsize / 72 + 0.15


def fit_count_axis(ax, fontsize: float = 10.0) -> None:
    """A y axis of counts with thousands separators (700,000, never 7e5), and a left margin wide
    enough for its tick labels and its label: computed from the labels the locator will draw
    (no layout engine: _new_figure says why), so no label is clipped however large the counts."""
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    lo, hi = ax.get_ylim()
    ticks = [t for t in ax.yaxis.get_major_locator().tick_values(lo, hi) if lo <= t <= hi]
    labels = ax.yaxis.get_major_formatter().format_ticks(ticks)
    fig = ax.figure
    need = _label_width(labels, fontsize) + (0.3 if ax.get_ylabel() else 0.0)
    width = fig.get_figwidth()
    if need > fig.subplotpars.left * width:
        fig.subplots_adjust(left=min(0.5, need / width))


def _png(fig) -> bytes:
    """``fig`` drawn by Agg as PNG: RGB where it is opaque (every figure here; a quarter less to
    compress than matplotlib's RGBA), zlib level 3 (about as small as matplotlib's level 6 in RGBA,
    in 60% of the time)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    image = Image.fromarray(np.ascontiguousarray(rgba[..., :3]) if rgba[..., 3].min() == 255 else rgba)
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=3, dpi=(DPI, DPI))
    return buf.getvalue()


def _class_handles(labels) -> list:
    from matplotlib.lines import Line2D

    return [Line2D([], [], marker="o", ls="", color=CLASS_COLOURS[label], label=label.replace("_", " ")) for label in labels]


def fig_scatter(gene_id: str, ge: GeneEdges) -> Figure | None:
    from matplotlib.lines import Line2D

    frame = ge.frame
    if len(frame) == 0:
        return None
    fig = _new_figure(6.4, 5.0, left=0.75, right=1.35, bottom=0.55, top=0.35)
    ax = fig.add_subplot()
    ax.plot([-1, 1], [-1, 1], color="#000000", lw=0.6, ls=":", zorder=1)
    ax.axhline(0, color="#000000", lw=0.4, zorder=1)
    ax.axvline(0, color="#000000", lw=0.4, zorder=1)
    dropped = frame[~ge.kept]
    if len(dropped):
        ax.scatter(dropped["r_low"], dropped["r_high"], s=9, facecolors="none", edgecolors="#BBBBBB", linewidths=0.5,
                   label="not kept (CI includes 0)", rasterized=True, zorder=2)
    kept = ge.kept_frame()
    size = 14 if len(kept) < 2000 else 6
    shown = []
    for label in CHANGE_LABELS:
        part = kept[kept["net_change"] == label]
        if len(part):
            shown.append(label)
            ax.scatter(part["r_low"], part["r_high"], s=size, color=CLASS_COLOURS[label], alpha=0.8, linewidths=0,
                       rasterized=True, zorder=3)
    ax.set_xlim(-1.02, 1.02)
    ax.set_ylim(-1.02, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("r_low (Spearman r in LOW samples)")
    ax.set_ylabel("r_high (Spearman r in HIGH samples)")
    _title(ax, f"{gene_id}: {len(frame):,} selected edges")
    handles = _class_handles(shown)
    if len(dropped):
        handles.append(Line2D([], [], marker="o", ls="", mfc="none", mec="#999999", label="not kept"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, fontsize=7.5,
              title="class of change", title_fontsize=7.5, frameon=False)
    caption = (f"Each selected edge (gene pair) of {gene_id}'s analysis: its Spearman correlation in the LOW samples "
               f"(x) against the HIGH samples (y), coloured by class of change in the differential network; the "
               f"dotted diagonal is r_high = r_low. {int(ge.kept.sum()):,} edges are kept in the network"
               + (f"; {len(dropped):,} hollow grey ones are not (bootstrap CI of delta includes 0, or below --min-effect)."
                  if len(dropped) else "."))
    return Figure("scatter", _png(fig), caption, f"r_low vs r_high of {gene_id}'s edges by class")


def fig_forest(gene_id: str, ge: GeneEdges, ci_alpha: float, n: int = FOREST_EDGES) -> Figure | None:
    kept = ge.kept_frame()
    if len(kept) == 0:
        return None
    top = kept.assign(abs_delta=kept["delta"].abs()).sort_values("abs_delta", ascending=False, kind="stable").head(n)
    top = top.iloc[::-1]  # largest at the top of the plot
    labels = [f"{a} – {b}" for a, b in zip(top["gene_a"], top["gene_b"])]
    width = _label_width(labels, 7)
    fig = _new_figure(4.6 + width, 1.3 + 0.22 * len(top), left=width, right=0.2, bottom=0.55, top=0.45)
    ax = fig.add_subplot()
    y = np.arange(len(top))
    colours = [CLASS_COLOURS[c] for c in top["net_change"]]
    ax.hlines(y, top["ci_low"], top["ci_high"], colors=colours, lw=2)
    ax.scatter(top["delta"], y, c=colours, s=22, zorder=3, edgecolors="#000000", linewidths=0.4)
    ax.axvline(0, color="#000000", lw=0.6)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_ylim(-0.6, len(top) - 0.4)
    ax.set_xlabel("delta = r_high − r_low (difference of Spearman r)")
    ax.set_xlim(-2.05, 2.05)
    _title(ax, f"{gene_id}: the {len(top)} kept edges with the largest |delta|", pad=16)
    ax.grid(axis="x", color="#DDDDDD", lw=0.5)
    ax.legend(handles=_class_handles([c for c in CHANGE_LABELS if c in set(top["net_change"])]), loc="lower left",
                  bbox_to_anchor=(0, 1.0), ncol=6, fontsize=7, frameon=False, borderaxespad=0.2)
    caption = (f"The {len(top)} kept edges of {gene_id} with the largest |delta|: delta (dot) and its bootstrap "
               f"percentile confidence interval (bar, {100 * (1 - ci_alpha):.0f}%), coloured by class.")
    return Figure("forest", _png(fig), caption, f"delta with bootstrap CI for {gene_id}'s top edges")


def fig_classes(gene_id: str, ge: GeneEdges) -> Figure:
    counts = np.bincount(ge.change.astype(np.int64), minlength=len(CHANGE_LABELS))
    fig = _new_figure(5.6, 3.0, left=0.75, bottom=0.55, top=0.2)
    ax = fig.add_subplot()
    x = np.arange(len(CHANGE_LABELS))
    bars = ax.bar(x, counts, color=[CLASS_COLOURS[label] for label in CHANGE_LABELS], edgecolor="#000000", linewidth=0.4)
    ax.bar_label(bars, [f"{c:,}" for c in counts], fontsize=7, padding=1)
    ax.set_xticks(x, [label.replace("_", "\n") for label in CHANGE_LABELS], fontsize=7.5)
    ax.set_ylabel("edges (gene pairs)")
    ax.set_ylim(0, max(1, counts.max()) * 1.15)
    ax.spines[["top", "right"]].set_visible(False)
    fit_count_axis(ax)
    rewire = int(sum(counts[CHANGE_LABELS.index(label)] for label in REWIRING_LABELS))
    caption = (f"Edges of {gene_id}'s differential network per class of change ({int(counts.sum()):,} in all; "
               f"rewired = disappear + new + sign_change = {rewire:,}). disappear: correlated in LOW only; new: in "
               f"HIGH only; sign_change: in both, opposite signs; strengthen / weaken: same sign, |r| up / down; "
               f"subthreshold: the correlation changes between LOW and HIGH, but is significant in neither group alone.")
    return Figure("classes", _png(fig), caption, f"edges per class of change for {gene_id}")


def ego_centre(gene_id: str, row: int, ge: GeneEdges, names) -> tuple[int | None, str]:
    """The gene the ego networks are drawn around: the focus gene when it has partners in its
    differential network, else its most rewired gene (ties: most edges, then lowest row); and the
    caption's words for the choice."""
    degree = ge.degrees("diff")
    if degree[row] > 0:
        return row, f"around the focus gene {gene_id}"
    if degree.max() == 0:
        return None, ""
    score = ge.rewiring_score()
    centre = int(np.lexsort((np.arange(len(degree)), -degree, -score))[0])
    return centre, (f"around {names[centre]}, the most rewired gene of {gene_id}'s network ({int(score[centre])} "
                    f"rewired edges; {gene_id} itself has no partner in its differential network)")


def fig_networks(gene_id: str, row: int, ge: GeneEdges, names, limit: int = EGO_NEIGHBOURS) -> tuple[Figure | None, str]:
    """LOW / HIGH / differential 1-hop ego networks of the ego centre (``ego_centre``), drawn with
    one layout in all three panels; (None, why) when there is nothing to draw."""
    import networkx as nx
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    centre, where = ego_centre(gene_id, row, ge, names)
    if centre is None:
        return None, f"ego networks: {gene_id} has no kept edge, so there is no network to draw."
    kept = ge.kept_frame()
    gi, gj = kept["gene_i"].to_numpy(), kept["gene_j"].to_numpy()
    classes = kept["net_change"].to_numpy()
    value = {"low": kept["r_low"].to_numpy(), "high": kept["r_high"].to_numpy(), "diff": kept["delta"].to_numpy()}
    present = {"low": kept["present_low"].to_numpy(), "high": kept["present_high"].to_numpy(),
               "diff": np.ones(len(kept), bool)}
    mine = np.flatnonzero((gi == centre) | (gj == centre))
    strongest = mine[np.argsort(-np.abs(value["diff"][mine]), kind="stable")[:limit]]
    # the ring: partners grouped by the class of their edge to the centre, strongest first in each
    strongest = strongest[np.argsort([CHANGE_LABELS.index(c) for c in classes[strongest]], kind="stable")]
    ring = [int(g) for g in np.where(gi[strongest] == centre, gj[strongest], gi[strongest])]
    nodes = np.array([centre, *ring])
    inside = np.flatnonzero(np.isin(gi, nodes) & np.isin(gj, nodes))
    graph = nx.Graph()
    graph.add_nodes_from(nodes.tolist())
    pos = nx.shell_layout(graph, nlist=[[centre], ring] if ring else [[centre]], scale=1.0)
    radius = max((float(np.hypot(*p)) for p in pos.values()), default=0.0) or 1.0
    pos = {node: np.asarray(p) / radius for node, p in pos.items()}  # the ring on the unit circle
    # one axes for the three panels, side by side in data units (an axes each costs its ticks and
    # title layout even when hidden, most of this figure's time)
    fig = _new_figure(15.0, 5.2)
    ax = fig.add_axes((0.0, 0.07, 1.0, 0.93))
    ax.set_axis_off()
    panels = (("low", "LOW network"), ("high", "HIGH network"), ("diff", "differential network"))
    segments, colours, widths, styles = [], [], [], []
    for k, (which, title) in enumerate(panels):
        dx = k * PANEL_STEP
        edges = inside[present[which][inside]]
        touched = set(gi[edges].tolist()) | set(gj[edges].tolist())
        v = value[which][edges]
        segments += [((pos[int(gi[e])][0] + dx, pos[int(gi[e])][1]), (pos[int(gj[e])][0] + dx, pos[int(gj[e])][1])) for e in edges]
        colours += [CLASS_COLOURS[c] for c in classes[edges]]
        widths += (0.6 + 2.4 * np.minimum(np.abs(v), 1.0)).tolist()
        styles += ["-" if x >= 0 else (0, (3, 2)) for x in v]
        xy = np.array([pos[node] for node in nodes])
        on = np.isin(nodes, list(touched))
        ax.scatter(xy[:, 0] + dx, xy[:, 1], s=np.where(nodes == centre, 260, 55), zorder=2,
                   linewidths=np.where(nodes == centre, 1.4, 0.6),
                   color=["#F0E442" if n == centre else ("#DDDDDD" if o else "#FFFFFF") for n, o in zip(nodes, on)],
                   edgecolors=np.where(on, "#000000", "#BBBBBB"))
        _label_nodes(ax, pos, centre, names, dx)
        ax.text(dx, 1.5, f"{title}: {len(edges)} edge{'s' if len(edges) != 1 else ''} among these genes",
                ha="center", va="bottom", fontsize=10)
    ax.add_collection(LineCollection(segments, colors=colours, linewidths=widths, linestyles=styles, alpha=0.85, zorder=1))
    ax.set_xlim(-PANEL_STEP / 2, 2.5 * PANEL_STEP)
    ax.set_ylim(-1.45, 1.7)
    ax.set_aspect("equal")
    handles = [Line2D([], [], color=CLASS_COLOURS[c], lw=2.5, label=c.replace("_", " ")) for c in CHANGE_LABELS]
    handles += [Line2D([], [], color="#000000", lw=1.5, label="r > 0 (delta > 0)"),
                Line2D([], [], color="#000000", lw=1.5, ls=(0, (3, 2)), label="r < 0 (delta < 0)")]
    fig.legend(handles=handles, loc="lower center", ncol=8, fontsize=8, frameon=False, borderaxespad=0.3)
    n_partners = len(mine)
    which_partners = (f"its {len(ring)} partners with the largest |delta| (of {n_partners})" if n_partners > len(ring)
                      else f"all {n_partners} of its partners")
    caption = (f"1-hop ego networks in {gene_id}'s analysis, {where}: the centre (yellow, large) and {which_partners}, "
               f"with every kept edge among them, drawn in the same places in the LOW network (edges present in LOW), "
               f"the HIGH network (present in HIGH) and the differential network (all kept edges). Edge colour: class "
               f"of change; width: |r| in that group (|delta| in the differential network); dashed: negative r "
               f"(negative delta). Hollow grey nodes have no edge in that panel. Partners are grouped around the ring "
               f"by the class of their edge to the centre (networkx shell layout).")
    return Figure("networks", _png(fig), caption, f"LOW, HIGH and differential ego networks of {gene_id}"), ""


PANEL_STEP = 3.3  # data units between the centres of the ego-network panels (the ring has radius 1)


def _label_nodes(ax, pos, centre, names, dx: float) -> None:
    """Gene ids outside the ring, aligned away from its centre, so that they do not overlap."""
    for node, (x, y) in pos.items():
        if node == centre:
            ax.text(x + dx, y - 0.13, names[node], ha="center", va="top", fontsize=8, fontweight="bold", zorder=4,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "#FFFFFF", "ec": "none", "alpha": 0.85})
            continue
        angle = math.degrees(math.atan2(y, x))
        flip = 90 < angle or angle < -90
        ax.text(x * 1.07 + dx, y * 1.07, names[node], ha="right" if flip else "left", va="center", fontsize=6.5,
                rotation=angle + 180 if flip else angle, rotation_mode="anchor", zorder=4)


LOG_DEGREES = 15  # above this maximum degree the distributions are drawn on log-log axes


def fig_degrees(gene_id: str, ge: GeneEdges) -> Figure | None:
    from matplotlib.ticker import MaxNLocator

    low, high = ge.degrees("low"), ge.degrees("high")
    if low.max() == 0 and high.max() == 0:
        return None
    fig = _new_figure(10.5, 4.0, left=0.7, right=0.3, bottom=0.55, top=0.35, wspace=0.3)
    left, right = fig.subplots(1, 2)
    top = int(max(low.max(), high.max()))
    for shift, (which, deg) in zip((-0.2, 0.2), (("low", low), ("high", high))):
        active = deg[deg > 0]
        label = f"{which.upper()}: {len(active):,} genes, {int(active.sum()) // 2:,} edges"
        values, counts = np.unique(active, return_counts=True)
        if top > LOG_DEGREES:
            left.plot(values, counts, marker="o", ms=4, lw=1, color=GROUP_COLOURS[which], label=label)
        else:
            left.bar(values + shift, counts, width=0.4, color=GROUP_COLOURS[which], label=label)
    if top > LOG_DEGREES:
        from matplotlib.ticker import NullLocator

        left.set_xscale("log")
        left.set_yscale("log")
        from matplotlib.ticker import FuncFormatter

        for axis in (left.xaxis, left.yaxis):
            axis.set_minor_locator(NullLocator())  # minor ticks of log axes: most of the figure's time
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 1, 10, 100 rather than 10^k
    else:
        left.xaxis.set_major_locator(MaxNLocator(integer=True))
        left.yaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_xlabel("degree (edges per gene)")
    left.set_ylabel("genes with this degree")
    left.legend(fontsize=8)
    _title(left, "degree distributions")
    score = ge.rewiring_score()
    active = np.flatnonzero((low > 0) | (high > 0))
    active = active[np.argsort(score[active], kind="stable")]  # most rewired drawn last (on top)
    jitter = np.random.default_rng(0).uniform(-0.2, 0.2, (2, len(active)))
    points = right.scatter(low[active] + jitter[0], high[active] + jitter[1], c=score[active], cmap="viridis", s=12,
                           linewidths=0, rasterized=True)
    right.plot([0, top], [0, top], color="#000000", lw=0.6, ls=":")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.yaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_xlabel("degree in LOW (edges per gene)")
    right.set_ylabel("degree in HIGH (edges per gene)")
    _title(right, "each gene's degree, LOW vs HIGH")
    bar = fig.colorbar(points, ax=right, ticks=MaxNLocator(integer=True))
    bar.set_label("rewiring score (disappear + new + sign_change edges)", fontsize=8)
    scale = "log-log axes" if top > LOG_DEGREES else "LOW and HIGH bars side by side"
    caption = (f"Left: how many genes have each degree in {gene_id}'s LOW and HIGH networks ({scale}; genes with "
               f"no edge left out). Right: every gene with an edge in either network, its degree in LOW against "
               f"HIGH, coloured by its rewiring score (points moved by up to ±0.2 at random so that genes with equal "
               f"degrees stay visible); the dotted line is equal degree.")
    return Figure("degrees", _png(fig), caption, f"degree distributions LOW vs HIGH for {gene_id}")


NULL_FIGURE_METRICS = ("n_diff_edges", "focus_deg_diff", "L1_rewire", "L1_frac_rewire", "L1_max_abs_delta", "L2L1_rewire")


def null_inputs(res, rows: list[int]) -> tuple[dict, str]:
    """({row: {metric: (null values, observed, p)}} of focus genes ``rows``, a note): from the study's
    null.h5 and gene_significance.tsv beside the results file, the null checked to be this study's
    ({} and why not where there is none or it is another study's)."""
    from bootgpu.study.identity import StudyIdentity
    from bootgpu.null import check_null_file, null_identity, read_null
    from bootgpu.significance import read_significance

    root = Path(res.path).parent
    path, table = root / "null.h5", read_significance(root / "gene_significance.tsv")
    if not path.is_file() or table is None:
        return {}, "no permutation null: run `bootgpu null` (docs/null.md) for each hub's null distributions."
    try:
        check_null_file(path, null_identity(StudyIdentity.from_mapping(res.meta, str(res.path))), "null")
    except BootgpuError as exc:
        return {}, f"the permutation null is not shown: {exc}"
    null = read_null(path, rows)
    out = {}
    for i, row in enumerate(rows):
        sig = table.get(row)
        if sig is None:
            continue
        values = {m: null.network[m] if m == "n_diff_edges" else null.genes[m][i] for m in NULL_FIGURE_METRICS}
        out[row] = {m: (np.asarray(values[m], dtype=np.float64), sig.get(m, math.nan), sig.get(f"{m}_p", math.nan))
                    for m in NULL_FIGURE_METRICS}
    return out, f"permutation null: {null.n_perm:,} random splits (null.h5)."


def fig_null(gene_id: str, null: dict) -> Figure | None:
    """Histograms of a focus gene's null values per metric, its observed value marked, p in the title."""
    if not null:
        return None
    from matplotlib.ticker import MaxNLocator

    fig = _new_figure(10.5, 5.6, left=0.6, right=0.25, bottom=0.35, top=0.35, wspace=0.3)
    fig.subplots_adjust(hspace=0.45)
    axes = fig.subplots(2, 3).ravel()
    n_perm = 0
    for ax, (metric, (values, observed, p)) in zip(axes, null.items()):
        defined = values[~np.isnan(values)]
        n_perm = max(n_perm, values.shape[0])
        _title(ax, f"{metric}: p = {p:.3g}" if not math.isnan(p) else f"{metric}: p undefined", pad=3)
        if not defined.size and math.isnan(observed):
            ax.text(0.5, 0.5, "undefined here and in every\nnull network (no partner)", ha="center", va="center",
                    fontsize=8, color="#444444", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        if defined.size:
            ax.hist(defined, bins=min(30, max(5, np.unique(defined).size)), color="#999999")
        if not math.isnan(observed):
            ax.axvline(observed, color="#D55E00", lw=2)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("null networks")
    axes[3].set_ylabel("null networks")
    caption = (f"{gene_id} against the permutation null ({n_perm:,} random LOW / HIGH splits, each analysed as the "
               f"study was): grey, the metric's values in the null networks (where defined); orange, {gene_id}'s "
               f"observed value; p = (1 + null values >= observed) / (1 + null values). n_diff_edges is the whole "
               f"network's edge count; the others are {gene_id}'s own (docs/null.md).")
    return Figure("null", _png(fig), caption, f"null distributions of {gene_id}'s metrics with its observed values")


def fig_edges_per_gene(table) -> Figure:
    kept = table["n_kept"].to_numpy(dtype=np.int64)
    zero = int((kept == 0).sum())
    fig = _new_figure(6.4, 3.6, left=0.75, bottom=0.55, top=0.2)
    positive = draw_edges_per_gene(fig.add_subplot(), kept)
    median = float(np.median(kept)) if len(kept) else 0.0
    caption = (f"How many edges each focus gene's differential network has, over the study's {len(kept):,} focus "
               f"genes (median {median:,.0f}, max {int(kept.max()) if len(kept) else 0:,})"
               + (f"; {zero:,} focus genes with no edge are not drawn" if zero else "") + ".")
    return Figure("study-edges-per-gene", _png(fig), caption, "distribution of network edges per focus gene")


def draw_edges_per_gene(ax, kept: np.ndarray) -> np.ndarray:
    """The histogram of network edges per focus gene (those with any) on ``ax``; one value is one
    bar with one plain tick.  Returns the counts drawn."""
    positive = kept[kept > 0]
    if len(positive):
        lo, hi = positive.min(), positive.max()
        if lo == hi:  # one value: one bar, one plain tick (a histogram would tick 499.6 ... 500.4)
            ax.bar([0], [len(positive)], width=0.6, color=NEUTRAL, edgecolor="#000000", linewidth=0.3)
            ax.set_xticks([0], [f"{int(lo):,}"])
            ax.set_xlim(-1, 1)
        elif hi / lo > 30:
            bins = np.logspace(np.log10(lo), np.log10(hi + 1), 40)
            ax.set_xscale("log")
            ax.hist(positive, bins=bins, color=NEUTRAL, edgecolor="#000000", linewidth=0.3)
        else:
            bins = np.linspace(lo - 0.5, hi + 0.5, min(40, int(hi - lo) + 2))
            ax.hist(positive, bins=bins, color=NEUTRAL, edgecolor="#000000", linewidth=0.3)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("network edges per focus gene (kept differential edges)")
    ax.set_ylabel("focus genes")
    fit_count_axis(ax)
    ax.spines[["top", "right"]].set_visible(False)
    if not len(positive):
        ax.text(0.5, 0.5, "no focus gene has a network edge", transform=ax.transAxes, ha="center", va="center")
    return positive


def fig_top_by(table, column: str, n: int = STUDY_TOP) -> tuple[Figure | None, str]:
    """The top ``n`` focus genes by ``column`` as horizontal bars (rewired-edge counts stacked by
    class); (None, why) when no focus gene has a positive value."""
    values = table[column].astype(float)
    ranked = table[np.isfinite(values) & (values > 0)]
    if not len(ranked):
        return None, (f"top focus genes by {column}: no focus gene has {column} > 0"
                      + (" (none has a rewired direct partner: L1_rewire = 0 everywhere)" if column == "L2L1_rewire" else "")
                      + ", so there is nothing to rank.")
    top = ranked.sort_values([column, "gene_idx"], ascending=[False, True], kind="stable").head(n).iloc[::-1]
    width = _label_width(top["gene_id"], 7)
    fig = _new_figure(4.8 + width, 1.4 + 0.22 * max(len(top), 3), left=width, bottom=0.55, top=0.55)
    ax = fig.add_subplot()
    y = np.arange(len(top))
    stack = STACKED.get(column)
    if stack:
        left = np.zeros(len(top))
        for label in REWIRING_LABELS:
            v = top[stack.format(label=label)].to_numpy(dtype=float)
            ax.barh(y, v, left=left, color=CLASS_COLOURS[label], label=label.replace("_", " "), edgecolor="#000000", linewidth=0.3)
            left += v
        ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, frameon=False, borderaxespad=0.2)
    else:
        ax.barh(y, top[column], color=NEUTRAL, edgecolor="#000000", linewidth=0.3)
    ax.set_xlabel(HUB_AXIS[column])
    if column not in RATIOS:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_yticks(y, top["gene_id"], fontsize=7)
    ax.set_ylim(-0.6, len(top) - 0.4)
    ax.spines[["top", "right"]].set_visible(False)
    _title(ax, f"top {len(top)} focus genes by {column}", pad=18 if stack else 6)
    caption = f"The focus genes with the largest {column}: {HUB_CAPTION[column]}."
    if len(ranked) < len(table):
        caption += f" {len(table) - len(ranked):,} of {len(table):,} focus genes have {column} 0 or undefined."
    return Figure(f"study-top-{column}", _png(fig), caption, f"top focus genes by {column}"), ""


RANKINGS = ("n_rewire", "L1_rewire", "L2L1_rewire")  # the study's hub ranking plots
RATIOS = ("L2L1_rewire",)
STACKED = {"n_rewire": "n_{label}", "L1_rewire": "L1_n_{label}"}
HUB_AXIS = {
    "n_rewire": "rewired edges (disappear + new + sign_change)",
    "L1_rewire": "rewired direct edges of the focus gene",
    "L2L1_rewire": "L2L1_rewire = L2_rewire / L1_rewire (ratio, no unit)",
}
HUB_CAPTION = {
    "n_rewire": "edges of its differential network that disappear, appear (new) or change sign between LOW and HIGH, "
                "stacked by class",
    "L1_rewire": "its own edges (to its direct partners, L1) that disappear, appear or change sign, stacked by class",
    "L2L1_rewire": "rewired edges in the outer ring of its neighbourhood (L1-L1 and L1-L2 edges) per rewired direct "
                   "edge; a large value means the rewiring reaches beyond the focus gene's own partners "
                   "(docs/networks.md)",
}  # fmt: skip


# -- the report ---------------------------------------------------------------------------------------


SECTION_COUNTS = ("n_tests", "n_sig_diff", "n_robust", "n_kept", "n_rewire")


@dataclass
class GeneInput:
    """What focus gene ``row``'s figures need, read from the results file by ``gene_input``:
    picklable, so that a worker process draws it without opening the file."""

    row: int
    gene_id: str
    rank: int
    summary: str
    ci_alpha: float
    edges: GeneEdges
    names: dict  # row -> gene id of every gene with a selected edge (the ego networks' labels)
    null: dict = field(default_factory=dict)  # metric -> (null values, observed, p) (``null_inputs``)


def gene_input(res, row: int, rank: int, focus_row: dict, null: dict | None = None) -> GeneInput:
    """Read focus gene ``row``'s edges and samples (milliseconds: the drawing is the slow part)."""
    gene_id = str(res.gene_names[row])
    ge = gene_edges(res, row)
    samples = res.samples(row)
    summary = (f"rank {rank}; row {row}; LOW {len(samples['low'])} / HIGH {len(samples['high'])} samples; "
               f"{int(focus_row['n_tests']):,} pairs tested, {int(focus_row['n_sig_diff']):,} differential (q_diff < "
               f"{float(res.meta['fdr_alpha']):g}), {int(focus_row['n_robust']):,} robust, {int(focus_row['n_kept']):,} "
               f"in the network, {int(focus_row['n_rewire']):,} rewired.")
    frame = ge.frame
    names = dict(zip(frame["gene_i"].tolist(), frame["gene_a"].tolist()))
    names.update(zip(frame["gene_j"].tolist(), frame["gene_b"].tolist()))
    return GeneInput(row, gene_id, rank, summary, float(res.meta["ci_alpha"]), ge, names, null or {})


def draw_gene(inp: GeneInput) -> GeneSection:
    """A focus gene's part of the report: its figures, and why any is not drawn."""
    gene_id, ge = inp.gene_id, inp.edges
    section = GeneSection(inp.row, gene_id, inp.rank, inp.summary)
    drawn = [
        (fig_scatter(gene_id, ge), "r_low vs r_high: no selected edge."),
        (fig_forest(gene_id, ge, inp.ci_alpha), "delta with its CI: no kept edge."),
        (fig_classes(gene_id, ge), ""),
        fig_networks(gene_id, inp.row, ge, inp.names),
        (fig_degrees(gene_id, ge), "degree distributions: no edge is present in LOW or in HIGH."),
    ]
    if inp.null:
        drawn.append((fig_null(gene_id, inp.null), ""))
    for fig, why in drawn:
        if fig is None:
            section.notes.append(why)
        else:
            section.figures.append(fig)
    prefix = f"gene-{inp.rank:03d}-{safe_name(gene_id)}"
    for f in section.figures:
        f.name = f"{prefix}-{f.name}"
    return section


def gene_section(res, row: int, rank: int, focus_row: dict) -> GeneSection:
    """Focus gene ``row``'s part of the report, read and drawn here."""
    return draw_gene(gene_input(res, row, rank, focus_row))


def default_jobs() -> int:
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class GenePool:
    """Draws ``GeneInput``s: in this process (``jobs`` 1), or in ``jobs`` worker processes while
    this one goes on (reading the next genes, drawing the study's figures).  The workers are
    forked on Linux, so they start at once with the libraries this process imported (spawned,
    each imports matplotlib and pandas again: a second or two of CPU); they never touch the
    results file, which only this process reads, and matplotlib empties its font cache in a
    forked child (font_manager registers that at fork), so no open font file is shared."""

    def __init__(self, jobs: int):
        self.pool = None
        if jobs > 1:
            import multiprocessing
            import sys
            from concurrent.futures import ProcessPoolExecutor

            method = "fork" if sys.platform.startswith("linux") else "spawn"
            if method == "fork":  # what draw_gene imports, once here rather than in every worker
                import matplotlib.backends.backend_agg  # noqa: F401
                import matplotlib.figure  # noqa: F401
                import networkx  # noqa: F401
                import PIL.Image  # noqa: F401
            self.pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method))

    def submit(self, inp: GeneInput):
        """A future-like object whose ``result()`` is ``draw_gene(inp)``."""
        if self.pool is None:
            return _Done(draw_gene(inp))
        return self.pool.submit(draw_gene, inp)

    def __enter__(self) -> "GenePool":
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=exc[0] is not None)


@dataclass
class _Done:
    value: object

    def result(self):
        return self.value


def study_figures(table) -> tuple[list, list]:
    """The study-wide figures (edges per focus gene, the hub rankings) and why any is not drawn."""
    figs, notes = [fig_edges_per_gene(table)], []
    for column in RANKINGS:
        fig, why = fig_top_by(table, column)
        if fig is None:
            notes.append(why)
        else:
            figs.append(fig)
    return figs, notes


def build(res, out: Path, top: int = 20, log=lambda line: None, jobs: int = 1) -> Path:
    """Write the report of ``res`` (``bootgpu.api.Results``) under ``out``, drawing the top genes'
    figures in ``jobs`` processes; return index.html."""
    t0 = time.perf_counter()
    table = study_table(res, log)
    if len(table) == 0:
        raise BootgpuError(f"{res.path}: no focus gene in this results file")
    todo = [(int(r["gene_idx"]), int(r["rank"]), {k: int(r[k]) for k in SECTION_COUNTS})
            for r in table.head(top).to_dict("records")]
    null, null_note = null_inputs(res, [row for row, _, _ in todo])
    with GenePool(min(jobs, len(todo))) as pool:
        pending = [pool.submit(gene_input(res, *args, null.get(args[0]))) for args in todo]
        study_figs, study_notes = study_figures(table)  # meanwhile, in this process
        if not null:
            study_notes.append(null_note)
        sections = [p.result() for p in pending]
    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    for fig in [*study_figs, *(f for s in sections for f in s.figures)]:
        with atomic_path(figdir / f"{fig.name}.png") as tmp:
            tmp.write_bytes(fig.png)
    index = out / "index.html"
    atomic_write_text(index, render_html(res, table, study_figs, study_notes, sections, time.perf_counter() - t0))
    log(f"report of {len(table):,} focus genes ({len(sections)} with figures) in {time.perf_counter() - t0:.1f} s")
    return index


# -- HTML ---------------------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5em auto; max-width: 1500px;
       padding: 0 1.5em; color: #1a1a1a; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ccc; }
h3 { margin-top: 1.6em; }
table.params { border-collapse: collapse; font-size: 0.9em; }
table.params th { text-align: left; padding: 2px 1.2em 2px 0; font-weight: 600; vertical-align: top; }
table.params td { padding: 2px 0; font-family: ui-monospace, monospace; }
.scroll { max-height: 34em; overflow: auto; border: 1px solid #ccc; }
table.hubs { border-collapse: collapse; font-size: 0.78em; white-space: nowrap; }
table.hubs th { position: sticky; top: 0; background: #eef; cursor: pointer; padding: 4px 6px; border-bottom: 1px solid #999;
                user-select: none; }
table.hubs th[aria-sort=ascending]::after { content: " \\25B2"; } table.hubs th[aria-sort=descending]::after { content: " \\25BC"; }
table.hubs td { padding: 2px 6px; border-bottom: 1px solid #eee; text-align: right; font-variant-numeric: tabular-nums; }
table.hubs tr:hover td { background: #ffc; }
figure { margin: 1em 0; display: table; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { display: table-caption; caption-side: bottom; font-size: 0.85em; color: #333; padding-top: 0.3em; }
.figs { display: flex; flex-wrap: wrap; gap: 1em 2em; align-items: flex-start; }
.figs figure { flex: 0 1 auto; }
.note, .legend { font-size: 0.85em; color: #444; }
nav.toc ul { columns: 4; font-size: 0.9em; list-style: none; padding-left: 0; }
"""

SORT_JS = """
(function () {
  function key(cell, numeric) {
    var t = cell.textContent.trim();
    if (!numeric) { return t.toLowerCase(); }
    var v = parseFloat(t.replace(/,/g, ''));
    return isNaN(v) ? null : v;
  }
  function sortTable(table, col, th) {
    var numeric = th.getAttribute('data-type') === 'num';
    var current = th.getAttribute('aria-sort');
    var dir = current ? (current === 'ascending' ? -1 : 1) : (numeric ? -1 : 1);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (r, i) {
      return { row: r, k: key(r.cells[col], numeric), i: i };
    });
    rows.sort(function (a, b) {
      if (a.k === null || b.k === null) { return a.k === b.k ? a.i - b.i : (a.k === null ? 1 : -1); }
      if (a.k < b.k) { return -dir; } if (a.k > b.k) { return dir; } return a.i - b.i;
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r.row); });
    body.appendChild(frag);
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.title = 'click to sort';
      th.addEventListener('click', function () { sortTable(table, col, th); });
    });
  });
})();
"""


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "–"
        if float(value).is_integer() and abs(value) < 1e15:
            return f"{int(value)}"
        return f"{value:.4g}"
    return str(value)


def _params(res, table) -> list[tuple[str, str]]:
    m = res.meta
    samples = res.samples(int(table["gene_idx"].iloc[0]))
    k_low, k_high = len(samples["low"]), len(samples["high"])
    rows = [
        ("study id", m.get("study_id", "")),
        ("data", f"{int(m['n_genes']):,} genes x {int(m['n_samples']):,} samples; {len(table):,} focus genes in "
                 f"this file (study: {int(m.get('n_focus', len(table))):,})"),
        ("LOW / HIGH groups", f"low_frac {m['low_frac']:g} ({k_low} samples), high_frac {m['high_frac']:g} "
                              f"({k_high} samples)"),
        ("bootstrap", f"B = {int(m['n_bootstrap']):,} replicates, bootstrap_frac {m['bootstrap_frac']:g}, seed "
                      f"{m['seed']}, draws {m.get('rng_algorithm', '')}"),
        ("alphas", f"fdr_alpha {m['fdr_alpha']:g} (Benjamini-Hochberg), ci_alpha {m['ci_alpha']:g} "
                   f"({100 * (1 - float(m['ci_alpha'])):.0f}% percentile CI)"),
        ("edge selection", f"{m['edge_selection']}"),
        ("network filters", f"min_effect {float(m.get('min_effect', 0)):g}, corr_threshold "
                            f"{float(m.get('corr_threshold', 0)):g}, CI filter {'on' if m.get('ci_filter', True) else 'off'}"),
        ("computed with", f"bootgpu {m.get('bootgpu_version', '?')}, backend {m.get('backend', '?')} "
                          f"({m.get('device', '?')}), results format {m.get('results_format', '?')}"),
        ("input fingerprint", f"values sha256 {str(m.get('values_sha256', ''))[:16]}…, gene ids "
                              f"{str(m.get('gene_names_sha256', ''))[:16]}…, sample ids {str(m.get('sample_names_sha256', ''))[:16]}…"),
        ("results file", str(res.path)),
    ]  # fmt: skip
    return rows


def _figure_html(fig: Figure) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    return (f'<figure id="fig-{_esc(fig.name)}"><img src="data:image/png;base64,{data}" alt="{_esc(fig.alt)}" '
            f'data-file="figures/{_esc(fig.name)}.png"><figcaption>{_esc(fig.caption)} '
            f'<a href="figures/{_esc(fig.name)}.png">figures/{_esc(fig.name)}.png</a></figcaption></figure>')


def _table_columns(table) -> list:
    return [c for c in TABLE_COLUMNS if c in table.columns]


def _hubs_table_css(table) -> str:
    """Text columns of the hubs table aligned left (a rule per column rather than a class per cell:
    a fifth of the page at 20,000 focus genes)."""
    cols = _table_columns(table)
    return ", ".join(f"#hubs td:nth-child({cols.index(c) + 1})" for c in cols if c in TEXT_COLUMNS) + " { text-align: left; }"


def _hubs_table(table, anchors: set) -> str:
    from bootgpu.hubs import HUB_LEGEND

    cols = _table_columns(table)
    head = "".join(f'<th data-type="{"text" if c in TEXT_COLUMNS else "num"}">{_esc(c)}</th>' for c in cols)
    values = {c: table[c].tolist() for c in cols}
    lines = []
    for i in range(len(table)):
        cells = []
        for c in cols:
            v = values[c][i]
            if c == "gene_id" and v in anchors:
                cells.append(f'<td><a href="#gene-{_esc(safe_name(v))}">{_esc(v)}</a></td>')
            else:
                cells.append(f"<td>{_esc(v) if c in TEXT_COLUMNS else _cell(v)}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<p class="legend">{_esc(HUB_LEGEND)}. rank: the order of rewiring_hubs.tsv. Click a column header to '
            f'sort (again to reverse); – : undefined (e.g. a ratio with nothing to divide by).</p>'
            f'<div class="scroll"><table class="hubs sortable" id="hubs"><thead><tr>{head}</tr></thead><tbody>\n'
            + "\n".join(lines) + "\n</tbody></table></div>")


def render_html(res, table, study_figs, study_notes, sections, seconds: float) -> str:
    m = res.meta
    title = f"bootgpu report: study {m.get('study_id', '')}"
    params = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in _params(res, table))
    anchors = {s.gene_id for s in sections}
    toc = "".join(f'<li><a href="#gene-{_esc(safe_name(s.gene_id))}">{s.rank}. {_esc(s.gene_id)}</a></li>' for s in sections)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{CSS}{_hubs_table_css(table)}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f'<p class="note">Extreme-population bootstrap differential co-expression: for each focus gene, which gene '
        f"pairs change their co-expression between the samples where it is lowest (LOW) and highest (HIGH). Made by "
        f"bootgpu {__version__} on {time.strftime('%Y-%m-%d %H:%M')} in {seconds:.1f} s. Colours: one per class of "
        f"change throughout (Okabe-Ito palette). Definitions: docs/networks.md and docs/results-format.md of bootgpu.</p>",
        '<h2 id="parameters">Parameters and data</h2>', f'<table class="params">{params}</table>',
        '<h2 id="study">The study</h2>', '<div class="figs">', *(_figure_html(f) for f in study_figs), "</div>",
        *(f'<p class="note">Not drawn: {_esc(n)}</p>' for n in study_notes),
        f'<h2 id="hubs-table">Rewiring hubs: all {len(table):,} focus genes</h2>', _hubs_table(table, anchors),
        f'<h2 id="genes">The top {len(sections)} focus genes</h2>',
    ]  # fmt: skip
    if sections:
        parts.append(f'<nav class="toc"><ul>{toc}</ul></nav>')
    for s in sections:
        parts.append(f'<section><h3 id="gene-{_esc(safe_name(s.gene_id))}">{s.rank}. {_esc(s.gene_id)}</h3>')
        parts.append(f'<p class="note">{_esc(s.summary)}</p>')
        parts += [f'<p class="note">Not drawn: {_esc(n)}</p>' for n in s.notes]
        parts += ['<div class="figs">', *(_figure_html(f) for f in s.figures), "</div></section>"]
    parts += [f"<script>{SORT_JS}</script>", "</body></html>"]
    return "\n".join(parts) + "\n"


# -- command line -------------------------------------------------------------------------------------


def cmd_report(args) -> int:
    from bootgpu.api import open_results
    from bootgpu.options import log

    if args.top < 0:
        raise BootgpuError(f"--top must be 0 or more, got {args.top}")
    if args.jobs is not None and args.jobs < 1:
        raise BootgpuError(f"--jobs must be at least 1, got {args.jobs}")
    if importlib.util.find_spec("matplotlib") is None:
        raise BootgpuError("bootgpu report needs matplotlib, which installing bootgpu installs: pip install matplotlib")
    src = Path(args.dir)
    out = Path(args.out) if args.out else (src if src.is_dir() else src.parent) / "report"
    if out.exists() and not out.is_dir():
        raise BootgpuError(f"--out {out} is a file, not a folder")
    with open_results(src) as res:
        index = build(res, out, args.top, log=log, jobs=args.jobs or default_jobs())
    print(index)
    return 0


def register_commands(subparsers) -> None:
    """Add `bootgpu report` to the CLI's subparsers."""
    p = subparsers.add_parser(
        "report", help="an HTML report (one self-contained file) with the hubs table and figures",
        description=__doc__.split("\n\n")[1].strip(),
        epilog="Examples:\n  bootgpu report bootgpu-demo            # writes bootgpu-demo/report/index.html\n"
               "  bootgpu report out/ --top 50 --out ~/report-all",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("dir", help="study directory (or its results.h5)")
    p.add_argument("--top", type=int, default=20, help="focus genes (by rank in rewiring_hubs.tsv) that get figures (default %(default)s)")
    p.add_argument("--out", help="output folder (default DIR/report): index.html and figures/")
    p.add_argument("--jobs", type=int, help="processes drawing the top genes' figures (default: the CPUs this process may use)")
    p.set_defaults(func=cmd_report)
