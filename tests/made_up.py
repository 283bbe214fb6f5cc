"""Made-up inputs that several test modules draw figures from."""

from lmlab.history import History


def history(n: int) -> History:
    """A made-up History of `n` evaluations, 10 steps apart, each loss one nat below the last."""
    h = History()
    for i in range(n):
        h.eval_step.append(10 * i)
        h.eval_val.append(4.0 - i)
        h.eval_train.append(3.9 - i)
    return h
