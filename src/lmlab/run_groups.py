"""Many runs of the run cache at once: the missing ones trained in groups of one shape.

`trained_all(specs)` is `[trained(s) for s in specs]` (and `train_family` for a spec with
budgets) for a whole list: it reads every run the cache has, sorts the rest by what a group
must share (`shape`: the tensors' shapes, the loop's shape, the text and the budgets), and
trains each such set as a few batched models (`lmlab.group_train`), `group_size` runs at a
time. Every run is stored under its own `run_name`, as if trained alone, so a slider, a
notebook or another chapter finds it by its spec; a run that diverged is reported, not stored.

Chapters never call this with batching in mind: `sweep.run(specs, sweep.train_spec)` hands it
the specs a sweep lacks, and a notebook that needs many runs asks for them in one list.
"""

import math
from collections import defaultdict

import torch

from lmlab import footprint
from lmlab.cache import Cache
from lmlab.device import device, precision
from lmlab.group import group_key
from lmlab.group_train import train_group, train_group_budgets
from lmlab.history import History
from lmlab.model import GPT, param_count
from lmlab.runs import RunSpec, run_name, train_family, trained
from lmlab.train import TrainingDiverged

# On a CPU a group does not pay: alone, a group of 4 saves 5-15 % per run-step up to width 64 and
# nothing from 128 (benchmarks/group_throughput.py), and in the book, with two workers each running a
# group side by side, chapter 4 took 773 s against 739 with its runs alone (benchmarks/README.md). So a
# CPU trains every run alone, through `trained`; tests set CPU_GROUP to check the group path here.
# An accelerator, where a small model's step is launch overhead, wants big groups.
CPU_GROUP = 1
GPU_GROUP = 32  # on an accelerator, as many as memory allows up to this
MEMORY_SHARE = 0.5  # the share of free memory one group may plan on


def shape(spec: RunSpec) -> tuple:
    """What specs must share to train in one group: the tensors' and the loop's shapes
    (`lmlab.group.group_key`), the slice of text, and the budgets of a WSD family."""
    return group_key(spec.model, spec.train), spec.train_chars, spec.val_fraction, spec.budgets


def group_size(spec: RunSpec, dev: torch.device | None = None) -> int:
    """How many runs of `spec`'s shape train in one group on `dev`: `CPU_GROUP` on a CPU, up to
    `GPU_GROUP` elsewhere, and never more than half the free memory holds (at least 1)."""
    dev = dev or device()
    most = CPU_GROUP if dev.type == "cpu" else GPU_GROUP
    autocast = precision(dev).autocast_dtype is not None
    mem = footprint.training_memory(spec.model, param_count(spec.model, non_embedding=False), dev, autocast)
    one = mem["states"] + spec.train.batch_size * mem["per_sample"]
    have, _ = footprint.available_memory(dev)
    return max(1, min(most, int(MEMORY_SHARE * have // one)))


def chunks(items: list, size: int) -> list[list]:
    """`items` cut into the fewest pieces of at most `size`, as equal as they can be (9 by at most 8: 4 and 5)."""
    if not items:
        return []
    parts = math.ceil(len(items) / size)
    cuts = [round(k * len(items) / parts) for k in range(parts + 1)]
    return [items[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]


def batches(specs: list[RunSpec]) -> list[list[int]]:
    """Positions of `specs` in the sets that train together: one set per shape, cut to `group_size`,
    the costliest first (so a pool finishes them evenly). The sets depend on the specs alone, never
    on how many workers a sweep has: a run's last bits depend on the group it trained in, and the
    same sweep on another pool or cluster must give the same numbers."""
    by_shape = defaultdict(list)
    for i, spec in enumerate(specs):
        by_shape[shape(spec)].append(i)
    sets = [part for index in by_shape.values() for part in chunks(index, group_size(specs[index[0]]))]
    return sorted(sets, key=lambda s: -len(s) * _cost(specs[s[0]]))


def _cost(spec: RunSpec) -> float:
    steps = max(spec.budgets, default=spec.train.steps)
    return steps * spec.train.batch_size * spec.model.ctx * (param_count(spec.model) + 1)


def trained_all(specs, cache: Cache | None = None) -> list[dict[int, History | TrainingDiverged]]:
    """For each spec, {steps: History} of its run (or of each budget of a WSD family), read from
    the run cache, or trained now in groups of one shape and stored; a run that diverged gives
    its `TrainingDiverged` in place of a History (and is not stored)."""
    specs, cache = list(specs), cache or Cache()
    for i, spec in enumerate(specs):
        if not isinstance(spec, RunSpec):
            raise ValueError(f"specs[{i}] must be a lmlab.runs.RunSpec, got {type(spec).__name__}")
    out, missing = [], defaultdict(list)
    for i, spec in enumerate(specs):
        data = spec.data()
        have = {run.train.steps: cache.load_run(run_name(run, data), GPT(run.model, run.seed), History.from_dict)
                for run in spec.runs()}
        out.append(have)
        if any(h is None for h in have.values()):
            missing[shape(spec)].append(i)
    for index in missing.values():
        for part in chunks(index, group_size(specs[index[0]])):
            for i, result in zip(part, _train([specs[i] for i in part], cache), strict=True):
                out[i] = result
    return out


def _train(specs: list[RunSpec], cache: Cache) -> list[dict]:
    """Train specs of one shape as one group (one spec: alone, as `trained` does), store each run
    that finished, and give each spec's {steps: History or TrainingDiverged}."""
    data, first = specs[0].data(), specs[0]
    if len(specs) == 1:
        try:
            if first.budgets:
                return [train_family(first, cache, data)]
            return [{first.train.steps: trained(first, cache=cache, data=data)[1]}]
        except TrainingDiverged as error:
            return [dict.fromkeys(first.budgets or (first.train.steps,), error)]
    models = [GPT(s.model, s.seed) for s in specs]
    cfgs, seeds = [s.train for s in specs], [s.seed for s in specs]
    if not first.budgets:
        results = train_group(models, data, cfgs, seeds)
        done = [{s.train.steps: (r, m.state_dict()) if isinstance(r, History) else r}
                for s, r, m in zip(specs, results, models, strict=True)]
    else:
        done = train_group_budgets(models, data, cfgs, seeds, list(first.budgets))
    out = []
    for spec, runs in zip(specs, done, strict=True):
        one = {}
        for run in spec.runs():
            result = runs[run.train.steps]
            if isinstance(result, tuple):
                hist, state = result
                cache.save_run(run_name(run, data), state, hist.to_dict())
                result = hist
            one[run.train.steps] = result
        out.append(one)
    return out
