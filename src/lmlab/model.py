"""A small GPT in the style of nanoGPT, whose parametrization (SP or μP) is one config field.

Pre-LayerNorm blocks, causal attention through `F.scaled_dot_product_attention`
with an explicit scale, a 4× GELU MLP and an untied readout (for a character
vocabulary tying saves almost nothing, and an untied readout can be zero-initialised
under μP). Dropout sits where the original Transformer puts it, on the embedding
sum and on each sub-layer's output before the residual add, and on the attention
weights as in GPT-1 and BERT. Init scales, the attention scale and the readout
multiplier all come from the one table in `lmlab.mup`.
"""

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlab import mup
from lmlab.checks import check_choice, check_fraction, check_positive_int, check_range


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
    init_std: float = 0.02  # σ at the base width
    input_mult: float = 1.0  # α_in, multiplies the embedding output
    output_mult: float = 1.0  # α_out, multiplies the logits (μP divides it by m)
    zero_query: bool = False
    zero_readout: bool = False

    def __post_init__(self):
        for name in ("vocab_size", "ctx", "width", "depth", "heads"):
            check_positive_int(name, getattr(self, name))
        if self.width % self.heads:
            raise ValueError(f"width must be divisible by heads ({self.heads}), got width={self.width}")
        check_fraction("dropout", self.dropout, high_open=True)
        check_choice("param", self.param, tuple(mup.RULES))
        if self.base_width is not None:
            check_positive_int("base_width", self.base_width)
            if self.base_width % self.heads:
                raise ValueError(f"base_width must be divisible by heads ({self.heads}), got {self.base_width}")
        check_range("init_std", self.init_std, 0, float("inf"), low_open=True, high_open=True)

    @property
    def width_mult(self) -> float:
        """m = width / base_width, the variable every μP rule is a power of."""
        return self.width / (self.base_width or self.width)

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    def to_dict(self) -> dict:
        return asdict(self)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.heads, self.dropout = cfg.heads, cfg.dropout
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width, bias=False)
        self.proj = nn.Linear(cfg.width, cfg.width, bias=False)
        self.scale = mup.forward_scale(cfg.param, "attention", cfg.width_mult) / math.sqrt(cfg.head_dim)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        # SDPA applies dropout_p whatever the module's mode: switch it off in eval
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, scale=self.scale, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.up = nn.Linear(cfg.width, 4 * cfg.width, bias=False)
        self.proj = nn.Linear(4 * cfg.width, cfg.width, bias=False)

    def forward(self, x):
        return self.proj(F.gelu(self.up(x)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.width), nn.LayerNorm(cfg.width)
        self.attn, self.mlp = CausalSelfAttention(cfg), MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.mlp(self.ln2(x)))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig, seed: int = 0):
        super().__init__()
        self.config = cfg = config
        self.tok = nn.Embedding(cfg.vocab_size, cfg.width)
        self.pos = nn.Embedding(cfg.ctx, cfg.width)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
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

    def forward(self, idx, targets=None):
        """Logits for every position, and the mean cross-entropy in nats when `targets` is given."""
        T = idx.shape[1]
        if T > self.config.ctx:
            raise ValueError(f"sequence length must be at most ctx={self.config.ctx}, got {T}")
        x = self.tok(idx) * self.input_mult + self.pos(torch.arange(T, device=idx.device))
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x)) * self.output_mult
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
