"""Expression matrices with planted differential co-expression, for tests and benchmarks.

Gene 0 is the focus gene.  ``planted_matrix``: planted pairs (a, b) get a correlation that depends
on which extreme population a sample belongs to; every other gene follows a few shared latent
factors, so the background has ordinary co-expression but no differential structure.
``modular_matrix``: co-expression modules that rewire as wholes (hundreds of thousands of
differential edges, small extreme groups), for real-data edge counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLANTED_CLASSES = ("disappear", "new", "sign_change", "stay")


@dataclass
class PlantedMatrix:
    values: np.ndarray  # (n_genes, n_samples) float64
    pairs: dict  # class -> list of (a, b) with a < b
    low: np.ndarray  # sample indices of the focus gene's LOW group
    high: np.ndarray


def planted_matrix(
    n_genes: int = 400,
    n_samples: int = 300,
    n_per_class: int = 4,
    *,
    low_frac: float = 0.2,
    high_frac: float = 0.2,
    strength: float = 0.9,
    n_factors: int = 5,
    seed: int = 0,
) -> PlantedMatrix:
    """A matrix whose focus gene 0 rewires ``n_per_class`` planted pairs of each class.

    For a planted pair, b = rho * a + sqrt(1 - rho^2) * noise within each group, with rho set
    per group: disappear (LOW strength, HIGH 0), new (0, strength), sign_change (strength,
    -strength), stay (strength, strength).  Samples outside both groups get rho = 0.
    """
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((n_factors, n_samples))
    loadings = rng.standard_normal((n_genes, n_factors)) * 0.3
    values = loadings @ factors + rng.standard_normal((n_genes, n_samples))
    focus = rng.permutation(n_samples).astype(np.float64)  # distinct values: no ties in the split
    values[0] = focus
    order = np.argsort(focus, kind="stable")
    k_low, k_high = int(n_samples * low_frac), int(n_samples * high_frac)
    low, high = order[:k_low], order[n_samples - k_high :]
    rho = {"disappear": (strength, 0.0), "new": (0.0, strength), "sign_change": (strength, -strength),
           "stay": (strength, strength)}  # fmt: skip
    genes = iter(range(1, n_genes))
    pairs: dict = {}
    for cls in PLANTED_CLASSES:
        pairs[cls] = []
        for _ in range(n_per_class):
            a, b = next(genes), next(genes)
            values[a] = rng.standard_normal(n_samples)
            noise = rng.standard_normal(n_samples)
            values[b] = noise
            for group, r in zip((low, high), rho[cls]):
                values[b, group] = r * values[a, group] + np.sqrt(1 - r * r) * noise[group]
            pairs[cls].append((a, b))
    return PlantedMatrix(values=values, pairs=pairs, low=low, high=high)


MODULE_MODES = ("sign_change", "disappear", "new", "stay")
MODULE_FRACTIONS = (0.06, 0.04, 0.025, 0.02)  # of the genes: (1200, 800, 500, 400) at 20,000 genes


def default_module_sizes(n_genes: int) -> tuple:
    """Module sizes of ``modular_matrix`` for ``n_genes`` genes (at least 2 genes a module)."""
    return tuple(max(2, int(round(n_genes * f))) for f in MODULE_FRACTIONS)


@dataclass
class ModularMatrix:
    values: np.ndarray  # (n_genes, n_samples) float64, focus gene 0
    modules: list  # (mode, gene indices) per module; sign_change modules flip their second half in HIGH
    low: np.ndarray
    high: np.ndarray


def modular_matrix(
    n_genes: int = 20000,
    n_samples: int = 60,
    module_sizes: tuple | None = None,
    *,
    modes: tuple = MODULE_MODES,
    low_frac: float = 0.2,
    high_frac: float = 0.2,
    noise: float = 0.2,
    n_factors: int = 10,
    seed: int = 0,
) -> ModularMatrix:
    """Expression with co-expression modules that rewire with focus gene 0, like real studies with
    small extreme groups (the default 60 samples give k = 12) and hundreds of thousands of
    differential edges.  ``module_sizes`` None: ``default_module_sizes(n_genes)``, i.e. (1200, 800,
    500, 400) at 20,000 genes and the same fractions of the genes at other sizes.

    Every gene follows a few shared latent factors plus noise (ordinary background co-expression);
    module i (``module_sizes[i]`` random genes, mode ``modes[i % len(modes)]``) follows its own
    factor f with ``noise`` on top, and its co-expression changes between the focus gene's LOW and
    HIGH samples: ``sign_change`` (the module's second half follows -f in HIGH: the pairs across the
    halves change sign), ``disappear`` (coherent in LOW only), ``new`` (HIGH only), ``stay`` (both;
    strong but not differential).  With the defaults, focus gene 0 selects about 800,000 edges
    (sig_diff at alpha 0.05), most of them in dense blocks of module genes.
    """
    if module_sizes is None:
        module_sizes = default_module_sizes(n_genes)
    if sum(module_sizes) > n_genes - 1:
        raise ValueError(f"modules of {sum(module_sizes)} genes do not fit in {n_genes - 1} non-focus genes")
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((n_factors, n_samples))
    values = (rng.standard_normal((n_genes, n_factors)) * 0.3) @ factors + rng.standard_normal((n_genes, n_samples))
    values[0] = rng.permutation(n_samples).astype(np.float64)  # distinct values: no ties in the split
    order = np.argsort(values[0], kind="stable")
    k_low, k_high = int(n_samples * low_frac), int(n_samples * high_frac)
    low, high = order[:k_low], order[n_samples - k_high:]
    genes = rng.permutation(np.arange(1, n_genes))
    modules, used = [], 0
    for i, size in enumerate(module_sizes):
        mode = modes[i % len(modes)]
        members = np.sort(genes[used:used + size])
        used += size
        f = rng.standard_normal(n_samples)
        block = f[None, :] + noise * rng.standard_normal((size, n_samples))
        if mode == "sign_change":
            block[size // 2:, high] = -f[high] + noise * rng.standard_normal((size - size // 2, high.shape[0]))
        elif mode == "disappear":
            block[:, high] = rng.standard_normal((size, high.shape[0]))
        elif mode == "new":
            block[:, low] = rng.standard_normal((size, low.shape[0]))
        values[members] = block
        modules.append((mode, members))
    return ModularMatrix(values=values, modules=modules, low=low, high=high)
