"""What a search picks, and how picked settings compare, seed by seed.

A search (`lmlab.experiments.transfer.lr_search`) trains every setting of a few knobs at several
learning rates and seeds, and returns a table of runs (`transfer.summaries`' rows). Its pick is the
setting and LR with the lowest loss averaged over the seeds (`pick`); a setting is moved one knob at
a time from a pick to see whether that knob's optimum moves with width (`one_at_a_time`, `alone`).
Picks are judged on runs at the same seeds, so that each difference between two settings is taken
seed by seed, with a paired t-interval (`gaps`, `by_width`), and a search's cost is counted in runs
of the setting it is judged against (`cost`).
"""

import numpy as np
import pandas as pd

from lmlab import claims, stats

# ---------------------------------------------------------------- a search's pick


def seed_means(runs: pd.DataFrame, by, metric: str = "final_val", x: str = "log2_lr") -> pd.DataFrame:
    """The mean of `metric` over seeds at every setting of `by` and every `x`: one row each, with
    `seeds` (how many ran). A point where any seed diverged has no mean (NaN), so it is never best:
    a setting that diverges on one seed in three is not a setting to pick."""
    by = [*by, x]
    means = runs.groupby(by)[metric].agg(lambda v: v.mean(skipna=False))
    return pd.concat([means, runs.groupby(by).size().rename("seeds")], axis=1).reset_index()


def pick(runs: pd.DataFrame, by, metric: str = "final_val", x: str = "log2_lr") -> tuple[pd.DataFrame, pd.Series]:
    """(seed means, pick) of a search's `runs`: `seed_means` at every setting of `by` and every `x`,
    and its row with the lowest mean (a point where a seed diverged is never picked)."""
    means = seed_means(runs, by, metric, x)
    if not means[metric].notna().any():
        raise ValueError(f"every point of the search diverged on some seed: there is no {metric} to pick")
    return means, means.loc[means[metric].idxmin()]


def setting_runs(runs: pd.DataFrame, row, by, metric: str = "final_val", x: str = "log2_lr") -> np.ndarray:
    """`metric` of the runs at `row`'s values of `by` and `x` (one setting at one LR), in seed order: the
    per-seed values a paired interval needs for a point `seed_means` picked."""
    same = np.logical_and.reduce([runs[k] == row[k] for k in [*by, x]])
    return runs[same].sort_values("seed")[metric].to_numpy()


def best_inside(runs: pd.DataFrame, by, metric: str = "final_val", x: str = "log2_lr") -> bool:
    """Whether, in every group of `by` (one searched setting each), the run with the lowest `metric`
    lies strictly inside the grid of `x` that was searched: a best value on the edge of its grid says
    only that the search stopped there."""
    groups = runs.groupby(list(by))
    return all(g[x].min() < g.loc[g[metric].idxmin(), x] < g[x].max() for _, g in groups)


def grid_word(value: float, grid, inside: str = "inside", edge: str = "on the edge of") -> str:
    """`inside` when `value` lies strictly between the smallest and the largest value of `grid`, else
    `edge`: a pick on its grid's edge says only that the search stopped there."""
    return inside if min(grid) < value < max(grid) else edge


def differs(names: dict, a, b) -> list[str]:
    """The names (`names`: a key of `a` and `b`, e.g. a column of two picks, to the name a page prints)
    whose values differ between `a` and `b`, in the order of `names`."""
    return [name for key, name in names.items() if a[key] != b[key]]


# ---------------------------------------------------------------- one knob at a time


def one_at_a_time(centre: dict, grids: dict) -> dict[str, list[dict]]:
    """For each knob of `grids`, the settings that move that knob along its grid with every other knob at
    `centre`'s value (each a dict in `centre`'s key order): TP-V's figure 4, one knob swept at a time."""
    unknown = set(grids) - set(centre)
    if unknown:
        raise ValueError(f"grids must name knobs of centre {sorted(centre)}, got {sorted(unknown)}")
    return {knob: [{**centre, knob: value} for value in values] for knob, values in grids.items()}


def alone(runs: pd.DataFrame, centre: dict, knob: str) -> pd.DataFrame:
    """The runs in which only `knob` moves: every other knob of `centre` at its value there."""
    if knob not in centre:
        raise ValueError(f"knob must be one of {sorted(centre)}, got {knob!r}")
    return runs[np.logical_and.reduce([runs[k] == v for k, v in centre.items() if k != knob])]


# ---------------------------------------------------------------- picks compared, seed by seed


def seed_losses(runs: pd.DataFrame, by: str = "setting", metric: str = "final_val") -> dict[str, np.ndarray]:
    """`metric` of each value of `by` (a setting's name), in seed order: the settings' runs at the same
    seeds line up, so that two of them pair seed by seed (`gaps`)."""
    return {name: g.sort_values("seed")[metric].to_numpy() for name, g in runs.groupby(by)}


def loss_table(loss: dict, order=None) -> pd.DataFrame:
    """One row per setting of `loss` (`seed_losses`), in `order`: `mean`, `half` (the half-width of its
    95 % t-interval over the seeds, NaN for one run) and `n` (its runs)."""
    order = list(loss) if order is None else list(order)
    rows = {n: {"mean": loss[n].mean(), "half": stats.t_half_width(loss[n]) if len(loss[n]) > 1 else np.nan,
                "n": len(loss[n])} for n in order}
    return pd.DataFrame(rows).T.astype({"n": int})


def gaps(loss: dict, pairs: dict) -> dict[str, claims.Interval]:
    """For each name of `pairs`, (a, b): a's loss minus b's, seed by seed, with its paired t-interval."""
    missing = {s for a, b in pairs.values() for s in (a, b)} - set(loss)
    if missing:
        raise ValueError(f"pairs name settings that loss does not hold: {sorted(missing)}")
    return {name: claims.paired(loss[a], loss[b]) for name, (a, b) in pairs.items()}


def nearest(loss: dict, name: str) -> claims.Interval:
    """`name`'s loss minus that of the setting nearest it from below (the paired difference whose interval
    reaches lowest): if even this one lies above 0, `name` is worse than every other setting."""
    others = [claims.paired(loss[name], loss[n]) for n in loss if n != name]
    if not others:
        raise ValueError(f"loss must hold a setting besides {name!r}")
    return min(others, key=lambda d: d.low)


def by_width(a: pd.Series, b: pd.Series, widths) -> dict:
    """a − b at each width, seed by seed: `a` and `b` are indexed by (width, seed), as a table of runs'
    per-seed best losses is; {width: paired t-interval}."""
    a, b = a.sort_index(), b.sort_index()
    return {w: claims.paired(a[w], b[w]) for w in widths}


def cost(searches: dict, one_run: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """What each search (a table of its runs, with `flops` and `seconds`) cost, in runs of `one_run`'s
    setting (the mean of its runs): {name: (FLOPs, seconds)}."""
    return {name: (runs.flops.sum() / one_run.flops.mean(), runs.seconds.sum() / one_run.seconds.mean())
            for name, runs in searches.items()}
