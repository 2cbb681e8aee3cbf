"""Argument types with bounds: a bad flag value is one ``emo: error:`` line before anything runs.

Sizes that would exhaust the machine have upper bounds, stated in each flag's help by the command.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An int within [low, high] (either bound optional)."""
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is outside the range {_bound(low)}..{_bound(high)}")
        return value
    parse.__name__ = "integer"
    # A function attribute (no typed way to declare one): state_bounds() reads it for --help.
    setattr(parse, "bounds", f"{_bound(low)}..{_bound(high)}")
    return parse


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False) -> Callable[[str], float]:
    """A finite float within [low, high] (``low_open``: > low); NaN and inf are refused."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        below = low is not None and (value <= low if low_open else value < low)
        if below or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value:g} is outside the range "
                                             f"{'>' if low_open else ''}{_bound(low)}..{_bound(high)}")
        return value
    parse.__name__ = "number"
    setattr(parse, "bounds", f"{'>' if low_open else ''}{_bound(low)}..{_bound(high)}")   # see integer()
    return parse


def _bound(value: float | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:g}"


def state_bounds(parser: argparse.ArgumentParser) -> None:
    """Append each bounded flag's range to its help, e.g. ``(1..10000)``, so the limits are documented
    where the flag is."""
    for action in parser._actions:
        bounds = getattr(action.type, "bounds", None)
        if bounds and action.help is not argparse.SUPPRESS:
            action.help = f"{action.help or ''} (range {bounds})".strip()


__all__ = ["integer", "number", "state_bounds"]
