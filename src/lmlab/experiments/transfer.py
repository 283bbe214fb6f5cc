"""μTransfer experiments: LR sweeps across widths, and the best point of a grid.

A sweep is many short runs through `lmlab.sweep` (so rerunning a chapter costs
nothing, chapters share runs, and the runs may go to worker processes). Two
summaries of a run are kept: the final validation loss, and the training loss
averaged over the whole run, which nanoGPT-mup and TP-V's figure 1 use because it
ranks LRs with far less noise than one final evaluation of a short run. A run that
diverges is recorded as such (`diverged`), with no loss.
"""

import math

import pandas as pd

from lmlab import sweep
from lmlab.runs import RunSpec

COLUMNS = ["param", "width", "init_std", "output_mult", "log2_lr", "seed", "avg_train", "final_val", "flops",
           "seconds", "diverged"]


def canonical(spec: RunSpec) -> RunSpec:
    """μP at its base width is SP, bit for bit: one cached run serves both."""
    if spec.model.param == "mup" and spec.model.width_mult == 1:
        return spec.replace(param="sp", base_width=None)
    return spec


def summaries(specs, executor=None, desc: str = "runs") -> pd.DataFrame:
    """One row per run of `specs` (single runs), trained or read back through `lmlab.sweep`."""
    specs = list(specs)
    results = sweep.run([canonical(s) for s in specs], sweep.train_spec, executor=executor, desc=desc)
    rows = []
    for spec, result in zip(specs, results, strict=True):
        (run,) = result["runs"]
        log2_lr = math.log2(spec.train.lr)
        rows.append({"param": spec.model.param, "width": spec.model.width, "init_std": spec.model.init_std,
                     "output_mult": spec.model.output_mult, "seed": spec.seed,
                     "log2_lr": int(log2_lr) if log2_lr.is_integer() else log2_lr,
                     "avg_train": run["avg_train"], "final_val": run["final_val"], "flops": run["flops"],
                     "seconds": run["seconds"], "diverged": run["diverged_at"] is not None})
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
