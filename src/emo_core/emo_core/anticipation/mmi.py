"""Loader for MMI-style video datasets: videos + labels -> landmarks -> human sequence dataset.

The MMI Facial Expression database (the paper's training data) needs registration and cannot be
fetched here, so this loader reads the shape such a dataset takes once exported: a directory of
videos plus labels, either

* a **labels file**, CSV (header ``video,subject,label[,onset_frame,apex_frame,fps]``) or JSON (a
  list of objects with the same keys, or ``{video: {...}}``); ``video`` is relative to the video
  directory; MMI's per-session XML (subject id, emotion, AU onset/apex frames) maps onto these
  columns; or
* a **sidecar JSON** beside each video (``clip.mp4`` + ``clip.json``, as the clip maker writes):
  ``expression``/``label``, optional ``subject``, ``fps``, ``onset_frame``, ``apex_frame``.

Each video goes through the project's :class:`~emo_core.perception.FaceLandmarkExtractor` (video
mode) into pose-normalized metric landmarks. Frames where no face was found are filled by linear
interpolation between their neighbours; a video with more than ``max_missing`` of its frames
missing, or one that cannot be decoded, is skipped and reported (never silently dropped).
"""
from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

LOG = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")


@dataclass(frozen=True)
class VideoLabel:
    video: Path
    subject: str
    label: str
    onset_frame: int = -1
    apex_frame: int = -1
    fps: float | None = None


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    interpolated_frames: int = 0


def _int(value: Any, default: int = -1) -> int:
    if value is None or value == "":
        return default
    return int(float(value))


def _label_from(record: dict[str, Any], video: Path, default_subject: str) -> VideoLabel:
    label = record.get("label", record.get("expression"))
    if not label:
        raise InputError(f"{video.name}: no label/expression in its labels")
    fps = record.get("fps")
    return VideoLabel(video=video, subject=str(record.get("subject") or default_subject), label=str(label),
                      onset_frame=_int(record.get("onset_frame")), apex_frame=_int(record.get("apex_frame")),
                      fps=float(fps) if fps not in (None, "") else None)


def read_labels(videos: Path, labels: Path | None) -> list[VideoLabel]:
    """Labels of every video: from a CSV/JSON labels file, or from sidecar JSON files."""
    if not videos.is_dir():
        raise InputError(f"{videos}: not a directory of videos")
    if labels is None:
        found = sorted(p for p in videos.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        if not found:
            raise InputError(f"{videos}: no videos ({', '.join(VIDEO_SUFFIXES)})")
        out = []
        for path in found:
            sidecar = path.with_suffix(".json")
            if not sidecar.is_file():
                raise InputError(f"{path.name}: no labels file given and no {sidecar.name} beside it")
            record = _read_json(sidecar)
            # The clip maker names its source photo: that is the "person" of the clip.
            out.append(_label_from(record, path, str(record.get("photo") or path.parent.name)))
        return out
    if not labels.is_file():
        raise InputError(f"{labels}: labels file not found")
    if labels.suffix.lower() == ".csv":
        with labels.open(newline="") as fh:
            records = list(csv.DictReader(fh))
    elif labels.suffix.lower() == ".json":
        raw = _read_json(labels)
        records = [dict(v, video=k) for k, v in raw.items()] if isinstance(raw, dict) else list(raw)
    else:
        raise InputError(f"{labels}: labels must be .csv or .json")
    out = []
    for i, record in enumerate(records):
        if not isinstance(record, dict) or not record.get("video"):
            raise InputError(f"{labels}: record {i} has no 'video'")
        out.append(_label_from(record, videos / str(record["video"]), "unknown"))
    return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def fill_missing(points: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """Linear interpolation over frames without a face (edges hold the nearest detected frame)."""
    good = np.flatnonzero(detected)
    if good.size == 0:
        raise InputError("no face in any frame")
    t = np.arange(len(points))
    flat = points.reshape(len(points), -1)
    filled = np.stack([np.interp(t, good, flat[good, j]) for j in range(flat.shape[1])], axis=1)
    return filled.reshape(points.shape).astype(np.float32)


def extract_video(path: Path, extractor: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """(metric landmarks (T, 113, 3), detected (T,), fps) of one video."""
    from ..perception.sources import VideoFileSource
    from ..perception.track import extract_track

    with VideoFileSource(path) as source:
        track = extract_track(source, extractor)
    return track.points_metric, track.detected, track.fps


def load_mmi(videos: str | Path, labels: str | Path | None = None, *, fps: float | None = None,
             max_missing: float = 0.2, extractor: Any | None = None) -> tuple[Any, LoadReport]:
    """Build a ``HumanSequenceDataset`` from an MMI-style directory; returns it and a report."""
    from ..datasets.human import HumanSequence, HumanSequenceDataset
    from ..perception import ExtractorConfig, FaceLandmarkExtractor

    entries = read_labels(Path(videos), Path(labels) if labels is not None else None)
    report = LoadReport()
    sequences = []
    own = extractor is None
    for entry in entries:
        # One extractor per video in video (tracking) mode: tracking must not carry across clips.
        ex = FaceLandmarkExtractor(ExtractorConfig(max_faces=1)) if extractor is None else extractor
        try:
            metric, detected, video_fps = extract_video(entry.video, ex)
            missing = 1.0 - float(np.mean(detected))
            if missing > max_missing:
                raise InputError(f"no face in {missing:.0%} of its frames (limit {max_missing:.0%})")
            landmarks = fill_missing(metric, detected)
        except InputError as exc:
            report.skipped.append(f"{entry.video.name}: {exc}")
            continue
        finally:
            if own:
                ex.close()
        report.interpolated_frames += int(np.sum(~detected))
        sequences.append(HumanSequence(
            landmarks=landmarks, fps=float(fps or entry.fps or video_fps), subject=entry.subject,
            label=entry.label, onset_frame=entry.onset_frame, apex_frame=entry.apex_frame,
            intensity=np.full(len(landmarks), np.nan, np.float32)))
        report.loaded.append(entry.video.name)
        LOG.info("%s: %d frames, %d without a face", entry.video.name, len(landmarks), int(np.sum(~detected)))
    if not sequences:
        raise InputError(f"no usable video in {videos}: " + "; ".join(report.skipped))
    return HumanSequenceDataset(sequences), report
