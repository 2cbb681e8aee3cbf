"""``emo sim face --commands brow_inner=0.8,jaw_open=0.5 --out face.png``: render the digital twin."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

from ..atomic import atomic_write_bytes
from ..errors import InputError
from ..schema import COMMAND_NAMES
from ._args import integer

LOG = logging.getLogger(__name__)


def parse_commands(text: str) -> dict[str, float]:
    """``"name=value,name=value"`` -> {name: value}; names checked against COMMAND_NAMES."""
    values: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep:
            raise InputError(f"--commands: expected name=value, got {item!r}")
        if name not in COMMAND_NAMES:
            raise InputError(f"--commands: unknown command {name!r}; valid names: {', '.join(COMMAND_NAMES)}")
        if name in values:
            raise InputError(f"--commands: {name!r} given twice")
        try:
            values[name] = float(raw)
        except ValueError:
            raise InputError(f"--commands: {name}={raw!r} is not a number") from None
    return values


def parse_size(text: str) -> tuple[int, int]:
    """``"480"`` or ``"640x480"`` -> (width, height)."""
    parts = text.lower().split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise InputError(f"--size: expected N or WxH, got {text!r}") from None
    if len(dims) == 1:
        dims *= 2
    if len(dims) != 2:
        raise InputError(f"--size: expected N or WxH, got {text!r}")
    return dims[0], dims[1]


def _run(args: argparse.Namespace) -> int:
    from ..twin import DigitalTwin, render_face

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise InputError(f"--out must be a .png file, got {out}")
    if not out.parent.is_dir():
        raise InputError(f"--out: folder {out.parent} does not exist")
    size = parse_size(args.size)
    twin = DigitalTwin(args.config, seed=args.seed, noise_std=0.0 if args.no_noise else None)
    commands = twin.commands_from_dict(parse_commands(args.commands))
    points = twin.forward(commands, noise=not args.no_noise)
    title = None if args.no_title else _title(commands, twin.calm_commands())
    image = render_face(points, size, title=title)
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(f"could not encode {out}")
    atomic_write_bytes(out, png.tobytes())
    print(f"wrote {out} ({size[0]}x{size[1]}); commands: "
          + ", ".join(f"{n}={v:.3g}" for n, v in zip(COMMAND_NAMES, commands)))
    return 0


def _title(commands: np.ndarray, calm: np.ndarray) -> str:
    changed = [f"{n}={v:.2g}" for n, v, c in zip(COMMAND_NAMES, commands, calm) if abs(v - c) > 1e-9]
    return ", ".join(changed) if changed else "calm"


def register(registry) -> None:
    registry.group("sim", "simulation: the robot's digital twin face and synthetic people")
    parser = registry.command(
        "sim face", "render the digital twin's face for given motor commands",
        _run, description="Render Emo's digital-twin face for normalized motor commands in [0, 1] "
        "(unspecified commands keep their calm values). Command names: " + ", ".join(COMMAND_NAMES))
    parser.add_argument("--commands", default="", metavar="NAME=VALUE,...",
                        help="e.g. brow_inner=0.8,jaw_open=0.5 (default: the calm face)")
    parser.add_argument("--out", required=True, metavar="FACE.png", help="PNG to write (atomically)")
    parser.add_argument("--size", default="480", help="image size: N or WxH pixels (default 480)")
    parser.add_argument("--seed", type=integer(0, 2**32 - 1), default=0, help="seed of the landmark measurement noise")
    parser.add_argument("--no-noise", action="store_true", help="exact, noise-free landmarks")
    parser.add_argument("--no-title", action="store_true", help="do not print the commands on the image")
    parser.add_argument("--config", default=None, metavar="FACE_TWIN.yaml",
                        help="twin config (default: config/face_twin.yaml)")
