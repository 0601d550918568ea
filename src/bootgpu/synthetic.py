"""Expression matrices with planted differential co-expression, for tests and benchmarks.

Gene 0 is the focus gene.  ``planted_matrix``: planted pairs (a, b) get a correlation that depends
on which extreme population a sample belongs to; every other gene follows a few shared latent
factors, so the background has ordinary co-expression but no differential structure.
``modular_matrix``: co-expression modules that rewire as wholes (hundreds of thousands of
differential edges, small extreme groups), for real-data edge counts.  ``partner_matrix``: gene 0
rewires its own partners (and they theirs), a known L1 / L2 neighbourhood for the network metrics.
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


PARTNER_CLASSES = ("disappear", "new", "sign_change", "stay")
PARTNER_LOADINGS = {"disappear": (1.0, 0.0), "new": (0.0, 1.0), "sign_change": (1.0, -1.0), "stay": (1.0, 1.0)}
PRESENT_R, DIFFERENT_R = 0.5, 0.5  # expected |r| of a present edge; expected |r_high - r_low| of a differential one


@dataclass
class PartnerMatrix:
    values: np.ndarray  # (n_genes, n_samples) float64, focus gene 0
    partners: dict  # class -> list of genes whose co-expression with gene 0 changes so (or stays)
    second_hop: dict  # partner -> its own planted partner (a gene correlated with nothing else)
    loadings: np.ndarray  # (2, n_genes): each gene's planted correlation with gene 0 in LOW, HIGH
    links: dict  # (a, b), a < b -> (r_low, r_high) of the second-hop pairs
    low: np.ndarray
    high: np.ndarray

    def expected_r(self, a: int, b: int) -> tuple:
        """The planted (r_low, r_high) of genes a and b: through gene 0 (product of loadings; a
        loading itself for gene 0), or a second-hop link."""
        a, b = min(a, b), max(a, b)
        if (a, b) in self.links:
            return self.links[(a, b)]
        if a == 0:
            return tuple(float(x) for x in self.loadings[:, b])
        return tuple(float(x) for x in self.loadings[:, a] * self.loadings[:, b])

    def expected_change(self, a: int, b: int) -> str | None:
        """The class of change the model plants on (a, b), or None if it is not differential:
        present in a group when the planted |r| >= PRESENT_R, differential when the planted
        |r_high - r_low| >= DIFFERENT_R (planted values are 0, strength, strength^2, or sums of two)."""
        r_low, r_high = self.expected_r(a, b)
        if abs(r_high - r_low) < DIFFERENT_R:
            return None
        low, high = abs(r_low) >= PRESENT_R, abs(r_high) >= PRESENT_R
        if low and high:
            return "sign_change" if r_low * r_high < 0 else ("strengthen" if abs(r_high) > abs(r_low) else "weaken")
        return "disappear" if low else ("new" if high else "subthreshold")


def _standardised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / x.std()


def partner_matrix(
    n_genes: int = 400,
    n_samples: int = 300,
    n_per_class: int = 4,
    *,
    low_frac: float = 0.2,
    high_frac: float = 0.2,
    strength: float = 0.9,
    n_factors: int = 5,
    seed: int = 0,
) -> PartnerMatrix:
    """A matrix in which focus gene 0 rewires its own partners, for the network metrics.

    ``n_per_class`` partners per class of PARTNER_CLASSES: within each of gene 0's extreme groups a
    partner is loading * strength * z + noise, z being gene 0's standardised values there, with
    loadings (LOW, HIGH) disappear (1, 0), new (0, 1), sign_change (1, -1), stay (1, 1); so
    partners are also correlated with each other (strength^2 times their loadings' product).  Every
    disappear partner b gets a second-hop partner c correlated with b in HIGH only, where b is
    independent of gene 0 (a "new" edge b-c, and c uncorrelated with gene 0 and every other gene);
    every new partner one correlated in LOW only.  Other genes: shared latent factors plus noise
    (as ``planted_matrix``).  ``expected_change`` gives the planted class of any pair.
    """
    rng = np.random.default_rng(seed)
    values = (rng.standard_normal((n_genes, n_factors)) * 0.3) @ rng.standard_normal((n_factors, n_samples))
    values += rng.standard_normal((n_genes, n_samples))
    values[0] = rng.permutation(n_samples).astype(np.float64)  # distinct values: no ties in the split
    order = np.argsort(values[0], kind="stable")
    low, high = order[: int(n_samples * low_frac)], order[n_samples - int(n_samples * high_frac):]
    groups = (low, high)
    loadings = np.zeros((2, n_genes))
    genes = iter(range(1, n_genes))
    partners: dict = {cls: [next(genes) for _ in range(n_per_class)] for cls in PARTNER_CLASSES}
    for cls, members in partners.items():
        for b in members:
            values[b] = rng.standard_normal(n_samples)
            for g, (group, load) in enumerate(zip(groups, PARTNER_LOADINGS[cls])):
                rho = strength * load
                loadings[g, b] = rho
                values[b, group] = rho * _standardised(values[0, group]) + np.sqrt(1 - rho * rho) * values[b, group]
    second_hop, links = {}, {}
    for cls, g in (("disappear", 1), ("new", 0)):  # the group in which the partner is independent of gene 0
        for b in partners[cls]:
            c = next(genes)
            values[c] = rng.standard_normal(n_samples)
            group = groups[g]
            values[c, group] = strength * _standardised(values[b, group]) + np.sqrt(1 - strength**2) * values[c, group]
            second_hop[b] = c
            links[(b, c)] = (0.0, strength) if g == 1 else (strength, 0.0)
    return PartnerMatrix(values, partners, second_hop, loadings, links, low, high)
