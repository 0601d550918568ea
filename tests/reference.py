"""An independent, slow implementation of the analysis for one focus gene: loops, scipy and
statsmodels, written from the method description rather than from bootgpu's code.

It takes the bootstrap positions from ``draws`` so both implementations see the same resamples.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

LABELS = ("subthreshold", "disappear", "new", "sign_change", "strengthen", "weaken")


def spearman_matrix(x):
    """(G, G) Spearman matrix of rows of x (G, k), via scipy (NaN for a constant row)."""
    g = x.shape[0]
    out = np.full((g, g), np.nan)
    for i in range(g):
        for j in range(i, g):
            if np.ptp(x[i]) == 0 or np.ptp(x[j]) == 0:
                continue
            out[i, j] = out[j, i] = stats.spearmanr(x[i], x[j]).statistic
    return out


def t_pvalue(r, k):
    df = k - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt(df / ((1 - r) * (1 + r)))
    return 2 * stats.t.sf(np.abs(t), df)


def fisher_pvalue(r_low, r_high, k_low, k_high):
    z_l = np.arctanh(np.clip(r_low, -0.9999, 0.9999))
    z_h = np.arctanh(np.clip(r_high, -0.9999, 0.9999))
    se = np.sqrt(1 / (k_low - 3) + 1 / (k_high - 3))
    return 2 * stats.norm.sf(np.abs(z_h - z_l) / se)


def classify(sig_low, sig_high, r_low, r_high):
    if sig_low and not sig_high:
        return 1
    if sig_high and not sig_low:
        return 2
    if sig_low and sig_high:
        if np.sign(r_low) != np.sign(r_high):
            return 3
        if abs(r_high) > abs(r_low):
            return 4
        if abs(r_high) < abs(r_low):
            return 5
    return 0


def reference_focus(values, focus, *, low_frac, high_frac, n_bootstrap, bootstrap_frac, fdr_alpha,
                    ci_alpha, edge_selection, draws):
    """draws(group_code, k, m) -> (B, m) positions into the group (0 = LOW, 1 = HIGH)."""
    n = values.shape[1]
    k_low, k_high = int(n * low_frac), int(n * high_frac)
    order = np.argsort(values[focus], kind="stable")
    low, high = order[:k_low], order[n - k_high:]
    r_low_m = spearman_matrix(values[:, low])
    r_high_m = spearman_matrix(values[:, high])
    iu, ju = np.triu_indices(values.shape[0], 1)
    r_low, r_high = r_low_m[iu, ju], r_high_m[iu, ju]
    valid = np.isfinite(r_low) & np.isfinite(r_high)
    iu, ju, r_low, r_high = iu[valid], ju[valid], r_low[valid], r_high[valid]
    p = {
        "low": t_pvalue(r_low, k_low),
        "high": t_pvalue(r_high, k_high),
        "diff": fisher_pvalue(r_low, r_high, k_low, k_high),
    }
    q = {name: multipletests(pv, method="fdr_bh")[1] for name, pv in p.items()}
    sig = {name: qv < fdr_alpha for name, qv in q.items()}
    sig_edges = (sig["low"] | sig["high"]) & sig["diff"]
    chosen = sig["diff"] if edge_selection == "sig_diff" else sig_edges
    attrs = {
        "k_low": k_low, "k_high": k_high, "n_tests": int(valid.sum()), "n_nan": int((~valid).sum()),
        "n_sig_low": int(sig["low"].sum()), "n_sig_high": int(sig["high"].sum()),
        "n_sig_diff": int(sig["diff"].sum()), "n_sig_edges": int(sig_edges.sum()),
    }
    m_low, m_high = int(k_low * bootstrap_frac), int(k_high * bootstrap_frac)
    pos_low, pos_high = draws(0, k_low, m_low), draws(1, k_high, m_high)
    rows = []
    for e in np.flatnonzero(chosen):
        i, j = iu[e], ju[e]
        deltas = np.empty(n_bootstrap)
        for b in range(n_bootstrap):
            s_low, s_high = low[pos_low[b]], high[pos_high[b]]
            rl = stats.spearmanr(values[i, s_low], values[j, s_low]).statistic
            rh = stats.spearmanr(values[i, s_high], values[j, s_high]).statistic
            deltas[b] = rh - rl
        delta = r_high[e] - r_low[e]
        ci = np.quantile(deltas, [ci_alpha / 2, 1 - ci_alpha / 2])
        pval = max(2 * min(np.mean(deltas > 0), np.mean(deltas < 0)), 1 / n_bootstrap)
        rows.append({
            "gene_i": i, "gene_j": j, "r_low": r_low[e], "r_high": r_high[e], "delta": delta,
            "q_low": q["low"][e], "q_high": q["high"][e], "q_diff": q["diff"][e],
            "boot_mean": deltas.mean(), "boot_std": deltas.std(ddof=1), "ci_low": ci[0], "ci_high": ci[1],
            "bias": deltas.mean() - delta, "boot_p": pval,
            "change": classify(sig["low"][e], sig["high"][e], r_low[e], r_high[e]),
        })
    edges = {key: np.array([row[key] for row in rows]) for key in (rows[0] if rows else {})}
    attrs["n_robust"] = int(np.sum((edges["ci_low"] > 0) | (edges["ci_high"] < 0))) if rows else 0
    every = {}  # every pair in condensed order (undefined r: not significant, r NaN), as --store full keeps
    for name in ("low", "high", "diff"):
        every[f"sig_{name}"] = np.zeros(valid.shape[0], dtype=bool)
        every[f"sig_{name}"][valid] = sig[name]
    for name, r in (("r_low", r_low_m), ("r_high", r_high_m)):
        every[name] = np.full(valid.shape[0], np.nan)
        every[name][valid] = r[np.triu_indices(values.shape[0], 1)][valid]
    return {"attrs": attrs, "low_samples": low, "high_samples": high, "edges": edges, "p": p, "q": q, "pairs": every}
