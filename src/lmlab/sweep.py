"""Run a grid of experiments once: a content-addressed result cache in front of any executor.

`run(configs, fn)` calls `fn(config)` for every config whose result is not yet
cached, on any `concurrent.futures.Executor` (a process pool on one machine, a
Dask cluster's `client.get_executor()` across many), and returns the results in
the order of `configs`. A result is named by a hash of `fn`'s source and the
config, so a warm rerun reads every result back in milliseconds and changing
either recomputes only what changed. Results are written as each one arrives,
so an interrupted sweep keeps what it finished.

    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(2) as pool:
        results = sweep.run(specs, sweep.train_spec, executor=pool)

    from dask.distributed import Client          # a cluster: the same call
    with Client("scheduler-address:8786") as client:
        results = sweep.run(specs, sweep.train_spec, executor=client.get_executor())

`fn` must be importable by the workers (a module-level function) and return JSON. When its
result also depends on other code, list it in `fn.depends_on` (modules or functions), as
`train_spec` does, and a change there recomputes too.
"""

import functools
import inspect
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import asdict, is_dataclass

import pandas as pd
import torch
from tqdm.auto import tqdm

import lmlab.corpus
import lmlab.model
import lmlab.mup
import lmlab.train
from lmlab.budget import building_book
from lmlab.cache import Cache, key, source_fingerprint
from lmlab.corpus import CharDataset, shakespeare
from lmlab.model import GPT, GPTConfig
from lmlab.scaling import flops_per_token, param_count
from lmlab.train import History, TrainConfig, device, train_budgets_cached, train_cached


def config_key(fn, config) -> str:
    """The cache name of `fn(config)`: a hash of fn's name, of its source and what it depends on,
    and of the config."""
    cfg = asdict(config) if is_dataclass(config) else config
    source = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else type(fn)  # a callable object: its class
    code = source_fingerprint(source, *getattr(fn, "depends_on", ()))
    name = getattr(fn, "__name__", type(fn).__name__)
    return f"sweep-{name}-" + key(source.__module__, source.__qualname__, code, cfg)


def run(configs, fn, cache: Cache | None = None, executor: Executor | None = None,
        desc: str = "sweep") -> list:
    """`[fn(c) for c in configs]`, each from the cache when it is there, the rest on `executor`
    (in this process when None), cached as they finish."""
    configs, cache = list(configs), cache or Cache()
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {fn!r}")
    if executor is not None and not isinstance(executor, Executor):
        raise ValueError(f"executor must be a concurrent.futures.Executor or None, got {type(executor).__name__}")
    names = [config_key(fn, c) for c in configs]
    results = [cache.load_json(name) for name in names]
    todo = [i for i, r in enumerate(results) if r is None]
    bar = tqdm(total=len(todo), desc=desc, leave=False, disable=not todo or building_book())
    if executor is None:
        for i in todo:
            results[i] = _store(cache, names[i], fn(configs[i]))
            bar.update()
    else:
        futures = {executor.submit(fn, configs[i]): i for i in todo}
        for future in as_completed(futures):
            i = futures[future]
            results[i] = _store(cache, names[i], future.result())
            bar.update()
    bar.close()
    return results


def local_pool(workers: int | None = None) -> Executor | None:
    """Worker processes for sweeps of small models on this machine's CPU, one per core with one
    torch thread each: a tiny model's step is too short to split across threads, so runs side by
    side finish sooner (benchmarks/). None on a GPU, where one process keeps the device."""
    if device().type != "cpu":
        return None
    workers = workers or os.cpu_count() or 1
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=torch.set_num_threads, initargs=(1,))


def runs_table(specs, results) -> pd.DataFrame:
    """One row per run of `train_spec` results: depth, width, seed, train_chars, N, N_total,
    steps, tokens, flops, seconds, final_val, final_train."""
    rows = []
    for spec, result in zip(specs, results, strict=True):
        for run in result["runs"]:
            rows.append({"depth": spec["model"]["depth"], "width": spec["model"]["width"], "seed": spec.get("seed", 0),
                         "train_chars": spec.get("train_chars"), "N": result["N"], "N_total": result["N_total"],
                         **{k: run[k] for k in ("steps", "tokens", "flops", "seconds", "final_val", "final_train")}})
    return pd.DataFrame(rows)


def _store(cache: Cache, name: str, result):
    cache.save_json(name, result)
    return cache.load_json(name)  # exactly what a warm rerun will read (tuples become lists)


# ---------------------------------------------------------------- a training run as a sweep point


@functools.lru_cache(maxsize=4)
def dataset(val_fraction: float = 0.1, train_chars: int | None = None) -> CharDataset:
    """The Shakespeare dataset a `train_spec` trains on, built once per process."""
    return CharDataset(shakespeare(), val_fraction=val_fraction, train_chars=train_chars)


def train_spec(spec: dict) -> dict:
    """Train one model described by plain data, so that any worker can run it. `spec` holds
    `model` (GPTConfig fields) and `train` (TrainConfig fields), and optionally `budgets`
    (step budgets of one WSD run family, `train_budgets`), `seed`, `val_fraction` (0.1),
    `train_chars` (None: every training character) and `threads` (torch threads in the worker).
    Runs go through the run cache, shared with every chapter. Returns N (non-embedding), N_total
    and, per budget (or for the one run), its steps, tokens, FLOPs, seconds and evaluations."""
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    data, model_cfg, cfg, seed = _parse(spec)
    if spec.get("budgets"):
        hists = train_budgets_cached(model_cfg, cfg, data, spec["budgets"], seed=seed)
    else:
        hists = {cfg.steps: train_cached(model_cfg, cfg, data, seed=seed)[1]}
    runs = [{"steps": steps, "tokens": h.tokens[-1], "flops": h.flops[-1], "seconds": h.seconds[-1],
             "final_val": h.final_val, "final_train": h.eval_train[-1], "eval_tokens": h.eval_tokens,
             "eval_val": h.eval_val} for steps, h in hists.items()]
    return {"N": param_count(model_cfg), "N_total": param_count(model_cfg, non_embedding=False), "runs": runs}


def trained(spec: dict) -> tuple[GPT, History]:
    """The model and History of a one-run `train_spec` spec, from the run cache (trained here
    if a sweep has not trained it yet): sweep on a pool, then look at each model."""
    if spec.get("budgets"):
        raise ValueError("trained() takes a spec of one run; a spec with 'budgets' stores one run per budget")
    data, model_cfg, cfg, seed = _parse(spec)
    return train_cached(model_cfg, cfg, data, seed=seed)


def _parse(spec: dict) -> tuple[CharDataset, GPTConfig, TrainConfig, int]:
    train = dict(spec["train"])
    if "betas" in train:
        train["betas"] = tuple(train["betas"])
    data = dataset(spec.get("val_fraction", 0.1), spec.get("train_chars"))
    return data, GPTConfig(**spec["model"]), TrainConfig(**{**train, "progress": False}), spec.get("seed", 0)


train_spec.depends_on = (lmlab.corpus, lmlab.model, lmlab.mup, lmlab.train, param_count, flops_per_token, _parse)
