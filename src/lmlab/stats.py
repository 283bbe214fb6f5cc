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


def cluster_bootstrap(df: pd.DataFrame, statistic, cluster: str, unit: str, n_boot: int = 200, seed: int = 0,
                      min_clusters: int = 3) -> pd.DataFrame:
    """`statistic` over resamples of `df` that keep together what is not independent: whole
    `cluster`s (e.g. model sizes) drawn with replacement, and within each drawn copy its `unit`s
    (e.g. seeds, each a run's whole trajectory over its budgets) drawn with replacement.

    Each resample's rows carry `_copy`, the index of the cluster draw they came from, so that a
    statistic can keep a cluster drawn twice as two clusters. Resamples with fewer than
    `min_clusters` distinct clusters are drawn again. `statistic(resample)` returns a dict (or
    None to drop the draw, e.g. when a fit fails); the result has one row per kept draw."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    for name in (cluster, unit):
        if name not in df.columns:
            raise ValueError(f"df has no column {name!r}; its columns are {list(df.columns)}")
    clusters = list(dict.fromkeys(df[cluster]))
    if len(clusters) < min_clusters:
        raise ValueError(f"df must hold at least min_clusters={min_clusters} distinct {cluster}s, got {len(clusters)}")
    parts = {c: dict(list(g.groupby(unit))) for c, g in df.groupby(cluster)}
    rng, draws = np.random.default_rng(seed), []
    while len(draws) < n_boot:
        chosen = rng.choice(len(clusters), size=len(clusters))
        if len(set(chosen)) < min_clusters:
            continue
        pieces = []
        for copy, c in enumerate(chosen):
            units = parts[clusters[c]]
            keys = list(units)
            for k in rng.choice(len(keys), size=len(keys)):
                pieces.append(units[keys[k]].assign(_copy=copy))
        value = statistic(pd.concat(pieces, ignore_index=True))
        draws.append(value)
    return pd.DataFrame([d for d in draws if d is not None])
