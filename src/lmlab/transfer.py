"""μTransfer experiments: LR sweeps across widths, and the best point of a grid.

A sweep is many short runs of `train_cached`, so rerunning a chapter costs
nothing and chapters share runs. Two summaries of a run are kept: the final
validation loss, and the training loss averaged over the whole run, which
nanoGPT-mup and TP-V's figure 1 use because it ranks LRs with far less noise
than one final evaluation of a short run.
"""

from dataclasses import replace

import pandas as pd
from tqdm.auto import tqdm

from lmlab.budget import building_book
from lmlab.model import GPTConfig
from lmlab.train import TrainConfig, train_cached


def run_summary(data, cfg: GPTConfig, train_cfg: TrainConfig) -> dict:
    """Train (or load) one run and summarise it in a row of a sweep's table."""
    if cfg.width_mult == 1:  # μP at its base width is SP, bit for bit: one cached run serves both
        cfg = replace(cfg, param="sp", base_width=None)
    _, hist = train_cached(cfg, replace(train_cfg, progress=False), data)
    return {"avg_train": sum(hist.train_loss) / len(hist.train_loss), "final_val": hist.final_val,
            "flops": hist.flops[-1], "seconds": hist.seconds[-1]}


def lr_sweep(data, configs, train_cfg: TrainConfig, log2_lrs, desc: str = "LR sweep") -> pd.DataFrame:
    """One run per model config and LR = 2**log2_lr, everything else from `train_cfg`.

    Returns a row per run: param, width, init_std, output_mult, log2_lr and the
    run's summary (`run_summary`).
    """
    configs, log2_lrs = list(configs), list(log2_lrs)
    if not configs or not log2_lrs:
        raise ValueError(f"configs and log2_lrs must not be empty, got {len(configs)} configs, log2_lrs={log2_lrs}")
    grid = [(cfg, lg) for cfg in configs for lg in log2_lrs]
    rows = []
    for cfg, lg in tqdm(grid, desc=desc, leave=False, disable=building_book()):
        rows.append({"param": cfg.param, "width": cfg.width, "init_std": cfg.init_std, "output_mult": cfg.output_mult,
                     "log2_lr": lg, **run_summary(data, cfg, replace(train_cfg, lr=2.0**lg))})
    return pd.DataFrame(rows)


def best(df: pd.DataFrame, by, metric: str = "avg_train") -> pd.DataFrame:
    """The row with the lowest `metric` in each group of `by` (e.g. each param and width)."""
    return df.loc[df.groupby(by)[metric].idxmin()].reset_index(drop=True)
