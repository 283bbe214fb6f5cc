"""How varied and how probable generated text is: distinct-n, repetition and the model's own NLL.

A character model's text is judged on words and on character n-grams, as
Holtzman et al. (2020) judge GPT-2's on tokens: diversity by distinct-n (Li et
al. 2016), degeneration by the share of texts that end in a loop, and quality
by the model's NLL of its own samples, set beside the same numbers for real
held-out text, the reference every decoder should resemble.
"""

import re

import pandas as pd
import torch
import torch.nn.functional as F

from lmlab.checks import check_positive_int
from lmlab.model import GPT, eval_mode, model_device
from lmlab.rng import seeded
from lmlab.sampling import check_ids, generate

WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")  # lower-cased letters, apostrophes inside a word kept


def ngrams(text: str, n: int, unit: str = "char") -> list[tuple]:
    """The overlapping n-grams of one text, of characters or of (lower-cased) words."""
    check_positive_int("n", n)
    if unit == "char":
        items = text
    elif unit == "word":
        items = WORD.findall(text.lower())
    else:
        raise ValueError(f"unit must be 'char' or 'word', got {unit!r}")
    return [tuple(items[i : i + n]) for i in range(len(items) - n + 1)]


def distinct_n(texts: list[str], n: int, unit: str = "char") -> float:
    """Distinct n-grams over all n-grams, pooled over `texts` (Li et al. 2016): 1 when nothing
    repeats. Compare it between sets of texts of equal number and length only."""
    grams = [g for text in texts for g in ngrams(text, n, unit)]
    if not grams:
        raise ValueError(f"texts must hold at least one {unit} {n}-gram, got {len(texts)} texts without one")
    return len(set(grams)) / len(grams)


def loop_period(text: str, window: int = 64) -> int | None:
    """The length of the phrase that the last `window` characters repeat back to back, at least
    twice (so at most window / 2), or None: the degenerate loop greedy decoding falls into."""
    check_positive_int("window", window)
    if len(text) < window:
        raise ValueError(f"text must be at least window={window} characters long, got {len(text)}")
    tail = text[-window:]
    return next((period for period in range(1, window // 2 + 1) if tail[period:] == tail[:-period]), None)


def ends_in_loop(text: str, window: int = 64) -> bool:
    """True when the text ends in a loop (`loop_period`)."""
    return loop_period(text, window) is not None


def repetition_rate(texts: list[str], window: int = 64) -> float:
    """The share of `texts` that end in a loop (`ends_in_loop`)."""
    if not texts:
        raise ValueError("texts must hold at least one text, got none")
    return sum(ends_in_loop(t, window) for t in texts) / len(texts)


def copy_rate(texts: list[str], source: str, n: int = 12) -> float:
    """The share of the texts' character n-grams that occur verbatim in `source` (e.g. a model's
    training text): how much of what a model writes it recites. Real unseen text sets the level
    that chance and common phrases reach."""
    grams = [g for text in texts for g in ngrams(text, n)]
    if not grams:
        raise ValueError(f"texts must hold at least one character {n}-gram, got {len(texts)} texts without one")
    return sum("".join(g) in source for g in grams) / len(grams)


@torch.no_grad()
def sample_nll(model: GPT, ids: torch.Tensor, start: int) -> float:
    """Mean NLL in nats per token of `ids[:, start:]` under `model` at temperature 1, each
    token conditioned on everything before it (so rows must fit in the model's ctx)."""
    T = ids.shape[1]
    if not 1 <= start < T:
        raise ValueError(f"start must be in [1, {T - 1}] for rows of {T} tokens, got {start}")
    if T > model.config.ctx:
        raise ValueError(f"rows must be at most ctx={model.config.ctx} tokens long, got {T}")
    ids = check_ids(model, ids, "ids")
    with eval_mode(model):
        logits = model(ids[:, :-1]).float()
    return F.cross_entropy(logits[:, start - 1 :].flatten(0, 1), ids[:, start:].flatten()).item()


def decoding_table(model: GPT, tokenizer, texts: torch.Tensor, prompt_chars: int, settings: dict,
                   seed: int = 0, window: int = 64, scorer: GPT | None = None, source: str | None = None,
                   copy_chars: int = 12) -> pd.DataFrame:
    """Generate a continuation of every prompt under every decoding setting and measure it.

    `texts` (rows, time) are windows of real held-out text: the first `prompt_chars`
    are the prompt, the rest is the human continuation, measured as the row "human".
    `settings` maps a name to `generate` keyword arguments (temperature, top_k, dropout, …);
    each setting draws from `seed`, dropout masks included. "NLL" is under `scorer`
    (default: the model itself, Holtzman et al.'s measure; another model judges texts of
    models that differ). With a `source` text, "copied" is `copy_rate` of `copy_chars`.
    """
    if not 1 <= prompt_chars < texts.shape[1]:
        raise ValueError(f"prompt_chars must be in [1, {texts.shape[1] - 1}], got {prompt_chars}")
    chars, scorer = texts.shape[1] - prompt_chars, scorer or model
    dev = model_device(model)
    outputs = {"human": texts.cpu()}
    for name, filters in settings.items():
        g = torch.Generator().manual_seed(seed)  # on the CPU: the same texts whichever device computes
        with seeded(seed, dev):  # dropout's masks, when a setting leaves dropout on
            outputs[name] = generate(model, texts[:, :prompt_chars], chars, generator=g, **filters).cpu()
    rows = []
    for name, ids in outputs.items():
        samples = [tokenizer.decode(row[prompt_chars:]) for row in ids]
        copied = {"copied": copy_rate(samples, source, copy_chars)} if source is not None else {}
        rows.append({"setting": name, **settings.get(name, {}),
                     "distinct-1 words": _distinct(samples, 1, "word"),
                     "distinct-2 words": _distinct(samples, 2, "word"),
                     "distinct-4 chars": _distinct(samples, 4),
                     "distinct-8 chars": _distinct(samples, 8),
                     "repetition": repetition_rate(samples, window),
                     "NLL": sample_nll(scorer, ids, prompt_chars),
                     **copied, "sample": samples[0]})
    return pd.DataFrame(rows).set_index("setting")


def _distinct(texts: list[str], n: int, unit: str = "char") -> float:
    """`distinct_n`, or NaN where the texts hold no n-gram at all (a barely trained model that
    writes only spaces has no words to count)."""
    return distinct_n(texts, n, unit) if any(ngrams(t, n, unit) for t in texts) else float("nan")
