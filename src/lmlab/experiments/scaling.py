"""Scaling laws: the chapter's family of models, its runs and its compute model.

The models share one shape (width = aspect · depth, fixed heads), and each size is
trained as a WSD family over several step budgets (`run_spec`). Parameters and FLOPs
are counted by `lmlab.model.param_count` and `flops_per_token` (readout included), and
the same count is the compute model the chapter optimises: `family` tabulates N and
FLOPs per token along the shape, which `lmlab.experiments.laws.family_optimum` minimises a
fitted law over. The fits themselves are in `lmlab.experiments.laws`.
"""

import numpy as np
import pandas as pd

from lmlab.checks import check_positive_int
from lmlab.corpus import ALL
from lmlab.model import GPTConfig, flops_per_token, param_count
from lmlab.runs import RunSpec, dataset
from lmlab.train import TrainConfig


def shaped(vocab_size: int, depth: int, aspect: int, heads: int, ctx: int, **config) -> GPTConfig:
    """A model of a fixed shape: width = aspect · depth, always `heads` heads (Kaplan et al.
    2020 found the shape matters little next to N, so a sweep holds it fixed; a fixed head
    count is also what μP's attention rule assumes)."""
    for name, value in (("depth", depth), ("aspect", aspect), ("heads", heads)):
        check_positive_int(name, value)
    return GPTConfig(vocab_size, ctx=ctx, width=aspect * depth, depth=depth, heads=heads, **config)


def model_config(sizes, depth: int) -> GPTConfig:
    """The chapter's model at `depth`, at `budget().scaling` sizes: μP from the smallest width, so one
    tuned LR serves every size."""
    return shaped(dataset().vocab_size, depth, sizes.aspect, sizes.heads, sizes.ctx, param="mup",
                  base_width=sizes.aspect * sizes.depths[0], init_std=sizes.init_std)


def step_budgets(sizes, depth: int) -> tuple[int, ...]:
    """The step budgets a size is trained for: every size gets `budgets`, the smallest also the long ones."""
    return sizes.budgets + (sizes.long_budgets if depth in sizes.depths[: sizes.long_depths] else ())


def run_spec(sizes, depth: int, log2_lr: float, budgets=None, seed: int = 0, train_chars: int | None = ALL
             ) -> RunSpec:
    """The WSD family of the model at `depth`, trained at LR 2**log2_lr for each of `budgets`
    (default: `step_budgets`), evaluated at the end of each run only."""
    budgets = tuple(budgets or step_budgets(sizes, depth))
    train = TrainConfig(steps=max(budgets), batch_size=sizes.batch_size, lr=2.0**log2_lr, schedule="wsd",
                        warmup_steps=sizes.warmup_steps, min_lr_ratio=0.0, eval_every=max(budgets),
                        eval_batches=sizes.eval_batches, progress=False)
    return RunSpec(model_config(sizes, depth), train, train_chars=train_chars, seed=seed, budgets=budgets)


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
