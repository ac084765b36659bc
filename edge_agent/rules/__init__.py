"""Rules: pure logic turning readings and poll outcomes into ``EventDraft``s.

``config`` holds the settings (``RulesConfig`` top level, ``DeviceRulesConfig`` per device);
``engine`` the ``RulesEngine`` and ``TelemetryFilter``. No I/O here: time comes from an
injected clock or the readings' own timestamps.
"""

from edge_agent.rules.config import DeviceRulesConfig, PointRulesConfig, RulesConfig

__all__ = ["DeviceRulesConfig", "PointRulesConfig", "RulesConfig"]
