"""How much a text repeats itself, measured so that a loop with small breaks counts.

Maximisation (greedy decoding, beam search) writes a phrase that keeps coming back, often with
small breaks: "the with the with and the with". An exact-loop detector (`loop_period`) scores
that text 0; `repeated_share` (seq-rep-n of Welleck et al. 2020, on characters) sees it, and
`repetition_examples` checks both on texts whose answer is known.
"""

import numpy as np
import pandas as pd

from lmlab.checks import check_positive_int

REPEAT_N = 8  # the character n-grams the repetition measure counts: real text repeats almost none


def loop_period(text: str, window: int = 64) -> int | None:
    """The length of the phrase that the last `window` characters repeat back to back, exactly, at
    least twice (so at most window / 2), or None. Blind to a loop with small breaks in it: what
    `repeated_share` measures instead."""
    check_positive_int("window", window)
    if len(text) < window:
        raise ValueError(f"text must be at least window={window} characters long, got {len(text)}")
    tail = text[-window:]
    return next((period for period in range(1, window // 2 + 1) if tail[period:] == tail[:-period]), None)


def repeated_share(text: str, window: int = 100, n: int = REPEAT_N) -> float:
    """How much the last `window` characters repeat themselves: the share of their character
    n-grams that repeat one already written in that window, 1 − distinct / all (seq-rep-n,
    Welleck et al. 2020, on characters). An exact loop of period p scores 1 − p / (window − n + 1);
    a phrase that comes back with small breaks scores nearly as much, where an exact-loop detector
    (`loop_period`) scores nothing; real text scores about 0 (`repetition_examples`)."""
    check_positive_int("window", window)
    check_positive_int("n", n)
    if n > window:
        raise ValueError(f"n must be at most window={window}, got {n}")
    if len(text) < window:
        raise ValueError(f"text must be at least window={window} characters long, got {len(text)}")
    tail = text[-window:]
    grams = [tail[i : i + n] for i in range(window - n + 1)]
    return 1 - len(set(grams)) / len(grams)


def near_loop(phrase: str, length: int, every: int, seed: int = 0) -> str:
    """`phrase` repeated back to back to `length` characters, one character of every `every`-th
    copy replaced by a random letter: the loop with small breaks that maximisation writes."""
    check_positive_int("length", length)
    check_positive_int("every", every)
    if not phrase:
        raise ValueError("phrase must hold at least one character, got ''")
    rng = np.random.default_rng(seed)
    copies = []
    for i in range(-(-length // len(phrase))):
        copy = list(phrase)
        if i % every == every - 1:
            copy[rng.integers(len(copy))] = chr(ord("a") + rng.integers(26))
        copies.append("".join(copy))
    return "".join(copies)[:length]


def repetition_examples(real: str, window: int = 100, n: int = REPEAT_N, windows: int = 1000,
                        seed: int = 0) -> pd.DataFrame:
    """The repetition measure checked on texts whose answer is known: exact loops, the same
    loops with a character changed in every second or every copy, and `windows` windows of
    real text (`real`, e.g. held-out plays): their `repeated_share` beside the share an
    exact-loop detector (`loop_period`) counts. Loops are left out where two copies do not fit the
    window."""
    if len(real) < window + windows:
        raise ValueError(f"real must be at least window + windows = {window + windows} characters, got {len(real)}")
    phrases = {"a short phrase": "the with ", "a line": "and the king shall be the man ",
               "a long line": "What, shall the king be so the sweet of my lord? "}
    texts = {}
    for name, phrase in ((k, v) for k, v in phrases.items() if len(v) <= window // 2):  # two copies fit
        texts[f"{name} ({len(phrase)} characters), exact"] = [phrase * (window // len(phrase) + 2)]
        for every, how in ((2, "every second copy"), (1, "every copy")):
            texts[f"{name}, one character off in {how}"] = [near_loop(phrase, window + 50, every, seed + i)
                                                               for i in range(20)]
    starts = np.random.default_rng(seed).integers(0, len(real) - window, windows)
    texts["real text"] = [real[s : s + window] for s in starts]
    rows = {}
    for name, group in texts.items():
        shares = np.array([repeated_share(t, window, n) for t in group])
        rows[name] = {"texts": len(group), "repeated share": shares.mean(), "highest": shares.max(),
                      "exact-loop detector": np.mean([loop_period(t, window) is not None for t in group])}
    return pd.DataFrame(rows).T.astype({"texts": int})
