"""What the babbler drives: a face that takes commands, settles, and can be looked at.

:class:`FaceRobot` is the small protocol the babbling loop needs. :class:`TwinRobot` is the
digital twin used directly (sim): it reaches any pose instantly, so settling is trivial, and a
capture is the twin's forward model with its capture noise. The hardware form (servo driver plus
a front camera) implements the same protocol and uses :class:`SettleDetector` on the servos'
present positions.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..clock import Clock
from ..schema import N_COMMANDS, N_LANDMARKS
from .constraints import SettleConfig

LOG = logging.getLogger(__name__)


class FaceRobot(Protocol):
    """A robot face the babbler can drive and observe."""

    def describe(self) -> dict[str, Any]:
        """``{"kind": ..., "config_hash": ...}``: identifies the robot (stored in datasets)."""

    def calm_commands(self) -> np.ndarray:
        """(11,) commands of the calm face: where non-babbled commands stay."""

    def send(self, commands: np.ndarray) -> None:
        """Command a pose (already checked by the constraint function)."""

    def wait_settled(self) -> bool:
        """Block until the face has stopped moving; False when it timed out instead."""

    def present_commands(self) -> np.ndarray:
        """(11,) commands the face is actually at now."""

    def capture(self, index: int) -> np.ndarray:
        """(113, 2) robot-space landmarks of the face now; ``index`` is the sample number
        (a simulated capture seeds its noise with it, so a resumed run reproduces it)."""


@dataclass
class SettleDetector:
    """Present commands stable within ``tolerance`` for ``settle_time`` seconds, or a timeout.

    ``sleep`` and ``clock`` are injected so tests can step time by hand (sleep = clock.advance).
    """

    config: SettleConfig
    clock: Clock
    sleep: Callable[[float], None]

    def wait(self, read_present: Callable[[], np.ndarray]) -> bool:
        cfg = self.config
        start = self.clock.now()
        reference = np.asarray(read_present(), dtype=np.float64)
        stable_since = start
        while True:
            self.sleep(cfg.poll_interval)
            now = self.clock.now()
            present = np.asarray(read_present(), dtype=np.float64)
            if np.max(np.abs(present - reference)) > cfg.tolerance:
                reference, stable_since = present, now      # still moving: restart the window
            elif now - stable_since >= cfg.settle_time:
                return True
            if now - start >= cfg.timeout:
                LOG.warning("pose did not settle within %.2f s (last change %.2f s ago)",
                            cfg.timeout, now - stable_since)
                return False


class TwinRobot:
    """The digital twin as the babbled robot (sim mode): instant motion, noisy captures.

    Captures are ``twin.forward(present, noise=False)`` plus Gaussian noise of the twin's
    ``noise_std`` drawn from ``default_rng([noise_seed, index])``: the same sample index always sees
    the same noise, so a killed and resumed run writes exactly what an uninterrupted one would.
    """

    def __init__(self, twin: Any, noise_seed: int = 0, noise_std: float | None = None) -> None:
        self.twin = twin
        self.noise_seed = int(noise_seed)
        self.noise_std = float(getattr(twin, "noise_std", 0.0) if noise_std is None else noise_std)
        self._present = np.asarray(twin.calm_commands(), dtype=np.float64).reshape(N_COMMANDS)

    def describe(self) -> dict[str, Any]:
        return {"kind": "twin", "config_hash": twin_config_hash(self.twin), "noise_std": self.noise_std,
                "noise_seed": self.noise_seed}

    def calm_commands(self) -> np.ndarray:
        return np.asarray(self.twin.calm_commands(), dtype=np.float64).reshape(N_COMMANDS)

    def send(self, commands: np.ndarray) -> None:
        self._present = np.asarray(commands, dtype=np.float64).reshape(N_COMMANDS)

    def wait_settled(self) -> bool:
        return True

    def present_commands(self) -> np.ndarray:
        return self._present.copy()

    def capture(self, index: int) -> np.ndarray:
        return noisy_capture(self.twin, self._present, self.noise_std, self.noise_seed, index)


def noisy_capture(twin: Any, commands: np.ndarray, noise_std: float, seed: int, index: int) -> np.ndarray:
    """The twin's face for ``commands`` plus noise from ``default_rng([seed, index])`` (float32)."""
    face = np.asarray(twin.forward(np.clip(commands, 0.0, 1.0), noise=False), dtype=np.float64)
    face = face.reshape(N_LANDMARKS, 2)
    if noise_std > 0:
        face = face + np.random.default_rng([int(seed), int(index)]).normal(0.0, noise_std, face.shape)
    return face.astype(np.float32)


def twin_config_hash(twin: Any) -> str:
    """Hash of the twin's configuration (what identifies 'the same robot' across runs).

    Taken over the loaded config's values, not its file, so the same robot hashes the same
    wherever its YAML lives; ``path`` (where it was read from) is left out.
    """
    config = getattr(twin, "config", None)
    if config is None:
        raise TypeError(f"{type(twin).__name__} has no config to hash")
    text = json.dumps(_canonical(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _canonical(value: Any) -> Any:
    """JSON-able, order-stable form of a config: arrays become shape + SHA-256 of their bytes."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "path"}
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value, dtype=np.float64 if value.dtype.kind == "f" else value.dtype)
        return {"shape": list(arr.shape), "sha256": hashlib.sha256(arr.tobytes()).hexdigest()}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
