"""Scaling laws: the chapter's family of models, its runs and its compute model.

The models share one shape (width = aspect · depth, a fixed head size), and each size is
trained as a WSD family over several step budgets (`run_spec`). Parameters and FLOPs
are counted by `lmlab.model.param_count` and `flops_per_token` (readout included), and
the same count is the compute model the chapter optimises: `family` tabulates N and
FLOPs per token along the shape, which `lmlab.experiments.laws.family_optimum` minimises a
fitted law over. The fits themselves are in `lmlab.experiments.laws`; `in_counts` and
`count_bootstrap` run them with N counted two ways on the same runs and resamples, and
`lmlab.experiments.readings` holds the words the page reads into the results.
"""

from dataclasses import replace

import numpy as np
import pandas as pd

from lmlab.checks import check_positive_int
from lmlab.corpus import ALL
from lmlab.model import GPTConfig, flops_per_token, param_count
from lmlab.runs import RunSpec, dataset
from lmlab.seeds import fresh
from lmlab.stats import cluster_bootstrap
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


def with_total_count(optima: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """`optima` (`laws.isoflop_optima`, N_opt non-embedding) with N_total_opt, every parameter of the size
    N_opt along the family `members` (`family`, interpolated in log N), and tokens_per_param_total,
    D_opt / N_total_opt: the same optima in Chinchilla's count."""
    for column, table in (("N_opt", optima), ("D_opt", optima), ("N", members), ("N_total", members)):
        if column not in table.columns:
            raise ValueError(f"no column {column!r} in {list(table.columns)}")
    members = members.sort_values("N")
    total = np.exp(np.interp(np.log(optima.N_opt), np.log(members.N), np.log(members.N_total)))
    return optima.assign(N_total_opt=total, tokens_per_param_total=optima.D_opt / total)


# ---------------------------------------------------------------- every law in both parameter counts

COUNTS = {"N": "", "N_total": "total_"}  # a count (a column) → the prefix of its statistics' names


def in_counts(statistic, means: pd.DataFrame, members: pd.DataFrame, starts: dict, **kwargs) -> dict:
    """`statistic(means, members, start=…, **kwargs)` (`lmlab.experiments.laws.statistics`) once per count
    in `starts` (a key of `COUNTS` → the fit to start from), N counted that way in `means` and `members`
    alike (`counted`), on the same runs; every name prefixed by its count's prefix in `COUNTS`."""
    unknown = [count for count in starts if count not in COUNTS]
    if unknown:
        raise ValueError(f"starts must be keyed by counts of {list(COUNTS)}, got {unknown}")
    return {COUNTS[count] + k: v for count, start in starts.items()
            for k, v in statistic(counted(means, count), counted(members, count), start=start, **kwargs).items()}


def count_bootstrap(statistic, runs: pd.DataFrame, means: pd.DataFrame, members: pd.DataFrame, starts: dict,
                    n_boot: int, seed: int, **kwargs) -> tuple[dict, pd.DataFrame]:
    """`in_counts` of the seed means `means` of `runs`, and of `n_boot` resamples of `runs`, drawn by
    `lmlab.stats.cluster_bootstrap`: whole sizes (depths) with replacement and, within each, whole seeds
    (a seed's budgets share one trajectory), a size drawn twice counting as two. The same resamples serve
    every count. Returns (the estimates, the draws: a row per resample, NaN where its fit is undefined)."""
    def fitted(sample):
        return in_counts(statistic, seed_means(sample, by=["_copy", "depth", "N", "N_total", "steps", "tokens"]),
                         members, starts, **kwargs)

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a few resamples' surfaces degenerate: NaN
        draws = cluster_bootstrap(runs, fitted, cluster="depth", unit="seed", n_boot=n_boot, seed=seed)
    return in_counts(statistic, means, members, starts, **kwargs), draws


def by_count(table: pd.DataFrame) -> dict:
    """The rows of `table` (indexed by `in_counts` names, e.g. its `readings.interval_table`) split by
    count: {"N": the unprefixed rows, "N_total": the rows prefixed "total_", that prefix taken off}."""
    prefix = COUNTS["N_total"]
    total = table.index.str.startswith(prefix)
    return {"N": table[~total], "N_total": table[total].rename(index=lambda k: k.removeprefix(prefix))}
