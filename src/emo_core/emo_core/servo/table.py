"""The servo table: which servo is where, its limits and home, and which command drives it.

``config/servos.yaml`` lists the 26 servos of the head. Each facial servo *follows* one normalized
command in [0, 1] (the 11 :data:`~emo_core.schema.COMMAND_NAMES`); the eyes follow the gaze targets
and the neck servos the neck targets. Command ``c`` maps to ticks between the servo's limits::

    ticks = min + c * (max - min)      # normal mounting
    ticks = max - c * (max - min)      # inverted (mirrored) mounting

so the same command moves a left/right pair symmetrically. :meth:`ServoTable.ticks_to_commands` is
the inverse (the mean over the servos that follow a command), used by the digital twin to show what
the servos actually did.
"""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError
from ..resources import config_path, read_yaml
from ..schema import COMMAND_NAMES, N_COMMANDS
from .models import ModelSpec, model as model_spec

LOG = logging.getLogger(__name__)

#: Targets besides the 11 expression commands: conjugate gaze and the three neck axes, 0.5 = centre.
TARGET_NAMES: tuple[str, ...] = ("gaze_yaw", "gaze_pitch", "neck_roll", "neck_pitch", "neck_yaw")
#: Every drive channel: the 11 commands, then the gaze/neck targets.
CHANNEL_NAMES: tuple[str, ...] = COMMAND_NAMES + TARGET_NAMES
N_CHANNELS = len(CHANNEL_NAMES)

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SERVO_KEYS = {"id", "name", "group", "model", "min", "max", "home", "inverted", "command", "max_velocity"}
#: Servos sharing a command must rest at the same normalized value, or "calm face" is ambiguous.
HOME_PAIR_TOLERANCE = 0.02


@dataclass(frozen=True)
class ServoSpec:
    """One servo of the table. Positions are raw ticks of the servo's model."""

    id: int
    name: str
    group: str
    model: ModelSpec
    min: int
    max: int
    home: int
    inverted: bool = False
    command: str | None = None
    max_velocity: float = 1500.0   # ticks/s the driver lets this servo move at most

    @property
    def span(self) -> int:
        return self.max - self.min

    def to_ticks(self, c: float) -> int:
        """Normalized [0, 1] to ticks (c must already be finite and clamped)."""
        frac = (1.0 - c) if self.inverted else c
        return int(round(self.min + frac * self.span))

    def to_norm(self, ticks: float) -> float:
        frac = (ticks - self.min) / self.span
        return 1.0 - frac if self.inverted else frac

    @property
    def home_norm(self) -> float:
        return self.to_norm(self.home)


@dataclass(frozen=True)
class ServoTable:
    """The validated servo table, with vectorized command <-> ticks maps (servo order = file order)."""

    servos: tuple[ServoSpec, ...]
    source: str = "<dict>"
    baudrate: int = 1_000_000
    driver: Mapping[str, Any] = field(default_factory=dict)
    #: The bus emulator's plant model (``emulator:`` section): what the hardware does, for the sim.
    emulator: Mapping[str, Any] = field(default_factory=dict)
    _index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)
    #: Per-servo limit/home/velocity vectors and the channel follower matrices, built once.
    _arr: dict[str, np.ndarray] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {s.name: i for i, s in enumerate(self.servos)})
        self._arrays()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None) -> "ServoTable":
        """Load and validate a servo table (default: the configured ``servos.yaml``)."""
        path = Path(path) if path is not None else config_path("servos.yaml")
        data = read_yaml(path, "servo table")
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> "ServoTable":
        if not isinstance(data, dict) or not isinstance(data.get("servos"), list) or not data["servos"]:
            raise ConfigError(f"{source}: expected a mapping with a non-empty 'servos' list")
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise ConfigError(f"{source}: 'defaults' must be a mapping")
        servos = tuple(_parse_servo(entry, defaults, source, i) for i, entry in enumerate(data["servos"]))
        baudrate = int((data.get("bus") or {}).get("baudrate", 1_000_000))
        driver = data.get("driver") or {}
        if not isinstance(driver, dict):
            raise ConfigError(f"{source}: 'driver' must be a mapping")
        emulator = _parse_emulator(data.get("emulator") or {}, source)
        _validate(servos, source, partial=bool(data.get("partial", False)))
        return cls(servos=servos, source=source, baudrate=baudrate, driver=dict(driver), emulator=emulator)

    # -- lookups ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.servos)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.servos)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(s.id for s in self.servos)

    def index(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise InputError(f"unknown servo {name!r}; servos: {', '.join(self.names)}") from None

    def by_id(self, dxl_id: int) -> ServoSpec:
        for s in self.servos:
            if s.id == dxl_id:
                return s
        raise InputError(f"no servo with id {dxl_id} in {self.source}")

    def followers(self, channel: str) -> tuple[int, ...]:
        """Indices of the servos that follow a command or target."""
        return tuple(i for i, s in enumerate(self.servos) if s.command == channel)

    # -- vectorized maps ----------------------------------------------------------------------
    def _arrays(self) -> None:
        arr = {
            "min": np.array([s.min for s in self.servos], np.float64),
            "max": np.array([s.max for s in self.servos], np.float64),
            "home": np.array([s.home for s in self.servos], np.int64),
            "inv": np.array([s.inverted for s in self.servos], bool),
            "vmax": np.array([s.max_velocity for s in self.servos], np.float64),
        }
        # Channel -> servo follower matrix (n_servos x n_channels), for both directions of the map.
        follow = np.zeros((len(self.servos), N_CHANNELS), np.float64)
        for i, s in enumerate(self.servos):
            if s.command is not None:
                follow[i, CHANNEL_NAMES.index(s.command)] = 1.0
        arr["follow"] = follow
        counts = follow.sum(axis=0)
        arr["mean"] = np.divide(follow, counts, out=np.zeros_like(follow), where=counts > 0).T
        object.__setattr__(self, "_arr", arr)

    @property
    def min_ticks(self) -> np.ndarray:
        return self._arr["min"].astype(np.int64)

    @property
    def max_ticks(self) -> np.ndarray:
        return self._arr["max"].astype(np.int64)

    @property
    def home_ticks(self) -> np.ndarray:
        return self._arr["home"].copy()

    @property
    def max_velocity(self) -> np.ndarray:
        return self._arr["vmax"].copy()

    def norm_to_ticks(self, norm: np.ndarray) -> np.ndarray:
        """Per-servo normalized values (clamped to [0, 1]) to float ticks within the limits."""
        a = self._arr
        frac = np.where(a["inv"], 1.0 - np.clip(norm, 0.0, 1.0), np.clip(norm, 0.0, 1.0))
        return a["min"] + frac * (a["max"] - a["min"])

    def ticks_to_norm(self, ticks: np.ndarray) -> np.ndarray:
        """Per-servo ticks to normalized values (not clamped: a servo outside its limits shows it)."""
        a = self._arr
        frac = (np.asarray(ticks, np.float64) - a["min"]) / (a["max"] - a["min"])
        return np.where(a["inv"], 1.0 - frac, frac)

    def ticks_to_channels(self, ticks: np.ndarray) -> np.ndarray:
        """All 16 channels (commands then gaze/neck targets) from 26 servo ticks, clipped to [0, 1]."""
        ticks = np.asarray(ticks, np.float64)
        if ticks.shape != (len(self.servos),):
            raise InputError(f"expected {len(self.servos)} servo positions, got shape {ticks.shape}")
        if not np.all(np.isfinite(ticks)):
            raise InputError("servo positions contain NaN or inf")
        return np.clip(self._arr["mean"] @ self.ticks_to_norm(ticks), 0.0, 1.0)

    def ticks_to_commands(self, ticks: np.ndarray) -> np.ndarray:
        """The 11 normalized commands (COMMAND_NAMES order) that best explain 26 servo ticks.

        The inverse of the command map: each command is the mean normalized position of the
        servos that follow it (a left/right pair that disagrees gives the average), clipped to [0, 1].
        """
        return self.ticks_to_channels(ticks)[:N_COMMANDS]

    def resolve(self, positions: Mapping[str, float] | np.ndarray | list[float]) -> tuple[np.ndarray, np.ndarray]:
        """Per-servo normalized targets and a mask of the servos they set.

        ``positions`` is a mapping from command/target names (:data:`CHANNEL_NAMES`) or servo names
        to normalized values, or an array of 11 commands, 16 channels or one value per servo.
        Values outside [0, 1] are returned as they are (the caller clamps or rejects them); NaN, inf,
        non-numbers, unknown names and wrong lengths raise :class:`InputError`.
        """
        n = len(self.servos)
        norm = np.zeros(n, np.float64)
        mask = np.zeros(n, bool)
        if isinstance(positions, Mapping):
            for key, value in positions.items():
                v = _finite(value, str(key))
                if key in CHANNEL_NAMES:
                    idx = list(self.followers(key))
                elif key in self._index:
                    idx = [self._index[key]]
                else:
                    raise InputError(f"unknown command or servo {key!r}; commands: {', '.join(CHANNEL_NAMES)}; "
                                     f"servos: {', '.join(self.names)}")
                norm[idx] = v
                mask[idx] = True
            return norm, mask
        try:
            arr = np.asarray(positions, dtype=np.float64).ravel() if not isinstance(positions, (str, bytes)) else None
        except (TypeError, ValueError, OverflowError) as exc:
            # Object arrays, ragged lists, 10**400: garbage in, one clear error out.
            raise InputError(f"command values must be numbers: {exc}; nothing was sent") from None
        if arr is None or arr.size not in (N_COMMANDS, N_CHANNELS, n):
            size = "a string" if arr is None else arr.size
            raise InputError(f"expected {N_COMMANDS} commands, {N_CHANNELS} channels or {n} servo values, got {size}")
        # 11 or 16 values are commands/channels; one value per servo only for other table sizes.
        per_servo = arr.size == n and arr.size not in (N_COMMANDS, N_CHANNELS)
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            names = self.names if per_servo else CHANNEL_NAMES
            raise InputError(f"{names[bad[0]]}={arr[bad[0]]} is not finite; nothing was sent")
        if per_servo:
            return arr.copy(), np.ones(n, bool)
        follow = self._arr["follow"][:, :arr.size]
        mask = follow.any(axis=1)
        norm[mask] = follow[mask] @ arr
        return norm, mask

    def commands_to_ticks(self, commands: Mapping[str, float] | np.ndarray) -> np.ndarray:
        """Integer goal ticks for commands/targets (see :meth:`resolve`), clamped to the limits;
        servos that are not named stay at home."""
        norm, mask = self.resolve(commands)
        ticks = self.home_ticks.astype(np.float64)
        ticks[mask] = self.norm_to_ticks(norm)[mask]
        return np.rint(ticks).astype(np.int64)

    def home_commands(self) -> np.ndarray:
        """The 11 commands of the home (calm) face."""
        return self.ticks_to_commands(self.home_ticks)

    def models(self) -> dict[str, ModelSpec]:
        return {s.model.name: s.model for s in self.servos}


def _parse_servo(entry: Any, defaults: dict, source: str, index: int) -> ServoSpec:
    where = f"{source}: servo #{index + 1}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(entry).__name__}")
    unknown = set(entry) - _SERVO_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                          f"allowed: {', '.join(sorted(_SERVO_KEYS))}")
    merged = {**{k: v for k, v in defaults.items() if k in _SERVO_KEYS}, **entry}
    name = merged.get("name")
    if isinstance(name, str):
        where = f"{source}: servo {name!r}"
    missing = [k for k in ("id", "name", "min", "max", "home") if k not in merged]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"{where}: name must be lower_snake_case, got {name!r}")
    try:
        dxl_id = _int(merged["id"], "id")
        lo, hi, home = (_int(merged[k], k) for k in ("min", "max", "home"))
        vmax = float(merged.get("max_velocity", 1500.0))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    where = f"{source}: servo {name!r} (id {dxl_id})"
    inverted = merged.get("inverted", False)
    if not isinstance(inverted, bool):
        raise ConfigError(f"{where}: inverted must be true or false, got {inverted!r}")
    command = merged.get("command")
    if command is not None and command not in CHANNEL_NAMES:
        raise ConfigError(f"{where}: unknown command {command!r}; commands: {', '.join(CHANNEL_NAMES)}")
    try:
        spec_model = model_spec(str(merged.get("model", "")))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not 0 <= dxl_id <= 252:
        raise ConfigError(f"{where}: id must be 0..252")
    if not lo < hi:
        raise ConfigError(f"{where}: min {lo} must be below max {hi}")
    if lo < 0 or hi > spec_model.position_max:
        raise ConfigError(f"{where}: limits [{lo}, {hi}] outside the {spec_model.name} range "
                          f"[0, {spec_model.position_max}]")
    if not lo <= home <= hi:
        raise ConfigError(f"{where}: home {home} outside its limits [{lo}, {hi}]")
    if not (math.isfinite(vmax) and vmax > 0):
        raise ConfigError(f"{where}: max_velocity must be a positive number of ticks/s, got {vmax}")
    return ServoSpec(id=dxl_id, name=name, group=str(merged.get("group", "")), model=spec_model,
                     min=lo, max=hi, home=home, inverted=inverted, command=command, max_velocity=vmax)


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{what}={value!r} is not a number")
    try:
        v = float(value)
    except OverflowError:
        raise InputError(f"{what} is too large; nothing was sent") from None
    if not math.isfinite(v):
        raise InputError(f"{what}={v} is not finite; nothing was sent")
    return v


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return int(value)


def _validate(servos: tuple[ServoSpec, ...], source: str, partial: bool) -> None:
    seen_ids: dict[int, str] = {}
    seen_names: set[str] = set()
    for s in servos:
        if s.id in seen_ids:
            raise ConfigError(f"{source}: duplicate id {s.id} ({seen_ids[s.id]!r} and {s.name!r})")
        if s.name in seen_names:
            raise ConfigError(f"{source}: duplicate servo name {s.name!r}")
        seen_ids[s.id] = s.name
        seen_names.add(s.name)
    if not partial:
        undriven = [c for c in COMMAND_NAMES if not any(s.command == c for s in servos)]
        if undriven:
            raise ConfigError(f"{source}: no servo follows command(s) {', '.join(undriven)} "
                              "(set 'partial: true' for a bench table that drives only some)")
    for channel in CHANNEL_NAMES:
        group = [s for s in servos if s.command == channel]
        if len(group) > 1:
            homes = [s.home_norm for s in group]
            if max(homes) - min(homes) > HOME_PAIR_TOLERANCE:
                detail = ", ".join(f"{s.name}={h:.3f}" for s, h in zip(group, homes))
                raise ConfigError(f"{source}: servos following {channel!r} rest at different normalized "
                                  f"homes ({detail}); the calm face would be ambiguous")


def _parse_emulator(section: Any, source: str) -> dict[str, float]:
    """The ``emulator:`` section: ``response_time_s`` (>= 0), nothing else."""
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: 'emulator' must be a mapping")
    unknown = sorted(set(section) - {"response_time_s"})
    if unknown:
        raise ConfigError(f"{source}: unknown emulator setting(s) {', '.join(map(str, unknown))}; known: response_time_s")
    value = section.get("response_time_s", 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{source}: emulator response_time_s must be a number >= 0, got {value!r}")
    return {"response_time_s": float(value)}
