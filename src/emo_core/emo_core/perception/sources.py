"""Camera sources: a camera device, a video file or a folder of images, as a stream of RGB frames.

Every frame carries a timestamp in seconds: media time (frame index / fps) for files and folders,
so results are reproducible; the injected clock for a live device. End of stream is a clean
``None`` from :meth:`FrameSource.read` (iteration stops). A missing, unreadable or truncated source
raises :class:`~emo_core.errors.InputError` with one clear sentence.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..clock import Clock, MonotonicClock
from ..errors import InputError
from ..native import quiet_native_stderr

LOG = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
#: A file/folder source may deliver this fraction of its advertised frame count before we call it
#: truncated (container frame counts can be off by a frame or two for some codecs).
_TRUNCATION_SLACK = 0.95


@dataclass
class Frame:
    """One RGB frame (HxWx3 uint8) with its timestamp (s) and index in the stream."""

    image: np.ndarray
    stamp: float
    index: int
    source: str


class FrameSource:
    """Base class: ``read()`` returns the next :class:`Frame` or None at the end of the stream."""

    name: str = ""
    fps: float = 30.0

    def read(self) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file."""

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_complete(path: Path, data: bytes) -> None:
    """Catch truncated JPEG/PNG files before the decoder half-decodes them with C-level warnings."""
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg") and data.rstrip(b"\x00\r\n ")[-2:] != b"\xff\xd9":
        raise InputError(f"{path}: truncated JPEG (no end-of-image marker)")
    if suffix == ".png" and b"IEND" not in data[-32:]:
        raise InputError(f"{path}: truncated PNG (no IEND chunk)")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8, or raise InputError naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    data = path.read_bytes()
    if not data:
        raise InputError(f"{path}: empty file")
    _check_complete(path, data)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class VideoFileSource(FrameSource):
    """Frames of a video file; stamps are media time. ``loop`` restarts at the end (sim cameras)."""

    def __init__(self, path: str | Path, loop: bool = False) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.loop = loop
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such video file")
        with quiet_native_stderr():  # FFmpeg prints its own probe errors; we raise a clear one
            self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise InputError(f"{self.path}: cannot open video (unsupported or corrupt file)")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 30.0
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._index = 0
        self._offset = 0.0  # media time added per completed loop

    def read(self) -> Frame | None:
        ok, bgr = self._cap.read()
        if not ok:
            self._check_ended_cleanly()
            if not self.loop or self._index == 0:
                return None
            self._offset += self._index / self.fps
            self._index = 0
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
            if not ok:
                return None
        frame = Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self._offset + self._index / self.fps,
                      self._index, self.name)
        self._index += 1
        return frame

    def _check_ended_cleanly(self) -> None:
        if self._index == 0:
            raise InputError(f"{self.path}: no frame could be decoded (corrupt or empty video)")
        if self.frame_count and self._index < _TRUNCATION_SLACK * self.frame_count:
            raise InputError(f"{self.path}: video ended after {self._index} of {self.frame_count} "
                             "frames (truncated or corrupt)")

    def close(self) -> None:
        self._cap.release()


class ImageFolderSource(FrameSource):
    """Images of a folder in name order, played at ``fps``; stamps are index / fps."""

    def __init__(self, path: str | Path, fps: float = 30.0, loop: bool = False) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.fps = float(fps)
        self.loop = loop
        if fps <= 0:
            raise InputError(f"fps must be positive, got {fps}")
        if not self.path.is_dir():
            raise InputError(f"{self.path}: no such folder")
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise InputError(f"{self.path}: no images ({', '.join(IMAGE_SUFFIXES)}) in folder")
        self._index = 0

    def read(self) -> Frame | None:
        if self._index >= len(self.files):
            if not self.loop:
                return None
        file = self.files[self._index % len(self.files)]
        frame = Frame(read_image(file), self._index / self.fps, self._index, str(file))
        self._index += 1
        return frame


class DeviceSource(FrameSource):
    """A live camera (V4L2 index or path). Stamps come from the injected clock at capture time."""

    def __init__(self, device: int | str, clock: Clock | None = None, width: int = 0,
                 height: int = 0, fps: float = 0.0) -> None:
        self.name = f"device:{device}"
        self.clock = clock or MonotonicClock()
        if isinstance(device, int) and sys.platform.startswith("linux") and not Path(f"/dev/video{device}").exists():
            raise InputError(f"camera {device}: no such device (/dev/video{device})")
        # OpenCV's backends print their own warnings for a device that will not open; ours says it once.
        with quiet_native_stderr():
            self._cap = cv2.VideoCapture(device)
        if not self._cap.isOpened():
            raise InputError(f"camera {device!r}: cannot open device")
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                            (cv2.CAP_PROP_FPS, fps)):
            if value:
                self._cap.set(prop, value)
        reported = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(reported) if reported and reported > 0 else 30.0
        self._index = 0

    def read(self) -> Frame | None:
        ok, bgr = self._cap.read()
        if not ok:
            raise InputError(f"{self.name}: camera stopped delivering frames (unplugged?)")
        frame = Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.clock.now(), self._index, self.name)
        self._index += 1
        return frame

    def close(self) -> None:
        self._cap.release()


def open_source(spec: str | int | Path, *, fps: float = 30.0, loop: bool = False,
                clock: Clock | None = None) -> FrameSource:
    """Open a source from a spec: an int or digit string (device), a video file, or an image folder."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return DeviceSource(int(spec), clock=clock)
    path = Path(spec)
    if str(spec).startswith("/dev/video"):
        return DeviceSource(str(spec), clock=clock)
    if path.is_dir():
        return ImageFolderSource(path, fps=fps, loop=loop)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"{path}: is a single image; use it directly, not as a stream")
    return VideoFileSource(path, loop=loop)


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES
