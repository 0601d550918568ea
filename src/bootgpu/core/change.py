"""Step 5a: the class of change of each edge from LOW to HIGH, from significance and sign."""

from __future__ import annotations

from bootgpu.results_schema import CHANGE_LABELS  # noqa: F401 (the labels of the codes below)

SUBTHRESHOLD, DISAPPEAR, NEW, SIGN_CHANGE, STRENGTHEN, WEAKEN = range(6)


def classify_change(xp, sig_low, sig_high, r_low, r_high):
    """int8 codes (index into CHANGE_LABELS):

    disappear   significant in LOW only          new        significant in HIGH only
    sign_change significant in both, signs differ
    strengthen  significant in both, same sign, |r_high| > |r_low|
    weaken      significant in both, same sign, |r_high| < |r_low|
    subthreshold differential, but significant in neither group alone (or equally strong in both)
    """
    both = sig_low & sig_high
    same_sign = (r_low > 0) == (r_high > 0)
    code = xp.full(r_low.shape, SUBTHRESHOLD, dtype=xp.int8)
    code = xp.where(sig_low & ~sig_high, xp.asarray(DISAPPEAR, dtype=xp.int8), code)
    code = xp.where(~sig_low & sig_high, xp.asarray(NEW, dtype=xp.int8), code)
    code = xp.where(both & ~same_sign, xp.asarray(SIGN_CHANGE, dtype=xp.int8), code)
    stronger = xp.abs(r_high) > xp.abs(r_low)
    weaker = xp.abs(r_high) < xp.abs(r_low)
    code = xp.where(both & same_sign & stronger, xp.asarray(STRENGTHEN, dtype=xp.int8), code)
    code = xp.where(both & same_sign & weaker, xp.asarray(WEAKEN, dtype=xp.int8), code)
    return code
