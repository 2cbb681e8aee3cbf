"""The motor-babbling dataset: what the robot's face did for each command it was sent.

Layout (modelled on LeRobot's ``meta/info.json`` + data chunks, so other tools can read it)::

    DIR/meta/info.json            versioned manifest (schema, robot config hash, seed, mode, chunks)
    DIR/data/chunk-000000.npz     samples 0 .. chunk_size-1
    DIR/data/chunk-000001.npz     ...

Each chunk is a plain ``.npz`` (arrays only, read with ``allow_pickle=False``) holding
``index`` (n,) int64 sample numbers, ``commands`` (n, 11) float32 commands sent, ``present``
(n, 11) float32 present commands when the face was captured, ``landmarks`` (n, 113, 2) float32
robot-face landmarks in canonical order, robot space, and ``settled`` (n,) bool.

Durability: every write is temp file + fsync + ``os.replace`` (a reader or a crash sees the old
file or the complete new one, never half of one). Full chunks are never rewritten (append-only);
the one partial chunk at the end is replaced by a superset of itself at each flush. With
``flush_every=1`` a run killed at any moment loses at most the sample in flight. The manifest is
rewritten (plus a directory fsync) when a chunk is completed and on close; in between, the tail
chunk holds more samples than the manifest records, and opening the directory adopts them: the
tail must load cleanly (npz members carry CRC-32s) and continue the sample sequence. Every chunk
the manifest records in full carries its SHA-256; a chunk that fails to load or to match is
reported by name with :class:`~emo_core.errors.SchemaError`.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes
from ..errors import InputError, SchemaError
from ..schema import COMMAND_NAMES, LOWER, MP_INDICES, N_COMMANDS, N_LANDMARKS, UPPER

LOG = logging.getLogger(__name__)

FORMAT = "emo-babbling"
VERSION = 1
INFO = Path("meta") / "info.json"
DATA = Path("data")
_CHUNK_RE = re.compile(r"^chunk-(\d{6})\.npz$")
#: Manifest fields a resumed run must agree on with the run that started the directory.
RESUME_KEYS = ("mode", "seed", "robot", "calm_commands", "constraints_fingerprint")


def landmark_schema() -> dict[str, Any]:
    """The landmark schema recorded in manifests and model cards."""
    return {
        "n": N_LANDMARKS,
        "dims": 2,
        "space": "robot",
        "order": "canonical",
        "mediapipe_indices_sha256": hashlib.sha256(MP_INDICES.astype("<i8").tobytes()).hexdigest()[:16],
        "upper": [UPPER.start, UPPER.stop],
        "lower": [LOWER.start, LOWER.stop],
    }


def chunk_name(number: int) -> str:
    return f"chunk-{number:06d}.npz"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _samples_sha256(arrays: "BabblingArrays") -> str:
    """SHA-256 of the samples themselves (not of their npz container, which carries timestamps): lets
    a grown tail chunk prove that the samples the manifest already recorded are still the same."""
    digest = hashlib.sha256()
    for key, dtype in (("index", "<i8"), ("commands", "<f4"), ("present", "<f4"), ("landmarks", "<f4"),
                       ("settled", "|b1")):
        digest.update(np.ascontiguousarray(getattr(arrays, key), dtype).tobytes())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------ samples
@dataclass
class BabblingArrays:
    """Samples of a dataset (or of one chunk) as arrays."""

    index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    commands: np.ndarray = field(default_factory=lambda: np.zeros((0, N_COMMANDS), np.float32))
    present: np.ndarray = field(default_factory=lambda: np.zeros((0, N_COMMANDS), np.float32))
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, N_LANDMARKS, 2), np.float32))
    settled: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def to_npz_bytes(self) -> bytes:
        buffer = io.BytesIO()
        # Uncompressed: the partial chunk is rewritten at every flush and must stay cheap.
        np.savez(buffer, index=self.index, commands=self.commands, present=self.present,
                 landmarks=self.landmarks, settled=self.settled)
        return buffer.getvalue()

    @classmethod
    def concatenate(cls, parts: list["BabblingArrays"]) -> "BabblingArrays":
        if not parts:
            return cls()
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in
                     ("index", "commands", "present", "landmarks", "settled")))

    def subset(self, rows: np.ndarray) -> "BabblingArrays":
        return BabblingArrays(self.index[rows], self.commands[rows], self.present[rows],
                              self.landmarks[rows], self.settled[rows])


def _parse_chunk(data: bytes, where: Path) -> BabblingArrays:
    """Load and validate one chunk; SchemaError naming ``where`` on anything wrong."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = BabblingArrays(**{k: npz[k] for k in ("index", "commands", "present", "landmarks", "settled")})
    except Exception as exc:  # zip, npy-header, missing-key and pickle errors all mean "corrupt"
        raise SchemaError(f"babbling chunk {where} is corrupt or unreadable: {exc}") from exc
    n = len(arrays)
    expected = {"index": (n,), "commands": (n, N_COMMANDS), "present": (n, N_COMMANDS),
                "landmarks": (n, N_LANDMARKS, 2), "settled": (n,)}
    for key, shape in expected.items():
        if getattr(arrays, key).shape != shape:
            raise SchemaError(f"babbling chunk {where}: {key} has shape {getattr(arrays, key).shape}, expected {shape}")
    if n and np.any(np.diff(arrays.index) != 1):
        raise SchemaError(f"babbling chunk {where}: sample indices are not consecutive")
    for key in ("commands", "present", "landmarks"):
        if not np.all(np.isfinite(getattr(arrays, key))):
            raise SchemaError(f"babbling chunk {where}: {key} contains NaN or inf")
    return arrays


# ----------------------------------------------------------------------------------------- dataset
class BabblingDataset:
    """Read access to a babbling directory: the manifest and its verified chunks."""

    def __init__(self, root: str | Path, info: dict[str, Any], chunks: list[BabblingArrays]) -> None:
        self.root = Path(root)
        self.info = info
        self._chunks = chunks

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, root: str | Path) -> "BabblingDataset":
        """Open an existing dataset; InputError if absent, SchemaError if malformed or corrupt."""
        root = Path(root)
        info = read_info(root)
        chunks = _load_chunks(root, info)
        return cls(root, info, chunks)

    @staticmethod
    def is_dataset(path: str | Path) -> bool:
        return (Path(path) / INFO).is_file()

    # ------------------------------------------------------------------ access
    @property
    def mode(self) -> str:
        return str(self.info["mode"])

    @property
    def n_samples(self) -> int:
        return sum(len(c) for c in self._chunks)

    def __len__(self) -> int:
        return self.n_samples

    def arrays(self) -> BabblingArrays:
        return BabblingArrays.concatenate(self._chunks)

    @property
    def calm_commands(self) -> np.ndarray:
        return np.asarray(self.info["calm_commands"], dtype=np.float32)

    def fingerprint(self) -> str:
        """Hash of the manifest header and every chunk's checksum: identifies the training data."""
        body = {k: self.info[k] for k in ("format", "version", "mode", "seed", "robot", "command_names",
                                           "landmarks", "constraints_fingerprint")}
        body["chunks"] = [(c["file"], c["n"], c["sha256"]) for c in self.info["chunks"]]
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def read_info(root: Path) -> dict[str, Any]:
    """Read and validate ``meta/info.json`` of a babbling directory."""
    path = root / INFO
    if not path.is_file():
        raise InputError(f"{root} is not a babbling dataset (no {INFO})")
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SchemaError(f"{path}: unreadable manifest: {exc}") from exc
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise SchemaError(f"{path}: not an {FORMAT} manifest")
    if info.get("version") != VERSION:
        raise SchemaError(f"{path}: manifest version {info.get('version')} unsupported (this code reads {VERSION})")
    if tuple(info.get("command_names", ())) != COMMAND_NAMES:
        raise SchemaError(f"{path}: command names {info.get('command_names')} differ from {list(COMMAND_NAMES)}")
    if info.get("landmarks") != landmark_schema():
        raise SchemaError(f"{path}: landmark schema {info.get('landmarks')} differs from {landmark_schema()}")
    for key in ("mode", "seed", "robot", "chunk_size", "chunks", "calm_commands"):
        if key not in info:
            raise SchemaError(f"{path}: manifest lacks {key!r}")
    return info


def _load_chunks(root: Path, info: dict[str, Any], adopt: bool = True) -> list[BabblingArrays]:
    """Load every recorded chunk (verifying checksums), then adopt a chunk the manifest missed.

    Adoption covers exactly one crash window: the chunk file was renamed into place but the
    manifest rename did not happen. The file must then continue the sample sequence.
    """
    chunks: list[BabblingArrays] = []
    expected_start = 0
    records = info["chunks"]
    for k, record in enumerate(records):
        path = root / record["file"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SchemaError(f"babbling chunk {path} is missing or unreadable: {exc}") from exc
        last = k == len(records) - 1
        if _sha256(data) != record["sha256"]:
            arrays = _parse_chunk(data, path) if last and adopt else None
            if arrays is None or len(arrays) <= record["n"] or int(arrays.index[0]) != expected_start:
                raise SchemaError(f"babbling chunk {path} is corrupt: checksum mismatch with {INFO}")
            _check_recorded_prefix(arrays, record, path)
            LOG.info("adopting %d samples of %s written after the last manifest update", len(arrays) - record["n"], path)
            record.update(n=len(arrays), sha256=_sha256(data), n_unsettled=int((~arrays.settled).sum()),
                          samples_sha256=_samples_sha256(arrays))
        else:
            arrays = _parse_chunk(data, path)
        if len(arrays) != record["n"] or (len(arrays) and int(arrays.index[0]) != expected_start):
            raise SchemaError(f"babbling chunk {path} does not match its manifest record")
        chunks.append(arrays)
        expected_start += len(arrays)
    if adopt:
        _adopt_unrecorded(root, info, chunks, expected_start)
    return chunks


def _check_recorded_prefix(arrays: BabblingArrays, record: dict[str, Any], path: Path) -> None:
    """A grown tail chunk must still hold, unchanged, the samples the manifest recorded."""
    recorded = record.get("samples_sha256")
    if recorded is None:
        LOG.warning("%s: manifest record from before sample checksums; its recorded samples cannot be "
                    "verified before adopting the new ones", path)
        return
    if _samples_sha256(arrays.subset(np.arange(record["n"]))) != recorded:
        raise SchemaError(f"babbling chunk {path} is corrupt: it grew, but its first {record['n']} samples "
                          f"are not the ones {INFO} recorded")


def _adopt_unrecorded(root: Path, info: dict[str, Any], chunks: list[BabblingArrays], start: int) -> None:
    number = len(info["chunks"])
    path = root / DATA / chunk_name(number)
    if not path.is_file():
        return
    data = path.read_bytes()
    arrays = _parse_chunk(data, path)
    if not len(arrays) or int(arrays.index[0]) != start:
        raise SchemaError(f"babbling chunk {path} is not recorded in {INFO} and does not continue it")
    LOG.info("adopting %s (%d samples) written after the last manifest update", path, len(arrays))
    info["chunks"].append({"file": str(DATA / chunk_name(number)), "n": len(arrays), "sha256": _sha256(data),
                           "first_index": start, "n_unsettled": int((~arrays.settled).sum()),
                           "samples_sha256": _samples_sha256(arrays)})
    chunks.append(arrays)


# ------------------------------------------------------------------------------------------ writer
@dataclass
class BabblingHeader:
    """What identifies a babbling run: a resumed run must match it exactly."""

    mode: str
    seed: int
    robot: dict[str, Any]
    calm_commands: list[float]
    constraints: dict[str, Any]
    constraints_fingerprint: str
    chunk_size: int = 100

    def manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "command_names": list(COMMAND_NAMES),
            "landmarks": landmark_schema(),
            "mode": self.mode,
            "seed": int(self.seed),
            "robot": self.robot,
            "calm_commands": [float(v) for v in self.calm_commands],
            "constraints": self.constraints,
            "constraints_fingerprint": self.constraints_fingerprint,
            "chunk_size": int(self.chunk_size),
            "n_samples": 0,
            "n_unsettled": 0,
            "chunks": [],
        }


class BabblingWriter:
    """Append samples to a babbling directory; creates it, or resumes it after any interruption.

    ``flush_every`` samples (default 1: lose at most the sample in flight) the current chunk and
    then the manifest are replaced atomically. Use as a context manager so a clean exit flushes.
    """

    def __init__(self, root: str | Path, header: BabblingHeader, flush_every: int = 1) -> None:
        if header.chunk_size < 1 or flush_every < 1:
            raise InputError("chunk_size and flush_every must be >= 1")
        self.root = Path(root)
        self.flush_every = flush_every
        if (self.root / INFO).is_file():
            self.info = read_info(self.root)
            _check_resume(self.info, header.manifest(), self.root)
            chunks = _load_chunks(self.root, self.info)
        else:
            if self.root.exists() and any(self.root.iterdir()):
                raise InputError(f"{self.root} exists, is not empty and is not a babbling dataset")
            self.info = header.manifest()
            chunks = []
        self._remove_stale_temp_files()
        self.chunk_size = int(self.info["chunk_size"])
        if self.chunk_size != header.chunk_size:
            LOG.info("resuming %s with its recorded chunk size %d", self.root, self.chunk_size)
        self._done = sum(len(c) for c in chunks)
        self._last_commands = chunks[-1].commands[-1].copy() if self._done else None
        # The partial last chunk is reopened and grown; full chunks are never touched again.
        tail = chunks[-1] if chunks and len(chunks[-1]) < self.chunk_size else None
        self._chunk_number = len(self.info["chunks"]) - (1 if tail is not None else 0)
        self._pending: list[BabblingArrays] = [tail] if tail is not None else []
        self._pending_n = len(tail) if tail is not None else 0
        self._unflushed = 0
        self._write_manifest()

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> "BabblingWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        # Flush on every exit: what was appended is complete, whatever interrupted the run.
        self.close()

    def close(self) -> None:
        """Flush everything and bring the manifest up to date."""
        self.flush(closing=True)

    # ------------------------------------------------------------------ state
    @property
    def n_samples(self) -> int:
        """Samples appended so far (recorded or pending)."""
        return self._done

    @property
    def last_commands(self) -> np.ndarray | None:
        """Commands of the last stored sample (the robot's previous pose on resume)."""
        return self._last_commands

    # ------------------------------------------------------------------ writing
    def append(self, commands: np.ndarray, present: np.ndarray, landmarks: np.ndarray, settled: bool) -> int:
        """Store the next sample; returns its index."""
        commands = np.asarray(commands, np.float32).reshape(N_COMMANDS)
        present = np.asarray(present, np.float32).reshape(N_COMMANDS)
        landmarks = np.asarray(landmarks, np.float32)
        if landmarks.shape != (N_LANDMARKS, 2) or not np.all(np.isfinite(landmarks)):
            raise SchemaError(f"babbling sample: landmarks must be finite (113, 2), got {landmarks.shape}")
        index = self._done
        self._pending.append(BabblingArrays(np.array([index], np.int64), commands[None], present[None],
                                            landmarks[None], np.array([bool(settled)])))
        self._pending_n += 1
        self._done += 1
        self._last_commands = commands.copy()
        self._unflushed += 1
        if self._pending_n == self.chunk_size or self._unflushed >= self.flush_every:
            self.flush()
        return index

    def flush(self, closing: bool = False) -> None:
        """Write the current chunk atomically (and the manifest when needed or ``closing``)."""
        if not self._unflushed:
            if closing and self._manifest_stale():
                self._write_manifest()
            return
        arrays = BabblingArrays.concatenate(self._pending)
        self._pending = [arrays]
        rel = DATA / chunk_name(self._chunk_number)
        data = arrays.to_npz_bytes()
        atomic_write_bytes(self.root / rel, data, sync_dir=False)
        record = {"file": str(rel), "n": len(arrays), "sha256": _sha256(data), "first_index": int(arrays.index[0]),
                  "n_unsettled": int((~arrays.settled).sum()), "samples_sha256": _samples_sha256(arrays)}
        new_chunk = not (self.info["chunks"] and self.info["chunks"][-1]["file"] == str(rel))
        if new_chunk:
            self.info["chunks"].append(record)
        else:
            self.info["chunks"][-1] = record
        self._unflushed = 0
        full = len(arrays) == self.chunk_size
        # The manifest only has to change when a chunk appears or completes (or on close): the
        # samples in a growing tail chunk are adopted on open (see the module docstring).
        if new_chunk or full or closing:
            self._write_manifest()
        if full:
            self._chunk_number += 1
            self._pending, self._pending_n = [], 0

    def _manifest_stale(self) -> bool:
        on_disk = json.loads((self.root / INFO).read_text())
        return on_disk.get("chunks") != self.info["chunks"]

    def _write_manifest(self) -> None:
        self.info["n_samples"] = sum(c["n"] for c in self.info["chunks"])
        self.info["n_unsettled"] = sum(c.get("n_unsettled", 0) for c in self.info["chunks"])
        atomic_write_bytes(self.root / INFO, (json.dumps(self.info, indent=2) + "\n").encode(), sync_dir=True)

    def _remove_stale_temp_files(self) -> None:
        for folder in (self.root / "meta", self.root / DATA):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    LOG.info("removing %s left by an interrupted write", tmp)
                    tmp.unlink()


def _check_resume(info: dict[str, Any], fresh: dict[str, Any], root: Path) -> None:
    for key in RESUME_KEYS:
        if info.get(key) != fresh.get(key):
            raise InputError(f"{root} was started with {key}={info.get(key)!r}; this run has {fresh.get(key)!r}. "
                             "Use a new --out directory or the original settings.")
