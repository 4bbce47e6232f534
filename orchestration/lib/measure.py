"""What the measure step needs from the installation: its configuration file and the tables it writes.

The configuration (`config/cxloop.yml`, or the file `CXLOOP_CONFIG` names) holds the KPI anomaly monitors and
the experiment settings; `analytics/` validates each section and fills in its documented defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from orchestration.lib.settings import Settings

SECTIONS = ("anomalies", "experiments")


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the file and the key."""


def measure_config(settings: Settings) -> dict[str, Mapping[str, Any]]:
    """The sections of the configuration file; an absent file means every default."""
    path = settings.config_file
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping with sections {', '.join(SECTIONS)}")
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    return {name: data.get(name) or {} for name in SECTIONS}
