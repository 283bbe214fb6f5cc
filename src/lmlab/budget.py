"""Size presets, so one notebook runs as a one-minute test, a CPU book build, or a GPU lesson.

`budget()` reads `LMLAB_BUDGET` (smoke | book | gpu); unset means `gpu` when CUDA
is present and `book` otherwise. Notebooks take every size from here, never
from literals, and each chapter owns one section.
"""

import os
from dataclasses import dataclass

import torch

from lmlab.checks import check_choice


@dataclass(frozen=True)
class LabSizes:
    """Chapter 1: one model trained in front of the reader, and a width sweep."""

    ctx: int
    batch_size: int
    depth: int
    heads: int
    width: int  # the chapter's main model
    lr: float
    steps: int
    eval_every: int
    eval_batches: int
    widths: tuple[int, ...]  # the static twin's grid, which contains `width`
    live_steps: int  # what the live width slider trains, a few seconds on a CPU
    sample_chars: int


@dataclass(frozen=True)
class Budget:
    name: str
    lab: LabSizes


BUDGETS = {
    "smoke": Budget("smoke", LabSizes(
        ctx=32, batch_size=8, depth=1, heads=2, width=32, lr=3e-3, steps=30, eval_every=10,
        eval_batches=2, widths=(16, 32), live_steps=10, sample_chars=80)),
    "book": Budget("book", LabSizes(
        ctx=64, batch_size=32, depth=2, heads=4, width=256, lr=1e-3, steps=400, eval_every=50,
        eval_batches=8, widths=(32, 64, 128, 256), live_steps=100, sample_chars=400)),
    "gpu": Budget("gpu", LabSizes(
        ctx=128, batch_size=64, depth=4, heads=8, width=256, lr=6e-4, steps=2000, eval_every=100,
        eval_batches=20, widths=(64, 128, 256, 512, 1024), live_steps=300, sample_chars=600)),
}


def building_book() -> bool:
    """True while `make book` executes the notebooks (it sets `LMLAB_BOOK_BUILD=1`):
    no progress bars, and live panels show their static twin instead of dead widgets."""
    return os.environ.get("LMLAB_BOOK_BUILD") == "1"


def budget(name: str | None = None) -> Budget:
    """The preset named by `name`, else by `LMLAB_BUDGET`, else by the hardware."""
    name = name or os.environ.get("LMLAB_BUDGET") or ("gpu" if torch.cuda.is_available() else "book")
    check_choice("budget (LMLAB_BUDGET)", name, tuple(BUDGETS))
    return BUDGETS[name]
