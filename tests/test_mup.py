import math

import pytest
import torch

from lmlab import mup
from lmlab.experiments import coord_check
from lmlab.model import GPT, GPTConfig

V, BASE, LR = 13, 16, 1e-2


def cfg(width: int, param: str, **kw) -> GPTConfig:
    base = {"base_width": BASE} if param == "mup" else {}
    return GPTConfig(**{"vocab_size": V, "ctx": 16, "width": width, "depth": 2, "heads": 2, "param": param,
                        **base, **kw})


def batch(seed: int = 0):
    x = torch.randint(V, (4, 16), generator=torch.Generator().manual_seed(seed))
    return x, torch.roll(x, -1, dims=1)


def groups(model, **kw) -> dict:
    return {g["kind"]: g for g in mup.optimizer(model, LR, **kw).param_groups}


def test_sp_and_mup_are_the_same_model_at_the_base_width():
    sp, mu = GPT(cfg(BASE, "sp"), seed=3), GPT(cfg(BASE, "mup"), seed=3)
    for (n, p), (_, q) in zip(sp.named_parameters(), mu.named_parameters(), strict=True):
        assert torch.equal(p, q), n
    x, y = batch()
    opts = [mup.optimizer(m, LR) for m in (sp, mu)]
    losses = [m(x, y)[1] for m in (sp, mu)]
    assert torch.equal(losses[0], losses[1])
    for loss, opt in zip(losses, opts, strict=True):
        loss.backward()
        opt.step()
    for (n, p), (_, q) in zip(sp.named_parameters(), mu.named_parameters(), strict=True):
        assert torch.equal(p, q), n
    assert torch.equal(sp(x, y)[1], mu(x, y)[1])
    assert not torch.equal(sp(x, y)[1], losses[0])  # the step did change the model


def test_sp_and_mup_part_away_from_the_base_width():
    sp, mu = GPT(cfg(4 * BASE, "sp"), seed=3), GPT(cfg(4 * BASE, "mup"), seed=3)
    x, y = batch()
    assert not torch.equal(sp(x, y)[1], mu(x, y)[1])


def test_mup_learning_rates_at_four_times_the_base_width():
    g = groups(GPT(cfg(4 * BASE, "mup")))
    assert set(g) == {"embedding", "hidden", "readout", "vector"}
    assert g["hidden"]["lr"] == pytest.approx(LR / 4, rel=1e-12)
    assert g["hidden"]["lr_scale"] == 0.25
    for kind in ("embedding", "readout", "vector"):
        assert g[kind]["lr"] == LR and g[kind]["lr_scale"] == 1.0, kind


def test_sp_learning_rates_do_not_depend_on_width():
    g = groups(GPT(cfg(4 * BASE, "sp")))
    assert all(group["lr"] == LR and group["lr_scale"] == 1.0 for group in g.values())


def test_optimizer_holds_every_parameter_once_in_its_kind():
    model = GPT(cfg(2 * BASE, "mup"))
    g = groups(model)
    held = [id(p) for group in g.values() for p in group["params"]]
    assert sorted(held) == sorted(id(p) for p in model.parameters())
    for name, p in model.named_parameters():
        assert any(p is q for q in g[model.param_kind(name)]["params"]), name


def test_no_weight_decay_on_vectors():
    g = groups(GPT(cfg(2 * BASE, "mup")), weight_decay=0.1)
    assert g["vector"]["weight_decay"] == 0.0
    assert all(g[kind]["weight_decay"] == 0.1 for kind in ("embedding", "hidden", "readout"))


@pytest.mark.parametrize(("kw", "name"), [({"lr": 0.0}, "lr"), ({"lr": -1.0}, "lr"),
                                          ({"lr": LR, "weight_decay": -0.1}, "weight_decay")])
def test_optimizer_bad_arguments(kw, name):
    model = GPT(cfg(BASE, "sp"))
    with pytest.raises(ValueError, match=name):
        mup.optimizer(model, **kw)


def std(t: torch.Tensor) -> float:
    return t.float().std().item()


def test_mup_init_at_four_times_the_base_width():
    width, init_std = 4 * BASE, 0.02
    mu = GPT(cfg(width, "mup", depth=2, init_std=init_std), seed=0)
    sp = GPT(cfg(width, "sp", depth=2, init_std=init_std), seed=0)
    residual = math.sqrt(2 * 2)  # GPT-2's 1/√(2·depth) on the residual projections
    for block_mu, block_sp in zip(mu.blocks, sp.blocks, strict=True):
        for lin_mu, lin_sp, extra in ((block_mu.attn.qkv, block_sp.attn.qkv, 1.0),
                                      (block_mu.mlp.up, block_sp.mlp.up, 1.0),
                                      (block_mu.attn.proj, block_sp.attn.proj, residual),
                                      (block_mu.mlp.proj, block_sp.mlp.proj, residual)):
            assert std(lin_mu.weight) == pytest.approx(init_std / 2 / extra, rel=0.05)
            assert std(lin_sp.weight) == pytest.approx(init_std / extra, rel=0.05)
    for m in (mu, sp):  # embeddings and readout keep init_std
        assert std(m.tok.weight) == pytest.approx(init_std, rel=0.1)
        assert std(m.pos.weight) == pytest.approx(init_std, rel=0.1)
        assert std(m.head.weight) == pytest.approx(init_std, rel=0.1)


def test_mup_multipliers_at_four_times_the_base_width():
    width, heads = 4 * BASE, 2
    mu = GPT(cfg(width, "mup", output_mult=2.0, input_mult=3.0))
    sp = GPT(cfg(width, "sp", output_mult=2.0, input_mult=3.0))
    assert mu.output_mult == pytest.approx(2.0 / 4)
    assert sp.output_mult == 2.0
    assert mu.input_mult == sp.input_mult == 3.0
    head_dim, base_head_dim = width // heads, BASE // heads
    for block in mu.blocks:
        assert block.attn.scale == pytest.approx(1 / math.sqrt(head_dim) * 4**-0.5, rel=1e-12)
        assert block.attn.scale == pytest.approx(math.sqrt(base_head_dim) / head_dim, rel=1e-12)
    for block in sp.blocks:
        assert block.attn.scale == pytest.approx(1 / math.sqrt(head_dim), rel=1e-12)


def test_output_mult_scales_the_logits():
    x, _ = batch()
    one = GPT(cfg(BASE, "sp"), seed=1)(x)
    two = GPT(cfg(BASE, "sp", output_mult=2.0), seed=1)(x)
    assert torch.allclose(two, 2 * one, atol=1e-6)
    quarter = GPT(cfg(4 * BASE, "mup", output_mult=1.0), seed=1)
    plain = GPT(cfg(4 * BASE, "sp"), seed=1)  # different hidden init, so compare the readout path only
    with torch.no_grad():
        h = torch.randn(2, 3, 4 * BASE)
        assert torch.allclose(quarter.head(h) * quarter.output_mult, plain.head(h) / 4, atol=1e-7)


def test_rules_table():
    assert set(mup.RULES) == {"sp", "sp_fanin", "mup"} | set(mup.LADDER)
    assert all(r == mup.Rule() for r in mup.RULES["sp"].values())
    # fan-in SP: variance 1/fan_in wherever the fan-in is the width, and nothing else
    assert {k for k, r in mup.RULES["sp_fanin"].items() if r != mup.Rule()} == {"hidden", "readout"}
    assert mup.rule("sp_fanin", "hidden") == mup.rule("sp_fanin", "readout") == mup.Rule(init=-0.5)
    assert mup.rule("mup", "hidden") == mup.Rule(init=-0.5, lr=-1.0)
    assert mup.rule("mup", "readout").mult == -1.0
    assert mup.rule("mup", "attention").mult == -0.5
    assert mup.init_scale("mup", "hidden", 4) == 0.5
    assert mup.lr_scale("mup", "hidden", 4) == 0.25
    assert mup.forward_scale("mup", "readout", 4) == 0.25
    for kind in mup.KINDS:
        assert mup.init_scale("mup", kind, 1) == mup.lr_scale("mup", kind, 1) == mup.forward_scale("mup", kind, 1) == 1


def test_the_ladder_adds_one_width_rule_per_rung():
    """From SP to μP, each rung changes the rules of one kind of parameter (the readout's init and
    multiplier together), and the rung names what it adds; no rung touches the embeddings."""
    rungs = list(mup.LADDER)
    assert rungs[0] == "sp" and rungs[-1] == "mup" and len(rungs) == len(set(rungs)) == 5
    pairs = zip(rungs, rungs[1:], strict=False)
    changed = [{k for k in mup.KINDS if mup.RULES[a][k] != mup.RULES[b][k]} for a, b in pairs]
    assert changed == [{"hidden", "readout"}, {"hidden"}, {"readout"}, {"attention"}]
    assert all(mup.RULES[r]["embedding"] == mup.RULES[r]["vector"] == mup.Rule() for r in rungs)
    assert mup.rule("sp_fanin_lr", "hidden") == mup.rule("mup", "hidden")
    assert mup.rule("mup_no_attn", "attention") == mup.rule("sp", "attention")
    assert set(mup.NAMES) == set(mup.RULES)


def test_a_rung_trains_like_the_ablation_it_equals():
    """μP without its attention rule, as a parametrization, is the model `ablate_rule` makes."""
    from lmlab import GPT

    rung = GPT(cfg(4 * BASE, "mup_no_attn", base_width=BASE), seed=3)
    ablated = GPT(cfg(4 * BASE, "mup"), seed=3)
    mup.ablate_rule(ablated, "attention_scale")
    x = torch.randint(0, 11, (2, 5))
    assert [b.attn.scale for b in rung.blocks] == [b.attn.scale for b in ablated.blocks]
    assert torch.equal(rung(x)[0], ablated(x)[0])


def test_rule_rejects_unknown_names():
    with pytest.raises(ValueError, match="kind"):
        mup.rule("mup", "bias")
    with pytest.raises(ValueError, match="param"):
        mup.rule("ntk", "hidden")


def test_rules_table_is_written_from_the_rules():
    table = mup.rules_table()
    assert list(table.index) == list(mup.KINDS.values())
    hidden, readout = mup.KINDS["hidden"], mup.KINDS["readout"]
    assert table.loc[hidden, ("init std", "μP")] == "σ/√m"
    assert table.loc[hidden, ("Adam LR", "μP")] == "η/m"
    assert table.loc[hidden, ("Adam LR", "SP (constant σ)")] == "η"
    assert table.loc[hidden, ("init std", "SP (fan-in)")] == "σ/√m"
    assert table.loc[hidden, ("Adam LR", "SP (fan-in)")] == "η"
    assert table.loc[readout, ("forward multiplier", "μP")] == "α_out/m"
    assert table.loc[mup.KINDS["attention"], ("forward multiplier", "μP")] == "√d_head,base / d_head"


def test_times_m_spells_powers_of_m():
    assert mup._times_m("η", -1.0) == "η/m"
    assert mup._times_m("σ", -0.5) == "σ/√m"
    assert mup._times_m("σ", 0.5) == "σ·√m"
    assert mup._times_m("η", 2.0) == "η·m^2"
    assert mup._times_m("1", -1.0) == "1/m"
    assert mup._times_m("", 0.0) == "—"


def test_record_coordinates_measures_mean_absolute_outputs(tiny_data):
    model = GPT(GPTConfig(tiny_data.vocab_size, ctx=16, width=16, depth=2, heads=2), seed=0)
    x, y = tiny_data.batch("train", 3, 16, torch.Generator().manual_seed(0))
    with coord_check.record_coordinates(model, {}) as stats:
        logits, _ = model(x, y)
    assert set(stats) == {"embedding", "attention 0", "MLP 0", "attention 1", "MLP 1", "logits"}
    assert stats["logits"] == pytest.approx(logits.abs().mean().item())
    emb = model.tok(x) * model.input_mult + model.pos(torch.arange(16))
    assert stats["embedding"] == pytest.approx(emb.abs().mean().item())
    with torch.no_grad():
        model(x)
    assert not model._forward_hooks and not model.blocks[0].attn._forward_hooks  # hooks removed


def test_coord_check_rows_and_first_step(tiny_data):
    df = coord_check.coord_check(tiny_data, "mup", [16, 32], steps=3, lr=1e-2, seeds=(0, 1), batch_size=2, ctx=16,
                         depth=1, heads=2)
    assert len(df) == 2 * 2 * 3 * 4  # widths × seeds × t × layers
    assert set(df.layer) == {"embedding", "attention 0", "MLP 0", "logits"}
    assert sorted(df.t.unique()) == [1, 2, 3]
    # t = 1 is the model before any update: the embedding output does not depend on the LR
    again = coord_check.coord_check(tiny_data, "mup", [16, 32], steps=1, lr=1e-5, seeds=(0, 1), batch_size=2, ctx=16,
                            depth=1, heads=2)
    first = df[df.t == 1].reset_index(drop=True)
    assert torch.allclose(torch.tensor(first.l1.values), torch.tensor(again.l1.values))
    assert (df[df.t == 3].l1.values != df[df.t == 1].l1.values).any()  # and later steps did move


def test_coord_check_separates_sp_from_mup(tiny_data):
    """The check's whole point, at toy size: under SP the hidden outputs grow with width after
    an update, under μP they do not grow nearly as much."""
    growth = {}
    for param in ("sp", "mup"):
        df = coord_check.coord_check(tiny_data, param, [16, 128], steps=3, lr=2**-5, seeds=(0, 1), batch_size=4, ctx=16,
                             depth=1, heads=2)
        mlp = df[(df.layer == "MLP 0") & (df.t == 3)].groupby("width").l1.mean()
        growth[param] = mlp[128] / mlp[16]
    assert growth["sp"] > 3 * growth["mup"], growth


@pytest.mark.parametrize("kw, name", [({"param": "ntk"}, "param"), ({"steps": 0}, "steps"),
                                      ({"lr": -1.0}, "lr"), ({"widths": []}, "widths")])
def test_coord_check_bad_arguments(tiny_data, kw, name):
    args = {"param": "mup", "widths": [16], "steps": 2, "lr": 1e-2} | kw
    with pytest.raises(ValueError, match=name):
        coord_check.coord_check(tiny_data, **args, batch_size=2, ctx=16, depth=1, heads=2)


def test_fanin_sp_init_and_learning_rates():
    """Fan-in SP: σ/√m on hidden matrices and readout, σ on embeddings, one LR, no multipliers."""
    width, init_std = 4 * BASE, 0.04
    fan = GPT(cfg(width, "sp_fanin", base_width=BASE, init_std=init_std), seed=0)
    assert std(fan.blocks[0].mlp.up.weight) == pytest.approx(init_std / 2, rel=0.05)
    assert std(fan.head.weight) == pytest.approx(init_std / 2, rel=0.1)
    assert std(fan.tok.weight) == pytest.approx(init_std, rel=0.1)
    assert fan.output_mult == 1.0
    assert fan.blocks[0].attn.scale == pytest.approx(1 / math.sqrt(width // 2), rel=1e-12)
    assert all(group["lr"] == LR for group in groups(fan).values())


def test_fanin_sp_is_sp_at_the_base_width():
    sp, fan = GPT(cfg(BASE, "sp"), seed=2), GPT(cfg(BASE, "sp_fanin", base_width=BASE), seed=2)
    for (n, p), (_, q) in zip(sp.named_parameters(), fan.named_parameters(), strict=True):
        assert torch.equal(p, q), n


def test_attention_scale_follows_the_real_head_size():
    """μP's 1/d_head rule is about the head size: with the head count fixed it shrinks like 1/m;
    when heads grow with width at a fixed head size, it stays SP's 1/√d_head."""
    fixed_heads = GPT(cfg(4 * BASE, "mup", heads=2))
    assert fixed_heads.config.head_dim_mult == 4
    assert fixed_heads.blocks[0].attn.scale == pytest.approx(math.sqrt(BASE // 2) / (4 * BASE // 2), rel=1e-12)
    more_heads = GPT(cfg(4 * BASE, "mup", heads=8, base_heads=2))  # d_head = 8 at both widths
    assert more_heads.config.head_dim_mult == 1
    assert more_heads.blocks[0].attn.scale == pytest.approx(1 / math.sqrt(8), rel=1e-12)
    assert groups(more_heads)["hidden"]["lr_scale"] == 0.25  # the hidden LR still follows the width


@pytest.mark.parametrize("param", ["sp", "mup"])
def test_attn_mult_multiplies_the_attention_logits_on_top_of_the_rule(param):
    """α_attn is a temperature on top of either parametrization's scale, and the ablation of μP's rule
    keeps it: SP's 1/√d_head times α_attn."""
    plain, hot = GPT(cfg(4 * BASE, param), seed=1), GPT(cfg(4 * BASE, param, attn_mult=2.5), seed=1)
    assert hot.blocks[0].attn.scale == 2.5 * plain.blocks[0].attn.scale
    x, _ = batch()
    with torch.no_grad():
        assert not torch.allclose(hot(x), plain(x))  # the same weights, other logits: the scale is used
    if param == "mup":
        mup.ablate_rule(hot, "attention_scale")
        assert hot.blocks[0].attn.scale == pytest.approx(2.5 / math.sqrt(4 * BASE // 2), rel=1e-12)


@pytest.mark.parametrize(("kw", "match"), [
    ({"base_width": None, "base_heads": 4}, "base_heads"),
    ({"base_heads": 0}, "base_heads"),
    ({"base_heads": 3}, "divisible by the base's heads"),
])
def test_base_heads_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        cfg(2 * BASE, "mup", **kw)


def test_coord_check_measures_what_the_updates_changed(tiny_data):
    """`delta` is mean |x_t − x_1|: zero at t = 1, and at t = 2 zero for every layer below a
    zero-initialised readout (its gradient is all the first step changes) but not for the logits."""
    df = coord_check.coord_check(tiny_data, "mup", [16], steps=3, lr=1e-2, seeds=(0,), batch_size=2, ctx=16,
                                 depth=1, heads=2, zero_readout=True)
    at = df.set_index(["t", "layer"]).delta
    assert (at[1] == 0).all()
    assert at[2, "MLP 0"] == 0 and at[2, "logits"] > 0
    assert (at[3].drop("embedding") > 0).all()


@pytest.mark.parametrize("ablation", sorted(mup.ABLATIONS))
def test_each_ablation_removes_one_rule(ablation):
    model = GPT(cfg(4 * BASE, "mup"))
    opt = mup.optimizer(model, LR)
    before = {g["kind"]: g["lr"] for g in opt.param_groups}, model.blocks[0].attn.scale, model.output_mult
    mup.ablate_rule(model, ablation, opt)
    after = {g["kind"]: g["lr"] for g in opt.param_groups}, model.blocks[0].attn.scale, model.output_mult
    changed = [i for i in range(3) if before[i] != after[i]]
    assert changed == [{"hidden_lr": 0, "attention_scale": 1, "output_mult": 2}[ablation]]
    if ablation == "hidden_lr":
        assert after[0]["hidden"] == LR and all(g["lr_scale"] == 1 for g in opt.param_groups)
    elif ablation == "attention_scale":
        assert after[1] == pytest.approx(1 / math.sqrt(4 * BASE // 2))
    else:
        assert after[2] == 1.0


def test_ablations_reject_bad_input(tiny_data):
    with pytest.raises(ValueError, match="ablate"):
        coord_check.coord_check(tiny_data, "mup", [16], steps=1, ablate="depth", batch_size=2, ctx=16, depth=1,
                                heads=2)
    model = GPT(cfg(2 * BASE, "sp"))
    with pytest.raises(ValueError, match="param must be 'mup'"):
        mup.ablate_rule(model, "hidden_lr", mup.optimizer(model, LR))
    with pytest.raises(ValueError, match="pass opt"):
        mup.ablate_rule(GPT(cfg(2 * BASE, "mup")), "hidden_lr")


def test_the_hidden_lr_control_fails_the_check_that_mup_passes(tiny_data):
    """The negative control at toy size: μP without its hidden-LR rule fans out with width."""
    spread = {}
    for ablate in (None, "hidden_lr"):
        df = coord_check.coord_check(tiny_data, "mup", [16, 128], steps=4, lr=2**-5, seeds=(0, 1), batch_size=4,
                                     ctx=16, depth=1, heads=2, zero_query=True, zero_readout=True, ablate=ablate)
        mlp = df[(df.layer == "MLP 0") & (df.t == 4)].groupby("width").delta.mean()
        spread[ablate] = mlp[128] / mlp[16]
    assert spread["hidden_lr"] > 3 * spread[None], spread
