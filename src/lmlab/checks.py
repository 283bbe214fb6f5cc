"""Argument checks that fail early with a message naming the argument, the value and the allowed range.

A reader who types a bad value into a notebook should get one clear line, not a
stack of torch internals from deep inside a forward pass, and never a run that
trains happily on a value that makes no sense (a negative clipping norm trains the
model backwards).
"""

import math


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value, low: int = 0) -> None:
    """value must be an integer (not a bool, not 2.0) and at least `low`."""
    if not _is_int(value) or value < low:
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")


def check_positive_int(name: str, value) -> None:
    check_int(name, value, 1)


def check_range(name: str, value, low: float, high: float, *, low_open=False, high_open=False) -> None:
    """value must be a real number between low and high; `*_open` excludes that end. NaN never passes."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


def check_positive(name: str, value) -> None:
    """A finite number > 0 (a learning rate, a multiplier, a standard deviation)."""
    check_range(name, value, 0, math.inf, low_open=True, high_open=True)


def check_fraction(name: str, value, *, low_open=False, high_open=False) -> None:
    check_range(name, value, 0, 1, low_open=low_open, high_open=high_open)


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
