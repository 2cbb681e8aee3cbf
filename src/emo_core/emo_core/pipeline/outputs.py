"""What ``emo demo`` shows: side-by-side video frames and the timeline plot.

Panels of a side-by-side frame, left to right: the human camera frame with the 113 landmarks the
pipeline saw | the target the robot is heading for (the predicted apex face while a prediction is
held, else the live mirrored face) | the robot's face (digital twin of the servos' present
positions) for each mode that ran. A red banner marks the frames right after the detector fired.
"""
from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..schema import Face
from ..twin import render_face

PANEL = 320                  # panel side (px)
HEADER = 28                  # label strip above each panel
BANNER_S = 0.5               # how long the "peak activation" banner stays up
FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE, DARK = (255, 255, 255), (34, 38, 46)
RED, GREEN = (220, 50, 50), (60, 220, 120)
MODE_COLOURS = {"coexpression": "#1f77b4", "mimicry": "#d62728"}


@dataclass
class PanelFrame:
    """What one output frame shows (all faces are (113, 2); None where there is nothing)."""

    stamp: float
    image: np.ndarray              # RGB camera frame
    face: Face
    target: np.ndarray | None
    target_is_prediction: bool
    time_to_apex: float | None     # of the held prediction, from this frame (s)
    robots: dict[str, np.ndarray]  # mode -> robot face
    fired_ago: float | None        # seconds since the detector last fired (None: never)
    calibrated: bool
    #: mode -> ((eye yaw, pitch), (neck roll, pitch, yaw)) in degrees, drawn on the twin (emo_core.gaze)
    robot_gaze: dict[str, tuple[tuple[float, float], tuple[float, float, float]]] = field(default_factory=dict)


def human_panel(image: np.ndarray, face: Face, size: int = PANEL) -> np.ndarray:
    """The camera frame letterboxed into a square panel, with the landmarks drawn."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    panel = np.full((size, size, 3), DARK, np.uint8)
    x0, y0 = (size - nw) // 2, (size - nh) // 2
    panel[y0:y0 + nh, x0:x0 + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    if face.detected:
        pts = np.asarray(face.image, np.float64) * (nw, nh) + (x0, y0)
        for x, y in pts[np.all(np.isfinite(pts), axis=1)]:
            cv2.circle(panel, (int(round(x)), int(round(y))), 1, GREEN, -1, cv2.LINE_AA)
    return panel


def _label(panel: np.ndarray, text: str, colour: tuple[int, int, int] = WHITE) -> np.ndarray:
    strip = np.full((HEADER, panel.shape[1], 3), DARK, np.uint8)
    (tw, _), _ = cv2.getTextSize(text, FONT, 0.5, 1)
    font = max(0.32, min(0.5, 0.5 * (panel.shape[1] - 10) / max(tw, 1)))
    cv2.putText(strip, text, (6, HEADER - 9), FONT, font, colour, 1, cv2.LINE_AA)
    return np.vstack([strip, panel])


def compose(frame: PanelFrame, size: int = PANEL) -> np.ndarray:
    """One side-by-side RGB frame (height HEADER + size)."""
    human = human_panel(frame.image, frame.face, size)
    if frame.fired_ago is not None and frame.fired_ago <= BANNER_S:
        cv2.rectangle(human, (0, size - 26), (size, size), RED, -1)
        cv2.putText(human, "peak activation: predicting", (6, size - 8), FONT, 0.5, WHITE, 1, cv2.LINE_AA)
    panels = [_label(human, f"human  t={frame.stamp:5.2f} s" + ("" if frame.face.detected else "  (no face)"))]
    if frame.target is None:
        target = np.full((size, size, 3), DARK, np.uint8)
        title = "target: calibrating rest face" if not frame.calibrated else "target: -"
    else:
        target = render_face(frame.target, (size, size))
        if frame.target_is_prediction:
            eta = max(frame.time_to_apex or 0.0, 0.0)
            title = f"predicted target (apex in {eta * 1e3:4.0f} ms)"
        else:
            title = "target: live face (mirroring)"
    panels.append(_label(target, title, RED if frame.target_is_prediction else WHITE))
    for mode, face in frame.robots.items():
        gaze, head = frame.robot_gaze.get(mode, (None, None))
        panels.append(_label(render_face(face, (size, size), gaze=gaze, head=head), f"robot twin: {mode}"))
    return np.hstack(panels)


@dataclass
class Curve:
    times: np.ndarray
    values: np.ndarray
    apex: float | None


def timeline_png(human: Curve | None, robots: dict[str, Curve], fired: Sequence[float],
                 predicted_apex: Sequence[float], synthetic: Mapping[str, Sequence[float | None]] | None = None,
                 title: str = "", truth: Curve | None = None) -> bytes:
    """The timeline plot as PNG bytes: intensities over time with apex times marked, and (when
    given) the robot - human apex offsets of every synthetic sequence per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 2 if synthetic else 1
    fig, axes = plt.subplots(rows, 1, figsize=(9, 3.6 * rows), squeeze=False,
                             gridspec_kw={"height_ratios": [2.2, 1][:rows]})
    ax = axes[0, 0]
    if truth is not None:
        ax.plot(truth.times, truth.values, color="grey", lw=1, ls=":", label="human, ground-truth intensity")
    if human is not None:
        ax.plot(human.times, human.values, color="black", lw=2, label="human (landmarks, as the robot is measured)")
        if human.apex is not None:
            ax.axvline(human.apex, color="black", ls="--", lw=1)
    for mode, curve in robots.items():
        colour = MODE_COLOURS.get(mode, None)
        ax.plot(curve.times, curve.values, color=colour, lw=1.6, label=f"robot, {mode}")
        if curve.apex is not None:
            ax.axvline(curve.apex, color=colour, ls="--", lw=1)
            ax.annotate(f"{mode} apex", (curve.apex, 1.02), color=colour, fontsize=8, rotation=90,
                        ha="right", va="bottom", xycoords=("data", "axes fraction"))
    for i, t in enumerate(fired):
        ax.axvline(t, color="#2ca02c", lw=1, alpha=0.8, label="peak activation (detector)" if i == 0 else None)
    for i, t in enumerate(predicted_apex):
        ax.plot([t], [1.0], marker="v", color=MODE_COLOURS["coexpression"], ms=8,
                label="predicted apex (execute_at)" if i == 0 else None)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("expression intensity (apex = 1)")
    ax.set_ylim(-0.05, 1.25)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or "human vs robot expression intensity (dashed: apex, 95 % rule)", fontsize=10)
    if synthetic:
        bx = axes[1, 0]
        for k, (mode, offsets) in enumerate(synthetic.items()):
            vals = np.asarray([o for o in offsets if o is not None], np.float64) * 1e3
            jitter = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else np.zeros(len(vals))
            bx.scatter(vals, k + jitter, color=MODE_COLOURS.get(mode), s=14, alpha=0.8)
            if len(vals):
                bx.plot([np.median(vals)] * 2, [k - 0.3, k + 0.3], color="black", lw=2)
        bx.axvline(0, color="black", lw=1)
        bx.axvspan(-100, 100, color="#2ca02c", alpha=0.1)
        bx.set_yticks(range(len(synthetic)), list(synthetic))
        bx.set_xlabel("robot apex - human apex (ms), held-out synthetic people (bar: median)")
        bx.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
