"""Ranking: the LOW/HIGH split of a focus gene and every gene's base ranks in both groups
(``core.split``, ``core.ranks``, ``core.spearman.group_ranks``)."""

from __future__ import annotations

from .common import MatrixBenchmark, safe_import

with safe_import():
    from bootgpu.bench import stage_ranking


class Ranking(MatrixBenchmark):
    stage = "ranking"

    def setup(self, matrices, backend, size):
        self.setup_backend(matrices, backend, size)

    def run(self):
        stage_ranking(self.backend, self.expr, 0, self.k_low, self.k_high)
        self.sync()
