"""Anticipation: peak activation (offline and causal), the expression predictor, retargeting.

Light modules are re-exported here; the torch-based predictor is imported explicitly
(``from emo_core.anticipation.predictor import ExpressionPredictor``) so that a detector-only
process (the ``peak_activation`` node) does not pay for importing torch.
"""
from .dataset import PeakWindows, build_windows, kfold_by_participant, kfold_by_video, split_per_participant
from .detector import DetectorConfig, DetectorState, PeakActivationDetector, PeakEvent
from .peak import PeakConfig, PeakResult, peak_activation
from .retarget import RetargetConfig, Retargeter
from .scorer import ExpressionScorer, ScorerSpec

__all__ = [
    "DetectorConfig", "DetectorState", "ExpressionScorer", "PeakActivationDetector", "PeakConfig", "PeakEvent",
    "PeakResult", "PeakWindows", "RetargetConfig", "Retargeter", "ScorerSpec", "build_windows",
    "kfold_by_participant", "kfold_by_video", "peak_activation", "split_per_participant",
]
