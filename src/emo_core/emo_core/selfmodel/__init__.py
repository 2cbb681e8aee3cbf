"""The robot's self-model: motor babbling and the learned inverse model (landmarks -> commands).

Babbling (no labels): :class:`CommandSampler` draws random poses that pass the
:class:`ConstraintFunction` (config/babbling.yaml), :class:`Babbler` sends them to a
:class:`FaceRobot` (:class:`TwinRobot` in sim), waits for the face to settle, captures its landmarks
and appends them to a babbling dataset (``emo_core.datasets.babbling``).

Inverse model: :func:`~emo_core.selfmodel.training.train_inverse` trains it on babbling data,
:class:`InverseModel` loads it (``InverseModel.load()`` is the default shipped in emo_core) and
predicts 11 commands in [0, 1] from 113 x 2 robot-space landmarks. See docs/inverse.md.

Heavier pieces (torch training, evaluation) are imported from their modules, not here; torch
itself is only imported when ``InverseModel`` is first used, so babbling starts fast.
"""
from typing import Any

from .babbler import BabbleReport, Babbler
from .constraints import ConstraintConfig, ConstraintFunction, PairRule, SettleConfig
from .robot import FaceRobot, SettleDetector, TwinRobot, twin_config_hash
from .sampling import MODES, CommandSampler, moving_mask


def __getattr__(name: str) -> Any:
    if name in ("InverseModel", "default_model_dir"):
        from . import inverse

        return getattr(inverse, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BabbleReport", "Babbler", "CommandSampler", "ConstraintConfig", "ConstraintFunction", "FaceRobot",
    "InverseModel", "MODES", "PairRule", "SettleConfig", "SettleDetector", "TwinRobot", "default_model_dir",
    "moving_mask", "twin_config_hash",
]
