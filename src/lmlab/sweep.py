"""Run a grid of experiments once: a content-addressed result cache in front of any executor.

`run(configs, fn)` calls `fn(config)` for every config whose result is not yet
cached, on any `concurrent.futures.Executor` (a process pool on one machine, a
Dask cluster's `client.get_executor()` across many), and returns the results in
the order of `configs`. A result is named by a hash of `fn`'s source and the
config, so a warm rerun reads every result back in milliseconds and changing
either recomputes only what changed. Results are written as each one arrives,
so an interrupted sweep keeps what it finished; Ctrl-C also cancels the queue and
ends the running points of a process pool (`local_pool()`'s, which then starts
fresh workers for the next sweep).

    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(2) as pool:
        results = sweep.run(specs, sweep.train_spec, executor=pool)

    from dask.distributed import Client          # a cluster: the same call
    with Client("scheduler-address:8786") as client:
        results = sweep.run(specs, sweep.train_spec, executor=client.get_executor())

`fn` must be importable by the workers (a module-level function) and return JSON. When its
result also depends on other code, list it in `fn.depends_on` (modules or functions), as
`train_spec` does, and a change there recomputes too; `fn.check(result)`, when present,
raises ValueError for a stored result of the wrong content, which is then recomputed.
"""

import contextlib
import inspect
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import asdict, is_dataclass

import pandas as pd
import torch
from tqdm.auto import tqdm

import lmlab.run_groups
import lmlab.runs
from lmlab.budget import building_book
from lmlab.cache import Cache, key, source_fingerprint
from lmlab.checks import check_positive_int
from lmlab.device import device
from lmlab.model import param_count
from lmlab.run_groups import batches, trained_all
from lmlab.runs import RunSpec
from lmlab.train import TrainingDiverged


def config_key(fn, config) -> str:
    """The cache name of `fn(config)`: a hash of fn's name, of its source and what it depends on,
    and of the config (a RunSpec's model in the run cache's one spelling, `lmlab.runs.key_form`)."""
    cfg = asdict(config) if is_dataclass(config) else config
    if isinstance(config, RunSpec):
        cfg["model"] = lmlab.runs.key_form(config.model)
    source = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else type(fn)  # a callable object: its class
    code = source_fingerprint(source, *getattr(fn, "depends_on", ()))
    name = getattr(fn, "__name__", type(fn).__name__)
    return f"sweep-{name}-" + key(source.__module__, source.__qualname__, code, cfg)


def run(configs, fn, cache: Cache | None = None, executor: Executor | None = None,
        desc: str = "sweep") -> list:
    """`[fn(c) for c in configs]`, each from the cache when it is there, the rest on `executor`
    (in this process when None), cached as they finish. Where `fn.batch` exists (a list of
    configs to their results, as `train_spec`'s trains same-shape runs together), the missing
    configs go to it in the sets `fn.batches(configs)` makes, one call per set."""
    configs, cache = list(configs), cache or Cache()
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {fn!r}")
    if executor is not None and not isinstance(executor, Executor):
        raise ValueError(f"executor must be a concurrent.futures.Executor or None, got {type(executor).__name__}")
    check = getattr(fn, "check", None)
    names = [config_key(fn, c) for c in configs]
    results = [cache.load_json(name, check) for name in names]
    todo = [i for i, r in enumerate(results) if r is None]
    batch = getattr(fn, "batch", None)
    if batch is None:
        calls = [(fn, configs[i], [i]) for i in todo]
    else:
        sets = fn.batches([configs[i] for i in todo])
        calls = [(batch, [configs[todo[j]] for j in part], [todo[j] for j in part]) for part in sets]
    bar = tqdm(total=len(todo), desc=desc, leave=False, disable=not todo or building_book())
    futures = {}

    def store(index, value):
        values = value if batch is not None else [value]
        for i, v in zip(index, values, strict=True):
            results[i] = cache.get_or_compute(names[i], lambda v=v: v, check)
            bar.update()

    try:
        if executor is None:
            for call, arg, index in calls:
                store(index, call(arg))
        else:
            for call, arg, index in calls:
                futures[executor.submit(call, arg)] = index
            for future in as_completed(futures):
                store(futures[future], future.result())
    except BaseException as error:
        _stop(executor, futures, interrupted=isinstance(error, KeyboardInterrupt))
        for future, index in futures.items():  # finished, but not yet stored when the error came: keep it
            if results[index[0]] is None and future.done() and not future.cancelled() and future.exception() is None:
                with contextlib.suppress(Exception):
                    store(index, future.result())
        raise
    finally:
        bar.close()
    return results


def _stop(executor, futures, interrupted: bool) -> None:
    """A sweep that ends early cancels its points not yet started (a pool a notebook keeps would
    otherwise train the rest of the queue for no one); on Ctrl-C it also ends the running ones,
    where the executor allows (worker processes; threads cannot be stopped)."""
    for future in futures:
        future.cancel()
    if interrupted and isinstance(executor, LocalPool):
        executor.stop()
    elif interrupted and isinstance(executor, ProcessPoolExecutor):
        _terminate(executor)


def _terminate(pool: ProcessPoolExecutor, grace: float = 5.0) -> None:
    """End a process pool now, running tasks included, and wait until its workers are gone.
    (`shutdown(cancel_futures=True)` lets running tasks finish: after Ctrl-C a worker would train on
    for minutes.) A worker ended mid-write leaves only a temp file, which the cache never serves."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # shutdown forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        try:
            process.terminate()
        except (ValueError, ProcessLookupError):
            pass  # gone already
    for process in processes:
        try:
            process.join(grace)
            if process.is_alive():
                process.kill()
                process.join()
        except ValueError:
            pass  # closed by the pool's own clean-up


class LocalPool(Executor):
    """Worker processes (one torch thread each) that a sweep can stop and a notebook can keep:
    `stop()` ends the running work and the next `submit` starts fresh workers, so one pool serves
    every cell of a chapter even after a Ctrl-C (or a worker killed for memory). Spawned unless
    told otherwise: a forked worker would inherit the notebook's threads and accelerator state."""

    def __init__(self, workers: int, start_method: str = "spawn"):
        check_positive_int("workers", workers)
        self.workers, self.context, self._pool = workers, multiprocessing.get_context(start_method), None

    def submit(self, fn, /, *args, **kwargs):
        if self._pool is None or getattr(self._pool, "_broken", False):
            self._pool = ProcessPoolExecutor(self.workers, mp_context=self.context,
                                             initializer=torch.set_num_threads, initargs=(1,))
        return self._pool.submit(fn, *args, **kwargs)

    def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            _terminate(pool)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait, cancel_futures=cancel_futures)


def local_pool(workers: int | None = None) -> Executor | None:
    """Worker processes for sweeps of small models on this machine's CPU, one per core with one
    torch thread each: a tiny model's step is too short to split across threads, so runs side by
    side finish sooner (benchmarks/). None on a GPU, where one process keeps the device."""
    if workers is not None:
        check_positive_int("workers", workers)
    if device().type != "cpu":
        return None
    return LocalPool(workers or os.cpu_count() or 1)


# ---------------------------------------------------------------- a training run as a sweep point

RUN_KEYS = ("steps", "tokens", "flops", "seconds", "final_val", "best_val", "final_train", "avg_train",
            "eval_tokens", "eval_val", "diverged_at")


def train_spec(spec: RunSpec) -> dict:
    """Train the run (or WSD family) `spec` through the run cache, shared with every chapter, and
    summarise it as JSON: N (non-embedding), N_total and, per run, its steps, tokens, FLOPs,
    seconds, final and best validation loss, final training loss (eval mode), the training loss
    averaged over the run, the evaluations, and `diverged_at`: None, or the step at which the
    loss stopped being finite (then the losses are None: a divergence is recorded, not a NaN).
    A sweep trains the specs it lacks together (`train_specs`), same-shape runs in one group."""
    return train_specs([spec])[0]


def train_specs(specs) -> list[dict]:
    """`[train_spec(s) for s in specs]`, the runs the run cache lacks trained in groups of one shape
    (`lmlab.run_groups.trained_all`)."""
    specs = list(specs)
    for i, spec in enumerate(specs):
        if not isinstance(spec, RunSpec):
            raise ValueError(f"spec must be a lmlab.runs.RunSpec, got {type(spec).__name__} (specs[{i}])")
    return [_summary(spec, runs) for spec, runs in zip(specs, trained_all(specs), strict=True)]


def _summary(spec: RunSpec, runs: dict) -> dict:
    summary = {"N": param_count(spec.model), "N_total": param_count(spec.model, non_embedding=False), "runs": []}
    for one in spec.runs():
        h = runs[one.train.steps]
        if isinstance(h, TrainingDiverged):
            tokens = one.train.steps * one.train.batch_size * one.model.ctx
            summary["runs"].append({**dict.fromkeys(RUN_KEYS), "steps": one.train.steps, "tokens": tokens,
                                    "flops": tokens * lmlab.model.flops_per_token(one.model), "diverged_at": h.step})
            continue
        summary["runs"].append({
            "steps": one.train.steps, "tokens": h.tokens[-1], "flops": h.flops[-1], "seconds": h.seconds[-1],
            "final_val": h.final_val, "best_val": h.best_val, "final_train": h.eval_train[-1],
            "avg_train": sum(h.train_loss) / len(h.train_loss), "eval_tokens": h.eval_tokens, "eval_val": h.eval_val,
            "diverged_at": None})
    return summary


def _check_summary(result) -> None:
    if not (isinstance(result, dict) and {"N", "N_total", "runs"} <= set(result) and isinstance(result["runs"], list)
            and result["runs"] and all(isinstance(r, dict) and set(RUN_KEYS) <= set(r) for r in result["runs"])):
        raise ValueError(f"a train_spec result needs N, N_total and runs with {RUN_KEYS}")


train_spec.check = _check_summary
train_spec.batch, train_spec.batches = train_specs, batches  # a sweep trains same-shape runs together
# everything a run's numbers depend on: a summary kept from older training code would disagree
# with the run that `trained` recomputes under its new key
train_spec.depends_on = (lmlab.runs, lmlab.run_groups, *lmlab.runs.shaping_code())


def runs_table(specs, results) -> pd.DataFrame:
    """One row per run of `train_spec` results: depth, width, seed, train_chars, N, N_total and the
    run's summary (`RUN_KEYS`)."""
    rows = []
    for spec, result in zip(specs, results, strict=True):
        for one in result["runs"]:
            rows.append({"depth": spec.model.depth, "width": spec.model.width, "seed": spec.seed,
                         "train_chars": spec.train_chars, "N": result["N"], "N_total": result["N_total"],
                         **{k: one[k] for k in RUN_KEYS}})
    return pd.DataFrame(rows)
