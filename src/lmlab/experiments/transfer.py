"""μTransfer experiments: LR sweeps across widths, and the best point of a grid.

A sweep is many short runs through `lmlab.sweep` (so rerunning a chapter costs
nothing, chapters share runs, and the runs may go to worker processes). Two
summaries of a run are kept: the final validation loss, and the training loss
averaged over the whole run, which nanoGPT-mup and TP-V's figure 1 use because it
ranks LRs with far less noise than one final evaluation of a short run. A run that
diverges is recorded as such (`diverged`), with no loss.

An optimum is the vertex of a parabola in log2 LR through a curve's lowest points, found
per seed so that its seed spread is known (`optima`); `lr_search` gives every setting the
same search, widening a small LR grid until its lowest point is inside it.
"""

import math
import sys

import numpy as np
import pandas as pd

import lmlab.corpus
import lmlab.group
import lmlab.group_optim
import lmlab.group_train
import lmlab.model
import lmlab.mup
from lmlab import sweep
from lmlab.checks import check_positive_int
from lmlab.group_train import train_group
from lmlab.model import GPT
from lmlab.mup import ablate_rule
from lmlab.run_groups import batches
from lmlab.runs import RunSpec
from lmlab.train import TrainingDiverged, train

COLUMNS = ["param", "width", "init_std", "output_mult", "attn_mult", "log2_lr", "seed", "avg_train", "final_val",
           "flops", "seconds", "diverged"]


def canonical(spec: RunSpec) -> RunSpec:
    """Every parametrization at its base width (and base head size) is SP, bit for bit: one
    cached run serves them all."""
    if spec.model.param != "sp" and spec.model.width_mult == 1 and spec.model.head_dim_mult == 1:
        return spec.replace(param="sp", base_width=None, base_heads=None)
    return spec


def summaries(specs, executor=None, desc: str = "runs") -> pd.DataFrame:
    """One row per run of `specs` (single runs), trained or read back through `lmlab.sweep`."""
    specs = list(specs)
    unique = list(dict.fromkeys(canonical(s) for s in specs))  # a run asked for twice is trained once
    results = dict(zip(unique, sweep.run(unique, sweep.train_spec, executor=executor, desc=desc), strict=True))
    rows = []
    for spec, result in ((s, results[canonical(s)]) for s in specs):
        (run,) = result["runs"]
        log2_lr = math.log2(spec.train.lr)
        rows.append({"param": spec.model.param, "width": spec.model.width, "init_std": spec.model.init_std,
                     "output_mult": spec.model.output_mult, "attn_mult": spec.model.attn_mult, "seed": spec.seed,
                     "log2_lr": int(log2_lr) if log2_lr.is_integer() else log2_lr,
                     "avg_train": run["avg_train"], "final_val": run["final_val"], "flops": run["flops"],
                     "seconds": run["seconds"], "diverged": run["diverged_at"] is not None})
    return pd.DataFrame(rows, columns=COLUMNS).astype({"avg_train": float, "final_val": float, "seconds": float})


def train_ablated(config: dict) -> dict:
    """Train the run `config["spec"]` (a `RunSpec.to_dict()`) with one μP rule undone in the model,
    `config["ablate"]` ("attention_scale" or "output_mult", see `lmlab.mup.ABLATIONS`), and
    summarise it as `summaries` does. Run it through `sweep.run`, which caches it."""
    spec = RunSpec.from_dict(config["spec"])
    model = GPT(spec.model, spec.seed)
    ablate_rule(model, config["ablate"])
    try:
        return _ablated_row(train(model, spec.data(), spec.train, spec.seed))
    except TrainingDiverged as error:
        return _ablated_row(error)


def _ablated_row(hist) -> dict:
    """An ablated run's summary from its History, or from the TrainingDiverged that stopped it."""
    if isinstance(hist, TrainingDiverged):
        return {"avg_train": None, "final_val": None, "flops": None, "seconds": None, "diverged": True}
    return {"avg_train": sum(hist.train_loss) / len(hist.train_loss), "final_val": hist.final_val,
            "flops": hist.flops[-1], "seconds": hist.seconds[-1], "diverged": False}


def train_ablated_all(configs) -> list[dict]:
    """`[train_ablated(c) for c in configs]` for configs of one shape (`ablated_sets` makes them),
    trained as one group (`lmlab.group_train`)."""
    configs = list(configs)
    if len(configs) == 1:
        return [train_ablated(configs[0])]
    specs = [RunSpec.from_dict(c["spec"]) for c in configs]
    models = [GPT(s.model, s.seed) for s in specs]
    for model, config in zip(models, configs, strict=True):
        ablate_rule(model, config["ablate"])
    results = train_group(models, specs[0].data(), [s.train for s in specs], [s.seed for s in specs])
    return [_ablated_row(h) for h in results]


def ablated_sets(configs) -> list[list[int]]:
    """The sets of `configs` that train as one group (`lmlab.run_groups.batches` of their specs)."""
    return batches([RunSpec.from_dict(c["spec"]) for c in configs])


train_ablated.depends_on = (lmlab.corpus, lmlab.model, lmlab.mup, sys.modules["lmlab.train"], RunSpec,
                            lmlab.group, lmlab.group_optim, lmlab.group_train)
train_ablated.batch, train_ablated.batches = train_ablated_all, ablated_sets


def ablated(specs, ablation: str, executor=None, desc: str = "ablated runs") -> pd.DataFrame:
    """`summaries`' rows for `specs` trained with one μP rule undone (`train_ablated`); `param`
    reads "mup-<ablation>"."""
    specs = list(specs)
    results = sweep.run([{"spec": s.to_dict(), "ablate": ablation} for s in specs], train_ablated, executor=executor,
                        desc=desc)
    rows = [{"param": f"{s.model.param}-{ablation}", "width": s.model.width, "init_std": s.model.init_std,
             "output_mult": s.model.output_mult, "attn_mult": s.model.attn_mult, "seed": s.seed,
             "log2_lr": math.log2(s.train.lr), **r}
            for s, r in zip(specs, results, strict=True)]
    return pd.DataFrame(rows, columns=COLUMNS).astype({"avg_train": float, "final_val": float, "seconds": float})


def lr_sweep(specs, log2_lrs, executor=None, desc: str = "LR sweep") -> pd.DataFrame:
    """One run per spec and LR = 2**log2_lr, everything else from the spec; a row each (`summaries`)."""
    specs, log2_lrs = list(specs), list(log2_lrs)
    if not specs or not log2_lrs:
        raise ValueError(f"specs and log2_lrs must not be empty, got {len(specs)} specs, log2_lrs={log2_lrs}")
    return summaries([s.replace(lr=2.0**lg) for s in specs for lg in log2_lrs], executor, desc)


def best(df: pd.DataFrame, by, metric: str = "avg_train") -> pd.DataFrame:
    """The row with the lowest `metric` in each group of `by` (e.g. each param and width); diverged
    runs, which have no loss, are never best."""
    return df.loc[df.groupby(by)[metric].idxmin()].reset_index(drop=True)


# ---------------------------------------------------------------- optima with seed noise, and the search


def parabola_optimum(log2_lrs, losses, window: int = 2) -> tuple[float, float, bool]:
    """(x*, L*, interior) of a curve of loss against log2 LR: the vertex of a parabola fitted to its
    lowest point and up to `window` grid points on each side, and the parabola's value there.

    A diverged run (NaN loss) counts as worse than any finite one. `interior` is False when the
    lowest point is at an edge of the grid, or the points around it do not curve upward; then
    (x*, L*) is the lowest point itself, since a vertex there would be an extrapolation."""
    x, y = np.asarray(log2_lrs, dtype=float), np.asarray(losses, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) == 0:
        raise ValueError(f"log2_lrs and losses must be 1-d, non-empty and the same length, got {x.shape}, {y.shape}")
    check_positive_int("window", window)
    order = np.argsort(x)
    x, y = x[order], np.where(np.isfinite(y[order]), y[order], np.inf)
    if not np.isfinite(y).any():
        raise ValueError("every run of the curve diverged: there is no optimum")
    i = int(np.argmin(y))
    lo, hi = max(0, i - window), min(len(x), i + window + 1)
    xs, ys = x[lo:hi], y[lo:hi]
    keep = np.isfinite(ys)
    if i == 0 or i == len(x) - 1 or keep.sum() < 3:
        return float(x[i]), float(y[i]), False
    c2, c1, c0 = np.polyfit(xs[keep], ys[keep], 2)
    if c2 <= 0:
        return float(x[i]), float(y[i]), False
    vertex = float(np.clip(-c1 / (2 * c2), xs[keep].min(), xs[keep].max()))
    return vertex, float(c2 * vertex**2 + c1 * vertex + c0), True


def _se(values: np.ndarray) -> float:
    """The standard error of a mean over seeds; NaN for a single seed."""
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def seed_optima(df: pd.DataFrame, by=("param", "width"), metric: str = "avg_train", x: str = "log2_lr",
                window: int = 2) -> pd.DataFrame:
    """Every seed's own optimum of `metric` against `x` (log2 LR, or log2 σ) in each group of `by`: one row
    per group and seed, with `opt` (the parabola's vertex, `parabola_optimum`), `loss` (its value there)
    and `interior` (the seed's lowest point lies inside the grid)."""
    by, rows = list(by), []
    for key, group in df.groupby(by):
        for seed, g in group.groupby("seed"):
            opt, loss, interior = parabola_optimum(g[x], g[metric], window)
            rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)), "seed": seed,
                         "opt": opt, "loss": loss, "interior": interior})
    return pd.DataFrame(rows, columns=[*by, "seed", "opt", "loss", "interior"])


def optima(df: pd.DataFrame, by=("param", "width"), metric: str = "avg_train", x: str = "log2_lr",
           window: int = 2) -> pd.DataFrame:
    """The optimum of every curve of `metric` against `x` (log2 LR, or log2 σ) in each group of `by`,
    from a parabola (`parabola_optimum`) per seed, with its seed spread.

    One row per group: `opt` (mean over seeds of each seed's vertex), `opt_se` (its standard error),
    `loss` and `loss_se` (the same for the loss at the vertex), `seeds`, and `interior` (every seed's
    lowest point lies inside the grid: an optimum on the edge is not an optimum)."""
    rows = []
    for key, group in seed_optima(df, by, metric, x, window).groupby(list(by)):
        opt, loss = group.opt.to_numpy(dtype=float), group.loss.to_numpy(dtype=float)
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)),
                     "opt": float(opt.mean()), "opt_se": _se(opt), "loss": float(loss.mean()),
                     "loss_se": _se(loss), "seeds": len(group), "interior": bool(group.interior.all())})
    return pd.DataFrame(rows)


def optimum_shifts(per_seed: pd.DataFrame, start, end, along: str = "width", by: str = "param") -> dict:
    """How far each seed's optimum moves from `along == start` to `along == end` (e.g. from the
    narrowest width to the widest), for each value of `by`: {value: per-seed shifts, in seed order}.

    `per_seed` is `seed_optima`'s table. A seed pairs the two ends (the same seed sets the data order
    at every width), so the mean shift's interval is a t-interval over these per-seed shifts, with
    seeds − 1 degrees of freedom (`lmlab.claims.t`)."""
    shifts = {}
    for value, group in per_seed.groupby(by, sort=False):
        table = group.pivot_table(index="seed", columns=along, values="opt")
        if start not in table or end not in table or table[[start, end]].isna().any(axis=None):
            raise ValueError(f"every seed of {by}={value!r} needs an optimum at {along} {start} and {end}")
        shifts[value] = (table[end] - table[start]).to_numpy(dtype=float)
    return shifts


def flatness(df: pd.DataFrame, x: str, by: str = "width", metric: str = "final_val") -> dict:
    """How much `metric` moves across a grid of `x` (e.g. α_out), per value of `by`, against its seed noise:
    `range` (the largest, over `by`, of the seed-mean curve's max − min), `se` (the median standard error of
    one grid point over seeds), `curves` (one per `by` value and seed) and `edge` (how many of those curves
    have their lowest point at an edge of the grid, where no optimum can be read)."""
    means = df.groupby([by, x])[metric].agg(["mean", "std", "size"])
    spread = means["mean"].groupby(by).agg(lambda v: v.max() - v.min())
    lowest = df.loc[df.groupby([by, "seed"])[metric].idxmin()]
    edge = int(lowest[x].isin([df[x].min(), df[x].max()]).sum())
    return {"range": float(spread.max()), "se": float((means["std"] / np.sqrt(means["size"])).median()),
            "curves": len(lowest), "edge": edge}


def lr_search(specs, start, seeds=(0,), executor=None, window: int = 1, bounds=(-16, 0), max_rounds: int = 6,
              metric: str = "avg_train", desc: str = "LR search") -> pd.DataFrame:
    """The same search for every spec: train each at log2 LRs `start` and `seeds`, then widen its
    grid by one power of 2 on the side where `metric` is lowest, until the lowest point of the
    seed-averaged curve and of every seed's curve has `window` grid points on each side (a
    diverged run counts as one: every larger LR diverges too), or the grid reaches `bounds`.
    Returns every run (`summaries`' rows)."""
    specs, seeds = list(specs), tuple(seeds)
    grids = [set(int(lg) for lg in start) for _ in specs]
    if not specs or not grids[0] or not seeds:
        raise ValueError(f"specs, start and seeds must not be empty, got {len(specs)} specs, start={start}, "
                         f"seeds={seeds}")
    done, table = set(), []
    for _ in range(max_rounds):
        todo = [(i, lg, s) for i, grid in enumerate(grids) for lg in sorted(grid) for s in seeds
                if (i, lg, s) not in done]
        if todo:
            rows = summaries([specs[i].replace(lr=2.0**lg, seed=s) for i, lg, s in todo], executor, desc)
            table.append(rows.assign(spec=[i for i, _, _ in todo]))
            done |= set(todo)
        runs = pd.concat(table, ignore_index=True)
        grown = False
        for i, grid in enumerate(grids):
            table_i = runs[runs.spec == i].pivot_table(index="log2_lr", columns="seed", values=metric, dropna=False)
            curves = table_i.reindex(sorted(grid)).assign(mean=lambda t: t.mean(axis=1, skipna=False)).fillna(np.inf)
            lowest = [int(curves[c].idxmin()) for c in curves]  # of the seed mean and of every seed
            below = [lg for lg in grid if lg < min(lowest)]
            above = [lg for lg in grid if lg > max(lowest)]
            diverged_above = bool(above) and not np.isfinite(curves["mean"][max(above)])
            if len(below) < window and min(grid) > bounds[0]:
                grid.add(min(grid) - 1)
                grown = True
            if len(above) < window and not diverged_above and max(grid) < bounds[1]:
                grid.add(max(grid) + 1)
                grown = True
        if not grown:
            break
    return runs.drop(columns="spec")
