"""The BH step: exact Benjamini-Hochberg for the three tests over every pair (histogram pass,
thresholds, selection, q of the selected edges; ``core.fdr``), on pair statistics computed in setup."""

from __future__ import annotations

from .common import MatrixBenchmark, safe_import

with safe_import():
    from bootgpu.bench import stage_correlations, stage_tests_bh
    from bootgpu.pipeline import rank_groups


class BenjaminiHochberg(MatrixBenchmark):
    stage = "bh"

    def setup(self, matrices, backend, size):
        self.setup_backend(matrices, backend, size)
        groups = rank_groups(self.backend, self.expr, 0, self.k_low, self.k_high)
        self.passes = stage_correlations(self.backend, groups, self.plan)
        self.sync()

    def run(self):
        stage_tests_bh(self.backend, self.passes, self.cfg)
        self.sync()
