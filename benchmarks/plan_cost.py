"""The cost model of benchmarks/gpu_plan.py: a piece of work's FLOPs, sequential steps, aten
operations per step and peak memory, and its time on a T4 as the larger of its FLOP time at a
model-FLOP utilisation and its steps × operations × a per-operation host cost.

The book's models are small, so many runs are bound by per-step overhead, not FLOPs. The
operations per step are counted here, on the CPU, for each model shape (they depend on depth
and the number of parameter tensors, not on width, batch or context); the cost per operation
is an assumption, stated in benchmarks/README.md.
"""

import math
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lmlab.model import GPT, GPTConfig, flops_per_token, param_count  # noqa: E402
from lmlab.runs import RunSpec  # noqa: E402

T4_PEAK = 65e12  # FLOP/s, fp16 tensor cores (NVIDIA T4 datasheet; REFERENCES.md)
T4_MEMORY = 15e9  # bytes usable of its 16 GB
MFUS = (0.10, 0.15, 0.20, 0.30)
OP_SECONDS = 10e-6  # host time per aten operation in eager PyTorch on CUDA (assumed; see benchmarks/README.md)
CUDA_CONTEXT = 0.5e9  # bytes the CUDA context and allocator take before any tensor


@dataclass
class Work:
    """One piece of a chapter's compute: `flops` in total, done in `steps` sequential steps of
    `ops` aten operations each, needing `memory` bytes at its peak."""

    what: str
    flops: float
    steps: int
    ops: int
    memory: float
    runs: int = 0  # training runs it stands for (a WSD family is one run per budget)
    specs: list = field(default_factory=list)
    exercise: Callable[[], None] | None = None  # the same path at the same shapes, a step long

    def seconds(self, mfu: float) -> float:
        return max(self.flops / (mfu * T4_PEAK), self.steps * self.ops * OP_SECONDS)


# ---------------------------------------------------------------- counting operations and memory


class _CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


# What CUDA runs where the CPU runs one operation per tensor: fused AdamW is one multi-tensor
# kernel per parameter group (and a step counter), clipping takes foreach norms (about 8
# operations in all), and the fp16 gradient scaler unscales and updates its scale (about 4).
CUDA_OPTIMIZER_OPS = {"per_group": 2, "fixed": 8 + 4}


@cache
def ops_per_step(depth: int, heads: int, dropout: bool, kind: str = "train") -> int:
    """aten operations of one training step as CUDA runs it (forward and backward under
    autocast, with its casts; then fused AdamW and foreach clipping), or of one forward
    (`kind="forward"`), counted on a narrow model of the same depth and heads."""
    from lmlab.mup import optimizer

    model = GPT(GPTConfig(80, ctx=8, width=8 * heads, depth=depth, heads=heads, dropout=0.1 if dropout else 0.0))
    x = torch.randint(80, (1, 8))
    counter = _CountOps()
    with counter, torch.autocast("cpu", dtype=torch.bfloat16):  # the CPU's autocast casts as CUDA's does
        if kind == "forward":
            with torch.no_grad():
                model(x)
        else:
            model(x, x)[1].backward()
    if kind == "forward":
        return counter.n
    groups = len(optimizer(model, 1e-3).param_groups)
    return counter.n + groups * CUDA_OPTIMIZER_OPS["per_group"] + CUDA_OPTIMIZER_OPS["fixed"]


def training_memory(cfg: GPTConfig, batch: int, half: bool = True) -> float:
    """Peak bytes of training `cfg` at `batch` × ctx under autocast: fp32 weights, gradients and
    Adam's two moments (16 bytes a parameter), half-precision weight copies (2), activations
    by Korthikanti et al. (2022)'s count for one layer, s·b·h·(34 + 5·a·s/h) bytes, the logits
    (half, float for the loss, and its gradient: 10 bytes each), and the CUDA context."""
    p = param_count(cfg, non_embedding=False)
    s, b, h, a = cfg.ctx, batch, cfg.width, cfg.heads
    activations = cfg.depth * s * b * h * (34 + 5 * a * s / h) * (1 if half else 2)
    logits = s * b * cfg.vocab_size * 10
    return p * (16 + 2) + activations + logits + CUDA_CONTEXT


def run_work(spec: RunSpec, what: str) -> Work:
    """A run (or WSD family) of `spec`: its training and evaluation FLOPs, steps, and memory."""
    runs = spec.runs()
    fpt = flops_per_token(spec.model)
    tokens_per_step = spec.train.batch_size * spec.model.ctx
    longest = max(r.train.steps for r in runs)
    cooldowns = sum(r.train.steps - r.train.decay_start for r in runs[:-1])
    steps = longest + cooldowns
    evals = sum(r.train.steps // r.train.eval_every + 2 for r in runs)  # step 0, every eval_every, the end
    eval_tokens = evals * 2 * spec.train.eval_batches * tokens_per_step  # both splits
    flops = steps * tokens_per_step * fpt + eval_tokens * fpt / 3  # a forward is a third of a training step
    ops = ops_per_step(spec.model.depth, spec.model.heads, spec.model.dropout > 0)
    eval_steps = evals * 2 * spec.train.eval_batches
    ops_all = (steps * ops + eval_steps * ops_per_step(spec.model.depth, spec.model.heads, False, "forward"))
    return Work(what, flops, steps + eval_steps, math.ceil(ops_all / (steps + eval_steps)),
                training_memory(spec.model, spec.train.batch_size), len(runs), [spec])


def forward_work(cfg: GPTConfig, what: str, batch: int, steps: int, tokens_per_step: int) -> Work:
    """`steps` sequential forward passes of `batch` rows of `tokens_per_step` new tokens each
    (generation with a KV cache feeds one token a step)."""
    flops = steps * batch * tokens_per_step * flops_per_token(cfg) / 3
    memory = param_count(cfg, non_embedding=False) * 4 + batch * cfg.ctx * cfg.width * cfg.depth * 8 + CUDA_CONTEXT
    return Work(what, flops, steps, ops_per_step(cfg.depth, cfg.heads, False, "forward"), memory)


# ---------------------------------------------------------------- groups, as a GPU trains them


@cache
def group_ops_per_step(depth: int, heads: int, dropout: bool, k: int) -> int:
    """aten operations of one step of a group of `k` runs (`lmlab.group_train.GroupRun`: batched
    forward and backward under autocast, per-run clipping, the group's AdamW and loss scales, each
    run's batch and dropout masks), counted on narrow models of the same depth and heads. Unlike
    `ops_per_step` nothing is fused here: the group's optimizer is written in plain tensor
    operations, and CUDA runs the same ones."""
    from lmlab import TrainConfig
    from lmlab.group_train import GroupRun
    from lmlab.runs import dataset

    data = dataset()
    cfg = GPTConfig(data.vocab_size, ctx=8, width=8 * heads, depth=depth, heads=heads,
                    dropout=0.1 if dropout else 0.0)
    train = TrainConfig(steps=2, batch_size=1, eval_every=2, progress=False)
    group = GroupRun([GPT(cfg, seed=s) for s in range(k)], data, [train] * k, list(range(k)))
    counter = _CountOps()
    with counter, torch.autocast("cpu", dtype=torch.bfloat16):
        group.run(data, 1)
    return counter.n


def grouped(works: list[Work], memory: float = T4_MEMORY) -> list[Work]:
    """`works` as `lmlab.run_groups` trains them on an accelerator: runs (and WSD families) of one
    shape (`run_groups.shape`) in groups of up to `GPU_GROUP`, as many as `MEMORY_SHARE` of
    `memory` holds, cut as `run_groups.chunks` cuts them. A group does its runs' FLOPs in one run's
    steps, each step a group step's operations (its evaluations are counted as training steps, an
    upper bound), and its memory is theirs less all but one CUDA context. Other work (generation,
    coordinate checks, MC dropout) is kept as it is."""
    from lmlab.run_groups import GPU_GROUP, MEMORY_SHARE, chunks, shape

    by_shape, out = defaultdict(list), []
    for w in works:
        if len(w.specs) == 1:
            by_shape[shape(w.specs[0])].append(w)
        else:
            out.append(w)
    for same in by_shape.values():
        one = max(w.memory for w in same) - CUDA_CONTEXT
        size = max(1, min(GPU_GROUP, int(MEMORY_SHARE * memory // one)))
        for part in chunks(same, size):
            if len(part) == 1:
                out.append(part[0])
                continue
            m = part[0].specs[0].model
            k = len(part)
            ops = group_ops_per_step(m.depth, m.heads, m.dropout > 0, k)
            out.append(Work(f"{part[0].what} (groups of up to {size})", sum(w.flops for w in part),
                            max(w.steps for w in part), max(ops, max(w.ops for w in part)),
                            one * k + CUDA_CONTEXT, sum(w.runs for w in part),
                            [s for w in part for s in w.specs]))
    return out
