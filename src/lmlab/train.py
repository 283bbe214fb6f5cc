"""The training loop: AdamW from `lmlab.mup`, warmup + cosine, constant or WSD LR, periodic evaluation.

Evaluation runs in eval mode on the same fixed batches every time, for both the
training and the validation split, so curves are comparable point to point and
a dropout model's training loss is measured without its masks.

WSD (warmup, stable, decay: Hu et al. 2024; Hägele et al. 2024) holds the LR
constant and decays it over the last `cooldown_fraction` of the steps. Runs of
different lengths then share their stable phase, so `train_budgets` trains one
model for several step budgets at little more than the cost of the longest,
each run identical to training it alone.
"""

import copy
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
from lmlab.model import GPT, GPTConfig, eval_mode
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
    schedule: str = "cosine"  # after warmup: "cosine" down to min_lr_ratio·lr, "constant", or "wsd"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    cooldown_fraction: float = 0.2  # wsd: the last fraction of the steps decays linearly to min_lr_ratio·lr
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
        check_choice("schedule", self.schedule, ("cosine", "constant", "wsd"))
        check_range("warmup_steps", self.warmup_steps, 0, self.steps)
        check_fraction("min_lr_ratio", self.min_lr_ratio)
        check_fraction("cooldown_fraction", self.cooldown_fraction)
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
    dev, ctx = next(model.parameters()).device, model.config.ctx
    losses = {}
    with eval_mode(model):
        for split in ("train", "val"):
            g = torch.Generator().manual_seed(EVAL_SEED)
            total = 0.0
            for _ in range(batches):
                x, y = data.batch(split, batch_size, ctx, g)
                with _autocast(dev):
                    total += model(x.to(dev), y.to(dev))[1].item()
            losses[split] = total / batches
    return losses


def _autocast(dev: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)


def train(model: GPT, data, cfg: TrainConfig, callbacks=()) -> History:
    """Train `model` on `data` (a `CharDataset`) and return its `History`.

    Each callback is called as `callback(history)` after every evaluation (the
    first at step 0, the last after the final step). The same seed gives
    the same losses on the same device.
    """
    return _train(model, data, cfg, [cfg.steps], callbacks)[cfg.steps][0]


def train_budgets(model: GPT, data, cfg: TrainConfig, budgets, callbacks=()) -> dict[int, tuple[History, dict]]:
    """Train `model` for each step budget in `budgets` under `cfg`'s WSD schedule (`cfg.steps` is
    ignored), sharing the stable phase: the cost is the longest run plus the other runs'
    cooldowns. Returns {steps: (History, final state_dict)}, each what `train` would give for
    `replace(cfg, steps=steps)` from the same initial model; `model` ends as the longest run."""
    budgets = sorted(set(budgets))
    if cfg.schedule != "wsd":
        raise ValueError(f"train_budgets shares a stable phase, so cfg.schedule must be 'wsd', got {cfg.schedule!r}")
    if not budgets:
        raise ValueError("budgets must not be empty")
    for steps in budgets:
        replace(cfg, steps=steps)  # validates each budget, warmup included
    return _train(model, data, cfg, budgets, callbacks)


def _train(model: GPT, data, cfg: TrainConfig, budgets: list[int], callbacks) -> dict[int, tuple[History, dict]]:
    """The loop behind `train` and `train_budgets`: one pass to the longest budget; at each
    shorter budget's decay start, a snapshot of everything that shapes the rest of the run
    (weights, optimizer, data order, dropout RNG, history) from which its cooldown runs."""
    dev = device()
    model.to(dev).train()
    opt = mup.optimizer(model, cfg.lr, cfg.weight_decay, cfg.betas)
    g = torch.Generator().manual_seed(cfg.seed)
    hist, flops = History(), flops_per_token(model.config)
    tokens_per_step = cfg.batch_size * model.config.ctx
    start, pending = time.perf_counter(), []
    runs = {steps: replace(cfg, steps=steps) for steps in budgets}
    branch_at = {}  # step → the shorter budgets whose cooldown starts there
    for steps in budgets[:-1]:
        branch_at.setdefault(runs[steps].decay_start, []).append(steps)
    cuda = [dev] if dev.type == "cuda" else []
    results = {}

    def step_once(step: int, run: TrainConfig, bar) -> None:
        for group in opt.param_groups:
            group["lr"] = run.lr * run.lr_factor(step) * group["lr_scale"]
        x, y = data.batch("train", run.batch_size, model.config.ctx, g)
        with _autocast(dev):
            _, loss = model(x.to(dev, non_blocking=True), y.to(dev, non_blocking=True))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if run.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), run.grad_clip)
        opt.step()
        pending.append(loss.detach())
        hist.step.append(step + 1)
        hist.tokens.append((step + 1) * tokens_per_step)
        hist.flops.append(flops * hist.tokens[-1])
        hist.seconds.append(time.perf_counter() - start)
        if (step + 1) % run.eval_every == 0 or step + 1 == run.steps:
            hist.train_loss.extend(torch.stack(pending).float().tolist())  # one device sync per eval
            pending.clear()
            _evaluate_into(hist, model, data, run, step + 1, hist.tokens[-1], callbacks)
            bar.set_postfix(val=f"{hist.eval_val[-1]:.3f}")

    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(cfg.seed)
        bar = tqdm(total=sum(runs[s].steps - runs[s].decay_start for s in budgets[:-1]) + budgets[-1],
                   desc=f"width {model.config.width}", leave=False, disable=not cfg.progress or building_book())
        _evaluate_into(hist, model, data, cfg, 0, 0, callbacks)
        for step in range(budgets[-1]):
            for steps in branch_at.get(step, []):
                snapshot = _snapshot(model, opt, g, hist, pending, cuda)
                for s in range(step, steps):
                    step_once(s, runs[steps], bar)
                    bar.update()
                results[steps] = (hist, {k: v.detach().clone() for k, v in model.state_dict().items()})
                hist, pending = _restore(snapshot, model, opt, g, cuda)
            step_once(step, runs[budgets[-1]], bar)
            bar.update()
        bar.close()
    results[budgets[-1]] = (hist, model.state_dict())
    model.eval()
    return dict(sorted(results.items()))


def _snapshot(model, opt, g, hist, pending, cuda) -> dict:
    return {"model": copy.deepcopy(model.state_dict()), "opt": copy.deepcopy(opt.state_dict()),
            "g": g.get_state(), "rng": torch.get_rng_state(),
            "cuda_rng": [torch.cuda.get_rng_state(d) for d in cuda], "hist": copy.deepcopy(hist),
            "pending": list(pending)}


def _restore(snapshot: dict, model, opt, g, cuda) -> tuple[History, list]:
    model.load_state_dict(snapshot["model"])
    opt.load_state_dict(snapshot["opt"])
    g.set_state(snapshot["g"])
    torch.set_rng_state(snapshot["rng"])
    for d, state in zip(cuda, snapshot["cuda_rng"], strict=True):
        torch.cuda.set_rng_state(state, d)
    return snapshot["hist"], snapshot["pending"]


def train_budgets_cached(model_cfg: GPTConfig, cfg: TrainConfig, data, budgets, seed: int = 0,
                         cache: Cache | None = None) -> dict[int, History]:
    """`train_budgets` through the run cache: each budget is stored under the same name as
    `train_cached(model_cfg, replace(cfg, steps=steps), ...)`, so either reads the other's runs."""
    cache = cache or Cache()
    names = {steps: _run_name(model_cfg, replace(cfg, steps=steps), data, seed) for steps in sorted(set(budgets))}
    saved = {steps: cache.load_json(name) for steps, name in names.items()}
    if all(h is not None and cache.path(names[s], ".pt").exists() for s, h in saved.items()):
        return {steps: History.from_dict(h) for steps, h in saved.items()}
    runs = train_budgets(GPT(model_cfg, seed), data, cfg, list(names))
    for steps, (hist, state) in runs.items():
        cache.save_state(names[steps], {k: v.cpu() for k, v in state.items()})
        cache.save_json(names[steps], hist.to_dict())
    return {steps: hist for steps, (hist, _) in runs.items()}


def _run_name(model_cfg: GPTConfig, cfg: TrainConfig, data, seed: int) -> str:
    code = source_fingerprint(lmlab.corpus, lmlab.model, mup, sys.modules[__name__],  # of scaling, only what
                              lmlab.scaling.param_count, lmlab.scaling.flops_per_token)  # a History records
    return "run-" + key(model_cfg.to_dict(), asdict(replace(cfg, progress=True)), data.fingerprint, seed, code)


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
    name = _run_name(model_cfg, cfg, data, seed)
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
