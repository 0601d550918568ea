"""Reading a study's results from Python: ``bootgpu.open_results(path_or_dir)``.

    >>> import bootgpu
    >>> res = bootgpu.open_results("out/")              # a study directory or a results.h5
    >>> res.focus_genes.head()                           # one row per focus gene (pandas)
    >>> res.edges("1007_s_at").nlargest(20, "abs_delta")  # gene ids (or row indices) as keys
    >>> res.samples("1007_s_at")["low"]                  # LOW sample ids

The file is opened lazily: ``open_results`` reads ``/meta`` only, ``focus_genes`` reads each focus
gene's stored counts and hubs row (never its edges), and ``edges(gene)`` reads that focus gene's
edges alone -- a study of 20,000 focus genes opens instantly.  Use it as a context manager, or call
``close()``, to release the file.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from bootgpu.errors import BootgpuError
from bootgpu.study.layout import StudyLayout
from bootgpu.results_io import EDGE_DATASETS, as_text, focus_record, read_focus_table
from bootgpu.results_schema import CHANGE_LABELS
from bootgpu.significance import join_significance, read_significance

EDGE_COLUMNS = (
    "gene_i", "gene_j", "gene_a", "gene_b", "r_low", "r_high", "delta", "abs_delta", "q_low", "q_high", "q_diff",
    "boot_mean", "boot_std", "ci_low", "ci_high", "bias", "boot_p", "robust", "change",
)  # fmt: skip


def open_results(path: str | os.PathLike) -> "Results":
    """The results of a study directory (its ``results.h5``) or of a results, shard or part file."""
    path = Path(path)
    if path.is_dir():
        path = StudyLayout(path).results
    if not path.is_file():
        raise BootgpuError(f"{path}: no results file (run `bootgpu run --out DIR` or `bootgpu merge DIR` first)")
    return Results(path)


def _as_stored(value) -> float:
    """A stored float32 as the shortest decimal that is the same float32 (0.7653846, not the
    float64 0.7653846144676208 that widening it gives): what GraphML and networkx users read."""
    return float(np.format_float_positional(np.float32(value), unique=True, trim="-"))


class Results:
    """One results file, read on demand (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._h5 = h5py.File(self.path, "r")
            self.meta = {key: (as_text(v) if isinstance(v, (bytes, str)) else v) for key, v in self._h5["meta"].attrs.items()}
        except (OSError, KeyError) as exc:
            raise BootgpuError(f"{self.path}: not a readable bootgpu results file ({exc})") from None

    def _read(self, grp, key: str):
        """A focus gene's dataset, whole; damage (a failed checksum) as one line that says how to
        rebuild it."""
        try:
            return grp[key][()]
        except (OSError, RuntimeError) as exc:
            focus = grp.name.rsplit("/", 1)[1]
            raise BootgpuError(f"{self.path}: focus gene {focus}: {key} is damaged ({str(exc).splitlines()[0]}); rerun "
                               f"the study's `bootgpu run` command: it keeps the sound focus genes and recomputes "
                               f"this one") from None

    # -- file handling --------------------------------------------------------------------------------
    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> "Results":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<bootgpu results {self.path}: {len(self.focus_index)} focus genes, {self.meta.get('n_genes')} genes>"

    # -- names ----------------------------------------------------------------------------------------
    @cached_property
    def gene_names(self) -> np.ndarray:
        return self._h5["gene_names"].asstr()[()]

    @cached_property
    def sample_names(self) -> np.ndarray:
        return self._h5["sample_names"].asstr()[()]

    @cached_property
    def _rows_by_name(self) -> dict:
        rows: dict = {}
        for i, name in enumerate(self.gene_names):
            rows.setdefault(name, i)  # duplicate ids: the first row (use the row index to pick another)
        return rows

    @cached_property
    def focus_index(self) -> list[int]:
        """The focus genes in this file (0-based rows), in file order."""
        return [int(name) for name in self._h5["focus"]]

    def row(self, gene) -> int:
        """The 0-based row of ``gene``: a gene id, or a row index (int, or '#I')."""
        if isinstance(gene, (int, np.integer)):
            row = int(gene)
        elif isinstance(gene, str) and gene.startswith("#") and gene[1:].isdigit():
            row = int(gene[1:])
        elif gene in self._rows_by_name:
            row = self._rows_by_name[gene]
        else:
            raise BootgpuError(f"{self.path}: no gene {gene!r} in this study")
        if not 0 <= row < len(self.gene_names):
            raise BootgpuError(f"{self.path}: row {row} is outside 0..{len(self.gene_names) - 1}")
        return row

    def _group(self, gene) -> h5py.Group:
        row = self.row(gene)
        key = str(row)
        if key not in self._h5["focus"]:
            focus = [self.gene_names[g] for g in self.focus_index]
            listed = ", ".join(focus[:10]) + (f" and {len(focus) - 10} more" if len(focus) > 10 else "")
            raise BootgpuError(f"{self.path}: {self.gene_names[row]} (row {row}) is not a focus gene of this study; "
                               f"its focus genes are {listed}")
        return self._h5["focus"][key]

    # -- tables ---------------------------------------------------------------------------------------
    @cached_property
    def focus_genes(self):
        """One row per focus gene, indexed by gene id, in file order: gene_idx (row), gene_id, its
        counts (``FOCUS_ATTRS``), the columns of its rewiring_hubs.tsv row (its rank there is not
        kept: rank by any column with ``sort_values``) and every network metric
        (docs/networks.md)."""
        import pandas as pd

        records = read_focus_table(self._h5)  # written with the file; older files: per focus gene
        if records is None:
            focus = self._h5["focus"]
            records = [focus_record(focus[name]) for name in focus]
        records = join_significance(records, self._significance_rows)
        return pd.DataFrame.from_records(records).set_index("gene_id", drop=False) if records else pd.DataFrame()

    @cached_property
    def _significance_rows(self) -> dict | None:
        """gene_idx -> columns of the study's gene_significance.tsv beside this results file (None
        when the permutation null has not been run: ``bootgpu null``, docs/null.md)."""
        if self.path.name != StudyLayout(self.path.parent).results.name:
            return None
        return read_significance(StudyLayout(self.path.parent).significance)

    @property
    def significance(self):
        """The study's gene_significance.tsv as a DataFrame (gene_idx, gene_id, and per metric the
        observed value, empirical p, BH q across focus genes and null values used; docs/null.md),
        or None when the permutation null has not been run.  ``focus_genes`` carries each metric's
        ``_p`` and ``_q`` columns too."""
        import pandas as pd

        path = StudyLayout(self.path.parent).significance
        if self._significance_rows is None:
            return None
        return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=["nan"], dtype={"gene_id": str})

    def network(self, gene, which: str = "diff", as_graph: bool = False):
        """Focus gene ``gene``'s LOW, HIGH or differential network (``which``), built from its stored
        edges with the study's edge filter (docs/networks.md): a symmetric scipy.sparse CSR matrix
        over all genes (values: delta), or with ``as_graph`` a networkx Graph of the genes with an
        edge (nodes: gene ids; edge attributes r_low, r_high, delta, change)."""
        from bootgpu.networks import EdgeFilter, adjacency, filter_edges

        if which not in ("low", "high", "diff"):
            raise BootgpuError(f"which must be low, high or diff, got {which!r}")
        grp = self._group(gene)
        edges = {key: self._read(grp, key) for key in EDGE_DATASETS}
        m = self.meta
        edge_filter = EdgeFilter(float(m.get("min_effect", 0.0)), float(m.get("corr_threshold", 0.0)),
                                 bool(m.get("ci_filter", True)))
        kept = filter_edges(edges, float(m["fdr_alpha"]), edge_filter)
        keep = np.ones(len(kept), dtype=bool) if which == "diff" else (kept.present_low if which == "low" else kept.present_high)
        if not as_graph:
            return adjacency(len(self.gene_names), kept.gene_i[keep], kept.gene_j[keep], kept.delta[keep].astype(np.float32))
        import networkx as nx

        graph = nx.Graph(focus=self.gene_names[self.row(gene)], network=which)
        names = self.gene_names
        for i, j, rl, rh, d, c in zip(kept.gene_i[keep], kept.gene_j[keep], kept.r_low[keep], kept.r_high[keep],
                                      kept.delta[keep], kept.change[keep]):
            graph.add_edge(names[i], names[j], r_low=_as_stored(rl), r_high=_as_stored(rh), delta=_as_stored(d),
                           change=CHANGE_LABELS[int(c)])
        return graph

    def edges(self, gene, robust_only: bool = False):
        """The selected edges of focus gene ``gene`` as a DataFrame: gene_i/gene_j (rows) and
        gene_a/gene_b (ids), the stored fields (float32 widened to float64), abs_delta, ``robust``
        (the bootstrap CI excludes 0) and ``change`` as a categorical of CHANGE_LABELS."""
        import pandas as pd

        grp = self._group(gene)
        data = {key: self._read(grp, key) for key in EDGE_DATASETS}
        names = self.gene_names
        out = {"gene_i": data["gene_i"].astype(np.int64), "gene_j": data["gene_j"].astype(np.int64)}
        out["gene_a"], out["gene_b"] = names[out["gene_i"]], names[out["gene_j"]]
        for key in EDGE_DATASETS:
            if key not in ("gene_i", "gene_j", "change"):
                out[key] = data[key].astype(np.float64)
        out["abs_delta"] = np.abs(out["delta"])
        out["robust"] = (data["ci_low"] > 0) | (data["ci_high"] < 0)
        out["change"] = pd.Categorical.from_codes(data["change"].astype(np.int64), categories=list(CHANGE_LABELS))
        frame = pd.DataFrame(out, columns=list(EDGE_COLUMNS))
        return frame[frame["robust"]].reset_index(drop=True) if robust_only else frame

    def pair_significance(self, gene):
        """Every gene pair of focus gene ``gene`` (a study run with ``--store common`` or ``full``), in
        condensed order (pairs (i, j), i < j, row-major; ``scipy.spatial.distance.squareform`` turns
        a column into a genes x genes matrix): a DataFrame of bool columns sig_low, sig_high,
        sig_diff (q < fdr_alpha in each test), and with ``full`` float32 r_low, r_high."""
        import pandas as pd

        from bootgpu.results_io import read_pairs

        pairs = read_pairs(self._group(gene), len(self.gene_names))
        if pairs is None:
            raise BootgpuError(f"{self.path}: this study stored only the selected edges (--store minimal); "
                               f"run it with --store common or full to keep every pair's significance")
        return pd.DataFrame(pairs)

    def samples(self, gene) -> dict:
        """{"low": ids, "high": ids} of focus gene ``gene``'s extreme groups, in ascending order of
        its expression."""
        grp = self._group(gene)
        return {which: list(self.sample_names[self._read(grp, f"{which}_samples")]) for which in ("low", "high")}

    def partners(self, gene, robust_only: bool = True):
        """The edges of focus gene ``gene`` that involve the focus gene itself (its direct partners),
        by |delta|, with the partner's id in column ``partner``."""
        frame = self.edges(gene, robust_only=robust_only)
        row = self.row(gene)
        mine = frame[(frame["gene_i"] == row) | (frame["gene_j"] == row)].copy()
        mine["partner"] = np.where(mine["gene_i"] == row, mine["gene_b"], mine["gene_a"])
        return mine.sort_values("abs_delta", ascending=False, kind="stable").reset_index(drop=True)
