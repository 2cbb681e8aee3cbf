"""The 26-servo Dynamixel bus: servo table, driver (through the real dynamixel_sdk), emulator.

Typical use (a ROS node or the pipeline wraps exactly this)::

    table = ServoTable.load()                       # config/servos.yaml
    with ServoDriver(table, "/dev/ttyUSB0") as driver:   # opens + configures; shutdown on exit
        driver.activate()                           # torque on, holding the present pose
        while running:
            driver.command(commands_11, arrive_at=t_apex)   # whenever a FaceCommand comes
            state = driver.step()                   # one control cycle -> ServoState
    # leaving the block (Ctrl-C included) eased the face home and released torque

See docs/servo.md.
"""
from .bus import ServoBus, ServoError, TransportError
from .driver import Diagnostic, DriverConfig, Link, ServoDriver, ServoState
from .emulator import BusEmulator
from .models import MODELS, ModelSpec, Register
from .planner import Motion, TrajectoryPlanner
from .table import CHANNEL_NAMES, TARGET_NAMES, ServoSpec, ServoTable

__all__ = [
    "BusEmulator", "CHANNEL_NAMES", "Diagnostic", "DriverConfig", "Link", "MODELS", "ModelSpec", "Motion",
    "Register", "ServoBus", "ServoDriver", "ServoError", "ServoSpec", "ServoState", "ServoTable", "TARGET_NAMES",
    "TrajectoryPlanner", "TransportError",
]
