"""Words from numbers: the verbal conclusions the book's prose reads into a measurement.

A sentence such as "the interval excludes 0" or "the gain falls with p" is a claim
about a number, and typed by hand it drifts from the number the next build measures.
Here a measurement carries its interval and how it was made (`Interval`), and the
words the prose uses ("excludes 0" / "holds 0", "above" / "below", "grows" / "falls",
"every" / "none") are computed from it and glued into the page, so they change when
the number does. Where the book asserts a claim, `require` checks it with its margin,
the interval itself, and names it, so that a page can say which assert stands behind
a sentence (`% asserted: NAME` beside it; `tests/test_typed_conclusions.py` checks both).

    gain = claims.paired(p0_losses, best_losses, unit="seeds")   # p = 0 minus the chosen rate
    claims.require("dropout_gain", gain, "above")                # fails unless low > 0
    viz.glue_all(gain.glue("gain", "above", "below", "indistinguishable from"))

The estimate sits in `NAME`, its interval in `NAME_lo` and `NAME_hi`, the number of seeds
or prompts in `NAME_n`, what kind of interval it is in `NAME_ci`, and the word in `NAME_word`.
"""

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lmlab import stats

LOG_ENV = "LMLAB_CLAIMS_LOG"  # a JSON-lines file that every checked claim is appended to (make book sets it)
METHODS = ("t", "bootstrap", "half-sample")
DIRECTIONS = ("above", "below")


@dataclass(frozen=True)
class Interval:
    """A measured quantity (often a difference), its interval, and how the interval was made:
    `method` "t" (Student-t over `n` independent units, n − 1 degrees of freedom), "bootstrap"
    (percentile, over `resamples` resamples of `n` units) or "half-sample" (random halves of the
    `n` units, `resamples` of them); `unit` names what the n are (seeds, prompts, …)."""

    estimate: float
    low: float
    high: float
    n: int
    unit: str = "seeds"
    method: str = "t"
    resamples: int | None = None
    confidence: float = 0.95

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not (isinstance(self.n, (int, np.integer)) and self.n >= 2):
            raise ValueError(f"n must be an integer of at least 2 {self.unit}, got {self.n!r}")
        if self.method != "t" and (self.resamples is None or self.resamples < 1000):
            raise ValueError(f"a {self.method} interval needs resamples ≥ 1000 to be called "
                             f"{self.confidence:.0%}, got {self.resamples!r}")
        if not all(np.isfinite([self.estimate, self.low, self.high])) or not self.low <= self.high:
            raise ValueError(f"an interval needs finite low ≤ high, got [{self.low}, {self.high}]")
        for name in ("estimate", "low", "high"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "n", int(self.n))

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    @property
    def direction(self) -> str | None:
        """"above" when the whole interval is above 0, "below" when below, None when it holds 0."""
        return "above" if self.low > 0 else "below" if self.high < 0 else None

    def word(self, above: str, below: str, neither: str) -> str:
        """`above` if the interval lies above 0, `below` if below, else `neither`."""
        return {"above": above, "below": below, None: neither}[self.direction]

    @property
    def verdict(self) -> str:
        """"excludes 0" or "holds 0"."""
        return self.word("excludes 0", "excludes 0", "holds 0")

    @property
    def kind(self) -> str:
        """What the interval is, in words: its confidence, method, units and degrees of freedom."""
        level = f"{self.confidence:.0%}".replace("%", " %")
        if self.method == "t":
            df = self.n - 1
            return f"{level} t-interval, {self.n} {self.unit} ({df} degree{'s' if df > 1 else ''} of freedom)"
        what = "bootstrap interval" if self.method == "bootstrap" else "half-sample interval"
        return f"{level} {what}, {self.n} {self.unit}, {self.resamples:,} resamples"

    def describe(self, digits: int = 3) -> str:
        """"0.017 [0.004, 0.030] (95 % t-interval, 5 seeds (4 degrees of freedom))"."""
        return f"{self.estimate:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}] ({self.kind})"

    def glue(self, name: str, above: str = "above 0", below: str = "below 0", neither: str = "holds 0") -> dict:
        """The values a page needs, by name: NAME, NAME_lo, NAME_hi, NAME_n, NAME_ci and NAME_word."""
        return {name: self.estimate, f"{name}_lo": self.low, f"{name}_hi": self.high, f"{name}_n": self.n,
                f"{name}_ci": self.kind, f"{name}_word": self.word(above, below, neither),
                f"{name}_verdict_word": self.verdict}


def t(values, unit: str = "seeds", confidence: float = 0.95) -> Interval:
    """The mean of per-unit values (one per seed, say) and its Student-t interval."""
    x = np.asarray(values, dtype=float)
    mean, low, high = stats.t_interval(x, confidence)
    return Interval(mean, low, high, len(x), unit, "t", None, confidence)


def paired(a, b, unit: str = "seeds", confidence: float = 0.95) -> Interval:
    """a − b, unit by unit (two settings at the same seeds), and its Student-t interval."""
    mean, low, high = stats.paired_interval(a, b, confidence)
    return Interval(mean, low, high, len(np.asarray(a)), unit, "t", None, confidence)


def resampled(estimate: float, low: float, high: float, n: int, resamples: int, unit: str = "prompts",
              method: str = "bootstrap", confidence: float = 0.95) -> Interval:
    """An interval from resampling `n` units `resamples` times (bootstrap or random halves)."""
    return Interval(estimate, low, high, n, unit, method, resamples, confidence)


def require(name: str, interval: Interval, direction: str) -> Interval:
    """Assert the claim `name`: the whole interval lies `direction` ("above" or "below") 0, its
    margin being the interval itself. A page names the assert beside its sentence with
    `% asserted: name`. Returns the interval, so a cell can glue it next."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if not isinstance(interval, Interval):
        raise ValueError(f"interval must be a lmlab.claims.Interval, got {type(interval).__name__}")
    _log(name, direction == interval.direction, interval=asdict(interval), reads=direction)
    assert interval.direction == direction, (
        f"claim {name!r} does not hold: it reads the interval as {direction} 0, but it is "
        f"{interval.describe(4)}")
    return interval


def require_that(name: str, condition: bool, detail: object = "") -> None:
    """Assert a claim that is not an interval (an exact equality, a count), by name, so that a page
    can name it beside its sentence as `% asserted: name`. `detail` (what was measured) may be any
    object, a pandas Series say: it is logged and reported as its text."""
    detail = detail if isinstance(detail, str) else str(detail)
    _log(name, bool(condition), detail=detail)
    assert bool(condition), f"claim {name!r} does not hold" + (f": {detail}" if detail else "")


def _log(name: str, holds: bool, **record) -> None:
    """Append the checked claim to `LMLAB_CLAIMS_LOG`, when set: the build's table of claims at the
    published seeds and at a replication offset is read from these files (`claims_table`)."""
    if path := os.environ.get(LOG_ENV):
        from lmlab.seeds import seed_offset

        line = json.dumps({"name": name, "holds": holds, "offset": seed_offset(), **record}, default=_plain)
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError:
            pass  # a log that cannot be written never fails the claim it records


def _plain(value: object) -> float | str:
    """numpy and torch scalars as numbers, anything else as its text: a log never fails a claim."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def claims_table(*logs: str | Path) -> str:
    """A markdown table of every claim in the given logs: one row per claim, one column per log
    (its seed offset), each cell the estimate and interval (or the detail) and whether it held.
    A claim checked several times (one per rate, say) gets a row per check, `name #2` and on."""
    rows, columns = {}, []
    for log in logs:
        seen = {}
        for line in Path(log).read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            column = f"offset {r['offset']}"
            columns += [column] if column not in columns else []
            seen[r["name"]] = seen.get(r["name"], 0) + 1
            name = r["name"] if seen[r["name"]] == 1 else f"{r['name']} #{seen[r['name']]}"
            if "interval" in r:
                i = Interval(**r["interval"])
                cell = f"{i.estimate:.4g} [{i.low:.4g}, {i.high:.4g}], {i.n} {i.unit}, reads {r['reads']}"
            else:
                cell = " ".join((r.get("detail") or "—").split())  # one line per table row
            rows.setdefault(name, {})[column] = cell + ("" if r["holds"] else " **FAILS**")
    head = "| claim | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns)
    body = ["| " + " | ".join([name, *(cells.get(c, "not run") for c in columns)]) + " |"
            for name, cells in rows.items()]
    return "\n".join([head, *body])


if __name__ == "__main__":  # python -m lmlab.claims LOG [LOG ...]: the table of claims, for a closing note
    import sys

    print(claims_table(*sys.argv[1:]))


def trend(values, grows: str = "grows", falls: str = "falls", neither: str = "does not move one way") -> str:
    """`grows` when the values rise at every step, `falls` when they fall at every step, else `neither`."""
    d = np.diff(np.asarray(values, dtype=float))
    if len(d) == 0:
        raise ValueError("values must hold at least two numbers to have a trend")
    return grows if (d > 0).all() else falls if (d < 0).all() else neither


def count(hits: int, total: int, every: str = "every", none: str = "none") -> str:
    """`every` when all `total` count, `none` when none does, else "k of n"."""
    if not (0 <= hits <= total) or total < 1:
        raise ValueError(f"hits must be between 0 and total ≥ 1, got {hits} of {total}")
    return every if hits == total else none if hits == 0 else f"{hits} of {total}"


def compare(a: float, b: float, more: str = "more", less: str = "less", same: str = "the same") -> str:
    """`more` if a > b, `less` if a < b, `same` if equal: for a point comparison the page states as
    an observation (no interval), e.g. the two values of one table row."""
    return more if a > b else less if a < b else same
