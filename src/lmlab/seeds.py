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

from lmlab.checks import check_int

ENV = "LMLAB_SEED_OFFSET"


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
