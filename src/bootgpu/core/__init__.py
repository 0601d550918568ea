"""The analysis, one step per module, written once against an array namespace ``xp``.

split -> draws -> ranks -> spearman (pair blocks) -> significance (t, Fisher) -> fdr (BH)
-> bootstrap (selected edges) -> change (class of each edge).  Nothing here imports NumPy or
CuPy for arrays; host work goes through the backend explicitly.
"""
