"""Two kinds of randomness: what dropout changes in a model, and what a decoding rule can change.

Dropout is randomness during training: in eval mode a network is a fixed function,
and `rerun_difference` checks that two passes agree to the bit. A decoding rule is
randomness at inference that acts on one position's logits at a time. Every rule
of chapter 5 keeps the logits' order, so none can change how often the real next
character is among the model's top k (`top_k_hit_rate`); temperature alone can
move the held-out loss (`loss_vs_temperature`), by undoing over- or underconfidence.
An overfitted model's texts copy some of its training text; `uncopied` scores only the
characters outside the copied strings (`copied_mask`), to ask whether a verdict on the texts
rests on the copying. `interval_table` prints the chapter's claims (`lmlab.claims.Interval`)
one per row. Against the right baseline: `best_step` is where early stopping stops a run,
`stopped_all` brings those models back (`lmlab.runs.stopped`), and `calibrated` measures a model
on windows of its own, T fitted on one half (`fit_temperature`) and every measure read on the other.
"""

import functools

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from lmlab.checks import check_positive_int, check_range
from lmlab.corpus import eval_windows
from lmlab.likelihood import surprise_and_entropy
from lmlab.model import GPT, eval_mode, model_device
from lmlab.rng import seeded
from lmlab.runs import RunSpec, stopped
from lmlab.sampling import filter_logits


@torch.no_grad()
def rerun_difference(model: GPT, idx: torch.Tensor, training: bool = False, seeds=(0, 1)) -> float:
    """The largest |difference| between the logits of passes over the same `idx`, each after
    `torch.manual_seed(seed)`: 0.0 in eval mode whatever the dropout rate, > 0 with dropout on
    (`training`) when p > 0. The global RNG is left as it was."""
    if len(seeds) < 2:
        raise ValueError(f"seeds must hold at least two seeds, got {tuple(seeds)}")
    dev = model_device(model)
    passes = []
    with eval_mode(model, not training):
        for seed in seeds:
            with seeded(seed, dev):
                passes.append(model(idx.to(dev)).float())
    return max((p - passes[0]).abs().max().item() for p in passes[1:])


@torch.no_grad()
def argmax_agreement(model: GPT, idx: torch.Tensor, seed: int = 0) -> float:
    """The share of positions of `idx` where one thinned network (dropout on, masks from `seed`)
    picks the same most likely next token as the full eval-mode network: how much randomness
    dropout left on at inference gives a greedy decoder."""
    dev = model_device(model)
    with eval_mode(model, enabled=False), seeded(seed, dev):
        thinned = model(idx.to(dev)).argmax(-1)
    with eval_mode(model):
        return (model(idx.to(dev)).argmax(-1) == thinned).double().mean().item()


@torch.no_grad()
def heldout_logits(model: GPT, ids: torch.Tensor, batch_size: int, batches: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode logits (N, vocab) and next characters (N,) on `batches` windows of `ids`, drawn
    as `train.evaluate` draws them (the same windows for every model of one ctx)."""
    check_positive_int("batches", batches)
    dev = model_device(model)
    logits, targets = [], []
    with eval_mode(model):
        for x, y in eval_windows(ids, batch_size, model.config.ctx, batches):
            logits.append(model(x.to(dev)).float().flatten(0, 1).cpu())
            targets.append(y.flatten().long())
    return torch.cat(logits), torch.cat(targets)


def loss_vs_temperature(logits: torch.Tensor, targets: torch.Tensor, temperatures) -> pd.Series:
    """Cross-entropy in nats per character of the real next characters under softmax(logits / T),
    the distribution pure sampling at temperature T draws from, for each T."""
    losses = {}
    for t in temperatures:
        check_range("temperature", t, 0, float("inf"), low_open=True, high_open=True)
        losses[t] = F.cross_entropy(logits / t, targets).item()
    return pd.Series(losses, name="loss").rename_axis("T")


def top_k_hit_rate(logits: torch.Tensor, targets: torch.Tensor, ks) -> pd.Series:
    """The share of positions where the real next character is among the k most likely (ties at
    the k-th kept, as top-k keeps them): what top-k sampling can draw at all, for each k."""
    real = logits.gather(-1, targets[:, None])
    rates = {}
    for k in ks:
        check_positive_int("k", k)
        kth = logits.topk(min(k, logits.shape[-1]), dim=-1).values[:, -1:]
        rates[k] = (real >= kth).float().mean().item()
    return pd.Series(rates, name="hit rate").rename_axis("k")


def entropy(logits: torch.Tensor) -> float:
    """Mean entropy in nats of softmax(logits): how much the model itself hesitates, per character."""
    logp = logits.log_softmax(-1)
    return -(logp.exp() * logp).sum(-1).mean().item()


def argmax_draw_share(logits: torch.Tensor, **filters) -> float:
    """The share of draws, under a sampler with `filters` (`lmlab.sampling.filter_logits`'s
    temperature, top_k, …), that pick the most likely token, in expectation over the positions
    of `logits` (N, vocab): how often sampling does what greedy decoding would."""
    probs = filter_logits(logits.float(), **filters).softmax(-1)
    return probs.gather(-1, logits.argmax(-1, keepdim=True)).mean().item()


def interval_table(intervals: dict, digits: int = 4) -> pd.DataFrame:
    """One row per named `lmlab.claims.Interval` of `intervals` (name -> interval): its estimate
    ("mean"), its bounds ("lo", "hi"), the number of units it rests on ("n") and what kind of
    interval it is, so that a printed claim always shows how many seeds or prompts are behind it."""
    rows = {name: {"mean": i.estimate, "lo": i.low, "hi": i.high, "n": i.n, "interval": i.kind}
            for name, i in intervals.items()}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "lo", "hi", "n", "interval"])
    return table.round({"mean": digits, "lo": digits, "hi": digits})


@functools.lru_cache(maxsize=4)
def _grams(source: str, n: int) -> frozenset:
    return frozenset(source[i : i + n] for i in range(len(source) - n + 1))


def copied_mask(text: str, source: str, n: int = 12) -> np.ndarray:
    """Per character of `text`, True where it lies inside one of the text's `n`-character strings
    that occur verbatim in `source` (e.g. the model's training text): the characters a copy rate of
    `n`-grams counts as recited, every other one False."""
    check_positive_int("n", n)
    grams, mask = _grams(source, n), np.zeros(len(text), dtype=bool)
    for i in range(len(text) - n + 1):
        if text[i : i + n] in grams:
            mask[i : i + n] = True
    return mask


def uncopied(scorer: GPT, tokenizer, ids: torch.Tensor, start: int, source: str, n: int = 12,
             distinct: int = 4) -> dict[str, float]:
    """Rows of prompt + continuation (`ids`, the continuation from `start`), judged only where they
    do not copy `source` (`copied_mask` of `n`): the `scorer`'s NLL in nats per character pooled
    over the characters outside copied strings ("NLL, not copied"), distinct-`distinct` over the
    character `distinct`-grams that lie wholly outside them ("distinct-4, not copied" at 4), and
    the share of characters inside copied strings ("copied characters"). NaN where none is left."""
    check_positive_int("distinct", distinct)
    nll = surprise_and_entropy(scorer, ids, start)[0].numpy()
    texts = [tokenizer.decode(row[start:]) for row in ids]
    if any(len(text) != nll.shape[1] for text in texts):
        raise ValueError("tokenizer must decode one character per id, as the character tokenizer does")
    masks = [copied_mask(text, source, n) for text in texts]
    kept = np.concatenate([row[~mask] for row, mask in zip(nll, masks, strict=True)])
    grams = [text[i : i + distinct] for text, mask in zip(texts, masks, strict=True)
             for i in range(len(text) - distinct + 1) if not mask[i : i + distinct].any()]
    return {"NLL, not copied": kept.mean() if kept.size else float("nan"),
            f"distinct-{distinct}, not copied": len(set(grams)) / len(grams) if grams else float("nan"),
            "copied characters": float(np.concatenate(masks).mean())}


# ---------------------------------------------------------------- against the right baseline

LOSS_T1, FITTED_T, LOSS_FIT, TOP1 = "loss at T = 1", "fitted T", "loss at fitted T", "top-1 accuracy"


def best_step(hist) -> int:
    """The step of a run's lowest validation loss on its evaluation windows (the first, where two
    tie): where early stopping on that loss stops the run."""
    return hist.eval_step[min(range(len(hist.eval_val)), key=hist.eval_val.__getitem__)]


def _stop(spec: RunSpec, step: int) -> None:  # a worker's job: retrain and store, return nothing heavy
    stopped(spec, step)


def stopped_all(stops: dict, executor=None) -> dict:
    """{key: (model, History)} for {key: (spec, step)}: each run stopped after `step` steps
    (`lmlab.runs.stopped`), the ones the run cache lacks retrained on `executor` side by side
    (a `lmlab.sweep.local_pool()`; None: here, one after the other)."""
    if executor is not None:
        for future in [executor.submit(_stop, spec, step) for spec, step in stops.values()]:
            future.result()
    return {key: stopped(spec, step) for key, (spec, step) in stops.items()}


@torch.no_grad()
def window_logits(model: GPT, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode logits (N, vocab) and next characters (N,) on the windows `x` (n, ctx), targets `y`,
    in window order, `batch_size` windows a pass."""
    check_positive_int("batch_size", batch_size)
    dev = model_device(model)
    with eval_mode(model):
        logits = [model(x[i : i + batch_size].to(dev)).float().flatten(0, 1).cpu()
                  for i in range(0, len(x), batch_size)]
    return torch.cat(logits), y.flatten().long()


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, low: float = 0.05, high: float = 20.0,
                    tol: float = 1e-4) -> float:
    """The temperature T in [low, high] that minimises the cross-entropy of softmax(logits / T) on
    `targets` (temperature scaling), by golden-section search on log T: the loss is convex in 1 / T,
    so it has one minimum on the way, found to a relative `tol`."""
    check_range("low", low, 0, high, low_open=True, high_open=True)
    a, b, g = np.log(low), np.log(high), (np.sqrt(5) - 1) / 2

    def loss(log_t):
        return F.cross_entropy(logits / np.exp(log_t), targets).item()

    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = loss(c), loss(d)
    while b - a > tol:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = loss(d)
    return float(np.exp((a + b) / 2))


def calibrated(model: GPT, x: torch.Tensor, y: torch.Tensor, batch_size: int, k: int) -> pd.Series:
    """One model against the right baseline, on the windows `x` (n, ctx) and targets `y`: its
    temperature fitted on the first half of the windows (`fit_temperature`), and every measure read
    on the other half: the loss at T = 1, the fitted T, the loss at the fitted T, the top-1 accuracy
    and the share of positions whose real next character is among the model's top `k`."""
    if len(x) < 2:
        raise ValueError(f"need at least two windows, one to fit T on and one to score, got {len(x)}")
    logits, targets = window_logits(model, x, y, batch_size)
    half = len(x) // 2 * x.shape[1]
    t = fit_temperature(logits[:half], targets[:half])
    logits, targets = logits[half:], targets[half:]
    hits = top_k_hit_rate(logits, targets, sorted({1, k}))
    return pd.Series({LOSS_T1: F.cross_entropy(logits, targets).item(), FITTED_T: t,
                      LOSS_FIT: F.cross_entropy(logits / t, targets).item(), TOP1: hits[1],
                      f"real char in top-{k}": hits[k]})
