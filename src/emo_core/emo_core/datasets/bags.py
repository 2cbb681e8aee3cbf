"""ROS 2 bags -> the project's datasets, without ROS (``rosbags`` + the emo_msgs definitions).

``ros2 bag record`` of the node graph's topics (sqlite3 or mcap storage) becomes:

* a **babbling dataset** (``emo_core.datasets.babbling``) from a babbling run: the FaceCommands with
  source BABBLE on ``/emo/face/command`` are the poses; consecutive identical commands are one pose
  (the babbler re-sends its pose while the face settles). Each pose's sample is the last robot-face
  FaceLandmarks (robot space; ``/emo/twin/landmarks`` in sim) stamped while the pose was held --
  before the next pose, and at most ``HOLD_S`` after its last command -- the settled face the
  babbler captured. ``present`` comes from ``/emo/joint_states``
  through the servo table when the bag has it (else the commands; a JointState that lacks a servo
  of the table is an error, as it is for the nodes); ``settled`` is true when that
  face came at least ``settle_time_s`` after the pose was sent. The babbler's intermediate
  waypoints are settled poses too and become samples.
* a **human sequence dataset** (``emo_core.datasets.human``) from FaceLandmarks in metric space
  (``/emo/face/landmarks``): one sequence per bag, split where the stamps jump by more than
  ``max_gap_s``; fps from the median frame interval; frames without a face are kept as NaN with
  ``detected = False``. Labels and ground truth are unknown (``-1`` / NaN) unless given.

Times are the messages' header stamps (the camera frame for landmarks), not the bag's receive
times. Messages are decoded by the same message layer the nodes use (``emo_core.conversions``).
:func:`write_bag` writes bags in either storage for tests and tools.

The babbling dataset's manifest needs the self-model's constraint config and robot description, so
the last step -- samples to a dataset directory -- is ``emo_core.selfmodel.bags.babbling_dataset``
(datasets never imports selfmodel); ``emo dataset from-bag`` (``cli/dataset.py``) picks the kind.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..commands import Source
from ..conversions import SOURCE_TO_MSG, joint_state_to_commands, msg_points, stamp_to_seconds
from ..errors import InputError, SchemaError
from ..messages import emo_typestore
from ..schema import COMMAND_NAMES, LOWER_COMMANDS, N_LANDMARKS, UPPER_COMMANDS, Space
from .human import HumanSequence, HumanSequenceDataset

LOG = logging.getLogger(__name__)

STORAGES = ("sqlite3", "mcap")
SOURCE_BABBLE = SOURCE_TO_MSG[Source.BABBLE]       # FaceCommand.SOURCE_BABBLE
#: A babbling pose counts as held this long after its last (re-)sent command: the babbler node
#: re-sends at 20 Hz, and the servo driver's watchdog eases home 0.5 s after commands stop.
HOLD_S = 0.25
HUMAN_FILE = "human_sequences.npz"


@dataclass(frozen=True)
class BagTopics:
    """Where the graph publishes what a dataset needs (docs/ros.md)."""

    landmarks: str = "/emo/face/landmarks"
    command: str = "/emo/face/command"
    robot_face: str = "/emo/twin/landmarks"
    joint_states: str = "/emo/joint_states"


@dataclass
class BagReport:
    """What a conversion read and wrote."""

    kind: str
    out: Path
    bags: list[str] = field(default_factory=list)
    storages: list[str] = field(default_factory=list)
    samples: int = 0
    sequences: int = 0
    frames: int = 0
    skipped: int = 0


# ------------------------------------------------------------------------------------- reading
def _stamp(msg: Any) -> float:
    return stamp_to_seconds(msg.header.stamp)


def bag_storage(path: str | Path) -> str:
    """Storage plugin of a bag directory ("sqlite3" or "mcap"), from its metadata.yaml."""
    import yaml

    file = Path(path) / "metadata.yaml"
    try:
        info = yaml.safe_load(file.read_text())["rosbag2_bagfile_information"]
        return str(info["storage_identifier"])
    except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError) as exc:   # ValueError: binary file
        raise InputError(f"{file}: unreadable bag metadata ({' '.join(str(exc).split())})") from None


class _open:
    """rosbags Reader with the project's errors: a missing, incomplete or corrupt bag is InputError."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> Any:
        from rosbags.rosbag2 import Reader

        if not self.path.exists():
            raise InputError(f"{self.path}: no such bag directory")
        if not self.path.is_dir():
            raise InputError(f"{self.path}: a bag is a directory (with metadata.yaml), not a file")
        if not (self.path / "metadata.yaml").is_file():
            raise InputError(f"{self.path}: no metadata.yaml -- not a rosbag2 directory, or the recording was "
                             "interrupted (`ros2 bag reindex` rebuilds it)")
        try:
            self.reader = Reader(self.path)
            self.reader.open()
        except Exception as exc:        # rosbags, sqlite3 and mcap each raise their own errors
            raise InputError(f"{self.path}: cannot read bag ({type(exc).__name__}: {exc})") from None
        return self.reader

    def __exit__(self, *exc: object) -> None:
        self.reader.close()


def read_topics(path: str | Path, topics: Sequence[str], store: Any = None) -> dict[str, list[Any]]:
    """Deserialized messages of ``topics`` in one bag, in recording order (absent topics: [])."""
    path = Path(path)
    store = store or emo_typestore()
    out: dict[str, list[Any]] = {topic: [] for topic in topics}
    with _open(path) as reader:
        connections = [c for c in reader.connections if c.topic in out]
        for connection in connections:
            if connection.msgtype not in store.types:
                raise InputError(f"{path}: topic {connection.topic} has type {connection.msgtype}, "
                                 "which the project's message definitions do not know")
        if not connections:             # rosbags reads *every* connection when given none
            return out
        try:
            for connection, _, raw in reader.messages(connections=connections):
                out[connection.topic].append(_decode(store, raw, connection, path))
        except InputError:
            raise
        except Exception as exc:        # a truncated database or chunk surfaces here, with many types
            raise InputError(f"{path}: corrupt bag ({type(exc).__name__}: {exc})") from None
    return out


def _decode(store: Any, raw: bytes, connection: Any, path: Path) -> Any:
    try:
        return store.deserialize_cdr(raw, connection.msgtype)
    except Exception as exc:        # rosbags raises assorted errors on bytes that do not fit the type
        raise InputError(f"{path}: a {connection.msgtype} message on {connection.topic} does not decode "
                         f"({type(exc).__name__}: {exc}); was it recorded with other message definitions?") from None


def bag_topics(path: str | Path) -> dict[str, str]:
    """Topic -> message type of one bag."""
    with _open(Path(path)) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


def detect_kind(paths: Sequence[str | Path], topics: BagTopics = BagTopics()) -> str:
    """"babbling" when the bags hold BABBLE commands, else "human"."""
    for path in paths:
        commands = read_topics(path, [topics.command])[topics.command]
        if any(int(m.source) == SOURCE_BABBLE for m in commands):
            return "babbling"
    return "human"


# ------------------------------------------------------------------------------ human sequences
def _landmark_points(msg: Any) -> np.ndarray | None:
    try:
        return msg_points(msg, dims=3)
    except SchemaError as exc:
        raise InputError(f"FaceLandmarks at {_stamp(msg):.3f} s: {exc}") from None


def _split(stamps: np.ndarray, max_gap_s: float) -> list[slice]:
    cuts = np.flatnonzero(np.diff(stamps) > max_gap_s) + 1
    bounds = [0, *cuts.tolist(), len(stamps)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def human_sequences(path: str | Path, topic: str = BagTopics.landmarks, subject: str = "", label: str = "unknown",
                    max_gap_s: float = 1.0, min_frames: int = 2) -> list[HumanSequence]:
    """The metric-space FaceLandmarks of one bag as sequences (split at gaps; see module docstring)."""
    path = Path(path)
    messages = [m for m in read_topics(path, [topic])[topic] if int(m.space) == int(Space.METRIC)]
    if not messages:
        raise InputError(f"{path}: no metric-space FaceLandmarks on {topic} (topics: "
                         f"{', '.join(sorted(bag_topics(path))) or 'none'})")
    messages.sort(key=_stamp)
    stamps = np.array([_stamp(m) for m in messages])
    sequences = []
    for k, part in enumerate(_split(stamps, max_gap_s)):
        frames, t = messages[part], stamps[part]
        if len(frames) < min_frames:
            LOG.info("%s: %d frame(s) at %.2f s left out (fewer than %d)", path, len(frames), t[0], min_frames)
            continue
        points = [_landmark_points(m) for m in frames]
        detected = np.array([p is not None for p in points])
        landmarks = np.full((len(frames), N_LANDMARKS, 3), np.nan, np.float32)
        landmarks[detected] = np.stack([p for p in points if p is not None]) if detected.any() else landmarks[detected]
        fps = 1.0 / float(np.median(np.diff(t)))
        sequences.append(HumanSequence(landmarks=landmarks, fps=fps, subject=subject or path.name, label=label,
                                       video_id=f"{path.name}#{k}", detected=detected))
    return sequences


def human_dataset(paths: Sequence[str | Path], out: str | Path, topics: BagTopics = BagTopics(),
                  subject: str = "", label: str = "unknown", max_gap_s: float = 1.0) -> BagReport:
    """Bags -> ``out/human_sequences.npz`` (one HumanSequenceDataset)."""
    out = Path(out)
    report = BagReport(kind="human", out=out / HUMAN_FILE)
    sequences: list[HumanSequence] = []
    for path in paths:
        found = human_sequences(path, topics.landmarks, subject, label, max_gap_s)
        sequences += found
        report.bags.append(str(path))
        report.storages.append(bag_storage(path))
    if not sequences:
        raise InputError("no sequence with at least 2 frames in the bag(s)")
    meta = {"source": "rosbag2", "bags": [Path(p).name for p in paths], "topic": topics.landmarks,
            "max_gap_s": max_gap_s}
    out.mkdir(parents=True, exist_ok=True)
    HumanSequenceDataset(sequences, meta=meta).save(report.out)
    report.sequences = len(sequences)
    report.frames = sum(len(s) for s in sequences)
    return report


# ------------------------------------------------------------------------------------- babbling
@dataclass(frozen=True)
class BabbleSample:
    commands: np.ndarray        # (11,)
    present: np.ndarray         # (11,)
    landmarks: np.ndarray       # (113, 2) robot space
    settled: bool


def _command_vector(msg: Any) -> np.ndarray:
    names = [str(n) for n in msg.names]
    positions = np.asarray(msg.positions, np.float64)
    if positions.size != len(names):
        raise InputError(f"FaceCommand at {_stamp(msg):.3f} s has {len(names)} names and {positions.size} positions")
    values = dict(zip(names, positions))
    missing = [n for n in COMMAND_NAMES if n not in values]
    if missing:
        raise InputError(f"babbling FaceCommand lacks command(s) {', '.join(missing)}")
    return np.array([values[n] for n in COMMAND_NAMES], np.float32)


def _poses(commands: list[Any]) -> list[tuple[float, float, np.ndarray]]:
    """(first stamp, last stamp, commands) of each distinct pose: runs of identical BABBLE commands."""
    poses: list[tuple[float, float, np.ndarray]] = []
    for msg in sorted((m for m in commands if int(m.source) == SOURCE_BABBLE), key=_stamp):
        vector, t = _command_vector(msg), _stamp(msg)
        if poses and np.array_equal(poses[-1][2], vector):
            poses[-1] = (poses[-1][0], t, vector)
        else:
            poses.append((t, t, vector))
    return poses


def babble_samples(path: str | Path, topics: BagTopics = BagTopics(), settle_time_s: float = 0.15,
                   table: Any = None, hold_s: float = HOLD_S) -> tuple[list[BabbleSample], int]:
    """The samples of one babbling bag and how many poses had no robot face to pair with.

    A pose is held until the next pose, or ``hold_s`` after its last (re-)sent command, whichever
    comes first: once commands stop, the driver's watchdog eases the face home (the last pose of a
    run would otherwise be paired with the face going home).
    """
    path = Path(path)
    wanted = [topics.command, topics.robot_face] + ([topics.joint_states] if table is not None else [])
    found = read_topics(path, wanted)
    poses = _poses(found[topics.command])
    if not poses:
        raise InputError(f"{path}: no FaceCommand with source BABBLE on {topics.command}")
    faces = sorted((m for m in found[topics.robot_face] if m.face_detected and int(m.space) == int(Space.ROBOT)),
                   key=_stamp)
    if not faces:
        raise InputError(f"{path}: no robot-space FaceLandmarks on {topics.robot_face}")
    face_t = np.array([_stamp(m) for m in faces])
    joints = sorted(found.get(topics.joint_states, []), key=_stamp)
    joint_t = np.array([_stamp(m) for m in joints])
    samples, skipped = [], 0
    for k, (start, last, commands) in enumerate(poses):
        end = min(poses[k + 1][0] if k + 1 < len(poses) else np.inf, last + hold_s)
        i = int(np.searchsorted(face_t, end, side="left")) - 1       # last face while the pose was held
        if i < 0 or face_t[i] < start:
            skipped += 1
            continue
        face_points = _landmark_points(faces[i])
        if face_points is None:      # not reached: ``faces`` holds only messages with a face detected
            skipped += 1
            continue
        points = face_points[:, :2]
        present = _present(joints, joint_t, face_t[i], table) if joints else None
        samples.append(BabbleSample(commands, commands.copy() if present is None else present, points,
                                    bool(face_t[i] - start >= settle_time_s)))
    return samples, skipped


def _present(joints: list[Any], joint_t: np.ndarray, t: float, table: Any) -> np.ndarray | None:
    """Commands the servos expressed at ``t``: the last JointState through the servo table (as the
    nodes read it); None when there is none yet. A JointState that lacks a servo of the table is an
    InputError: the bag was recorded with another servo table."""
    j = int(np.searchsorted(joint_t, t, side="right")) - 1
    if j < 0:
        return None
    try:
        return joint_state_to_commands(joints[j], table)
    except InputError as exc:
        raise InputError(f"{exc} at {joint_t[j]:.3f} s (recorded with another servo table?)") from None


def infer_mode(samples: Sequence[BabbleSample], calm: np.ndarray, tolerance: float = 1e-4) -> str:
    """"upper", "lower" or "full": which commands left the calm face in the run."""
    moved = np.any(np.abs(np.stack([s.commands for s in samples]) - calm) > tolerance, axis=0)
    upper = moved[[COMMAND_NAMES.index(n) for n in UPPER_COMMANDS]].any()
    lower = moved[[COMMAND_NAMES.index(n) for n in LOWER_COMMANDS]].any()
    return "upper" if upper and not lower else "lower" if lower and not upper else "full"


# ------------------------------------------------------------------------------------- writing
def write_bag(path: str | Path, messages: Iterable[tuple[str, str, int, Any]], storage: str = "sqlite3",
              store: Any = None) -> Path:
    """Write ``(topic, msgtype, time_ns, message)`` tuples as a rosbag2 (``sqlite3`` or ``mcap``).

    Each message type's definition is stored with its connection, so ROS tools can read the bag.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    if storage not in STORAGES:
        raise InputError(f"unknown bag storage {storage!r}; use {' or '.join(STORAGES)}")
    path = Path(path)
    if path.exists():
        raise InputError(f"{path} exists; a bag is written into a new directory")
    store = store or emo_typestore()
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    connections: dict[str, Any] = {}
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        for topic, msgtype, time_ns, msg in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(connections[topic], int(time_ns), store.serialize_cdr(msg, msgtype))
    return path
