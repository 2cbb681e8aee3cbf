"""The parameters of every node, as plain data (no ``rclpy`` import).

Each node module declares exactly ``SCHEMAS[<its executable>]`` (with these descriptions and
ranges), so ``ros2 param describe`` shows them, the YAML in ``config/emo_nodes.yaml`` can be checked
against them without ROS (tests/test_ros_packages.py), and docs/ros.md lists the same thing.

A parameter is either read once at start -- declared ``read_only``, so ``ros2 param set`` is refused
with a reason rather than accepted and ignored -- or ``live``: applied on set (the node reads it
where it uses it, from the values :func:`declare` keeps current, or applies it in its ``on_set``).

``INSTANCES`` maps the node *names* the launch files start (the keys of the YAML file, written
``/**/<name>`` so they match in any namespace) to their executables: both eye cameras run
``eye_camera``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emo_core.errors import ConfigError

Value = bool | int | float | str | list


@dataclass(frozen=True)
class Param:
    """One parameter: default (its type is the parameter's type), description, optional numeric
    range (inclusive) or set of allowed strings; ``live``: applied on ``ros2 param set`` (False: read
    at start only, declared read-only)."""

    default: Value
    description: str
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] = ()
    live: bool = False

    @property
    def kind(self) -> type:
        return type(self.default)

    def describe(self) -> str:
        extra = f" One of: {', '.join(self.choices)}." if self.choices else ""
        when = " Applied on set." if self.live else " Read at start (read-only)."
        return self.description + extra + when

    def check(self, name: str, value: Any) -> Any:
        """The value if it has the right type and lies in range/choices; ConfigError otherwise."""
        # Strict, as ROS is: an integer for a double parameter is a type error at startup.
        kind = self.kind
        ok = (isinstance(value, kind) and not (kind is int and isinstance(value, bool))
              and (kind is not list or all(isinstance(v, str) for v in value)))
        if not ok:
            raise ConfigError(f"parameter {name}: expected {kind.__name__}, got {value!r}")
        if self.range is not None and not self.range[0] <= value <= self.range[1]:
            raise ConfigError(f"parameter {name}: {value} outside [{self.range[0]}, {self.range[1]}]")
        if self.choices and value not in self.choices:
            raise ConfigError(f"parameter {name}: {value!r} is not one of {', '.join(self.choices)}")
        return value


Schema = dict[str, Param]

_CONFIG_NOTE = "Empty: the project's default ({}, found via emo_core.resources)."
_MODEL_NOTE = "Model directory (safetensors + card.json). Empty: the model shipped inside emo_core."

EYE_CAMERA: Schema = {
    "source": Param("/dev/video0", "Camera device index or /dev/video* path, a video file, or a folder of "
                                   "images (played in name order)."),
    "camera": Param("left", "Which eye: becomes the frame id '<camera>_eye' and FaceLandmarks.camera."),
    "fps": Param(30.0, "Frames per second: requested from a device; playback rate of files and folders "
                       "(0: a video file's own rate).", range=(0.0, 240.0)),
    "loop": Param(False, "Restart a video file or folder at its end (sim cameras)."),
    "width": Param(0, "Requested device frame width in pixels (0: the device default).", range=(0, 7680)),
    "height": Param(0, "Requested device frame height in pixels (0: the device default).", range=(0, 4320)),
    "focal_length_px": Param(0.0, "Focal length for CameraInfo (uncalibrated); 0: the image width.",
                             range=(0.0, 100000.0), live=True),
}

FACE_LANDMARKS: Schema = {
    "cameras": Param(["left", "right"], "Eye cameras to read: subscribes <camera>_eye/image_raw for each. "
                                        "The first one paces the output (one FaceLandmarks per frame of it)."),
    "view_policy": Param("best", "How the views are combined (emo_core.perception.views).", choices=("best", "mean")),
    "max_view_age_s": Param(0.05, "A view older than this (relative to the pacing camera's frame) is left out "
                                  "of the fusion.", range=(0.0, 1.0)),
    "space": Param("metric", "Coordinate space written into FaceLandmarks: 'metric' for a person, 'robot' "
                             "when the camera watches the robot's own face (babbling).", choices=("metric", "robot")),
    "max_faces": Param(2, "Faces MediaPipe tracks; the largest (then most central) is used.", range=(1, 10)),
    "min_detection_confidence": Param(0.5, "MediaPipe face detection threshold.", range=(0.0, 1.0)),
    "min_tracking_confidence": Param(0.5, "MediaPipe landmark tracking threshold.", range=(0.0, 1.0)),
    "marker_frame": Param("emo_face", "Frame id of the landmark markers (set rviz's fixed frame to it).", live=True),
    "marker_scale": Param(0.05, "Metres per metric face unit in the markers.", range=(0.001, 1.0), live=True),
    "publish_image": Param(True, "Also publish the face's normalized image points on face/landmarks_image "
                                 "(the gaze node's input)."),
}

PEAK_ACTIVATION: Schema = {
    "anticipation_config": Param("", "anticipation.yaml whose 'detector' section configures the causal "
                                     "detector. " + _CONFIG_NOTE.format("config/anticipation.yaml")),
    "model_dir": Param("", "Directory of the detector's learned rising-edge scorer. " + _MODEL_NOTE),
    "rest_change_threshold": Param(1e-4, "Publish the resting face again when any point moved more than this "
                                         "(metric units) since it was last published.", range=(0.0, 1.0), live=True),
    "refresh_every": Param(3, "After a firing, publish the newest window on face/peak_refresh every this many "
                              "frames while the face still moves, for re-prediction (0: never).", range=(0, 1000),
                           live=True),
    "refresh_min_motion": Param(2.0, "... only while the lips/brows motion (in units of the landmark noise) is at "
                                     "least this.", range=(0.0, 100.0), live=True),
}

EXPRESSION_PREDICTOR: Schema = {
    "model_dir": Param("", "Expression predictor. " + _MODEL_NOTE),
}

INVERSE_MODEL: Schema = {
    "mode": Param("coexpression", "coexpression: mirror (lag-led), and from a peak activation until its apex "
                                  "lead the person toward the predicted face; mimicry: mirror the live face "
                                  "(the paper's baseline).",
                  choices=("coexpression", "mimicry"), live=True),
    "model_dir": Param("", "Inverse self-model. " + _MODEL_NOTE),
    "anticipation_config": Param("", "anticipation.yaml whose 'retarget' section sets K. "
                                     + _CONFIG_NOTE.format("config/anticipation.yaml")),
    "twin_config": Param("", "Digital twin config giving the robot's resting face and motion bounds for "
                             "retargeting. " + _CONFIG_NOTE.format("config/face_twin.yaml")),
    "min_time_to_apex_s": Param(0.0, "Lower bound on a prediction's time to apex.", range=(0.0, 5.0), live=True),
    "max_time_to_apex_s": Param(2.0, "Upper bound on a prediction's time to apex (a wild prediction must not "
                                     "park the face).", range=(0.0, 5.0), live=True),
    "release_after_s": Param(0.0, "Keep a prediction this long after its apex before mirroring again.",
                             range=(0.0, 5.0), live=True),
    "mirror_rest": Param("calibrated", "Resting face for mirroring: the detector's first calibration or its "
                                       "rolling neutral.", choices=("calibrated", "rolling"), live=True),
    "release_when_overtaken": Param(True, "Mirror again as soon as the person gets past the predicted face "
                                          "(or, without hurrying, ahead of the robot's planned motion).", live=True),
    "hurry_when_overtaken": Param(True, "A person ahead of the planned motion but short of the predicted face: "
                                        "keep the prediction and arrive now instead of mirroring.", live=True),
    "lead_mirroring": Param(True, "Coexpression's commands ask the driver to arrive now (with its servo lag "
                                  "lead); mimicry never does.", live=True),
    "lead_fraction": Param(0.5, "While a prediction is held, show the live face moved this fraction of the way "
                                "to the predicted face (0: hold the predicted face, due at the predicted apex).",
                           range=(0.0, 1.0), live=True),
    "anticipate": Param(True, "False: coexpression ignores predictions (lag-led mirroring only, an ablation).",
                        live=True),
    "confidence_blend": Param(True, "Hold the prediction blended toward the face at the firing by its calibrated "
                                    "confidence (ExpressionPrediction.confidence); false: hold it as predicted.",
                              live=True),
    "overtake_margin": Param(0.0, "Margin of that comparison, in robot-space face units along the predicted "
                                   "displacement (as emo_core's PipelineConfig).",
                             range=(0.0, 1.0), live=True),
    "blink": Param(True, "Compose spontaneous blinks into the eyelid command (emo_core.gaze.Blinker; none at the "
                         "robot's expression apex)."),
    "blink_rate_per_min": Param(17.0, "Mean spontaneous blink rate (17/min at rest, Bentivoglio et al. 1997).",
                                range=(0.5, 60.0)),
    "blink_seed": Param(0, "Seed of the blink intervals and durations.", range=(0, 2**31 - 1)),
}

SERVO_DRIVER: Schema = {
    "port": Param("/dev/ttyUSB0", "Serial port of the Dynamixel bus (the emulator's link in sim)."),
    "servo_config": Param("", "Servo table. " + _CONFIG_NOTE.format("config/servos.yaml")),
    "control_rate_hz": Param(100.0, "Control cycles per second (plan, sync write, sync read).",
                             range=(1.0, 1000.0)),
    "diagnostics_rate_hz": Param(1.0, "/diagnostics messages per second.", range=(0.1, 50.0)),
    "connect_timeout_s": Param(5.0, "On configure, keep trying to open the port this long (a USB adapter "
                                    "or the emulator may still be coming up).", range=(0.0, 60.0)),
    "use_execute_at": Param(True, "Honour FaceCommand.execute_at (arrive at the predicted apex); false: "
                                  "every command moves at full speed.", live=True),
}

GAZE: Schema = {
    "servo_config": Param("", "Servo table giving the gaze and neck limits and speeds (and the driver's servo lag "
                              "model, which times saccades). " + _CONFIG_NOTE.format("config/servos.yaml")),
    "hfov_deg": Param(60.0, "Horizontal field of view of the eye camera (pinhole) in degrees.", range=(5.0, 170.0)),
    "image_width": Param(640, "Eye camera image width in pixels (with the height: the aspect ratio of the "
                              "normalized image coordinates).", range=(16, 8192)),
    "image_height": Param(480, "Eye camera image height in pixels.", range=(16, 8192)),
    "dead_band_deg": Param(1.0, "Re-fixate (saccade) when the face is this far from the fixation.", range=(0.0, 30.0)),
    "neck_tau_s": Param(0.3, "Time constant of the neck's critically damped reference.", range=(0.01, 10.0)),
    "neck_speed_fraction": Param(0.8, "The neck reference moves at most this fraction of the neck servos' "
                                      "max_velocity.", range=(0.01, 1.0)),
    "eye_comfort_deg": Param(8.0, "The neck reference stays within this of the fixation (larger gaze shifts turn "
                                  "the head at once).", range=(0.0, 90.0)),
    "lost_hold_s": Param(1.0, "Face lost: hold this long, then return to centre.", range=(0.0, 60.0)),
    "latency_s": Param(0.0333, "Frame exposure to command at the servos (what pursuit extrapolates over).",
                       range=(0.0, 1.0)),
    "lead_s": Param(0.0667, "Gaze/neck commands are due this long after their frame (the next command's arrival).",
                    range=(0.0, 1.0)),
    "saccade_settle_s": Param(0.1, "Face positions are not used until this long after a saccade's planned landing "
                                   "(the landmark tracker lags a view in fast motion).", range=(0.0, 1.0)),
    "pursuit_gain": Param(0.2, "Weight of each new face velocity sample in its average (0: no pursuit).",
                          range=(0.0, 1.0)),
    "marker_frame": Param("emo_face", "Frame id of gaze/target and gaze/markers, the head at its origin at home "
                                      "(x forward, y left, z up); rviz's fixed frame by default.", live=True),
    "target_distance_m": Param(1.0, "Distance of the point looked at in gaze/target and the markers.",
                               range=(0.05, 20.0), live=True),
}

#: GAZE parameters that are GazeConfig fields of the same name.
GAZE_CONFIG_KEYS = ("dead_band_deg", "neck_tau_s", "neck_speed_fraction", "eye_comfort_deg", "lost_hold_s",
                    "latency_s", "lead_s", "saccade_settle_s", "pursuit_gain")

FACE_TWIN: Schema = {
    "twin_config": Param("", "Digital twin config. " + _CONFIG_NOTE.format("config/face_twin.yaml")),
    "servo_config": Param("", "Servo table turning joint positions into commands. "
                              + _CONFIG_NOTE.format("config/servos.yaml")),
    "noise": Param(True, "Add the twin's camera-like measurement noise to the landmarks.", live=True),
    "seed": Param(0, "Seed of the measurement noise.", range=(0, 2**31 - 1)),
    "rate_hz": Param(30.0, "Most robot-face FaceLandmarks per second (joint states come at the control rate).",
                     range=(1.0, 1000.0)),
    "image_rate_hz": Param(10.0, "Rendered face images per second (0: none).", range=(0.0, 60.0)),
    "image_size": Param(480, "Width and height of the rendered face image in pixels.", range=(64, 2048), live=True),
    "marker_frame": Param("emo_face", "Frame id of the robot-face markers (twin/markers).", live=True),
    "marker_scale": Param(0.05, "Metres per face unit in the markers.", range=(0.001, 1.0), live=True),
    "marker_offset": Param(3.0, "The robot face is drawn this many face units to the right of the human "
                                "face's markers, so both show side by side.", range=(-100.0, 100.0), live=True),
}

BABBLER: Schema = {
    "out": Param("", "Babbling dataset directory (created, or resumed if it exists). Required."),
    "samples": Param(100, "Total samples the dataset should hold.", range=(1, 10_000_000)),
    "mode": Param("full", "Which commands move: upper face, lower face or all.", choices=("upper", "lower", "full")),
    "seed": Param(0, "Command sampling seed.", range=(0, 2**31 - 1)),
    "babbling_config": Param("", "Constraint and settle config. " + _CONFIG_NOTE.format("config/babbling.yaml")),
    "servo_config": Param("", "Servo table turning joint positions into present commands. "
                              + _CONFIG_NOTE.format("config/servos.yaml")),
    "chunk_size": Param(100, "Samples per dataset chunk.", range=(1, 100_000)),
    "command_rate_hz": Param(20.0, "The current pose is re-sent this often so the driver's watchdog does not "
                                   "send the face home while it settles.", range=(1.0, 200.0)),
    "capture_timeout_s": Param(2.0, "Longest wait for a robot-face FaceLandmarks after settling.",
                               range=(0.1, 60.0)),
    "robot_id": Param("emo", "Identifies the robot in the dataset manifest (a resumed run must match)."),
    "robot_face": Param("camera", "What shows the robot's face: a camera watching the real face, or the digital "
                                  "twin (sim; the manifest then identifies the robot by the twin's config).",
                        choices=("camera", "twin")),
    "twin_config": Param("", "The twin's config when robot_face is twin (the face_twin node's). "
                             + _CONFIG_NOTE.format("config/face_twin.yaml")),
    "shutdown_when_done": Param(True, "Exit once the dataset holds 'samples' samples."),
}

SCHEMAS: dict[str, Schema] = {
    "eye_camera": EYE_CAMERA,
    "face_landmarks": FACE_LANDMARKS,
    "peak_activation": PEAK_ACTIVATION,
    "expression_predictor": EXPRESSION_PREDICTOR,
    "inverse_model": INVERSE_MODEL,
    "servo_driver": SERVO_DRIVER,
    "face_twin": FACE_TWIN,
    "babbler": BABBLER,
    "gaze": GAZE,
}

#: Node name (as launched, and as keyed in config/emo_nodes.yaml) -> executable.
INSTANCES: dict[str, str] = {
    "left_eye": "eye_camera",
    "right_eye": "eye_camera",
    "front_eye": "eye_camera",                   # babbling on the robot: watches the robot's face
    "face_landmarks": "face_landmarks",
    "robot_face_landmarks": "face_landmarks",    # ... and finds the robot face's landmarks
    "peak_activation": "peak_activation",
    "expression_predictor": "expression_predictor",
    "inverse_model": "inverse_model",
    "servo_driver": "servo_driver",
    "face_twin": "face_twin",
    "babbler": "babbler",
    "gaze": "gaze",
}


def check_values(schema: Mapping[str, Param], values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Validate ``values`` against ``schema`` (unknown names, types, ranges, choices)."""
    unknown = sorted(set(values) - set(schema))
    if unknown:
        raise ConfigError(f"{where}unknown parameter(s) {', '.join(unknown)}; known: {', '.join(schema)}")
    return {name: schema[name].check(name, value) for name, value in values.items()}


def declare(node: Any, schema: Mapping[str, Param],
            on_set: Callable[[Mapping[str, Any]], None] | None = None) -> dict[str, Any]:
    """Declare every parameter of ``schema`` on an rclpy node (with descriptions and ranges; those
    not ``live`` read-only) and return their values, checked. Overrides come from the node's
    parameter files (``--params-file``).

    The returned dict stays current: a ``ros2 param set`` of a live parameter is checked, handed to
    ``on_set`` (``{name: value}``; a ConfigError refuses the set with its message) and then written
    into the dict, which the node reads where it uses the parameter."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    for name, param in schema.items():
        descriptor = ParameterDescriptor(name=name, description=param.describe(), read_only=not param.live)
        if param.range is not None:
            lo, hi = param.range
            if param.kind is float:
                descriptor.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
            else:
                descriptor.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
        if param.choices:
            descriptor.additional_constraints = f"one of: {', '.join(param.choices)}"
        node.declare_parameter(name, param.default, descriptor)
    values = {name: node.get_parameter(name).value for name in schema}
    values = {k: list(v) if schema[k].kind is list else v for k, v in values.items()}
    current = check_values(schema, values, f"{node.get_name()}: ")
    if any(param.live for param in schema.values()):
        node.add_on_set_parameters_callback(on_set_callback(schema, current, on_set))
    return current


def apply_set(schema: Mapping[str, Param], current: dict[str, Any], parameters: Sequence[tuple[str, Any]],
              on_set: Callable[[Mapping[str, Any]], None] | None = None) -> str | None:
    """A ``ros2 param set`` of ``(name, value)`` pairs, all or nothing: refuses parameters that are not
    live (rclpy refuses read-only ones before this; it covers any left), values that do not check
    and sets ``on_set`` refuses (ConfigError); applies the rest to ``current``. Returns the reason of
    a refusal, None when applied."""
    try:
        changed: dict[str, Any] = {}
        for name, value in parameters:
            param = schema.get(name)
            if param is None or not param.live:
                raise ConfigError(f"parameter {name} is read at start only (read-only)")
            changed[name] = param.check(name, list(value) if param.kind is list else value)
        if on_set is not None and changed:
            on_set(changed)
    except ConfigError as exc:
        return str(exc)
    current.update(changed)
    return None


def on_set_callback(schema: Mapping[str, Param], current: dict[str, Any],
                    on_set: Callable[[Mapping[str, Any]], None] | None = None) -> Callable[[list[Any]], Any]:
    """:func:`apply_set` as an rclpy on-set-parameters callback."""
    from rcl_interfaces.msg import SetParametersResult

    def callback(parameters: list[Any]) -> Any:
        reason = apply_set(schema, current, [(p.name, p.value) for p in parameters], on_set)
        return SetParametersResult(successful=reason is None, reason=reason or "")

    return callback
