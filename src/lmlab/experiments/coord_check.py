"""The coordinate check (Yang et al. 2022, appendix D): does every layer's output stay the same size
as the model widens?

Train each width for a few Adam steps on one fixed batch at a deliberately large LR
and record, before each step, the size of every layer's output, `|x_t|`, and the size
of what the updates so far changed in it, `|x_t − x_1|`. Under a correct μP both are
flat in width from t = 2 on; under SP the updates' effect on the hidden layers grows
with width, because an Adam update is aligned with the input it came from. The second
statistic is the one that tests that claim: `|x_t|` of an SP with one σ at every width
grows with width already at t = 1, before any update.

`ablate` removes one μP rule (`lmlab.mup.ABLATIONS`), for a negative control that a correct
check must catch. The attention rule acts inside the attention block, on its logits, which the
block's output feels only through the softmax: with `attention_logits=True` the check records
them too (the scale times q·k, before the softmax: `attention_logits`).
"""

from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch

from lmlab.checks import check_choice, check_positive, check_positive_int
from lmlab.device import device as default_device
from lmlab.model import GPT, GPTConfig
from lmlab.mup import ABLATIONS, RULES, ablate_rule, optimizer
from lmlab.seeds import fresh


def attention_logits(attn, x: torch.Tensor) -> torch.Tensor:
    """The attention logits of `attn` (a `lmlab.model.CausalSelfAttention`) on its input `x`
    (batch, time, width): its scale times q·k, shape (batch, heads, time, time), before the causal
    mask and the softmax. Recomputed from the module's own Q and K projection and its own `scale`
    (μP's √d_head,base / d_head, SP's 1/√d_head, or what an ablation set), as its forward pass
    computes them; entries above the diagonal (keys after their query) are not masked here."""
    if x.dim() != 3 or x.shape[-1] != attn.qkv.in_features:
        raise ValueError(f"x must be (batch, time, {attn.qkv.in_features}), got {tuple(x.shape)}")
    B, T, C = x.shape
    q, k, _ = (t.view(B, T, attn.heads, C // attn.heads).transpose(1, 2) for t in attn.qkv(x).split(C, dim=2))
    return (q @ k.transpose(-2, -1)) * attn.scale


@contextmanager
def record_coordinates(model, stats: dict, outputs: dict | None = None, attention: bool = False):
    """While active, each forward pass stores `|x|.mean()` of the embedding output,
    every attention and MLP output and the logits into `stats` (the statistic of
    the `mup` package's coordinate check), and the outputs themselves into `outputs`
    when it is given. With `attention`, also each block's attention logits as "attention logits
    i" (`attention_logits`, the entries of the causal triangle, where a query sees its key)."""

    def hook(name):
        def record(module, inputs, output):
            x = output[0] if isinstance(output, tuple) else output
            stats[name] = x.detach().abs().mean().item()
            if outputs is not None:
                outputs[name] = x.detach().clone()

        return record

    def logit_hook(name):
        def record(module, inputs, output):
            with torch.no_grad():
                logits = attention_logits(module, inputs[0])
                seen = torch.ones(logits.shape[-2:], dtype=torch.bool, device=logits.device).tril()
                hook(name)(module, inputs, logits[..., seen])

        return record

    modules = {"embedding": model.drop, "logits": model}
    for i, block in enumerate(model.blocks):
        modules |= {f"attention {i}": block.attn, f"MLP {i}": block.mlp}
    handles = [module.register_forward_hook(hook(name)) for name, module in modules.items()]
    if attention:
        handles += [block.attn.register_forward_hook(logit_hook(f"attention logits {i}"))
                    for i, block in enumerate(model.blocks)]
    try:
        yield stats
    finally:
        for handle in handles:
            handle.remove()


def coord_check(data, param: str, widths, steps: int = 5, lr: float = 2**-6, seeds=(0, 1, 2), *,
                batch_size: int = 16, ctx: int = 64, base_width: int | None = None, device=None,
                ablate: str | None = None, attention_logits: bool = False, **config) -> pd.DataFrame:
    """Train each width for `steps` Adam steps on one fixed batch at `lr`, and record the size of
    every layer's output before each step (t = 1 is the initial model).

    Returns one row per (width, seed, t, layer) with `l1` = mean |x_t| and `delta` =
    mean |x_t − x_1| (0 at t = 1), the size of what the updates changed. `config` goes to
    `GPTConfig` (depth, heads, init_std, ...); the base width defaults to the narrowest, the
    device to `lmlab.device()`. `ablate` (a key of ABLATIONS) removes one μP rule; the rows'
    `param` then reads "mup-<ablate>". The fixed batch is drawn from seed `lmlab.seeds.fresh(0)`, so
    that a replication build (`LMLAB_SEED_OFFSET`) checks on a batch of its own. With
    `attention_logits`, each block's attention logits get rows of their own, "attention logits i"
    (`record_coordinates`).
    """
    check_choice("param", param, tuple(RULES))
    if ablate is not None:
        check_choice("ablate", ablate, tuple(ABLATIONS))
    widths = sorted(widths)
    if not widths:
        raise ValueError("widths must name at least one width, got []")
    check_positive_int("steps", steps)
    check_positive("lr", lr)
    dev = torch.device(device) if device else default_device()
    batch = torch.Generator().manual_seed(fresh(0))  # the fixed batch: moved by the replication offset
    x, y = (t.to(dev) for t in data.batch("train", batch_size, ctx, batch))
    rows, label = [], param if ablate is None else f"{param}-{ablate}"
    for width in widths:
        cfg = GPTConfig(data.vocab_size, ctx=ctx, width=width, param=param, base_width=base_width or widths[0],
                        **config)
        for seed in seeds:
            model = GPT(cfg, seed).to(dev).train()
            opt = optimizer(model, lr)
            if ablate is not None:
                ablate_rule(model, ablate, opt)
            first = {}
            for t in range(1, steps + 1):
                outputs = {}
                with record_coordinates(model, {}, outputs, attention_logits) as stats:
                    _, loss = model(x, y)
                first = first or outputs
                rows += [{"param": label, "width": width, "seed": seed, "t": t, "layer": layer, "l1": value,
                          "delta": (outputs[layer] - first[layer]).abs().mean().item()}
                         for layer, value in stats.items()]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return pd.DataFrame(rows)


def width_slopes(coords: pd.DataFrame, stat: str = "l1") -> pd.Series:
    """The log-log slope of `stat` against width, per param, layer, step t and seed, from a
    `coord_check` table: 0 where a layer's coordinate is flat in width, ½ where it grows like
    √width, −½ where it shrinks like 1/√width. A (param, layer, t, seed) with a zero at any width (a
    layer the updates have not yet moved) has no slope and is left out."""
    if stat not in ("l1", "delta"):
        raise ValueError(f"stat must be 'l1' or 'delta', got {stat!r}")
    table = coords.groupby(["param", "layer", "t", "seed", "width"])[stat].mean().unstack("width")
    if table.shape[1] < 2:
        raise ValueError(f"coords must hold at least two widths to have a slope, got {list(table.columns)}")
    table = table[(table > 0).all(axis=1)]
    log_w = np.log(table.columns.to_numpy(dtype=float))
    slopes = [np.polyfit(log_w, np.log(row), 1)[0] for row in table.to_numpy(dtype=float)]
    return pd.Series(slopes, index=table.index, name="slope", dtype=float)


def spreads(coords: pd.DataFrame, first_t: int) -> pd.DataFrame:
    """The check's verdict per param, from a `coord_check` table (seeds averaged), from step
    `first_t` on: `spread`, the largest ratio of a layer output's biggest to smallest `delta` across
    widths (over every layer but the attention logits, and every step; ≤ 2 passes the check), the
    `layer` that spreads most, and the attention logits' growth from the narrowest to the widest
    width, least and most over the steps (`logits_min`, `logits_max`; NaN where none were recorded).
    A layer's output feels the attention rule only through the softmax, so the logits get their own."""
    size = coords[coords.t >= first_t].groupby(["param", "layer", "t", "width"]).delta.mean().unstack("width")
    if size.shape[1] < 2:
        raise ValueError(f"coords must hold at least two widths, got {list(size.columns)}")
    qk = size.index.get_level_values("layer").str.startswith("attention logits")
    outputs = (size.max(axis=1) / size.min(axis=1))[~qk]
    worst = outputs.groupby("param").idxmax()
    table = pd.DataFrame({"spread": outputs.groupby("param").max(),
                          "layer": worst.map(lambda index: index[1])})
    growth = (size.iloc[:, -1] / size.iloc[:, 0])[qk].groupby("param").agg(["min", "max"])
    return table.join(growth.rename(columns={"min": "logits_min", "max": "logits_max"}))
