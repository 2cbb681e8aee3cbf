"""Causal peak-activation detector: state machine (scripted scorer) and the shipped scorer on
synthetic people (fires early on expressions, not on blinks, talking or head turns)."""
from __future__ import annotations

import numpy as np
import pytest

from emo_core.anticipation.detector import DetectorConfig, DetectorState, PeakActivationDetector
from emo_core.anticipation.scorer import ScorerSpec, expression_start
from emo_core.errors import ConfigError, InputError
from emo_core.schema import REGIONS, Face

LIPS = REGIONS["lips"]


class LipScorer:
    """Scripted scorer: 'rising' when the lips moved up by > 0.01 over the last 3 frames."""

    spec = ScorerSpec(smooth_frames=1, lags=(3,), hidden=1, drop_jaw=False)

    def probability(self, feats: np.ndarray) -> np.ndarray:
        motion = feats[0, 226:].reshape(113, 2)
        return np.array([0.99 if -motion[LIPS, 1].mean() > 0.01 else 0.01])


def face(lift: float = 0.0, seed: int = 0) -> np.ndarray:
    pts = np.random.default_rng(seed).normal(scale=0.3, size=(113, 2)).astype(np.float32)
    pts[LIPS, 1] -= lift
    return pts


def feed(detector: PeakActivationDetector, lifts: list[float], t0: float = 0.0, fps: float = 30.0):
    events = []
    for i, lift in enumerate(lifts):
        event = detector.update(face(lift), t0 + i / fps)
        if event is not None:
            events.append((i, event))
    return events


def test_calibrates_fires_on_a_rise_and_rearms_only_at_rest():
    det = PeakActivationDetector(DetectorConfig(confirm_frames=2, rearm_frames=5), scorer=LipScorer())
    rise = list(np.linspace(0.0, 0.2, 21))
    lifts = [0.0] * 20 + rise + [0.2] * 30 + [0.0] * 10 + rise
    events = feed(det, lifts)
    assert [i for i, _ in events] == [23, 84]          # held smile: no second firing until back at rest
    first = events[0][1]
    assert first.window.shape == (4, 113, 2)
    np.testing.assert_allclose(first.window[-1], face(rise[3]), atol=1e-6)
    np.testing.assert_allclose(first.window_stamps, np.arange(20, 24) / 30.0)
    np.testing.assert_allclose(first.rest, face(0.0), atol=1e-6)
    assert first.stamp == pytest.approx(23 / 30.0)


def test_refresh_windows_follow_a_firing_only_while_the_face_moves():
    """refresh_event: every 3rd frame after the firing while the lips still rise, the newest
    window; none before the firing, none on the held plateau (no motion), none at rest."""
    det = PeakActivationDetector(DetectorConfig(confirm_frames=2, rearm_frames=5), scorer=LipScorer())
    rise = list(np.linspace(0.0, 0.2, 21))
    lifts = [0.0] * 20 + rise + [0.2] * 30
    refreshed, fired = [], None
    for i, lift in enumerate(lifts):
        if det.update(face(lift), i / 30.0) is not None:
            fired = i
        event = det.refresh_event(i / 30.0, every=3, min_motion=2.0)
        if event is not None:
            refreshed.append(i)
            assert event.stamp == pytest.approx(i / 30.0) and event.window.shape == (4, 113, 2)
            np.testing.assert_allclose(event.window[-1], face(lift), atol=1e-6)
    assert fired == 23
    assert refreshed and refreshed[0] == 26 and all((i - fired) % 3 == 0 for i in refreshed)
    assert max(refreshed) <= 20 + len(rise) + 3, "the plateau is still: no refresh there"
    assert det.refresh_event(1.0, every=0, min_motion=0.0) is None


def test_calibration_needs_its_frames_and_missing_faces_are_skipped():
    det = PeakActivationDetector(DetectorConfig(calibration_frames=8), scorer=LipScorer())
    for i in range(7):
        det.update(face(), i / 30)
    assert det.state is DetectorState.CALIBRATING and det.rest is None
    assert det.update(Face.missing(stamp=0.3)) is None
    bad = face()
    bad[3, 0] = np.nan
    assert det.update(bad, 0.31) is None
    det.update(face(), 0.33)
    assert det.state is DetectorState.ARMED
    with pytest.raises(InputError):
        det.update(np.zeros((112, 2)), 0.4)
    with pytest.raises(InputError):
        det.update(face())                                   # raw points need a stamp


def test_a_gap_restarts_the_history():
    det = PeakActivationDetector(scorer=LipScorer())
    feed(det, [0.0] * 20)
    # After a 1 s gap the face is already lifted and holds still: the jump across the gap is not
    # motion the detector saw, so it must not fire (it would, comparing with pre-gap frames).
    assert feed(det, [0.1] * 10, t0=2.0) == []
    assert len(feed(det, [0.12, 0.14, 0.16, 0.18], t0=2.4)) == 1


def test_rolling_neutral_follows_slow_drift():
    det = PeakActivationDetector(DetectorConfig(neutral_update_every=5), scorer=LipScorer())
    drift = list(np.linspace(0.0, 0.03, 200))                # 1.5 mm over ~7 s: never "rising"
    assert feed(det, drift) == []
    assert abs(float((face(0.0) - det.rest)[LIPS, 1].mean()) - 0.03) < 0.006


class FooledScorer:
    """A scorer that says 'rising' on any lip displacement (as the shipped one does on a residual
    smile on real MediaPipe tracks, which its synthetic training data never showed it)."""

    spec = ScorerSpec(smooth_frames=1, lags=(3,), hidden=1, drop_jaw=False)

    def probability(self, feats: np.ndarray) -> np.ndarray:
        shown = feats[0, :226].reshape(113, 2)
        return np.array([0.99 if -shown[LIPS, 1].mean() > 0.002 else 0.01])


@pytest.mark.parametrize("min_motion, fires", [(1.0, False), (0.0, True)])
def test_a_still_displaced_face_near_rest_is_no_onset(min_motion, fires):
    """A residual displacement that appears and then sits still (the tracker settling, what is left
    of a smile) must not fire over and over: without motion there is no rising edge, and the face is
    learned into the rolling neutral."""
    det = PeakActivationDetector(DetectorConfig(min_motion=min_motion, rearm_frames=3), scorer=FooledScorer())
    lifts = [0.0] * 20 + list(np.linspace(0.0, 0.004, 30)) + [0.004] * 60     # creeps in, then sits
    events = feed(det, lifts)
    if fires:
        assert len(events) >= 2, "re-arms near rest and fires again on the same still face"
    else:
        assert events == []
        assert float(np.mean(face(0.0)[LIPS, 1] - det.rest[LIPS, 1])) == pytest.approx(0.004, abs=1e-4), \
            "the still face became the neutral"


def test_config_validation():
    with pytest.raises(ConfigError):
        DetectorConfig(on_probability=0.2, quiet_probability=0.3)
    with pytest.raises(ConfigError):
        DetectorConfig.from_dict({"threshold": 1})
    assert DetectorConfig.from_dict({"confirm_frames": 3}).confirm_frames == 3


# ------------------------------------------------------------------ shipped scorer, synthetic people

@pytest.fixture(scope="module")
def people():
    from emo_core.people.generator import PeopleGenerator

    gen = PeopleGenerator()
    rng = np.random.default_rng(np.random.SeedSequence([77, 0]))
    person = gen.identity("t000", rng)
    expressions = [gen.sequence(person, label, np.random.default_rng(np.random.SeedSequence([77, i])))
                   for i, label in enumerate(("smile", "broad_smile", "surprise", "sadness", "anger",
                                              "disgust", "fear", "smile"), start=1)]
    distractors = [gen.sequence(person, label, np.random.default_rng(np.random.SeedSequence([78, i])))
                   for i, label in enumerate(("blink", "talking", "head_turn", "neutral") * 2, start=1)]
    return expressions, distractors


def run(seq) -> list[int]:
    det = PeakActivationDetector()
    return [i for i, frame in enumerate(seq.landmarks)
            if det.update(frame, i / seq.fps) is not None]


def test_fires_early_on_expressions(people):
    expressions, _ = people
    early = 0
    for seq in expressions:
        firings = [f for f in run(seq) if f >= expression_start(seq)]
        deadline = seq.onset_frame + 0.5 * (seq.apex_frame - seq.onset_frame)
        early += bool(firings) and firings[0] <= deadline
    assert early >= 6, f"only {early} of {len(expressions)} expressions detected before half their onset"


def test_ignores_blinks_talking_and_head_turns(people):
    _, distractors = people
    firings = {seq.label + str(i): len(run(seq)) for i, seq in enumerate(distractors)}
    minutes = sum(len(s.landmarks) / s.fps for s in distractors) / 60
    assert sum(firings.values()) <= 1, f"false triggers on {firings} in {minutes:.1f} min of footage"


def test_online_scores_equal_the_training_features(people):
    from emo_core.anticipation.scorer import ExpressionScorer, sequence_features

    scorer = ExpressionScorer.load(None)
    seq = people[0][1]
    xy = seq.landmarks[..., :2]
    det = PeakActivationDetector(DetectorConfig(neutral_update_every=10_000, rearm_frames=10_000), scorer)
    online = []
    for i, frame in enumerate(xy):
        det.update(frame, i / seq.fps)
        online.append(det.last_probability)
    offline = scorer.probability(sequence_features(xy, np.median(xy[:8], axis=0), scorer.spec))
    start = 8 + scorer.spec.history
    np.testing.assert_allclose(online[start:], offline[start:], atol=1e-5)


# ------------------------------------------------------------------ real-footage additions

def _rot(yaw_deg: float) -> np.ndarray:
    a = np.radians(yaw_deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def test_head_turn_blocks_firing_only_while_the_head_turns_fast():
    """max_head_speed: a lip rise during a fast head turn (Face.head_rotation) does not fire; the
    same rise with a still head does, and raw points (no rotation) are never blocked."""
    rise = list(np.linspace(0.0, 0.2, 21))
    lifts = [0.0] * 20 + rise + [0.2] * 10

    def run_faces(yaw_speed: float, cfg: DetectorConfig) -> tuple[list[int], PeakActivationDetector]:
        det = PeakActivationDetector(cfg, scorer=LipScorer())
        fired = []
        for i, lift in enumerate(lifts):
            pts = np.zeros((113, 3), np.float32)
            pts[:, :2] = face(lift)
            f = Face(detected=True, confidence=1.0, metric=pts, stamp=i / 30.0,
                     head_rotation=_rot(yaw_speed * i / 30.0))
            if det.update(f) is not None:
                fired.append(i)
        return fired, det

    cfg = DetectorConfig(confirm_frames=2, rearm_frames=5, max_head_speed=15.0)
    fired, det = run_faces(40.0, cfg)                      # turning at 40 deg/s throughout
    assert fired == []
    assert det.head_speed == pytest.approx(40.0, rel=1e-3)
    fired, _ = run_faces(5.0, cfg)                         # slow drift of the head: fires as usual
    assert fired == [23]
    fired, _ = run_faces(40.0, DetectorConfig(confirm_frames=2, rearm_frames=5))   # rule off
    assert fired == [23]
    det = PeakActivationDetector(cfg, scorer=LipScorer())
    assert [i for i, _ in feed(det, lifts)] == [23]        # raw points: no rotation, no rule


def test_motion_yardstick_is_the_persons_own_stillness():
    """motion_window: the gates compare motion to a quantile of the person's own recent motion,
    not to the calibration noise; on a jittery face it sits at that jitter's level."""
    rng = np.random.default_rng(0)
    base = face(0.0)
    det = PeakActivationDetector(DetectorConfig(motion_window=60, motion_quantile=0.5), scorer=LipScorer())
    jitter = 0.01
    for i in range(120):
        det.update(base + rng.normal(scale=jitter, size=base.shape).astype(np.float32), i / 30.0)
    # 2-frame means 3 frames apart: per-coordinate sd jitter, RMS over 2 axes -> ~sqrt(2) * jitter
    assert 0.7 * jitter < det.motion_noise < 2.5 * jitter
    assert det.motion_noise > det.config.noise_floor
    with pytest.raises(ConfigError):
        DetectorConfig(motion_quantile=1.5)
    with pytest.raises(ConfigError):
        DetectorConfig(max_head_speed=-1.0)


def test_rearms_where_the_face_settles_and_fires_on_the_next_expression():
    """A transition without a return to rest: rest -> smile (held) -> a bigger smile. With the
    settle re-arm the second rise fires too (scored against the held smile, the anchor); with it
    off the detector stays fired until the face is back at rest."""
    rise = list(np.linspace(0.0, 0.2, 21))
    more = list(np.linspace(0.2, 0.4, 21))
    lifts = [0.0] * 20 + rise + [0.2] * 20 + more + [0.4] * 10
    on = PeakActivationDetector(DetectorConfig(confirm_frames=2, rearm_frames=5, settle_frames=8), scorer=LipScorer())
    off = PeakActivationDetector(DetectorConfig(confirm_frames=2, rearm_frames=5, settle_frames=0), scorer=LipScorer())
    fired_on = [i for i, _ in feed(on, lifts)]
    fired_off = [i for i, _ in feed(off, lifts)]
    assert fired_off == [23]
    assert len(fired_on) == 2 and fired_on[0] == 23 and 61 <= fired_on[1] <= 66
    second = feed(PeakActivationDetector(DetectorConfig(confirm_frames=2, rearm_frames=5, settle_frames=8),
                                         scorer=LipScorer()), lifts)[1][1]
    np.testing.assert_allclose(second.rest, face(0.0), atol=1e-6)      # the predictor still gets the neutral


def test_rearm_timeout_rearms_a_face_that_never_settles():
    """A face that keeps moving after a firing (a real tracker's face rarely looks still) re-arms
    rearm_timeout_s after the firing, against the face of that moment; off, it stays fired."""
    lifts = [0.0] * 20 + list(np.linspace(0.0, 0.6, 61))
    cfg = DetectorConfig(confirm_frames=2, rearm_frames=5, settle_frames=0)
    fired_off = [i for i, _ in feed(PeakActivationDetector(cfg, scorer=LipScorer()), lifts)]
    timed = PeakActivationDetector(DetectorConfig(confirm_frames=2, rearm_frames=5, settle_frames=0,
                                                  rearm_timeout_s=0.5), scorer=LipScorer())
    fired_on = [i for i, _ in feed(timed, lifts)]
    assert fired_off == [23]
    assert fired_on[0] == 23 and len(fired_on) >= 2
    # 0.5 s = 15 frames after the firing it re-arms, and the still-rising face fires again at once.
    assert 38 <= fired_on[1] <= 41
    with pytest.raises(ConfigError):
        DetectorConfig(rearm_timeout_s=-1.0)


def test_settled_expression_that_returns_to_rest_drops_its_anchor():
    det = PeakActivationDetector(DetectorConfig(confirm_frames=2, rearm_frames=5, settle_frames=8), scorer=LipScorer())
    rise = list(np.linspace(0.0, 0.2, 21))
    feed(det, [0.0] * 20 + rise + [0.2] * 12)
    assert det.state is DetectorState.ARMED and det._anchor is not None
    feed(det, [0.0] * 10, t0=53 / 30.0)
    assert det._anchor is None


def _mouth(lift: float, aperture: float) -> np.ndarray:
    pts = face(lift)
    pts[54] = pts[53] + (0.0, 0.02 + aperture)   # inner lip centres (MediaPipe 13, 14): the mouth opening
    return pts


def test_swings_count_reversals_larger_than_the_amplitude():
    from collections import deque
    from emo_core.anticipation.detector import swings as _swings
    assert _swings(deque([0.0, 0.1, 0.2, 0.1, 0.0]), 0.05) == 1          # one open-close
    assert _swings(deque([0.0, 0.2, 0.0, 0.2, 0.0, 0.2]), 0.05) == 4     # talking
    assert _swings(deque([0.0, 0.02, 0.0, 0.02, 0.0]), 0.05) == 0        # jitter below the amplitude
    assert _swings(deque([]), 0.05) == 0


def test_talking_rule_blocks_a_rise_while_the_mouth_opens_and_closes():
    """The same lip rise fires with a still mouth and not while the aperture oscillates (speech);
    once the mouth stops, a rise fires again."""
    cfg = DetectorConfig(confirm_frames=2, talk_window=30, talk_swings=3, talk_amplitude=0.04)
    rise = list(np.linspace(0.0, 0.2, 21))
    talk = [0.1 * (i // 2 % 2) for i in range(41)]          # opens/closes every 2 frames
    for talking, expect_fire in ((False, True), (True, False)):
        det = PeakActivationDetector(cfg, scorer=LipScorer())
        apertures = [0.0] * 8 + (talk[:33] if talking else [0.0] * 33)   # talking from frame 8
        events = [det.update(_mouth(l, a), i / 30.0) for i, (l, a) in enumerate(zip([0.0] * 20 + rise, apertures))]
        assert any(e is not None for e in events) is expect_fire
        assert det.talking is talking
    # rule off: the talking rise fires
    det = PeakActivationDetector(DetectorConfig(confirm_frames=2), scorer=LipScorer())
    apertures = [0.0] * 8 + talk[:33]
    assert any(det.update(_mouth(l, a), i / 30.0) is not None
               for i, (l, a) in enumerate(zip([0.0] * 20 + rise, apertures)))


def test_talking_swings_are_relative_to_the_trackers_aperture_jitter():
    """A tracker whose aperture jumps by 0.05 every frame: swings of 0.1 are its jitter, not speech."""
    base = dict(talk_window=30, talk_swings=3, talk_amplitude=0.04)
    jitter = [0.05 * (i % 2) for i in range(60)] + [0.1 * (i // 4 % 2) for i in range(30)]
    for relative, expect in ((0.0, True), (5.0, False)):
        det = PeakActivationDetector(DetectorConfig(**base, talk_relative=relative), scorer=LipScorer())
        for i, a in enumerate(jitter):
            det.update(_mouth(0.0, a), i / 30.0)
        assert det.talking is expect


def test_rest_noise_comes_from_still_frames_not_from_the_calibration():
    """A real tracker: calibration frames identical, then the still face wanders slowly (RMS ~0.04
    on the lips). The 'at rest' noise must grow to that wander; the motion yardstick stays at the
    frame-to-frame jitter, far below it."""
    rng = np.random.default_rng(3)
    cfg = DetectorConfig(rest_window=90, rest_from_still=True)
    det = PeakActivationDetector(cfg, scorer=LipScorer())
    wander = np.cumsum(rng.normal(scale=0.002, size=(300, len(LIPS))), axis=0)
    wander = 0.04 * wander / wander.std()
    for i in range(300):
        pts = face(0.0)
        if i >= 8:
            pts[LIPS, 1] += wander[i]
        det.update(pts, i / 30.0)
    assert det.still_rest is not None
    assert det.rest_noise > 3 * cfg.noise_floor            # the wander, not the calibration's 0
    assert det.still_jitter < det.rest_noise
    off = PeakActivationDetector(DetectorConfig(), scorer=LipScorer())
    for i in range(300):
        pts = face(0.0)
        if i >= 8:
            pts[LIPS, 1] += wander[i]
        off.update(pts, i / 30.0)
    assert off.rest_noise == off.noise                      # rule off: the old single noise level


def test_new_keys_are_validated():
    with pytest.raises(ConfigError):
        DetectorConfig(talk_swings=0)
    with pytest.raises(ConfigError):
        DetectorConfig(rest_window=-1)
    with pytest.raises(ConfigError):
        DetectorConfig.from_dict({"rest_from_still": "yes"})
    assert DetectorConfig.from_dict({"rest_from_still": True, "talk_window": 30}).talk_window == 30
