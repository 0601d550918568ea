"""Ranking: the LOW/HIGH split of a focus gene and every gene's base ranks in both groups
(``core.split``, ``core.ranks``, ``pipeline.rank_groups``)."""

from __future__ import annotations

from .common import MatrixBenchmark, safe_import

with safe_import():
    from bootgpu.pipeline import rank_groups


class Ranking(MatrixBenchmark):
    stage = "ranking"

    def setup(self, matrices, backend, size):
        self.setup_backend(matrices, backend, size)

    def run(self):
        rank_groups(self.backend, self.expr, 0, self.k_low, self.k_high)
        self.sync()
