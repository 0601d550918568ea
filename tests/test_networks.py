"""bootgpu.networks: every metric against an independent computation (networkx and plain loops) on
small networks built by hand, the conventions for empty sets and zero denominators, and planted
structure (bootgpu.synthetic.partner_matrix) recovered through the real pipeline."""

from __future__ import annotations

import itertools
import math
import warnings
from collections import Counter

import networkx as nx
import numpy as np
import pytest

from bootgpu.errors import BootgpuError
from bootgpu.networks import (
    INT_METRICS,
    METRIC_NAMES,
    EdgeFilter,
    filter_edges,
    focus_network,
    line_fit,
    metrics_dtype,
)
from bootgpu.results_schema import CHANGE_LABELS

ALPHA = 0.05
SIG, NONSIG = 0.001, 0.5  # q-values
REWIRING = {"disappear", "new", "sign_change"}


# --- building edge dicts by hand -------------------------------------------------------------------


def edge(i, j, r_low, r_high, q_low=SIG, q_high=SIG, robust=True):
    return (min(i, j), max(i, j), r_low, r_high, q_low, q_high, robust)


def L(i, j, r=0.8):  # present in LOW only: disappear
    return edge(i, j, r, 0.05, SIG, NONSIG)


def H(i, j, r=0.8):  # present in HIGH only: new
    return edge(i, j, 0.05, r, NONSIG, SIG)


def S(i, j, r=0.7):  # present in both, sign flips
    return edge(i, j, r, -r, SIG, SIG)


def U(i, j, d=0.3):  # robust, present in neither: subthreshold
    return edge(i, j, 0.1, 0.1 + d, NONSIG, NONSIG)


def edges_dict(rows) -> dict:
    """A FocusResult-style edge dict; ``change`` as the pipeline assigns it (significance only)."""
    cols = list(zip(*rows)) if rows else [()] * 7
    gi, gj, rl, rh, ql, qh, robust = (np.asarray(c) for c in cols)
    rl, rh = rl.astype(np.float32), rh.astype(np.float32)
    out = {
        "gene_i": gi.astype(np.int32), "gene_j": gj.astype(np.int32), "r_low": rl, "r_high": rh,
        "delta": (rh - rl).astype(np.float32), "q_low": ql.astype(np.float32), "q_high": qh.astype(np.float32),
        "robust": robust.astype(bool),
    }  # fmt: skip
    out["change"] = np.array(
        [CHANGE_LABELS.index(classify(a < ALPHA, b < ALPHA, x, y)) for a, b, x, y in zip(ql, qh, rl, rh)], np.int8
    )
    return out


def classify(low: bool, high: bool, r_low: float, r_high: float) -> str:
    if low and high:
        if (r_low > 0) != (r_high > 0):
            return "sign_change"
        return "strengthen" if abs(r_high) > abs(r_low) else ("weaken" if abs(r_high) < abs(r_low) else "subthreshold")
    return "disappear" if low else ("new" if high else "subthreshold")


# --- the independent reference ---------------------------------------------------------------------


def nan_ratio(a, b):
    return a / b if b else math.nan


def reference_kept(edges: dict, filt: EdgeFilter) -> list[dict]:
    kept = []
    for e in range(edges["gene_i"].size):
        rl, rh = float(edges["r_low"][e]), float(edges["r_high"][e])
        if abs(float(edges["delta"][e])) < filt.min_effect or (filt.ci_filter and not edges["robust"][e]):
            continue
        low = bool(edges["q_low"][e] < ALPHA) and abs(rl) >= filt.corr_threshold
        high = bool(edges["q_high"][e] < ALPHA) and abs(rh) >= filt.corr_threshold
        kept.append(dict(u=int(edges["gene_i"][e]), v=int(edges["gene_j"][e]), r_low=rl, r_high=rh,
                         delta=float(edges["delta"][e]), low=low, high=high,
                         cls=classify(low, high, rl, rh)))  # fmt: skip
    return kept


def nx_graph(n_genes, kept, which):
    g = nx.Graph()
    g.add_nodes_from(range(n_genes))
    g.add_edges_from((e["u"], e["v"], e) for e in kept if which == "diff" or e[which])
    return g


def reference_powerlaw(active_degrees):
    counts = Counter(active_degrees)
    pts = sorted((k, c) for k, c in counts.items() if c >= 2)
    if len(pts) < 5:
        return math.nan, math.nan, 0
    x = np.log10([k for k, _ in pts])
    y = np.log10([c for _, c in pts])
    slope, intercept = np.polyfit(x, y, 1)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1 - float(np.sum((y - (slope * x + intercept)) ** 2)) / ss_tot if ss_tot > 0 else math.nan
    gamma = -slope
    return gamma, r2, int(2 <= gamma <= 3.5 and r2 > 0.8)


def reference_topology(g: nx.Graph, n_genes: int) -> dict:
    active = [v for v in g if g.degree(v) > 0]
    deg = [g.degree(v) for v in active]
    h = g.subgraph(active)
    n, m = len(active), g.number_of_edges()
    out = {"n_nodes_active": n, "frac_active": n / n_genes, "n_edges": m, "density": nan_ratio(2 * m, n * (n - 1))}
    stats = {"mean_degree": nan_ratio(sum(deg), n)}
    names = ["degree_min", "degree_median", "degree_max", "degree_std", "degree_p25", "degree_p50",
             "degree_p75", "degree_p90", "degree_p95", "degree_p99"]  # fmt: skip
    if deg:
        p = np.percentile(deg, [25, 50, 75, 90, 95, 99])
        stats.update(zip(names, [min(deg), float(np.median(deg)), max(deg), float(np.std(deg)), *p]))
    else:
        stats.update(dict.fromkeys(names, math.nan))
    out.update(stats)
    out["powerlaw_gamma"], out["powerlaw_r2"], out["scale_free"] = reference_powerlaw(deg)
    local = nx.clustering(g)
    wedges = [local[v] for v in g if g.degree(v) >= 2]
    out["clustering"] = float(np.mean(wedges)) if wedges else math.nan
    comps = [len(c) for c in nx.connected_components(h)]
    out["n_components"] = len(comps)
    out["largest_component"] = max(comps, default=0)
    out["largest_component_frac"] = nan_ratio(max(comps, default=0), n)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        out["assortativity"] = float(nx.degree_pearson_correlation_coefficient(g)) if m else math.nan
    return out


def reference_layer(edges: list[dict]) -> dict:
    out = {"n_edges": len(edges)}
    out.update({f"n_{label}": sum(e["cls"] == label for e in edges) for label in CHANGE_LABELS})
    out["rewire"] = sum(e["cls"] in REWIRING for e in edges)
    out["n_edges_low"] = sum(e["low"] for e in edges)
    out["n_edges_high"] = sum(e["high"] for e in edges)
    out["conn_low"] = sum(abs(e["r_low"]) for e in edges if e["low"])
    out["conn_high"] = sum(abs(e["r_high"]) for e in edges if e["high"])
    out["conn_mean_low"] = nan_ratio(out["conn_low"], out["n_edges_low"])
    out["conn_mean_high"] = nan_ratio(out["conn_high"], out["n_edges_high"])
    out["mean_delta"] = nan_ratio(sum(e["delta"] for e in edges), len(edges))
    out["mean_abs_delta"] = nan_ratio(sum(abs(e["delta"]) for e in edges), len(edges))
    out["conn_diff"] = sum(abs(e["delta"]) for e in edges)
    return out


def reference_neighbourhood(d: nx.Graph, graphs: dict, focus: int) -> dict:
    l1 = set(d.neighbors(focus))
    l2 = {w for v in l1 for w in d.neighbors(v)} - l1 - {focus}
    layers = {
        "L1": [d.edges[focus, v] for v in l1],
        "L1L1": [d.edges[e] for e in d.subgraph(l1).edges()],
        "L1L2": [d.edges[u, w] for u in l1 for w in d.neighbors(u) if w in l2],
    }
    layers["L2"] = layers["L1L1"] + layers["L1L2"]
    out = {f"focus_deg_{net}": graphs[net].degree(focus) for net in ("low", "high", "diff")}
    out.update(L1_n_nodes=len(l1), L2_n_nodes=len(l2))
    stats = {name: reference_layer(es) for name, es in layers.items()}
    for name, s in stats.items():
        out.update({f"{name}_{k}": v for k, v in s.items()})
    n1 = len(l1)
    out.update(
        L1_frac_rewire=nan_ratio(stats["L1"]["rewire"], n1),
        L1_frac_disappear=nan_ratio(stats["L1"]["n_disappear"], n1),
        L1_frac_new=nan_ratio(stats["L1"]["n_new"], n1),
        L1_clique_density=nan_ratio(stats["L1L1"]["n_edges"], n1 * (n1 - 1) / 2),
        L2L1_deg=nan_ratio(len(l2), n1),
        L2L1_rewire=nan_ratio(stats["L2"]["rewire"], stats["L1"]["rewire"]),
        L2L1_conn=nan_ratio(stats["L2"]["conn_diff"], stats["L1"]["conn_diff"]),
        HL_conn_L1=nan_ratio(stats["L1"]["conn_high"], stats["L1"]["conn_low"]),
        HL_conn_L2=nan_ratio(stats["L2"]["conn_high"], stats["L2"]["conn_low"]),
    )
    return out


def reference_metrics(n_genes: int, focus: int, edges: dict, filt: EdgeFilter = EdgeFilter()) -> dict:
    kept = reference_kept(edges, filt)
    deltas = [abs(e["delta"]) for e in kept]
    out = {"n_selected": int(edges["gene_i"].size), "n_kept": len(kept)}
    out.update({f"n_{label}": sum(e["cls"] == label for e in kept) for label in CHANGE_LABELS})
    out["n_rewire"] = sum(e["cls"] in REWIRING for e in kept)
    out["mean_abs_delta"] = nan_ratio(sum(deltas), len(deltas))
    out["max_abs_delta"] = max(deltas, default=math.nan)
    graphs = {net: nx_graph(n_genes, kept, net) for net in ("low", "high", "diff")}
    for net, g in graphs.items():
        out.update({f"{net}_{k}": v for k, v in reference_topology(g, n_genes).items()})
    out.update(reference_neighbourhood(graphs["diff"], graphs, focus))
    return out


def assert_metrics_match(got: dict, want: dict):
    assert list(got) == list(METRIC_NAMES)
    assert set(want) == set(METRIC_NAMES), set(METRIC_NAMES) ^ set(want)
    bad = {}
    for name in METRIC_NAMES:
        g, w = got[name], want[name]
        if isinstance(w, float) and math.isnan(w):
            ok = isinstance(g, float) and math.isnan(g)
        else:
            ok = g == pytest.approx(w, rel=1e-6, abs=1e-9)
        if not ok:
            bad[name] = (g, w)
    assert not bad, bad


# --- hand-built networks ---------------------------------------------------------------------------

MIXED = [  # focus 0; L1 = 1..5; L2 = 6, 7; 8-9 and 10-11-12 elsewhere; 13 isolated
    L(0, 1), H(0, 2, 0.6), S(0, 3), edge(0, 4, 0.3, 0.6), U(0, 5),  # strengthen (0, 4), subthreshold (0, 5)
    H(1, 2), L(1, 6), S(3, 6), H(4, 7, -0.5), U(5, 7),
    L(6, 7), L(8, 9), H(10, 11), S(11, 12), L(10, 12),
    edge(2, 9, 0.8, 0.1, SIG, NONSIG, robust=False),  # dropped by the CI filter
    edge(1, 3, 0.6, 0.59, SIG, SIG),  # weaken; |delta| 0.01: dropped by min_effect 0.05
]
STAR = [L(0, k) for k in range(1, 6)]  # degrees tie: 1, 1, 1, 1, 1 around a hub
TWO_TRIANGLES = [L(0, 1), H(1, 2), S(0, 2), L(3, 4), L(4, 5), H(3, 5), H(6, 7)]
ALL_SUBTHRESHOLD = [U(0, 1), U(1, 2), U(2, 3)]  # rewire 0 and conn 0 everywhere: every ratio NaN
CASES = {
    "mixed": (14, 0, MIXED),
    "single_edge": (2, 0, [L(0, 1)]),
    "focus_without_edges": (6, 5, [L(0, 1), H(1, 2), S(2, 3)]),
    "no_edges": (4, 0, []),
    "one_partner_no_l2": (5, 0, [H(0, 1), L(2, 3)]),  # L1 of one gene: clique density 0/0
    "star_hub": (6, 0, STAR),
    "star_leaf": (6, 3, STAR),  # focus on a leaf: L1 = {0}, L2 = the other leaves
    "disconnected_triangles": (9, 0, TWO_TRIANGLES),
    "all_subthreshold": (4, 1, ALL_SUBTHRESHOLD),
    "cycle_equal_degrees": (5, 0, [L(0, 1), H(1, 2), S(2, 3), L(3, 4), H(0, 4)]),  # assortativity 0/0
}


def random_case(seed: int, n_genes: int = 60, p: float = 0.12):
    """A random network with every kind of edge, big enough for a power-law fit."""
    rng = np.random.default_rng(seed)
    kinds = (L, H, S, U, lambda i, j: edge(i, j, 0.3, 0.7), lambda i, j: edge(i, j, 0.7, 0.3))
    rows = []
    for i, j in itertools.combinations(range(n_genes), 2):
        if rng.random() < p:
            rows.append(kinds[rng.integers(len(kinds))](i, j))
            if rng.random() < 0.1:
                rows[-1] = rows[-1][:6] + (False,)
    return n_genes, int(rng.integers(n_genes)), rows


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_metric_matches_networkx_on_hand_built_networks(name):
    n_genes, focus, rows = CASES[name]
    edges = edges_dict(rows)
    got = focus_network(n_genes, focus, edges, ALPHA).metrics
    assert_metrics_match(got, reference_metrics(n_genes, focus, edges))


@pytest.mark.parametrize("seed", range(4))
def test_every_metric_matches_networkx_on_random_networks(seed):
    n_genes, focus, rows = random_case(seed)
    edges = edges_dict(rows)
    got = focus_network(n_genes, focus, edges, ALPHA).metrics
    assert_metrics_match(got, reference_metrics(n_genes, focus, edges))
    assert not math.isnan(got["diff_powerlaw_gamma"])  # the fit is exercised, not only its NaN


@pytest.mark.parametrize(
    "filt", [EdgeFilter(min_effect=0.05), EdgeFilter(ci_filter=False), EdgeFilter(corr_threshold=0.65)], ids=str
)
def test_every_metric_matches_networkx_under_each_filter(filt):
    n_genes, focus, rows = CASES["mixed"]
    edges = edges_dict(rows)
    assert_metrics_match(focus_network(n_genes, focus, edges, ALPHA, filt).metrics,
                         reference_metrics(n_genes, focus, edges, filt))  # fmt: skip


def test_mixed_case_by_hand():
    """A few values worked out on paper for MIXED (default filter: 16 edges kept of 17)."""
    m = focus_network(14, 0, edges_dict(MIXED), ALPHA).metrics
    assert (m["n_selected"], m["n_kept"]) == (17, 16)  # the non-robust edge goes; weaken (1, 3) stays
    assert (m["L1_n_nodes"], m["L2_n_nodes"]) == (5, 2)
    assert (m["L1_n_edges"], m["L1L1_n_edges"], m["L1L2_n_edges"], m["L2_n_edges"]) == (5, 2, 4, 6)
    assert m["L1_rewire"] == 3 and m["L1_n_strengthen"] == 1 and m["L1_n_subthreshold"] == 1
    assert m["L1_clique_density"] == pytest.approx(2 / 10)
    assert m["L2L1_deg"] == pytest.approx(2 / 5)
    assert (m["focus_deg_low"], m["focus_deg_high"], m["focus_deg_diff"]) == (3, 3, 5)
    assert m["diff_n_components"] == 3 and m["diff_largest_component"] == 8
    assert m["diff_n_nodes_active"] == 13 and m["diff_frac_active"] == pytest.approx(13 / 14)
    assert m["diff_density"] == pytest.approx(2 * 16 / (13 * 12))


def test_class_counts_add_up_to_the_kept_edges():
    n_genes, focus, rows = random_case(7)
    m = focus_network(n_genes, focus, edges_dict(rows), ALPHA).metrics
    assert sum(m[f"n_{label}"] for label in CHANGE_LABELS) == m["n_kept"] == m["diff_n_edges"]
    for layer in ("L1", "L1L1", "L1L2", "L2"):
        assert sum(m[f"{layer}_n_{label}"] for label in CHANGE_LABELS) == m[f"{layer}_n_edges"]
    assert m["L2_n_edges"] == m["L1L1_n_edges"] + m["L1L2_n_edges"]
    assert m["L1_n_edges"] == m["L1_n_nodes"] == m["focus_deg_diff"]
    assert m["L1_n_edges_low"] == m["focus_deg_low"] and m["L1_n_edges_high"] == m["focus_deg_high"]


# --- conventions: empty sets, zero denominators -----------------------------------------------------


def test_focus_gene_without_edges_has_zero_counts_and_nan_ratios():
    m = focus_network(6, 5, edges_dict([L(0, 1), H(1, 2)]), ALPHA).metrics
    assert m["L1_n_nodes"] == m["L2_n_nodes"] == m["L1_rewire"] == m["focus_deg_diff"] == 0
    assert m["L1_conn_low"] == m["L1_conn_diff"] == 0.0
    for name in ("L1_frac_rewire", "L1_clique_density", "L2L1_deg", "L2L1_rewire", "L2L1_conn",
                 "HL_conn_L1", "HL_conn_L2", "L1_mean_delta", "L1_conn_mean_low"):  # fmt: skip
        assert math.isnan(m[name]), name


def test_no_edges_at_all():
    net = focus_network(4, 0, edges_dict([]), ALPHA)
    m = net.metrics
    for nw in ("low", "high", "diff"):
        assert m[f"{nw}_n_edges"] == m[f"{nw}_n_nodes_active"] == m[f"{nw}_n_components"] == 0
        assert m[f"{nw}_frac_active"] == 0.0 and m[f"{nw}_scale_free"] == 0
        for name in ("density", "mean_degree", "degree_max", "degree_p99", "clustering", "assortativity",
                     "powerlaw_gamma", "largest_component_frac"):  # fmt: skip
            assert math.isnan(m[f"{nw}_{name}"]), (nw, name)
    assert math.isnan(m["mean_abs_delta"]) and math.isnan(m["max_abs_delta"])
    assert net.diff_matrix().nnz == 0 and net.partners["gene"].size == 0 and net.top_rewired["gene"].size == 0


def test_single_edge():
    m = focus_network(2, 0, edges_dict([L(0, 1)]), ALPHA).metrics
    assert m["diff_density"] == 1.0 and m["diff_n_components"] == 1 and m["diff_largest_component_frac"] == 1.0
    assert math.isnan(m["diff_clustering"]) and math.isnan(m["diff_assortativity"])  # no degree-2 gene; r 0/0
    assert m["L1_n_nodes"] == 1 and m["L2_n_nodes"] == 0 and m["L1_frac_disappear"] == 1.0
    assert m["L2L1_deg"] == 0.0 and m["L2L1_rewire"] == 0.0 and math.isnan(m["L1_clique_density"])  # 0 / 1; 0 / 0
    assert m["high_n_edges"] == 0 and m["HL_conn_L1"] == 0.0  # conn_high 0 over conn_low 0.8


def test_zero_denominators_are_nan_not_zero():
    m = focus_network(4, 1, edges_dict(ALL_SUBTHRESHOLD), ALPHA).metrics
    assert m["L1_rewire"] == 0 and m["L2_rewire"] == 0 and m["L1_conn_low"] == 0.0
    for name in ("L2L1_rewire", "HL_conn_L1", "HL_conn_L2", "L1_conn_mean_high"):
        assert math.isnan(m[name]), name
    assert m["L1_frac_rewire"] == 0.0 and m["L2L1_deg"] == pytest.approx(1 / 2)


def test_equal_degrees_give_nan_assortativity_and_ties_keep_gene_order():
    net = focus_network(6, 0, edges_dict(STAR), ALPHA)
    assert net.metrics["diff_assortativity"] == -1.0  # hub to leaves: perfectly disassortative
    cycle = focus_network(5, 0, edges_dict(CASES["cycle_equal_degrees"][2]), ALPHA)
    assert math.isnan(cycle.metrics["diff_assortativity"])
    np.testing.assert_array_equal(net.partners["gene"], [1, 2, 3, 4, 5])  # equal |delta|: by gene index
    leaf = focus_network(6, 3, edges_dict(STAR), ALPHA)
    np.testing.assert_array_equal(leaf.top_rewired["gene"], [0, 1, 2, 4, 5])  # hub first, then ties by index
    np.testing.assert_array_equal(leaf.top_rewired["n_rewired"], [5, 1, 1, 1, 1])


# --- the other outputs -----------------------------------------------------------------------------


def test_degrees_are_int32_per_gene_arrays_matching_networkx():
    n_genes, focus, rows = random_case(3)
    edges = edges_dict(rows)
    net = focus_network(n_genes, focus, edges, ALPHA)
    kept = reference_kept(edges, EdgeFilter())
    for which in ("low", "high", "diff"):
        deg = net.degrees[which]
        assert deg.dtype == np.int32 and deg.shape == (n_genes,)
        g = nx_graph(n_genes, kept, which)
        np.testing.assert_array_equal(deg, [g.degree(v) for v in range(n_genes)])


def test_partners_sorted_by_abs_delta_with_their_class():
    net = focus_network(14, 0, edges_dict(MIXED), ALPHA)
    p = net.partners
    assert p["gene"].dtype == np.int32
    assert np.all(np.diff(np.abs(p["delta"])) <= 0)
    d = nx_graph(14, reference_kept(edges_dict(MIXED), EdgeFilter()), "diff")
    assert set(p["gene"].tolist()) == set(d.neighbors(0))
    for g, delta, code in zip(p["gene"], p["delta"], p["change"]):
        e = d.edges[0, int(g)]
        assert delta == pytest.approx(e["delta"]) and CHANGE_LABELS[code] == e["cls"]


def test_top_rewired_counts_rewired_edges_and_leaves_out_the_focus_gene():
    n_genes, focus, rows = random_case(5)
    edges = edges_dict(rows)
    net = focus_network(n_genes, focus, edges, ALPHA, top_n=7)
    d = nx_graph(n_genes, reference_kept(edges, EdgeFilter()), "diff")
    count = {v: sum(d.edges[v, w]["cls"] in REWIRING for w in d.neighbors(v)) for v in d if v != focus}
    want = sorted((v for v in count if count[v] > 0), key=lambda v: (-count[v], v))[:7]
    np.testing.assert_array_equal(net.top_rewired["gene"], want)
    np.testing.assert_array_equal(net.top_rewired["n_rewired"], [count[v] for v in want])
    np.testing.assert_array_equal(net.top_rewired["degree_diff"], [d.degree(v) for v in want])


def test_diff_matrix_is_the_symmetric_delta_of_the_kept_edges():
    edges = edges_dict(MIXED)
    mat = focus_network(14, 0, edges, ALPHA).diff_matrix()
    assert mat.shape == (14, 14) and mat.format == "csr" and (mat != mat.T).nnz == 0
    want = np.zeros((14, 14), np.float32)
    for e in reference_kept(edges, EdgeFilter()):
        want[e["u"], e["v"]] = want[e["v"], e["u"]] = e["delta"]
    np.testing.assert_allclose(mat.toarray(), want)


def test_metrics_fit_their_dtype_with_int_counts():
    net = focus_network(14, 0, edges_dict(MIXED), ALPHA)
    row = np.array([tuple(net.metrics.values())], dtype=metrics_dtype())
    for name, value in net.metrics.items():
        assert isinstance(value, int) == (name in INT_METRICS), name
        assert row[name][0] == value or (math.isnan(value) and math.isnan(row[name][0]))


def test_filter_presence_flags_and_reclassification():
    edges = edges_dict([edge(0, 1, 0.6, 0.62, SIG, SIG), edge(0, 2, 0.3, 0.0, SIG, NONSIG),
                        edge(1, 2, 0.9, -0.7, SIG, SIG, robust=False)])  # fmt: skip
    kept = filter_edges(edges, ALPHA, EdgeFilter(corr_threshold=0.61))
    assert len(kept) == 2 and kept.n_selected == 3
    np.testing.assert_array_equal(kept.present_low, [False, False])  # |r_low| 0.6 and 0.3 < 0.61
    np.testing.assert_array_equal(kept.present_high, [True, False])
    assert [CHANGE_LABELS[c] for c in kept.change] == ["new", "subthreshold"]  # strengthen / disappear at 0
    kept0 = filter_edges(edges, ALPHA, EdgeFilter(ci_filter=False))
    np.testing.assert_array_equal(kept0.change, edges["change"])  # at threshold 0: the stored classes


@pytest.mark.parametrize("bad", [dict(min_effect=-0.1), dict(corr_threshold=float("nan"))])
def test_edge_filter_refuses_bad_thresholds(bad):
    with pytest.raises(BootgpuError, match="must be a finite number"):
        EdgeFilter(**bad)


def test_bad_focus_or_alpha_is_refused():
    with pytest.raises(BootgpuError, match="focus gene 9"):
        focus_network(4, 9, edges_dict([L(0, 1)]), ALPHA)
    with pytest.raises(BootgpuError, match="alpha"):
        focus_network(4, 0, edges_dict([L(0, 1)]), 1.5)


# --- planted structure through the real pipeline ----------------------------------------------------

PLANT_SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def planted():
    from bootgpu.backends import get_backend
    from bootgpu.config import AnalysisConfig
    from bootgpu.pipeline import analyse_focus
    from bootgpu.planner import plan_batches
    from bootgpu.synthetic import partner_matrix

    out = {}
    for seed in PLANT_SEEDS:
        pm = partner_matrix(400, 300, 4, seed=seed)
        cfg = AnalysisConfig(n_bootstrap=100, seed=seed, fdr_alpha=ALPHA)
        k_low, k_high = cfg.validate(300)
        plan = plan_batches(400, 300, k_low, k_high, 100, 1 << 30)
        res = analyse_focus(get_backend("numpy"), pm.values, 0, cfg, plan, k_low, k_high)
        out[seed] = pm, res, focus_network(400, 0, res.edges, ALPHA)
    return out


@pytest.mark.parametrize("seed", PLANT_SEEDS)
def test_planted_partners_are_exactly_the_l1_set_with_their_classes(planted, seed):
    pm, _, net = planted[seed]
    changed = {g: cls for cls in ("disappear", "new", "sign_change") for g in pm.partners[cls]}
    assert dict(zip(net.partners["gene"].tolist(), (CHANGE_LABELS[c] for c in net.partners["change"]))) == changed
    m, n = net.metrics, 4
    assert (m["L1_n_nodes"], m["L1_n_disappear"], m["L1_n_new"], m["L1_n_sign_change"]) == (3 * n, n, n, n)
    assert m["L1_rewire"] == 3 * n and m["L1_frac_rewire"] == 1.0
    assert (m["focus_deg_low"], m["focus_deg_high"]) == (2 * n, 2 * n)  # disappear + sign_change; new + sign_change


@pytest.mark.parametrize("seed", PLANT_SEEDS)
def test_planted_second_layer_is_recovered(planted, seed):
    pm, _, net = planted[seed]
    kept = net.kept
    found = {(int(i), int(j)): CHANGE_LABELS[c] for i, j, c in zip(kept.gene_i, kept.gene_j, kept.change)}
    for (b, c), _ in pm.links.items():  # second-hop pairs: all found with their planted class
        assert found.get((b, c)) == pm.expected_change(b, c)
    l1 = set(net.partners["gene"].tolist())
    genes = sorted({0, *itertools.chain(*pm.partners.values()), *pm.second_hop.values()})
    expected = {(a, b): pm.expected_change(a, b) for a, b in itertools.combinations(genes, 2)}
    l1l1 = {p: cls for p, cls in expected.items() if cls and p[0] in l1 and p[1] in l1}
    found_l1l1 = {p: cls for p, cls in found.items() if p[0] in l1 and p[1] in l1}
    assert all(l1l1.get(p) == cls for p, cls in found_l1l1.items())  # no L1-L1 edge the model does not plant
    assert len(found_l1l1) >= 0.9 * len(l1l1) and net.metrics["L1L1_n_edges"] == len(found_l1l1)
    # L2: the second-hop genes and the "stay" partners (linked to L1 through gene 0's shared signal)
    want_l2 = set(pm.second_hop.values()) | set(pm.partners["stay"])
    hood = {w for (u, v) in found for a, w in ((u, v), (v, u)) if a in l1 and w != 0 and w not in l1}
    assert want_l2 <= hood and len(hood - want_l2) <= 2  # at most a couple of background false discoveries
    assert net.metrics["L2_n_nodes"] == len(hood)


def test_classes_from_presence_equal_the_pipeline_classes(planted):
    _, res, net = planted[0]
    robust = res.edges["robust"]
    np.testing.assert_array_equal(net.kept.change, res.edges["change"][robust])


@pytest.mark.parametrize("seed", range(40))
def test_line_fit_is_scipy_linregress_bit_for_bit(seed):
    """The power-law fit's line (``line_fit``) against scipy.stats.linregress: slope and r equal to
    the last bit, on log-degree data as the networks give it and on plain random points."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    if seed % 2:
        degrees = np.unique(rng.integers(1, 400, size=n))
        x, y = np.log10(degrees), np.log10(rng.integers(2, 900, size=degrees.size)) - 0.7 * np.log10(degrees)
    else:
        x, y = np.sort(rng.standard_normal(n)) * 10 ** rng.uniform(-3, 3), rng.standard_normal(n)
    want = stats.linregress(x, y)
    slope, r = line_fit(x, y)
    assert (slope, r) == (want.slope, want.rvalue) and math.isfinite(slope)


def test_line_fit_of_a_perfect_line_and_of_a_flat_one():
    from scipy import stats

    x = np.log10(np.array([1.0, 2, 3, 5, 8, 13]))
    for y in (3 - 2.5 * x, np.full(6, 0.3)):
        want = stats.linregress(x, y)
        assert line_fit(x, y) == (want.slope, want.rvalue) or (
            line_fit(x, y)[0] == want.slope and math.isnan(line_fit(x, y)[1]) and math.isnan(want.rvalue))
