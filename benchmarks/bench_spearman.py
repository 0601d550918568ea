"""Base correlations of one focus gene: Spearman r of every gene pair in LOW and HIGH, one pass
over pair space in the planner's row blocks (``core.spearman.PairBlocks``, ``pipeline.pair_passes``;
with the plan's pair cache, as the pipeline keeps it for the BH passes)."""

from __future__ import annotations

from .common import MatrixBenchmark, safe_import

with safe_import():
    from bootgpu.bench import stage_correlations
    from bootgpu.pipeline import rank_groups


class BaseCorrelations(MatrixBenchmark):
    stage = "base_correlations"

    def setup(self, matrices, backend, size):
        self.setup_backend(matrices, backend, size)
        self.groups = rank_groups(self.backend, self.expr, 0, self.k_low, self.k_high)
        self.sync()

    def run(self):
        stage_correlations(self.backend, self.groups, self.plan)
        self.sync()
