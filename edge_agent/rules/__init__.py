"""Rules: pure logic turning readings and poll outcomes into ``EventDraft``s.

``config`` holds the settings (``RulesConfig`` top level, ``DeviceRulesConfig`` per device);
``engine`` the ``RulesEngine`` that wires small rules (``point_rules``, ``device_rules``,
``site_rules``) to devices; ``telemetry`` the report-by-exception ``TelemetryFilter``;
``alarm`` the hysteresis / persistence / rate building blocks. No I/O here: time comes from
the readings' timestamps or an injected clock. docs/rules.md describes every rule. It may
import ``drivers`` (readings, profile points), ``edge_agent.events`` and ``yamlread`` (field
metadata of its config sections).
"""

from edge_agent.rules.config import DeviceRulesConfig, PointRulesConfig, RulesConfig
from edge_agent.rules.engine import DeviceInfo, RulesConfigError, RulesEngine
from edge_agent.rules.telemetry import TelemetryFilter

__all__ = [
    "DeviceInfo",
    "DeviceRulesConfig",
    "PointRulesConfig",
    "RulesConfig",
    "RulesConfigError",
    "RulesEngine",
    "TelemetryFilter",
]
