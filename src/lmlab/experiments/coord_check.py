"""The coordinate check (Yang et al. 2022, appendix D): does every layer's output stay the same size
as the model widens?

Train each width for a few Adam steps on one fixed batch at a deliberately large LR
and record the size of every layer's output before each step. Under a correct μP
every curve is flat in width from t = 2 on; under SP the hidden layers' outputs grow
with width, because an Adam update is aligned with the input it came from.
"""

from contextlib import contextmanager

import pandas as pd
import torch

from lmlab.checks import check_choice, check_positive, check_positive_int
from lmlab.device import device as default_device
from lmlab.model import GPT, GPTConfig
from lmlab.mup import RULES, optimizer


@contextmanager
def record_coordinates(model, stats: dict):
    """While active, each forward pass stores `|x|.mean()` of the embedding output,
    every attention and MLP output and the logits into `stats` (the statistic of
    the `mup` package's coordinate check)."""

    def hook(name):
        def record(module, inputs, output):
            x = output[0] if isinstance(output, tuple) else output
            stats[name] = x.detach().abs().mean().item()

        return record

    modules = {"embedding": model.drop, "logits": model}
    for i, block in enumerate(model.blocks):
        modules |= {f"attention {i}": block.attn, f"MLP {i}": block.mlp}
    handles = [module.register_forward_hook(hook(name)) for name, module in modules.items()]
    try:
        yield stats
    finally:
        for handle in handles:
            handle.remove()


def coord_check(data, param: str, widths, steps: int = 5, lr: float = 2**-6, seeds=(0, 1, 2), *,
                batch_size: int = 16, ctx: int = 64, base_width: int | None = None, device=None,
                **config) -> pd.DataFrame:
    """Train each width for `steps` Adam steps on one fixed batch at `lr`, and record the size of
    every layer's output before each step (t = 1 is the initial model).

    Returns one row per (width, seed, t, layer) with the statistic in `l1`. `config` goes to
    `GPTConfig` (depth, heads, init_std, ...); the base width defaults to the narrowest, the
    device to `lmlab.device()`.
    """
    check_choice("param", param, tuple(RULES))
    widths = sorted(widths)
    if not widths:
        raise ValueError("widths must name at least one width, got []")
    check_positive_int("steps", steps)
    check_positive("lr", lr)
    dev = torch.device(device) if device else default_device()
    x, y = (t.to(dev) for t in data.batch("train", batch_size, ctx, torch.Generator().manual_seed(0)))
    rows = []
    for width in widths:
        cfg = GPTConfig(data.vocab_size, ctx=ctx, width=width, param=param, base_width=base_width or widths[0],
                        **config)
        for seed in seeds:
            model = GPT(cfg, seed).to(dev).train()
            opt = optimizer(model, lr)
            for t in range(1, steps + 1):
                with record_coordinates(model, {}) as stats:
                    _, loss = model(x, y)
                rows += [{"param": param, "width": width, "seed": seed, "t": t, "layer": layer, "l1": value}
                         for layer, value in stats.items()]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return pd.DataFrame(rows)
