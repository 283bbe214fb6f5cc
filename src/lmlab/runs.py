"""A training run described once, and the run cache that trains each description only once.

`RunSpec` is the whole description of a run: the model, the training recipe, the
slice of Shakespeare it trains on, and one seed, which sets the initialisation, the
order of the training batches and the dropout masks. The sweep runner, its worker
processes, the run cache and the live panels all take one; a chapter's knob is a
field of it (`spec.replace(dropout=0.2)`).

`trained(spec)` returns the model and its History, training only when the run cache
has no identical run: the cache key covers the spec, the data's fingerprint and the
source of every module that shapes a run, so any change trains afresh and chapters
share models (chapter 6 reads chapters 4's and 5's runs back). `stopped(spec, step)` is the same
run's model at an earlier step (early stopping), retrained to that step once and stored beside it.

One run has one key, however it is spelled: a RunSpec writes every float setting as a
float (`dropout=0`, `0.0` and `-0.0` are one rate), and the key writes the base width and
head count in one form (`key_form`), so the same numbers are always found and a different
setting never is.
"""

import functools
import sys
import typing
from dataclasses import asdict, dataclass, field, fields, replace

import lmlab.corpus
import lmlab.device
import lmlab.group
import lmlab.group_optim
import lmlab.group_train
import lmlab.history
import lmlab.model
import lmlab.mup
from lmlab.cache import Cache, key, source_fingerprint
from lmlab.checks import check_fraction, check_int, check_positive_int, check_seed
from lmlab.corpus import ALL, CharDataset, shakespeare
from lmlab.device import device
from lmlab.history import History
from lmlab.model import GPT, GPTConfig
from lmlab.train import TrainConfig, train, train_budgets, train_until


@functools.lru_cache(maxsize=4)
def dataset(val_fraction: float = 0.1, train_chars: int | None = ALL) -> CharDataset:
    """The Shakespeare dataset runs train on, built once per process: whole plays held out for
    validation, and the first `train_chars` training characters (ALL: every one)."""
    return CharDataset(shakespeare(), val_fraction=val_fraction, train_chars=train_chars)


def plain(config):
    """`config` (a GPTConfig or TrainConfig) with every float setting written as a plain float:
    `dropout=0` and `0.0` (and `-0.0`, and numpy's float64) are one run, so they must be one
    cache key, and a key is written from the values' JSON (`0` and `0.0` differ there)."""
    hints = typing.get_type_hints(type(config))
    changes = {}
    for f in fields(config):
        value, kinds = getattr(config, f.name), typing.get_args(hints[f.name]) or (hints[f.name],)
        if float not in kinds or value is None:
            continue
        # + 0.0: -0.0 becomes 0.0, the same rate of dropout or decay
        changes[f.name] = tuple(float(v) + 0.0 for v in value) if isinstance(value, tuple) else float(value) + 0.0
    return replace(config, **changes)


def key_form(cfg: GPTConfig) -> dict:
    """The model as the run cache names it, one spelling per model. `base_heads` is None where it
    equals `heads` (what None means). `base_width` is the width it stands for (None means the
    model's own width) where the parametrization reads it, and None where no rule of
    `lmlab.mup.RULES` does (SP: every exponent 0, so any base width gives the same numbers, bit
    for bit). These are the spellings the book's runs were first stored under, so their
    entries keep their names: SP runs with no base, μP runs with their base width written."""
    d = cfg.to_dict()
    reads_base = any(rule.init or rule.lr or rule.mult for rule in lmlab.mup.RULES[cfg.param].values())
    if not reads_base:
        d.update(base_width=None, base_heads=None)
    else:
        d["base_width"] = cfg.base_width or cfg.width
        d["base_heads"] = None if cfg.base_heads == cfg.heads else cfg.base_heads
    return d


@dataclass(frozen=True)
class RunSpec:
    """One training run (or, with `budgets`, a WSD family of runs that share a stable phase).

    `seed` sets the initialisation, the data order and the dropout masks: two seeds are two
    independent runs of the same setting.
    """

    model: GPTConfig
    train: TrainConfig
    train_chars: int | None = ALL  # the first this many training characters; ALL: every one
    val_fraction: float = 0.1
    seed: int = 0
    budgets: tuple[int, ...] = field(default=())  # a WSD family: one run per step budget; () means train.steps

    def __post_init__(self):
        if not isinstance(self.model, GPTConfig) or not isinstance(self.train, TrainConfig):
            raise ValueError(f"model must be a GPTConfig and train a TrainConfig, got {type(self.model).__name__} "
                             f"and {type(self.train).__name__}")
        if self.train_chars is not ALL:
            check_positive_int("train_chars", self.train_chars)
        check_fraction("val_fraction", self.val_fraction, low_open=True, high_open=True)
        check_seed("seed", self.seed)
        object.__setattr__(self, "model", plain(self.model))  # one spelling per number: one cache key
        object.__setattr__(self, "train", plain(self.train))
        object.__setattr__(self, "budgets", tuple(sorted(set(self.budgets))))
        for steps in self.budgets:
            check_positive_int("budgets", steps)
            replace(self.train, steps=steps)  # each budget is a valid run, warmup included
        if self.budgets and self.train.schedule != "wsd":
            raise ValueError(f"budgets share a stable phase, so the schedule must be 'wsd', got "
                             f"{self.train.schedule!r}")

    def replace(self, **changes) -> "RunSpec":
        """A copy with some fields changed, each routed to where it lives: a GPTConfig field
        (width, dropout, …) to the model, a TrainConfig field (steps, lr, …) to the recipe, the
        rest (train_chars, seed, budgets, …) to the spec itself."""
        model_names, train_names = {f.name for f in fields(GPTConfig)}, {f.name for f in fields(TrainConfig)}
        own = {f.name for f in fields(RunSpec)}
        unknown = set(changes) - model_names - train_names - own
        if unknown:
            raise ValueError(f"unknown run setting(s) {sorted(unknown)}; a RunSpec takes the fields of GPTConfig, "
                             f"TrainConfig and {sorted(own)}")
        model = replace(self.model, **{k: v for k, v in changes.items() if k in model_names})
        train = replace(self.train, **{k: v for k, v in changes.items() if k in train_names})
        return replace(self, model=model, train=train, **{k: v for k, v in changes.items() if k in own})

    def data(self) -> CharDataset:
        return dataset(self.val_fraction, self.train_chars)

    def runs(self) -> list["RunSpec"]:
        """The single runs this spec describes: itself, or one per budget of a WSD family."""
        if not self.budgets:
            return [self]
        return [self.replace(steps=steps, budgets=()) for steps in self.budgets]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        return cls(model=GPTConfig(**d["model"]), train=TrainConfig(**d["train"]),
                   **{k: v for k, v in d.items() if k not in ("model", "train")})


def shaping_code() -> tuple:
    """The modules whose source shapes a run's numbers (not this module: it only names them).
    Whatever caches a run's results keys them by all of these, as the run cache does."""
    return (lmlab.corpus, lmlab.model, lmlab.mup, lmlab.device, lmlab.history,
            sys.modules["lmlab.train"],  # the attribute lmlab.train is the function
            lmlab.group, lmlab.group_optim, lmlab.group_train)  # a run may have trained in a group


def _code() -> str:
    return source_fingerprint(*shaping_code())


def run_name(spec: RunSpec, data: CharDataset) -> str:
    """The run cache's name for one run of `spec` on `data`: a run written two ways that trains
    the same numbers (`key_form`) has one name."""
    if spec.budgets:
        raise ValueError("run_name takes one run; a spec with budgets names one run per budget (spec.runs())")
    one = spec.replace(progress=True)  # a progress bar changes nothing that is stored
    return "run-" + key(key_form(one.model), asdict(one.train), data.fingerprint, one.seed, _code())


def trained(spec: RunSpec, callbacks=(), cache: Cache | None = None, data: CharDataset | None = None
            ) -> tuple[GPT, History]:
    """The model (on `lmlab.device()`, in eval mode) and History of the run `spec`, from the run
    cache, or trained now and stored. `data` replaces the spec's Shakespeare slice (tests use a
    tiny text); its fingerprint is part of the key. Callbacks see every evaluation of a run
    trained now, and the whole history once for a cached one."""
    if spec.budgets:
        raise ValueError("trained() takes a spec of one run; a spec with budgets is a family (train_family)")
    cache, data = cache or Cache(), data or spec.data()
    name = run_name(spec, data)
    model = GPT(spec.model, spec.seed)
    loaded = cache.load_run(name, model, History.from_dict)
    if loaded is not None:
        for callback in callbacks:
            callback(loaded)
        return model.to(device()).eval(), loaded
    hist = train(model, data, spec.train, spec.seed, callbacks)
    cache.save_run(name, model.state_dict(), hist.to_dict())
    return model, hist


def stopped(spec: RunSpec, step: int, cache: Cache | None = None, data: CharDataset | None = None
            ) -> tuple[GPT, History]:
    """The model (on `lmlab.device()`, in eval mode) and History of the run `spec` stopped after
    `step` steps (early stopping): the same run retrained from its start to `step`
    (`lmlab.train.train_until`), stored in the run cache under the run's name and the step, so it
    trains once. At the last step it is the run `trained(spec)` gives (to the bit when both trained
    alone; a run trained in a group agrees to about 1e-4 relative)."""
    if spec.budgets:
        raise ValueError("stopped() takes a spec of one run; a spec with budgets is a family")
    check_int("step", step, 0)
    if step > spec.train.steps:
        raise ValueError(f"step must be at most the run's {spec.train.steps} steps, got {step}")
    cache, data = cache or Cache(), data or spec.data()
    name = f"{run_name(spec, data)}-step{step}"
    model = GPT(spec.model, spec.seed)
    loaded = cache.load_run(name, model, History.from_dict)
    if loaded is not None:
        return model.to(device()).eval(), loaded
    hist = train_until(model, data, spec.train, spec.seed, stop=step).history
    cache.save_run(name, model.state_dict(), hist.to_dict())
    return model, hist


def train_family(spec: RunSpec, cache: Cache | None = None, data: CharDataset | None = None) -> dict[int, History]:
    """The History of every run of a WSD family (`spec.budgets`), from the run cache or trained now
    in one pass (`train_budgets`); each budget is stored as `trained(run)` stores it, so either
    reads the other's runs."""
    cache, data = cache or Cache(), data or spec.data()
    runs = {run.train.steps: run for run in spec.runs()}
    names = {steps: run_name(run, data) for steps, run in runs.items()}
    model = GPT(spec.model, spec.seed)
    saved = {steps: cache.load_run(name, model, History.from_dict) for steps, name in names.items()}
    if all(h is not None for h in saved.values()):
        return saved
    family = train_budgets(GPT(spec.model, spec.seed), data, spec.train, list(runs), spec.seed)
    for steps, (hist, state) in family.items():
        cache.save_run(names[steps], state, hist.to_dict())
    return {steps: hist for steps, (hist, _) in family.items()}
