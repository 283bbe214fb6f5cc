"""The attention inside a block: its logits in the coordinate check, and the entropy of its weights."""

import math

import pytest
import torch

from lmlab.experiments import attention, coord_check, transfer
from lmlab.model import GPT, GPTConfig
from lmlab.runs import RunSpec, trained
from lmlab.train import TrainConfig

V = 13


def tiny(width: int = 32, param: str = "mup", **kw) -> GPT:
    base = {"base_width": 16} if param == "mup" else {}
    return GPT(GPTConfig(V, ctx=8, width=width, depth=2, heads=2, param=param, **base, **kw), seed=1)


def tokens(seed: int = 0, batch: int = 3, T: int = 8) -> torch.Tensor:
    return torch.randint(V, (batch, T), generator=torch.Generator().manual_seed(seed))


def block_input(model, x, layer: int = 0) -> torch.Tensor:
    """What block `layer`'s attention sees: the LayerNorm of the residual stream there."""
    h = model.drop(model.tok(x) * model.input_mult + model.pos(torch.arange(x.shape[1])))
    for block in model.blocks[:layer]:
        h = block(h)
    return model.blocks[layer].ln1(h)


def by_hand(attn, h: torch.Tensor) -> torch.Tensor:
    """scale · q·k per head, written out with einsum from the weight matrix's rows."""
    C, d = h.shape[-1], h.shape[-1] // attn.heads
    wq, wk = attn.qkv.weight[:C], attn.qkv.weight[C : 2 * C]
    q = torch.einsum("btc,hdc->bhtd", h, wq.view(attn.heads, d, C))
    k = torch.einsum("btc,hdc->bhtd", h, wk.view(attn.heads, d, C))
    return torch.einsum("bhtd,bhsd->bhts", q, k) * attn.scale


def test_attention_logits_are_scale_times_q_dot_k():
    model, x = tiny(), tokens()
    with torch.no_grad():
        h = block_input(model, x, 1)
        got = coord_check.attention_logits(model.blocks[1].attn, h)
        assert got.shape == (3, 2, 8, 8)
        torch.testing.assert_close(got, by_hand(model.blocks[1].attn, h))
        assert model.blocks[1].attn.scale == pytest.approx(math.sqrt(8) / 16)  # μP: √d_head,base / d_head


def test_attention_weights_rebuild_the_blocks_output():
    """softmax(masked logits) · v, through the output projection, is the attention block's output:
    the weights are the ones the model used."""
    model, x = tiny(), tokens(1)
    attn = model.blocks[0].attn
    with torch.no_grad():
        h = block_input(model, x)
        w = attention.attention_weights(attn, h)
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 2, 8))
        assert (w.triu(1) == 0).all()  # no query sees a later key
        v = attn.qkv(h)[..., 64:].view(3, 8, 2, 16).transpose(1, 2)
        rebuilt = attn.proj((w @ v).transpose(1, 2).reshape(3, 8, 32))
        torch.testing.assert_close(rebuilt, attn(h), rtol=1e-5, atol=1e-6)


def test_recorded_attention_logits_are_the_causal_entries_mean_size():
    model, x = tiny(), tokens(2)
    with coord_check.record_coordinates(model, {}, {}, attention=True) as stats, torch.no_grad():
        model(x)
    assert set(stats) == {"embedding", "logits"} | {f"{n} {i}" for i in (0, 1) for n in
                                                    ("attention", "MLP", "attention logits")}
    with torch.no_grad():
        logits = by_hand(model.blocks[1].attn, block_input(model, x, 1))
    seen = torch.ones(8, 8, dtype=torch.bool).tril()
    assert stats["attention logits 1"] == pytest.approx(logits[..., seen].abs().mean().item(), rel=1e-5)
    assert not any(b.attn._forward_hooks for b in model.blocks)  # hooks removed
    with coord_check.record_coordinates(model, {}) as plain, torch.no_grad():
        model(x)
    assert not any(name.startswith("attention logits") for name in plain)  # only when asked for


def test_coord_check_sees_the_attention_rule_in_the_logits(tiny_data):
    """Query at zero: the logits are 0 until the query has had an update, and at that first step
    the attention is still uniform, so μP and μP with SP's 1/√d_head train the same query; their
    logits then differ by the ratio of their scales, √(d_head / d_head,base), while the block's
    output does not see the difference."""
    kw = dict(steps=3, lr=2**-6, seeds=(0,), batch_size=2, ctx=16, depth=1, heads=2, zero_query=True,
              zero_readout=True, attention_logits=True)
    ours = coord_check.coord_check(tiny_data, "mup", [16, 128], **kw).set_index(["width", "t", "layer"]).l1
    control = coord_check.coord_check(tiny_data, "mup", [16, 128], ablate="attention_scale", **kw)
    control = control.set_index(["width", "t", "layer"]).l1
    assert ours[16, 1, "attention logits 0"] == 0 and ours[16, 2, "attention logits 0"] == 0
    assert ours[16, 3, "attention logits 0"] > 0
    assert control[16, 3, "attention logits 0"] == pytest.approx(ours[16, 3, "attention logits 0"], rel=1e-6)
    ratio = control[128, 3, "attention logits 0"] / ours[128, 3, "attention logits 0"]
    assert ratio == pytest.approx(math.sqrt(128 / 16), rel=0.02), ratio
    assert control[128, 3, "attention 0"] == pytest.approx(ours[128, 3, "attention 0"], rel=1e-3)


def test_uniform_attention_has_entropy_log_t_plus_one():
    """A zero query makes every logit 0: each query spreads its weight evenly over its t + 1 keys."""
    model, x = tiny(zero_query=True), tokens(3)
    got = attention.attention_entropy(model, x)
    assert got.shape == (2, 2, 8)
    want = attention.uniform_entropy(8).float()
    torch.testing.assert_close(got, want.expand(2, 2, 8), rtol=1e-6, atol=1e-6)
    assert want[0] == 0 and want[3] == pytest.approx(math.log(4))


def test_entropy_of_one_hot_weights_is_zero_and_trained_attention_is_below_uniform():
    assert attention.entropy(torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])).tolist() == pytest.approx(
        [0.0, math.log(2)])
    sharp = tiny(param="sp", init_std=1.0)  # large weights: peaked attention
    got = attention.attention_entropy(sharp, tokens(4))
    assert (got[..., 1:] < attention.uniform_entropy(8)[1:].float()).all()
    assert (got >= 0).all()


@pytest.mark.parametrize("call, name", [
    (lambda: attention.uniform_entropy(0), "ctx"),
    (lambda: attention.attention_entropy(tiny(), tokens()[0]), "x"),
    (lambda: attention.attention_weights(tiny().blocks[0].attn, torch.zeros(2, 8, 7)), "x"),
    (lambda: coord_check.attention_logits(tiny().blocks[0].attn, torch.zeros(8, 32)), "x"),
    (lambda: attention.target_entropy([], ablate="hidden_lr"), "ablate"),
    (lambda: attention.target_entropy([], batches=0), "batches"),
])
def test_bad_input_is_named(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_run_entropy_measures_the_cached_run_and_retrains_an_ablated_one(tiny_data, monkeypatch):
    """Without an ablation it measures the run cache's model; with one, the run `transfer.ablated`
    trains (the same final loss), whose attention differs."""
    spec = RunSpec(GPTConfig(tiny_data.vocab_size, ctx=16, width=32, depth=1, heads=2, param="mup", base_width=16,
                             init_std=0.2),
                   TrainConfig(steps=4, batch_size=2, lr=1e-2, eval_every=4, eval_batches=1, progress=False))
    monkeypatch.setattr(RunSpec, "data", lambda self: tiny_data)
    rows = attention.target_entropy([spec, spec.replace(seed=1)], batches=2)
    assert rows.seed.tolist() == [0, 1]
    model, hist = trained(spec)
    x = torch.cat([x for x, _ in attention.eval_windows(tiny_data.val.ids, 2, 16, 2)])
    assert rows.entropy[0] == pytest.approx(attention.attention_entropy(model, x).mean().item(), rel=1e-5)
    assert rows.final_val[0] == hist.final_val
    assert rows.uniform[0] == pytest.approx(sum(math.log(t + 1) for t in range(16)) / 16)
    assert len(rows.by_position[0]) == 16 and 0 < rows.fraction[0] < 1
    control = attention.target_entropy([spec], ablate="attention_scale", batches=2)
    assert control.final_val[0] == transfer.train_ablated({"spec": spec.to_dict(),
                                                           "ablate": "attention_scale"})["final_val"]
    assert control.entropy[0] != pytest.approx(rows.entropy[0], rel=1e-4)  # the attention rule mattered


def test_width_slopes_read_the_power_of_width():
    """A coordinate ∝ width^p has slope p; one still 0 at some width has none."""
    import pandas as pd

    rows = [{"param": "mup", "layer": layer, "t": 2, "seed": s, "width": w, "l1": value(w), "delta": 0.0}
            for s in (0, 1) for w in (16, 32, 64)
            for layer, value in (("a", lambda w: 3 * w**0.5), ("b", lambda w: 2.0 / w), ("c", lambda w: 0.0))]
    slopes = coord_check.width_slopes(pd.DataFrame(rows))
    assert slopes["mup", "a", 2, 1] == pytest.approx(0.5) and slopes["mup", "b", 2, 0] == pytest.approx(-1)
    assert "c" not in slopes.index.get_level_values("layer")
    with pytest.raises(ValueError, match="stat"):
        coord_check.width_slopes(pd.DataFrame(rows), "size")
    with pytest.raises(ValueError, match="two widths"):
        coord_check.width_slopes(pd.DataFrame(rows).query("width == 16"))


def test_spreads_read_the_checks_verdict_per_param():
    """A layer whose change grows 4× over the widths spreads 4× and is named; a flat one spreads 1×;
    the attention logits stay out of the spread and get their own growth, least and most over t;
    steps before `first_t` are not read."""
    import pandas as pd

    rows = [{"param": p, "layer": layer, "t": t, "seed": s, "width": w, "l1": 1.0, "delta": value(p, w, t)}
            for p in ("flat", "grows") for s in (0, 1) for t in (1, 2, 3) for w in (16, 32, 64)
            for layer, value in (("MLP 0", lambda p, w, t: 0.1 * (w / 16 if p == "grows" else 1) + t),
                                 ("logits", lambda p, w, t: 0.5 * t),
                                 ("attention logits 0", lambda p, w, t: t * (w / 16) ** -0.5 * 99))]
    rows = [r | {"delta": r["delta"] * 10 if r["t"] == 1 and r["width"] == 64 else r["delta"]} for r in rows]
    table = coord_check.spreads(pd.DataFrame(rows), first_t=2)
    assert table.loc["flat", "spread"] == pytest.approx(1.0)
    assert table.loc["grows", "spread"] == pytest.approx((0.4 + 2) / (0.1 + 2))  # the larger of t = 2 and 3
    assert table.loc["grows", "layer"] == "MLP 0"
    assert table.loc["grows", "logits_min"] == table.loc["grows", "logits_max"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="two widths"):
        coord_check.spreads(pd.DataFrame(rows).query("width == 16"), first_t=2)
