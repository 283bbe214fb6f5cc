"""Scaling laws: the chapter's family of models, its runs and its compute model.

The models share one shape (width = aspect · depth, a fixed head size), and each size is
trained as a WSD family over several step budgets (`run_spec`). Parameters and FLOPs
are counted by `lmlab.model.param_count` and `flops_per_token` (readout included), and
the same count is the compute model the chapter optimises: `family` tabulates N and
FLOPs per token along the shape, which `lmlab.experiments.laws.family_optimum` minimises a
fitted law over. The fits themselves are in `lmlab.experiments.laws`.
"""

from dataclasses import replace
from itertools import pairwise

import numpy as np
import pandas as pd

from lmlab import claims
from lmlab.checks import check_positive_int
from lmlab.corpus import ALL
from lmlab.model import GPTConfig, flops_per_token, param_count
from lmlab.runs import RunSpec, dataset
from lmlab.seeds import fresh
from lmlab.train import TrainConfig

FIT_WARMUPS = 5  # a budget shorter than FIT_WARMUPS warmups is left out of every fit of the chapter (drawn only)


def shaped(vocab_size: int, depth: int, aspect: int, d_head: int, ctx: int, **config) -> GPTConfig:
    """A model of a fixed shape: width = aspect · depth in heads of `d_head` dimensions each, so the
    head count, width / d_head, grows with width (Kaplan et al. 2020 found the shape matters little next
    to N, so a sweep holds it fixed). At a fixed head size μP's attention scale √d_head,base / d_head is
    SP's 1/√d_head: its rule has nothing to correct, where a fixed head count would cool the widest
    model's attention by √(its width / the base's) against SP."""
    for name, value in (("depth", depth), ("aspect", aspect), ("d_head", d_head)):
        check_positive_int(name, value)
    if (aspect * depth) % d_head:
        raise ValueError(f"width = aspect · depth = {aspect * depth} must be a multiple of d_head ({d_head})")
    return GPTConfig(vocab_size, ctx=ctx, width=aspect * depth, depth=depth, heads=aspect * depth // d_head, **config)


def model_config(sizes, depth: int) -> GPTConfig:
    """The chapter's model at `depth`, at `budget().scaling` sizes: μP from the smallest width (its base,
    with heads of the same size), so one tuned LR serves every size."""
    base_width = sizes.aspect * sizes.depths[0]
    return shaped(dataset().vocab_size, depth, sizes.aspect, sizes.d_head, sizes.ctx, param="mup",
                  base_width=base_width, base_heads=base_width // sizes.d_head, init_std=sizes.init_std)


def step_budgets(sizes, depth: int) -> tuple[int, ...]:
    """The step budgets a size is trained for: every size gets `budgets`, the smallest also the long ones."""
    return sizes.budgets + (sizes.long_budgets if depth in sizes.depths[: sizes.long_depths] else ())


def run_spec(sizes, depth: int, log2_lr: float, budgets=None, seed: int | None = None,
             train_chars: int | None = ALL) -> RunSpec:
    """The WSD family of the model at `depth`, trained at LR 2**log2_lr for each of `budgets`
    (default: `step_budgets`), evaluated at the end of each run only; `seed` defaults to seed 0
    moved by the replication offset (`lmlab.seeds.fresh`), as the LR tuning and "train it" use."""
    budgets = tuple(budgets or step_budgets(sizes, depth))
    seed = fresh(0) if seed is None else seed
    train = TrainConfig(steps=max(budgets), batch_size=sizes.batch_size, lr=2.0**log2_lr, schedule="wsd",
                        warmup_steps=sizes.warmup_steps, min_lr_ratio=0.0, eval_every=max(budgets),
                        eval_batches=sizes.eval_batches, progress=False)
    return RunSpec(model_config(sizes, depth), train, train_chars=train_chars, seed=seed, budgets=budgets)


def min_fit_steps(sizes) -> int:
    """The shortest step budget any fit of the chapter uses: `FIT_WARMUPS` × `sizes.warmup_steps`. Every
    budget of a size shares one warmup, so a shorter budget spends more than 1/`FIT_WARMUPS` of its steps
    warming up: it is drawn but left out of the fits, where it would bias them (a warmup too long for short
    runs is one of the causes Porian et al. 2024 found behind Kaplan's exponent)."""
    return FIT_WARMUPS * sizes.warmup_steps


def in_fits(table: pd.DataFrame, sizes) -> pd.DataFrame:
    """The rows of `table` (runs or seed means, with a column `steps`) whose budget the fits use, at
    least `min_fit_steps(sizes)`; the shorter ones are drawn, never fitted."""
    if "steps" not in table.columns:
        raise ValueError(f"table must have a column 'steps'; it has {list(table.columns)}")
    return table[table.steps >= min_fit_steps(sizes)]


def wsd_cost(sizes, depth: int) -> float:
    """The steps `lmlab.train.train_budgets` trains for all of a size's budgets, over its longest
    budget's: the shared stable phase once, plus each shorter budget's own cooldown."""
    train = run_spec(sizes, depth, 0.0).train
    budgets = step_budgets(sizes, depth)
    cooldowns = sum(b - replace(train, steps=b).decay_start for b in budgets if b != max(budgets))
    return (max(budgets) + cooldowns) / max(budgets)


# ---------------------------------------------------------------- the runs, averaged over seeds


def seed_means(runs: pd.DataFrame, by=("depth", "N", "N_total", "steps", "tokens"), metric: str = "final_val"
               ) -> pd.DataFrame:
    """One row per (size, budget) of `sweep.runs_table` rows: the mean `loss` over seeds, its seed
    standard deviation `sd` (one run's noise), the standard error `se` of the mean, `seeds`, and
    the run's `flops`."""
    grouped = runs.groupby(list(by))
    out = grouped.agg(loss=(metric, "mean"), sd=(metric, "std"), seeds=(metric, "size"), flops=("flops", "first"))
    out["se"] = out.sd / np.sqrt(out.seeds)
    return out.reset_index()


# ---------------------------------------------------------------- the compute model


def family(sizes, depths=range(1, 65)) -> pd.DataFrame:
    """The chapter's shape at every depth in `depths`: width, N (non-embedding), N_total and FLOPs
    per token, each from the engine's own counts: the compute model every optimum here uses."""
    rows = []
    for depth in depths:
        cfg = model_config(sizes, depth)
        rows.append({"depth": depth, "width": cfg.width, "N": param_count(cfg),
                     "N_total": param_count(cfg, non_embedding=False), "flops_per_token": flops_per_token(cfg)})
    return pd.DataFrame(rows)


def counted(table: pd.DataFrame, count: str = "N") -> pd.DataFrame:
    """`table` (seed means, or `family` rows) with its column N replaced by its column `count`, so that
    every law in N (`laws.statistics`, `laws.fit_chinchilla`, `laws.family_optimum`) counts parameters
    that way, on the same runs: "N" is non-embedding (Kaplan et al.'s count, the chapter's), "N_total"
    every parameter, embeddings and readout included (Chinchilla's). N_opt is then in that count too."""
    if count not in table.columns:
        raise ValueError(f"count must name a column of table, got {count!r}; it has {list(table.columns)}")
    return table.assign(N=table[count])


def six_nd_share(members: pd.DataFrame, count: str = "N") -> pd.Series:
    """Kaplan's and Chinchilla's shortcut C = 6·N·D over the chapter's own count C = D · FLOPs per
    token, size by size (D cancels): 6·N / FLOPs per token, with N counted by `count` ("N",
    non-embedding, or "N_total", every parameter). 1 where the shortcut is exact; indexed by depth."""
    for column in (count, "flops_per_token", "depth"):
        if column not in members.columns:
            raise ValueError(f"members must have a column {column!r} (see `family`); it has {list(members.columns)}")
    return (6 * members[count] / members.flops_per_token).set_axis(members.depth).rename(f"6·{count}·D / C")


def flops_exponent(members: pd.DataFrame, count: str = "N") -> float:
    """γ in FLOPs per token ∝ N^γ along the family `members`, N counted by `count`: the least-squares
    slope in log-log. C ∝ N·D, which Chinchilla's closed-form allocation assumes, means γ = 1."""
    if count not in members.columns or len(members) < 2:
        raise ValueError(f"members must hold at least 2 sizes and a column {count!r}")
    return float(np.polyfit(np.log(members[count].to_numpy(float)), np.log(members.flops_per_token.to_numpy(float)),
                            1)[0])


def top_run(front: pd.DataFrame, column: str, value) -> int:
    """How many of the highest-compute points of `front` (`lmlab.experiments.laws.frontier`), counted
    down from the dearest without a break, have `column` equal to `value`: e.g. how much of the
    frontier's top end is runs at one data budget D."""
    if column not in front.columns or "flops" not in front.columns:
        raise ValueError(f"front must have columns 'flops' and {column!r}; it has {list(front.columns)}")
    same = (front.sort_values("flops", ascending=False)[column] == value).to_numpy()
    return len(same) if same.all() else int(np.argmin(same))


# ---------------------------------------------------------------- the words the chapter reads into its runs


def paired_steps(runs: pd.DataFrame, by: str, order, metric: str = "final_val", unit: str = "seeds") -> list:
    """`claims.paired` intervals of `metric` at `order[i]` minus at `order[i + 1]` of column `by`,
    seed by seed (the runs of one seed share their data order), e.g. each size against the next
    larger one at one budget: an interval above 0 says the second is lower beyond seed noise."""
    table = runs.pivot_table(index="seed", columns=by, values=metric)
    missing = [v for v in order if v not in table.columns]
    if missing or table[list(order)].isna().any().any():
        raise ValueError(f"every seed needs a run at each {by} of {list(order)}; missing {missing or 'some seeds'}")
    return [claims.paired(table[a], table[b], unit=unit) for a, b in pairwise(order)]


def resampled_glue(name: str, estimate: float, draws, clusters: int, unit: str = "sizes",
                   with_estimate: bool = True) -> dict:
    """Glue values for a bootstrap interval of `estimate` from its resampled `draws` (NaN draws, where the
    statistic was undefined, are left out): NAME (unless not `with_estimate`, when it is glued elsewhere),
    NAME_lo and NAME_hi (the 2.5 and 97.5 percentiles; NaN when fewer than 2 resamples define it), NAME_n
    (`clusters`), NAME_resamples and NAME_ci, which says what the interval is: a 95 % bootstrap interval
    (`lmlab.claims`) from 1,000 resamples up, else a percentile range over too few, never called 95 %."""
    x = np.asarray(draws, dtype=float)
    total, x = len(x), x[np.isfinite(x)]
    low, high = (float(q) for q in np.quantile(x, [0.025, 0.975])) if len(x) >= 2 else (np.nan, np.nan)
    out = {f"{name}_lo": low, f"{name}_hi": high, f"{name}_n": int(clusters), f"{name}_resamples": len(x)}
    if with_estimate:
        out[name] = float(estimate)
    if len(x) < 2:
        return {**out, f"{name}_ci": f"percentile range left undefined ({len(x)} of {total:,} resamples define it)"}
    if len(x) >= 1000:
        return {**out, f"{name}_ci": claims.resampled(estimate, low, high, clusters, len(x), unit=unit).kind}
    which = f"the {len(x):,} of {total:,} resamples that define it" if len(x) < total else f"{len(x):,} resamples"
    return {**out, f"{name}_ci": f"percentile range over {which}, {clusters} {unit} (fewer than 1,000 resamples: "
                                 "not called a 95 % interval)"}


def interval_table(estimates: dict, draws: pd.DataFrame, clusters: int, unit: str = "sizes") -> pd.DataFrame:
    """One row per column of `draws` (a bootstrap's resampled statistics, e.g. `laws.statistics` per
    resample): the `estimates` value (from the fit to every run) and the columns lo, hi, n, resamples
    and ci that `resampled_glue` gives for it."""
    missing = [k for k in draws.columns if k not in estimates]
    if missing:
        raise ValueError(f"estimates must hold every statistic the draws hold; missing {missing}")
    rows = {k: {"estimate": float(estimates[k]),
                **{part.removeprefix(f"{k}_"): v for part, v in
                   resampled_glue(k, estimates[k], draws[k], clusters, unit, with_estimate=False).items()}}
            for k in draws.columns}
    return pd.DataFrame.from_dict(rows, orient="index")


def range_word(low: float, high: float, reference: float, above: str, below: str, spans: str,
               missing: str = "not comparable with") -> str:
    """`above` when the whole range [low, high] lies above `reference`, `below` when below, else `spans`
    (`missing` when the range was not measured, NaN): a range of measured values, not an interval, read
    against a published number."""
    if not np.isfinite([low, high]).all():
        return missing
    if low > high:
        raise ValueError(f"low must not exceed high, got {low} and {high}")
    return (above if claims.compare(low, reference) == "more" else below if claims.compare(high, reference) == "less"
            else spans)
