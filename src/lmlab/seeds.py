"""Fresh seeds for the replication build: one setting moves every seed the book uses.

A finding must survive fresh seeds, not only the ones it was first seen at. With
`LMLAB_SEED_OFFSET=K` (an integer ≥ 0; 0 or unset is the book as published), every
seed a chapter takes — the budget's seeds, which set initialisation, data order and
dropout masks, the evaluation windows, the sampling draws, the choice of prompts and
the resamples of every interval — is moved by K through `fresh`. Pick K above every
seed the book uses (they are below 100; `make book-replication` uses 1000) and the
book is rebuilt on runs and draws it has never seen. The run cache keeps such runs
in a folder of their own (`lmlab.cache.default_root`), so the two books never mix.
"""

import os
from dataclasses import fields, is_dataclass, replace

from lmlab.checks import check_int

ENV = "LMLAB_SEED_OFFSET"
SEED_FIELDS = ("seed", "seeds", "coord_seeds", "eval_seeds", "tune_seeds", "confirm_seeds")  # seeds, not counts


def seed_offset() -> int:
    """`LMLAB_SEED_OFFSET` as an integer ≥ 0 (0 when unset)."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return 0
    try:
        offset = int(raw)
    except ValueError:
        raise ValueError(f"{ENV} must be an integer ≥ 0, got {raw!r}") from None
    check_int(ENV, offset)
    return offset


def fresh(seed: int) -> int:
    """`seed` moved by the replication offset: itself in the published book."""
    check_int("seed", seed)
    return seed + seed_offset()


def fresh_all(seeds) -> tuple[int, ...]:
    """Every seed of `seeds` moved by the replication offset."""
    return tuple(fresh(s) for s in seeds)


def with_fresh_seeds(sizes):
    """A (nested) dataclass of sizes, such as a `lmlab.budget.Budget`, with every field named in
    `SEED_FIELDS` moved by the replication offset: `sizes` itself in the published book."""
    if not seed_offset():
        return sizes
    changes = {}
    for f in fields(sizes):
        value = getattr(sizes, f.name)
        if is_dataclass(value):
            changes[f.name] = with_fresh_seeds(value)
        elif f.name in SEED_FIELDS and value is not None:
            changes[f.name] = fresh_all(value) if isinstance(value, tuple) else fresh(value)
    return replace(sizes, **changes)
