"""The matrices `bootgpu bench` runs on: the synthetic ones (focus gene 0) and their defaults."""

from __future__ import annotations

SYNTHETIC = ("planted", "modular")


def synthetic_values(kind: str, genes: int, samples: int, planted: int):
    """The synthetic benchmark matrix (focus gene 0): ``planted`` (``synthetic.planted_matrix``, a
    latent-factor background with ``planted`` rewired pairs per class: few selected edges, like the
    random reference shape) or ``modular`` (``synthetic.modular_matrix``: co-expression modules
    that rewire as wholes, hundreds of thousands of selected edges at 20,000 x 60, like real data
    with small tails)."""
    from bootgpu import synthetic

    if kind == "modular":
        return synthetic.modular_matrix(genes, samples).values
    return synthetic.planted_matrix(genes, samples, planted, strength=0.6).values


def synthetic_description(kind: str) -> str:
    if kind == "modular":
        return "bootgpu.synthetic.modular_matrix(genes, samples)"
    return "bootgpu.synthetic.planted_matrix(genes, samples, planted, strength=0.6)"


def default_planted(n_genes: int) -> int:
    """Planted pairs per class: 300 (as scripts/time_focus_gene.py) but at most 1/16 of the genes,
    so most genes stay background."""
    return max(0, min(300, (n_genes - 1) // 16))
