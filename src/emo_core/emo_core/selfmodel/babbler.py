"""Motor babbling: random feasible poses -> settle -> capture the robot's own face -> dataset.

The loop is the same for the twin and for hardware; only the :class:`FaceRobot` differs. Sample
``i``'s command depends only on (seed, mode, i) (and, with ``jump_policy: reject``, on sample
``i-1``'s stored command), so resuming an interrupted directory continues the exact sequence.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


from ..datasets.babbling import BabblingHeader, BabblingWriter
from .constraints import ConstraintFunction
from .robot import FaceRobot
from .sampling import CommandSampler

LOG = logging.getLogger(__name__)


@dataclass
class BabbleReport:
    """What one call of :meth:`Babbler.run` did."""

    resumed_from: int
    collected: int
    total: int
    unsettled: int
    waypoints: int


@dataclass
class Babbler:
    """Drives ``robot`` through random poses and stores what its face did."""

    robot: FaceRobot
    constraints: ConstraintFunction
    mode: str = "full"
    seed: int = 0

    def __post_init__(self) -> None:
        self.sampler = CommandSampler(self.constraints, self.robot.calm_commands(), self.mode, self.seed)

    def header(self, chunk_size: int = 100) -> BabblingHeader:
        cfg = self.constraints.config
        return BabblingHeader(mode=self.mode, seed=self.seed, robot=self.robot.describe(),
                              calm_commands=[float(v) for v in self.sampler.calm],
                              constraints=cfg.to_dict(), constraints_fingerprint=cfg.fingerprint(),
                              chunk_size=chunk_size)

    def open(self, out: str | Path, chunk_size: int = 100, flush_every: int = 1) -> BabblingWriter:
        """Create ``out`` or resume it (its manifest must match this babbler's settings)."""
        return BabblingWriter(out, self.header(chunk_size), flush_every=flush_every)

    def run(self, writer: BabblingWriter, n_samples: int,
            on_sample: Callable[[int], None] | None = None) -> BabbleReport:
        """Collect samples until ``writer`` holds ``n_samples``; ``on_sample(i)`` after each."""
        start = writer.n_samples
        unsettled = waypoints = 0
        previous_sample = writer.last_commands
        position = self.robot.present_commands()
        for index in range(start, n_samples):
            target = self.sampler.sample(index, previous_sample)
            path = self.constraints.path(position, target)
            for pose in path[:-1]:           # intermediate waypoints: settle, do not capture
                self.robot.send(pose)
                self.robot.wait_settled()
                waypoints += 1
            self.robot.send(target)
            settled = self.robot.wait_settled()
            present = self.robot.present_commands()
            landmarks = self.robot.capture(index)
            writer.append(target, present, landmarks, settled)
            unsettled += 0 if settled else 1
            previous_sample, position = target, present
            if on_sample is not None:
                on_sample(index)
        return BabbleReport(resumed_from=start, collected=max(0, n_samples - start),
                            total=writer.n_samples, unsettled=unsettled, waypoints=waypoints)
