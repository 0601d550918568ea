"""Per-focus-gene rewiring networks, on the host: which edges count, the LOW / HIGH / differential
networks they form, their global topology, and the focus gene's L1 / L2 neighbourhood.

Input is a focus gene's selected edges (``FocusResult.edges``: host arrays, one entry per edge,
``gene_i < gene_j``); output is a ``FocusNetwork`` whose ``metrics`` is a flat ordered dict of
scalars (names in ``METRIC_NAMES``, types in ``metrics_dtype()``).  Definitions, formulas and the
differences from the original pipeline are in docs/networks.md.

Graphs are ``scipy.sparse`` matrices (components by ``scipy.sparse.csgraph``); local clustering and
degree assortativity come from python-igraph, which on a 60,000-edge network is 70-105x faster than
networkx (scripts/bench_networks.py, docs/networks.md).

Conventions: counts and sums over an empty set are 0; a mean, a statistic or a ratio with nothing
to average or a zero denominator is NaN (the original pipeline wrote 0, which reads as a measured
value: docs/networks.md says why NaN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import igraph
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from bootgpu.core.change import DISAPPEAR, NEW, SIGN_CHANGE, classify_change
from bootgpu.errors import BootgpuError
from bootgpu.results_schema import CHANGE_LABELS

NETWORKS = ("low", "high", "diff")
LAYERS = ("L1", "L1L1", "L1L2", "L2")  # focus-L1, L1-L1, L1-L2 edges; L2 = L1L1 + L1L2 (outer ring)
REWIRING = (DISAPPEAR, NEW, SIGN_CHANGE)  # a rewired edge: it appears, disappears or flips sign
PERCENTILES = (25, 50, 75, 90, 95, 99)
POWERLAW_MIN_POINTS = 5  # distinct degrees seen at least twice
TOP_REWIRED = 20

CLASS_COUNTS = tuple(f"n_{label}" for label in CHANGE_LABELS)
FILTER_NAMES = ("n_selected", "n_kept", *CLASS_COUNTS, "n_rewire", "mean_abs_delta", "max_abs_delta")
TOPOLOGY_NAMES = (
    "n_nodes_active", "frac_active", "n_edges", "density", "mean_degree",
    "degree_min", "degree_median", "degree_max", "degree_std", *(f"degree_p{p}" for p in PERCENTILES),
    "powerlaw_gamma", "powerlaw_r2", "scale_free", "clustering",
    "n_components", "largest_component", "largest_component_frac", "assortativity",
)  # fmt: skip
LAYER_NAMES = (
    "n_edges", *CLASS_COUNTS, "rewire", "n_edges_low", "n_edges_high",
    "conn_low", "conn_high", "conn_mean_low", "conn_mean_high", "mean_delta", "mean_abs_delta", "conn_diff",
)  # fmt: skip
FOCUS_NAMES = ("focus_deg_low", "focus_deg_high", "focus_deg_diff", "L1_n_nodes", "L2_n_nodes")
RATIO_NAMES = (
    "L1_frac_rewire", "L1_frac_disappear", "L1_frac_new", "L1_clique_density",
    "L2L1_deg", "L2L1_rewire", "L2L1_conn", "HL_conn_L1", "HL_conn_L2",
)  # fmt: skip
METRIC_NAMES = (
    *FILTER_NAMES,
    *(f"{net}_{name}" for net in NETWORKS for name in TOPOLOGY_NAMES),
    *FOCUS_NAMES,
    *(f"{layer}_{name}" for layer in LAYERS for name in LAYER_NAMES),
    *RATIO_NAMES,
)
_INT_TOPOLOGY = {"n_nodes_active", "n_edges", "scale_free", "n_components", "largest_component"}
INT_METRICS = frozenset(
    {"n_selected", "n_kept", *CLASS_COUNTS, "n_rewire", *FOCUS_NAMES}
    | {f"{net}_{name}" for net in NETWORKS for name in _INT_TOPOLOGY}
    | {f"{layer}_{name}" for layer in LAYERS for name in LAYER_NAMES if name.startswith("n_") or name == "rewire"}
)


def metrics_dtype() -> np.dtype:
    """A compound dtype for one row of metrics: int64 counts, float64 for everything else."""
    return np.dtype([(name, np.int64 if name in INT_METRICS else np.float64) for name in METRIC_NAMES])


@dataclass(frozen=True)
class EdgeFilter:
    """Which of a focus gene's selected edges make its networks, and when an edge is present in a group.

    min_effect:     keep edges with |delta| >= min_effect (delta = r_high - r_low).
    corr_threshold: an edge is present in LOW when q_low < alpha and |r_low| >= corr_threshold
                    (HIGH likewise).  The original pipeline's default is 1e-4; ours is 0, so that
                    presence is exactly the significance that assigned the edge's class of change
                    (``change``) in the pipeline: with 1e-4 the two can disagree for no statistical
                    reason, and an |r| under 1e-4 is never significant at any usable sample size.
                    A positive threshold re-classifies the edges from presence (see ``filter_edges``).
    ci_filter:      keep only robust edges: the bootstrap CI of delta excludes 0 (the original's
                    default too; ``--no-ci-filter`` there).
    The original's stage-3 command line also defaults min_effect to 1e-4 (its function to 0); 0
    keeps every edge the tests selected, and |delta| < 1e-4 never passes the Fisher test anyway.
    """

    min_effect: float = 0.0
    corr_threshold: float = 0.0
    ci_filter: bool = True

    def __post_init__(self) -> None:
        for name in ("min_effect", "corr_threshold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise BootgpuError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")


@dataclass(frozen=True)
class KeptEdges:
    """The differential edges a filter keeps (host arrays, one entry per kept edge)."""

    gene_i: np.ndarray  # (E,) int32, gene_i < gene_j
    gene_j: np.ndarray
    r_low: np.ndarray  # (E,) float64
    r_high: np.ndarray
    delta: np.ndarray
    change: np.ndarray  # (E,) int8 class code (CHANGE_LABELS) from the presence flags below
    present_low: np.ndarray  # (E,) bool: q_low < alpha and |r_low| >= corr_threshold
    present_high: np.ndarray
    n_selected: int  # edges before the filter

    def __len__(self) -> int:
        return int(self.gene_i.shape[0])


def filter_edges(edges: dict, alpha: float, edge_filter: EdgeFilter = EdgeFilter()) -> KeptEdges:
    """Apply ``edge_filter`` to a focus gene's selected edges (``FocusResult.edges``).

    ``alpha`` is the study's FDR alpha.  Presence uses the stored q-values; classes are recomputed
    from presence with the pipeline's rule (core/change.py), so they equal the stored ``change``
    when corr_threshold is 0 and stay consistent with presence otherwise.  Robustness is the
    stored ``robust`` flag, or ci_low > 0 or ci_high < 0 where an edge dict lacks it.
    """
    if not 0.0 < alpha < 1.0:
        raise BootgpuError(f"the FDR alpha must be in (0, 1), got {alpha}")
    delta = np.asarray(edges["delta"], dtype=np.float64)
    keep = np.abs(delta) >= edge_filter.min_effect
    if edge_filter.ci_filter:
        robust = edges.get("robust")
        if robust is None:
            robust = (edges["ci_low"] > 0) | (edges["ci_high"] < 0)
        keep &= np.asarray(robust, dtype=bool)
    r_low = np.asarray(edges["r_low"], dtype=np.float64)[keep]
    r_high = np.asarray(edges["r_high"], dtype=np.float64)[keep]
    present_low = (np.asarray(edges["q_low"])[keep] < alpha) & (np.abs(r_low) >= edge_filter.corr_threshold)
    present_high = (np.asarray(edges["q_high"])[keep] < alpha) & (np.abs(r_high) >= edge_filter.corr_threshold)
    return KeptEdges(
        gene_i=np.asarray(edges["gene_i"], dtype=np.int32)[keep],
        gene_j=np.asarray(edges["gene_j"], dtype=np.int32)[keep],
        r_low=r_low, r_high=r_high, delta=delta[keep],
        change=classify_change(np, present_low, present_high, r_low, r_high),
        present_low=present_low, present_high=present_high,
        n_selected=int(delta.shape[0]),
    )  # fmt: skip


def _ratio(num: float, den: float) -> float:
    """num / den, NaN when den is 0 (undefined, not zero)."""
    return float(num) / float(den) if den else float("nan")


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if values.size else float("nan")


# --- networks and their global topology ----------------------------------------------------------


def network_masks(kept: KeptEdges) -> dict:
    """Which kept edges form each network: LOW (present in LOW), HIGH, DIFF (all kept edges)."""
    return {"low": kept.present_low, "high": kept.present_high, "diff": np.ones(len(kept), dtype=bool)}


def node_degrees(n_genes: int, gene_i: np.ndarray, gene_j: np.ndarray) -> np.ndarray:
    """(n_genes,) int32: each gene's number of edges."""
    ends = np.concatenate([gene_i, gene_j])
    return np.bincount(ends, minlength=n_genes).astype(np.int32)


def adjacency(n_genes: int, gene_i: np.ndarray, gene_j: np.ndarray, values: np.ndarray | None = None) -> sp.csr_matrix:
    """Symmetric (n_genes, n_genes) CSR with ``values`` (default 1) at (i, j) and (j, i)."""
    if values is None:
        values = np.ones(gene_i.shape[0], dtype=np.int8)
    rows = np.concatenate([gene_i, gene_j])
    cols = np.concatenate([gene_j, gene_i])
    return sp.coo_matrix((np.concatenate([values, values]), (rows, cols)), shape=(n_genes, n_genes)).tocsr()


def degree_summary(active: np.ndarray, n_edges: int) -> dict:
    """Mean (2E / N_active), min, median, max, std (population) and percentiles over active genes."""
    if active.size == 0:
        nan = float("nan")
        return {"mean_degree": nan, "degree_min": nan, "degree_median": nan, "degree_max": nan,
                "degree_std": nan, **{f"degree_p{p}": nan for p in PERCENTILES}}  # fmt: skip
    deg = active.astype(np.float64)
    out = {
        "mean_degree": 2.0 * n_edges / active.size,
        "degree_min": float(deg.min()),
        "degree_median": float(np.median(deg)),
        "degree_max": float(deg.max()),
        "degree_std": float(deg.std()),
    }
    out.update({f"degree_p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(deg, PERCENTILES))})
    return out


def powerlaw_fit(active: np.ndarray) -> dict:
    """Least-squares line of log10(count) on log10(degree) over the degrees seen at least twice.

    gamma = -slope and R^2 of the fit (NaN when every count is equal); NaN (and scale_free 0) with fewer than
    POWERLAW_MIN_POINTS such degrees.  scale_free: 2 <= gamma <= 3.5 and R^2 > 0.8.
    """
    degree, count = np.unique(active, return_counts=True)
    seen = count >= 2
    if np.count_nonzero(seen) < POWERLAW_MIN_POINTS:
        return {"powerlaw_gamma": float("nan"), "powerlaw_r2": float("nan"), "scale_free": 0}
    x, y = np.log10(degree[seen]), np.log10(count[seen])
    slope, r = line_fit(x, y)
    gamma = -float(slope)
    r2 = float(r) ** 2 if np.ptp(y) > 0 else float("nan")  # equal counts: a flat line, R^2 0/0
    return {"powerlaw_gamma": gamma, "powerlaw_r2": r2, "scale_free": int(2.0 <= gamma <= 3.5 and r2 > 0.8)}


def line_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, r) of the least-squares line of ``y`` on ``x`` (distinct x), the operations of
    ``scipy.stats.linregress`` (1.17) one for one, so bit for bit its slope and rvalue (a test
    holds them equal): importing scipy.stats is ~0.6 s at the start of every run and array task,
    for this one fit."""
    ssxm, ssxym, _, ssym = np.cov(x, y, bias=1).flat
    if ssxm == 0.0 or ssym == 0.0:
        return ssxym / ssxm, (np.nan if ssxym == 0 else 0.0)
    r = ssxym / np.sqrt(ssxm * ssym)
    if r > 1.0:  # rounding past |r| = 1
        r = 1.0
    elif r < -1.0:
        r = -1.0
    return ssxym / ssxm, r


def component_summary(adj: sp.csr_matrix, degree: np.ndarray) -> dict:
    """Connected components that contain an active gene: count, largest size, largest / N_active."""
    active = degree > 0
    n_active = int(np.count_nonzero(active))
    if n_active == 0:
        return {"n_components": 0, "largest_component": 0, "largest_component_frac": float("nan")}
    _, labels = connected_components(adj, directed=False)
    sizes = np.bincount(labels[active])  # isolated genes are their own components: left out
    sizes = sizes[sizes > 0]
    return {"n_components": int(sizes.size), "largest_component": int(sizes.max()),
            "largest_component_frac": float(sizes.max()) / n_active}  # fmt: skip


def as_igraph(n_genes: int, gene_i: np.ndarray, gene_j: np.ndarray) -> igraph.Graph:
    """An undirected igraph.Graph on n_genes vertices (a list of Python pairs is the fastest input:
    ~3x faster than a NumPy array or a nested list at 580,000 edges)."""
    return igraph.Graph(n=n_genes, edges=list(zip(gene_i.tolist(), gene_j.tolist())), directed=False)


def clustering_and_assortativity(graph: igraph.Graph) -> dict:
    """Mean local clustering over genes of degree >= 2 and degree assortativity (python-igraph).

    Local clustering of a gene = edges among its partners / (k (k - 1) / 2).  Assortativity =
    Pearson r of the degrees at the two ends of each edge (both orientations).  Either is NaN when
    undefined: no gene of degree >= 2; no edge, or all edge ends of equal degree.
    """
    if graph.ecount() == 0:
        return {"clustering": float("nan"), "assortativity": float("nan")}
    local = np.asarray(graph.transitivity_local_undirected(mode="nan"), dtype=np.float64)
    defined = ~np.isnan(local)
    clustering = float(local[defined].mean()) if defined.any() else float("nan")
    return {"clustering": clustering, "assortativity": float(graph.assortativity_degree(directed=False))}


def topology(n_genes: int, gene_i: np.ndarray, gene_j: np.ndarray, graph: igraph.Graph | None = None) -> tuple:
    """(metrics named as TOPOLOGY_NAMES, (n_genes,) int32 degrees) of one network; ``graph``, if
    given, is the same network as an igraph.Graph (saves building it).

    Density is 2E / (N (N - 1)) with N the active genes (degree >= 1); NaN when N < 2.
    """
    degree = node_degrees(n_genes, gene_i, gene_j)
    active = degree[degree > 0]
    n_active, n_edges = int(active.size), int(gene_i.size)
    out = {
        "n_nodes_active": n_active,
        "frac_active": n_active / n_genes,
        "n_edges": n_edges,
        "density": _ratio(2 * n_edges, n_active * (n_active - 1)),
    }
    out.update(degree_summary(active, n_edges))
    out.update(powerlaw_fit(active))
    out.update(clustering_and_assortativity(graph if graph is not None else as_igraph(n_genes, gene_i, gene_j)))
    out.update(component_summary(adjacency(n_genes, gene_i, gene_j), degree))
    return {name: out[name] for name in TOPOLOGY_NAMES}, degree


def network_topologies(n_genes: int, kept: KeptEdges) -> tuple[dict, dict]:
    """(metrics "<net>_<name>", degrees by network) of LOW, HIGH and DIFF.  One igraph.Graph is
    built (DIFF); LOW and HIGH are its edge subgraphs."""
    diff = as_igraph(n_genes, kept.gene_i, kept.gene_j)
    metrics, degrees = {}, {}
    for net, mask in network_masks(kept).items():
        graph = diff if net == "diff" else diff.subgraph_edges(np.flatnonzero(mask).tolist(), delete_vertices=False)
        topo, degrees[net] = topology(n_genes, kept.gene_i[mask], kept.gene_j[mask], graph)
        metrics.update({f"{net}_{name}": value for name, value in topo.items()})
    return metrics, degrees


# --- the focus gene's neighbourhood in DIFF --------------------------------------------------------


@dataclass(frozen=True)
class Neighbourhood:
    l1: np.ndarray  # (n_genes,) bool: the focus gene's partners
    l2: np.ndarray  # (n_genes,) bool: partners of L1 that are neither the focus gene nor in L1
    layers: dict  # layer name (LAYERS) -> (E,) bool mask over the kept edges


def neighbourhood(n_genes: int, focus: int, kept: KeptEdges) -> Neighbourhood:
    """L1 / L2 genes of ``focus`` in DIFF and the edge sets direct (L1), L1L1, L1L2, L2 = L1L1 + L1L2."""
    gi, gj = kept.gene_i, kept.gene_j
    at_i, at_j = gi == focus, gj == focus
    direct = at_i | at_j
    l1 = np.zeros(n_genes, dtype=bool)
    l1[gj[at_i]] = True
    l1[gi[at_j]] = True
    in_i, in_j = l1[gi], l1[gj]
    l1l1 = in_i & in_j
    l1l2 = (in_i ^ in_j) & ~direct  # one end in L1, the other neither L1 nor the focus gene
    l2 = np.zeros(n_genes, dtype=bool)
    l2[gj[l1l2 & in_i]] = True
    l2[gi[l1l2 & in_j]] = True
    return Neighbourhood(l1, l2, {"L1": direct, "L1L1": l1l1, "L1L2": l1l2, "L2": l1l1 | l1l2})


def layer_stats(kept: KeptEdges, mask: np.ndarray) -> dict:
    """Metrics named as LAYER_NAMES over the kept edges in ``mask``.

    conn_X = sum |r_X| over the edges present in X; conn_mean_X = conn_X / n_edges_X;
    conn_diff = sum |delta|; mean_delta, mean_abs_delta over all the layer's edges.
    """
    counts = np.bincount(kept.change[mask], minlength=len(CHANGE_LABELS))
    low, high = kept.present_low[mask], kept.present_high[mask]
    abs_low, abs_high = np.abs(kept.r_low[mask][low]), np.abs(kept.r_high[mask][high])
    delta = kept.delta[mask]
    conn_low, conn_high = float(abs_low.sum()), float(abs_high.sum())
    out = {"n_edges": int(delta.size)}
    out.update({name: int(c) for name, c in zip(CLASS_COUNTS, counts)})
    out.update({
        "rewire": int(sum(counts[c] for c in REWIRING)),
        "n_edges_low": int(abs_low.size), "n_edges_high": int(abs_high.size),
        "conn_low": conn_low, "conn_high": conn_high,
        "conn_mean_low": _ratio(conn_low, abs_low.size), "conn_mean_high": _ratio(conn_high, abs_high.size),
        "mean_delta": _mean(delta), "mean_abs_delta": _mean(np.abs(delta)),
        "conn_diff": float(np.abs(delta).sum()),
    })  # fmt: skip
    return out


def neighbourhood_metrics(hood: Neighbourhood, kept: KeptEdges, degrees: dict, focus: int) -> dict:
    """FOCUS_NAMES, every layer's LAYER_NAMES (prefixed) and RATIO_NAMES."""
    n1, n2 = int(np.count_nonzero(hood.l1)), int(np.count_nonzero(hood.l2))
    out = {f"focus_deg_{net}": int(degrees[net][focus]) for net in NETWORKS}
    out.update(L1_n_nodes=n1, L2_n_nodes=n2)
    per_layer = {layer: layer_stats(kept, mask) for layer, mask in hood.layers.items()}
    for layer in LAYERS:
        out.update({f"{layer}_{name}": value for name, value in per_layer[layer].items()})
    l1, l2 = per_layer["L1"], per_layer["L2"]
    out.update({
        "L1_frac_rewire": _ratio(l1["rewire"], n1),
        "L1_frac_disappear": _ratio(l1["n_disappear"], n1),
        "L1_frac_new": _ratio(l1["n_new"], n1),
        "L1_clique_density": _ratio(per_layer["L1L1"]["n_edges"], n1 * (n1 - 1) / 2),
        "L2L1_deg": _ratio(n2, n1),
        "L2L1_rewire": _ratio(l2["rewire"], l1["rewire"]),
        "L2L1_conn": _ratio(l2["conn_diff"], l1["conn_diff"]),
        "HL_conn_L1": _ratio(l1["conn_high"], l1["conn_low"]),
        "HL_conn_L2": _ratio(l2["conn_high"], l2["conn_low"]),
    })  # fmt: skip
    return out


def direct_partners(kept: KeptEdges, focus: int) -> dict:
    """The focus gene's partners in DIFF, by |delta| (descending, then gene index): arrays
    ``gene`` (int32), ``delta``, ``r_low``, ``r_high`` (float64) and ``change`` (int8 code)."""
    direct = (kept.gene_i == focus) | (kept.gene_j == focus)
    gene = np.where(kept.gene_i == focus, kept.gene_j, kept.gene_i)[direct].astype(np.int32)
    delta = kept.delta[direct]
    order = np.lexsort((gene, -np.abs(delta)))
    return {"gene": gene[order], "delta": delta[order], "r_low": kept.r_low[direct][order],
            "r_high": kept.r_high[direct][order], "change": kept.change[direct][order]}  # fmt: skip


def top_rewired(kept: KeptEdges, n_genes: int, focus: int, top_n: int = TOP_REWIRED) -> dict:
    """The ``top_n`` genes (the focus gene left out) with most rewired edges (disappear, new or
    sign_change) in the focus gene's DIFF, most first, ties by gene index: arrays ``gene``,
    ``n_rewired`` and ``degree_diff`` (int32); genes with no rewired edge are never listed."""
    rewired = np.isin(kept.change, REWIRING)
    count = node_degrees(n_genes, kept.gene_i[rewired], kept.gene_j[rewired])
    count[focus] = 0
    gene = np.flatnonzero(count).astype(np.int32)
    order = np.lexsort((gene, -count[gene]))[:top_n]
    degree = node_degrees(n_genes, kept.gene_i, kept.gene_j)
    return {"gene": gene[order], "n_rewired": count[gene[order]], "degree_diff": degree[gene[order]]}


# --- every gene at once: the permutation null (bootgpu.null) ---------------------------------------

GENE_METRICS = (
    "focus_deg_low", "focus_deg_high", "focus_deg_diff", "L1_n_nodes", "L1_rewire", "L1_frac_rewire",
    "L1_mean_abs_delta", "L1_max_abs_delta", "L2L1_deg", "L2L1_rewire",
)  # fmt: skip
INT_GENE_METRICS = frozenset({"focus_deg_low", "focus_deg_high", "focus_deg_diff", "L1_n_nodes", "L1_rewire"})


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den per gene, float64, NaN where den is 0 (as ``_ratio``, the same IEEE division)."""
    out = np.full(num.shape, np.nan)
    np.divide(num.astype(np.float64), den.astype(np.float64), out=out, where=den != 0)
    return out


def _second_hop(adj: sp.csr_matrix, rewired: sp.csr_matrix, l1_rewire: np.ndarray):
    """(L2_n_nodes, L2_rewire) of every gene as the focus gene, from sparse products.

    L2 of v: genes at distance exactly 2 (the nonzeros of row v of A @ A, less v and its partners).
    L2_rewire of v: rewired edges not touching v with an end in L1(v) = sum of the rewired degrees
    (``l1_rewire``) of v's partners, less v's own rewired edges (counted once there) and less the rewired edges
    with both ends in L1(v) (counted twice): (A R A)_vv / 2 of them."""
    two = adj @ adj
    two.setdiag(0)
    two.eliminate_zeros()
    l2_nodes = two.getnnz(axis=1) - two.multiply(adj).getnnz(axis=1)
    inner = np.asarray((adj @ rewired).multiply(adj).sum(axis=1)).ravel() // 2
    l2_rewire = adj @ l1_rewire - l1_rewire - inner
    return l2_nodes.astype(np.int64), l2_rewire.astype(np.int64)


def gene_level_metrics(n_genes: int, kept: KeptEdges) -> dict:
    """``GENE_METRICS`` of every gene of one network as if it were the focus gene: name ->
    (n_genes,) array (int64 counts, float64 otherwise; NaN where a ratio or mean is undefined).
    The definitions are ``neighbourhood_metrics``' (docs/networks.md), computed for all genes at
    once with ``scipy.sparse`` products; ``L1_max_abs_delta`` is the largest |delta| of the gene's
    direct edges (``direct_partners``' first).  Memory: the nonzeros of A @ A, at most the sum of
    squared degrees."""
    gi, gj = kept.gene_i.astype(np.int64), kept.gene_j.astype(np.int64)
    out = {f"focus_deg_{net}": node_degrees(n_genes, gi[mask], gj[mask]).astype(np.int64)
           for net, mask in network_masks(kept).items()}
    n1 = out["L1_n_nodes"] = out["focus_deg_diff"]
    rewired = np.isin(kept.change, REWIRING)
    l1_rewire = out["L1_rewire"] = node_degrees(n_genes, gi[rewired], gj[rewired]).astype(np.int64)
    ends = np.concatenate([gi, gj])
    abs_delta = np.abs(kept.delta.astype(np.float64))
    both = np.concatenate([abs_delta, abs_delta])
    out["L1_mean_abs_delta"] = _divide(np.bincount(ends, weights=both, minlength=n_genes), n1)
    largest = np.full(n_genes, -np.inf)
    np.maximum.at(largest, ends, both)
    out["L1_max_abs_delta"] = np.where(n1 > 0, largest, np.nan)
    adj = adjacency(n_genes, gi, gj, np.ones(gi.shape[0], dtype=np.int32))
    rewired_adj = adjacency(n_genes, gi[rewired], gj[rewired], np.ones(int(rewired.sum()), dtype=np.int32))
    l2_nodes, l2_rewire = _second_hop(adj, rewired_adj, l1_rewire)
    out["L1_frac_rewire"] = _divide(l1_rewire, n1)
    out["L2L1_deg"] = _divide(l2_nodes, n1)
    out["L2L1_rewire"] = _divide(l2_rewire, l1_rewire)
    return {name: out[name] for name in GENE_METRICS}


# --- entry point -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FocusNetwork:
    """One focus gene's networks: ``metrics`` (METRIC_NAMES, in order), ``degrees`` ("low", "high",
    "diff": (n_genes,) int32), ``partners`` (``direct_partners``), ``top_rewired``, ``kept`` (the
    edges the filter kept) and ``diff_matrix()``."""

    n_genes: int
    focus: int
    metrics: dict
    degrees: dict
    partners: dict
    top_rewired: dict
    kept: KeptEdges

    def diff_matrix(self) -> sp.csr_matrix:
        """The differential network: symmetric (n_genes, n_genes) CSR of delta (float32)."""
        delta = self.kept.delta.astype(np.float32)
        return adjacency(self.n_genes, self.kept.gene_i, self.kept.gene_j, delta)


def filter_metrics(kept: KeptEdges) -> dict:
    """FILTER_NAMES: edges before and after the filter, class counts (they add up to n_kept), |delta|."""
    counts = np.bincount(kept.change, minlength=len(CHANGE_LABELS))
    abs_delta = np.abs(kept.delta)
    out = {"n_selected": kept.n_selected, "n_kept": len(kept)}
    out.update({name: int(c) for name, c in zip(CLASS_COUNTS, counts)})
    out["n_rewire"] = int(sum(counts[c] for c in REWIRING))
    out["mean_abs_delta"] = _mean(abs_delta)
    out["max_abs_delta"] = float(abs_delta.max()) if abs_delta.size else float("nan")
    return out


def _check_edges(n_genes: int, focus: int, kept: KeptEdges) -> None:
    if not 0 <= focus < n_genes:
        raise BootgpuError(f"focus gene {focus} is not a row of a {n_genes}-gene matrix")
    if len(kept) and (kept.gene_i.min() < 0 or kept.gene_j.max() >= n_genes or np.any(kept.gene_i >= kept.gene_j)):
        raise BootgpuError(f"edges must join genes 0 <= gene_i < gene_j < {n_genes}")


def focus_network(
    n_genes: int, focus: int, edges: dict, alpha: float, edge_filter: EdgeFilter = EdgeFilter(),
    *, top_n: int = TOP_REWIRED,
) -> FocusNetwork:  # fmt: skip
    """The networks of focus gene ``focus`` from its selected edges (``FocusResult.edges``),
    filtered by ``edge_filter`` with presence at FDR ``alpha``; see the module docstring."""
    kept = filter_edges(edges, alpha, edge_filter)
    _check_edges(n_genes, focus, kept)
    metrics = filter_metrics(kept)
    topo, degrees = network_topologies(n_genes, kept)
    metrics.update(topo)
    metrics.update(neighbourhood_metrics(neighbourhood(n_genes, focus, kept), kept, degrees, focus))
    return FocusNetwork(
        n_genes=n_genes, focus=focus, metrics={name: metrics[name] for name in METRIC_NAMES},
        degrees=degrees, partners=direct_partners(kept, focus),
        top_rewired=top_rewired(kept, n_genes, focus, top_n), kept=kept,
    )  # fmt: skip
