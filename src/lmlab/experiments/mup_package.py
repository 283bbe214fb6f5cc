"""lmlab's GPT parametrized by Microsoft's `mup` package instead of by `lmlab.mup`: the cross-check.

`lmlab.mup` writes μP as one table of exponents; the `mup` package (Yang et al.
2022's reference implementation) derives the same rules from each parameter's
shape, comparing the model with a base and a "delta" model. Building the same
architecture the way a user of the package would, and checking that its init,
learning rates and coordinate check agree with lmlab's, tests lmlab's table
against code that was written without it.

Only this module and its tests import the package; it is a reference, not a
dependency of lmlab (install it with `pip install --no-deps mup==1.0.0`, since it
requires torchvision, which would pull in a CUDA build of torch).
"""

import math
from dataclasses import replace

import torch

try:
    import mup
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("lmlab.mup_package needs the `mup` package: pip install --no-deps mup==1.0.0") from e

from lmlab.model import GPT, GPTConfig
from lmlab.seeds import fresh


def mup_package_gpt(config: GPTConfig, seed: int = 0) -> GPT:
    """The μP model of `config` as the `mup` package builds it, drawn from `seed`.

    The body is lmlab's GPT with SP semantics (so lmlab's own μP rules play no
    part) and the package's pieces added the way its README asks:

    - the readout is a `mup.MuReadout`, which multiplies its input by α_out/m
      itself, so the GPT's own logit multiplier is set to 1;
    - the attention scale is set by hand to √d_head,base / d_head, with the base's
      real head size (the README's 1/d_head, with the constant that makes it SP's
      1/√d_head at the base width): the package leaves attention to the user;
    - `mup.set_base_shapes` against models at `base_width` and 2×`base_width`
      marks which dimensions are widths; it runs with `rescale_params=False`
      because every parameter is then drawn by `mup.init.normal_`, which gives
      matrices with two width dimensions σ/√m and everything else σ, from the
      package's shape logic alone. GPT-2's 1/√(2·depth) on the residual
      projections and the LayerNorms' 1 and 0 are lmlab's choices, copied.

    Parameters are drawn in `named_parameters` order from a CPU generator seeded
    with `seed`, as `GPT.reset_parameters` draws them, so the caller's global
    random state is left as it was. `config.param` must be "mup".
    """
    if config.param != "mup":
        raise ValueError(f"config.param must be 'mup' (the package builds only μP), got {config.param!r}")
    base_width, base_heads = config.base_width or config.width, config.base_heads or config.heads
    body = replace(config, param="sp", base_width=None, base_heads=None)
    with torch.random.fork_rng(devices=[]):  # MuReadout's own init and mup.init draw from the global RNG
        model = GPT(body, seed)
        model.head = mup.MuReadout(config.width, config.vocab_size, bias=False, output_mult=config.output_mult,
                                   readout_zero_init=config.zero_readout)
        model.output_mult = 1.0  # MuReadout applies α_out/m; GPT.forward must not apply it again
        for block in model.blocks:
            block.attn.scale = config.attn_mult * math.sqrt(base_width // base_heads) / config.head_dim
        base, delta = (GPT(replace(body, width=w, heads=base_heads), seed) for w in (base_width, 2 * base_width))
        mup.set_base_shapes(model, base, delta=delta, rescale_params=False)
        torch.default_generator.manual_seed(seed)  # the CPU generator only, inside the fork
        with torch.no_grad():
            for name, p in model.named_parameters():
                if GPT.param_kind(name) == "vector":
                    p.fill_(1.0 if name.endswith("weight") else 0.0)
                elif not (name.startswith("head.") and config.zero_readout):  # a redraw would undo the zero init
                    std = config.init_std / (math.sqrt(2 * config.depth) if name.endswith(".proj.weight") else 1)
                    mup.init.normal_(p, std=std)
            if config.zero_query:
                for block in model.blocks:
                    block.attn.qkv.weight[: config.width].zero_()
    return model


def mup_package_optimizer(model: GPT, lr: float, betas=(0.9, 0.95)) -> torch.optim.AdamW:
    """The package's `MuAdamW` over all of `model`'s parameters, with weight decay 0.

    MuAdamW divides the LR of every parameter with two width dimensions by m and
    leaves the rest at `lr`. Weight decay is left at 0 because the package would
    multiply it by m on those matrices (and apply it to LayerNorms too), which
    lmlab's `optimizer` does not; with 0 the two optimizers are comparable.
    """
    return mup.MuAdamW(model.parameters(), lr=lr, betas=betas, weight_decay=0.0)


def package_coord_check(data, widths, steps: int = 5, lr: float = 2**-6, seeds=(0, 1, 2), *, batch_size: int = 16,
                        ctx: int = 64, base_width: int | None = None, tweak=None, **config):
    """`coord_check.coord_check`, run by the package's own coordinate-check loop on `mup_package_gpt`.

    Same fixed batch, same statistic, AdamW at lmlab's betas (the package's
    `get_coord_data` would build it at torch's default betas, so its `optcls` path
    is used); seed i draws the model `GPT(cfg, i)` would. The package's loop fixes those seeds to
    0, 1, ... whatever the replication offset; the batch moves with it, as `coord_check`'s does.
    `tweak(model)` may alter each model before training, to show what a mistake does. Runs on the
    CPU, as the package's loop does with `cuda=False`. Returns rows like `coord_check`'s.
    """
    from mup.coord_check import _get_coord_data

    if tuple(seeds) != tuple(range(len(seeds))):  # the package's loop seeds torch with 0, 1, ...
        raise ValueError(f"seeds must be 0, 1, ..., n-1 for the package's loop, got {tuple(seeds)}")
    widths = sorted(widths)
    tweak = tweak or (lambda model: model)
    x, y = data.batch("train", batch_size, ctx, torch.Generator().manual_seed(fresh(0)))  # coord_check's batch

    def build(width):
        cfg = GPTConfig(data.vocab_size, ctx=ctx, width=width, param="mup", base_width=base_width or widths[0],
                        **config)
        return tweak(mup_package_gpt(cfg, seed=torch.initial_seed()))  # the loop has just seeded torch with i

    layers = {"drop": "embedding", "head": "logits"}
    for i in range(config.get("depth", GPTConfig.depth)):
        layers |= {f"blocks.{i}.attn": f"attention {i}", f"blocks.{i}.mlp": f"MLP {i}"}
    df = _get_coord_data({w: (lambda w=w: build(w)) for w in widths}, [(x, y.flatten())],
                         lambda model: mup_package_optimizer(model, lr), nsteps=steps, flatten_output=True,
                         lossfn="xent", filter_module_by_name=layers.__contains__, cuda=False, nseeds=len(seeds),
                         show_progress=False)
    df["layer"], df["seed"], df["param"] = df.module.map(layers), 0, "mup (package)"
    return df[["param", "width", "seed", "t", "layer", "l1"]]
