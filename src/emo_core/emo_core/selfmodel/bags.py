"""Babbling bags -> a babbling dataset (``emo dataset from-bag`` on a babbling run).

Bag reading and pose/face pairing are ``emo_core.datasets.bags`` (:func:`babble_samples`); this is the
self-model's side: the dataset's manifest records what the ``babbler`` node records
(:func:`~emo_core.selfmodel.hardware.ros_robot_description`, the servo table's home face as the
calm face, the constraint config). It lived in datasets/bags.py, which made datasets and selfmodel
import each other.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..datasets.babbling import BabblingDataset, BabblingHeader, BabblingWriter
from ..datasets.bags import BabbleSample, BagReport, BagTopics, babble_samples, bag_storage, infer_mode
from ..errors import InputError
from .constraints import ConstraintConfig
from .hardware import ros_robot_description


def babbling_dataset(paths: Sequence[str | Path], out: str | Path, topics: BagTopics = BagTopics(),
                     mode: str | None = None, seed: int = 0, robot_id: str = "emo", robot_face: str = "twin",
                     twin_config: str | Path | None = None, babbling_config: str | Path | None = None,
                     servo_config: str | Path | None = None, chunk_size: int = 100) -> BagReport:
    """Babbling bags -> a babbling dataset directory ``out`` (which must be new or empty).

    The manifest records what the ``babbler`` node records (:func:`ros_robot_description`, the servo
    table's home face as the calm face, the constraint config), so the dataset is the one the node
    would have written. ``robot_face``: "twin" (sim; ``twin_config`` identifies it) or "camera".
    """
    from ..servo.table import ServoTable
    from ..twin import DigitalTwin

    if robot_face not in ("twin", "camera"):
        raise InputError(f"robot_face must be 'twin' or 'camera', got {robot_face!r}")

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} exists and is not empty; choose a new --out directory")
    constraints = ConstraintConfig.from_yaml(babbling_config)
    table = ServoTable.load(servo_config)
    report = BagReport(kind="babbling", out=out)
    samples: list[BabbleSample] = []
    for path in paths:
        found, skipped = babble_samples(path, topics, constraints.settle.settle_time, table)
        samples += found
        report.skipped += skipped
        report.bags.append(str(path))
        report.storages.append(bag_storage(path))
    if not samples:
        raise InputError("no babbling pose could be paired with a robot face")
    calm = table.home_commands()
    mode = mode or infer_mode(samples, calm)
    twin = DigitalTwin(twin_config) if robot_face == "twin" else None
    header = BabblingHeader(mode=mode, seed=seed, robot=ros_robot_description(table, robot_id, twin),
                            calm_commands=[float(v) for v in calm], constraints=constraints.to_dict(),
                            constraints_fingerprint=constraints.fingerprint(), chunk_size=chunk_size)
    with BabblingWriter(out, header, flush_every=chunk_size) as writer:
        for s in samples:
            writer.append(s.commands, s.present, s.landmarks, s.settled)
    report.samples = BabblingDataset.open(out).n_samples
    return report


__all__ = ["babbling_dataset"]
