"""One whole focus gene: ``pipeline.analyse_focus`` end to end (split, ranks, pair tests, BH,
selection, bootstrap, summaries, results moved to the host)."""

from __future__ import annotations

from .common import MatrixBenchmark, safe_import

with safe_import():
    from bootgpu.pipeline import analyse_focus


class FocusGene(MatrixBenchmark):
    stage = "focus_gene"

    def setup(self, matrices, backend, size):
        self.setup_backend(matrices, backend, size)

    def run(self):
        analyse_focus(self.backend, self.expr, 0, self.cfg, self.plan, self.k_low, self.k_high)
        self.sync()
