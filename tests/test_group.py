"""Same-shape runs trained together (lmlab.group, group_optim, group_train) equal the runs trained alone.

The reference is always `lmlab.train`: the same models, configs and seeds trained one by
one. Step-for-step equality holds because a group draws each run's batches and dropout
masks from generators in the states a separate run's would be in, and does AdamW's
arithmetic in torch's order; on the CPU the two differ only in how the batched products
round (about 1e-7).
"""

import importlib
import math

import fake_accelerator
import pytest
import torch

from lmlab import claims
from lmlab.device import Precision, precision_for
from lmlab.group import group_key
from lmlab.group_optim import GroupAdamW, GroupScaler, clip_per_run
from lmlab.group_train import GroupRun, train_group, train_group_budgets
from lmlab.model import GPT, GPTConfig
from lmlab.train import TrainConfig, TrainingDiverged, train, train_budgets

group_train_module = importlib.import_module("lmlab.group_train")
RTOL = 1e-4  # the bound for fp32, step for step


def cfg_of(data, **kw) -> GPTConfig:
    return GPTConfig(**{"vocab_size": data.vocab_size, "ctx": 16, "width": 32, "depth": 2, "heads": 2, **kw})


def recipe(**kw) -> TrainConfig:
    return TrainConfig(**{"steps": 20, "batch_size": 4, "lr": 3e-3, "eval_every": 5, "eval_batches": 2,
                          "progress": False, **kw})


def alone(data, model_cfgs, train_cfgs, seeds, models=None) -> list:
    """Each run trained by itself: its History, or the TrainingDiverged it raised; the trained models
    are appended to `models` when given."""
    out = []
    for m, c, s in zip(model_cfgs, train_cfgs, seeds, strict=True):
        model = GPT(m, s)
        try:
            out.append(train(model, data, c, s))
        except TrainingDiverged as e:
            out.append(e)
        if models is not None:
            models.append(model)
    return out


def assert_same_history(group, separate):
    assert group.step == separate.step and group.tokens == separate.tokens and group.flops == separate.flops
    assert group.eval_step == separate.eval_step and group.eval_tokens == separate.eval_tokens
    for name in ("train_loss", "eval_train", "eval_val"):
        assert getattr(group, name) == pytest.approx(getattr(separate, name), rel=RTOL), name


# every per-run setting a group allows, varied at once: seeds, LR, init scale, α_in, α_out, α_attn, weight decay,
# clipping (one run unclipped), μP against SP (per-kind LRs and the attention scale), zero readout, dropout
RUNS = [
    ({}, {}, 0),
    ({"init_std": 0.05, "input_mult": 2.0}, {"lr": 1e-2, "weight_decay": 0.1}, 1),
    ({"param": "mup", "base_width": 16, "output_mult": 0.5, "zero_readout": True}, {"grad_clip": None}, 2),
    ({"param": "sp_fanin", "attn_mult": 4.0}, {"lr": 1e-3, "grad_clip": 0.05, "weight_decay": 0.3}, 3),
]


@pytest.mark.parametrize("dropouts", [(0.0, 0.0, 0.0, 0.0), (0.1, 0.0, 0.3, 0.2)], ids=["no dropout", "dropout"])
def test_a_group_trains_each_run_as_it_trains_alone(tiny_data, dropouts):
    """The issue's equality: 20 steps, training losses (and evaluations) within relative 1e-4 in fp32, for
    runs that differ in every per-run setting at once, with dropout masks matched site by site."""
    model_cfgs = [cfg_of(tiny_data, dropout=p, **m) for (m, _, _), p in zip(RUNS, dropouts, strict=True)]
    train_cfgs = [recipe(**t) for _, t, _ in RUNS]
    seeds = [s for _, _, s in RUNS]
    models = [GPT(m, s) for m, s in zip(model_cfgs, seeds, strict=True)]
    grouped, references = train_group(models, tiny_data, train_cfgs, seeds), []
    separate = alone(tiny_data, model_cfgs, train_cfgs, seeds, references)
    for i, (g, s) in enumerate(zip(grouped, separate, strict=True)):
        assert len(g.train_loss) == 20, i
        assert_same_history(g, s)
        # the weights come back in GPT's own format, trained: the group's models are the separate runs' models
        state, expected = models[i].state_dict(), references[i].state_dict()
        assert list(state) == list(expected) and all(state[k].shape == expected[k].shape for k in state)
        assert all(torch.allclose(state[k], expected[k], rtol=1e-3, atol=1e-5) for k in state), i


def test_a_mask_depends_on_its_own_run_only(tiny_data):
    """Control for the mask matching: the same run at dropout 0.2 in another group position, beside other
    runs, gives the same losses; at another seed (other masks, other batches) it does not."""
    c = recipe(steps=6, eval_every=3)
    m = cfg_of(tiny_data, dropout=0.2)
    solo = train_group([GPT(m, 5)], tiny_data, [c], [5])[0]
    crowd = train_group([GPT(m, 9), GPT(cfg_of(tiny_data), 1), GPT(m, 5)], tiny_data, [c] * 3, [9, 1, 5])
    assert crowd[2].train_loss == pytest.approx(solo.train_loss, rel=RTOL)
    assert crowd[0].train_loss != pytest.approx(solo.train_loss, rel=RTOL)


def test_over_five_seeds_grouped_and_separate_runs_are_indistinguishable(tiny_data):
    """At the same seeds a group's final losses equal the separate runs' (a paired interval inside ±1e-4);
    at five fresh seeds (other inits, batches and masks, as a GPU's other dropout kernel gives) the
    paired t-interval holds 0. Control: the same comparison against runs at 10× the LR excludes 0."""
    m, c = cfg_of(tiny_data, depth=1, dropout=0.1), recipe(steps=30, eval_every=30, lr=1e-2)
    slow = recipe(steps=30, eval_every=30, lr=1e-3)
    seeds, fresh = [0, 1, 2, 3, 4], [10, 11, 12, 13, 14]
    separate = [h.final_val for h in alone(tiny_data, [m] * 5, [c] * 5, seeds)]
    group = train_group([GPT(m, s) for s in seeds + fresh + seeds], tiny_data, [c] * 10 + [slow] * 5,
                        seeds + fresh + seeds)
    same, other, control = ([h.final_val for h in group[i:i + 5]] for i in (0, 5, 10))
    at_same = claims.paired(same, separate)
    assert -1e-4 < at_same.low <= at_same.high < 1e-4, at_same
    at_fresh = claims.paired(other, separate)
    assert at_fresh.low < 0 < at_fresh.high, at_fresh
    at_other_lr = claims.paired(control, separate)
    assert not at_other_lr.low < 0 < at_other_lr.high, at_other_lr


def test_one_diverging_run_stops_alone_and_the_others_finish(tiny_data):
    """A run whose loss becomes NaN (lr 1e30) and one that rises above the DIVERGED bar (lr 10, no
    clipping) each stop where `train` raises, with its TrainingDiverged; the healthy runs finish as alone."""
    m = cfg_of(tiny_data, depth=1)
    cfgs = [recipe(), recipe(lr=1e30, grad_clip=None), recipe(lr=10.0, grad_clip=None), recipe(lr=1e-2)]
    seeds = [0, 1, 1, 2]
    grouped = train_group([GPT(m, s) for s in seeds], tiny_data, cfgs, seeds)
    separate = alone(tiny_data, [m] * 4, cfgs, seeds)
    for i in (1, 2):
        assert isinstance(grouped[i], TrainingDiverged) and isinstance(separate[i], TrainingDiverged), i
        assert grouped[i].step == separate[i].step and grouped[i].lr == cfgs[i].lr, i
    assert math.isnan(grouped[1].loss) and grouped[1].step == 2  # NaN: stopped at the first non-finite step
    assert grouped[2].loss > 10 * math.log(tiny_data.vocab_size)  # the evaluation bar
    for i in (0, 3):
        assert_same_history(grouped[i], separate[i])


def test_a_group_where_every_run_diverges_returns_every_error(tiny_data):
    m = cfg_of(tiny_data, depth=1)
    out = train_group([GPT(m, 0), GPT(m, 1)], tiny_data, [recipe(lr=1e30, grad_clip=None)] * 2, [0, 1])
    assert all(isinstance(e, TrainingDiverged) for e in out)


def test_wsd_families_share_their_stable_phase_in_a_group(tiny_data):
    """train_group_budgets gives each run's family as train_budgets does: every budget's history and weights."""
    m = cfg_of(tiny_data, depth=1, dropout=0.1)
    cfgs = [recipe(schedule="wsd", cooldown_fraction=0.25, eval_every=4, lr=lr) for lr in (3e-3, 1e-2)]
    seeds, budgets = [0, 1], [8, 12]
    models = [GPT(m, s) for s in seeds]
    grouped = train_group_budgets(models, tiny_data, cfgs, seeds, budgets)
    for i, (c, s) in enumerate(zip(cfgs, seeds, strict=True)):
        family = train_budgets(GPT(m, s), tiny_data, c, budgets, s)
        for steps in budgets:
            (g_hist, g_state), (s_hist, s_state) = grouped[i][steps], family[steps]
            assert_same_history(g_hist, s_hist)
            assert all(torch.allclose(g_state[k], s_state[k], rtol=1e-3, atol=1e-5) for k in s_state)
        assert all(torch.equal(models[i].state_dict()[k], grouped[i][12][1][k]) for k in s_state)  # the longest


def test_a_run_that_diverges_in_the_stable_phase_fails_its_whole_family_alone(tiny_data):
    """Its budgets all share the stable phase it died in; the other run's family trains on."""
    m = cfg_of(tiny_data, depth=1)
    wsd = recipe(schedule="wsd", cooldown_fraction=0.25, eval_every=4)
    out = train_group_budgets([GPT(m, 0), GPT(m, 1)], tiny_data, [wsd, recipe(**{**vars(wsd), "lr": 1e30,
                                                                                   "grad_clip": None})],
                              [0, 1], [8, 12])
    assert all(isinstance(out[0][steps], tuple) and len(out[0][steps][0].train_loss) == steps for steps in (8, 12))
    assert all(isinstance(out[1][steps], TrainingDiverged) and out[1][steps].step == 2 for steps in (8, 12))


# ---------------------------------------------------------------- the optimizer, clipping and loss scales


def test_group_adamw_is_torch_adamw_bit_for_bit():
    torch.manual_seed(0)
    K, shapes, kinds = 3, {"w": (5, 7), "b": (4,)}, {"w": "hidden", "b": "vector"}
    lrs, decays, scales = [1e-3, 3e-2, 0.1], [0.0, 0.1, 0.5], [1.0, 0.5, 0.25]
    start = {n: torch.randn(K, *s) for n, s in shapes.items()}
    params = {n: t.clone().requires_grad_() for n, t in start.items()}
    group = GroupAdamW(params, kinds, {"hidden": scales, "vector": [1.0] * K},
                       {"hidden": decays, "vector": [0.0] * K}, (0.9, 0.95))
    alone_ = []
    for k in range(K):
        ps = {n: start[n][k].clone().requires_grad_() for n in shapes}
        opt = torch.optim.AdamW([{"params": [ps["w"]], "weight_decay": decays[k]},
                                 {"params": [ps["b"]], "weight_decay": 0.0}], lr=1.0, betas=(0.9, 0.95))
        alone_.append((ps, opt))
    for step in range(5):
        grads = {n: torch.randn(K, *s) for n, s in shapes.items()}
        factor = 0.5 + step / 10  # a schedule
        for n in shapes:
            params[n].grad = grads[n].clone()
        group.step([lr * factor for lr in lrs])
        for k, (ps, opt) in enumerate(alone_):
            for g, scale in zip(opt.param_groups, (scales[k], 1.0), strict=True):
                g["lr"] = lrs[k] * factor * scale
            for n in shapes:
                ps[n].grad = grads[n][k].clone()
            opt.step()
    assert all(torch.equal(ps[n], params[n][k]) for k, (ps, _) in enumerate(alone_) for n in shapes)


def test_clipping_is_per_run():
    torch.manual_seed(1)
    params = [torch.zeros(3, 4, 5, requires_grad=True), torch.zeros(3, 6, requires_grad=True)]
    size = torch.tensor([10.0, 0.01, 10.0])  # run 1's gradient is well inside the bound
    grads = [torch.randn(3, 4, 5) * size.view(3, 1, 1), torch.randn(3, 6) * size.view(3, 1)]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    clip_per_run(params, [1.0, 1.0, None])
    for k in range(3):
        alone_ = [torch.zeros_like(g[k], requires_grad=True) for g in grads]
        for p, g in zip(alone_, grads, strict=True):
            p.grad = g[k].clone()
        if k < 2:
            torch.nn.utils.clip_grad_norm_(alone_, 1.0)
        for p, q in zip(params, alone_, strict=True):
            assert torch.allclose(p.grad[k], q.grad, rtol=1e-6), k
    assert torch.equal(params[0].grad[1], grads[0][1])  # a small gradient is left alone
    assert torch.equal(params[0].grad[2], grads[0][2])  # no clipping for run 2


def test_an_overflow_skips_that_runs_step_only():
    """fp16: one run's inf gradient skips its update and halves its scale, as GradScaler does; the other steps."""
    params = {"w": torch.ones(2, 3, requires_grad=True)}
    opt = GroupAdamW(params, {"w": "hidden"}, {"hidden": [1.0, 1.0]}, {"hidden": [0.0, 0.0]})
    scaler = GroupScaler(2, enabled=True)
    params["w"].grad = torch.tensor([[1.0, 1.0, 1.0], [1.0, math.inf, 1.0]]) * 2.0 ** 16
    overflow = scaler.unscale(params.values())
    opt.step([0.1, 0.1], overflow)
    scaler.update(overflow)
    assert overflow == [False, True] and scaler.scales == [2.0 ** 16, 2.0 ** 15] and opt.steps == [1, 0]
    assert torch.equal(params["w"][1], torch.ones(3)) and (params["w"][0] < 1).all()
    assert torch.equal(opt.exp_avg["w"][1], torch.zeros(3))


def test_fp16_and_bf16_groups_train_like_fp32(tiny_data, monkeypatch):
    """The T4's path (fp16 autocast + per-run loss scales) and the A100's (bf16), exercised on the CPU."""
    m, c = cfg_of(tiny_data, depth=1, dropout=0.1), recipe(steps=40, batch_size=8, eval_every=20, lr=1e-2)
    finals = {}
    for name, p in {"fp32": precision_for("cpu"),
                    "fp16": Precision("cpu", torch.float16, grad_scaler=True, fused_adamw=False),
                    "bf16": Precision("cpu", torch.bfloat16, grad_scaler=False, fused_adamw=False)}.items():
        monkeypatch.setattr(group_train_module, "precision", lambda dev, p=p: p)
        finals[name] = [h.final_val for h in train_group([GPT(m, s) for s in (0, 1)], tiny_data, [c] * 2, [0, 1])]
    assert all(f < 0.8 * math.log(tiny_data.vocab_size) for f in finals["fp32"]), finals  # it learned something
    for name in ("fp16", "bf16"):
        assert finals[name] == pytest.approx(finals["fp32"], abs=0.05), (name, finals)


def test_a_group_keeps_every_tensor_on_the_accelerator(tiny_data):
    """On the stand-in accelerator, as on a GPU: batches, masks, loss scales and optimizer tensors all meet
    the parameters on their device, and the weights come back."""
    m, c = cfg_of(tiny_data, depth=1, dropout=0.1), recipe(steps=4, eval_every=2)
    with fake_accelerator.accelerator():
        models = [GPT(m, s) for s in (0, 1)]
        out = train_group(models, tiny_data, [c, c], [0, 1])
        budgets = train_group_budgets([GPT(m, 0)], tiny_data, [recipe(steps=4, eval_every=2, schedule="wsd")], [0],
                                      [2, 4])
    assert all(len(h.train_loss) == 4 for h in out) and set(budgets[0]) == {2, 4}


# ---------------------------------------------------------------- what a group needs, and bad input


def test_group_key_separates_what_cannot_share_a_step(tiny_data):
    base = group_key(cfg_of(tiny_data), recipe())
    assert group_key(cfg_of(tiny_data, dropout=0.3, init_std=0.1, param="mup", base_width=16),
                     recipe(lr=1.0, weight_decay=0.1, grad_clip=None)) == base
    assert group_key(cfg_of(tiny_data, width=64), recipe()) != base
    assert group_key(cfg_of(tiny_data), recipe(steps=21)) != base


@pytest.mark.parametrize(("change", "name"), [
    ({"model": {"width": 64}}, "width"), ({"model": {"ctx": 8}}, "ctx"), ({"model": {"heads": 4}}, "heads"),
    ({"train": {"steps": 21}}, "steps"), ({"train": {"batch_size": 8}}, "batch_size"),
    ({"train": {"eval_every": 4}}, "eval_every"), ({"train": {"schedule": "constant"}}, "schedule"),
])
def test_runs_of_different_shapes_are_refused_naming_the_field(tiny_data, change, name):
    models = [GPT(cfg_of(tiny_data), 0), GPT(cfg_of(tiny_data, **change.get("model", {})), 1)]
    with pytest.raises(ValueError, match=f"share the (model|train) setting {name}: run 0 has"):
        train_group(models, tiny_data, [recipe(), recipe(**change.get("train", {}))], [0, 1])


def test_bad_group_arguments(tiny_data):
    model = GPT(cfg_of(tiny_data), 0)
    for models, cfgs, seeds, name in [([], [], [], "models must hold at least one GPT"),
                                      (["a GPT"], [recipe()], [0], "models\\[0\\] must be a GPT"),
                                      ([model], [{"lr": 1e-3}], [0], "cfgs\\[0\\] a TrainConfig"),
                                      ([model], [recipe(), recipe()], [0], "one entry per run"),
                                      ([model], recipe(), [0], "cfgs must be a list"),
                                      ([model], [recipe()], 0, "seeds must be a list"),
                                      ([model, model], [recipe()] * 2, [0, 1], "models\\[1\\] is models\\[0\\]"),
                                      ([model], [recipe()], [-1], "seeds\\[0\\] must be an integer"),
                                      ([model], [recipe()], [1.5], "seeds\\[0\\] must be an integer")]:
        with pytest.raises(ValueError, match=name):
            GroupRun(models, tiny_data, cfgs, seeds)
    with pytest.raises(ValueError, match="vocab_size"):
        GroupRun([GPT(cfg_of(tiny_data, vocab_size=3), 0)], tiny_data, [recipe()], [0])
    with pytest.raises(ValueError, match="ctx must be less than"):
        GroupRun([GPT(cfg_of(tiny_data, ctx=10 ** 5), 0)], tiny_data, [recipe()], [0])


def test_a_family_needs_wsd_and_budgets(tiny_data):
    with pytest.raises(ValueError, match="schedule must be 'wsd'"):
        train_group_budgets([GPT(cfg_of(tiny_data), 0)], tiny_data, [recipe()], [0], [4])
    with pytest.raises(ValueError, match="budgets"):
        train_group_budgets([GPT(cfg_of(tiny_data), 0)], tiny_data, [recipe(schedule="wsd")], [0], [])


def test_callbacks_see_every_evaluation_of_every_run(tiny_data):
    seen = []
    train_group([GPT(cfg_of(tiny_data), s) for s in (0, 1)], tiny_data, [recipe(steps=10)] * 2, [0, 1],
                callbacks=[lambda i, h: seen.append((i, h.eval_step[-1]))])
    assert sorted(seen) == [(i, s) for i in (0, 1) for s in (0, 5, 10)]
