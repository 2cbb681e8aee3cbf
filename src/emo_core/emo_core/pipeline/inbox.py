"""Predictions that arrive as messages, handed to the coexpression controller frame by frame.

In the ROS graph the detector and predictor run in other nodes (``peak_activation``,
``expression_predictor``); ``inverse_model`` receives their predictions on ``face/prediction``
(a firing) and ``face/prediction_refresh`` (a re-prediction on the detector's newest window while
the expression unfolds; ``peak_activation`` publishes those only while the face still moves). The
controller takes each on the next live frame: a firing through
:meth:`~emo_core.pipeline.controller.CoexpressionController.predicted`, a re-prediction when the
controller asks for one (``step``'s ``refresh``). Both are made on the face of the live frame that
takes them: it is the latest news of where the (mirroring) robot starts from, and of the face a
confidence below 1 blends the prediction toward.
"""
from __future__ import annotations

import logging
import threading

import numpy as np

from ..conversions import PredictionFields
from .controller import CoexpressionController, Decision, Hold

LOG = logging.getLogger(__name__)


def to_hold(prediction: PredictionFields, face: np.ndarray) -> Hold:
    """An ExpressionPrediction's fields, taken on the live frame ``face`` (113, 2)."""
    return Hold(target=prediction.target, time_to_apex=prediction.time_to_apex, stamp=prediction.stamp,
                face=np.asarray(face, np.float32)[:, :2], confidence=prediction.confidence)


class PredictionInbox:
    """The newest firing and re-prediction not taken yet (thread-safe: messages may arrive on other
    executor threads than the live frames)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: PredictionFields | None = None
        self._refresh: PredictionFields | None = None

    def reset(self) -> None:
        """New person: forget what was not taken yet."""
        with self._lock:
            self._pending = self._refresh = None

    def add_prediction(self, prediction: PredictionFields) -> None:
        with self._lock:
            if self._pending is not None:
                LOG.debug("prediction for %.3f s replaced before a live frame used it", self._pending.stamp)
            self._pending = prediction

    def add_refresh(self, prediction: PredictionFields) -> None:
        with self._lock:
            self._refresh = prediction

    def take_prediction(self, face: np.ndarray) -> Hold | None:
        """The firing not taken yet, as a Hold on the live ``face``; a re-prediction of an earlier
        firing is stale from then on and dropped."""
        with self._lock:
            prediction, self._pending = self._pending, None
            if prediction is not None and self._refresh is not None and self._refresh.stamp <= prediction.stamp:
                self._refresh = None
        return None if prediction is None else to_hold(prediction, face)

    def take_refresh(self, face: np.ndarray) -> Hold | None:
        """The newest re-prediction not taken yet (each is taken once), as a Hold on the live ``face``."""
        with self._lock:
            refresh, self._refresh = self._refresh, None
        return None if refresh is None else to_hold(refresh, face)

    def feed(self, controller: CoexpressionController, live: np.ndarray, stamp: float) -> Decision:
        """One live frame with a face (``live``: its (113, 2) metric points) through ``controller``,
        with the firing and the re-predictions waiting here (what ``inverse_model`` does per frame)."""
        hold = self.take_prediction(live)
        if hold is not None:
            controller.predicted(hold)
        return controller.step(live, stamp, lambda _: self.take_refresh(live))
