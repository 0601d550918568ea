"""Step 3c: per-pair tests.  Each p-value is a non-increasing function of a statistic s >= 0,
which is what lets the FDR step bin pairs by s and evaluate p only where it matters.

- t-test of r = 0 with df = k - 2: s = |r|, p = I_x(df/2, 1/2) with x = (1 - s)(1 + s)
  (the two-sided Student-t p-value written through the regularised incomplete beta).
- Fisher-Z test of r_high vs r_low: z = arctanh(clip(r, -0.9999, 0.9999)) as the original does,
  s = |z_high - z_low|, p = erfc(s / SE / sqrt 2), SE = sqrt(1/(k_low - 3) + 1/(k_high - 3)).

A group's r takes few distinct values (``core.fdr.SpearmanLevels``), so the pipeline reads z from a
table built with ``z_transform`` over those values instead of evaluating arctanh per pair: the
same function of the same float64 r, hence the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

R_CLIP = 0.9999


def z_transform(xp, r):
    """Fisher's z of correlations r, clipped as the original does."""
    return xp.atanh(xp.clip(r, -R_CLIP, R_CLIP))


@dataclass(frozen=True)
class TTest:
    """t-test of zero correlation in one group of ``k`` samples."""

    k: int

    @property
    def s_max(self) -> float:
        return 1.0

    def statistic(self, xp, r_low, r_high, which: str):
        return xp.abs(r_low if which == "low" else r_high)

    def pvalue(self, backend, s):
        xp = backend.xp
        x = xp.clip((1.0 - s) * (1.0 + s), 0.0, 1.0)
        return backend.betainc((self.k - 2) / 2.0, 0.5, x)


@dataclass(frozen=True)
class FisherTest:
    """Fisher-Z test of r_high versus r_low."""

    k_low: int
    k_high: int

    @property
    def se(self) -> float:
        return math.sqrt(1.0 / (self.k_low - 3) + 1.0 / (self.k_high - 3))

    @property
    def s_max(self) -> float:
        return 2.0 * math.atanh(R_CLIP)

    def statistic(self, xp, r_low, r_high, which: str = "diff"):
        return xp.abs(z_transform(xp, r_high) - z_transform(xp, r_low))

    def pvalue(self, backend, s):
        return backend.erfc(s / (self.se * math.sqrt(2.0)))
