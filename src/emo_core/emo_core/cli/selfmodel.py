"""``emo babble``, ``emo train inverse``, ``emo eval inverse``: the robot's self-model from its own face.

    emo babble --sim --samples 1000 --mode upper --out data/babble/upper
    emo train inverse --data data/babble --out models/inverse
    emo eval inverse --data data/babble --model models/inverse --json
"""
from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

from ..errors import InputError
from ._args import integer, number
from ..optional import require_torch

LOG = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ babble
def _babble(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..selfmodel.babbler import Babbler
    from ..selfmodel.constraints import ConstraintConfig, ConstraintFunction

    if args.samples < 1:
        raise InputError(f"--samples must be >= 1, got {args.samples}")
    constraints = ConstraintFunction(ConstraintConfig.from_yaml(args.config))
    with _open_robot(args, constraints) as robot:
        babbler = Babbler(robot, constraints, mode=args.mode, seed=args.seed)
        with babbler.open(args.out, chunk_size=args.chunk_size, flush_every=args.flush_every) as writer:
            done = writer.n_samples
            if done:
                LOG.warning("resuming %s at sample %d of %d", args.out, done, args.samples)
            with tqdm(total=args.samples, initial=min(done, args.samples), desc=f"babble {args.mode}",
                      unit="sample", disable=args.quiet) as bar:
                report = babbler.run(writer, args.samples, on_sample=lambda _: bar.update(1))
    print(f"{args.out}: {report.total} samples ({report.collected} new, resumed at {report.resumed_from}, "
          f"{report.unsettled} unsettled, {report.waypoints} waypoints)")
    return 0


class _Closing:
    """Context manager over a robot that may or may not need closing."""

    def __init__(self, robot, close=None) -> None:
        self.robot, self._close = robot, close

    def __enter__(self):
        return self.robot

    def __exit__(self, *exc: object) -> None:
        if self._close is not None:
            self._close()


def _open_robot(args: argparse.Namespace, constraints) -> _Closing:
    if args.sim:
        from ..selfmodel.robot import TwinRobot
        from ..selfmodel.sampling import capture_seed
        from ..twin import DigitalTwin

        twin = DigitalTwin(args.twin_config, noise_std=args.noise_std)
        noise_seed = capture_seed(args.seed, args.mode)
        if args.emulate_servos:
            from ..selfmodel.hardware import open_emulated_robot

            robot, close = open_emulated_robot(twin, constraints.config.settle, noise_seed=noise_seed,
                                               servo_table=args.servo_table)
            return _Closing(robot, close)
        return _Closing(TwinRobot(twin, noise_seed=noise_seed))
    if args.emulate_servos:
        raise InputError("--emulate-servos is a sim option: add --sim")
    if not args.port or args.camera is None:
        raise InputError("the hardware form needs --port (servo bus) and --camera (front camera); "
                         "or use --sim to babble on the digital twin")
    from ..selfmodel.hardware import open_servo_robot

    robot, close = open_servo_robot(args.port, args.camera, constraints.config.settle,
                                    servo_table=args.servo_table)
    return _Closing(robot, close)


# ------------------------------------------------------------------------------------------- train
def _train(args: argparse.Namespace) -> int:
    require_torch("emo train inverse")       # training is the one thing that needs the [train] extra
    from ..selfmodel.training import TrainConfig, train_inverse

    cfg = TrainConfig(arch=args.arch, seed=args.seed, max_epochs=args.epochs, lr=args.lr,
                      patience=args.patience, threads=args.threads,
                      hidden=tuple(args.hidden) if args.hidden else None,
                      input_noise=_noise_arg(args.input_noise), input_norm=args.input_norm)
    model, results = train_inverse(args.data, cfg, progress=not args.quiet)
    finite = all(bool(t.isfinite().all()) for t in model.torch_net().state_dict().values())
    if not finite or not math.isfinite(float(model.card.get("metrics", {}).get("test_l1", math.nan))):
        # A loss that blew up (too high a learning rate) leaves NaN weights: say so, save nothing.
        raise InputError("training diverged (NaN or inf in the weights or the test error); nothing was "
                         "saved -- lower --lr")
    model.save(args.out)
    for name, result in results.items():
        mark = "*" if name == model.arch.name else " "
        print(f"{mark} {name:<6} val L1 {result.val_l1:.4f}  best epoch {result.best_epoch:3d}/{result.epochs:3d}  "
              f"{result.seconds:6.1f} s  lr {result.lr:g}")
    print(f"saved {model.arch.name} model to {args.out} (held-out test L1 {model.card['metrics']['test_l1']:.4f})")
    return 0


def _noise_arg(value: str) -> float | str:
    if value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise InputError(f"--input-noise must be 'auto' or a number, got {value!r}") from None


# -------------------------------------------------------------------------------------------- eval
def _eval(args: argparse.Namespace) -> int:
    from ..selfmodel.evaluation import boxplot, evaluate_inverse
    from ..selfmodel.inverse import InverseModel

    model = InverseModel.load(args.model)
    twin = None
    if not args.no_closed_loop:
        from ..twin import DigitalTwin

        twin = DigitalTwin(args.twin_config, noise_std=0.0)
    result = evaluate_inverse(model, args.data, twin=twin, max_pairs=args.max_pairs, seed=args.seed)
    if args.plot.lower() != "none":
        result.summary["plot"] = str(boxplot(result, args.plot))
    if args.json:
        print(json.dumps(result.summary))
    else:
        _print_table(result.summary)
    return 0


def _print_table(summary: dict) -> None:
    print(f"held-out faces: {summary['n']}  (mean L1 of normalized commands; lower is better)")
    for key in ("model", "nearest_neighbour", "random_face", "random_commands"):
        print(f"  {key:<18} {summary[key]['l1']:.4f}  (median {summary[key]['median']:.4f})")
    closed = summary.get("closed_loop")
    if closed:
        print("closed loop on the twin (landmark MAE vs target face):")
        for key, value in closed.items():
            print(f"  {key:<18} {value['landmark_mae']:.5f}")
    else:
        print(f"closed loop skipped: {summary.get('closed_loop_skipped')}")
    if "plot" in summary:
        print(f"boxplot: {summary['plot']}")


# ---------------------------------------------------------------------------------------- register
def register(registry) -> None:
    p = registry.command("babble", "motor babbling: random feasible poses -> the robot's own face -> dataset",
                         _babble)
    p.add_argument("--sim", action="store_true", help="babble on the digital twin (no hardware)")
    p.add_argument("--samples", type=integer(1, 10_000_000), required=True, help="total samples the dataset should hold")
    p.add_argument("--out", type=Path, required=True, help="dataset directory (resumed if it exists)")
    p.add_argument("--mode", choices=("upper", "lower", "full"), default="full",
                   help="which commands move: upper face only, lower face only, or all (default)")
    p.add_argument("--seed", type=integer(0, 2**32 - 1), default=0, help="command sampling (and sim capture noise) seed")
    p.add_argument("--config", type=Path, default=None, help="constraint config (default config/babbling.yaml)")
    p.add_argument("--chunk-size", type=integer(1, 1_000_000), default=100, help="samples per data chunk (default 100)")
    p.add_argument("--flush-every", type=integer(1, 1_000_000), default=1,
                   help="write the open chunk every K samples (default 1: a kill loses at most one sample)")
    p.add_argument("--emulate-servos", action="store_true",
                   help="(sim) go through the real servo driver and the wire-level bus emulator (virtual "
                        "time; settle detection on present positions) instead of setting the twin directly")
    p.add_argument("--twin-config", type=Path, default=None, help="(sim) twin config (default face_twin.yaml)")
    p.add_argument("--noise-std", type=number(0, 1), default=None, help="(sim) capture noise override")
    p.add_argument("--port", default=None, help="(hardware) servo bus serial port, e.g. /dev/ttyUSB0")
    p.add_argument("--camera", default=None, help="(hardware) front camera: device index or video/image path")
    p.add_argument("--servo-table", type=Path, default=None, help="(hardware) servo table (default servos.yaml)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    registry.group("train", "train models")
    p = registry.command("train inverse", "train the inverse self-model on babbling data", _train)
    p.add_argument("--data", nargs="+", required=True,
                   help="babbling dataset(s), or folder(s) holding them (e.g. an upper and a lower run)")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--arch", choices=("auto", "paper", "split"), default="auto",
                   help="auto (default): train the paper's network and the split variant, keep the better")
    p.add_argument("--seed", type=integer(0, 2**32 - 1), default=0)
    p.add_argument("--epochs", type=integer(1, 100_000), default=80,
                   help="epochs of the cosine learning-rate schedule (default 80; early stopping may end sooner)")
    p.add_argument("--patience", type=integer(1, 100_000), default=12, help="epochs without validation gain before stopping")
    p.add_argument("--lr", type=number(0, 1, low_open=True), default=None, help="learning rate (default: per architecture)")
    p.add_argument("--hidden", type=integer(1, 4096), nargs="+", default=None, help="hidden layer widths")
    p.add_argument("--input-norm", choices=("raw", "standardize"), default=None,
                   help="input scaling (default raw, as in the paper)")
    p.add_argument("--input-noise", default="auto",
                   help="std of noise added to training landmarks; auto (default): the capture noise "
                        "measured in the data for the split variant, none for the paper's network")
    p.add_argument("--threads", type=integer(1, 256), default=1,
                   help="torch threads (default 1: faster than 2 on a busy 2-core machine for these sizes)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    registry.group("eval", "evaluate models")
    p = registry.command("eval inverse", "held-out evaluation of the inverse model vs the paper's baselines",
                         _eval)
    p.add_argument("--data", nargs="+", required=True, help="babbling dataset(s) the model was trained on")
    p.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped model)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", default="inverse_eval.png",
                   help="boxplot PNG (Fig. 4A style) path; 'none' to skip (default ./inverse_eval.png)")
    p.add_argument("--max-pairs", type=integer(1, 10_000_000), default=40000, help="cap on held-out recombined faces")
    p.add_argument("--seed", type=integer(0, 2**32 - 1), default=0, help="seed of the random baselines and pair subset")
    p.add_argument("--twin-config", type=Path, default=None, help="twin for the closed loop (default face_twin.yaml)")
    p.add_argument("--no-closed-loop", action="store_true", help="skip executing commands on the twin")

