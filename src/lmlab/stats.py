"""Seed noise, in numbers: the statistics every claimed difference in the book is checked with.

A seed changes the initialisation, the data order and the dropout masks, so runs at
different seeds are independent draws of "this setting". A difference between two
settings is real when it clears their seed noise; these helpers say by how much.
Where the unit of noise is not a seed but a prompt (many texts from one model), resampling
the units does the same job: `bootstrap_weights` draws bootstrap resamples (for means),
`half_samples` random halves without replacement (the delete-half jackknife, for pooled
statistics such as distinct-n, which a resample with repeated units would bias), each drawn
once so that statistics computed with the same weights are paired.
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


def t_half_width(values, confidence: float = 0.95) -> float:
    """The half-width of `t_interval`: what a table or an error bar puts after "±"."""
    mean, _, high = t_interval(values, confidence)
    return high - mean


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


def paired_interval(a, b, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of the per-seed differences a − b, with their Student-t interval: two
    settings run at the same seeds share the initialisation and the data order, so each seed is a
    pair and the difference within a pair carries less noise than two independent means."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"a and b must hold one result per seed each, got {len(a)} and {len(b)}")
    return t_interval(a - b, confidence)


def bootstrap_weights(n: int, resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """(resamples, n) counts: how often each of n units (prompts, phrases) is drawn in each of
    `resamples` resamples with replacement. A statistic that takes weights over units gives its
    bootstrap replicates in one call, and two statistics computed with the same weights give
    paired replicates, whose difference is the bootstrap of their difference."""
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer of at least 2 units, got {n!r}")
    if not isinstance(resamples, int) or resamples < 10:
        raise ValueError(f"resamples must be an integer of at least 10, got {resamples!r}")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1 / n), size=resamples).astype(np.float64)


def half_samples(n: int, resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """(resamples, n) weights of 0 and 1: each row a random half (n // 2) of the n units, drawn
    without replacement. The spread of a statistic over random halves estimates the spread of the
    statistic on all n (the delete-half jackknife: Shao and Wu 1989), and no unit is counted
    twice, which keeps pooled statistics such as distinct-n unbiased by duplicates; the halves'
    own level differs from the full sample's, so intervals are centred on it (`centered_interval`)."""
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer of at least 2 units, got {n!r}")
    if not isinstance(resamples, int) or resamples < 10:
        raise ValueError(f"resamples must be an integer of at least 10, got {resamples!r}")
    chosen = np.argsort(np.random.default_rng(seed).random((resamples, n)), axis=1)[:, : n // 2]
    weights = np.zeros((resamples, n))
    np.put_along_axis(weights, chosen, 1.0, axis=1)
    return weights


def centered_interval(point: float, replicates, confidence: float = 0.95) -> tuple[float, float]:
    """(low, high): the point estimate plus the quantiles of the replicates' deviations from their
    mean: the replicates give the spread, the full sample the level."""
    x = np.asarray(replicates, dtype=float)
    x = x[np.isfinite(x)]
    low, high = percentile_interval(x - x.mean(), confidence)
    return float(point + low), float(point + high)


def percentile_interval(replicates, confidence: float = 0.95) -> tuple[float, float]:
    """The percentile bootstrap interval (low, high) of a statistic's replicates."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    x = np.asarray(replicates, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 10:
        raise ValueError(f"replicates must hold at least 10 finite values, got {len(x)}")
    return float(np.quantile(x, (1 - confidence) / 2)), float(np.quantile(x, (1 + confidence) / 2))


def bootstrap_interval(values, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
                       ) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-unit values (one per prompt, phrase, …) and its
    percentile bootstrap interval over the units."""
    x = np.asarray(values, dtype=float)
    w = bootstrap_weights(len(x), resamples, seed)
    low, high = percentile_interval(w @ x / len(x), confidence)
    return float(x.mean()), low, high


def _restrict(counts, cols: np.ndarray):
    """A sparse (units × items) matrix with its columns renumbered as positions in `cols` (sorted,
    holding every column used), so that dense products stay as wide as the items present."""
    from scipy import sparse

    local = np.searchsorted(cols, counts.indices)
    return sparse.csr_matrix((counts.data, local, counts.indptr), shape=(counts.shape[0], len(cols))).tocsc()


def distinct_share(counts, weights: np.ndarray, chunk: int = 200) -> np.ndarray:
    """Distinct items over all items, pooled over units drawn with `weights` (resamples × units):
    `counts` is a sparse (units × items) matrix of how often each unit holds each item (e.g. each
    text each n-gram). NaN where the drawn units hold no item at all."""
    cols = np.unique(counts.indices)
    if not len(cols):
        return np.full(len(weights), np.nan)
    c = _restrict(counts, cols)
    present = np.concatenate([((weights[i : i + chunk] > 0) @ (c > 0)) > 0 for i in range(0, len(weights), chunk)])
    with np.errstate(invalid="ignore"):
        return present.sum(1) / (weights @ np.asarray(c.sum(1)).ravel())


def js_divergence(counts, reference_counts, weights: np.ndarray, chunk: int = 200) -> np.ndarray:
    """The Jensen–Shannon divergence in bits (0: the same distribution, 1: disjoint) between the
    items of units drawn with `weights` and the items of every reference unit: sparse (units ×
    items) counts over one shared numbering of items. The reference is not resampled."""
    cols = np.union1d(counts.indices, reference_counts.indices)
    c, q = _restrict(counts, cols), np.asarray(_restrict(reference_counts, cols).sum(0)).ravel()
    q = q / q.sum()
    out = []
    for i in range(0, len(weights), chunk):
        p = np.asarray(weights[i : i + chunk] @ c)
        p = p / p.sum(1, keepdims=True)
        mid = (p + q) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            kl_p = np.where(p > 0, p * np.log2(p / mid), 0).sum(1)
            kl_q = np.where(q > 0, q * np.log2(q / mid), 0).sum(1)
        out.append((kl_p + kl_q) / 2)
    return np.concatenate(out)
