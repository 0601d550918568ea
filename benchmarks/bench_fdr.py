"""The BH step: exact Benjamini-Hochberg for the three tests over every pair (histogram pass,
thresholds, selection, q of the selected edges; ``core.fdr``), on pair statistics computed in setup."""

from __future__ import annotations

from bootgpu.bench import stage_correlations, stage_ranking, stage_tests_bh

from .common import MatrixBenchmark


class BenjaminiHochberg(MatrixBenchmark):
    def setup(self, matrices, backend, size):
        self.setup_backend(matrices, backend, size)
        low, high = stage_ranking(self.backend, self.expr, 0, self.k_low, self.k_high)
        self.passes = stage_correlations(self.backend, low, high, self.plan)
        self.sync()

    def run(self):
        stage_tests_bh(self.backend, self.passes, self.cfg)
        self.sync()

    def time_bh(self, matrices, backend, size):
        self.run()

    def peakmem_bh(self, matrices, backend, size):
        self.run()

    def track_bh_peak_bytes(self, matrices, backend, size):
        return self.tracked_peak(self.run)

    track_bh_peak_bytes.unit = "bytes"
