"""Bootstrap index generation: B x m positions for LOW and HIGH of one focus gene
(``core.draws``, splitmix64-pairs-v1)."""

from __future__ import annotations

from .common import Benchmark, safe_import

with safe_import():
    from bootgpu.bench import stage_draws


class Draws(Benchmark):
    stage = "draws"

    def setup(self, backend, size):
        self.setup_backend(backend, size)

    def run(self):
        stage_draws(self.backend, self.cfg, 0, self.k_low, self.k_high)
        self.sync()
