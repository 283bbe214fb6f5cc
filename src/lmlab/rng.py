"""Seeded randomness that leaves the caller's random state alone.

Dropout masks are drawn from torch's global generator. To make a measurement with
dropout on repeatable without disturbing whatever the reader's notebook does with
that generator, the block runs on a forked copy, seeded.
"""

from contextlib import contextmanager

import torch

from lmlab.checks import check_int
from lmlab.device import rng_devices


@contextmanager
def seeded(seed: int, device: torch.device | str = "cpu"):
    """Torch's global RNG (and `device`'s, on a GPU) seeded with `seed` for the block, then put back
    as it was: the draws inside (e.g. dropout's masks) repeat, and the caller's stream is untouched."""
    check_int("seed", seed)
    with torch.random.fork_rng(devices=rng_devices(device)):
        torch.manual_seed(seed)
        yield
