"""One whole focus gene: ``pipeline.analyse_focus`` end to end (split, ranks, pair tests, BH,
selection, bootstrap, summaries, results moved to the host)."""

from __future__ import annotations

from bootgpu.pipeline import analyse_focus

from .common import MatrixBenchmark


class FocusGene(MatrixBenchmark):
    def setup(self, matrices, backend, size):
        self.setup_backend(matrices, backend, size)

    def run(self):
        analyse_focus(self.backend, self.expr, 0, self.cfg, self.plan, self.k_low, self.k_high)
        self.sync()

    def time_focus_gene(self, matrices, backend, size):
        self.run()

    def peakmem_focus_gene(self, matrices, backend, size):
        self.run()

    def track_focus_gene_peak_bytes(self, matrices, backend, size):
        return self.tracked_peak(self.run)

    track_focus_gene_peak_bytes.unit = "bytes"
