"""Base correlations of one focus gene: Spearman r of every gene pair in LOW and HIGH, one pass
over pair space in the planner's row blocks (``core.spearman.PairBlocks``, ``pipeline.PairPasses``;
with the plan's pair cache, as the pipeline keeps it for the BH passes)."""

from __future__ import annotations

from .common import MatrixBenchmark, safe_import

with safe_import():
    from bootgpu.bench import stage_correlations, stage_ranking


class BaseCorrelations(MatrixBenchmark):
    stage = "base_correlations"

    def setup(self, matrices, backend, size):
        self.setup_backend(matrices, backend, size)
        self.low, self.high = stage_ranking(self.backend, self.expr, 0, self.k_low, self.k_high)
        self.sync()

    def run(self):
        stage_correlations(self.backend, self.low, self.high, self.plan)
        self.sync()
