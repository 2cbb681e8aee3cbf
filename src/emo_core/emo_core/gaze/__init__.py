"""Gaze and blinking: eyes and neck that follow the person, spontaneous blinks (docs/gaze.md)."""
from .blink import ApexGate, ApexGateConfig, BlinkConfig, Blinker
from .controller import GazeCommand, GazeConfig, GazeController, GazePhase, GazeState
from .geometry import JOINTS, EyeCamera, GazeJoints, Pose, face_centre
from .stage import BlinkStage, GazeStage, GazeStep, PoseHistory

__all__ = ["ApexGate", "ApexGateConfig", "BlinkConfig", "BlinkStage", "Blinker", "EyeCamera", "GazeCommand", "GazeConfig",
           "GazeController", "GazeJoints", "GazePhase", "GazeStage", "GazeState", "GazeStep", "JOINTS", "Pose",
           "PoseHistory", "face_centre"]
