import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from lmlab.model import GPT, GPTConfig
from lmlab.scaling import flops_per_token, param_count

CONFIGS = [
    GPTConfig(vocab_size=17, ctx=8, width=16, depth=1, heads=2),
    GPTConfig(vocab_size=65, ctx=32, width=32, depth=2, heads=4),
    GPTConfig(vocab_size=80, ctx=16, width=48, depth=3, heads=3, param="mup", base_width=24),
    GPTConfig(vocab_size=5, ctx=4, width=64, depth=1, heads=8, zero_query=True, zero_readout=True),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"w{c.width}d{c.depth}")
def test_param_count_matches_the_model(cfg):
    model = GPT(cfg)
    assert param_count(cfg) == model.num_params(non_embedding=True)
    assert param_count(cfg, non_embedding=False) == sum(p.numel() for p in model.parameters())


def test_param_count_by_hand():
    cfg = GPTConfig(vocab_size=65, ctx=64, width=128, depth=2, heads=4)
    # per block: Q, K, V, output 4·128², MLP 8·128², two LayerNorms 4·128; then the final LayerNorm
    assert param_count(cfg) == 2 * (12 * 128**2 + 4 * 128) + 2 * 128 == 394_496
    assert param_count(cfg, non_embedding=False) == 394_496 + (65 + 64 + 65) * 128


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"w{c.width}d{c.depth}")
def test_flops_per_token_formula(cfg):
    assert flops_per_token(cfg) == 6 * param_count(cfg) + 6 * cfg.depth * cfg.ctx * cfg.width


def test_flops_per_token_by_hand():
    cfg = GPTConfig(vocab_size=65, ctx=64, width=128, depth=2, heads=4)
    assert flops_per_token(cfg) == 6 * 394_496 + 6 * 2 * 64 * 128 == 2_465_280


def linear_flops(model: GPT, include_head: bool) -> int:
    """Forward FLOPs per token of every matrix multiply by a weight: 2·in·out each (a multiply and an add)."""
    return sum(2 * m.in_features * m.out_features for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and (include_head or name != "head"))


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"w{c.width}d{c.depth}")
def test_linear_layers_are_all_the_weight_matmuls(cfg):
    """What torch actually multiplies in a forward pass, counted by torch's own FLOP counter,
    is the Linear layers' 2·in·out per token (the embeddings are lookups, attention is apart)."""
    model = GPT(cfg).eval()
    batch = 3
    x = torch.randint(cfg.vocab_size, (batch, cfg.ctx))
    with FlopCounterMode(display=False) as counter:
        model(x)
    counts = counter.get_flop_counts()["Global"]
    matmuls = sum(n for op, n in counts.items() if str(op).split(".")[1] in ("mm", "addmm", "matmul"))
    assert matmuls == linear_flops(model, include_head=True) * batch * cfg.ctx


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"w{c.width}d{c.depth}")
def test_flops_per_token_is_three_forward_passes(cfg):
    """Kaplan et al. (2020), table 1: a forward pass costs 2 FLOPs per non-embedding weight plus
    2·depth·ctx·width for attention (QKᵀ and AV, 2·ctx·width each, halved on average by the causal
    mask); the backward pass costs twice the forward, so training costs 3 forward passes."""
    model = GPT(cfg)
    forward = linear_flops(model, include_head=False) + 2 * cfg.depth * cfg.ctx * cfg.width
    # N also counts the LayerNorm gains and biases, 2 forward FLOPs each in the 2N convention
    vectors = sum(p.numel() for n, p in model.named_parameters() if model.param_kind(n) == "vector")
    assert vectors == cfg.depth * 4 * cfg.width + 2 * cfg.width
    assert flops_per_token(cfg) == 3 * (forward + 2 * vectors)
    assert 3 * forward == pytest.approx(flops_per_token(cfg), rel=0.05)  # matmuls are nearly all of it


def test_flops_grow_with_every_size():
    base = GPTConfig(vocab_size=65, ctx=32, width=32, depth=2, heads=4)
    f = flops_per_token(base)
    for bigger in (dict(width=64), dict(depth=3), dict(ctx=64)):
        assert flops_per_token(GPTConfig(**{**base.to_dict(), **bigger})) > f
    assert flops_per_token(GPTConfig(**{**base.to_dict(), "vocab_size": 1000})) == f  # embeddings are free
