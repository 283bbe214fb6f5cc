"""A small GPT in the style of nanoGPT, whose parametrization (SP or μP) is one config field.

Pre-LayerNorm blocks, causal attention through `F.scaled_dot_product_attention`
with an explicit scale, a 4× GELU MLP and an untied readout (for a character
vocabulary tying saves almost nothing, and an untied readout can be zero-initialised
under μP). Dropout sits where the original Transformer puts it, on the embedding
sum and on each sub-layer's output before the residual add, and on the attention
weights as in GPT-1 and BERT. Init scales, the attention scale and the readout
multiplier all come from the one table in `lmlab.mup`; α_in, α_out and α_attn are
tunable multipliers on top of them.

Generation can pass a `KVCache`: each block keeps the keys and values of the
tokens it has seen, so a new token costs one position instead of the whole window.
"""

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlab import footprint, mup
from lmlab.checks import check_choice, check_fraction, check_int, check_positive, check_positive_int, check_seed


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    ctx: int = 64
    width: int = 128
    depth: int = 2
    heads: int = 4
    dropout: float = 0.0
    param: str = "sp"  # "sp" or "mup"
    base_width: int | None = None  # the width at which μP equals SP; None means `width`
    base_heads: int | None = None  # the base model's head count; None means `heads`
    init_std: float = 0.02  # σ at the base width
    input_mult: float = 1.0  # α_in, multiplies the embedding output
    output_mult: float = 1.0  # α_out, multiplies the logits (μP divides it by m)
    attn_mult: float = 1.0  # α_attn, multiplies the attention logits after the parametrization's scale
    zero_query: bool = False
    zero_readout: bool = False

    def __post_init__(self):
        check_int("vocab_size", self.vocab_size, 2)  # one character leaves nothing to predict
        for name in ("ctx", "width", "depth", "heads"):
            check_positive_int(name, getattr(self, name))
        if self.width % self.heads:
            raise ValueError(f"width must be divisible by heads ({self.heads}), got width={self.width}")
        check_fraction("dropout", self.dropout, high_open=True)
        check_choice("param", self.param, tuple(mup.RULES))
        if self.base_width is None and self.base_heads not in (None, self.heads):
            raise ValueError(f"base_heads must be None or heads ({self.heads}) when base_width is None (the model "
                             f"is its own base), got {self.base_heads}")
        if self.base_heads is not None:
            check_positive_int("base_heads", self.base_heads)
        if self.base_width is not None:
            check_positive_int("base_width", self.base_width)
            heads = self.base_heads or self.heads
            if self.base_width % heads:
                raise ValueError(f"base_width must be divisible by the base's heads ({heads}), got {self.base_width}")
        for name in ("init_std", "input_mult", "output_mult", "attn_mult"):
            check_positive(name, getattr(self, name))

    @property
    def width_mult(self) -> float:
        """m = width / base_width, the variable every μP rule is a power of."""
        return self.width / (self.base_width or self.width)

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def head_dim_mult(self) -> float:
        """d_head / d_head,base, the variable the attention-scale rule is a power of: it equals m
        when the head count is fixed, and 1 when heads grow with width at a fixed head size."""
        base_width = self.base_width or self.width
        return self.head_dim / (base_width // (self.base_heads or self.heads))

    def to_dict(self) -> dict:
        return asdict(self)


def param_count(cfg: GPTConfig, non_embedding: bool = True) -> int:
    """Parameters of `GPT(cfg)` without building it: 12·width² + 4·width per block (Q, K, V,
    output, a 4× MLP, two LayerNorms) plus the final LayerNorm; embeddings and readout on request.
    `non_embedding` leaves out the token, position and readout matrices, as Kaplan et al. (2020)
    count N; Chinchilla counts them all."""
    w = cfg.width
    n = cfg.depth * (12 * w * w + 4 * w) + 2 * w
    if not non_embedding:
        n += (2 * cfg.vocab_size + cfg.ctx) * w
    return n


def flops_per_token(cfg: GPTConfig) -> float:
    """Training FLOPs per token, forward and backward: 6·(N + vocab·width) + 6·depth·ctx·width.

    Two FLOPs per weight forward and four backward for every non-embedding parameter N and for
    the readout matmul (vocab·width), which Kaplan et al. (2020, table 1) list but drop as small
    at their scale and Chinchilla counts; it is a large share of a character model's compute.
    The embeddings are lookups, not matmuls, and cost nothing. Attention's scores and weighted
    sum add 2·ctx·width per layer forward (4·ctx·width for the full ctx × ctx matrix, halved on
    average by the causal mask), so 6·depth·ctx·width for training."""
    return 6 * (param_count(cfg) + cfg.vocab_size * cfg.width) + 6 * cfg.depth * cfg.ctx * cfg.width


def model_device(model: nn.Module) -> torch.device:
    """The device a model's parameters live on: where every input to it must go."""
    return next(model.parameters()).device


@contextmanager
def eval_mode(model: nn.Module, enabled: bool = True):
    """Evaluation mode (dropout off) for the block, then the mode the model had, even on an error.
    `enabled=False` gives training mode instead (dropout on), for MC dropout."""
    was_training = model.training
    model.train(not enabled)
    try:
        yield model
    finally:
        model.train(was_training)


class KVCache:
    """The keys and values every attention layer has computed so far, for incremental decoding.

    Buffers of `capacity` positions are allocated once and filled in place, so a step
    copies one position, not the whole cache. Positions are absolute, so the cache
    holds at most `ctx` tokens: a window that slides past ctx changes every token's
    position, and the caller starts afresh.
    """

    def __init__(self, capacity: int):
        check_positive_int("capacity", capacity)
        self.capacity, self.length = capacity, 0
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        """How many positions are cached."""
        return self.length

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write this step's keys and values (batch, heads, time, head_dim) after the cached ones;
        return all of them so far. `advance` moves past them once every layer has written."""
        if layer not in self.keys:
            shape = (*k.shape[:2], self.capacity, k.shape[-1])
            self.keys[layer], self.values[layer] = k.new_empty(shape), v.new_empty(shape)
        end = self.length + k.shape[-2]
        self.keys[layer][:, :, self.length : end] = k
        self.values[layer][:, :, self.length : end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def advance(self, steps: int) -> None:
        self.length += steps


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig, layer: int = 0):
        super().__init__()
        self.heads, self.dropout, self.layer = cfg.heads, cfg.dropout, layer
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width, bias=False)
        self.proj = nn.Linear(cfg.width, cfg.width, bias=False)
        # the attention rule follows the real head size: √d_head,base / d_head under μP, 1/√d_head under SP;
        # α_attn is a tunable temperature on top, as `attn_mult` in the mup package's Transformer example
        self.scale = cfg.attn_mult * mup.forward_scale(cfg.param, "attention", cfg.head_dim_mult) / math.sqrt(
            cfg.head_dim)

    def forward(self, x, cache: KVCache | None = None):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        if cache is not None:
            k, v = cache.extend(self.layer, k, v)
        past, mask = k.shape[-2] - T, None
        if past and T > 1:  # new queries see all cached keys and the new ones up to themselves
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(past)
        # SDPA applies dropout_p whatever the module's mode: switch it off in eval
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=not past and T > 1, scale=self.scale,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.up = nn.Linear(cfg.width, 4 * cfg.width, bias=False)
        self.proj = nn.Linear(4 * cfg.width, cfg.width, bias=False)

    def forward(self, x):
        return self.proj(F.gelu(self.up(x)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig, layer: int = 0):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.width), nn.LayerNorm(cfg.width)
        self.attn, self.mlp = CausalSelfAttention(cfg, layer), MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, cache: KVCache | None = None):
        x = x + self.drop(self.attn(self.ln1(x), cache))
        return x + self.drop(self.mlp(self.ln2(x)))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig, seed: int = 0):
        super().__init__()
        check_seed("seed", seed)
        footprint.check_model(config, param_count)  # before anything is allocated
        self.config = cfg = config
        self.tok = nn.Embedding(cfg.vocab_size, cfg.width)
        self.pos = nn.Embedding(cfg.ctx, cfg.width)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.depth))
        self.ln_f = nn.LayerNorm(cfg.width)
        self.head = nn.Linear(cfg.width, cfg.vocab_size, bias=False)
        m = cfg.width_mult
        self.input_mult = cfg.input_mult * mup.forward_scale(cfg.param, "embedding", m)
        self.output_mult = cfg.output_mult * mup.forward_scale(cfg.param, "readout", m)
        self.reset_parameters(seed)

    @staticmethod
    def param_kind(name: str) -> str:
        """Which row of the μP table a parameter follows, from its name."""
        if name.startswith(("tok.", "pos.")):
            return "embedding"
        if name.startswith("head."):
            return "readout"
        if ".ln" in name or name.startswith("ln_f."):
            return "vector"
        return "hidden"

    @torch.no_grad()
    def reset_parameters(self, seed: int = 0):
        """Init every parameter from the μP table; the same seed gives the same model anywhere."""
        check_seed("seed", seed)
        cfg, g = self.config, torch.Generator().manual_seed(seed)
        for name, p in self.named_parameters():
            kind = self.param_kind(name)
            if kind == "vector":
                p.fill_(1.0 if name.endswith("weight") else 0.0)
                continue
            std = cfg.init_std * mup.init_scale(cfg.param, kind, cfg.width_mult)
            if name.endswith(".proj.weight"):  # residual outputs: GPT-2's 1/√(2·depth)
                std /= math.sqrt(2 * cfg.depth)
            p.copy_(torch.randn(p.shape, generator=g) * std)
        if cfg.zero_readout:
            self.head.weight.zero_()
        if cfg.zero_query:
            for block in self.blocks:
                block.attn.qkv.weight[: cfg.width].zero_()

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; `non_embedding` leaves out the token, position and readout
        matrices, as Kaplan et al. (2020) count N."""
        return sum(p.numel() for n, p in self.named_parameters()
                   if not (non_embedding and self.param_kind(n) in ("embedding", "readout")))

    def forward(self, idx, targets=None, cache: KVCache | None = None):
        """Logits for every position, and the mean cross-entropy in nats when `targets` is given.
        With a `cache`, `idx` continues the tokens already cached, and they are not recomputed."""
        past, T = (len(cache) if cache is not None else 0), idx.shape[1]
        limit = min(self.config.ctx, cache.capacity) if cache is not None else self.config.ctx
        if past + T > limit:
            what = f"{past} cached + {T} new tokens" if past else "sequence length"
            where = f"ctx={self.config.ctx}" if limit == self.config.ctx else f"the cache's capacity {limit}"
            raise ValueError(f"{what} must be at most {where}, got {past + T}")
        x = self.tok(idx) * self.input_mult + self.pos(torch.arange(past, past + T, device=idx.device))
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, cache)
        if cache is not None:
            cache.advance(T)
        logits = self.head(self.ln_f(x)) * self.output_mult
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
