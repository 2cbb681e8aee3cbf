"""KEY=VALUE overrides of config dataclasses (emo eval video --pipeline/--sim, emo eval detector --detector)."""
from __future__ import annotations

import math

import pytest

from emo_core.anticipation.detector import DetectorConfig
from emo_core.cli.overrides import apply, parse_pairs
from emo_core.errors import ConfigError, InputError
from emo_core.pipeline.core import PipelineConfig
from emo_core.pipeline.sim import SimConfig


def test_values_are_yaml_scalars_cast_to_the_fields_type():
    assert parse_pairs(["a=1", "b=slope", "c=true", "d=0.25", "e=null"], "--x") == \
        {"a": 1, "b": "slope", "c": True, "d": 0.25, "e": None}
    cfg = apply(PipelineConfig(), ["lag_lead=slope", "lag_lead_frames=12", "lead_mirroring=false"], "--pipeline")
    assert cfg.lag_lead == "slope" and cfg.lag_lead_frames == 12 and cfg.lead_mirroring is False
    assert apply(SimConfig(), ["servo_lag_s=0.3"], "--sim").servo_lag_s == 0.3      # an Optional field
    det = apply(DetectorConfig(), ["rearm_timeout_s=1"], "--detector")
    assert isinstance(det.rearm_timeout_s, float) and det.rearm_timeout_s == 1.0
    assert apply(DetectorConfig(), None, "--detector") == DetectorConfig()


@pytest.mark.parametrize("pairs,error", [
    (["nokey"], InputError), (["=1"], InputError), (["bogus=1"], InputError),
    (["lag_lead_frames=x"], InputError), (["lag_lead_frames=2.5"], InputError),
    (["lead_mirroring=1"], InputError), (["lag_lead_frames=[1, 2]"], InputError),
    (["lag_lead=nope"], ConfigError), (["lag_lead_frames=1"], ConfigError),
])
def test_bad_overrides_are_user_errors(pairs, error):
    with pytest.raises(error):
        apply(PipelineConfig(), pairs, "--pipeline")


def test_nan_is_refused_by_the_configs_own_checks():
    with pytest.raises(ConfigError):
        apply(DetectorConfig(), ["rearm_timeout_s=.nan"], "--detector")
    assert math.isinf(apply(DetectorConfig(), ["rearm_timeout_s=.inf"], "--detector").rearm_timeout_s)
