"""Reading the expression matrix a study starts from: the real ALL matrix (12,625 x 128,
gzipped TSV) through ``expression_io.read_expression``, as ``bootgpu run`` reads it."""

from __future__ import annotations

from .common import all_leukemia_path, safe_import

with safe_import():
    from bootgpu.expression_io import read_expression


class ReadExpression:
    timeout = 120

    def setup(self):
        self.path = all_leukemia_path()
        read_expression(self.path)  # the page cache warm, as on a second read

    def time_read_all_leukemia(self):
        read_expression(self.path)

    def peakmem_read_all_leukemia(self):
        read_expression(self.path)
