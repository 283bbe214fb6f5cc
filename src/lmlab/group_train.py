"""The training loop for a group of same-shape runs: `lmlab.train`'s loop, K runs per step.

`train_group(models, data, cfgs, seeds)` is `[train(m, data, c, s) for …]` in one batched
model (`lmlab.group`): each run draws its batches from its own generator seeded with its
seed, exactly as `train_until` does, and its dropout masks from another, its learning rate
follows its own schedule and μP multipliers (`lmlab.group_optim`), its gradient is clipped
by its own norm, and it is evaluated on the same fixed batches as a run trained alone. A run
whose loss stops being finite, or whose evaluation rises above the `DIVERGED` bar, leaves
the group at the evaluation where `train` would have raised: its result is that
`TrainingDiverged`, and the others train on without it.

`train_group_budgets` is `train_budgets` for a group: WSD families that share their stable
phase, one family per run, every budget's run what `train` would give.

Each run's `History.seconds` is its share of the group's wall time (the time of each step
divided by the runs in it), so seconds summed over a group's runs are the time it took.
"""

import copy
import math
import time
from dataclasses import replace

import torch
from tqdm.auto import tqdm

from lmlab import mup
from lmlab.budget import building_book
from lmlab.checks import check_int, check_range
from lmlab.corpus import eval_windows, windows
from lmlab.device import device, precision
from lmlab.group import GroupGPT, check_group
from lmlab.group_optim import GroupAdamW, GroupScaler, clip_per_run
from lmlab.history import History
from lmlab.model import flops_per_token
from lmlab.train import DIVERGED, TrainingDiverged, check_vocab


class GroupRun:
    """A group of runs at some step: the batched model, its optimizer and loss scales, each run's
    generators, config and History, and the results of the runs that have left (diverged).
    `index[j]` is the position, in the lists the group was made from, of the j-th run still in it."""

    def __init__(self, models, data, cfgs, seeds):
        check_group(models, cfgs, seeds)
        models, cfgs, seeds = list(models), list(cfgs), list(seeds)
        for i, seed in enumerate(seeds):
            check_int(f"seeds[{i}]", seed)
        for model in models:
            check_vocab(model, data)
        first, ctx = cfgs[0], models[0].config.ctx
        windows(data.train.ids, 1, ctx, torch.Generator(), what="the train split")  # ctx fits the text
        self.dev = device()
        self.precision = precision(self.dev)
        self.model = GroupGPT(models, self.dev)
        self.opt = GroupAdamW.from_optimizers(self.model.params, self.model.kinds,
                                              [mup.optimizer(m, c.lr, c.weight_decay, c.betas)
                                               for m, c in zip(models, cfgs, strict=True)])
        self.scaler = GroupScaler(len(models), self.precision.grad_scaler)
        self.batches = [torch.Generator().manual_seed(s) for s in seeds]  # the order of the training batches
        self.masks = [torch.Generator(device=self.dev).manual_seed(s) for s in seeds]  # the dropout masks
        self.cfgs, self.index, self.step = cfgs, list(range(len(models))), 0
        self.hists, self.seconds = [History() for _ in models], [0.0] * len(models)
        self.left: dict[int, TrainingDiverged] = {}
        self.ctx, self.batch_size, self.steps = ctx, first.batch_size, first.steps
        self.flops = flops_per_token(models[0].config)

    # ---------------------------------------------------------------- training

    def start(self, data, callbacks=()) -> None:
        """The evaluation at step 0, as `train_until` makes it before the first step."""
        self._evaluate_into(data, 0, callbacks)

    def run(self, data, stop: int, callbacks=()) -> None:
        """Train every run still in the group from the current step up to `stop`."""
        check_range("stop", stop, self.step, self.steps)
        bar = tqdm(total=stop - self.step, desc=f"group of {len(self.index)}, width {self.model.config.width}",
                   leave=False, disable=not any(c.progress for c in self.cfgs) or building_book())
        tokens_per_step, last, losses = self.batch_size * self.ctx, time.perf_counter(), []
        for step in range(self.step, stop):
            if not self.index:
                break
            x, y = self._batch(data)
            with self.precision.autocast():
                _, loss = self.model.forward(x, y, self.masks)
            self.opt.zero_grad()
            self.scaler.scale(loss).backward()
            params = self.model.params.values()
            overflow = self.scaler.unscale(params)
            clip_per_run(params, [c.grad_clip for c in self.cfgs])
            self.opt.step([c.lr * c.lr_factor(step) for c in self.cfgs], overflow)
            self.scaler.update(overflow)
            losses.append(loss.detach())
            now = time.perf_counter()
            share, last = (now - last) / len(self.index), now
            for j, hist in enumerate(self.hists):
                self.seconds[j] += share
                hist.step.append(step + 1)
                hist.tokens.append((step + 1) * tokens_per_step)
                hist.flops.append(self.flops * hist.tokens[-1])
                hist.seconds.append(self.seconds[j])
            self.step = step + 1
            bar.update()
            if (step + 1) % self.cfgs[0].eval_every == 0 or step + 1 == self.steps:
                self._record_losses(losses)
                self._evaluate_into(data, step + 1, callbacks)
        self._record_losses(losses)
        self.step = stop
        bar.close()

    def _batch(self, data):
        """Each run's training batch from its own generator: `CharDataset.batch`'s draw (the same starts
        from the same generator state, the same windows), gathered for all runs at once."""
        ids = data.train.ids
        starts = torch.stack([torch.randint(len(ids) - self.ctx, (self.batch_size,), generator=g)
                              for g in self.batches])
        w = ids[starts[..., None] + torch.arange(self.ctx + 1)].long()
        return w[..., :-1].to(self.dev, non_blocking=True), w[..., 1:].to(self.dev, non_blocking=True)

    def _record_losses(self, losses: list) -> None:
        """Move this stretch's training losses into the histories; a run whose loss stopped being finite
        leaves the group, with the step at which it did."""
        if not losses:
            return
        values = torch.stack(losses).float().T.tolist()  # one row per run
        losses.clear()
        gone = {}
        for j, (hist, row) in enumerate(zip(self.hists, values, strict=True)):
            first = len(hist.train_loss)
            hist.train_loss.extend(row)
            bad = next((i for i, v in enumerate(row) if not math.isfinite(v)), None)
            if bad is not None:
                gone[j] = TrainingDiverged(first + bad + 1, row[bad], self.cfgs[j])
        self._leave(gone)

    # ---------------------------------------------------------------- evaluation

    @torch.no_grad()
    def evaluate(self, data) -> list[dict[str, float]]:
        """Every run's mean loss on the same fixed batches of each split, in eval mode (`evaluate`'s)."""
        K, cfg = len(self.index), self.cfgs[0]
        losses = [{} for _ in range(K)]
        self.model.training = False
        try:
            with self.precision.autocast():
                for split in ("train", "val"):
                    per_batch = [self.model.forward(*(t.to(self.dev).expand(K, -1, -1) for t in batch))[1]
                                 for batch in eval_windows(getattr(data, split).ids, cfg.batch_size, self.ctx,
                                                           cfg.eval_batches)]
                    values = torch.stack(per_batch).tolist()  # one row per batch
                    for j in range(K):
                        losses[j][split] = sum(row[j] for row in values) / cfg.eval_batches
        finally:
            self.model.training = True
        return losses

    def _evaluate_into(self, data, step: int, callbacks) -> None:
        if not self.index:
            return
        gone = {}
        for j, (hist, losses) in enumerate(zip(self.hists, self.evaluate(data), strict=True)):
            # train's bar: 10 × uniform guessing, or the run's own first loss where it starts above that
            start = hist.eval_val[0] if hist.eval_val else math.inf
            limit = max(DIVERGED * math.log(self.model.config.vocab_size), start)
            bad = next((v for v in losses.values() if not math.isfinite(v) or v > limit), None)
            if bad is not None:
                gone[j] = TrainingDiverged(step, bad, self.cfgs[j])
                continue
            hist.eval_step.append(step)
            hist.eval_tokens.append(step * self.batch_size * self.ctx)
            hist.eval_train.append(losses["train"])
            hist.eval_val.append(losses["val"])
        self._leave(gone)
        for j, hist in enumerate(self.hists):
            for callback in callbacks:
                callback(self.index[j], hist)

    def _leave(self, gone: dict[int, TrainingDiverged]) -> None:
        """Runs `gone` (positions in the group now) stop; the others go on without them."""
        if not gone:
            return
        for j, error in gone.items():
            error.history = self.hists[j]  # what it measured up to there
            self.left[self.index[j]] = error
        keep = [j for j in range(len(self.index)) if j not in gone]
        if keep:
            self.model.keep(keep)
            self.opt.keep(keep, self.model.params)
        self.scaler.keep(keep)
        for name in ("cfgs", "index", "hists", "seconds", "batches", "masks"):
            setattr(self, name, [getattr(self, name)[j] for j in keep])

    # ---------------------------------------------------------------- results

    def branch(self) -> "GroupRun":
        """An independent copy (a checkpoint): training it leaves this one where it is."""
        twin = copy.copy(self)
        twin.model = copy.copy(self.model)
        twin.model.params = {n: p.detach().clone().requires_grad_() for n, p in self.model.params.items()}
        twin.opt = copy.copy(self.opt)
        twin.opt.params = twin.model.params
        twin.opt.load(self.opt.state())
        twin.scaler = copy.deepcopy(self.scaler)
        twin.batches = [torch.Generator().set_state(g.get_state()) for g in self.batches]
        twin.masks = [torch.Generator(device=self.dev).set_state(g.get_state()) for g in self.masks]
        twin.cfgs, twin.index, twin.seconds = list(self.cfgs), list(self.index), list(self.seconds)
        twin.hists, twin.left = copy.deepcopy(self.hists), dict(self.left)
        return twin

    def results(self) -> list:
        """For every run the group was made with: its History, or the TrainingDiverged that stopped it."""
        done = {i: hist for i, hist in zip(self.index, self.hists, strict=True)}
        return [done.get(i) or self.left[i] for i in range(len(done) + len(self.left))]

    def state_dicts(self) -> dict[int, dict]:
        """{position: final weights in `GPT.state_dict()`'s format} of the runs that finished."""
        return {i: self.model.state_dict(j) for j, i in enumerate(self.index)}

    def load_into(self, models) -> None:
        """Write each finished run's weights into its model (on `lmlab.device()`, in eval mode), as
        `train` leaves a model trained; a diverged run's model is left as it was."""
        for i, state in self.state_dicts().items():
            models[i].load_state_dict(state)
        for model in models:
            model.to(self.dev).eval()


def train_group(models, data, cfgs, seeds, callbacks=()) -> list:
    """Train `models[i]` under `cfgs[i]` with `seeds[i]`, all at once, as `lmlab.train.train` trains each
    alone. Returns, per run, its History or the TrainingDiverged that stopped it (the others train on).
    Each callback is called as `callback(i, history)` after every evaluation of run i."""
    group = GroupRun(models, data, cfgs, seeds)
    group.start(data, callbacks)
    group.run(data, group.steps, callbacks)
    group.load_into(models)
    return group.results()


def train_group_budgets(models, data, cfgs, seeds, budgets) -> list[dict]:
    """`lmlab.train.train_budgets` for a group: each run's WSD family over `budgets`, all runs sharing
    every step, each budget's cooldown branching off the shared stable phase. Returns, per run,
    {steps: (History, final state_dict)} or {steps: TrainingDiverged}: a run that diverges in the
    stable phase fails that budget and every longer one, in a cooldown only that budget. The models
    end as their longest run."""
    check_group(models, cfgs, seeds)
    budgets, cfgs = sorted(set(budgets)), list(cfgs)
    if not budgets:
        raise ValueError("budgets must not be empty")
    for i, cfg in enumerate(cfgs):
        if getattr(cfg, "schedule", None) != "wsd":
            raise ValueError(f"a WSD family shares a stable phase, so cfgs[{i}].schedule must be 'wsd', "
                             f"got {getattr(cfg, 'schedule', None)!r}")
    results, stable, end = [{} for _ in cfgs], None, None
    for steps in budgets:
        runs = [replace(c, steps=steps) for c in cfgs]  # validates each budget, warmup included
        if stable is None:
            stable = GroupRun(models, data, runs, seeds)
            stable.start(data)
        stable.cfgs, stable.steps = [runs[i] for i in stable.index], steps
        stable.run(data, runs[0].decay_start)
        end = stable.branch()
        end.run(data, steps)
        states = end.state_dicts()
        for i, outcome in enumerate(end.results()):
            results[i][steps] = (outcome, states[i]) if i in states else outcome
    end.load_into(models)
    return results
