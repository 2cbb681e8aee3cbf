"""Digital twin of Emo's face: a forward model from the 11 motor commands to 113 landmarks, and a
renderer. No ROS, no clock, no global state; see ``docs/twin.md`` for the modelling assumptions."""
from .config import TwinConfig, load_twin_config
from .model import DigitalTwin
from .render import render_face

__all__ = ["DigitalTwin", "TwinConfig", "load_twin_config", "render_face"]
