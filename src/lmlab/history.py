"""What a run measured: its losses, step by step and evaluation by evaluation.

A History is what the run cache stores beside the weights, so reading one back checks
it: a stored history with missing keys, no steps or a NaN is not a run to serve.
"""

import math
from dataclasses import asdict, dataclass, field, fields


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
    def from_dict(cls, d) -> "History":
        """A History from `to_dict`'s output, checked: the right keys, at least one step and one
        evaluation, lists of matching lengths, finite numbers. Raises ValueError saying what is wrong."""
        names = [f.name for f in fields(cls)]
        if not isinstance(d, dict) or set(d) != set(names):
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"a History needs exactly the keys {names}, got {got}")
        for name in names:
            if not isinstance(d[name], list) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in d[name]):
                raise ValueError(f"History.{name} must be a list of finite numbers")
        per_step, per_eval = names[:5], names[5:]
        if not d["step"] or len({len(d[n]) for n in per_step}) != 1:
            raise ValueError(f"History's per-step lists {per_step} must be non-empty and of one length")
        if not d["eval_step"] or len({len(d[n]) for n in per_eval}) != 1:
            raise ValueError(f"History's per-evaluation lists {per_eval} must be non-empty and of one length")
        return cls(**d)
