"""``emo eval detector``: the causal peak-activation detector alone, replayed over landmark tracks.

A track (``emo eval video --tracks DIR``) holds a recording's faces, its annotated spans and the
truth of each expression episode (start, end, onset, human half rise, apex). Replaying only the
detector takes a second or two for the whole real-face set, against minutes for the pipeline, so
detector settings and scorers can be compared side by side. The figures are exactly those of
``emo eval video``'s ``detector`` block (same rules, :func:`detector_figures`), plus the scorer's
frame-level separability:

* ``auc``: the area under the ROC curve of the scorer's per-frame probability, positives the frames
  of the last 0.25 s before each episode's half rise (where a firing is wanted), negatives every
  frame outside the expression episodes (where a firing is false). 0.5 is chance.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..anticipation.detector import DetectorConfig, PeakActivationDetector
from ..anticipation.scorer import ExpressionScorer
from .video_eval import _union_length, load_track, track_faces

#: Positive frames for ``auc``: this long before the human's half rise, up to it.
POSITIVE_S = 0.25


@dataclass
class TrackRun:
    """The detector's firings and per-frame scores on one track, with the track's truth."""

    name: str
    stamps: np.ndarray
    probability: np.ndarray           # scorer probability per frame (NaN before it scores)
    fired: list[float]
    truth: np.ndarray                 # (E, 5): start, end, onset, half rise, apex
    spans: list[tuple[float, float, str]]
    extra: dict[str, Any] = field(default_factory=dict)


def replay(path: str | Path, config: DetectorConfig, scorer: ExpressionScorer | None = None) -> TrackRun:
    track = load_track(path)
    detector = PeakActivationDetector(config, scorer=scorer)
    faces = track_faces(track)
    prob = np.full(len(faces), np.nan)
    fired: list[float] = []
    for i, face in enumerate(faces):
        event = detector.update(face)
        if event is not None:
            fired.append(float(event.stamp))
        if detector.last_scored_frame == i:      # scored this frame (not calibrating, no gap refill)
            prob[i] = detector.last_probability
    spans = [(float(a), float(b), str(kind)) for a, b, kind, _ in json.loads(str(track["spans"]))]
    truth = np.asarray(track["truth"], np.float64).reshape(-1, 5) if "truth" in track else np.zeros((0, 5))
    return TrackRun(Path(path).name, np.asarray(track["ts"], np.float64), prob, fired, truth, spans)


def detector_figures(runs: Sequence[TrackRun]) -> dict[str, Any]:
    """``emo eval video``'s detector block over ``runs`` (one track, or pooled), plus ``auc``."""
    hits = early = episodes = false = 0
    outside = 0.0
    pos: list[np.ndarray] = []
    neg: list[np.ndarray] = []
    for r in runs:
        fires = np.asarray(r.fired, np.float64)
        for start, _end, _onset, half, apex in r.truth:
            episodes += 1
            hits += bool(np.any((fires >= start) & (fires <= apex)))
            early += bool(np.any((fires >= start) & (fires <= half)))
            pos.append(r.probability[(r.stamps >= max(start, half - POSITIVE_S)) & (r.stamps <= half)])
        expression = [(a, b) for a, b, kind in r.spans if kind == "expression"]
        inside_fire = np.zeros(len(fires), bool)
        inside_frame = np.zeros(len(r.stamps), bool)
        for a, b in expression:
            inside_fire |= (fires >= a) & (fires <= b)
            inside_frame |= (r.stamps >= a) & (r.stamps <= b)
        false += int((~inside_fire).sum())
        neg.append(r.probability[~inside_frame])
        outside += _outside_s(r.stamps, expression)
    minutes = outside / 60.0
    return {"fired_per_episode": None if episodes == 0 else round(hits / episodes, 3),
            "fired_before_half_rise": None if episodes == 0 else round(early / episodes, 3),
            "false_per_minute": round(false / minutes, 2) if minutes > 0 else None,
            "episodes": episodes, "false_firings": false, "outside_minutes": round(minutes, 3),
            "auc": _auc(np.concatenate(pos) if pos else np.zeros(0), np.concatenate(neg) if neg else np.zeros(0))}


def _outside_s(stamps: np.ndarray, expression: list[tuple[float, float]]) -> float:
    """Seconds of the track outside the expression episodes (as ``emo eval video`` counts them)."""
    if len(stamps) == 0:
        return 0.0
    t0, t1 = float(stamps[0]), float(stamps[-1])
    frame = float(np.median(np.diff(stamps))) if len(stamps) > 1 else 1.0 / 30
    covered = _union_length([(max(a, t0), min(b, t1)) for a, b in expression if b > t0 and a < t1])
    return max(0.0, t1 - t0 + frame - covered)


def _auc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """Mann-Whitney AUC of positive vs negative scores (NaNs dropped; ties count half)."""
    p, n = positive[np.isfinite(positive)], negative[np.isfinite(negative)]
    if len(p) == 0 or len(n) == 0:
        return None
    scores = np.concatenate([p, n])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    # Average ranks over ties.
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(first, counts):
        if count > 1:
            ranks[order[start:start + count]] = start + (count + 1) / 2.0
    u = ranks[:len(p)].sum() - len(p) * (len(p) + 1) / 2.0
    return round(float(u / (len(p) * len(n))), 3)
