"""K GPTs of one shape as one batched model: the same arithmetic as K separate models, in big products.

A book-sized model (width 32–256, ctx 64, batch 32) is too small to keep a CPU busy: most
of a step is per-operation overhead, not arithmetic. Runs of one shape (the seeds of a
setting, the learning rates of a sweep, the rates of a dropout grid) can share every
operation instead: each parameter of the K runs is stacked on a leading K dimension,
`tok.weight` becomes (K, vocab, width) and `blocks.0.mlp.up.weight` (K, 4·width, width),
and every matrix product is one `torch.bmm` over K. Each run keeps its own numbers:

- its initialisation, stacked from its own `GPT(cfg, seed)`, so it starts where a separate
  run starts, and its final weights unstack into `GPT(cfg).state_dict()`'s format;
- its forward multipliers (α_in, α_out, the attention scale: whatever its `GPT` computed, an
  ablated model's included), as (K, 1, …) tensors;
- its dropout rate and masks: each mask is drawn from the run's own generator, site by site in
  the order a separate run draws them from the global one (the embedding sum, then per block
  the attention weights, the attention output, the MLP output), with the same call
  (`bernoulli_(1 - p)` on a tensor of the same shape), so the same seed gives the same masks.

What must be shared is what shapes the tensors and the loop: `SHARED_MODEL` and `SHARED_TRAIN`
(`group_key` gives them, to sort runs into groups). The training loop is `lmlab.group_train`.
"""

import math

import torch
import torch.nn.functional as F

from lmlab.model import GPT
from lmlab.train import TrainConfig

SHARED_MODEL = ("vocab_size", "ctx", "width", "depth", "heads")  # the tensors' shapes
# the loop's shape: how many steps, how big a batch, when to evaluate, on how much, and the schedule's form
SHARED_TRAIN = ("steps", "batch_size", "schedule", "warmup_steps", "min_lr_ratio", "cooldown_fraction", "betas",
                "eval_every", "eval_batches")
# everything else is per run: the seed; lr, weight_decay, grad_clip; init_std, input_mult, output_mult,
# dropout, zero_query, zero_readout, param, base_width, base_heads (progress is not a number of the run)


def group_key(model_cfg, train_cfg) -> tuple:
    """What runs must share to train in one group: equal keys, one group."""
    return (tuple(getattr(model_cfg, n) for n in SHARED_MODEL), tuple(getattr(train_cfg, n) for n in SHARED_TRAIN))


def check_group(models, cfgs, seeds) -> None:
    """Raise ValueError naming the argument, or the field two runs disagree on, for runs that cannot
    train as one group."""
    for name, value in (("models", models), ("cfgs", cfgs), ("seeds", seeds)):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list with one entry per run, got {type(value).__name__}")
    if not models:
        raise ValueError("models must hold at least one GPT, got none")
    if len(cfgs) != len(models) or len(seeds) != len(models):
        raise ValueError(f"models, cfgs and seeds must have one entry per run, got {len(models)}, {len(cfgs)} "
                         f"and {len(seeds)}")
    for i, (model, cfg) in enumerate(zip(models, cfgs, strict=True)):
        if not isinstance(model, GPT) or not isinstance(cfg, TrainConfig):
            raise ValueError(f"models[{i}] must be a GPT and cfgs[{i}] a TrainConfig, got "
                             f"{type(model).__name__} and {type(cfg).__name__}")
    for i, model in enumerate(models):
        j = next(j for j, other in enumerate(models) if other is model)
        if j != i:
            raise ValueError(f"models[{i}] is models[{j}]: each run trains its own GPT (build one per run, "
                             f"GPT(cfg, seed))")
    for names, configs, what in ((SHARED_MODEL, [m.config for m in models], "model"), (SHARED_TRAIN, cfgs, "train")):
        for name in names:
            first = getattr(configs[0], name)
            for i, c in enumerate(configs[1:], 1):
                if getattr(c, name) != first:
                    raise ValueError(f"runs of one group must share the {what} setting {name}: run 0 has "
                                     f"{first!r}, run {i} has {getattr(c, name)!r} (group runs by "
                                     f"lmlab.group.group_key)")


class GroupGPT:
    """The K models as stacked tensors, with each run's multipliers and dropout rate.

    `params` maps each of GPT's parameter names to a (K, …) leaf tensor that requires grad;
    `forward` returns (K, B, T, vocab) logits and, with targets, the K mean cross-entropies.
    """

    def __init__(self, models: list[GPT], device):
        self.config = cfg = models[0].config
        self.names = [n for n, _ in models[0].named_parameters()]
        self.kinds = {n: GPT.param_kind(n) for n in self.names}
        self.params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]).to(device)
                       .requires_grad_() for n in self.names}
        self.device, self.training = torch.device(device), True
        self.input_mult = self._per_run([m.input_mult for m in models], 4)
        self.output_mult = self._per_run([m.output_mult for m in models], 4)
        # each layer's attention scale per run, from the models themselves (an ablation may have changed it)
        self.attn_scale = [[m.blocks[i].attn.scale for m in models] for i in range(cfg.depth)]
        self.dropout = [m.config.dropout for m in models]

    def _per_run(self, values, dims: int) -> torch.Tensor:
        """A (K, 1, …) float32 tensor of one number per run, broadcasting over `dims` - 1 more dimensions."""
        return torch.tensor(values, dtype=torch.float32, device=self.device).view(-1, *[1] * (dims - 1))

    def __len__(self) -> int:
        return len(self.dropout)

    def keep(self, index: list[int]) -> None:
        """Keep only the runs at `index` (positions in the group as it is now), e.g. when one diverged."""
        at = torch.tensor(index, device=self.device)
        self.params = {n: p.detach().index_select(0, at).requires_grad_() for n, p in self.params.items()}
        self.input_mult, self.output_mult = self.input_mult[at], self.output_mult[at]
        self.attn_scale = [[layer[i] for i in index] for layer in self.attn_scale]
        self.dropout = [self.dropout[i] for i in index]

    def state_dict(self, k: int) -> dict:
        """Run `k`'s weights in the format of `GPT(cfg).state_dict()`."""
        return {n: self.params[n][k].detach().clone() for n in self.names}

    # ---------------------------------------------------------------- the forward pass

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, generators=None):
        """`idx` (K, B, T): each run's own token ids. In training mode (`self.training`) every run with
        a dropout rate draws its masks from its generator in `generators` (on the parameters' device)."""
        K, B, T = idx.shape
        P, cfg = self.params, self.config
        if T > cfg.ctx:
            raise ValueError(f"sequence length must be at most ctx={cfg.ctx}, got {T}")
        drop = self.training and any(self.dropout)
        offsets = torch.arange(K, device=idx.device).view(K, 1, 1) * cfg.vocab_size  # run k's rows of the stack
        x = F.embedding(idx + offsets, P["tok.weight"].flatten(0, 1)) * self.input_mult + P["pos.weight"][:, None, :T]
        x = self._dropout(x, generators) if drop else x
        for i in range(cfg.depth):
            a = self._attention(self._norm(x, f"blocks.{i}.ln1"), i, generators if drop else None)
            x = x + (self._dropout(a, generators) if drop else a)
            h = F.gelu(self._linear(self._norm(x, f"blocks.{i}.ln2"), f"blocks.{i}.mlp.up.weight"))
            h = self._linear(h, f"blocks.{i}.mlp.proj.weight")
            x = x + (self._dropout(h, generators) if drop else h)
        logits = self._linear(self._norm(x, "ln_f"), "head.weight") * self.output_mult
        if targets is None:
            return logits
        losses = F.cross_entropy(logits.float().flatten(0, 2), targets.flatten(), reduction="none")
        return logits, losses.view(K, -1).mean(1)

    def _linear(self, x, name):
        """x (K, B, T, in) times each run's W (K, out, in), transposed: one batched product."""
        w = self.params[name]
        return torch.bmm(x.flatten(1, 2), w.transpose(1, 2)).view(*x.shape[:-1], w.shape[1])

    def _norm(self, x, name):
        """LayerNorm over the width with each run's gain and bias."""
        w, b = self.params[name + ".weight"], self.params[name + ".bias"]
        return torch.addcmul(b[:, None, None], F.layer_norm(x, x.shape[-1:]), w[:, None, None])

    def _attention(self, x, layer, generators):
        """Causal self-attention of every run at once: the K·B sequences go through SDPA as one batch
        when every run has one scale and no attention dropout; otherwise through SDPA's own math
        (√scale on q and k, causal mask, softmax, dropout, times v) with per-run scales and masks."""
        K, B, T, C = x.shape
        H, hd = self.config.heads, C // self.config.heads
        q, k, v = (t.reshape(K * B, T, H, hd).transpose(1, 2)
                   for t in self._linear(x, f"blocks.{layer}.attn.qkv.weight").split(C, dim=-1))
        scales = self.attn_scale[layer]
        if generators is None and len(set(scales)) == 1:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scales[0])
        else:
            root = self._per_run([math.sqrt(s) for s in scales], 5)
            q, k, v = (t.reshape(K, B, H, T, hd) for t in (q, k, v))
            att = torch.matmul(q * root, k.transpose(-2, -1) * root)
            causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            att = att.masked_fill(~causal, float("-inf")).softmax(-1)
            if generators is not None:
                att = self._dropout(att, generators)
            y = torch.matmul(att, v).view(K * B, H, T, hd)
        y = y.transpose(1, 2).reshape(K, B, T, C)
        return self._linear(y, f"blocks.{layer}.attn.proj.weight")

    def _dropout(self, x, generators):
        """Inverted dropout with each run's rate, its mask drawn from its own generator exactly as
        `torch.nn.functional.dropout` draws one on the CPU (a 0/1 `bernoulli_(1 - p)` divided by 1 - p);
        a run at rate 0 draws nothing, as F.dropout at p = 0 draws nothing."""
        mask = torch.empty_like(x)
        for k, (p, g) in enumerate(zip(self.dropout, generators, strict=True)):
            if p:
                mask[k].bernoulli_(1 - p, generator=g).div_(1 - p)
            else:
                mask[k].fill_(1.0)
        return x * mask
