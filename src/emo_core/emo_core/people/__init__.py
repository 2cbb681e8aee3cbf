"""Synthetic people: AU-based expression landmark sequences and real-photo expression clips.

* ``au`` -- action units as displacement fields over the 468-point mesh (metric units);
* ``expressions`` / ``timing`` -- FACS-style prototypes, asynchrony, onset/apex timing, blinks,
  talking, head motion;
* ``identity`` / ``template`` -- the neutral template (the extractor on a neutralized real photo)
  and shape variation;
* ``generator`` -- landmark sequences in the human-sequence dataset format;
* ``photo`` / ``warp`` / ``clip`` -- a real photograph neutralized and warped into an expression
  video with its ground truth.
"""
from .au import AU_NAMES, N_AUS, AUModel
from .expressions import DISTRACTORS, EXPRESSIONS, LABELS
from .generator import GeneratorConfig, PeopleGenerator, generate, ground_truth
from .identity import Identity, make_identity
from .template import Template, load_template

__all__ = ["AU_NAMES", "AUModel", "DISTRACTORS", "EXPRESSIONS", "GeneratorConfig", "Identity", "LABELS",
           "N_AUS", "PeopleGenerator", "Template", "generate", "ground_truth", "load_template",
           "make_identity"]
