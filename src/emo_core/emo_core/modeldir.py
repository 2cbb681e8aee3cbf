"""Model directories written whole and read back checked.

A model directory (the predictor with its detector scorer, the inverse model, ...) is one
artifact: its weights and cards must come from the same save. :class:`ModelDirWriter` stages every
file in a temp directory beside the target, fsyncs them, and swaps the directory in with one atomic
``renameat2(RENAME_EXCHANGE)`` (a plain rename when the target does not exist yet), so a reader --
or a process killed at any moment -- sees the old directory or the new one, never a mix. Files it
writes get the permissions a plain ``open()`` would give; temp directories left by a killed writer
are removed by the next writer of the same target.

Every card written through it carries a ``files`` manifest::

    "files": {"set": "<id of this save>", "cards": ["card.json", "detector.json"],
              "sha256": {"model.safetensors": "...", "detector.safetensors": "..."}}

covering *every* file of the save, so :func:`verify` -- called by each loader -- refuses one line
for a weights file that does not match, a file missing, or a card from another save (new weights
with an old detector). Cards written before manifests existed (``files`` absent) still load, with a
warning that they cannot be verified.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import InputError, SchemaError
from .signals import signals_deferred

LOG = logging.getLogger(__name__)

MANIFEST_KEY = "files"
_TMP_TAG = ".tmp-"
_RENAME_EXCHANGE = 2          # linux/fs.h


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass                                 # some filesystems cannot fsync a directory
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staging_path(target: Path) -> Path:
    """Where a writer of ``target`` stages it: beside it, hidden, named for :func:`clean_stale`."""
    return target.parent / f".{target.name}{_TMP_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def clean_stale(directory: Path) -> list[Path]:
    """Remove temp files or directories a killed writer of ``directory`` (a model directory or an
    output file) left beside it -- those of processes no longer running; returns them."""
    removed: list[Path] = []
    # A staged file may itself have been written through a temp file named after it (".<staged>.*",
    # as mkstemp-based writers do): those go too.
    prefixes = (f".{directory.name}{_TMP_TAG}", f"..{directory.name}{_TMP_TAG}")
    parent = directory.parent
    if not parent.is_dir():
        return removed
    for entry in parent.iterdir():
        prefix = next((p for p in prefixes if entry.name.startswith(p)), None)
        if prefix is None:
            continue
        pid_text = entry.name[len(prefix):].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and _pid_alive(int(pid_text)):
            continue                          # another writer is at work right now
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed.append(entry)
    if removed:
        LOG.info("removed %d stale temp director%s beside %s", len(removed), "y" if len(removed) == 1 else "ies",
                 directory)
    return removed


class ModelDirWriter:
    """Stage a model directory's files; :meth:`commit` replaces the directory with them as a whole.

    Use as a context manager: the directory is replaced when the block ends normally; on any
    exception (a Ctrl-C or SIGTERM included) the staged files are removed and the old directory
    stays as it was.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.set_id = uuid.uuid4().hex[:16]
        self._data: dict[str, bytes] = {}
        self._cards: dict[str, dict[str, Any]] = {}
        self.written: dict[str, dict[str, Any]] = {}      # card name -> the card as written

    def add_file(self, name: str, data: bytes) -> None:
        self._check_name(name)
        self._data[name] = bytes(data)

    def add_card(self, name: str, card: Mapping[str, Any]) -> None:
        """A JSON card; its ``files`` manifest is filled in at commit (every file of the save)."""
        self._check_name(name)
        if not isinstance(card, Mapping):
            raise TypeError("a model card is a mapping")
        self._cards[name] = dict(card)

    def _check_name(self, name: str) -> None:
        if not name or "/" in name or name.startswith(".") or name in self._data or name in self._cards:
            raise ValueError(f"bad or duplicate model file name {name!r}")

    def manifest(self) -> dict[str, Any]:
        return {"set": self.set_id, "cards": sorted(self._cards),
                "sha256": {name: sha256_bytes(data) for name, data in sorted(self._data.items())}}

    def commit(self) -> Path:
        if not self._cards:
            raise ValueError("a model directory needs at least one card")
        target = self.directory
        if target.exists() and not target.is_dir():
            raise InputError(f"cannot write a model directory at {target}: it is a file")
        parent = target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            clean_stale(target)
            staging = staging_path(target)
            staging.mkdir(mode=0o777 & ~_umask())
        except OSError as exc:
            raise InputError(f"cannot write model directory {target}: {exc.strerror or exc}") from None
        leftover: Path | None = staging      # what the finally below removes (None: nothing)
        try:
            manifest = self.manifest()
            files = dict(self._data)
            for name, card in self._cards.items():
                card = {**card, MANIFEST_KEY: manifest}
                self.written[name] = card
                files[name] = (json.dumps(card, indent=2) + "\n").encode()
            mode = 0o666 & ~_umask()
            for name, data in files.items():
                fd = os.open(staging / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            _fsync_path(staging)
            with signals_deferred():          # the swap and its bookkeeping are never cut in half
                if target.is_dir():
                    if not _exchange(staging, target):
                        # No atomic swap on this filesystem: two renames (a crash between them leaves
                        # the old directory under the staging name, still whole).
                        old = parent / f".{target.name}{_TMP_TAG}{os.getpid()}-old-{uuid.uuid4().hex[:8]}"
                        os.rename(target, old)
                        os.rename(staging, target)
                        leftover = old
                else:
                    os.rename(staging, target)
                    leftover = None
            _fsync_path(parent)
        except OSError as exc:
            raise InputError(f"cannot write model directory {target}: {exc.strerror or exc}") from None
        finally:
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)   # the old directory, or an aborted stage
        return target

    def __enter__(self) -> "ModelDirWriter":
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.commit()


@contextlib.contextmanager
def writing(directory: str | Path, writer: "ModelDirWriter | None" = None) -> Iterator[ModelDirWriter]:
    """A writer for ``directory``: the caller's (so several models share one save) or a new one
    that commits when the block ends."""
    if writer is not None:
        yield writer
        return
    with ModelDirWriter(directory) as own:
        yield own


class OutputSet:
    """Output files replaced together (``emo demo``'s video, plot and report): each is staged beside
    its target while the run goes on, and all are renamed into place at the end, back to back with
    the stop signals deferred. An interrupted run leaves the previous set; its staged files go."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._staged: dict[Path, Path] = {}

    def stage(self, name: str) -> Path:
        """The path to write ``name`` to (cleaning what a killed earlier run left for it)."""
        target = self.directory / name
        clean_stale(target)
        path = self._staged[target] = staging_path(target)
        return path

    def write_bytes(self, name: str, data: bytes) -> Path:
        path = self.stage(name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return path

    def commit(self) -> list[Path]:
        for staged in self._staged.values():
            if not staged.is_file():
                raise InputError(f"output {staged.name} was not written")
            _fsync_path(staged)
            os.chmod(staged, 0o666 & ~_umask())          # ordinary files, whatever wrote them
        with signals_deferred():                          # the renames run back to back
            for target, staged in self._staged.items():
                os.replace(staged, target)
        _fsync_path(self.directory)
        done = list(self._staged)
        self._staged.clear()
        return done

    def discard(self) -> None:
        for staged in self._staged.values():
            with contextlib.suppress(OSError):
                staged.unlink()
        self._staged.clear()

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


# -- reading ------------------------------------------------------------------------------------
def read_card(directory: Path, name: str, what: str) -> dict[str, Any]:
    """A card as a dict, or one clear error: missing (InputError), unreadable, binary, not JSON or
    not a JSON object (SchemaError)."""
    path = Path(directory) / name
    if not Path(directory).is_dir():
        raise InputError(f"{what}: {directory} is not a directory")
    if not path.is_file():
        raise InputError(f"no {what} in {directory} (missing {name})")
    try:
        card = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise SchemaError(f"{path} is not a JSON model card: {exc}") from None
    if not isinstance(card, dict):
        raise SchemaError(f"{path}: a model card is a JSON object, got {type(card).__name__}")
    return card


def verify(directory: Path, card: Mapping[str, Any], name: str) -> None:
    """Check the directory against the card's ``files`` manifest: every file present with its
    checksum, every card of the save from the same save. Legacy cards (no manifest) pass, warned."""
    directory = Path(directory)
    manifest = card.get(MANIFEST_KEY)
    if manifest is None:
        LOG.warning("%s was written without file checksums: it cannot be checked for a mixed or "
                    "damaged directory (save it again to add them)", directory / name)
        return
    where = directory / name
    if not (isinstance(manifest, dict) and isinstance(manifest.get("set"), str)
            and isinstance(manifest.get("cards"), list) and isinstance(manifest.get("sha256"), dict)):
        raise SchemaError(f"{where}: malformed '{MANIFEST_KEY}' manifest")
    for file, digest in manifest["sha256"].items():
        path = directory / str(file)
        if not path.is_file():
            raise SchemaError(f"{directory} is incomplete: {file} (listed in {name}) is missing")
        try:
            actual = sha256_file(path)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        if actual != digest:
            raise SchemaError(f"{directory} is mixed or damaged: {file} does not match the checksum in {name}")
    for other in manifest["cards"]:
        if other == name:
            continue
        other_card = read_card(directory, str(other), "model card")
        other_set = (other_card.get(MANIFEST_KEY) or {}).get("set") if isinstance(
            other_card.get(MANIFEST_KEY), dict) else None
        if other_set != manifest["set"]:
            raise SchemaError(f"{directory} is mixed: {other} comes from another save than {name}")


def seal(directory: str | Path, card_names: list[str]) -> dict[str, dict[str, Any]]:
    """Rewrite the cards of an existing directory with a manifest of its current files, leaving
    every other file's bytes as they are (migrates directories written before manifests)."""
    directory = Path(directory)
    writer = ModelDirWriter(directory)
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        if entry.name in card_names:
            card = read_card(directory, entry.name, "model card")
            card.pop(MANIFEST_KEY, None)
            writer.add_card(entry.name, card)
        else:
            writer.add_file(entry.name, entry.read_bytes())
    writer.commit()
    return writer.written


__all__ = ["MANIFEST_KEY", "ModelDirWriter", "OutputSet", "clean_stale", "staging_path", "read_card", "seal", "sha256_bytes",
           "sha256_file", "verify", "writing"]
