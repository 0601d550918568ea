"""The reference: the original algorithm for one focus gene written plainly with SciPy and
statsmodels (see the package docstring), timed stage by stage like bootgpu."""

from __future__ import annotations

import numpy as np

from bootgpu.bench.meters import StageMeter
from bootgpu.bench.stages import STAGES

REFERENCE = "reference"

REFERENCE_DESCRIPTION = (
    "straightforward SciPy/statsmodels implementation of the original algorithm: scipy.stats.rankdata per group; "
    "full (G, G) Spearman matrix as one matrix product of centred ranks; p of every pair from scipy.stats.t.sf "
    "(t-test) and scipy.stats.norm.sf (Fisher-Z); statsmodels multipletests(method='fdr_bh') over all pairs for each "
    "test; bootstrap of the selected edges re-ranking (rankdata) the resampled values of the edges' genes once per "
    "replicate and group, then correlations of the edges as dot products. draws: numpy Generator.integers (the "
    "bootstrap itself uses bootgpu's draws so outputs can be compared). focus_gene = sum of its stages."
)


def reference_focus(values, focus, cfg, positions, meter: StageMeter) -> dict:
    """The original algorithm for one focus gene, plainly (see the package docstring).

    ``positions``: {LOW: (B, m_low), HIGH: (B, m_high)} bootstrap positions into each group, used
    by the bootstrap stage (the draws stage times NumPy's generator making arrays of that shape).
    Returns the selected edges' values as float64 host arrays.
    """
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    n_genes, n = values.shape
    k_low, k_high = cfg.validate(n)
    with meter.host.track_peak() as whole:  # the focus gene: every stage, intermediates held
        with meter.stage("draws"):
            rng = np.random.default_rng(cfg.seed)
            for k in (k_low, k_high):
                rng.integers(0, k, size=(cfg.n_bootstrap, int(k * cfg.bootstrap_frac)))
        with meter.stage("ranking"):
            order = np.argsort(values[focus], kind="stable")
            groups = (order[:k_low], order[n - k_high:])
            ranks = [stats.rankdata(values[:, g], axis=1) for g in groups]
        with meter.stage("correlations"):
            iu, ju = np.triu_indices(n_genes, 1)
            r = []
            with np.errstate(invalid="ignore", divide="ignore"):
                for rk in ranks:
                    z = rk - rk.mean(axis=1, keepdims=True)
                    z /= np.sqrt(np.sum(z * z, axis=1, keepdims=True))
                    full = z @ z.T  # (G, G): every pair, twice, and the diagonal
                    r.append(full[iu, ju])
                    del full, z
            r_low, r_high = r
            del r, ranks
        with meter.stage("tests_bh"):
            valid = np.isfinite(r_low) & np.isfinite(r_high)
            iu, ju, r_low, r_high = iu[valid], ju[valid], r_low[valid], r_high[valid]
            p = {}
            with np.errstate(divide="ignore", invalid="ignore"):
                for name, rr, k in (("low", r_low, k_low), ("high", r_high, k_high)):
                    t = rr * np.sqrt((k - 2) / ((1.0 - rr) * (1.0 + rr)))
                    p[name] = 2.0 * stats.t.sf(np.abs(t), k - 2)
                    del t
            se = np.sqrt(1.0 / (k_low - 3) + 1.0 / (k_high - 3))
            dz = np.arctanh(np.clip(r_high, -0.9999, 0.9999)) - np.arctanh(np.clip(r_low, -0.9999, 0.9999))
            p["diff"] = 2.0 * stats.norm.sf(np.abs(dz) / se)
            del dz
            q = {name: multipletests(pv, alpha=cfg.fdr_alpha, method="fdr_bh")[1] for name, pv in p.items()}
            del p
            sig = {name: qv < cfg.fdr_alpha for name, qv in q.items()}
            sig_edges = (sig["low"] | sig["high"]) & sig["diff"]
            chosen = np.flatnonzero(sig_edges if cfg.edge_selection == "sig_edges" else sig["diff"])
            edges = {"gene_i": iu[chosen], "gene_j": ju[chosen], "r_low": r_low[chosen], "r_high": r_high[chosen]}
            edges.update({f"q_{name}": q[name][chosen] for name in q})
            del q, sig, iu, ju, r_low, r_high, valid
        with meter.stage("bootstrap"):
            edges.update(reference_bootstrap(values, groups, edges["gene_i"], edges["gene_j"],
                                             edges["r_high"] - edges["r_low"], positions, cfg.ci_alpha))
    meter.stages["focus_gene"] = {
        "seconds": sum(meter.stages[name]["seconds"] for name in STAGES[:-1]),
        "peak_host_bytes": int(max(0, whole.peak_bytes)),
        "peak_device_bytes": None,
    }
    return edges


def reference_bootstrap(values, groups, gene_i, gene_j, base_delta, positions, ci_alpha: float) -> dict:
    """delta_b = r_high_b - r_low_b of each edge, the resampled values of the edges' genes
    re-ranked with ``rankdata`` in every replicate; then mean, std, percentile CI, bias, p."""
    from scipy import stats

    from bootgpu.core.bootstrap import HIGH, LOW

    genes = np.unique(np.concatenate([gene_i, gene_j]))
    iu, ju = np.searchsorted(genes, gene_i), np.searchsorted(genes, gene_j)
    sub = [values[genes][:, g] for g in groups]  # (U, k) per group
    n_boot = positions[LOW].shape[0]
    deltas = np.empty((gene_i.shape[0], n_boot))
    with np.errstate(invalid="ignore", divide="ignore"):
        for b in range(n_boot):
            r = []
            for code in (LOW, HIGH):
                rk = stats.rankdata(sub[code][:, positions[code][b]], axis=1)
                rk -= rk.mean(axis=1, keepdims=True)
                norm = np.sqrt(np.sum(rk * rk, axis=1))
                r.append(np.sum(rk[iu] * rk[ju], axis=1) / (norm[iu] * norm[ju]))
            deltas[:, b] = r[1] - r[0]
    # r_high_b == r_low_b exactly (e.g. both 1 in a tight module) leaves +-1e-16 of rounding here,
    # which would decide the sign counts of boot_p by chance; such deltas are 0
    deltas[np.abs(deltas) < 1e-12] = 0.0
    mean = deltas.mean(axis=1)
    ci_low, ci_high = np.quantile(deltas, [ci_alpha / 2, 1 - ci_alpha / 2], axis=1)
    p = np.maximum(2 * np.minimum((deltas > 0).mean(axis=1), (deltas < 0).mean(axis=1)), 1.0 / n_boot)
    return {"boot_mean": mean, "boot_std": deltas.std(axis=1, ddof=1), "ci_low": ci_low, "ci_high": ci_high,
            "bias": mean - base_delta, "boot_p": p}
