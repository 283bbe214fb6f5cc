"""The training loop: AdamW from `lmlab.mup`, warmup + cosine, constant or WSD LR, periodic evaluation.

Evaluation runs in eval mode on the same fixed batches every time, for both the
training and the validation split, so curves are comparable point to point and
a dropout model's training loss is measured without its masks.

One seed drives a run's randomness after the initialisation: the order of the
training batches and the dropout masks (the model's init takes the same seed in
`lmlab.runs`). A run that diverges stops at the next evaluation with an error that
says where and what to try, rather than training on NaNs.

WSD (warmup, stable, decay: Hu et al. 2024; Hägele et al. 2024) holds the LR
constant and decays it over the last `cooldown_fraction` of the steps. Runs of
different lengths then share their stable phase, so `train_budgets` trains to the
first decay start, saves a `Checkpoint`, runs that budget's cooldown from it, resumes
the stable phase from it to the next decay start, and so on: every budget's run is
identical to training it alone, at little more than the cost of the longest.
"""

import copy
import math
import time
from dataclasses import dataclass, replace

import torch
from tqdm.auto import tqdm

from lmlab import footprint, mup
from lmlab.budget import building_book
from lmlab.checks import (
    check_choice,
    check_fraction,
    check_int,
    check_positive,
    check_positive_int,
    check_range,
    check_seed,
)
from lmlab.corpus import eval_windows
from lmlab.device import device, precision, rng_devices
from lmlab.history import History
from lmlab.model import GPT, eval_mode, flops_per_token, model_device


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    batch_size: int = 32
    lr: float = 3e-3  # the base LR; μP scales it per parameter kind
    schedule: str = "cosine"  # after warmup: "cosine" down to min_lr_ratio·lr, "constant", or "wsd"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    cooldown_fraction: float = 0.2  # wsd: the last fraction of the steps decays linearly to min_lr_ratio·lr
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = 1.0  # the largest gradient norm, or None for no clipping
    eval_every: int = 50
    eval_batches: int = 8
    progress: bool = True  # a tqdm bar, never shown in a book build

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every", "eval_batches"):
            check_positive_int(name, getattr(self, name))
        check_positive("lr", self.lr)
        check_choice("schedule", self.schedule, ("cosine", "constant", "wsd"))
        check_int("warmup_steps", self.warmup_steps)
        check_range("warmup_steps", self.warmup_steps, 0, self.steps)
        check_fraction("min_lr_ratio", self.min_lr_ratio)
        check_fraction("cooldown_fraction", self.cooldown_fraction)
        check_range("weight_decay", self.weight_decay, 0, math.inf, high_open=True)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {self.betas!r}")
        for i, beta in enumerate(self.betas):
            check_range(f"betas[{i}]", beta, 0, 1, high_open=True)
        object.__setattr__(self, "betas", tuple(self.betas))  # a list from JSON becomes the tuple it was
        if self.grad_clip is not None:
            check_positive("grad_clip (None for no clipping)", self.grad_clip)
        if not isinstance(self.progress, bool):
            raise ValueError(f"progress must be True or False, got {self.progress!r}")
        if self.schedule == "wsd" and self.warmup_steps > self.decay_start:
            raise ValueError(f"warmup_steps must end before the cooldown starts at step {self.decay_start} "
                             f"(steps {self.steps}, cooldown_fraction {self.cooldown_fraction}), "
                             f"got {self.warmup_steps}")

    @property
    def decay_start(self) -> int:
        """wsd: the first step of the cooldown."""
        return self.steps - round(self.cooldown_fraction * self.steps)

    def lr_factor(self, step: int) -> float:
        """The schedule's multiplier of `lr` at `step` (0-based)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        if self.schedule == "wsd":
            if step < self.decay_start:
                return 1.0
            progress = (step - self.decay_start + 1) / (self.steps - self.decay_start)
            return 1 - (1 - self.min_lr_ratio) * progress
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine


DIVERGED = 10.0  # an evaluation loss above this many times ln(vocab) (uniform guessing) is a run that blew up


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite, or an evaluation loss rose above `DIVERGED` × ln(vocab) (and
    above the run's loss at step 0): the run is useless from here on, so it stops instead of
    training on."""

    def __init__(self, step: int, loss: float, cfg: TrainConfig):
        self.step, self.loss, self.lr = step, loss, cfg.lr
        hint = "keep gradient clipping on (grad_clip=1.0) or " if cfg.grad_clip is None else ""
        super().__init__(f"training diverged: the loss became {loss:g} at step {step} (lr {cfg.lr:g}, grad_clip "
                         f"{cfg.grad_clip}); {hint}try a smaller learning rate, e.g. lr={cfg.lr / 10:g}")


def check_vocab(model: GPT, data) -> None:
    """A model must have a logit for every character of the data, or its embedding lookup fails."""
    if model.config.vocab_size < data.vocab_size:
        raise ValueError(f"the model's vocab_size ({model.config.vocab_size}) is smaller than the data's "
                         f"vocabulary ({data.vocab_size} characters): build GPTConfig(data.vocab_size, ...)")


@torch.no_grad()
def evaluate(model, data, batch_size: int, batches: int) -> dict[str, float]:
    """Mean loss over the same `batches` fixed batches of each split, in eval mode, on the model's device."""
    check_vocab(model, data)
    dev, ctx = model_device(model), model.config.ctx
    losses = {}
    with eval_mode(model), precision(dev).autocast():
        for split in ("train", "val"):
            total = sum(model(x.to(dev), y.to(dev))[1].item()
                        for x, y in eval_windows(getattr(data, split).ids, batch_size, ctx, batches))
            losses[split] = total / batches
    return losses


@dataclass
class Checkpoint:
    """Everything that shapes the rest of a run at `step`: weights, optimizer and loss-scaler state,
    the random state of the batch order and of dropout, and the history so far. Resuming from
    it gives the steps that training straight through would have given."""

    step: int
    model: dict
    optimizer: dict
    scaler: dict
    batch_rng: torch.Tensor
    dropout_rng: torch.Tensor
    device_rng: list
    history: History

    @classmethod
    def capture(cls, step, model, opt, scaler, batches: torch.Generator, hist: History) -> "Checkpoint":
        dev = model_device(model)
        return cls(step, {k: v.detach().clone() for k, v in model.state_dict().items()},
                   copy.deepcopy(opt.state_dict()), scaler.state_dict(), batches.get_state(), torch.get_rng_state(),
                   [torch.cuda.get_rng_state(d) for d in rng_devices(dev)], copy.deepcopy(hist))

    def restore(self, model, opt, scaler, batches: torch.Generator) -> History:
        """Put the run back as it was at `step`; returns (a copy of) its history."""
        model.load_state_dict(self.model)
        opt.load_state_dict(copy.deepcopy(self.optimizer))
        if self.scaler:
            scaler.load_state_dict(self.scaler)
        batches.set_state(self.batch_rng)
        torch.set_rng_state(self.dropout_rng)
        for d, state in zip(rng_devices(model_device(model)), self.device_rng, strict=True):
            torch.cuda.set_rng_state(state, d)
        return copy.deepcopy(self.history)


def train(model: GPT, data, cfg: TrainConfig, seed: int = 0, callbacks=()) -> History:
    """Train `model` on `data` (a `CharDataset`) and return its `History`.

    `seed` sets the order of the training batches and the dropout masks. Each callback is
    called as `callback(history)` after every evaluation (the first at step 0, the last
    after the final step). The same seed gives the same losses on the same device.
    """
    return train_until(model, data, cfg, seed, callbacks).history


def train_until(model: GPT, data, cfg: TrainConfig, seed: int = 0, callbacks=(), start: Checkpoint | None = None,
                stop: int | None = None) -> Checkpoint:
    """The loop: train from step 0 (or from `start`) up to step `stop` (default: cfg.steps) and
    return the checkpoint there. The model moves to `lmlab.device()` and ends in eval mode."""
    check_seed("seed", seed)
    check_vocab(model, data)
    first, stop = (start.step if start else 0), (cfg.steps if stop is None else stop)
    check_range("stop", stop, first, cfg.steps)
    dev, flops = device(), flops_per_token(model.config)
    prec = precision(dev)
    footprint.check_training(model, cfg, dev, flops, prec.autocast_dtype is not None)  # memory and time, up front
    model.to(dev).train()
    opt = mup.optimizer(model, cfg.lr, cfg.weight_decay, cfg.betas, fused=prec.fused_adamw)
    scaler = prec.scaler()
    batches = torch.Generator().manual_seed(seed)
    tokens_per_step = cfg.batch_size * model.config.ctx
    bar = tqdm(total=stop - first, desc=f"width {model.config.width}", leave=False,
               disable=not cfg.progress or building_book())
    with torch.random.fork_rng(devices=rng_devices(dev)):
        torch.manual_seed(seed)  # dropout's masks
        if start is not None:
            hist = start.restore(model, opt, scaler, batches)
        else:
            hist = History()
            _evaluate_into(hist, model, data, cfg, 0, callbacks)
        clock = time.perf_counter() - (hist.seconds[-1] if hist.seconds else 0.0)  # a resumed run's clock goes on
        losses = []  # this stretch's training losses, read back once per evaluation (one device sync)
        for step in range(first, stop):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * cfg.lr_factor(step) * group["lr_scale"]
            x, y = data.batch("train", cfg.batch_size, model.config.ctx, batches)
            with prec.autocast():
                _, loss = model(x.to(dev, non_blocking=True), y.to(dev, non_blocking=True))
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip is not None:
                scaler.unscale_(opt)  # clip the true gradient, not the scaled one
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            losses.append(loss.detach())
            hist.step.append(step + 1)
            hist.tokens.append((step + 1) * tokens_per_step)
            hist.flops.append(flops * hist.tokens[-1])
            hist.seconds.append(time.perf_counter() - clock)
            bar.update()
            if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
                _record_losses(hist, losses, cfg)
                _evaluate_into(hist, model, data, cfg, step + 1, callbacks)
                bar.set_postfix(val=f"{hist.eval_val[-1]:.3f}")
        _record_losses(hist, losses, cfg)
        checkpoint = Checkpoint.capture(stop, model, opt, scaler, batches, hist)
    bar.close()
    model.eval()
    return checkpoint


def _record_losses(hist: History, losses: list, cfg: TrainConfig) -> None:
    """Move this stretch's training losses into the history, stopping the run at the first non-finite one."""
    if not losses:
        return
    values = torch.stack(losses).float().tolist()
    first = len(hist.train_loss)
    losses.clear()
    hist.train_loss.extend(values)
    for i, value in enumerate(values):
        if not math.isfinite(value):
            raise TrainingDiverged(first + i + 1, value, cfg)


def _evaluate_into(hist: History, model, data, cfg: TrainConfig, step: int, callbacks) -> None:
    losses = evaluate(model, data, cfg.batch_size, cfg.eval_batches)
    # the bar is 10 × uniform guessing, or the run's own first loss where a wide SP model starts
    # above it (width 1024 at σ = 0.2, α_out = 4 starts near 57 nats): a bad start is not a blow-up
    start = hist.eval_val[0] if hist.eval_val else math.inf
    limit = max(DIVERGED * math.log(model.config.vocab_size), start)
    for loss in losses.values():
        if not math.isfinite(loss) or loss > limit:
            raise TrainingDiverged(step, loss, cfg)
    hist.eval_step.append(step)
    hist.eval_tokens.append(step * cfg.batch_size * model.config.ctx)
    hist.eval_train.append(losses["train"])
    hist.eval_val.append(losses["val"])
    for callback in callbacks:
        callback(hist)


def train_budgets(model: GPT, data, cfg: TrainConfig, budgets, seed: int = 0) -> dict[int, tuple[History, dict]]:
    """Train `model` for each step budget in `budgets` under `cfg`'s WSD schedule (`cfg.steps` is
    ignored), sharing the stable phase: the cost is the longest run plus the other runs'
    cooldowns. Returns {steps: (History, final state_dict)}, each what `train` would give for
    `replace(cfg, steps=steps)` from the same initial model; `model` ends as the longest run."""
    budgets = sorted(set(budgets))
    if cfg.schedule != "wsd":
        raise ValueError(f"train_budgets shares a stable phase, so cfg.schedule must be 'wsd', got {cfg.schedule!r}")
    if not budgets:
        raise ValueError("budgets must not be empty")
    results, stable = {}, None
    for steps in budgets:
        run = replace(cfg, steps=steps)  # validates each budget, warmup included
        stable = train_until(model, data, run, seed, start=stable, stop=run.decay_start)  # the shared stable phase
        end = train_until(model, data, run, seed, start=stable)  # this budget's own cooldown
        results[steps] = (end.history, end.model)
    return results
