"""``config/anticipation.yaml``: peak-activation, detector and retargeting parameters."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


from ..errors import ConfigError
from ..resources import config_path, read_yaml
from .detector import DetectorConfig
from .peak import PeakConfig
from .retarget import RetargetConfig

CONFIG_FILE = "anticipation.yaml"


@dataclass(frozen=True)
class AnticipationConfig:
    peak: PeakConfig = field(default_factory=PeakConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    retarget: RetargetConfig = field(default_factory=RetargetConfig)


def _peak(values: dict[str, Any] | None) -> PeakConfig:
    values = dict(values or {})
    known = {f.name for f in fields(PeakConfig)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown peak parameter(s): {', '.join(sorted(unknown))}")
    defaults = PeakConfig()
    return PeakConfig(**{k: type(getattr(defaults, k))(v) for k, v in values.items()})


def load_anticipation_config(path: str | Path | None = None) -> AnticipationConfig:
    """Read the YAML (default: the project's ``config/anticipation.yaml``); ConfigError if malformed."""
    file = Path(path) if path is not None else config_path(CONFIG_FILE)
    raw = read_yaml(file, "anticipation config")
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    unknown = set(raw) - {"peak", "detector", "retarget"}
    if unknown:
        raise ConfigError(f"{file}: unknown section(s) {', '.join(sorted(unknown))}")
    try:
        return AnticipationConfig(peak=_peak(raw.get("peak")),
                                  detector=DetectorConfig.from_dict(raw.get("detector")),
                                  retarget=RetargetConfig.from_dict(raw.get("retarget")))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{file}: {exc}") from exc
