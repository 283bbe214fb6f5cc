"""A run's footprint: will it fit this machine? Its memory and time, from its sizes, before anything is allocated.

A size typed by mistake (depth=10**6, batch_size=10**7, steps=10**12) should not take a
minute to end in `std::bad_alloc`, in an allocator message that names no setting, or in a
loop that runs for years. The model (`GPT`), the training loop and `generate` ask here
first, and a run that cannot fit is refused at once with a ValueError naming the setting, its
value and what this machine holds. The estimates are lower bounds, so a run that fits is
never refused:

- memory: 4 bytes per parameter for the weights, and as much again for their gradients and
  for each of AdamW's two moments; at the end of a run a `Checkpoint` copies the weights and
  both moments (3 more). Building a model costs about 36 KB of Python objects per block
  (measured: 36–52 KB), counted as 32 KB. Training keeps at least 16 float32 activations per
  token, width unit and layer for the backward pass (measured: 21), 3 per token and
  vocabulary entry (the logits and their gradient), and, where the attention cannot use a
  fused kernel (dropout on, off CUDA), 3 per query, key, head and layer (measured: 4–6).
- time: the longer of two bounds, the run's FLOPs (`flops_per_token`: training, and the
  forward passes of every evaluation) at the device's peak rate, which no training loop
  reaches (small models get 1–30 % of it), and the torch operations the loop dispatches one
  by one (counted with a TorchDispatchMode: at least 67 + 102·depth per training step, as
  CUDA runs it with fused AdamW, and 13 + 31·depth per evaluation batch, plus a Python slice
  per window drawn) at 1 µs each (an addition of two tiny tensors takes 5 µs on a 2-core
  server; benchmarks/plan_cost.py assumes 10 µs on CUDA). A run that could not finish within
  a day even at that speed is a mistake: the book's longest run takes minutes, and real
  speed is 10–100 times slower. (A year would let eval_batches=10**9 through: 4·10⁹ small
  forward passes are only days at these bounds, though months at any real speed.)
"""

import math
import os
from dataclasses import replace

import torch

BYTES = 4  # float32 weights, gradients, moments and (off autocast) activations
BLOCK_BYTES = 32 * 1024  # Python objects of one Block (its modules, parameters and their dicts)
ACTIVATIONS = 16  # float32 values kept per token, width unit and layer for the backward pass
LOGITS = 3  # per token and vocabulary entry: the logits, their float32 copy, their gradient
ATTENTION = 3  # per query, key, head and layer where the attention matrix is materialised
DAY = 24 * 3600.0  # seconds: the longest run that is not a typo, at the bounds' speed
OP_SECONDS = 1e-6  # the least time one eager torch operation (or a window's Python slice) takes
STEP_OPS = (60, 100)  # operations a training step dispatches at least: fixed, and per layer
FORWARD_OPS = (12, 30)  # the same for an evaluation batch's forward pass
TOKEN_OPS = (10, 25)  # the same for one generated token (counted: 15 + 27·depth through the KV cache)
CPU_PEAK_PER_THREAD = 5e9 * 64  # a 5 GHz core with two 16-lane float32 FMA units (AVX-512): 2 FLOPs per lane
CUDA_PEAK = 2.5e15  # dense 16-bit tensor-core FLOP/s of the fastest single GPU (a B200: 2.25e15)
MPS_PEAK = 1e14  # Apple's GPUs: ~30e12 float32 FLOP/s at the largest


def _size(n: float) -> str:
    """Bytes in words: '21.4 GB'."""
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} bytes"


def _duration(seconds: float) -> str:
    for unit, scale in (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} seconds"


def available_memory(dev: torch.device | str = "cpu") -> tuple[int, str]:
    """Bytes a new allocation on `dev` can take, and where the number comes from: CUDA's free memory
    plus what torch holds in its cache unused; elsewhere (the CPU, and MPS's unified memory) the
    kernel's MemAvailable, or the free (at worst the physical) pages where there is no /proc."""
    dev = torch.device(dev)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        cached = torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
        return free + cached, f"free on {torch.cuda.get_device_name(dev)}"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available (MemAvailable)"
    except OSError:
        pass
    pages = "SC_AVPHYS_PAGES" if "SC_AVPHYS_PAGES" in os.sysconf_names else "SC_PHYS_PAGES"
    return os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE"), "free" if pages == "SC_AVPHYS_PAGES" else "in all"


def peak_flops(dev: torch.device | str = "cpu") -> tuple[float, str]:
    """An upper bound on the FLOP/s `dev` can compute, and how it was reached (for a message)."""
    dev = torch.device(dev)
    if dev.type == "cuda":
        return CUDA_PEAK, "the fastest GPU's 16-bit peak"
    if dev.type == "mps":
        return MPS_PEAK, "an Apple GPU's peak"
    threads = torch.get_num_threads()
    return threads * CPU_PEAK_PER_THREAD, f"{threads} CPU threads × 5 GHz × 64 FLOPs per cycle"


def _refuse_memory(need: float, have: int, where: str, what: str, hint: str) -> None:
    raise ValueError(f"{what} needs at least {_size(need)} of memory, but this machine has {_size(have)} "
                     f"{where}{hint}")


def _largest(fits, high: int, low: int = 1) -> int:
    """The largest value in [low, high] where `fits(value)` holds (it holds below some value), or low − 1."""
    if not fits(low):
        return low - 1
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    return low


def model_memory(cfg, count) -> float:
    """Bytes building `GPT(cfg)` takes at least: its weights (`count(cfg, non_embedding=False)`
    parameters: `lmlab.model.param_count`), its largest weight drawn and scaled at init (two
    temporary copies), and its blocks' Python objects."""
    w = cfg.width
    largest = max(4 * w * w, cfg.vocab_size * w, cfg.ctx * w) * BYTES
    return count(cfg, non_embedding=False) * BYTES + 2 * largest + cfg.depth * BLOCK_BYTES


def check_model(cfg, count, dev: torch.device | str | None = None) -> None:
    """Refuse a GPT config that cannot be built on `dev` (default: torch's default device), named
    after its largest share, the blocks (depth), the positions (ctx) or the vocabulary's
    embedding and readout (vocab_size), with the largest value of it that fits; where not
    even 1 fits, the width is named first."""
    dev = torch.device(dev) if dev is not None else torch.get_default_device()
    need, (have, where) = model_memory(cfg, count), available_memory(dev)
    if need <= have:
        return
    w = cfg.width
    shares = {"depth": cfg.depth * (12 * w * w * BYTES + BLOCK_BYTES), "ctx": cfg.ctx * w,
              "vocab_size": 2 * cfg.vocab_size * w}
    name = max(shares, key=shares.get)
    value, low = getattr(cfg, name), 2 if name == "vocab_size" else 1
    most = _largest(lambda v: model_memory(replace(cfg, **{name: v}), count) <= have, value, low)
    if most >= low:
        what, hint = f"{name}={value} (width={w})", f"; at width {w} at most {name}={most} fits"
    else:  # not even the smallest value fits: the width is what is too large
        what, hint = f"width={w} ({name}={value})", f"; at width {w} not even {name}={low} fits"
    _refuse_memory(need, have, where, f"{what}: a GPT of {count(cfg, non_embedding=False):.3g} parameters", hint)


def training_memory(model_cfg, params: int, dev, autocast: bool, resident: int = 0) -> dict[str, float]:
    """The least memory, in bytes, training a GPT of `params` parameters adds on `dev`: `states`
    (weights, gradients, AdamW's moments, the end-of-run checkpoint; less the `resident` bytes
    of weights already there) and `per_sample` (activations, logits and ids of one sequence)."""
    cfg, dev = model_cfg, torch.device(dev)
    states = params * BYTES * (4 + 3) + (params * 2 if autocast else 0) - resident  # + the Checkpoint's copies
    act = BYTES // 2 if autocast else BYTES
    per_token = cfg.width * cfg.depth * ACTIVATIONS * act + cfg.vocab_size * LOGITS * BYTES + 3 * 8  # + int64 ids
    if cfg.dropout > 0 and dev.type != "cuda":
        per_token += cfg.heads * cfg.ctx * cfg.depth * ATTENTION * BYTES
    return {"states": states, "per_sample": per_token * cfg.ctx}


def check_training(model, cfg, dev, flops_per_token: float, autocast: bool = False) -> None:
    """`check_run` for `model` as it is: its parameters counted, those already on `dev` not added again."""
    dev = torch.device(dev)
    params = sum(p.numel() for p in model.parameters())
    resident = sum(p.numel() * p.element_size() for p in model.parameters() if p.device.type == dev.type)
    check_run(model.config, params, cfg, dev, flops_per_token, autocast, resident)


def check_run(model_cfg, params: int, cfg, dev, flops_per_token: float, autocast: bool = False,
              resident: int = 0) -> None:
    """Refuse training a GPT (`model_cfg`, `params` parameters) under `cfg` (a TrainConfig) on `dev`
    where it cannot fit the memory, or could not finish within a day even at `run_seconds`' speed."""
    mem, (have, where) = training_memory(model_cfg, params, dev, autocast, resident), available_memory(dev)
    if mem["states"] > have:
        _refuse_memory(mem["states"], have, where, f"width={model_cfg.width}, depth={model_cfg.depth}: training a "
                       f"GPT of {params:.3g} parameters (weights, gradients, AdamW's two moments and the end-of-run "
                       f"checkpoint)", ": build a smaller model")
    need = mem["states"] + cfg.batch_size * mem["per_sample"]
    if need > have:
        most = int((have - mem["states"]) // mem["per_sample"])
        hint = f"; at most batch_size={most} fits" if most >= 1 else "; not even batch_size=1 fits: shorten ctx"
        _refuse_memory(need, have, where, f"batch_size={cfg.batch_size} (ctx {model_cfg.ctx}): training", hint)
    check_duration(cfg, model_cfg, dev, flops_per_token)


def run_seconds(cfg, model_cfg, dev, flops_per_token: float) -> dict[str, tuple[float, float, float]]:
    """The least time a run takes on `dev`, split into training ("steps") and evaluation
    ("eval_batches"): for each its FLOPs, its torch operations, and its seconds, the longer of
    the FLOPs at `peak_flops(dev)` and the operations at `OP_SECONDS` each."""
    tokens, d = cfg.batch_size * model_cfg.ctx, model_cfg.depth
    evals = 1 + cfg.steps // cfg.eval_every + (cfg.steps % cfg.eval_every > 0)  # step 0, each eval_every, the last
    batches = evals * 2 * cfg.eval_batches  # the train and the val split
    work = {"steps": (cfg.steps * tokens * flops_per_token,
                      cfg.steps * (STEP_OPS[0] + STEP_OPS[1] * d + cfg.batch_size)),
            "eval_batches": (batches * tokens * flops_per_token / 3,  # forward only
                             batches * (FORWARD_OPS[0] + FORWARD_OPS[1] * d + cfg.batch_size))}
    rate, _ = peak_flops(dev)
    return {k: (flops, ops, max(flops / rate, ops * OP_SECONDS)) for k, (flops, ops) in work.items()}


def check_duration(cfg, model_cfg, dev, flops_per_token: float) -> None:
    """Refuse a run that could not finish within a day at the speed of `run_seconds`, naming steps
    or eval_batches, whichever takes longer, and about how many would fit."""
    parts = run_seconds(cfg, model_cfg, dev, flops_per_token)
    seconds = sum(s for _, _, s in parts.values())
    if seconds <= DAY:
        return
    name = max(parts, key=lambda k: parts[k][2])
    value = getattr(cfg, name)
    fixed = 0.0 if name == "steps" else parts["steps"][2]  # evaluations grow with the steps; training does not
    most = math.floor(value * max(0.0, DAY - fixed) / (seconds - fixed))
    flops, ops = (sum(p[i] for p in parts.values()) for i in (0, 1))
    rate, how = peak_flops(dev)
    raise ValueError(f"{name}={value}: this run takes at least {_duration(seconds)} on this machine even at its "
                     f"fastest ({flops:.3g} FLOPs at {rate:.3g} FLOP/s: {how}; {ops:.3g} torch operations at "
                     f"{OP_SECONDS * 1e6:g} µs each); a run that cannot finish within a day at that speed is a "
                     f"mistake (the book's longest takes minutes): "
                     + (f"about {name}={most} would" if most >= 1 else f"not even {name}=1 would"))


BANDWIDTH = 1e13  # bytes/s that no memory moves faster than (an H200's HBM3e: 4.8e12)


def check_generation(model_cfg, rows: int, prompt: int, new: int, dev, flops_per_token: float,
                     names: tuple[str, str] = ("rows of idx", "max_new_tokens"), kv_cache: bool = True) -> None:
    """Refuse generating `new` tokens after a `prompt` for `rows` rows where the ids (and the copy
    `torch.cat` makes of them each step), the KV cache and a window's logits and activations
    cannot fit `dev`, or the loop could not finish within a day: one forward pass a token at
    `OP_SECONDS` per operation, its FLOPs at the peak rate, or the ids copied each step at
    `BANDWIDTH`, whichever is longest. `names` name the row count and the token count."""
    cfg, window = model_cfg, min(prompt + new, model_cfg.ctx)
    ids = 2 * (prompt + new) * 8
    cache = 2 * cfg.depth * cfg.ctx * cfg.width * BYTES if kv_cache else 0
    per_row = ids + cache + window * (cfg.vocab_size + 4 * cfg.width) * BYTES
    (have, where), (rows_name, new_name) = available_memory(dev), names
    if rows * per_row > have:
        most = int(have // per_row)
        name, value, other = ((new_name, new, f"{rows_name} {rows}") if ids > per_row / 2 else
                              (rows_name, rows, f"{new_name} {new}"))
        hint = f"; at most {rows_name}={most} fits" if name == rows_name and most >= 1 else ""
        _refuse_memory(rows * per_row, have, where, f"{name}={value} ({other}): generation", hint)
    rate, how = peak_flops(dev)
    seconds = max(rows * new * flops_per_token / 3 / rate, new * (TOKEN_OPS[0] + TOKEN_OPS[1] * cfg.depth)
                  * OP_SECONDS, rows * 8 * (prompt * new + new * new / 2) / BANDWIDTH)
    if seconds > DAY:
        raise ValueError(f"{new_name}={new} ({rows_name} {rows}): generation takes at least {_duration(seconds)} "
                         f"on this machine even at its fastest (one forward pass a token at {OP_SECONDS * 1e6:g} µs "
                         f"an operation, {rate:.3g} FLOP/s: {how}, the ids copied each step at {BANDWIDTH:.3g} "
                         f"bytes/s); generation that cannot finish within a day at that speed is a mistake")
