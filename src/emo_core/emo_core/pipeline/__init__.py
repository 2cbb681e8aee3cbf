"""The in-process coexpression pipeline (``emo demo``, ``emo bench pipeline``, tests).

It chains the same stage classes the ROS nodes wrap: camera source -> landmark extractor ->
causal peak-activation detector -> expression predictor -> retargeting -> inverse self-model ->
servo driver -> bus emulator -> digital twin. The decisions (mirror, lead, hold, release) are
``controller.CoexpressionController``'s, the one the ROS ``inverse_model`` node runs too. See
docs/architecture.md ("Pipeline").
"""
from .controller import CoexpressionController, Decision, Hold, State
from .core import STAGES, CoexpressionPipeline, FaceCommand, LatencyLog, Mode, PipelineConfig, Source, StepResult
from .models import Stages
from .run import ModeRun, ModeRunner, evaluate_sequences, face_from_points
from .sim import RobotTrace, SimConfig, SimRobot
from .synchrony import APEX_FRACTION, Episode, crossing_time, human_episode, robot_intensity, summarize

__all__ = [
    "APEX_FRACTION", "CoexpressionController", "CoexpressionPipeline", "Decision", "Hold", "State", "Episode", "FaceCommand", "LatencyLog", "Mode", "ModeRun",
    "ModeRunner", "PipelineConfig", "RobotTrace", "STAGES", "SimConfig", "SimRobot", "Source", "Stages",
    "StepResult", "crossing_time", "evaluate_sequences", "face_from_points", "human_episode",
    "robot_intensity", "summarize",
]
