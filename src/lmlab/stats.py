"""Seed noise, in numbers: the statistics every claimed difference in the book is checked with.

A seed changes the initialisation, the data order and the dropout masks, so runs at
different seeds are independent draws of "this setting". A difference between two
settings is real when it clears their seed noise; these helpers say by how much.
"""

import numpy as np
import pandas as pd
from scipy import stats


def mean_difference(a, b) -> tuple[float, float]:
    """mean(a) − mean(b) of two sets of per-seed results, and its standard error
    √(s_a²/n_a + s_b²/n_b): the seed noise a difference between two settings must exceed."""
    a, b = pd.Series(a, dtype=float), pd.Series(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a and b must hold at least two seeds each, got {len(a)} and {len(b)}")
    return a.mean() - b.mean(), (a.var() / len(a) + b.var() / len(b)) ** 0.5


def t_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-seed results and its Student-t interval."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        raise ValueError(f"values must hold at least two seeds, got {len(x)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)
