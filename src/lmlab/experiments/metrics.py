"""How varied, how probable and how real generated text is, with intervals over the prompts.

A character model's text is judged on words and on character n-grams, as Holtzman et
al. (2020) judge GPT-2's on tokens: diversity by distinct-n (Li et al. 2016),
degeneration by how much a text's end repeats itself (seq-rep-n, Welleck et al. 2020, on
characters), and *probability* by the NLL
of the texts under a model (the model itself, or another one as a judge). Probability
is not quality, which is Holtzman et al.'s point, so two measures need no model at all:
the share of words that are real words (they occur in the training plays), and the
Jensen–Shannon divergence between the texts' character 4-grams and those of real
held-out text (a MAUVE-style distance between distributions of text).

Every measure is kept per text and pooled with weights over the texts (`pooled`): all weights 1
give the table, and random halves of the prompts its replicates (the delete-half jackknife), the
same halves for every setting, so that two settings' replicates are paired.
"""

import re
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from lmlab import claims
from lmlab.checks import check_positive_int
from lmlab.likelihood import row_nll
from lmlab.model import GPT, model_device
from lmlab.repetition import repeated_share
from lmlab.rng import seeded
from lmlab.sampling import generate
from lmlab.stats import centered_interval, distinct_share, half_samples, js_divergence

WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")  # lower-cased letters, apostrophes inside a word kept
DISTINCT = {"distinct-2 words": (2, "word"), "distinct-4 chars": (4, "char"), "distinct-8 chars": (8, "char")}
DIVERGENCE_N = 4  # the character n-grams the distance to real text compares


def words(text: str) -> list[str]:
    """The lower-cased words of a text."""
    return WORD.findall(text.lower())


def ngrams(text: str, n: int, unit: str = "char") -> list[tuple]:
    """The overlapping n-grams of one text, of characters or of (lower-cased) words."""
    check_positive_int("n", n)
    if unit not in ("char", "word"):
        raise ValueError(f"unit must be 'char' or 'word', got {unit!r}")
    items = text if unit == "char" else words(text)
    return [tuple(items[i : i + n]) for i in range(len(items) - n + 1)]


def distinct_n(texts: list[str], n: int, unit: str = "char") -> float:
    """Distinct n-grams over all n-grams, pooled over `texts` (Li et al. 2016): 1 when nothing
    repeats. Compare it between sets of texts of equal number and length only."""
    grams = [g for text in texts for g in ngrams(text, n, unit)]
    if not grams:
        raise ValueError(f"texts must hold at least one {unit} {n}-gram, got {len(texts)} texts without one")
    return len(set(grams)) / len(grams)


def copy_rate(texts: list[str], source: str, n: int = 12) -> float:
    """The share of the texts' character n-grams that occur verbatim in `source` (e.g. a model's
    training text): how much of what a model writes it recites. Real unseen text sets the level
    that chance and common phrases reach."""
    hits, total = _copied(texts, source, n)
    if not total.sum():
        raise ValueError(f"texts must hold at least one character {n}-gram, got {len(texts)} texts without one")
    return hits.sum() / total.sum()


def real_word_rate(texts: list[str], vocabulary) -> float:
    """The share of the texts' words that are in `vocabulary` (e.g. every word of the training
    plays): a misspelt or invented word is not. A quality measure that needs no model."""
    hits, total = _real(texts, vocabulary)
    if not total.sum():
        raise ValueError(f"texts must hold at least one word, got {len(texts)} texts without one")
    return hits.sum() / total.sum()


def _copied(texts, source, n):
    grams = [["".join(g) for g in ngrams(t, n)] for t in texts]
    return np.array([sum(g in source for g in gs) for gs in grams], float), np.array([len(g) for g in grams], float)


def _real(texts, vocabulary):
    ws = [words(t) for t in texts]
    return np.array([sum(w in vocabulary for w in x) for x in ws], float), np.array([len(x) for x in ws], float)


def sample_nll(model: GPT, ids: torch.Tensor, start: int) -> float:
    """Mean NLL in nats per token of `ids[:, start:]` under `model` (`row_nll`, pooled)."""
    return row_nll(model, ids, start).mean().item()


@dataclass
class Measured:
    """One set of texts, one per prompt, measured text by text: `pooled` turns it into a table
    row for any weights over the prompts. `ratios` maps a measure to (hits, totals) per text,
    `grams` a distinct-n or the divergence's n-grams to per-text counts over a shared index."""

    samples: list[str]
    nll: np.ndarray
    repeats: np.ndarray
    ratios: dict
    grams: dict


def measure(samples: list[str], nll, window: int, index: dict, vocabulary=None, source: str | None = None,
            copy_chars: int = 12) -> Measured:
    """Measure texts one by one. `index` maps n-grams to columns and is shared by every set of
    one table; `vocabulary` adds "real words", `source` adds "copied" (`copy_rate` of
    `copy_chars`)."""
    ratios = {}
    if vocabulary is not None:
        ratios["real words"] = _real(samples, vocabulary)
    if source is not None:
        ratios["copied"] = _copied(samples, source, copy_chars)
    grams = {name: _gram_matrix(samples, n, unit, index) for name, (n, unit) in DISTINCT.items()}
    grams["divergence"] = _gram_matrix(samples, DIVERGENCE_N, "char", index)
    repeats = np.array([repeated_share(s, window) for s in samples])
    return Measured(list(samples), np.asarray(nll, float), repeats, ratios, grams)


def _gram_matrix(texts, n, unit, index) -> sp.csr_matrix:
    rows, cols = [], []
    for r, text in enumerate(texts):
        for g in ngrams(text, n, unit):
            rows.append(r)
            cols.append(index.setdefault((unit, g), len(index)))
    return sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(texts), 1 << 40))  # columns: never indexed

def pooled(m: Measured, weights: np.ndarray | None = None, reference: Measured | None = None,
           chunk: int = 200) -> pd.DataFrame:
    """Every measure of `m`, pooled with `weights` (resamples, texts) over its texts: one row per
    resample (weights None: one row, every text once). With a `reference` set of real text,
    "divergence" is the Jensen–Shannon divergence in bits between the two sets' character
    4-gram distributions (the reference is not resampled)."""
    n = len(m.samples)
    w = np.ones((1, n)) if weights is None else np.asarray(weights, float)
    out = {"repetition": w @ m.repeats / w.sum(1), "NLL": w @ m.nll / w.sum(1)}
    for name, (hits, total) in m.ratios.items():
        with np.errstate(invalid="ignore"):
            out[name] = (w @ hits) / (w @ total)
    for name, counts in m.grams.items():
        if name != "divergence":
            out[name] = distinct_share(counts, w, chunk)
        elif reference is not None:
            out[name] = js_divergence(counts, reference.grams[name], w, chunk)
    return pd.DataFrame(out)


def setting_seed(seed: int, name: str) -> int:
    """The sampling seed of setting `name` in a table drawn from `seed`: each setting its own
    stream, so neighbouring settings are independent draws, and a setting's texts do not change
    when others are added."""
    return zlib.crc32(f"{seed}:{name}".encode()) & 0x7FFFFFFF


def decode_settings(model: GPT, prompts: torch.Tensor, chars: int, settings: dict, seed: int = 0) -> dict:
    """Continue every prompt by `chars` tokens under every setting: `settings` maps a name to
    `generate` keyword arguments (temperature, top_k, dropout, …) or to a function
    `(prompts, chars) -> ids` (a decoder `generate` does not have, such as beam search). Each
    setting draws from its own seed (`setting_seed`), dropout masks included. Ids on the CPU."""
    dev, outputs = model_device(model), {}
    for name, how in settings.items():
        s = setting_seed(seed, name)
        g = torch.Generator().manual_seed(s)  # on the CPU: the same texts whichever device computes
        with seeded(s, dev):  # dropout's masks, when a setting leaves dropout on
            ids = how(prompts, chars) if callable(how) else generate(model, prompts, chars, generator=g, **how)
        outputs[name] = ids.cpu()
    return outputs


def measure_outputs(tokenizer, outputs: dict, prompt_chars: int, scorer: GPT, window: int = 100, vocabulary=None,
                    source: str | None = None, copy_chars: int = 12, reference: torch.Tensor | None = None
                    ) -> tuple[dict, Measured | None]:
    """Measure each set of ids in `outputs` (name -> rows of prompt + continuation); NLL under
    `scorer`. `reference` (rows of real text, prompt + continuation, other windows than the
    prompts') is measured too, as the set the divergence compares with."""
    index, measured = {}, {}
    for name, ids in {**outputs, **({"reference": reference} if reference is not None else {})}.items():
        samples = [tokenizer.decode(row[prompt_chars:]) for row in ids]
        measured[name] = measure(samples, row_nll(scorer, ids, prompt_chars).numpy(), window, index, vocabulary,
                                 source, copy_chars)
    return measured, measured.pop("reference", None)


def table_of(measured: dict, reference: Measured | None = None, settings: dict | None = None) -> pd.DataFrame:
    """One row per set of texts, every measure pooled over all of its texts, and its first sample."""
    rows = []
    for name, m in measured.items():
        how = (settings or {}).get(name, {})
        knobs = how if isinstance(how, dict) else {}
        rows.append({"setting": name, **knobs, **pooled(m, reference=reference).iloc[0].to_dict(),
                     "sample": m.samples[0]})
    return pd.DataFrame(rows).set_index("setting")


def bootstrap(measured: dict, reference: Measured | None = None, resamples: int = 1000, seed: int = 0) -> dict:
    """Replicates of every measure of every set over the same `resamples` random halves of the
    prompts (`half_samples`: pooled measures such as distinct-n must not count a prompt twice):
    name -> DataFrame (resamples × measures). Subtract two sets' replicates for the replicates of
    their difference; `with_intervals` and `paired_difference` centre them on the full sample."""
    n = len(next(iter(measured.values())).samples)
    w = half_samples(n, resamples, seed)
    return {name: pooled(m, w, reference) for name, m in measured.items()}


def with_intervals(table: pd.DataFrame, replicates: dict, columns, confidence: float = 0.95) -> pd.DataFrame:
    """`table`'s `columns` with their intervals beside them, as "<column> lo" and "… hi"."""
    out = table[list(columns)].copy()
    for col in columns:
        bounds = [centered_interval(table.loc[name, col], replicates[name][col], confidence) for name in table.index]
        out[f"{col} lo"], out[f"{col} hi"] = zip(*bounds, strict=True)
    return out


def decoding_table(model: GPT, tokenizer, texts: torch.Tensor, prompt_chars: int, settings: dict,
                   seed: int = 0, window: int = 100, scorer: GPT | None = None, source: str | None = None,
                   copy_chars: int = 12, vocabulary=None, reference: torch.Tensor | None = None,
                   resamples: int = 0) -> pd.DataFrame | tuple[pd.DataFrame, dict]:
    """Generate a continuation of every prompt under every decoding setting and measure it.

    `texts` (rows, time) are windows of real held-out text: the first `prompt_chars` are the
    prompt, the rest is the human continuation, measured as the row "human". "NLL" is under
    `scorer` (default: the model itself, Holtzman et al.'s measure of probability). With
    `resamples`, also the bootstrap replicates over the prompts (`bootstrap`).
    """
    if not 1 <= prompt_chars < texts.shape[1]:
        raise ValueError(f"prompt_chars must be in [1, {texts.shape[1] - 1}], got {prompt_chars}")
    outputs = {"human": texts.cpu(), **decode_settings(model, texts[:, :prompt_chars], texts.shape[1] - prompt_chars,
                                                        settings, seed)}
    measured, ref = measure_outputs(tokenizer, outputs, prompt_chars, scorer or model, window, vocabulary, source,
                                    copy_chars, reference)
    table = table_of(measured, ref, settings)
    return (table, bootstrap(measured, ref, resamples, seed)) if resamples else table


def paired_difference(table: pd.DataFrame, replicates: dict, a: str, b: str, column: str,
                      confidence: float = 0.95) -> tuple[float, float, float]:
    """(difference, low, high): set a's measure minus set b's, and its interval from the paired
    replicates of that difference (the same halves of the prompts for both)."""
    point = float(table.loc[a, column] - table.loc[b, column])
    return (point, *centered_interval(point, replicates[a][column] - replicates[b][column], confidence))


def paired_claim(table: pd.DataFrame, replicates: dict, a: str, b: str, column: str, prompts: int,
                 confidence: float = 0.95) -> claims.Interval:
    """`paired_difference` (a − b over the table's `prompts` prompts) as a `lmlab.claims.Interval`."""
    point, low, high = paired_difference(table, replicates, a, b, column, confidence)
    n = int(np.isfinite(replicates[a][column] - replicates[b][column]).sum())
    return claims.resampled(point, low, high, prompts, n, "prompts", "half-sample", confidence)


def row_claim(table: pd.DataFrame, replicates: dict, name: str, column: str, prompts: int,
              confidence: float = 0.95) -> claims.Interval:
    """One setting's measure (row `name`) and its half-sample interval, as a `lmlab.claims.Interval`."""
    point = float(table.loc[name, column])
    low, high = centered_interval(point, replicates[name][column], confidence)
    n = int(np.isfinite(replicates[name][column]).sum())
    return claims.resampled(point, low, high, prompts, n, "prompts", "half-sample", confidence)


def bracket(table: pd.DataFrame, settings, column: str, target: str = "human") -> tuple[str, str] | None:
    """The two neighbouring settings of `settings` (one knob's, in the knob's order) whose `column`
    lies on either side of row `target`'s, or at it: where along the knob a setting would match
    the target in that column. None when the knob's whole range misses the target."""
    settings = list(settings)
    y, values = table.loc[target, column], [table.loc[s, column] for s in settings]
    return next(((a, b) for a, b, va, vb in zip(settings, settings[1:], values, values[1:], strict=False)
                 if min(va, vb) <= y <= max(va, vb)), None)
