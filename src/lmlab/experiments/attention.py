"""How far from uniform a trained model's attention is: the entropy of its attention weights.

A query at position t (counting from 0) attends to t + 1 keys; its attention weights are a
distribution over them, whose entropy is log(t + 1) when they are uniform and 0 when one key
takes all the weight. `attention_entropy` measures it per layer, head and position on given
windows; `run_entropy` does so for a trained run of the run cache (or for a run trained with
one μP rule undone, `lmlab.mup.ABLATIONS`, which the run cache does not hold and which is
trained here as `lmlab.experiments.transfer` trains it), on the fixed held-out windows the
validation loss is measured on, and caches the result through `lmlab.sweep`.

The attention weights are recomputed from each attention module's own projection and scale,
as its forward pass computes them (the model hands them to `scaled_dot_product_attention`,
which does not return them).
"""

import sys

import pandas as pd
import torch

import lmlab.corpus
import lmlab.model
import lmlab.mup
import lmlab.runs
from lmlab import sweep
from lmlab.checks import check_choice, check_positive_int
from lmlab.corpus import eval_windows
from lmlab.model import GPT, eval_mode, model_device
from lmlab.mup import ablate_rule
from lmlab.runs import RunSpec, trained
from lmlab.train import TrainingDiverged, train

ABLATIONS = ("attention_scale", "output_mult")  # the rules a run can be trained without (no optimizer change)


def attention_weights(attn, x: torch.Tensor) -> torch.Tensor:
    """The attention weights of `attn` (a `lmlab.model.CausalSelfAttention`) on its input `x`
    (batch, time, width): softmax over the keys of its scale times q·k, the keys after each query
    masked, shape (batch, heads, time, time); each row sums to 1 over the keys up to its query."""
    if x.dim() != 3 or x.shape[-1] != attn.qkv.in_features:
        raise ValueError(f"x must be (batch, time, {attn.qkv.in_features}), got {tuple(x.shape)}")
    B, T, C = x.shape
    q, k, _ = (t.view(B, T, attn.heads, C // attn.heads).transpose(1, 2) for t in attn.qkv(x).split(C, dim=2))
    logits = (q @ k.transpose(-2, -1)) * attn.scale
    future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
    return logits.masked_fill(future, float("-inf")).softmax(-1)


def entropy(weights: torch.Tensor) -> torch.Tensor:
    """The entropy in nats of each distribution along the last axis (0 · log 0 counts as 0)."""
    return -torch.xlogy(weights, weights).sum(-1)


def uniform_entropy(ctx: int) -> torch.Tensor:
    """log(t + 1) for t = 0, …, ctx − 1: the entropy of uniform causal attention at each position."""
    check_positive_int("ctx", ctx)
    return torch.arange(1, ctx + 1, dtype=torch.float64).log()


@torch.no_grad()
def attention_entropy(model: GPT, x: torch.Tensor) -> torch.Tensor:
    """The entropy of `model`'s attention weights on the windows `x` (batch, time) of token ids,
    averaged over the windows: shape (layers, heads, time), in eval mode (no dropout), in float32."""
    if x.dim() != 2:
        raise ValueError(f"x must be (batch, time) token ids, got shape {tuple(x.shape)}")
    inputs = {}
    hooks = [block.attn.register_forward_hook(lambda m, args, out, i=i: inputs.__setitem__(i, args[0]))
             for i, block in enumerate(model.blocks)]
    try:
        with eval_mode(model):
            model(x.to(model_device(model)))
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack([entropy(attention_weights(block.attn, inputs[i].float())).mean(0)
                        for i, block in enumerate(model.blocks)])


def run_entropy(config: dict) -> dict:
    """The attention entropy of the trained run `config["spec"]` (a `RunSpec.to_dict()`) on the
    first `config["batches"]` fixed held-out batches (`lmlab.corpus.eval_windows` of the validation
    split, the windows of its validation loss): `entropy` (layers × heads × positions, nats),
    `mean` (its mean), `uniform` (the mean of log(t + 1) over the positions) and the run's
    `final_val`. The run comes from the run cache; with `config["ablate"]` (a rule of `ABLATIONS`)
    it is trained now with that rule undone, as `lmlab.experiments.transfer.ablated` trains it, and
    `final_val` shows that it is the same run. A run that diverged gives None for every number."""
    spec, ablation, batches = RunSpec.from_dict(config["spec"]), config.get("ablate"), config["batches"]
    check_positive_int("batches", batches)
    data = spec.data()
    if ablation is None:
        try:
            model, hist = trained(spec, data=data)
        except TrainingDiverged:
            return dict.fromkeys(("entropy", "mean", "uniform", "final_val"))
    else:
        check_choice("ablate", ablation, ABLATIONS)
        model = GPT(spec.model, spec.seed)
        ablate_rule(model, ablation)
        try:
            hist = train(model, data, spec.train, spec.seed)
        except TrainingDiverged:
            return dict.fromkeys(("entropy", "mean", "uniform", "final_val"))
    ctx = spec.model.ctx
    total = sum(attention_entropy(model, x) for x, _ in eval_windows(data.val.ids, spec.train.batch_size, ctx,
                                                                     batches)) / batches
    return {"entropy": total.tolist(), "mean": total.mean().item(), "uniform": uniform_entropy(ctx).mean().item(),
            "final_val": hist.final_val}


run_entropy.depends_on = (lmlab.runs, *lmlab.runs.shaping_code(), lmlab.corpus, lmlab.model, lmlab.mup,
                          sys.modules["lmlab.train"])


def target_entropy(specs, ablate: str | None = None, batches: int = 8, executor=None,
                   desc: str = "attention entropy") -> pd.DataFrame:
    """One row per run of `specs` (`run_entropy`, cached through `lmlab.sweep`): `seed`, `entropy`
    (the mean over layers, heads, positions and windows, nats), `uniform` (the same for uniform
    attention), `fraction` (entropy / uniform), `final_val`, and `by_position` (the entropy at each
    position, averaged over layers and heads)."""
    specs = list(specs)
    if ablate is not None:
        check_choice("ablate", ablate, ABLATIONS)
    check_positive_int("batches", batches)
    configs = [{"spec": s.to_dict(), "ablate": ablate, "batches": batches} for s in specs]
    rows = []
    for spec, r in zip(specs, sweep.run(configs, run_entropy, executor=executor, desc=desc), strict=True):
        if r["mean"] is None:
            raise ValueError(f"the run of seed {spec.seed} diverged: it has no attention to measure")
        by_position = torch.tensor(r["entropy"]).mean((0, 1)).tolist()
        rows.append({"seed": spec.seed, "entropy": r["mean"], "uniform": r["uniform"],
                     "fraction": r["mean"] / r["uniform"], "final_val": r["final_val"], "by_position": by_position})
    return pd.DataFrame(rows)
