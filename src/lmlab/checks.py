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
        raise ValueError(f"{name} must be an integer ≥ {low}, got {_shown(value)}")


def check_positive_int(name: str, value) -> None:
    check_int(name, value, 1)


SEED_MAX = 2**63 - 1  # torch.manual_seed and numpy take a 64-bit seed; the signed range leaves seed + offset room


def check_seed(name: str, value) -> None:
    """value must be an integer seed in [0, 2**63 − 1]: a larger one passes every other check and
    fails much later, deep in torch, with "Overflow when unpacking long long"."""
    if not _is_int(value) or not 0 <= value <= SEED_MAX:
        raise ValueError(f"{name} must be an integer in [0, 2**63 - 1] (a 64-bit seed, as torch.manual_seed "
                         f"takes), got {_shown(value)}")


def _shown(value) -> str:
    """repr(value), but an integer too long to read as its size (10**400 has 401 digits)."""
    if _is_int(value) and abs(value) >= 10**20:
        return f"{'-' if value < 0 else ''}an integer of {len(str(abs(value)))} digits"
    return repr(value)


def _real(value) -> float | None:
    """value as a float, or None where it is no real number (a bool, a string, NaN) or one no
    float holds (10**400: torch and math raise OverflowError on it)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return None if math.isnan(value) else value


def check_range(name: str, value, low: float, high: float, *, low_open=False, high_open=False) -> None:
    """value must be a real number between low and high; `*_open` excludes that end. NaN never
    passes, nor an integer too large for a float."""
    x = _real(value)
    ok = x is not None  # then compared as given: Python compares an int with a float exactly
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        big = " (too large for a float)" if _is_int(value) and x is None else ""
        raise ValueError(f"{name} must be in {interval}, got {_shown(value)}{big}")


def check_positive(name: str, value) -> None:
    """A finite number > 0 (a learning rate, a multiplier, a standard deviation)."""
    check_range(name, value, 0, math.inf, low_open=True, high_open=True)


def check_fraction(name: str, value, *, low_open=False, high_open=False) -> None:
    check_range(name, value, 0, 1, low_open=low_open, high_open=high_open)


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
