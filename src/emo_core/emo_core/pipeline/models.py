"""Loading the stage models once and building pipelines from them.

The predictor, inverse model, twin and retargeter hold no per-stream state, so one
:class:`Stages` serves any number of pipelines (one per mode, or one per synthetic person).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..anticipation.config import AnticipationConfig, load_anticipation_config
from ..anticipation.detector import PeakActivationDetector
from ..anticipation.retarget import Retargeter
from ..twin import DigitalTwin
from .core import CoexpressionPipeline, Mode, PipelineConfig

LOG = logging.getLogger(__name__)


@dataclass
class Stages:
    """The shared, stateless parts of the pipeline."""

    predictor: Any
    inverse: Any
    twin: DigitalTwin
    retargeter: Retargeter
    anticipation: AnticipationConfig
    scorer: Any = None          # the detector's learned scorer, loaded once and shared
    #: The pipeline settings :meth:`pipeline` starts from (its ``mode`` is replaced per call).
    pipeline_config: PipelineConfig | None = None

    @classmethod
    def load(cls, predictor_dir: str | Path | None = None, inverse_dir: str | Path | None = None,
             anticipation_config: str | Path | None = None, twin_seed: int = 0) -> "Stages":
        """The shipped models (or the given directories), the twin and the project's configs."""
        # torch is imported here, not at module import, so `emo --help` stays fast.
        from ..anticipation.predictor import ExpressionPredictor
        from ..anticipation.scorer import ExpressionScorer
        from ..selfmodel.inverse import InverseModel

        config = load_anticipation_config(anticipation_config)
        twin = DigitalTwin(seed=twin_seed)
        predictor = ExpressionPredictor.load(predictor_dir)
        inverse = InverseModel.load(inverse_dir)
        scorer = ExpressionScorer.load(predictor_dir)
        LOG.info("predictor %s, inverse model %s", predictor.architecture, inverse.arch.name)
        return cls(predictor, inverse, twin, Retargeter.from_twin(twin, config.retarget), config, scorer)

    def pipeline(self, mode: Mode | str, *, extractor: Any = None, config: PipelineConfig | None = None,
                 timer: Callable[[], float] = time.perf_counter) -> CoexpressionPipeline:
        cfg = replace(config or self.pipeline_config or PipelineConfig(), mode=Mode.parse(mode))
        detector = PeakActivationDetector(self.anticipation.detector, scorer=self.scorer)
        return CoexpressionPipeline(self.predictor, self.inverse, self.retargeter, self.twin.calm_commands(),
                                    config=cfg, detector=detector, extractor=extractor, timer=timer)

    def describe(self) -> dict[str, Any]:
        """Which models run (for report.json)."""
        pred_card = getattr(self.predictor, "card", {}) or {}
        inv_card = getattr(self.inverse, "card", {}) or {}
        return {"predictor": {"architecture": pred_card.get("architecture", {}).get("name"),
                              "data": pred_card.get("data", pred_card.get("source"))},
                "inverse": {"architecture": inv_card.get("architecture", {}).get("name"),
                            "data": inv_card.get("data", inv_card.get("training_data"))}}
