"""Ranking: the LOW/HIGH split of a focus gene and every gene's base ranks in both groups
(``core.split``, ``core.ranks``, ``core.spearman.group_ranks``)."""

from __future__ import annotations

from bootgpu.bench import stage_ranking

from .common import MatrixBenchmark


class Ranking(MatrixBenchmark):
    def setup(self, matrices, backend, size):
        self.setup_backend(matrices, backend, size)

    def run(self):
        stage_ranking(self.backend, self.expr, 0, self.k_low, self.k_high)
        self.sync()

    def time_ranking(self, matrices, backend, size):
        self.run()

    def peakmem_ranking(self, matrices, backend, size):
        self.run()

    def track_ranking_peak_bytes(self, matrices, backend, size):
        return self.tracked_peak(self.run)

    track_ranking_peak_bytes.unit = "bytes"
