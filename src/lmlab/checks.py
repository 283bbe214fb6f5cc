"""Argument checks that fail early with a message naming the argument, the value and the allowed range.

A reader who types a bad value into a notebook should get one clear line, not a
stack of torch internals from deep inside a forward pass.
"""

import math


def check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer ≥ 1, got {value!r}")


def check_range(name: str, value, low: float, high: float, *, low_open=False, high_open=False) -> None:
    """value must lie between low and high; `*_open` excludes that end."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


def check_fraction(name: str, value, *, low_open=False, high_open=False) -> None:
    check_range(name, value, 0, 1, low_open=low_open, high_open=high_open)


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
