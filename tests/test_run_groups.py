"""Runs of the run cache trained in groups: each stored under its own spec, found alone, only the
missing ones trained, the sets a sweep makes, and a sweep's results equal to runs trained alone."""

import math

import pytest

from lmlab import run_groups, runs, sweep
from lmlab.cache import Cache
from lmlab.history import History
from lmlab.model import GPTConfig
from lmlab.runs import RunSpec
from lmlab.train import TrainConfig, TrainingDiverged


@pytest.fixture(autouse=True)
def _groups_on_this_cpu(monkeypatch):
    """A CPU trains runs alone (`run_groups.CPU_GROUP`); here it groups them, as an accelerator does."""
    monkeypatch.setattr(run_groups, "CPU_GROUP", 4)


def spec(seed=0, width=16, **changes) -> RunSpec:
    model = GPTConfig(runs.dataset().vocab_size, ctx=8, width=width, depth=1, heads=2)
    train = TrainConfig(steps=6, batch_size=2, lr=3e-3, eval_every=3, eval_batches=1, progress=False)
    return RunSpec(model, train, seed=seed).replace(**changes)


class Spy:
    """Records the groups `train_group` (or `train_group_budgets`) is called with."""

    def __init__(self, monkeypatch, name="train_group"):
        self.sizes, real = [], getattr(run_groups, name)

        def spy(models, *args, **kwargs):
            self.sizes.append(len(models))
            return real(models, *args, **kwargs)

        monkeypatch.setattr(run_groups, name, spy)


def test_each_run_of_a_group_is_stored_under_its_own_spec_and_found_alone(tmp_path, monkeypatch):
    cache, spy = Cache(tmp_path), Spy(monkeypatch)
    specs = [spec(0), spec(1), spec(2, dropout=0.1), spec(0, width=32)]
    out = run_groups.trained_all(specs, cache)
    assert spy.sizes == [3]  # one shape of three runs (seeds, dropout); the one of another width trains alone
    monkeypatch.setattr(run_groups, "CPU_GROUP", 1)
    assert sorted(run_groups.batches(specs)) == [[0], [1], [2], [3]]  # a real CPU: every run alone
    assert all(isinstance(o[6], History) and len(o[6].eval_val) == 3 for o in out)

    def no_training(*args, **kwargs):
        raise AssertionError("trained() trained a run that a group had stored")

    monkeypatch.setattr(runs, "train", no_training)
    for s, o in zip(specs, out, strict=True):
        model, hist = runs.trained(s, cache=cache)
        assert hist.eval_val == o[6].eval_val and not model.training
    assert out[0][6].eval_val != out[1][6].eval_val  # two seeds, two runs


def test_a_grouped_run_matches_the_run_trained_alone(tmp_path):
    """The run cache holds either; they must be the same run to the tolerance the group promises
    (tests/test_group.py checks this step by step, μP, clipping and decay included)."""
    s = spec(3, dropout=0.1)
    (grouped,) = run_groups.trained_all([s, spec(4)], Cache(tmp_path / "g"))[:1]
    _, alone = runs.trained(s, cache=Cache(tmp_path / "a"))
    for a, b in zip(grouped[6].train_loss, alone.train_loss, strict=True):
        assert math.isclose(a, b, rel_tol=1e-4)
    control = runs.trained(spec(5, dropout=0.1), cache=Cache(tmp_path / "a"))[1]  # another seed differs
    pairs = zip(grouped[6].train_loss, control.train_loss, strict=True)
    assert not all(math.isclose(a, b, rel_tol=1e-4) for a, b in pairs)


def test_only_the_missing_runs_train(tmp_path, monkeypatch):
    cache = Cache(tmp_path)
    runs.trained(spec(1), cache=cache)
    spy = Spy(monkeypatch)
    run_groups.trained_all([spec(0), spec(1), spec(2)], cache)
    assert spy.sizes == [2]
    run_groups.trained_all([spec(0), spec(1), spec(2)], cache)
    assert spy.sizes == [2]  # a warm call trains nothing


def test_a_family_trains_in_a_group_and_train_family_reads_it(tmp_path, monkeypatch):
    cache, spy = Cache(tmp_path), Spy(monkeypatch, "train_group_budgets")
    family = [spec(k, schedule="wsd", steps=8, eval_every=4, budgets=(4, 8)) for k in (0, 1)]
    out = run_groups.trained_all(family, cache)
    assert spy.sizes == [2] and all(sorted(o) == [4, 8] for o in out)
    monkeypatch.setattr(runs, "train_budgets", lambda *a, **k: pytest.fail("the family was not stored"))
    read = runs.train_family(family[1], cache=cache)
    assert {k: h.eval_val for k, h in read.items()} == {k: h.eval_val for k, h in out[1].items()}


def test_a_diverging_run_is_reported_and_not_stored_while_the_others_are(tmp_path):
    cache = Cache(tmp_path)
    bad, good = spec(0, lr=1e4, grad_clip=None), spec(1)
    out = run_groups.trained_all([bad, good], cache)
    assert isinstance(out[0][6], TrainingDiverged) and isinstance(out[1][6], History)
    data = runs.dataset()
    assert not cache.path(runs.run_name(bad, data), ".json").exists()
    assert cache.path(runs.run_name(good, data), ".json").exists()
    (summary,) = sweep.run([bad], sweep.train_spec, Cache(tmp_path / "s"))
    assert summary["runs"][0]["diverged_at"] is not None and summary["runs"][0]["final_val"] is None


def test_a_sweep_hands_each_shape_to_one_call(tmp_path, monkeypatch):
    calls = []
    real = sweep.train_spec.batch

    def batch(specs):
        calls.append(len(specs))
        return real(specs)

    monkeypatch.setattr(sweep.train_spec, "batch", batch)
    specs = [spec(0), spec(1), spec(0, width=32), spec(2)]
    results = sweep.run(specs, sweep.train_spec, Cache(tmp_path))
    assert sorted(calls) == [1, 3]
    alone = [sweep.train_spec(s) for s in specs]  # read back from the run cache: the same runs
    assert [r["runs"][0]["eval_val"] for r in results] == [r["runs"][0]["eval_val"] for r in alone]


def test_sets_follow_shape_and_size_alone(monkeypatch):
    assert sorted(len(c) for c in run_groups.chunks(list(range(9)), 8)) == [4, 5]
    assert run_groups.chunks([], 8) == []
    specs = [spec(k) for k in range(10)] + [spec(0, width=32)]
    sets = run_groups.batches(specs)
    assert sorted(map(len, sets)) == [1, 3, 3, 4]  # 10 of one shape in groups of at most 4, 1 of another
    assert sorted(i for s in sets for i in s) == list(range(11))
    assert all(len({run_groups.shape(specs[i]) for i in s}) == 1 for s in sets)


def test_bad_specs_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"specs\[1\] must be a lmlab.runs.RunSpec"):
        run_groups.trained_all([spec(0), {"width": 16}], Cache(tmp_path))
    with pytest.raises(ValueError, match=r"specs\[0\]"):
        sweep.train_specs(["x"])
