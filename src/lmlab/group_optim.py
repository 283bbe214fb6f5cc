"""AdamW, gradient clipping and loss scaling for a group of runs: each run's own, on stacked tensors.

`torch.optim.AdamW` takes one learning rate per parameter group, but a group of runs
(`lmlab.group`) holds K runs in every tensor, each with its own learning rate, μP
multipliers and weight decay. `GroupAdamW` does AdamW's arithmetic with those numbers as
(K, 1, …) tensors, in the order torch's single-tensor AdamW (what runs on a CPU) does it:
decoupled decay `p *= 1 - lr·wd`, the moments by `lerp_` and `addcmul_`, the bias
corrections computed in double precision per run, eps added after the square root's bias
correction, and the update as `addcdiv_`. Same gradients in, the same weights out, bit for
bit on the CPU (tests/test_group.py checks it against torch's).

Clipping and the fp16 loss scale are per run as well: one run's large gradient is clipped
by its own global norm, and one run's overflow skips that run's step only.
"""

import math

import torch


class GroupAdamW:
    """AdamW over stacked parameters `params` ({name: (K, …) tensor}), whose kind (a row of the μP
    table) is `kinds[name]`; `lr_scale[kind]` and `weight_decay[kind]` hold one number per run."""

    def __init__(self, params: dict, kinds: dict, lr_scale: dict, weight_decay: dict, betas=(0.9, 0.95),
                 eps: float = 1e-8):
        self.params, self.kinds, self.betas, self.eps = params, kinds, tuple(betas), eps
        self.lr_scale, self.weight_decay = lr_scale, weight_decay
        self.exp_avg = {n: torch.zeros_like(p) for n, p in params.items()}
        self.exp_avg_sq = {n: torch.zeros_like(p) for n, p in params.items()}
        self.steps = [0] * len(next(iter(lr_scale.values())))

    @classmethod
    def from_optimizers(cls, params: dict, kinds: dict, optimizers) -> "GroupAdamW":
        """The group's AdamW from each run's own `torch.optim.AdamW` (as `lmlab.mup.optimizer` builds it,
        which holds the μP table): each kind's lr_scale and weight decay, run by run."""
        lr_scale, weight_decay, shared = {}, {}, set()
        for opt in optimizers:
            for group in opt.param_groups:
                lr_scale.setdefault(group["kind"], []).append(group["lr_scale"])
                weight_decay.setdefault(group["kind"], []).append(group["weight_decay"])
                shared.add((tuple(group["betas"]), group["eps"]))
        if len(shared) != 1:
            raise ValueError(f"runs of one group must share betas and eps, got {sorted(shared)}")
        betas, eps = shared.pop()
        return cls(params, kinds, lr_scale, weight_decay, betas, eps)

    def keep(self, index: list[int], params: dict) -> None:
        """Keep the runs at `index`; `params` are the group's parameters after the same cut."""
        at = torch.tensor(index, device=next(iter(params.values())).device)
        self.params = params
        self.exp_avg = {n: t.index_select(0, at) for n, t in self.exp_avg.items()}
        self.exp_avg_sq = {n: t.index_select(0, at) for n, t in self.exp_avg_sq.items()}
        self.lr_scale = {kind: [v[i] for i in index] for kind, v in self.lr_scale.items()}
        self.weight_decay = {kind: [v[i] for i in index] for kind, v in self.weight_decay.items()}
        self.steps = [self.steps[i] for i in index]

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    @torch.no_grad()
    def step(self, lrs: list[float], skip: list[bool] | None = None) -> None:
        """One AdamW step; `lrs[k]` is run k's learning rate now (its schedule's lr × factor, before the μP
        multiplier). A run with `skip[k]` (its scaled gradient overflowed) keeps its weights, moments
        and step count, as torch's GradScaler skips a step."""
        b1, b2 = self.betas
        skipped = [k for k, s in enumerate(skip or ()) if s]
        saved = self._take(skipped)
        self.steps = [n + (k not in skipped) for k, n in enumerate(self.steps)]
        factors = {}
        for kind, scales in self.lr_scale.items():
            rows = []
            for k, (lr0, scale, wd) in enumerate(zip(lrs, scales, self.weight_decay[kind], strict=True)):
                lr, n = lr0 * scale, max(self.steps[k], 1)  # the same double arithmetic as torch's AdamW
                rows.append((-(lr / (1 - b1 ** n)), 1 - lr * wd, (1 - b2 ** n) ** 0.5))
            table = torch.tensor(rows, dtype=torch.float32, device=next(iter(self.params.values())).device)
            factors[kind] = (table.T, any(self.weight_decay[kind]))
        for name, p in self.params.items():
            (neg_step, decay, bc2_sqrt), decays = factors[self.kinds[name]]
            shape = (-1, *[1] * (p.dim() - 1))
            m, v, g = self.exp_avg[name], self.exp_avg_sq[name], p.grad
            if decays:
                p.mul_(decay.view(shape))
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / bc2_sqrt.view(shape)).add_(self.eps)
            p.addcdiv_(m * neg_step.view(shape), denom)
        self._put(skipped, saved)

    def _take(self, runs: list[int]) -> list:
        return [(n, k, self.params[n][k].clone(), self.exp_avg[n][k].clone(), self.exp_avg_sq[n][k].clone())
                for n in self.params for k in runs]

    def _put(self, runs: list[int], saved: list) -> None:
        for n, k, p, m, v in saved:
            self.params[n][k], self.exp_avg[n][k], self.exp_avg_sq[n][k] = p, m, v

    def state(self) -> dict:
        """What a checkpoint keeps (copies)."""
        return {"exp_avg": {n: t.clone() for n, t in self.exp_avg.items()},
                "exp_avg_sq": {n: t.clone() for n, t in self.exp_avg_sq.items()}, "steps": list(self.steps)}

    def load(self, state: dict) -> None:
        self.exp_avg = {n: t.clone() for n, t in state["exp_avg"].items()}
        self.exp_avg_sq = {n: t.clone() for n, t in state["exp_avg_sq"].items()}
        self.steps = list(state["steps"])


@torch.no_grad()
def clip_per_run(params, max_norms: list[float | None]) -> None:
    """`torch.nn.utils.clip_grad_norm_` for each run alone: run k's gradients (row k of every tensor)
    are scaled by min(1, max_norms[k] / (their global norm + 1e-6)); None leaves a run unclipped."""
    if all(m is None for m in max_norms):
        return
    params = list(params)
    norms = torch.stack([torch.linalg.vector_norm(p.grad.flatten(1), dim=1) for p in params], dim=1)
    total = torch.linalg.vector_norm(norms, dim=1)
    limit = torch.tensor([math.inf if m is None else m for m in max_norms], dtype=total.dtype, device=total.device)
    coef = (limit / (total + 1e-6)).clamp(max=1.0)
    for p in params:
        p.grad.mul_(coef.view(-1, *[1] * (p.dim() - 1)))


class GroupScaler:
    """torch.amp.GradScaler's dynamic loss scale, one per run (fp16 autocast only; disabled, it does
    nothing and never reads a value back from the device)."""

    def __init__(self, runs: int, enabled: bool, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000):
        self.enabled, self.growth, self.backoff, self.interval = enabled, growth_factor, backoff_factor, growth_interval
        self.scales, self.trackers = [init_scale] * runs, [0] * runs

    def scale(self, losses: torch.Tensor) -> torch.Tensor:
        """The sum of the runs' losses to differentiate, each times its own scale."""
        if not self.enabled:
            return losses.sum()
        return (losses * torch.tensor(self.scales, dtype=losses.dtype, device=losses.device)).sum()

    @torch.no_grad()
    def unscale(self, params) -> list[bool] | None:
        """Divide each run's gradients by its scale; which runs overflowed (None when disabled)."""
        if not self.enabled:
            return None
        params = list(params)
        inv = torch.tensor([1.0 / s for s in self.scales], dtype=torch.float32, device=params[0].grad.device)
        bad = torch.zeros(len(self.scales), dtype=torch.bool, device=inv.device)
        for p in params:
            p.grad.mul_(inv.view(-1, *[1] * (p.dim() - 1)))
            bad |= ~torch.isfinite(p.grad.flatten(1)).all(dim=1)
        return bad.tolist()

    def update(self, found_inf: list[bool] | None) -> None:
        """GradScaler.update, run by run: back off after an overflow, grow after `growth_interval` clean steps."""
        if not self.enabled:
            return
        for k, bad in enumerate(found_inf):
            if bad:
                self.scales[k], self.trackers[k] = self.scales[k] * self.backoff, 0
            elif self.trackers[k] + 1 == self.interval:
                self.scales[k], self.trackers[k] = self.scales[k] * self.growth, 0
            else:
                self.trackers[k] += 1

    def keep(self, index: list[int]) -> None:
        self.scales, self.trackers = [self.scales[i] for i in index], [self.trackers[i] for i in index]
