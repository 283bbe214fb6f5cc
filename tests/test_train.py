import importlib
import math
from dataclasses import replace

import pytest
import torch

from lmlab.cache import Cache
from lmlab.corpus import PLAY_SEPARATOR, CharDataset
from lmlab.history import History
from lmlab.model import GPT, GPTConfig, flops_per_token
from lmlab.runs import RunSpec, stopped, train_family, trained
from lmlab.train import TrainConfig, evaluate, train

runs_module = importlib.import_module("lmlab.runs")


def spec_of(model_cfg, train_cfg, seed=0) -> RunSpec:
    return RunSpec(model_cfg, train_cfg, seed=seed)

# ---------------------------------------------------------------- the config and its schedule


@pytest.mark.parametrize(("kw", "name"), [
    ({"steps": 0}, "steps"),
    ({"steps": 10, "schedule": "foo"}, "schedule"),
    ({"steps": 10, "lr": 0}, "lr"),
    ({"steps": 10, "lr": -1e-3}, "lr"),
    ({"steps": 10, "batch_size": 0}, "batch_size"),
    ({"steps": 10, "eval_every": 0}, "eval_every"),
    ({"steps": 10, "eval_batches": 0}, "eval_batches"),
    ({"steps": 10, "warmup_steps": 11}, "warmup_steps"),
    ({"steps": 10, "warmup_steps": -1}, "warmup_steps"),
    ({"steps": 10, "min_lr_ratio": 1.5}, "min_lr_ratio"),
])
def test_train_config_validation(kw, name):
    with pytest.raises(ValueError, match=name):
        TrainConfig(**kw)


def test_warmup_ramps_linearly():
    cfg = TrainConfig(steps=100, warmup_steps=10, schedule="constant")
    assert [cfg.lr_factor(s) for s in range(10)] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert all(cfg.lr_factor(s) == 1.0 for s in range(10, 100))


def test_constant_schedule_is_one():
    cfg = TrainConfig(steps=50, schedule="constant")
    assert {cfg.lr_factor(s) for s in range(50)} == {1.0}


def test_cosine_decays_to_min_lr_ratio():
    cfg = TrainConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    factors = [cfg.lr_factor(s) for s in range(100)]
    assert factors[9] == 1.0  # the warmup's last step reaches the peak
    assert cfg.lr_factor(10) == 1.0  # the cosine starts at the peak
    assert all(a > b for a, b in zip(factors[10:], factors[11:], strict=False))  # then strictly decreasing
    assert cfg.lr_factor(55) == pytest.approx(0.55)  # halfway: the middle of [0.1, 1]
    assert cfg.lr_factor(100) == pytest.approx(0.1)  # ends at min_lr_ratio
    assert min(factors[10:]) > 0.1  # the last step still trains a little
    assert TrainConfig(steps=20, min_lr_ratio=0.0).lr_factor(20) == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------- train()


def test_history_shape_and_accounting(tiny_model, tiny_data, tiny_train_cfg):
    cfg = replace(tiny_train_cfg, steps=7, eval_every=3)
    hist = train(tiny_model, tiny_data, cfg)
    assert hist.step == list(range(1, 8))
    assert len(hist.step) == len(hist.train_loss) == len(hist.tokens) == len(hist.flops) == len(hist.seconds) == 7
    assert hist.eval_step == [0, 3, 6, 7]  # step 0, every eval_every, and the last step
    per_step = cfg.batch_size * tiny_model.config.ctx
    assert hist.tokens == [s * per_step for s in hist.step]
    assert hist.eval_tokens == [s * per_step for s in hist.eval_step]
    fpt = flops_per_token(tiny_model.config)
    assert hist.flops == [fpt * t for t in hist.tokens]
    assert hist.seconds == sorted(hist.seconds) and hist.seconds[0] > 0
    assert len(hist.eval_train) == len(hist.eval_val) == 4
    assert all(math.isfinite(v) for v in hist.train_loss + hist.eval_train + hist.eval_val)
    assert hist.final_val == hist.eval_val[-1]
    assert hist.best_val == min(hist.eval_val)
    assert hist.tokens_per_second() == hist.tokens[-1] / hist.seconds[-1]
    assert not tiny_model.training  # left in eval mode


def test_history_round_trips_through_a_dict(tiny_model, tiny_data, tiny_train_cfg):
    hist = train(tiny_model, tiny_data, tiny_train_cfg)
    assert History.from_dict(hist.to_dict()) == hist


def test_first_evaluation_is_the_untrained_model(tiny_cfg, tiny_data, tiny_train_cfg):
    before = evaluate(GPT(tiny_cfg, seed=0), tiny_data, tiny_train_cfg.batch_size, tiny_train_cfg.eval_batches)
    hist = train(GPT(tiny_cfg, seed=0), tiny_data, tiny_train_cfg)
    assert hist.eval_train[0] == before["train"]
    assert hist.eval_val[0] == before["val"]


def test_same_seed_same_losses(tiny_cfg, tiny_data, tiny_train_cfg):
    a = train(GPT(tiny_cfg, seed=1), tiny_data, tiny_train_cfg, seed=3)
    b = train(GPT(tiny_cfg, seed=1), tiny_data, tiny_train_cfg, seed=3)
    assert a.train_loss == b.train_loss
    assert a.eval_val == b.eval_val


def test_same_seed_same_losses_with_dropout(tiny_cfg, tiny_data, tiny_train_cfg):
    model_cfg = replace(tiny_cfg, dropout=0.3)
    a = train(GPT(model_cfg, seed=1), tiny_data, tiny_train_cfg)
    b = train(GPT(model_cfg, seed=1), tiny_data, tiny_train_cfg)
    assert a.train_loss == b.train_loss


def test_different_seed_different_losses(tiny_cfg, tiny_data, tiny_train_cfg):
    a = train(GPT(tiny_cfg, seed=1), tiny_data, tiny_train_cfg, seed=0)
    b = train(GPT(tiny_cfg, seed=1), tiny_data, tiny_train_cfg, seed=1)
    assert a.train_loss != b.train_loss
    assert a.eval_val[0] == b.eval_val[0]  # same model, same fixed evaluation batches


def test_training_reduces_the_loss():
    docs = [f"ACT {i}:\n" + "hey nonny nonny, hey nonny no.\n" * 8 for i in range(10)]
    data = CharDataset(PLAY_SEPARATOR.join(docs), val_fraction=0.2)
    model = GPT(GPTConfig(vocab_size=data.vocab_size, ctx=16, width=32, depth=1, heads=2), seed=0)
    cfg = TrainConfig(steps=60, batch_size=8, lr=1e-2, warmup_steps=5, eval_every=30, eval_batches=2, progress=False)
    hist = train(model, data, cfg)
    assert hist.eval_val[0] > math.log(data.vocab_size) - 0.3  # starts near uniform
    assert hist.eval_val[-1] < 0.25 * hist.eval_val[0]
    assert hist.eval_train[-1] < 0.25 * hist.eval_train[0]
    assert sum(hist.train_loss[-5:]) < 0.5 * sum(hist.train_loss[:5])


def test_callbacks_once_per_evaluation(tiny_model, tiny_data, tiny_train_cfg):
    seen = []
    cfg = replace(tiny_train_cfg, steps=6, eval_every=2)
    hist = train(tiny_model, tiny_data, cfg, callbacks=[lambda h: seen.append(list(h.eval_step))])
    assert seen == [[0], [0, 2], [0, 2, 4], [0, 2, 4, 6]]
    assert len(seen) == len(hist.eval_step)


def test_train_leaves_the_global_rng_alone(tiny_model, tiny_data, tiny_train_cfg):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    train(tiny_model, tiny_data, tiny_train_cfg, seed=9)
    assert torch.equal(torch.get_rng_state(), state)


def test_evaluate_restores_the_mode_and_is_repeatable(tiny_model, tiny_data):
    tiny_model.train()
    a = evaluate(tiny_model, tiny_data, 4, 2)
    assert tiny_model.training
    tiny_model.eval()
    assert evaluate(tiny_model, tiny_data, 4, 2) == a
    assert not tiny_model.training
    assert set(a) == {"train", "val"}


# ---------------------------------------------------------------- the run cache: runs.trained()


def test_trained_trains_once(tiny_cfg, tiny_data, tiny_train_cfg, monkeypatch, tmp_path):
    model, hist = trained(spec_of(tiny_cfg, tiny_train_cfg, seed=2), data=tiny_data)
    assert sorted(p.suffix for p in (tmp_path / "lmlab_cache").iterdir()) == [".json", ".pt"]

    def no_training(*args, **kwargs):
        raise AssertionError("train() was called for a cached run")

    monkeypatch.setattr(runs_module, "train", no_training)
    seen = []
    model2, hist2 = trained(spec_of(tiny_cfg, replace(tiny_train_cfg, progress=not tiny_train_cfg.progress), seed=2),
                            callbacks=[seen.append], data=tiny_data)
    assert hist2 == hist
    assert seen == [hist2]  # callbacks still see the (whole) history once
    assert not model2.training
    sd, sd2 = model.state_dict(), model2.state_dict()
    assert all(torch.equal(sd[k], sd2[k]) for k in sd)
    x, _ = tiny_data.batch("val", 2, tiny_cfg.ctx, torch.Generator().manual_seed(0))
    assert torch.equal(model(x), model2(x))


def test_trained_key_covers_every_setting(tiny_cfg, tiny_data, tiny_train_cfg, tmp_path):
    cache = Cache(tmp_path / "c")
    trained(spec_of(tiny_cfg, tiny_train_cfg, seed=0), cache=cache, data=tiny_data)
    trained(spec_of(tiny_cfg, tiny_train_cfg, seed=1), cache=cache, data=tiny_data)
    trained(spec_of(tiny_cfg, replace(tiny_train_cfg, lr=1e-3)), cache=cache, data=tiny_data)
    trained(spec_of(replace(tiny_cfg, width=16), tiny_train_cfg), cache=cache, data=tiny_data)
    other_data = CharDataset(PLAY_SEPARATOR.join(tiny_data.train.text.split(PLAY_SEPARATOR)[::-1]
                                                 + [tiny_data.val.text]), val_fraction=0.2)
    trained(spec_of(replace(tiny_cfg, vocab_size=other_data.vocab_size), tiny_train_cfg), cache=cache, data=other_data)
    assert len(list(cache.root.glob("*.pt"))) == 5
    trained(spec_of(tiny_cfg, tiny_train_cfg), cache=cache, data=tiny_data)
    assert len(list(cache.root.glob("*.pt"))) == 5


def test_a_seed_changes_init_data_order_and_masks(tiny_cfg, tiny_data, tiny_train_cfg):
    """One field, three sources of noise: a RunSpec's seed reaches the init and the training loop."""
    model_cfg = replace(tiny_cfg, dropout=0.2)
    a, b = (trained(spec_of(model_cfg, tiny_train_cfg, seed=s), data=tiny_data)[1] for s in (0, 1))
    assert a.eval_val[0] != b.eval_val[0]  # another init
    same_init = train(GPT(model_cfg, seed=0), tiny_data, tiny_train_cfg, seed=1)
    assert same_init.train_loss != a.train_loss and same_init.train_loss == b.train_loss[:0] + same_init.train_loss
    fresh = train(GPT(model_cfg, seed=1), tiny_data, tiny_train_cfg, seed=1)
    assert fresh.train_loss == b.train_loss  # trained(spec) is GPT(cfg, seed) trained with seed


def test_trained_drops_a_corrupt_checkpoint(tiny_cfg, tiny_data, tiny_train_cfg, tmp_path):
    _, hist = trained(spec_of(tiny_cfg, tiny_train_cfg), data=tiny_data)
    (pt,) = (tmp_path / "lmlab_cache").glob("*.pt")
    pt.write_bytes(b"not a checkpoint")
    calls = []
    real_train = runs_module.train

    def counting_train(*args, **kwargs):
        calls.append(1)
        return real_train(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runs_module, "train", counting_train)
        with pytest.warns(UserWarning, match="invalid"):
            _, hist2 = trained(spec_of(tiny_cfg, tiny_train_cfg), data=tiny_data)
    assert calls == [1]  # retrained
    assert hist2.train_loss == hist.train_loss  # the same run again
    assert GPT(tiny_cfg).load_state_dict(torch.load(pt, weights_only=True))  # a good checkpoint is back


def test_stopped_at_the_last_step_is_the_trained_run(tiny_cfg, tiny_data, tiny_train_cfg):
    spec = spec_of(replace(tiny_cfg, dropout=0.2), tiny_train_cfg, seed=3)  # masks too must replay
    model, hist = trained(spec, data=tiny_data)
    again, again_hist = stopped(spec, tiny_train_cfg.steps, data=tiny_data)
    assert again_hist.eval_val == hist.eval_val and again_hist.train_loss == hist.train_loss
    sd, sd2 = model.state_dict(), again.state_dict()
    assert all(torch.equal(sd[k], sd2[k]) for k in sd)


def test_stopped_replays_the_run_to_its_step_and_stores_it(tiny_cfg, tiny_data, tiny_train_cfg, monkeypatch,
                                                           tmp_path):
    spec = spec_of(replace(tiny_cfg, dropout=0.2), tiny_train_cfg, seed=3)
    cache = Cache(tmp_path / "c")
    _, hist = trained(spec, cache=cache, data=tiny_data)
    model, early = stopped(spec, 3, cache=cache, data=tiny_data)
    assert early.eval_step == [0, 3] and early.eval_val == hist.eval_val[:2]  # the same run, cut at step 3
    assert early.train_loss == hist.train_loss[:3]
    assert not model.training
    assert len(list(cache.root.glob("*.pt"))) == 2  # stored beside the run, under its own name

    def no_training(*args, **kwargs):
        raise AssertionError("train_until() was called for a stored stop")

    monkeypatch.setattr(runs_module, "train_until", no_training)
    model2, early2 = stopped(spec, 3, cache=cache, data=tiny_data)
    assert early2 == early
    sd, sd2 = model.state_dict(), model2.state_dict()
    assert all(torch.equal(sd[k], sd2[k]) for k in sd)
    with pytest.raises(ValueError, match="step"):
        stopped(spec, tiny_train_cfg.steps + 1, cache=cache, data=tiny_data)


# ---------------------------------------------------------------- WSD and shared stable phases

from lmlab.train import train_budgets  # noqa: E402


def test_wsd_holds_then_decays_linearly():
    cfg = TrainConfig(steps=100, warmup_steps=10, schedule="wsd", cooldown_fraction=0.2, min_lr_ratio=0.0)
    assert cfg.decay_start == 80
    assert [cfg.lr_factor(s) for s in (9, 10, 79)] == [1.0, 1.0, 1.0]
    assert [cfg.lr_factor(s) for s in (80, 89, 99)] == pytest.approx([0.95, 0.5, 0.0])
    with pytest.raises(ValueError, match="warmup_steps must end before the cooldown"):
        TrainConfig(steps=10, warmup_steps=9, schedule="wsd")
    with pytest.raises(ValueError, match="cooldown_fraction"):
        TrainConfig(steps=10, schedule="wsd", cooldown_fraction=1.5)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_budgets_share_a_stable_phase_and_match_runs_trained_alone(tiny_data, tiny_cfg, dropout):
    """Every budget's run equals training it alone, bit for bit: weights, losses, evaluations
    (with dropout, the snapshots carry the mask RNG too)."""
    model_cfg = replace(tiny_cfg, dropout=dropout)
    cfg = TrainConfig(steps=20, batch_size=4, lr=3e-3, schedule="wsd", warmup_steps=2, eval_every=5, eval_batches=2,
                      progress=False)
    budgets = train_budgets(GPT(model_cfg, seed=0), tiny_data, cfg, [12, 6, 20, 10])
    assert list(budgets) == [6, 10, 12, 20]
    for steps, (hist, state) in budgets.items():
        alone = GPT(model_cfg, seed=0)
        expected = train(alone, tiny_data, replace(cfg, steps=steps))
        assert hist.train_loss == expected.train_loss and hist.eval_val == expected.eval_val, steps
        assert hist.eval_step == expected.eval_step and hist.step == list(range(1, steps + 1))
        assert all(torch.equal(v, state[k]) for k, v in alone.state_dict().items()), steps


def test_budgets_need_wsd(tiny_data, tiny_model):
    with pytest.raises(ValueError, match="schedule must be 'wsd'"):
        train_budgets(tiny_model, tiny_data, TrainConfig(steps=10), [5, 10])
    with pytest.raises(ValueError, match="warmup_steps"):
        train_budgets(tiny_model, tiny_data, TrainConfig(steps=20, schedule="wsd", warmup_steps=8), [5, 20])


def test_a_cached_family_stores_the_runs_trained_stores(tiny_data, tiny_cfg, tmp_path):
    cache = Cache(tmp_path)
    cfg = TrainConfig(steps=8, batch_size=4, schedule="wsd", eval_every=4, eval_batches=1, progress=False)
    hists = train_family(RunSpec(tiny_cfg, cfg, budgets=(4, 8)), cache=cache, data=tiny_data)
    files = sorted(tmp_path.iterdir())
    _, alone = trained(RunSpec(tiny_cfg, replace(cfg, steps=8)), cache=cache, data=tiny_data)  # read, not trained
    assert sorted(tmp_path.iterdir()) == files and alone.eval_val == hists[8].eval_val
    again = train_family(RunSpec(tiny_cfg, cfg, budgets=(8, 4)), cache=cache, data=tiny_data)
    assert {s: h.eval_val for s, h in again.items()} == {s: h.eval_val for s, h in hists.items()}
