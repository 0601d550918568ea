"""Bootstrap correlation of the selected edges: B resamples, re-ranked through the draw counts,
and their summaries (``core.bootstrap``), in the planner's edge and replicate chunks."""

from __future__ import annotations

import numpy as np

from .common import (MatrixBenchmark, analysis, get_backend_or_skip, make_matrix, make_plan, safe_import,
                     sizes_to_run)

with safe_import():
    from bootgpu.bench import stage_correlations, stage_tests_bh
    from bootgpu.pipeline import bootstrap_edges, rank_groups


class BootstrapEdges(MatrixBenchmark):
    stage = "bootstrap"

    def setup_cache(self):
        """Matrices and their selected edges (gene_i, gene_j, r_low, r_high), found once on NumPy."""
        numpy = get_backend_or_skip("numpy")
        out = {}
        for size in sizes_to_run():
            values = make_matrix(size)
            cfg, k_low, k_high = analysis(size)
            groups = rank_groups(numpy, values, 0, k_low, k_high)
            sel = stage_tests_bh(numpy, stage_correlations(numpy, groups, make_plan(numpy, size, values.shape[0])), cfg)
            out[size] = (values, {key: np.asarray(sel[key]) for key in ("gene_i", "gene_j", "r_low", "r_high")})
        return out

    setup_cache.timeout = 600

    def setup(self, data, backend, size):
        values, edges = data.get(size, (None, None))  # absent: a size skipped in setup_backend
        self.setup_backend({size: values}, backend, size)
        self.groups = rank_groups(self.backend, self.expr, 0, self.k_low, self.k_high)
        self.edges = {key: self.backend.to_device(value) for key, value in edges.items()}
        self.sync()

    def run(self):
        bootstrap_edges(self.backend, self.groups, self.edges, 0, self.cfg, self.plan)
        self.sync()
