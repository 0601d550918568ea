#!/usr/bin/env python3
"""Time bootgpu.networks.focus_network against the focus gene it follows; compare igraph and networkx.

Cases (each: the focus gene's analyse_focus, then focus_network on its edges, both timed in this
process so their ratio holds on a shared machine):
  all      the ALL data (../shared/data/all_leukemia.tsv.gz, 12,625 genes x 128 samples), focus
           row 0, B=100: 32,586 selected edges.
  modular  bootgpu.synthetic.modular_matrix(20000, 60), focus gene 0, B=20 (the selection does not
           depend on B): ~590,000 selected edges.
  libraries  clustering + assortativity on a 60,000-edge network (12,625 genes, heavy-tailed
           degrees plus a dense module), python-igraph vs networkx, graph construction included.

    python scripts/bench_networks.py [--cases all modular libraries] [--repeat 3]

One JSON line per case; times are the best of --repeat runs (the focus gene itself: one run).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ALL_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "all_leukemia.tsv.gz"


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def focus_edges(values: np.ndarray, n_bootstrap: int) -> tuple[dict, float]:
    """(edges, seconds) of focus gene 0 on NumPy with the default analysis parameters and budget."""
    from bootgpu.backends import get_backend
    from bootgpu.config import AnalysisConfig
    from bootgpu.pipeline import analyse_focus
    from bootgpu.planner import plan_batches, resolve_budget

    backend = get_backend("numpy")
    cfg = AnalysisConfig(n_bootstrap=n_bootstrap)
    k_low, k_high = cfg.validate(values.shape[1])
    budget = resolve_budget(backend, None)  # as `bootgpu run` by default
    plan = plan_batches(values.shape[0], values.shape[1], k_low, k_high, n_bootstrap, budget,
                        **backend.plan_facts(), threads=backend.host_threads())  # fmt: skip
    t0 = time.perf_counter()
    res = analyse_focus(backend, values, 0, cfg, plan, k_low, k_high)
    return res.edges, time.perf_counter() - t0


def stages(n_genes: int, edges: dict, alpha: float, repeat: int) -> dict:
    """Seconds of focus_network and of its parts (best of ``repeat``)."""
    from bootgpu import networks as nw

    out = {"focus_network_s": best_of(lambda: nw.focus_network(n_genes, 0, edges, alpha), repeat)[0]}
    t, kept = best_of(lambda: nw.filter_edges(edges, alpha), repeat)
    out["filter_s"] = t
    t, (_, degrees) = best_of(lambda: nw.network_topologies(n_genes, kept), repeat)
    out["topology_3_networks_s"] = t
    out["neighbourhood_s"] = best_of(
        lambda: nw.neighbourhood_metrics(nw.neighbourhood(n_genes, 0, kept), kept, degrees, 0), repeat)[0]
    out["partners_top_rewired_s"] = best_of(
        lambda: (nw.direct_partners(kept, 0), nw.top_rewired(kept, n_genes, 0)), repeat)[0]
    net = nw.focus_network(n_genes, 0, edges, alpha)
    out["diff_matrix_s"] = best_of(net.diff_matrix, repeat)[0]
    out["n_selected"], out["n_kept"] = net.metrics["n_selected"], net.metrics["n_kept"]
    return out


def case_all(repeat: int) -> dict:
    from bootgpu.expression_io import read_expression

    expr = read_expression(ALL_DATA)
    edges, focus_s = focus_edges(expr.values, 100)
    out = {"case": "all", "genes": expr.n_genes, "samples": expr.n_samples, "n_bootstrap": 100, "focus_gene_s": focus_s}
    out.update(stages(expr.n_genes, edges, 0.05, repeat))
    out["ratio_networks_to_focus_gene"] = out["focus_network_s"] / focus_s
    return out


def case_modular(repeat: int) -> dict:
    from bootgpu.synthetic import modular_matrix

    edges, focus_s = focus_edges(modular_matrix(20000, 60).values, 20)
    out = {"case": "modular", "genes": 20000, "samples": 60, "n_bootstrap": 20, "focus_gene_s": focus_s}
    out.update(stages(20000, edges, 0.05, repeat))
    out["ratio_networks_to_focus_gene"] = out["focus_network_s"] / focus_s
    return out


def library_network(n_genes: int = 12625, n_edges: int = 60000, seed: int = 0) -> np.ndarray:
    """(n_edges, 2) distinct pairs i < j: heavy-tailed (Pareto) endpoint weights plus one 300-gene
    module at 20% density, like a real differential network's hubs and blocks."""
    rng = np.random.default_rng(seed)
    weight = rng.pareto(1.5, n_genes) + 1.0
    p = weight / weight.sum()
    i, j = rng.choice(n_genes, 2 * n_edges, p=p), rng.choice(n_genes, 2 * n_edges, p=p)
    module = rng.choice(n_genes, 300, replace=False)
    a, b = np.triu_indices(300, 1)
    pick = rng.random(a.size) < 0.2
    i, j = np.concatenate([module[a[pick]], i]), np.concatenate([module[b[pick]], j])
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    pairs = np.unique(np.column_stack([lo, hi])[lo != hi], axis=0)
    return pairs[rng.permutation(pairs.shape[0])[:n_edges]]


def case_libraries(repeat: int) -> dict:
    import igraph
    import networkx as nx

    pairs = library_network()
    n_genes = 12625

    def with_igraph():
        g = igraph.Graph(n=n_genes, edges=list(zip(pairs[:, 0].tolist(), pairs[:, 1].tolist())))
        local = np.asarray(g.transitivity_local_undirected(mode="nan"), dtype=np.float64)
        return float(np.nanmean(local)), g.assortativity_degree(directed=False)

    def with_networkx():
        g = nx.Graph()
        g.add_nodes_from(range(n_genes))
        g.add_edges_from(pairs.tolist())
        local = nx.clustering(g)
        return (float(np.mean([local[v] for v in g if g.degree(v) >= 2])),
                nx.degree_assortativity_coefficient(g))  # fmt: skip

    t_ig, v_ig = best_of(with_igraph, repeat)
    t_nx, v_nx = best_of(with_networkx, 1)
    assert np.allclose(v_ig, v_nx), (v_ig, v_nx)
    return {"case": "libraries", "edges": int(pairs.shape[0]), "genes": n_genes, "igraph_s": t_ig,
            "networkx_s": t_nx, "ratio_networkx_to_igraph": t_nx / t_ig,
            "igraph_version": igraph.__version__, "networkx_version": nx.__version__,
            "clustering": v_ig[0], "assortativity": v_ig[1]}  # fmt: skip


CASES = {"all": case_all, "modular": case_modular, "libraries": case_libraries}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", choices=sorted(CASES), default=["libraries", "all", "modular"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for name in args.cases:
        print(json.dumps(CASES[name](args.repeat)), flush=True)


if __name__ == "__main__":
    main()
