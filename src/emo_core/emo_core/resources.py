"""Locate configuration files and bundled data without hard-coded paths.

Config lookup order for ``config_path("servos.yaml")``:
1. ``$EMO_CONFIG_DIR/servos.yaml`` (explicit override);
2. the ``config/`` directory of a source checkout (editable install, tests, colcon --symlink-install);
3. ``share/emo_bringup/config`` of any prefix on ``$AMENT_PREFIX_PATH`` (a ROS 2 install);
4. the copy built into the package (``emo_core/_config``, made by setup.py for wheels).

Bundled data (default models, the demo clip) lives in ``emo_core/data`` and is found with
:func:`data_path`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent


def _candidates(name: str) -> list[Path]:
    found: list[Path] = []
    override = os.environ.get("EMO_CONFIG_DIR")
    if override:
        found.append(Path(override) / name)
    # Source checkout: <repo>/src/emo_core/emo_core/resources.py -> <repo>/config
    for parent in PACKAGE_DIR.parents:
        if (parent / "config").is_dir() and (parent / "src" / "emo_core").is_dir():
            found.append(parent / "config" / name)
            break
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        found.append(Path(prefix) / "share" / "emo_bringup" / "config" / name)
    found.append(PACKAGE_DIR / "_config" / name)
    return found


def config_path(name: str) -> Path:
    """Return the path of a default configuration file, or raise a clear ConfigError."""
    candidates = _candidates(name)
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(f"config file {name!r} not found (looked in {', '.join(str(p.parent) for p in candidates)})")


def read_yaml(path: str | Path, what: str) -> Any:
    """One YAML document, or one clear ConfigError: unreadable, a directory, not UTF-8 text (a
    binary file), not YAML, or empty -- an empty file is refused everywhere rather than meaning
    "defaults" in some commands and an error in others."""
    import yaml

    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a directory, not a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not a text file (binary content)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        raise ConfigError(f"{what} {path} is empty")
    return data


def msg_dir() -> Path:
    """Directory holding the project's .msg definitions (FaceLandmarks.msg, ...)."""
    candidates = []
    for parent in PACKAGE_DIR.parents:
        if (parent / "msg").is_dir() and (parent / "src" / "emo_core").is_dir():
            candidates.append(parent / "msg")
            break
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "share" / "emo_msgs" / "msg")
    candidates.append(PACKAGE_DIR / "_msg")
    for path in candidates:
        if (path / "FaceLandmarks.msg").is_file():
            return path
    raise ConfigError(f"message definitions not found (looked in {', '.join(map(str, candidates))})")


def data_path(*parts: str) -> Path:
    """Path of a file shipped inside the package (``emo_core/data/...``); need not exist yet."""
    return PACKAGE_DIR.joinpath("data", *parts)
