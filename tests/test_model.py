import math

import pytest
import torch
import torch.nn.functional as F

from lmlab.model import GPT, GPTConfig, eval_mode, param_count

V = 11  # vocabulary size of the synthetic inputs


def cfg(**kw) -> GPTConfig:
    return GPTConfig(**{"vocab_size": V, "ctx": 16, "width": 32, "depth": 1, "heads": 2, **kw})


@pytest.mark.parametrize(("kw", "name"), [
    ({"width": 30, "heads": 4}, "width"),
    ({"dropout": 1.0}, "dropout"),
    ({"dropout": -0.1}, "dropout"),
    ({"param": "xyz"}, "param"),
    ({"vocab_size": 0}, "vocab_size"),
    ({"ctx": 0}, "ctx"),
    ({"depth": 1.5}, "depth"),
    ({"heads": True}, "heads"),
    ({"base_width": 30, "heads": 4}, "base_width"),
    ({"base_width": 0}, "base_width"),
    ({"init_std": 0.0}, "init_std"),
])
def test_bad_config_names_the_argument(kw, name):
    with pytest.raises(ValueError, match=name):
        cfg(**kw)


def test_good_config_properties():
    c = cfg(width=64, heads=4, base_width=16, param="mup")
    assert c.head_dim == 16
    assert c.width_mult == 4.0
    assert cfg().width_mult == 1.0
    assert c.to_dict()["base_width"] == 16


def test_forward_shapes_and_loss():
    model = GPT(cfg())
    x = torch.randint(V, (3, 16))
    logits = model(x)
    assert logits.shape == (3, 16, V)
    logits2, loss = model(x, x)
    assert torch.equal(logits, logits2)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(F.cross_entropy(logits.flatten(0, 1), x.flatten()).item())
    assert model(x[:, :5]).shape == (3, 5, V)  # shorter than ctx is fine


def test_initial_loss_is_near_uniform():
    model = GPT(cfg(vocab_size=65))
    x = torch.randint(65, (8, 16), generator=torch.Generator().manual_seed(0))
    _, loss = model(x, x)
    assert abs(loss.item() - math.log(65)) < 0.1


def test_sequence_longer_than_ctx():
    model = GPT(cfg())
    with pytest.raises(ValueError, match="ctx"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_attention_is_causal():
    model = GPT(cfg(depth=2)).eval()
    x = torch.randint(V, (1, 16), generator=torch.Generator().manual_seed(1))
    y = x.clone()
    y[0, 10:] = (y[0, 10:] + 1) % V
    a, b = model(x), model(y)
    assert torch.equal(a[:, :10], b[:, :10])  # the past never sees the future
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_attention_matches_a_hand_written_one():
    c = cfg(width=32, heads=4, param="mup", base_width=16)
    attn = GPT(c, seed=3).blocks[0].attn.eval()
    x = torch.randn(2, 7, 32, generator=torch.Generator().manual_seed(0))
    q, k, v = attn.qkv(x).split(32, dim=2)
    q, k, v = (t.view(2, 7, 4, 8).transpose(1, 2) for t in (q, k, v))
    scores = (q @ k.transpose(-1, -2)) * attn.scale
    scores = scores.masked_fill(torch.ones(7, 7, dtype=torch.bool).triu(1), float("-inf"))
    y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 7, 32)
    assert torch.allclose(attn(x), attn.proj(y), atol=1e-6)


@pytest.mark.parametrize(("width", "depth", "heads"), [(16, 1, 2), (32, 2, 4), (48, 3, 3), (64, 1, 8)])
def test_num_params_matches_param_count(width, depth, heads):
    c = GPTConfig(vocab_size=23, ctx=12, width=width, depth=depth, heads=heads)
    model = GPT(c)
    total = sum(p.numel() for p in model.parameters())
    assert model.num_params(non_embedding=False) == total == param_count(c, non_embedding=False)
    assert model.num_params(non_embedding=True) == param_count(c)
    embedding_and_readout = model.tok.weight.numel() + model.pos.weight.numel() + model.head.weight.numel()
    assert total - model.num_params() == embedding_and_readout


def test_same_seed_same_weights_different_seed_different():
    a, b, c = GPT(cfg(), seed=5), GPT(cfg(), seed=5), GPT(cfg(), seed=6)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not any(torch.equal(sa[k], sc[k]) for k in sa if GPT.param_kind(k) != "vector")


def test_reset_parameters_restores_the_seeded_init():
    model, fresh = GPT(cfg(), seed=2), GPT(cfg(), seed=2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.reset_parameters(2)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), fresh.parameters(), strict=True))


def test_dropout_only_in_train_mode():
    model = GPT(cfg(dropout=0.5, depth=2))
    x = torch.randint(V, (2, 16), generator=torch.Generator().manual_seed(0))
    model.eval()
    assert torch.equal(model(x), model(x))  # attention (SDPA) dropout is switched off too
    model.train()
    assert not torch.equal(model(x), model(x))


def test_eval_attention_ignores_dropout_setting():
    """The same weights give the same eval logits whatever the dropout rate."""
    x = torch.randint(V, (2, 16), generator=torch.Generator().manual_seed(0))
    a = GPT(cfg(dropout=0.0), seed=4).eval()
    b = GPT(cfg(dropout=0.5), seed=4).eval()
    assert torch.equal(a(x), b(x))


def test_attention_dropout_is_applied_in_train_mode():
    attn = GPT(cfg(dropout=0.5), seed=0).blocks[0].attn.train()
    x = torch.randn(2, 16, 32, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    assert not torch.equal(attn(x), attn(x))
    attn.eval()
    assert torch.equal(attn(x), attn(x))


@pytest.mark.parametrize(("name", "kind"), [
    ("tok.weight", "embedding"),
    ("pos.weight", "embedding"),
    ("head.weight", "readout"),
    ("ln_f.weight", "vector"),
    ("ln_f.bias", "vector"),
    ("blocks.0.ln1.weight", "vector"),
    ("blocks.1.ln2.bias", "vector"),
    ("blocks.0.attn.qkv.weight", "hidden"),
    ("blocks.0.attn.proj.weight", "hidden"),
    ("blocks.0.mlp.up.weight", "hidden"),
    ("blocks.0.mlp.proj.weight", "hidden"),
])
def test_param_kind(name, kind):
    assert GPT.param_kind(name) == kind


def test_every_parameter_has_a_listed_kind():
    names = dict(GPT(cfg(depth=2)).named_parameters())
    kinds = {GPT.param_kind(n) for n in names}
    assert kinds == {"embedding", "readout", "vector", "hidden"}
    assert {n for n in names if GPT.param_kind(n) == "hidden"} == {
        f"blocks.{i}.{m}.weight" for i in range(2) for m in ("attn.qkv", "attn.proj", "mlp.up", "mlp.proj")}


def test_layernorms_start_as_identity():
    model = GPT(cfg())
    for name, p in model.named_parameters():
        if GPT.param_kind(name) == "vector":
            assert torch.equal(p, torch.ones_like(p) if name.endswith("weight") else torch.zeros_like(p)), name


def test_zero_readout():
    model = GPT(cfg(zero_readout=True))
    assert torch.count_nonzero(model.head.weight) == 0
    assert torch.count_nonzero(GPT(cfg()).head.weight) > 0
    logits = model(torch.randint(V, (1, 8)))
    assert torch.count_nonzero(logits) == 0  # uniform predictions at step 0


def test_zero_query():
    width = 32
    model, plain = GPT(cfg(zero_query=True, depth=2), seed=0), GPT(cfg(depth=2), seed=0)
    for block, ref in zip(model.blocks, plain.blocks, strict=True):
        w, w_ref = block.attn.qkv.weight, ref.attn.qkv.weight
        assert torch.count_nonzero(w[:width]) == 0  # the query rows
        assert torch.equal(w[width:], w_ref[width:])  # keys and values untouched


# ---------------------------------------------------------------- the KV cache


def test_kv_cache_gives_the_same_logits_as_the_full_window():
    from lmlab.model import KVCache

    model = GPT(GPTConfig(vocab_size=11, ctx=16, width=32, depth=2, heads=4, init_std=0.2), seed=0).eval()
    idx = torch.randint(11, (3, 12), generator=torch.Generator().manual_seed(0))
    full = model(idx)
    cache = KVCache(16)
    pieces = [model(idx[:, :5], cache=cache), model(idx[:, 5:6], cache=cache), model(idx[:, 6:12], cache=cache)]
    assert len(cache) == 12
    assert torch.allclose(torch.cat(pieces, 1), full, atol=1e-5)


def test_kv_cache_cannot_grow_past_ctx():
    from lmlab.model import KVCache

    model = GPT(GPTConfig(vocab_size=11, ctx=8, width=16, depth=1, heads=2), seed=0).eval()
    cache = KVCache(8)
    model(torch.zeros(1, 6, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match=r"6 cached \+ 3 new tokens must be at most ctx=8, got 9"):
        model(torch.zeros(1, 3, dtype=torch.long), cache=cache)
    small = KVCache(4)
    with pytest.raises(ValueError, match="capacity 4, got 6"):
        model(torch.zeros(1, 6, dtype=torch.long), cache=small)
    with pytest.raises(ValueError, match="capacity"):
        KVCache(0)


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_turns_dropout_off_and_restores_the_mode_even_on_error(training):
    model = GPT(GPTConfig(vocab_size=5, ctx=4, width=8, depth=1, heads=2, dropout=0.5)).train(training)
    with eval_mode(model):
        assert not model.training and not any(m.training for m in model.modules())
    assert model.training is training
    with pytest.raises(ValueError), eval_mode(model):
        model(torch.zeros(1, 5, dtype=torch.long))  # longer than ctx
    assert model.training is training


def test_eval_mode_disabled_gives_training_mode_then_restores():
    model = GPT(GPTConfig(vocab_size=5, ctx=4, width=8, depth=1, heads=2, dropout=0.5)).eval()
    with eval_mode(model, enabled=False):
        assert all(m.training for m in model.modules())
    assert not model.training
