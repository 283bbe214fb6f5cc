import json
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from lmlab import runs, sweep
from lmlab.cache import Cache
from lmlab.model import GPTConfig
from lmlab.runs import RunSpec
from lmlab.train import TrainConfig

CONFIGS = [{"width": w, "lr": lr} for w in (16, 32) for lr in (1e-3, 3e-3)]


class Counting:
    """A sweep function that counts its calls (threads only: it is not importable by a worker)."""

    def __init__(self):
        self.calls, self.lock = [], threading.Lock()

    def __call__(self, config):
        with self.lock:
            self.calls.append(config)
        return {"score": config["width"] * config["lr"]}


def scored(config):
    return {"score": config["width"] * config["lr"]}


def test_results_come_back_in_order_and_only_the_missing_ones_run(tmp_path):
    cache = Cache(tmp_path)
    first = sweep.run(CONFIGS[:2], scored, cache)
    assert first == [scored(c) for c in CONFIGS[:2]]
    calls = []

    def spy(config):
        calls.append(config)
        return scored(config)

    spy.depends_on = ()
    assert sweep.run(CONFIGS, spy, cache) == [scored(c) for c in CONFIGS]
    assert len(calls) == 4  # another function's results are not this one's
    calls.clear()
    assert sweep.run(list(reversed(CONFIGS)), spy, cache) == [scored(c) for c in reversed(CONFIGS)]
    assert calls == []  # a warm rerun computes nothing


def test_a_change_of_code_or_config_recomputes():
    assert sweep.config_key(scored, CONFIGS[0]) != sweep.config_key(scored, CONFIGS[1])
    assert sweep.config_key(scored, CONFIGS[0]) != sweep.config_key(json.dumps, CONFIGS[0])
    assert sweep.config_key(scored, CONFIGS[0]) == sweep.config_key(scored, dict(reversed(CONFIGS[0].items())))
    before = sweep.config_key(sweep.train_spec, CONFIGS[0])
    sweep.train_spec.depends_on, saved = (*sweep.train_spec.depends_on, json.dumps), sweep.train_spec.depends_on
    try:  # what train_spec depends on is part of its key
        assert sweep.config_key(sweep.train_spec, CONFIGS[0]) != before
    finally:
        sweep.train_spec.depends_on = saved


def test_any_executor(tmp_path):
    counting = Counting()
    with ThreadPoolExecutor(2) as pool:
        results = sweep.run(CONFIGS, counting, Cache(tmp_path), executor=pool)
    assert results == [scored(c) for c in CONFIGS] and len(counting.calls) == len(CONFIGS)
    with ProcessPoolExecutor(2) as pool:  # an importable function crosses process boundaries
        assert sweep.run(CONFIGS, json.dumps, Cache(tmp_path), executor=pool) == [json.dumps(c) for c in CONFIGS]


def test_an_interrupted_sweep_keeps_what_finished(tmp_path):
    cache = Cache(tmp_path)

    def fails_on_the_third(config):
        if config is CONFIGS[2]:
            raise RuntimeError("killed")
        return scored(config)

    with pytest.raises(RuntimeError, match="killed"):
        sweep.run(CONFIGS, fails_on_the_third, cache)
    assert [cache.load_json(sweep.config_key(fails_on_the_third, c)) is not None for c in CONFIGS] == [
        True, True, False, False]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="fn must be callable"):
        sweep.run(CONFIGS, "scored", Cache(tmp_path))
    with pytest.raises(ValueError, match="executor must be a concurrent.futures.Executor"):
        sweep.run(CONFIGS, scored, Cache(tmp_path), executor=object())


def tiny_specs():
    model = GPTConfig(runs.dataset().vocab_size, ctx=8, width=16, depth=1, heads=2)
    train = TrainConfig(steps=3, batch_size=2, eval_every=3, eval_batches=1, progress=False)
    return [RunSpec(model, train, seed=s) for s in (0, 1)]


def test_train_spec_trains_a_real_model_from_its_description(tmp_path):
    results = sweep.run(tiny_specs(), sweep.train_spec, Cache(tmp_path))
    for r in results:
        (run,) = r["runs"]
        assert r["N"] == 12 * 16**2 + 4 * 16 + 2 * 16 and r["N_total"] > r["N"]
        assert run["steps"] == 3 and run["tokens"] == 3 * 2 * 8 and len(run["eval_val"]) == 2
    assert results[0]["runs"][0]["eval_val"] != results[1]["runs"][0]["eval_val"]  # two seeds, two runs


def test_train_spec_trains_a_family_of_budgets(tmp_path):
    spec = tiny_specs()[0].replace(budgets=(4, 8), schedule="wsd", steps=8, eval_every=4)
    (result,) = sweep.run([spec], sweep.train_spec, Cache(tmp_path))
    assert [r["steps"] for r in result["runs"]] == [4, 8]
    assert [r["tokens"] for r in result["runs"]] == [4 * 16, 8 * 16]


def test_a_dask_cluster_runs_the_same_sweep(tmp_path, monkeypatch):
    """The documented cluster recipe, on a LocalCluster of worker processes on 127.0.0.1:
    the same results as in this process, bit for bit."""
    distributed = pytest.importorskip("distributed")
    specs = tiny_specs()
    here = sweep.run(specs, sweep.train_spec, Cache(tmp_path / "here"))
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path / "workers"))  # the workers' own run cache
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        there = sweep.run(specs, sweep.train_spec, Cache(tmp_path / "there"), executor=client.get_executor())
    def losses(results):
        return [[run["eval_val"] for run in r["runs"]] for r in results]

    assert losses(there) == losses(here)
    assert any((tmp_path / "workers").glob("run-*")), "the workers trained (and cached) the runs themselves"


def test_trained_loads_the_model_a_sweep_trained(tmp_path):
    spec = tiny_specs()[0]
    (result,) = sweep.run([spec], sweep.train_spec, Cache(tmp_path))
    model, hist = runs.trained(spec)
    assert hist.eval_val == result["runs"][0]["eval_val"] and not model.training
    with pytest.raises(ValueError, match="budgets"):
        runs.trained(spec.replace(budgets=(2, 3), schedule="wsd"))


def test_a_run_summary_is_keyed_by_all_the_code_its_run_is_keyed_by(monkeypatch):
    """When the training code changes, the run cache names the run anew; the sweep's summary of
    it must be recomputed too, or a notebook would mix old summaries with newly trained models."""
    import inspect
    import sys

    from lmlab import cache as cache_module

    spec, data = tiny_specs()[0], runs.dataset()
    before = sweep.config_key(sweep.train_spec, spec), runs.run_name(spec, data)
    source = inspect.getsource

    def edited(module):  # what a change of lmlab.train's source looks like to the fingerprints
        return source(module) + ("\n# edited" if module is sys.modules[edited.target] else "")

    monkeypatch.setattr(cache_module.inspect, "getsource", edited)
    edited.target = "lmlab.train"
    after = sweep.config_key(sweep.train_spec, spec), runs.run_name(spec, data)
    assert after[0] != before[0] and after[1] != before[1]
    edited.target = "lmlab.checks"  # the control: code no run depends on changes neither key
    assert (sweep.config_key(sweep.train_spec, spec), runs.run_name(spec, data)) == before
