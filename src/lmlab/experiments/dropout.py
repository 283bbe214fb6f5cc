"""Dropout by hand, where it sits in a model, and MC dropout's uncertainty.

`dropout` is the whole idea in four lines, to read next to `nn.Dropout`: zero each
unit with probability p and scale the survivors by 1/(1−p), so the expected output
equals the input and evaluation needs no change at all ("inverted" dropout). Note
that p is the probability to *drop*, as in PyTorch; Srivastava et al. (2014) write p
for the probability to *keep*.

`mc_uncertainty` leaves dropout on at inference (Gal & Ghahramani 2016): each pass
samples a different thinned network, and how much the passes disagree about the
next character measures what the model does not know, as distinct from what is
simply unpredictable. `mc_by_text` gives its means on several texts at once (chapter 6
compares the model's training slice, unseen plays and the plays written backwards).
"""

import math
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn as nn

from lmlab.checks import check_fraction, check_positive_int
from lmlab.corpus import eval_windows
from lmlab.model import GPTConfig, model_device
from lmlab.rng import seeded
from lmlab.runs import RunSpec, dataset
from lmlab.seeds import fresh
from lmlab.train import TrainConfig


def dropout(x: torch.Tensor, p: float, training: bool = True, generator: torch.Generator | None = None):
    """Inverted dropout: in training, each element is zeroed with probability `p` and the rest
    are divided by 1 − p; in evaluation, the identity. Draws its mask as `nn.Dropout` does on a
    CPU, so the same seed gives the same mask."""
    check_fraction("p", p, high_open=True)
    if not training or p == 0:
        return x
    scale = torch.empty_like(x).bernoulli_(1 - p, generator=generator).div_(1 - p)  # 0 or 1/(1−p)
    return x * scale


def dropout_moments(x: torch.Tensor, p: float, masks: int, inverted: bool = True, seed: int = 0) -> dict:
    """Draw `masks` dropout masks over the 1-D input `x` and compare the outputs' mean and variance
    with inverted dropout's theory, E[y] = x and Var[y] = p/(1−p)·x²: `max_z` is the largest
    |mean − x| in standard errors of a mean of `masks` draws, `var_ratio` the median over elements
    of Var[y]/x² (theory: p/(1−p)). `inverted=False` drops without rescaling, as the 2014 paper
    trained: a control whose mean misses x by p·x, so `max_z` must be large. The masks' `seed` is
    moved by the replication build's seed offset (`lmlab.seeds.fresh`)."""
    check_fraction("p", p, low_open=True, high_open=True)
    check_positive_int("masks", masks)
    if x.dim() != 1 or (x == 0).any():
        raise ValueError(f"x must be a 1-D tensor without zeros, got shape {tuple(x.shape)}")
    g = torch.Generator().manual_seed(fresh(seed))
    y = dropout(x.expand(masks, -1), p, generator=g) * (1 - p if not inverted else 1)
    se = x.abs() * math.sqrt(p / (1 - p) / masks)
    return {"max_z": ((y.mean(0) - x).abs() / se).max().item(), "mean_err": (y.mean(0) - x).abs().max().item(),
            "var_ratio": (y.var(0) / x**2).median().item(), "var_theory": p / (1 - p)}


def dropout_places(model: nn.Module, idx: torch.Tensor) -> int:
    """How many times one training-mode forward pass over `idx` applies dropout: every call of an
    `nn.Dropout` module (a module used twice counts twice) and of an attention module that hands
    its rate to scaled_dot_product_attention. The model's mode is left as it was."""
    calls = []
    hooks = [module.register_forward_hook(lambda *_: calls.append(1)) for module in model.modules()
             if isinstance(module, nn.Dropout) or (hasattr(module, "dropout") and isinstance(module.dropout, float))]
    was_training = model.training
    try:
        with torch.no_grad():
            model.train()(idx.to(model_device(model)))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return len(calls)


def dropout_sites(model: nn.Module) -> list[tuple[str, float]]:
    """Every place a model applies dropout, as (where, p): its `nn.Dropout` modules, and the
    attention modules that pass a `dropout` rate to scaled_dot_product_attention."""
    sites = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Dropout):
            sites.append((name, module.p))
        elif hasattr(module, "dropout") and isinstance(module.dropout, float):
            sites.append((f"{name} (attention weights)", module.dropout))
    return sites


@dataclass
class Uncertainty:
    """Per predicted character, in nats: `entropy` of the MC-averaged prediction (total
    uncertainty), `expected_entropy` of the single passes (what no network can know: the
    text's own randomness), their difference `mutual_info` (the passes' disagreement, the
    model's own uncertainty), and the loss of the averaged prediction (`nll_mc`) and of the
    deterministic eval-mode network (`nll`)."""

    entropy: torch.Tensor
    expected_entropy: torch.Tensor
    mutual_info: torch.Tensor
    nll_mc: torch.Tensor
    nll: torch.Tensor

    def means(self) -> dict[str, float]:
        return {name: getattr(self, name).mean().item() for name in self.__dataclass_fields__}


@torch.no_grad()
def mc_uncertainty(model, ids: torch.Tensor, passes: int, batches: int, batch_size: int,
                   seed: int = 0) -> Uncertainty:
    """MC dropout on `batches` batches of windows of the character ids `ids` (e.g. `data.train.ids`,
    text the model has seen, or `data.val.ids`, plays it has not), the same windows for any
    model: `passes` forward passes with dropout on, averaged as probabilities, beside one pass
    in eval mode. The model is left in eval mode. The masks' `seed`, like the windows, is moved by
    the replication build's seed offset (`lmlab.seeds.fresh`)."""
    check_positive_int("passes", passes)
    check_positive_int("batches", batches)
    if not any(p > 0 for _, p in dropout_sites(model)):
        raise ValueError("model has no dropout (every rate is 0), so MC dropout has nothing to sample; "
                         "train one with GPTConfig(dropout=p) for some p in (0, 1)")
    dev = model_device(model)
    parts = []
    with seeded(fresh(seed), dev):
        for x, y in eval_windows(ids, batch_size, model.config.ctx, batches):
            x, y = x.to(dev), y.to(dev)
            model.eval()
            nll = -model(x).float().log_softmax(-1).gather(-1, y[..., None])[..., 0]
            model.train()  # dropout on, gradients still off
            logp = torch.stack([model(x).float().log_softmax(-1) for _ in range(passes)])
            mean_logp = logp.logsumexp(0) - math.log(passes)
            entropy = -(mean_logp.exp() * mean_logp).sum(-1)
            expected = -(logp.exp() * logp).sum(-1).mean(0)
            parts.append((entropy, expected, entropy - expected, -mean_logp.gather(-1, y[..., None])[..., 0], nll))
    model.eval()
    return Uncertainty(*(torch.cat([p[i].flatten().cpu() for p in parts]) for i in range(5)))


def mc_by_text(model, texts: dict, passes: int, batches: int, batch_size: int, seed: int = 0) -> pd.DataFrame:
    """`mc_uncertainty`'s means (`Uncertainty.means`) on each of `texts` (name -> character ids): one
    row per text, in the order given, one column per measure; the same masks' `seed` for every text."""
    if not texts:
        raise ValueError("texts must name at least one text (name -> character ids), got none")
    return pd.DataFrame({name: mc_uncertainty(model, ids, passes, batches, batch_size, seed).means()
                         for name, ids in texts.items()}).T.rename_axis("text")


def model_spec(sizes, p: float, chars: int | None, seed: int = 0) -> RunSpec:
    """Chapter 4's run at `budget().dropout` sizes: dropout rate `p`, the first `chars` training
    characters (ALL: every one), and `seed` (init, data order and masks). Chapter 6 asks for the
    same spec and gets chapter 4's run back from the run cache."""
    check_fraction("p", p, high_open=True)
    model = GPTConfig(dataset().vocab_size, ctx=sizes.ctx, width=sizes.width, depth=sizes.depth, heads=sizes.heads,
                      dropout=p)
    train = TrainConfig(steps=sizes.steps, batch_size=sizes.batch_size, lr=sizes.lr, warmup_steps=sizes.warmup_steps,
                        eval_every=sizes.eval_every, eval_batches=sizes.eval_batches, progress=False)
    return RunSpec(model, train, train_chars=chars, seed=seed)


def best_rate(best_vals: dict) -> float:
    """The dropout rate p > 0 with the lowest best validation loss, from {p: best val}: the rate
    chapter 4 recommends for its small slice, and chapter 6 compares with p = 0."""
    rates = {p: v for p, v in best_vals.items() if p > 0}
    if not rates:
        raise ValueError(f"best_vals must hold at least one rate p > 0, got rates {sorted(best_vals)}")
    return min(rates, key=rates.get)
