"""Bootstrap index generation: B x m positions for LOW and HIGH of one focus gene
(``core.draws``, splitmix64-pairs-v1)."""

from __future__ import annotations

from bootgpu.bench import stage_draws

from .common import Benchmark


class Draws(Benchmark):
    def setup(self, backend, size):
        self.setup_backend(backend, size)

    def run(self):
        stage_draws(self.backend, self.cfg, 0, self.k_low, self.k_high)
        self.sync()

    def time_draws(self, backend, size):
        self.run()

    def peakmem_draws(self, backend, size):
        self.run()

    def track_draws_peak_bytes(self, backend, size):
        return self.tracked_peak(self.run)

    track_draws_peak_bytes.unit = "bytes"
