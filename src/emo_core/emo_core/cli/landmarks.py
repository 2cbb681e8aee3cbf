"""``emo landmarks IMAGE --json`` and ``emo landmarks VIDEO_OR_FOLDER --out FILE.npz``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InputError
from ..perception.extractor import ExtractorConfig, FaceLandmarkExtractor
from ..perception.pose import head_angles_deg
from ..perception.sources import is_image_file, open_source, read_image
from ..perception.track import extract_track
from ..schema import Face
from ._args import integer, number


def face_to_json(face: Face) -> dict:
    """The JSON contract of ``emo landmarks IMAGE --json``."""
    out: dict = {"face_detected": bool(face.detected), "confidence": round(float(face.confidence), 4)}
    if face.detected:
        out["points_image"] = face.image.round(5).tolist()
        out["points_metric"] = face.metric.round(5).tolist()
        # The extractor sets the rotation of every face it detects; a Face built elsewhere may lack one.
        if face.head_rotation is not None:
            yaw, pitch, roll = head_angles_deg(face.head_rotation)
            out["head_pose_deg"] = {"yaw": round(yaw, 2), "pitch": round(pitch, 2), "roll": round(roll, 2)}
    else:
        out["points_image"] = []
        out["points_metric"] = []
    return out


def _run(args: argparse.Namespace) -> int:
    path = Path(args.input)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    config = ExtractorConfig(max_faces=args.max_faces, static_image_mode=is_image_file(path))
    if is_image_file(path):
        image = read_image(path)
        with FaceLandmarkExtractor(config) as extractor:
            face = extractor.process(image, camera=str(path))
        result = face_to_json(face)
        if args.out:
            raise InputError("--out is for videos and folders; use --json for a single image")
        print(json.dumps(result) if args.json else _summary(path, face))
        return 0
    if not args.out:
        raise InputError(f"{path}: a video or folder needs --out FILE.npz")
    with open_source(path, fps=args.fps) as source, FaceLandmarkExtractor(config) as extractor:
        track = extract_track(source, extractor, progress=sys.stderr.isatty())
    track.save(args.out)
    summary = {"frames": len(track), "detected": int(track.detected.sum()), "fps": track.fps,
               "out": str(args.out)}
    print(json.dumps(summary) if args.json else
          f"{summary['frames']} frames, face in {summary['detected']}, wrote {args.out}")
    return 0


def _summary(path: Path, face: Face) -> str:
    if not face.detected:
        return f"{path}: no face"
    pose = ""
    if face.head_rotation is not None:  # always set by the extractor (see face_to_json)
        yaw, _, roll = head_angles_deg(face.head_rotation)
        pose = f", yaw {yaw:.0f}°, roll {roll:.0f}°"
    return (f"{path}: face (confidence {face.confidence:.2f}{pose}), "
            "113 landmarks; use --json for the points")


def register(registry) -> None:
    parser = registry.command(
        "landmarks", "extract the 113 expression landmarks from an image, video or image folder",
        _run)
    parser.add_argument("input", help="image file, video file or folder of images")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", help="write per-frame landmarks of a video/folder to FILE.npz")
    parser.add_argument("--max-faces", type=integer(1, 10), default=2,
                        help="faces to track; the largest (then most central) one is used")
    parser.add_argument("--fps", type=number(0, 1000, low_open=True), default=30.0, help="frame rate of an image folder")
