"""The detector and predictor of the node graph, as the in-process pipeline sees them (no ``rclpy``).

``inverse_model`` reuses ``emo_core.pipeline.CoexpressionPipeline`` for its mode logic -- mirror the
live face, hold a predicted face until its apex, release when the person overtakes it -- rather
than re-implementing it. In process, that pipeline owns a detector and calls a predictor; in the
graph they are the ``peak_activation`` and ``expression_predictor`` nodes. :class:`RemoteAnticipation`
stands in for both, fed by their messages:

* ``face/rest`` -> :meth:`set_rest`: the detector's resting face (the pipeline mirrors against it);
* ``face/prediction`` -> :meth:`add_prediction`: on the next live frame, :meth:`update` returns a
  :class:`PeakEvent` stamped with the frame the detector fired on, and :meth:`predict_event` returns
  that prediction. The event's window is the live frame: the pipeline only uses its last frame, to
  know where the (mirroring) robot starts from, and the live frame is the latest news of that;
* ``face/prediction_refresh`` -> :meth:`add_refresh`: a re-prediction on the detector's newest
  window while the expression unfolds (``peak_activation`` publishes those windows on
  ``face/peak_refresh``); the pipeline takes it through :meth:`window_event` while it holds a
  prediction, as it takes the in-process detector's newest window. ``last_motion`` is infinite:
  ``peak_activation`` publishes refresh windows only while the face still moves.
"""
from __future__ import annotations

import logging
import threading

import numpy as np

from emo_core.anticipation.detector import PeakEvent
from emo_core.schema import Face

from .conversions import PredictionFields

LOG = logging.getLogger(__name__)


class RemoteAnticipation:
    """``detector=`` and ``predictor=`` of a CoexpressionPipeline whose stages run in other nodes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()       # messages may arrive on other executor threads
        self.rest: np.ndarray | None = None
        self._pending: PredictionFields | None = None
        self._refresh: PredictionFields | None = None
        self._events: dict[float, PredictionFields] = {}
        self.last_motion = float("inf")

    def reset(self) -> None:
        """New person: forget the resting face (the next one from ``face/rest`` is used) and any
        prediction not yet used."""
        with self._lock:
            self.rest = None
            self._pending = None
            self._refresh = None
            self._events = {}

    # -- fed by messages ------------------------------------------------------------------------
    def set_rest(self, rest: np.ndarray | None) -> None:
        with self._lock:
            self.rest = None if rest is None else np.asarray(rest, np.float32)[:, :2].copy()

    def add_prediction(self, prediction: PredictionFields) -> None:
        with self._lock:
            if self._pending is not None:
                LOG.debug("prediction for %.3f s replaced before a live frame used it", self._pending.stamp)
            self._pending = prediction

    def add_refresh(self, prediction: PredictionFields) -> None:
        with self._lock:
            self._refresh = prediction

    # -- what the pipeline calls ----------------------------------------------------------------
    def update(self, face: Face, stamp: float) -> PeakEvent | None:
        with self._lock:
            prediction, self._pending = self._pending, None
            rest = self.rest
            if prediction is not None and self._refresh is not None and self._refresh.stamp <= prediction.stamp:
                self._refresh = None         # a refresh of an earlier firing is stale now
        if prediction is None:
            return None
        if rest is None:
            LOG.warning("prediction for %.3f s dropped: no resting face received yet", prediction.stamp)
            return None
        live = np.asarray(face.metric, np.float32)[:, :2]
        self._events = {prediction.stamp: prediction}
        return PeakEvent(stamp=prediction.stamp, frame_index=-1, window=live[None].copy(),
                         window_stamps=np.array([float(stamp)]), rest=rest.copy(),
                         activation=prediction.confidence)

    def window_event(self, stamp: float) -> PeakEvent | None:
        """The newest re-prediction not used yet, as the event the pipeline re-predicts on (its
        window is not used by the re-prediction, only its stamp and the prediction behind it)."""
        with self._lock:
            refresh, self._refresh = self._refresh, None
            rest = self.rest
        if refresh is None or rest is None:
            return None
        self._events = {refresh.stamp: refresh}
        return PeakEvent(stamp=refresh.stamp, frame_index=-1, window=rest[None].copy(),
                         window_stamps=np.array([float(stamp)]), rest=rest.copy(), activation=refresh.confidence)

    def predict_event(self, event: PeakEvent) -> PredictionFields:
        return self._events[event.stamp]
