"""``--set KEY=VALUE`` style overrides of a config dataclass's fields, for the commands that compare
settings side by side (``emo eval video --pipeline ... --sim ...``, ``emo eval detector --detector ...``).

Values are read as YAML scalars (``0.3``, ``true``, ``slope``, ``null``); the dataclass validates
them as it does its config files, so a bad key or value is the usual one-line error.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from ..errors import ConfigError, EmoError, InputError


def parse_pairs(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (InputError for anything else)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{flag} takes KEY=VALUE, got {pair!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise InputError(f"{flag} {key}: {text!r} is not a value") from None
        if isinstance(value, (list, dict)):
            raise InputError(f"{flag} {key}: takes a single value, got {text!r}")
        out[key.strip()] = value
    return out


def apply(base: Any, pairs: list[str] | None, flag: str) -> Any:
    """``base`` (a frozen dataclass) with the ``KEY=VALUE`` overrides applied and validated."""
    values = parse_pairs(pairs, flag)
    if not values:
        return base
    known = {f.name: f for f in dataclasses.fields(base)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InputError(f"{flag}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    cast = {}
    for key, value in values.items():
        current = getattr(base, key)
        cast[key] = _like(current, value, f"{flag} {key}")
    try:
        return dataclasses.replace(base, **cast)
    except EmoError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def _like(current: Any, value: Any, name: str) -> Any:
    """``value`` converted to the type of the field's present value (bool, int, float, str)."""
    if value is None or current is None:
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise InputError(f"{name}: expected true or false, got {value!r}")
        return value
    if isinstance(current, (int, float)) and not isinstance(current, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{name}: expected a number, got {value!r}")
        if isinstance(current, int) and not float(value).is_integer():
            raise InputError(f"{name}: expected a whole number, got {value!r}")
        return type(current)(value)
    if isinstance(current, str):
        return str(value)
    return value
