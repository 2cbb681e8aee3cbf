"""Face landmark extractor: an RGB frame -> one pose-normalized 113-landmark :class:`Face`.

Wraps MediaPipe's legacy Face Mesh graph (``mediapipe==0.10.21`` is the last release whose wheel
bundles that graph and its model, so it works offline; see setup.py). We run the same graph the
public ``mp.solutions.face_mesh.FaceMesh`` runs, but also ask it for its face-detection stream so
the face gets a real confidence (the detector's score; the landmark model's presence score is not
exposed by the graph). While the landmark model tracks a face without re-running the detector, the
score of the detection that started the track is carried.

Several faces: we track up to ``max_faces`` and use exactly one, deterministically: the largest
(area of the landmark bounding box); faces within 5 % of the largest area are tie-broken by the
distance of their centre to the image centre. The robot should look at the person in front of it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..native import quiet_native_stderr
from ..schema import MP_INDICES, N_LANDMARKS, Face, Space
from .pose import ANCHOR_LEFT, ANCHOR_MIDLINE, ANCHOR_RIGHT, head_frame, to_isotropic_pixels

LOG = logging.getLogger(__name__)

#: MediaPipe indices we read per face: the 113 expression points, then the pose anchors.
_READ = np.concatenate([MP_INDICES, ANCHOR_RIGHT, ANCHOR_LEFT, np.array(ANCHOR_MIDLINE)])
_N_PAIRS = ANCHOR_RIGHT.size
_TIE_AREA = 0.05


@dataclass(frozen=True)
class ExtractorConfig:
    """Face Mesh settings. ``static_image_mode`` runs the detector on every frame (photos, tests);
    video mode tracks the face between frames and is much faster."""

    max_faces: int = 2
    static_image_mode: bool = False
    #: Silence MediaPipe's native (C++) start-up chatter on stderr; it is not actionable for users.
    quiet_native_logs: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5

    def __post_init__(self) -> None:
        if self.max_faces < 1:
            raise InputError(f"max_faces must be >= 1, got {self.max_faces}")
        for name in ("min_detection_confidence", "min_tracking_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {value}")


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate a frame and return it as contiguous RGB uint8 (gray and RGBA are converted)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InputError("image must be a uint8 numpy array (RGB)")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"image must be HxWx3 RGB, got shape {image.shape}")
    if image.shape[0] < 16 or image.shape[1] < 16:
        raise InputError(f"image too small: {image.shape[1]}x{image.shape[0]}")
    return np.ascontiguousarray(image)


#: Wire layout of one NormalizedLandmark inside a serialized NormalizedLandmarkList when x, y and z
#: are all present: field tag + length, then three (tag, float32) pairs = 17 bytes.
_WIRE = np.dtype([("tag", "u1"), ("size", "u1"), ("tx", "u1"), ("x", "<f4"), ("ty", "u1"),
                  ("y", "<f4"), ("tz", "u1"), ("z", "<f4")])
_WIRE_TAGS = {"tag": 0x0A, "size": 15, "tx": 0x0D, "ty": 0x15, "tz": 0x1D}


def _field_offset(dtype: np.dtype, name: str) -> int:
    """Byte offset of field ``name`` in a structured dtype (``dtype.fields`` is None otherwise)."""
    fields = dtype.fields
    if fields is None:
        raise TypeError(f"{dtype} is not a structured dtype")
    return int(fields[name][1])


#: Byte offsets of those tag bytes in a record, and their values: verified with one comparison.
_TAG_OFFSETS = np.array([_field_offset(_WIRE, name) for name in _WIRE_TAGS])
_TAG_VALUES = np.array(list(_WIRE_TAGS.values()), dtype=np.uint8)


def _read_points(landmarks, indices: np.ndarray) -> np.ndarray:
    """Selected points of a NormalizedLandmarkList as an (N, 3) float64 array.

    Reading 139 points through protobuf attribute access costs ~0.2 ms, a noticeable share of a
    ~2-4 ms frame; decoding the serialized bytes with one structured numpy view costs ~30 us. The
    fixed layout holds whenever every landmark carries x, y and z (protobuf omits a field that is
    exactly 0.0, and newer graphs may add visibility/presence), so it is verified and we fall back
    to attribute access otherwise.
    """
    raw = landmarks.SerializeToString()
    if len(raw) == _WIRE.itemsize * len(landmarks.landmark):
        tags = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _WIRE.itemsize)[:, _TAG_OFFSETS]
        if np.array_equal(tags, np.broadcast_to(_TAG_VALUES, tags.shape)):
            sel = np.frombuffer(raw, dtype=_WIRE)[indices]
            return np.stack([sel["x"], sel["y"], sel["z"]], axis=1).astype(np.float64)
    lm = landmarks.landmark
    return np.array([(lm[i].x, lm[i].y, lm[i].z) for i in indices], dtype=np.float64)


def _choose_face(candidates: list[np.ndarray], width: int, height: int) -> int:
    """Index of the largest face; near-ties go to the face closest to the image centre."""
    areas, offsets = [], []
    for pts in candidates:
        xy = pts[:N_LANDMARKS, :2] * (width, height)
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        areas.append(float(np.prod(hi - lo)))
        offsets.append(float(np.linalg.norm((lo + hi) / 2 - (width / 2, height / 2))))
    largest = max(areas)
    close = [i for i, a in enumerate(areas) if a >= (1 - _TIE_AREA) * largest]
    return min(close, key=lambda i: (offsets[i], i))


class FaceLandmarkExtractor:
    """One camera's landmark stage. Not thread-safe; one instance per camera stream."""

    def __init__(self, config: ExtractorConfig | None = None) -> None:
        self.config = config or ExtractorConfig()
        with quiet_native_stderr(self.config.quiet_native_logs):
            self._graph = _make_graph(self.config)
            # The graph opens its calculators (and TFLite prints its chatter) asynchronously, and
            # more is printed the first time a face is projected. Warming up inside the quiet window
            # on a real face, then on a blank frame (which drops the track, so the warm-up face
            # cannot leak into the first real frame), makes all of that happen here.
            self._graph.process({"image": _warmup_face()})
            self._graph.process({"image": np.zeros((64, 64, 3), np.uint8)})
        self._last_score = 0.0

    def __enter__(self) -> "FaceLandmarkExtractor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    def run_mediapipe(self, rgb: np.ndarray):
        """The raw MediaPipe call this stage wraps (also what the benchmark compares against)."""
        if self._graph is None:
            raise InputError("extractor is closed")
        return self._graph.process({"image": rgb})

    def process(self, image: np.ndarray, stamp: float = 0.0, camera: str = "") -> Face:
        """Landmarks of the chosen face in ``image`` (RGB); ``Face.detected`` is False if none."""
        rgb = check_image(image)
        result = self.run_mediapipe(rgb)
        faces = result.multi_face_landmarks
        if not faces:
            self._last_score = 0.0
            return Face.missing(stamp=stamp, camera=camera)
        height, width = rgb.shape[:2]
        candidates = [_read_points(f, _READ) for f in faces]
        chosen = 0 if len(candidates) == 1 else _choose_face(candidates, width, height)
        return self._to_face(candidates[chosen], result.face_detections, width, height, stamp, camera)

    def mesh(self, image: np.ndarray) -> np.ndarray | None:
        """All 468 normalized mesh points (x/W, y/H, z/W) of the chosen face, or None.

        For tools that need the full mesh (the clip maker's warp); the stage itself reads only the
        points it needs.
        """
        rgb = check_image(image)
        faces = self.run_mediapipe(rgb).multi_face_landmarks
        if not faces:
            return None
        height, width = rgb.shape[:2]
        full = [_read_points(f, np.arange(468)) for f in faces]
        selected = [pts[MP_INDICES] for pts in full]
        return full[0 if len(full) == 1 else _choose_face(selected, width, height)]

    def _to_face(self, pts: np.ndarray, detections, width: int, height: int,
                 stamp: float, camera: str) -> Face:
        px = to_isotropic_pixels(pts, width, height)
        anchors = px[N_LANDMARKS:]
        frame = head_frame(anchors[:_N_PAIRS], anchors[_N_PAIRS:2 * _N_PAIRS], anchors[2 * _N_PAIRS:])
        score = self._detection_score(detections, pts, width, height)
        return Face(
            detected=True,
            confidence=score,
            metric=frame.to_metric(px[:N_LANDMARKS]),
            image=pts[:N_LANDMARKS, :2].astype(np.float32),
            stamp=stamp,
            space=Space.METRIC,
            head_rotation=frame.rotation,
            head_scale_px=frame.scale,
            camera=camera,
        )

    def _detection_score(self, detections, pts: np.ndarray, width: int, height: int) -> float:
        """Score of the detection whose box centre is nearest this face; the last one while tracking."""
        if detections:
            centre = pts[:N_LANDMARKS, :2].mean(axis=0)

            def distance(det) -> float:
                box = det.location_data.relative_bounding_box
                return float(np.hypot(box.xmin + box.width / 2 - centre[0],
                                      box.ymin + box.height / 2 - centre[1]))

            best = min(detections, key=distance)
            self._last_score = float(best.score[0]) if best.score else self._last_score
        return self._last_score


def _warmup_face() -> np.ndarray:
    from skimage import data  # scikit-image ships this real portrait; no download

    return np.ascontiguousarray(data.astronaut()[:288, 96:384])


def _make_graph(config: ExtractorConfig):
    # Imported here so that modules which only need the schema do not pay for MediaPipe's start-up.
    from mediapipe.python.solutions import face_mesh

    return _lean_solution_class()(
        binary_graph_path=face_mesh._BINARYPB_FILE_PATH,
        side_inputs={
            "num_faces": config.max_faces,
            "with_attention": False,
            "use_prev_landmarks": not config.static_image_mode,
        },
        calculator_params={
            "facedetectionshortrangecpu__facedetectionshortrange__facedetection__"
            "TensorsToDetectionsCalculator.min_score_thresh": config.min_detection_confidence,
            "facelandmarkcpu__ThresholdingCalculator.threshold": config.min_tracking_confidence,
        },
        outputs=["multi_face_landmarks", "face_detections"],
    )


def _lean_solution_class():
    """``SolutionBase`` whose ``process`` skips building a new ``namedtuple`` class per frame.

    MediaPipe's ``SolutionBase.process`` creates the ``SolutionOutputs`` namedtuple *type* on every
    call, ~0.4 ms of pure Python per frame (profiled: 10 % of the whole landmark stage). This
    override does exactly the rest of what ``process`` does for image inputs -- same packets, same
    simulated 30 fps timestamps, same output decoding -- and returns a plain namespace. It relies
    on ``SolutionBase`` internals, which is safe because ``mediapipe`` is pinned to 0.10.21 (the
    last release with the legacy graph); ``tests/test_perception.py`` checks it against the
    original ``process`` landmark for landmark.
    """
    from types import SimpleNamespace

    from mediapipe.python.solution_base import SolutionBase

    class LeanSolution(SolutionBase):
        def process(self, input_data):          # noqa: D401 - same contract as SolutionBase.process
            if not isinstance(input_data, dict) or set(input_data) != {"image"}:
                return super().process(input_data)
            image = input_data["image"]
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError("Input image must contain three channel rgb data.")
            self._graph_outputs.clear()
            self._simulated_timestamp += 33333
            kind = self._input_stream_type_info["image"]
            self._graph.add_packet_to_input_stream(
                stream="image", packet=self._make_packet(kind, image).at(self._simulated_timestamp))
            self._graph.wait_until_idle()
            info, got = self._output_stream_type_info, self._graph_outputs
            return SimpleNamespace(**{name: (self._get_packet_content(kind_out, got[name]) if name in got else None)
                                      for name, kind_out in info.items()})

    return LeanSolution
