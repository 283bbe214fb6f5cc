"""lmlab's μP against Microsoft's `mup` package on the same architecture (lmlab.mup_package)."""

import math

import mup  # the package (make installs it); lmlab's own module is `lmup` here
import pytest
import torch

from lmlab import mup as lmup
from lmlab.experiments import coord_check
from lmlab.experiments.mup_package import mup_package_gpt, mup_package_optimizer, package_coord_check
from lmlab.model import GPT, GPTConfig

V, BASE, LR = 13, 16, 1e-2


def cfg(width: int, **kw) -> GPTConfig:
    return GPTConfig(**{"vocab_size": V, "ctx": 16, "width": width, "depth": 2, "heads": 2, "param": "mup",
                        "base_width": BASE, **kw})


def lr_by_name(model, opt, key: str = "lr") -> dict:
    """Each parameter's name → its group's `key` (every parameter must sit in exactly one group)."""
    held = {}
    for group in opt.param_groups:
        for p in group["params"]:
            assert id(p) not in held, "a parameter sits in two groups"
            held[id(p)] = group[key]
    named = dict(model.named_parameters())
    assert len(held) == len(named)
    return {name: held[id(p)] for name, p in named.items()}


@pytest.mark.parametrize("zero", [False, True])
@pytest.mark.parametrize("mult", [1, 4])
def test_package_init_draws_lmlab_mup_init(mult, zero):
    """The package's shape logic (σ/√m on hidden matrices only) draws lmlab's μP init to the bit."""
    c = cfg(mult * BASE, zero_readout=zero, zero_query=zero, input_mult=2.0, output_mult=3.0, attn_mult=2.0)
    ours, theirs = GPT(c, seed=5), mup_package_gpt(c, seed=5)
    assert isinstance(theirs.head, mup.MuReadout) and theirs.output_mult == 1.0
    for (n, p), (n2, q) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        assert n == n2 and torch.equal(p, q), n
    for b_ours, b_theirs in zip(ours.blocks, theirs.blocks, strict=True):
        assert b_theirs.attn.scale == pytest.approx(b_ours.attn.scale, rel=1e-12)
    x = torch.randint(V, (3, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), rtol=1e-5, atol=1e-7)
    assert not torch.equal(GPT(c, seed=6).tok.weight, theirs.tok.weight)  # the seed matters


def test_package_gpt_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    mup_package_gpt(cfg(2 * BASE))
    assert torch.equal(state, torch.get_rng_state())


def test_package_gpt_wants_a_mup_config():
    with pytest.raises(ValueError, match="param"):
        mup_package_gpt(cfg(2 * BASE, param="sp", base_width=None))


@pytest.mark.parametrize("mult", [2, 3, 4])
def test_learning_rates_agree_per_parameter(mult):
    """lr/η per parameter name: η/m on Q/K/V, attention output and MLP matrices, η on embeddings,
    readout and LayerNorms, in both optimizers (bit for bit when m is a power of two)."""
    c = cfg(mult * BASE)
    ours, theirs = GPT(c), mup_package_gpt(c)
    mine = {n: lr / LR for n, lr in lr_by_name(ours, lmup.optimizer(ours, LR)).items()}
    pkg = {n: lr / LR for n, lr in lr_by_name(theirs, mup_package_optimizer(theirs, LR)).items()}
    expected = {n: 1 / mult if GPT.param_kind(n) == "hidden" else 1.0 for n in mine}
    assert sum(v != 1.0 for v in expected.values()) == 4 * c.depth  # qkv, attn.proj, mlp.up, mlp.proj
    if mult & (mult - 1) == 0:
        assert mine == pkg == expected
    else:  # η·m⁻¹ and η/m may round differently
        assert mine == pytest.approx(pkg, rel=1e-12) and pkg == pytest.approx(expected, rel=1e-12)


def test_mup_adamw_multiplies_hidden_weight_decay_by_m():
    """A pitfall when moving a tuned weight decay between the two: MuAdamW multiplies the hidden
    matrices' decay by m (AdamW's per-step decay lr·wd stays η·wd at every width) and decays
    LayerNorms too; lmlab's optimizer keeps `weight_decay` as given (so lr·wd shrinks like 1/m on
    hidden matrices) and never decays vectors."""
    wd, mult = 0.1, 4
    c = cfg(mult * BASE)
    ours, theirs = GPT(c), mup_package_gpt(c)
    pkg_opt = mup.MuAdamW(theirs.parameters(), lr=LR, weight_decay=wd)
    pkg_wd, pkg_lr = lr_by_name(theirs, pkg_opt, "weight_decay"), lr_by_name(theirs, pkg_opt)
    our_opt = lmup.optimizer(ours, LR, weight_decay=wd)
    our_wd, our_lr = lr_by_name(ours, our_opt, "weight_decay"), lr_by_name(ours, our_opt)
    for name in pkg_wd:
        kind = GPT.param_kind(name)
        if kind == "hidden":
            assert pkg_wd[name] == pytest.approx(wd * mult) and our_wd[name] == wd, name
            assert pkg_lr[name] * pkg_wd[name] == pytest.approx(LR * wd), name
            assert our_lr[name] * our_wd[name] == pytest.approx(LR * wd / mult), name
        else:
            assert pkg_wd[name] == wd, name
            assert our_wd[name] == (0.0 if kind == "vector" else wd), name


# The coordinate check: lmlab's `coord_check` against the package's own loop on the package's model
WIDTHS, STEPS, CC_LR, SEEDS, BATCH, CTX, DEPTH, HEADS = [32, 64, 128], 4, 2**-6, (0, 1, 2), 4, 16, 2, 2
LAYERS = {"drop": "embedding", "head": "logits"} | {
    f"blocks.{i}.{module}": f"{layer} {i}" for i in range(DEPTH) for module, layer in (("attn", "attention"),
                                                                                        ("mlp", "MLP"))}


def package_coords(data, tweak=None):
    df = package_coord_check(data, WIDTHS, steps=STEPS, lr=CC_LR, seeds=SEEDS, batch_size=BATCH, ctx=CTX,
                             depth=DEPTH, heads=HEADS, tweak=tweak)
    return df.groupby(["layer", "width", "t"]).l1.mean()


def lmlab_coords(data):
    df = coord_check.coord_check(data, "mup", WIDTHS, steps=STEPS, lr=CC_LR, seeds=SEEDS, batch_size=BATCH, ctx=CTX,
                          depth=DEPTH, heads=HEADS, device="cpu")  # the package's loop runs on the CPU
    return df.groupby(["layer", "width", "t"]).l1.mean()


def relative_gap(ours, theirs) -> float:
    assert sorted(ours.index) == sorted(theirs.index)
    assert len(ours) == len(LAYERS) * len(WIDTHS) * STEPS
    return ((ours - theirs.reindex(ours.index)).abs() / theirs.reindex(ours.index)).max()


def test_coord_check_agrees_with_the_package(tiny_data):
    """Same draws, same batch, same AdamW: every seed-mean coordinate agrees at every width and
    step (on a CPU they are bit for bit equal). With independent draws the seed noise at these
    widths is far above 10%, and a 10% tolerance would miss a wrong attention scale (see below)."""
    gap = relative_gap(lmlab_coords(tiny_data), package_coords(tiny_data))
    assert gap < 1e-4, gap


def test_coord_check_comparison_sees_a_missing_attention_scale(tiny_data):
    """The package leaves attention to the user. Keeping SP's 1/√d_head moves the coordinates by
    only a few percent at these widths, which the tolerance above still catches."""

    def sp_attention(model):
        for block in model.blocks:
            block.attn.scale = 1 / math.sqrt(model.config.head_dim)
        return model

    gap = relative_gap(lmlab_coords(tiny_data), package_coords(tiny_data, sp_attention))
    assert 1e-2 < gap, gap
