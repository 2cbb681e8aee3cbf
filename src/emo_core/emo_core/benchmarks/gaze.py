"""``emo bench gaze``: what the gaze stage costs per frame, and its closed-loop figures.

The gaze stage runs beside the expression pipeline, after its command is made (``GazeStage.step``:
controller + blinker on the frame's face), so it never adds to the frame -> command latency of
``emo bench pipeline``; its own cost per frame is measured here, side by side with the twin's
forward model of one face (a cheap step of the expression path) as the reference of the ratio.

Closed loop (``pipeline.gaze_loop.simulate``: real driver, dynamixel_sdk, bus emulator plant): a 20-degree
jump (settle, neck share, overshoot) and a walking person (tracking error p50/p95), the targets of
docs/gaze.md.
"""
from __future__ import annotations

import numpy as np

from ..gaze import BlinkConfig, EyeCamera, GazeStage, Pose
from ..pipeline.gaze_loop import simulate
from ..gaze.scene import GeometricView, jump_path, walking_path
from ..pipeline.core import COMMAND_NAMES, FaceCommand, Source
from ..twin import DigitalTwin
from .timing import BenchResult, interleaved, percentiles_ms

NAME = "gaze"


def run(quick: bool) -> BenchResult:
    twin = DigitalTwin(seed=0)
    calm = twin.calm_commands()
    camera = EyeCamera()
    stage = GazeStage(calm, camera=camera, blink=BlinkConfig(seed=0))
    view = GeometricView(camera, noise_px=0.7, seed=0)
    faces = [view.observe(10.0 * np.sin(k / 20), 3.0, 0.0, Pose(), k / 30) for k in range(300)]
    expr = FaceCommand(COMMAND_NAMES, calm.astype(np.float32), 0.0, 0.0, Source.MIMIC)
    counter = {"k": 0}

    def gaze_step() -> None:
        k = counter["k"]
        counter["k"] += 1
        stage.step(k / 30, faces[k % len(faces)], expr, held=False, pose=Pose())

    repeats = 300 if quick else 3000
    times = interleaved({"gaze_stage": gaze_step, "twin_forward_one_face": lambda: twin.forward(calm, noise=False)},
                        repeats=repeats, warmup=20)
    _, jump = simulate(jump_path(4.0, at_s=2.0, jump_deg=20.0, start_deg=-10.0))
    _, walk = simulate(walking_path(10.0 if quick else 30.0, seed=1))
    j = jump["jumps"][0]
    return BenchResult(
        figures={
            "gaze_stage_per_frame_ms": percentiles_ms(times["gaze_stage"]),
            "closed_loop_jump_20deg": {"settle_ms": j["settle_ms"], "neck_share_1_5s": j["neck_share"],
                                       "overshoot": j["overshoot"]},
            "closed_loop_walking": {"error_p50": walk["error_p50"], "error_p95": walk["error_p95"],
                                    "moving_frames": walk["moving_frames"],
                                    "max_speed_ratio": max(walk["max_speed_ratio"].values()),
                                    "within_limits": walk["within_limits"]},
        },
        ratios={"gaze_stage_vs_twin_forward_one_face":
                float(np.median(times["gaze_stage"]) / np.median(times["twin_forward_one_face"]))},
    )
