"""The real-face evaluation set: recordings of real people that this project did not make.

The recordings ship inside public registry packages (test data and examples of face-analysis
projects on PyPI and npm), under those packages' licences; the project commits none of them. What
it commits is ``data/realfaces/manifest.json`` -- for every recording its package, version, path
inside the package, SHA-256, licence and what happens in it -- and one episodes sidecar per
recording (``<name>.episodes.json``: the spans where an expression rises, and the distractor spans:
talking, head motion, occlusion), the annotation that ``emo eval video`` measures against.

:func:`build` rebuilds the set from its sources with the ordinary registry clients (``pip download
--no-deps``, ``npm pack``), checks every file's checksum and writes the videos, their sidecars and
a copy of the manifest into one folder, atomically (a half-built set is never left behind):

    emo dataset realfaces --out realfaces        # then: emo eval video realfaces --json
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..resources import data_path

LOG = logging.getLogger(__name__)

FORMAT = "emo.realfaces"
MANIFEST = "manifest.json"
#: Where tests and ``emo eval video`` look for a built set unless told otherwise.
ENV_VAR = "EMO_REALFACES"


@dataclass(frozen=True)
class Source:
    name: str
    registry: str          # "pypi" | "npm"
    package: str
    version: str
    artifact: str          # the file the client downloads
    licence: str
    sdist: bool = False    # the files are in the source distribution only
    python_version: str | None = None   # the package's own Python floor, when above this one's


@dataclass(frozen=True)
class Recording:
    name: str              # file name in the built set
    source: str            # Source.name
    path: str              # path inside the artifact
    sha256: str
    person: str
    licence: str
    content: str


def manifest_path() -> Path:
    return data_path("realfaces") / MANIFEST


def load_manifest(path: str | Path | None = None) -> tuple[dict[str, Source], list[Recording]]:
    p = Path(path) if path is not None else manifest_path()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
        sources = {name: Source(name=name, **spec) for name, spec in data["sources"].items()}
        recordings = [Recording(**r) for r in data["recordings"]]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{p}: not a real-face manifest ({exc})") from None
    for r in recordings:
        if r.source not in sources:
            raise InputError(f"{p}: recording {r.name} names unknown source {r.source!r}")
    return sources, recordings


def sidecar(recording: Recording) -> Path:
    return data_path("realfaces") / (Path(recording.name).stem + ".episodes.json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(source: Source, into: Path) -> Path:
    """The source's artifact in ``into`` (downloaded with its registry's own client if absent)."""
    target = into / source.artifact
    if target.is_file():
        return target
    if source.registry == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--no-binary" if source.sdist else "--only-binary", ":all:", "-d", str(into),
               f"{source.package}=={source.version}"]
        if source.python_version:
            cmd += ["--python-version", source.python_version]
    elif source.registry == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise InputError(f"{source.package}: npm is needed to fetch it from the npm registry (apt-get install npm)")
        cmd = [npm, "pack", "--silent", "--pack-destination", str(into), f"{source.package}@{source.version}"]
    else:
        raise InputError(f"source {source.name}: unknown registry {source.registry!r}")
    LOG.info("fetching %s %s from %s", source.package, source.version, source.registry)
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not target.is_file():
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise InputError(f"could not fetch {source.package}=={source.version} from {source.registry}: {last[0]}")
    return target


def _extract(artifact: Path, member: str, dest: Path) -> None:
    if artifact.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(artifact) as z, z.open(member) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out)
        return
    with tarfile.open(artifact) as t:
        member_file = t.extractfile(member)
        if member_file is None:
            raise InputError(f"{artifact.name}: {member} is not a file")
        with member_file, dest.open("wb") as out:
            shutil.copyfileobj(member_file, out)


def build(out: str | Path, cache: str | Path | None = None, only: list[str] | None = None,
          progress: Callable[[str], None] | None = None) -> Path:
    """Rebuild the set into ``out`` (replaced as a whole); ``cache`` keeps the downloaded packages
    (default: a temporary folder). Returns ``out``."""
    sources, recordings = load_manifest()
    if only:
        unknown = set(only) - {r.name for r in recordings}
        if unknown:
            raise InputError(f"not in the real-face manifest: {', '.join(sorted(unknown))}")
        recordings = [r for r in recordings if r.name in only]
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".realfaces-", dir=out.parent) as tmp:
        staging = Path(tmp) / "set"
        staging.mkdir()
        downloads = Path(cache) if cache is not None else Path(tmp) / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        for rec in recordings:
            artifact = _download(sources[rec.source], downloads)
            dest = staging / rec.name
            try:
                _extract(artifact, rec.path, dest)
            except KeyError:
                raise InputError(f"{artifact.name} has no {rec.path}") from None
            digest = _sha256(dest)
            if digest != rec.sha256:
                raise InputError(f"{rec.name}: checksum {digest[:12]}... does not match the manifest's {rec.sha256[:12]}...")
            side = sidecar(rec)
            if side.is_file():
                shutil.copyfile(side, staging / side.name)
            if progress is not None:
                progress(rec.name)
        shutil.copyfile(manifest_path(), staging / MANIFEST)
        for p in staging.iterdir():
            p.chmod(0o644)
        staging.chmod(0o755)
        old = Path(tmp) / "old"
        if out.exists():
            out.rename(old)
        staging.rename(out)
    return out


def describe(out: Path) -> dict[str, Any]:
    sources, recordings = load_manifest(out / MANIFEST)
    return {"folder": str(out), "recordings": len(recordings), "people": len({r.person for r in recordings}),
            "sources": sorted({f"{s.package}=={s.version} ({s.registry})" for s in sources.values()})}
