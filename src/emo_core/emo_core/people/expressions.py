"""Expressions as action-unit combinations (FACS-style prototypes) and their per-AU asynchrony.

Weights are the AU intensities at the apex of a full-strength expression; lags (seconds) say when
each AU starts its rise relative to the expression's leading AU. The lags encode the common
observation that the regions of a face do not move together: in a smile the lip corners lead and
the cheek raise (AU6) follows; in surprise the brows and lids lead and the jaw follows; in sadness
the brows lead the mouth. Values are tens to ~150 ms, the range reported for AU onset asynchrony in
posed and spontaneous expressions; exact numbers are modelling choices (see docs/people.md).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from .au import AU_INDEX


@dataclass(frozen=True)
class Prototype:
    """One expression: AU -> (apex weight, onset lag in seconds)."""

    name: str
    aus: dict[str, tuple[float, float]]


PROTOTYPES: dict[str, Prototype] = {p.name: p for p in (
    Prototype("smile", {"AU12": (0.85, 0.0), "AU6": (0.5, 0.08), "AU25": (0.12, 0.05)}),
    Prototype("broad_smile", {"AU12": (1.0, 0.0), "AU6": (0.9, 0.06), "AU25": (0.8, 0.04),
                              "AU26": (0.35, 0.10), "AU10": (0.3, 0.05)}),
    Prototype("surprise", {"AU1": (1.0, 0.0), "AU2": (1.0, 0.02), "AU5": (0.8, 0.0),
                           "AU25": (0.7, 0.06), "AU26": (0.8, 0.10)}),
    Prototype("sadness", {"AU1": (0.8, 0.0), "AU4": (0.5, 0.04), "AU15": (0.8, 0.12),
                          "AU17": (0.5, 0.18)}),
    Prototype("anger", {"AU4": (1.0, 0.0), "AU7": (0.8, 0.04), "AU5": (0.4, 0.03),
                        "AU23": (0.7, 0.10), "AU24": (0.5, 0.12)}),
    Prototype("disgust", {"AU9": (1.0, 0.0), "AU10": (0.8, 0.02), "AU4": (0.4, 0.06),
                          "AU15": (0.4, 0.12), "AU17": (0.4, 0.14)}),
    Prototype("fear", {"AU1": (0.9, 0.0), "AU2": (0.6, 0.02), "AU4": (0.5, 0.02), "AU5": (0.9, 0.0),
                       "AU20": (0.8, 0.08), "AU25": (0.6, 0.06), "AU26": (0.4, 0.12)}),
    # Seen on real people (docs/people.md, "Calibration to real people"); only the calibrated
    # profile generates them, so the original seven-expression sets stay reproducible.
    Prototype("jaw_drop", {"AU26": (1.0, 0.0), "AU25": (0.9, 0.0), "AU1": (0.3, 0.08), "AU2": (0.3, 0.08)}),
    Prototype("o_mouth", {"AU26": (0.7, 0.0), "AU25": (0.8, 0.0), "AU18": (0.8, 0.04), "AU1": (0.4, 0.06),
                          "AU2": (0.4, 0.06), "AU5": (0.4, 0.02)}),
    Prototype("laugh", {"AU12": (1.0, 0.0), "AU6": (1.0, 0.05), "AU25": (1.0, 0.04), "AU26": (0.7, 0.08),
                        "AU10": (0.3, 0.05), "AU7": (0.4, 0.08)}),
)}

#: Expression labels of the original generator (videos with an onset and an apex).
EXPRESSIONS: tuple[str, ...] = ("smile", "broad_smile", "surprise", "sadness", "anger", "disgust", "fear")
#: Expressions real people show that the original seven lack (the calibrated profile adds them).
EXTRA_EXPRESSIONS: tuple[str, ...] = ("jaw_drop", "o_mouth", "laugh")
ALL_EXPRESSIONS: tuple[str, ...] = EXPRESSIONS + EXTRA_EXPRESSIONS
#: Distractor labels: faces that move but make no expression (onset/apex -1, intensity 0).
DISTRACTORS: tuple[str, ...] = ("neutral", "blink", "talking", "head_turn")
LABELS: tuple[str, ...] = ALL_EXPRESSIONS + DISTRACTORS


def prototype(name: str) -> Prototype:
    """The prototype of an expression name; InputError listing the valid names otherwise."""
    try:
        return PROTOTYPES[name]
    except KeyError:
        raise InputError(f"unknown expression {name!r}; choose one of {', '.join(ALL_EXPRESSIONS)}") from None


def _check() -> None:
    for proto in PROTOTYPES.values():
        for au in proto.aus:
            if au not in AU_INDEX:
                raise AssertionError(f"{proto.name}: unknown AU {au}")


_check()
