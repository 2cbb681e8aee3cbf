"""Perception: camera sources, MediaPipe landmark extraction, pose normalization, view choice."""
from .extractor import ExtractorConfig, FaceLandmarkExtractor
from .pose import HeadFrame, head_angles_deg, head_frame

__all__ = ["ExtractorConfig", "FaceLandmarkExtractor", "HeadFrame", "head_angles_deg", "head_frame"]
