"""The training loop: AdamW from `lmlab.mup`, warmup + cosine or constant LR, periodic evaluation.

Evaluation runs in eval mode on the same fixed batches every time, for both the
training and the validation split, so curves are comparable point to point and
a dropout model's training loss is measured without its masks.
"""

import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace

import torch
from tqdm.auto import tqdm

import lmlab.corpus
import lmlab.model
import lmlab.scaling
from lmlab import mup
from lmlab.budget import building_book
from lmlab.cache import Cache, key, source_fingerprint
from lmlab.checks import check_choice, check_fraction, check_positive_int, check_range
from lmlab.model import GPT, GPTConfig
from lmlab.scaling import flops_per_token

EVAL_SEED = 1234  # the fixed evaluation batches


def device() -> torch.device:
    """CUDA, else Apple's MPS, else the CPU; picked once for every run."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    batch_size: int = 32
    lr: float = 3e-3  # the base LR; μP scales it per parameter kind
    schedule: str = "cosine"  # "cosine" (after warmup, down to min_lr_ratio·lr) or "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = 1.0
    eval_every: int = 50
    eval_batches: int = 8
    seed: int = 0  # data order and dropout masks
    progress: bool = True  # a tqdm bar, never shown in a book build

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every", "eval_batches"):
            check_positive_int(name, getattr(self, name))
        check_range("lr", self.lr, 0, float("inf"), low_open=True, high_open=True)
        check_choice("schedule", self.schedule, ("cosine", "constant"))
        check_range("warmup_steps", self.warmup_steps, 0, self.steps)
        check_fraction("min_lr_ratio", self.min_lr_ratio)

    def lr_factor(self, step: int) -> float:
        """The schedule's multiplier of `lr` at `step` (0-based)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine


@dataclass
class History:
    """What a run measured: one entry per step, and one per evaluation."""

    step: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    flops: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # wall time since the start, evaluations included
    train_loss: list[float] = field(default_factory=list)  # the training batch's loss, in train mode
    eval_step: list[int] = field(default_factory=list)
    eval_tokens: list[int] = field(default_factory=list)
    eval_train: list[float] = field(default_factory=list)  # fixed training batches, eval mode
    eval_val: list[float] = field(default_factory=list)  # fixed validation batches, eval mode

    @property
    def final_val(self) -> float:
        return self.eval_val[-1]

    @property
    def best_val(self) -> float:
        return min(self.eval_val)

    def tokens_per_second(self) -> float:
        return self.tokens[-1] / self.seconds[-1]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**d)


@torch.no_grad()
def evaluate(model, data, batch_size: int, batches: int) -> dict[str, float]:
    """Mean loss over the same `batches` fixed batches of each split, in eval mode."""
    was_training, dev, ctx = model.training, next(model.parameters()).device, model.config.ctx
    model.eval()
    losses = {}
    for split in ("train", "val"):
        g = torch.Generator().manual_seed(EVAL_SEED)
        total = 0.0
        for _ in range(batches):
            x, y = data.batch(split, batch_size, ctx, g)
            with _autocast(dev):
                total += model(x.to(dev), y.to(dev))[1].item()
        losses[split] = total / batches
    model.train(was_training)
    return losses


def _autocast(dev: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)


def train(model: GPT, data, cfg: TrainConfig, callbacks=()) -> History:
    """Train `model` on `data` (a `CharDataset`) and return its `History`.

    Each callback is called as `callback(history)` after every evaluation (the
    first at step 0, the last after the final step). The same seed gives
    the same losses on the same device.
    """
    dev = device()
    model.to(dev).train()
    opt = mup.optimizer(model, cfg.lr, cfg.weight_decay, cfg.betas)
    g = torch.Generator().manual_seed(cfg.seed)
    hist, flops = History(), flops_per_token(model.config)
    tokens_per_step = cfg.batch_size * model.config.ctx
    start, pending = time.perf_counter(), []
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        bar = tqdm(range(cfg.steps), desc=f"width {model.config.width}", leave=False,
                   disable=not cfg.progress or building_book())
        _evaluate_into(hist, model, data, cfg, 0, 0, callbacks)
        for step in bar:
            for group in opt.param_groups:
                group["lr"] = cfg.lr * cfg.lr_factor(step) * group["lr_scale"]
            x, y = data.batch("train", cfg.batch_size, model.config.ctx, g)
            with _autocast(dev):
                _, loss = model(x.to(dev, non_blocking=True), y.to(dev, non_blocking=True))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            pending.append(loss.detach())
            hist.step.append(step + 1)
            hist.tokens.append((step + 1) * tokens_per_step)
            hist.flops.append(flops * hist.tokens[-1])
            hist.seconds.append(time.perf_counter() - start)
            if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
                hist.train_loss.extend(torch.stack(pending).float().tolist())  # one device sync per eval
                pending.clear()
                _evaluate_into(hist, model, data, cfg, step + 1, hist.tokens[-1], callbacks)
                bar.set_postfix(val=f"{hist.eval_val[-1]:.3f}")
    model.eval()
    return hist


def _evaluate_into(hist, model, data, cfg, step, tokens, callbacks):
    losses = evaluate(model, data, cfg.batch_size, cfg.eval_batches)
    hist.eval_step.append(step)
    hist.eval_tokens.append(tokens)
    hist.eval_train.append(losses["train"])
    hist.eval_val.append(losses["val"])
    for callback in callbacks:
        callback(hist)


def train_cached(model_cfg: GPTConfig, cfg: TrainConfig, data, seed: int = 0, cache: Cache | None = None,
                 callbacks=()) -> tuple[GPT, History]:
    """`train` a fresh `GPT(model_cfg, seed)`, or load the identical run from the cache.

    The key covers the model and training configs, the data's fingerprint, the
    seed and the source of the modules that shape a run, so any change trains
    afresh; chapters share models this way.
    """
    cache = cache or Cache()
    code = source_fingerprint(lmlab.corpus, lmlab.model, mup, lmlab.scaling, sys.modules[__name__])
    name = "run-" + key(model_cfg.to_dict(), asdict(replace(cfg, progress=True)), data.fingerprint, seed, code)
    model = GPT(model_cfg, seed)
    state, saved = cache.load_state(name), cache.load_json(name)
    if state is not None and saved is not None:
        model.load_state_dict(state)
        hist = History.from_dict(saved)
        for callback in callbacks:
            callback(hist)
        return model.to(device()).eval(), hist
    hist = train(model, data, cfg, callbacks)
    cache.save_state(name, {k: v.cpu() for k, v in model.state_dict().items()})
    cache.save_json(name, hist.to_dict())
    return model, hist
