"""The two ways of maximising that chapter 5 measures beside sampling, and why they loop.

`beam_search` keeps the `width` most probable continuations at every step and returns the
most probable one at the end: width 1 is greedy decoding, and a wider beam finds text the
model finds more probable still. `repetition_feedback` measures why maximisation ends in
loops (Holtzman et al. 2020, their figure 4): the probability the model gives a phrase
grows with every copy of the phrase already in its context. `feedback_summary` puts its
copies' means and their changes beside their bootstrap intervals over the phrases.
"""

import numpy as np
import pandas as pd
import torch

from lmlab import claims
from lmlab.checks import check_positive_int
from lmlab.model import KVCache, eval_mode
from lmlab.sampling import check_ids
from lmlab.stats import bootstrap_interval


@torch.no_grad()
def beam_search(model, prompts: torch.Tensor, chars: int, width: int, chunk: int = 32) -> torch.Tensor:
    """The continuation of each prompt (rows of token ids) by `chars` tokens that a beam of `width`
    finds most probable under `model`: every step extends each beam by every token and keeps the
    `width` highest total log-probabilities (no length penalty: all continuations have one
    length). Width 1 is greedy decoding. Prompt and continuation must fit in ctx, so that the KV
    cache, reordered with the beams, serves every step. Returns ids (rows, prompt + chars) on the
    CPU; `chunk` prompts are searched at a time."""
    check_positive_int("width", width)
    check_positive_int("chars", chars)
    check_positive_int("chunk", chunk)
    prompts = check_ids(model, prompts, "prompts")
    if prompts.shape[1] + chars > model.config.ctx:
        raise ValueError(f"prompt + chars must fit in ctx={model.config.ctx}, got {prompts.shape[1]} + {chars}")
    with eval_mode(model):
        return torch.cat([_beam(model, rows, chars, width) for rows in prompts.split(chunk)]).cpu()


def _beam(model, prompts, chars, width):
    B, V = prompts.shape[0], model.config.vocab_size
    idx = prompts[:, None].expand(-1, width, -1).reshape(B * width, -1)  # every beam starts as the prompt
    scores = torch.full((B, width), float("-inf"), dtype=torch.float64, device=idx.device)
    scores[:, 0] = 0.0  # one live beam at first, so the copies do not crowd each other out
    cache = KVCache(model.config.ctx)
    logits = model(idx, cache=cache)[:, -1]
    offsets = torch.arange(B, device=idx.device)[:, None] * width
    for step in range(chars):
        total = scores[..., None] + logits.double().log_softmax(-1).view(B, width, V)  # float64: exact order
        scores, flat = total.view(B, -1).topk(width, dim=-1)
        order, token = (flat // V + offsets).view(-1), (flat % V).view(-1, 1)
        idx = torch.cat([idx[order], token], 1)
        moved = (order != torch.arange(len(order), device=order.device)).nonzero()[:, 0]
        if len(moved):  # a beam whose parent sat in another row takes the parent's keys and values
            source, L = order[moved], len(cache)
            for buffers in (cache.keys, cache.values):
                for kv in buffers.values():
                    kv[moved, :, :L] = kv[source, :, :L]
        if step + 1 < chars:
            logits = model(token, cache=cache)[:, -1]
    best = scores.argmax(-1) + offsets[:, 0]
    return idx[best]


@torch.no_grad()
def repetition_feedback(model, phrases: torch.Tensor, repeats: int, control: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """How likely the model finds a phrase after copies of it: `phrases` (rows, length) are token
    ids, each repeated `repeats` times back to back in one context; returns (rows, repeats) of
    the mean probability per token of copy r given the copies before it (each copy's first
    token left out, as copy 1's has nothing before it). With `control` (rows, length), also the
    mean probability per token of that other phrase written after r copies of the first,
    r = 0 … repeats − 1: a rise that is about *this* phrase leaves an unrelated phrase behind.
    Probabilities on the CPU."""
    check_positive_int("repeats", repeats)
    phrases = check_ids(model, phrases, "phrases")
    L = phrases.shape[1]
    if repeats * L + 1 > model.config.ctx or L < 2:
        raise ValueError(f"phrases must be 2 to {(model.config.ctx - 1) // repeats} tokens long for {repeats} "
                         f"repeats in ctx={model.config.ctx}, got {L}")
    with eval_mode(model):
        probs = _next_probs(model, phrases.repeat(1, repeats))  # (rows, repeats·L − 1): each token given all before it
        probs = torch.cat([probs, probs[:, :1]], 1).view(len(phrases), repeats, L)[..., : L - 1]
        copies = probs.mean(-1)  # every copy's tokens after its first, as the first copy has no token before it
        if control is None:
            return copies.cpu(), None
        control = check_ids(model, control, "control")
        if control.shape != phrases.shape:
            raise ValueError(f"control must have the phrases' shape {tuple(phrases.shape)}, got {tuple(control.shape)}")
        after = []
        for r in range(repeats):
            p = _next_probs(model, torch.cat([phrases.repeat(1, r), control], 1))
            after.append(p[:, -(L - 1) :].mean(1))  # the control's tokens after its first
        return copies.cpu(), torch.stack(after, 1).cpu()


def _next_probs(model, seq):
    """The probability the model gives each token of `seq` after the ones before it: (rows, time − 1)."""
    return model(seq[:, :-1]).float().softmax(-1).gather(-1, seq[:, 1:, None])[..., 0]


def over_units(values, unit: str = "phrases", resamples: int = 2000, seed: int = 0,
               confidence: float = 0.95) -> claims.Interval:
    """The mean of per-unit values (one per phrase, say) and its percentile bootstrap interval over
    the units, as a `lmlab.claims.Interval`."""
    x = np.asarray(values, dtype=float)
    mean, low, high = bootstrap_interval(x, confidence, resamples, seed)
    return claims.resampled(mean, low, high, len(x), resamples, unit, "bootstrap", confidence)


def feedback_summary(copies: torch.Tensor, after: torch.Tensor | None = None, resamples: int = 2000,
                     seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame | None, dict]:
    """`repetition_feedback`'s result read out: for the copies (and the control), a table of every
    copy's mean over the phrases with its bootstrap interval (columns mean, lo, hi; index r = 1 …),
    and the changes the chapter reads, each a `claims.Interval` over the phrases: "copy 2 − copy 1",
    "last − copy 2" and, with a control, "control after the copies − alone". One `seed` draws the
    same resamples of the phrases for every interval."""
    def per_copy(values):
        rows = [over_units(values[:, r].numpy(), "phrases", resamples, seed) for r in range(values.shape[1])]
        return pd.DataFrame([(i.estimate, i.low, i.high) for i in rows], columns=["mean", "lo", "hi"],
                            index=range(1, values.shape[1] + 1))

    if copies.ndim != 2 or copies.shape[1] < 2:
        raise ValueError(f"copies must be (phrases, repeats ≥ 2), got shape {tuple(copies.shape)}")
    rises = {"copy 2 − copy 1": over_units((copies[:, 1] - copies[:, 0]).numpy(), "phrases", resamples, seed),
             "last − copy 2": over_units((copies[:, -1] - copies[:, 1]).numpy(), "phrases", resamples, seed)}
    if after is not None:
        rises["control after the copies − alone"] = over_units((after[:, -1] - after[:, 0]).numpy(), "phrases",
                                                               resamples, seed)
    return per_copy(copies), None if after is None else per_copy(after), rises
