"""Random babbling commands: the paper's upper-only and lower-only modes, and a full mode.

Sample ``i`` of a run is drawn from its own generator ``default_rng([seed, mode, i])``, so the
command sequence depends only on (seed, mode, i): a run that was killed and resumed draws exactly
what an uninterrupted run would have drawn.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, InputError
from ..schema import COMMAND_NAMES, N_COMMANDS, UPPER_COMMANDS
from .constraints import ConstraintFunction

MODES = ("upper", "lower", "full")
_MODE_CODE = {"upper": 1, "lower": 2, "full": 3}
_N_UPPER_CMD = len(UPPER_COMMANDS)


def capture_seed(seed: int, mode: str) -> int:
    """Seed of the simulated capture noise of a run: distinct per mode, so an upper-only and a
    lower-only run with the same ``seed`` do not share noise draws (they are recombined later)."""
    if mode not in MODES:
        raise InputError(f"babbling mode must be one of {', '.join(MODES)}, got {mode!r}")
    return int(seed) * 8 + _MODE_CODE[mode]


def moving_mask(mode: str) -> np.ndarray:
    """Which of the 11 commands move in a babbling mode (the rest stay at their calm values)."""
    if mode not in MODES:
        raise InputError(f"babbling mode must be one of {', '.join(MODES)}, got {mode!r}")
    mask = np.zeros(N_COMMANDS, dtype=bool)
    if mode in ("upper", "full"):
        mask[:_N_UPPER_CMD] = True
    if mode in ("lower", "full"):
        mask[_N_UPPER_CMD:] = True
    return mask


@dataclass
class CommandSampler:
    """Draws feasible random poses for one babbling mode.

    ``calm`` holds the values of the commands that do not move in this mode (the robot's calm
    face). With ``jump_policy: reject`` the draw is restricted to within ``max_step`` of the
    previous pose; with ``interpolate`` draws are i.i.d. and the babbler walks long moves in steps.
    """

    constraints: ConstraintFunction
    calm: np.ndarray
    mode: str = "full"
    seed: int = 0

    def __post_init__(self) -> None:
        self.mask = moving_mask(self.mode)
        self.calm = np.asarray(self.calm, dtype=np.float64).reshape(-1)
        if self.calm.shape != (N_COMMANDS,):
            raise InputError(f"calm commands: expected {N_COMMANDS} values, got {self.calm.shape}")
        problems = self.constraints.violations(self.calm)
        if problems:
            raise ConfigError(f"the calm pose breaks the babbling constraints: {'; '.join(problems)}")

    def generator(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, _MODE_CODE[self.mode], index])

    def sample(self, index: int, previous: np.ndarray | None = None) -> np.ndarray:
        """Feasible pose number ``index`` (float32, (11,)); ``previous`` matters only for 'reject'."""
        cfg = self.constraints.config
        low, high = self.constraints.low.copy(), self.constraints.high.copy()
        if cfg.jump_policy == "reject" and previous is not None:
            # Uniform on the box around the previous pose = rejection sampling of the jump limit,
            # without the rejections.
            prev = np.asarray(previous, dtype=np.float64)
            low, high = np.maximum(low, prev - cfg.max_step), np.minimum(high, prev + cfg.max_step)
        rng = self.generator(index)
        batch = 64
        for _ in range(0, cfg.max_attempts, batch):
            candidates = np.tile(self.calm, (batch, 1))
            draws = rng.uniform(low[self.mask], high[self.mask], size=(batch, int(self.mask.sum())))
            candidates[:, self.mask] = draws
            candidates = candidates.astype(np.float32)
            ok = np.flatnonzero(self.constraints.feasible(candidates))
            if ok.size:
                return candidates[ok[0]]
        moving = ", ".join(n for n, m in zip(COMMAND_NAMES, self.mask) if m)
        raise ConfigError(f"no feasible {self.mode} pose in {cfg.max_attempts} draws (moving: {moving}); "
                          "the babbling constraints are too tight")
