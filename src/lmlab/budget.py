"""Size presets, so one notebook runs as a one-minute test, a CPU book build, or a GPU lesson.

`budget()` reads `LMLAB_BUDGET` (smoke | book | gpu); unset means `gpu` when CUDA
is present and `book` otherwise. Notebooks take every size from here, never
from literals. Each chapter owns one block below: its sizes' fields, then their value at
each budget.
"""

import os
from dataclasses import dataclass

import torch

from lmlab.checks import check_choice
from lmlab.corpus import ALL
from lmlab.seeds import with_fresh_seeds


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
    seeds: tuple[int, ...]  # the main model's seed first; the narrowest and widest widths run at every one


LAB = {
    "smoke": LabSizes(ctx=32, batch_size=8, depth=1, heads=2, width=32, lr=3e-3, steps=30, eval_every=10,
        eval_batches=2, widths=(16, 32), live_steps=10, sample_chars=80, seeds=(0, 1)),
    "book": LabSizes(ctx=64, batch_size=32, depth=2, heads=4, width=256, lr=1e-3, steps=400, eval_every=50,
        eval_batches=8, widths=(32, 64, 128, 256), live_steps=100, sample_chars=400, seeds=(0, 1, 2)),
    "gpu": LabSizes(ctx=128, batch_size=64, depth=4, heads=8, width=256, lr=6e-4, steps=2000, eval_every=100,
        eval_batches=20, widths=(64, 128, 256, 512), live_steps=300, sample_chars=600, seeds=(0, 1, 2)),
}


@dataclass(frozen=True)
class MupSizes:
    """Chapter 2: the coordinate check with its negative control, the proxy's tuning, the μTransfer
    LR sweep over seeds, the σ, α_out and α_attn sweeps across width, and the proxy → target comparison."""

    ctx: int
    batch_size: int
    depth: int
    heads: int  # at every width: d_head grows with width, so μP's attention rule matters
    coord_widths: tuple[int, ...]  # base width first; the check spans ≥ 16×
    coord_lr: float  # deliberately large
    coord_steps: int
    coord_seeds: tuple[int, ...]
    widths: tuple[int, ...]  # the LR sweep's widths, base (the proxy) first, the target last, ≥ 8× apart
    steps: int  # per run, constant LR
    eval_batches: int
    seeds: tuple[int, ...]  # the LR sweep's and the σ/α_out sweeps' seeds, ≥ 4: their t-intervals have seeds − 1 df
    eval_seeds: tuple[int, ...]  # fresh seeds for the proxy → target comparison: never a tuning seed
    tune_seeds: tuple[int, ...]  # the proxy's search runs at each (≥ 3 at `book`); the target's at the first only
    proxy_stds: tuple[float, ...]  # σ's grid, searched by μP at the proxy and by SP and μP at the target
    proxy_output_mults: tuple[float, ...]  # α_out's grid, likewise (one value: its optimum is unresolved here)
    proxy_attn_mults: tuple[float, ...]  # α_attn's grid, likewise: factors of 4, since its optimum moves with width
    start_log2_lrs: tuple[int, ...]  # where every LR search starts; it widens until its best is inside
    hp_widths: tuple[int, ...]  # where σ and α_out are swept one at a time around the proxy's optimum
    hp_stds: tuple[float, ...]
    hp_output_mults: tuple[float, ...]
    hp_attn_mults: tuple[float, ...]
    live_widths: tuple[int, ...]  # what the live coordinate check offers


MUP = {
    "smoke": MupSizes(ctx=16, batch_size=4, depth=1, heads=2, coord_widths=(16, 32, 64), coord_lr=2**-8,
        coord_steps=3, coord_seeds=(0,), widths=(16, 32), steps=10, eval_batches=1, seeds=(0, 1), eval_seeds=(1, 2),
        tune_seeds=(0, 3), proxy_stds=(0.05, 0.1), proxy_output_mults=(1.0,), proxy_attn_mults=(1.0, 2.0),
        start_log2_lrs=(-8, -7, -6), hp_widths=(16, 32), hp_stds=(0.05, 0.1, 0.2), hp_output_mults=(1.0, 2.0, 4.0),
        hp_attn_mults=(0.5, 1.0, 2.0), live_widths=(16, 32, 64)),
    "book": MupSizes(ctx=32, batch_size=16, depth=1, heads=4, coord_widths=(32, 64, 128, 256, 512), coord_lr=2**-8,
        coord_steps=5, coord_seeds=(0, 1, 2), widths=(32, 64, 128, 256), steps=120, eval_batches=8,
        seeds=(0, 1, 2, 3), eval_seeds=(1, 2, 3), tune_seeds=(0, 4, 5), proxy_stds=(0.05, 0.1, 0.2),
        proxy_output_mults=(1.0,), proxy_attn_mults=(0.25, 1.0, 4.0, 16.0, 64.0), start_log2_lrs=(-8, -7, -6),
        hp_widths=(32, 64, 128), hp_stds=(0.00625, 0.0125, 0.025, 0.05, 0.1, 0.2, 0.4),
        hp_output_mults=(0.5, 1.0, 2.0, 4.0), hp_attn_mults=(0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0),
        live_widths=(32, 64, 128, 256, 512)),
    "gpu": MupSizes(ctx=64, batch_size=32, depth=2, heads=4, coord_widths=(32, 64, 128, 256, 512, 1024, 2048),
        coord_lr=2**-8, coord_steps=5, coord_seeds=(0, 1, 2), widths=(32, 64, 128, 256, 512), steps=300,
        eval_batches=20, seeds=(0, 1, 2, 3), eval_seeds=(1, 2, 3, 4), tune_seeds=(0, 5, 6),
        proxy_stds=(0.05, 0.1, 0.2), proxy_output_mults=(1.0,), proxy_attn_mults=(0.25, 1.0, 4.0, 16.0, 64.0),
        start_log2_lrs=(-9, -8, -7), hp_widths=(32, 128, 512), hp_stds=(0.00625, 0.0125, 0.025, 0.05, 0.1, 0.2, 0.4),
        hp_output_mults=(0.5, 1.0, 2.0, 4.0), hp_attn_mults=(0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0),
        live_widths=(32, 64, 128, 256, 512, 1024, 2048)),
}


@dataclass(frozen=True)
class ScalingSizes:
    """Chapter 3: models of one shape at several depths, each trained for several step budgets
    (WSD runs sharing a stable phase) at several seeds, the largest held out of the fits and
    predicted, and a run on repeated data."""

    ctx: int
    batch_size: int
    d_head: int  # at every size, so heads = width / d_head grow with width and μP's attention rule is 1
    aspect: int  # width / depth, the fixed shape ratio: a multiple of d_head
    depths: tuple[int, ...]  # ≥ 6 sizes spanning ≥ 1.5 decades of N; the last is held out and predicted
    budgets: tuple[int, ...]  # step budgets of every size, ≥ 3, shortest first
    long_budgets: tuple[int, ...]  # longer budgets for the smallest sizes, cheap per step, so that the
    long_depths: int  # IsoFLOP profiles reach models trained past their compute optimum
    tune_depth: int  # the LR is tuned on this size, at its second-longest budget, and carried to the others by μP
    warmup_steps: int
    log2_lrs: tuple[int, ...]  # the LR grid of that tuning
    init_std: float
    seeds: tuple[int, ...]  # at every size: each sets the init, the data order and the dropout masks
    eval_batches: int
    isoflop_budgets: int  # how many IsoFLOP profiles to draw between the smallest and largest C
    n_boot: int  # bootstrap resamples (over sizes and seeds) of every fit: ≥ 1,000 to call an interval 95 %
    repeat_depth: int  # the repeated-data run's model
    repeat_chars: int  # its unique training characters
    live_steps: tuple[int, ...]  # the live panel's "train it" budgets, shortest first


SCALING = {
    "smoke": ScalingSizes(ctx=16, batch_size=4, d_head=8, aspect=8, depths=(1, 2, 3, 4),
        budgets=(4, 8, 16, 32, 64, 128), long_budgets=(256,), long_depths=1, tune_depth=2, warmup_steps=2,
        log2_lrs=(-7, -6), init_std=0.1, seeds=(0, 1), eval_batches=1, isoflop_budgets=3, n_boot=8,
        repeat_depth=1, repeat_chars=2000, live_steps=(8, 16)),
    "book": ScalingSizes(ctx=64, batch_size=32, d_head=4, aspect=4, depths=(1, 2, 3, 4, 6, 10),
        budgets=(16, 32, 64, 128, 256, 512), long_budgets=(1024, 2048), long_depths=2, tune_depth=3, warmup_steps=10,
        log2_lrs=(-7, -6, -5, -4, -3, -2), init_std=0.1, seeds=(0, 1, 2), eval_batches=8, isoflop_budgets=8,
        n_boot=1000, repeat_depth=2, repeat_chars=65_536, live_steps=(32, 64, 128, 256)),
    "gpu": ScalingSizes(ctx=128, batch_size=32, d_head=32, aspect=32, depths=(1, 2, 3, 4, 6, 8),
        budgets=(64, 128, 256, 512, 1024, 2048, 4096), long_budgets=(8192,), long_depths=2, tune_depth=3,
        warmup_steps=40, log2_lrs=(-9, -8, -7, -6, -5, -4), init_std=0.1, seeds=(0, 1, 2), eval_batches=20,
        isoflop_budgets=5, n_boot=1000, repeat_depth=3, repeat_chars=524_288, live_steps=(128, 256, 512, 1024)),
}


@dataclass(frozen=True)
class DropoutSizes:
    """Chapter 4: one model trained at several dropout rates on a small slice of the corpus
    (many epochs: it overfits) and on all of it (under one epoch: it underfits), at several seeds;
    the best rate chosen on one set of seeds and its gain measured on another (`mc_*`: chapter 6's)."""

    ctx: int
    batch_size: int
    depth: int
    heads: int
    width: int
    lr: float
    steps: int  # the same for both slices, cosine schedule
    warmup_steps: int
    eval_every: int
    eval_batches: int
    ps: tuple[float, ...]  # the dropout grid, 0 first
    small_chars: int  # the slice it overfits: training characters
    seeds: tuple[int, ...]  # every rate on both slices; the best rate is chosen on these (0 first)
    confirm_seeds: tuple[int, ...]  # fresh seeds of p = 0 and the chosen rate: the gain, unselected (10 at
    # `book`: with 5, about one fresh set in four would leave the gain's interval touching 0)
    masks: int  # the mechanics' check draws this many masks of one input
    mc_p: float  # MC dropout uses the small slice's runs at this rate (every seed), one of `ps`
    mc_passes: int
    mc_batches: int
    live_steps: int  # what the live panel trains, ≤ 30 s on 2 CPU cores at `book`
    live_chars: tuple[int | None, ...]  # the live data-size slider; ALL (None): every training character


DROPOUT = {
    "smoke": DropoutSizes(ctx=16, batch_size=4, depth=1, heads=2, width=16, lr=6e-3, steps=30, warmup_steps=2,
        eval_every=10, eval_batches=1, ps=(0.0, 0.1, 0.5), small_chars=2048, seeds=(0, 1), confirm_seeds=(2, 3),
        masks=10_000, mc_p=0.1, mc_passes=2, mc_batches=1, live_steps=10, live_chars=(1024, 2048, ALL)),
    "book": DropoutSizes(ctx=64, batch_size=16, depth=2, heads=4, width=64, lr=6e-3, steps=640, warmup_steps=32,
        eval_every=32, eval_batches=8, ps=(0.0, 0.1, 0.2, 0.5), small_chars=6_144, seeds=(0, 1, 2, 3, 4),
        confirm_seeds=tuple(range(5, 15)), masks=10_000, mc_p=0.2, mc_passes=16, mc_batches=4, live_steps=400,
        live_chars=(4096, 16_384, 65_536, ALL)),
    "gpu": DropoutSizes(ctx=128, batch_size=32, depth=4, heads=4, width=256, lr=3e-3, steps=1000, warmup_steps=50,
        eval_every=50, eval_batches=20, ps=(0.0, 0.1, 0.2, 0.5), small_chars=131_072, seeds=(0, 1, 2, 3, 4),
        confirm_seeds=(5, 6, 7, 8, 9), masks=10_000, mc_p=0.2, mc_passes=32, mc_batches=8, live_steps=1000,
        live_chars=(32_768, 131_072, 524_288, ALL)),
}


@dataclass(frozen=True)
class SamplingSizes:
    """Chapter 5: one model trained for sampling (chapter 6 reuses it through the run cache), its
    next-character distributions, a grid of decoding settings measured on held-out prompts with
    bootstrap intervals over the prompts, beam search, and the repetition feedback loop."""

    ctx: int  # holds a prompt and its whole continuation, so the KV cache serves every step
    batch_size: int
    depth: int
    heads: int
    width: int
    lr: float
    steps: int  # cosine schedule
    warmup_steps: int
    eval_every: int
    eval_batches: int
    prompt_chars: int  # prompt_chars + sample_chars ≤ ctx
    sample_chars: int  # each continuation, in the grid, the static twin and the live panel
    prompts: int  # held-out prompts of the grid, one continuation each per setting
    ks: tuple[int | None, ...]  # top-k at T = 1, ascending; None (no truncation) last
    temperatures: tuple[float, ...]  # pure sampling at these temperatures
    top_ps: tuple[float, ...]
    min_ps: tuple[float, ...]
    beam_widths: tuple[int, ...]  # beam search, 1 (greedy) first
    beam_prompts: int  # the first this many prompts get beam search (each beam costs width × greedy)
    resamples: int  # random halves of the prompts: ≥ 1,000 at every budget, for a 95 % interval
    phrases: int  # held-out phrases the repetition feedback loop repeats
    phrase_chars: int
    repeats: int  # copies of a phrase in one context: repeats × phrase_chars < ctx
    shown_samples: int  # continuations per setting shown in the static twin and the live panel
    repeat_window: int  # repetition is measured on the last repeat_window characters of a continuation
    drift_blocks: int  # equal stretches of a continuation in which NLL and entropy are averaged


SAMPLING = {
    "smoke": SamplingSizes(ctx=64, batch_size=4, depth=1, heads=2, width=32, lr=6e-3, steps=30, warmup_steps=2,
        eval_every=10, eval_batches=1, prompt_chars=16, sample_chars=48, prompts=8, shown_samples=2,
        ks=(1, 2, 5, 40, None), temperatures=(0.5, 1.5), top_ps=(0.5, 0.95), min_ps=(0.1,), beam_widths=(1, 2),
        beam_prompts=4, resamples=1000, phrases=8, phrase_chars=8, repeats=4, repeat_window=32, drift_blocks=4),
    "book": SamplingSizes(ctx=256, batch_size=8, depth=2, heads=4, width=192, lr=3e-3, steps=1000, warmup_steps=50,
        eval_every=100, eval_batches=8, prompt_chars=56, sample_chars=200, prompts=256,
        ks=(1, 2, 5, 10, 20, 40, None), temperatures=(0.5, 0.7, 0.9, 1.2), top_ps=(0.5, 0.8, 0.9, 0.95),
        min_ps=(0.05, 0.1, 0.2), beam_widths=(1, 2, 4, 8), beam_prompts=48, resamples=1000, phrases=128,
        phrase_chars=24, repeats=8, shown_samples=3, repeat_window=100, drift_blocks=10),
    "gpu": SamplingSizes(ctx=256, batch_size=32, depth=4, heads=8, width=384, lr=3e-3, steps=3000, warmup_steps=100,
        eval_every=200, eval_batches=20, prompt_chars=56, sample_chars=200, prompts=256,
        ks=(1, 2, 5, 10, 20, 40, None), temperatures=(0.5, 0.7, 0.9, 1.2), top_ps=(0.5, 0.8, 0.9, 0.95),
        min_ps=(0.05, 0.1, 0.2), beam_widths=(1, 2, 4, 8), beam_prompts=128, resamples=2000, phrases=256,
        phrase_chars=24, repeats=8, shown_samples=3, repeat_window=100, drift_blocks=10),
}


@dataclass(frozen=True)
class RandomnessSizes:
    """Chapter 6: chapter 4's small-slice model at p = 0 and at its best p, at chapter 4's fresh
    seeds (`dropout.confirm_seeds`, never used to choose the rate), decoded greedily, by top-k and
    at each model's own best temperature from held-out prompts; chapter 5's model (`sampling`)
    judges the texts."""

    top_k: int  # the 2 × 2's sampling column
    prompts: int  # held-out prompts of the 2 × 2, one continuation each per cell
    prompt_chars: int  # prompt_chars + sample_chars ≤ the judge's ctx
    sample_chars: int
    shown_samples: int  # continuations per model in the static twin and the live panel
    ks: tuple[int | None, ...]  # the static twin's k slider, ascending; None (no truncation) last
    text_seeds: int  # seeds that sample from the same logits in section 1
    temperatures: tuple[float, ...]  # held-out loss under the sampler's distribution at each T, ascending
    copy_chars: int  # a continuation copies its training text where a string this long occurs there
    repeat_window: int  # repetition is measured on the last repeat_window characters of a continuation
    mc_prompts: int  # prompts decoded with dropout left on (no KV cache: every step runs the window)
    fresh_seeds: int  # how many of chapter 4's fresh seeds (`dropout.confirm_seeds`, first ones) the two rows use


RANDOMNESS = {
    "smoke": RandomnessSizes(top_k=5, prompts=8, prompt_chars=16, sample_chars=48, shown_samples=2,
        ks=(1, 5, None), text_seeds=4, temperatures=(0.5, 1.0, 2.0), copy_chars=12, repeat_window=32, mc_prompts=4,
        fresh_seeds=2),
    "book": RandomnessSizes(top_k=10, prompts=64, prompt_chars=32, sample_chars=128,
        shown_samples=3, ks=(1, 2, 3, 5, 10, 20, None), text_seeds=8, copy_chars=12, repeat_window=100,
        temperatures=(0.5, 0.7, 0.85, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0), mc_prompts=64, fresh_seeds=5),
    "gpu": RandomnessSizes(top_k=10, prompts=256, prompt_chars=32, sample_chars=200, shown_samples=3,
        ks=(1, 2, 3, 5, 10, 20, None), text_seeds=8, copy_chars=12, repeat_window=100,
        temperatures=(0.5, 0.7, 0.85, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0), mc_prompts=128, fresh_seeds=5),
}


@dataclass(frozen=True)
class Budget:
    name: str
    lab: LabSizes
    mup: MupSizes
    scaling: ScalingSizes
    dropout: DropoutSizes
    sampling: SamplingSizes
    randomness: RandomnessSizes


BUDGETS = {name: Budget(name, LAB[name], MUP[name], SCALING[name], DROPOUT[name], SAMPLING[name], RANDOMNESS[name])
           for name in ("smoke", "book", "gpu")}


def building_book() -> bool:
    """True while `make book` executes the notebooks (it sets `LMLAB_BOOK_BUILD=1`):
    no progress bars, and live panels show their static twin instead of dead widgets."""
    return os.environ.get("LMLAB_BOOK_BUILD") == "1"


def budget(name: str | None = None) -> Budget:
    """The preset named by `name`, else by `LMLAB_BUDGET`, else by the hardware."""
    name = name or os.environ.get("LMLAB_BUDGET") or ("gpu" if torch.cuda.is_available() else "book")
    check_choice("budget (LMLAB_BUDGET)", name, tuple(BUDGETS))
    return with_fresh_seeds(BUDGETS[name])

