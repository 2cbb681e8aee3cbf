"""The babbling constraint function: which 11-command poses may be sent to the face.

The Emo paper removes random motor commands "that may tear the face skin or cause
self-collision" before sending them. Here that filter is data, not code: per-command bounds,
pairwise linear rules between two commands, and a limit on the jump between consecutive poses,
loaded from ``config/babbling.yaml``. Every rule is linear, so the feasible set is convex: a
straight move between two feasible poses stays feasible, which is what lets a long jump be split
into safe intermediate waypoints.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..resources import config_path, read_yaml
from ..schema import COMMAND_NAMES, N_COMMANDS

RULES = ("sum_max", "diff_max", "absdiff_max")
JUMP_POLICIES = ("interpolate", "reject")
#: Slack for floating-point round-off when checking rules (commands are float32 on disk).
EPS = 1e-6


@dataclass(frozen=True)
class PairRule:
    """One pairwise rule between commands ``a`` and ``b`` (names from COMMAND_NAMES)."""

    a: str
    b: str
    rule: str
    limit: float
    why: str = ""

    def value(self, commands: np.ndarray) -> np.ndarray:
        """The constrained quantity for (..., 11) commands."""
        x = commands[..., COMMAND_NAMES.index(self.a)]
        y = commands[..., COMMAND_NAMES.index(self.b)]
        if self.rule == "sum_max":
            return x + y
        if self.rule == "diff_max":
            return x - y
        return np.abs(x - y)

    def holds(self, commands: np.ndarray) -> np.ndarray:
        return self.value(commands) <= self.limit + EPS

    def describe(self) -> str:
        op = {"sum_max": f"{self.a} + {self.b}", "diff_max": f"{self.a} - {self.b}",
              "absdiff_max": f"|{self.a} - {self.b}|"}[self.rule]
        return f"{op} <= {self.limit}"


@dataclass(frozen=True)
class SettleConfig:
    """When a pose counts as reached: present commands stable within ``tolerance`` for
    ``settle_time`` seconds, polled every ``poll_interval``; give up after ``timeout``."""

    tolerance: float = 0.004
    settle_time: float = 0.15
    poll_interval: float = 0.02
    timeout: float = 3.0

    def __post_init__(self) -> None:
        if min(self.tolerance, self.poll_interval, self.timeout) <= 0 or self.settle_time < 0:
            raise ConfigError(f"settle: tolerance, poll_interval and timeout must be > 0, got {self}")


@dataclass(frozen=True)
class ConstraintConfig:
    """Parameters of the constraint function (see config/babbling.yaml)."""

    low: tuple[float, ...] = (0.0,) * N_COMMANDS
    high: tuple[float, ...] = (1.0,) * N_COMMANDS
    pairs: tuple[PairRule, ...] = ()
    max_step: float = 1.0
    jump_policy: str = "interpolate"
    max_attempts: int = 1000
    settle: SettleConfig = field(default_factory=SettleConfig)

    def __post_init__(self) -> None:
        low, high = np.asarray(self.low, float), np.asarray(self.high, float)
        if low.shape != (N_COMMANDS,) or high.shape != (N_COMMANDS,):
            raise ConfigError(f"bounds: need {N_COMMANDS} lows and highs")
        if np.any(low < 0) or np.any(high > 1) or np.any(low >= high):
            bad = [COMMAND_NAMES[i] for i in np.flatnonzero((low < 0) | (high > 1) | (low >= high))]
            raise ConfigError(f"bounds must satisfy 0 <= low < high <= 1; bad: {', '.join(bad)}")
        for rule in self.pairs:
            if rule.rule not in RULES:
                raise ConfigError(f"pair rule {rule.rule!r} unknown; use one of {', '.join(RULES)}")
            for name in (rule.a, rule.b):
                if name not in COMMAND_NAMES:
                    raise ConfigError(f"pair rule names unknown command {name!r}")
        if not 0 < self.max_step <= 1:
            raise ConfigError(f"max_step must be in (0, 1], got {self.max_step}")
        if self.jump_policy not in JUMP_POLICIES:
            raise ConfigError(f"jump_policy must be one of {', '.join(JUMP_POLICIES)}")
        if self.max_attempts < 1:
            raise ConfigError("max_attempts must be >= 1")

    @classmethod
    def from_yaml(cls, path: str | Path | None = None) -> "ConstraintConfig":
        """Load ``config/babbling.yaml`` (or ``path``); ConfigError on anything malformed."""
        path = Path(path) if path is not None else config_path("babbling.yaml")
        raw = read_yaml(path, "babbling config")
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping")
        try:
            return cls._from_mapping(raw)
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    @classmethod
    def _from_mapping(cls, raw: dict) -> "ConstraintConfig":
        bounds = raw.get("bounds") or {}
        unknown = set(bounds) - set(COMMAND_NAMES)
        if unknown:
            raise ConfigError(f"bounds name unknown command(s) {', '.join(sorted(unknown))}")
        low = tuple(float(bounds.get(n, (0.0, 1.0))[0]) for n in COMMAND_NAMES)
        high = tuple(float(bounds.get(n, (0.0, 1.0))[1]) for n in COMMAND_NAMES)
        pairs = tuple(PairRule(a=str(p["a"]), b=str(p["b"]), rule=str(p["rule"]),
                               limit=float(p["limit"]), why=str(p.get("why", "")))
                      for p in raw.get("pairs") or ())
        settle = SettleConfig(**{k: float(v) for k, v in (raw.get("settle") or {}).items()})
        return cls(low=low, high=high, pairs=pairs, max_step=float(raw.get("max_step", 1.0)),
                   jump_policy=str(raw.get("jump_policy", "interpolate")),
                   max_attempts=int(raw.get("max_attempts", 1000)), settle=settle)

    def to_dict(self) -> dict:
        return asdict(self)

    def fingerprint(self) -> str:
        """Short hash of everything that changes which samples are drawn (for resume checks)."""
        body = {k: v for k, v in self.to_dict().items() if k != "settle"}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


class ConstraintFunction:
    """Accepts or rejects poses; splits long moves into feasible steps of at most ``max_step``."""

    def __init__(self, config: ConstraintConfig | None = None) -> None:
        self.config = config or ConstraintConfig()
        self.low = np.asarray(self.config.low, dtype=np.float64)
        self.high = np.asarray(self.config.high, dtype=np.float64)

    def feasible(self, commands: np.ndarray) -> np.ndarray:
        """Bounds and pairwise rules for (11,) or (N, 11) commands -> bool or (N,) bools."""
        c = np.asarray(commands, dtype=np.float64)
        ok = np.all((c >= self.low - EPS) & (c <= self.high + EPS), axis=-1) & np.all(np.isfinite(c), axis=-1)
        for rule in self.config.pairs:
            ok &= rule.holds(c)
        return ok

    def violations(self, commands: np.ndarray, previous: np.ndarray | None = None) -> list[str]:
        """Human-readable list of the rules ``commands`` breaks (empty when allowed)."""
        c = np.asarray(commands, dtype=np.float64)
        out = [f"{COMMAND_NAMES[i]}={c[i]:.3f} outside [{self.low[i]}, {self.high[i]}]"
               for i in range(N_COMMANDS) if not self.low[i] - EPS <= c[i] <= self.high[i] + EPS]
        out += [rule.describe() for rule in self.config.pairs if not bool(rule.holds(c))]
        if previous is not None and self.jump(previous, c) > self.config.max_step + EPS:
            out.append(f"jump {self.jump(previous, c):.3f} > max_step {self.config.max_step}")
        return out

    def allows(self, commands: np.ndarray, previous: np.ndarray | None = None) -> bool:
        """The constraint function: True when ``commands`` may be sent after ``previous``."""
        return not self.violations(commands, previous)

    @staticmethod
    def jump(previous: np.ndarray, commands: np.ndarray) -> float:
        return float(np.max(np.abs(np.asarray(commands, float) - np.asarray(previous, float))))

    def path(self, previous: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Poses to send to go from ``previous`` to ``target``: evenly spaced on the straight line,
        each step at most ``max_step``, ending at ``target``. Convexity keeps them feasible."""
        previous = np.asarray(previous, dtype=np.float64)
        target = np.asarray(target, dtype=np.float64)
        steps = max(1, math.ceil(self.jump(previous, target) / self.config.max_step - EPS))
        fractions = np.arange(1, steps + 1, dtype=np.float64)[:, None] / steps
        return previous + fractions * (target - previous)
