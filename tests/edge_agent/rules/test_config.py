"""Rule settings: defaults, and contradictions reported by the config loader with positions."""

from __future__ import annotations

import pytest

from edge_agent.config.loader import ConfigError, parse_config
from edge_agent.rules.config import (
    DeviceRulesConfig,
    GasConfig,
    LevelConfig,
    PointRulesConfig,
    PressureConfig,
    RulesConfig,
)

BASE = """\
version: 1
gateway: {site: riverside, id: gw-02}
buses:
  - {name: water, type: tcp, host: 127.0.0.1}
devices:
  - name: lv-01
    bus: water
    unit_id: 1
    profile: level-radar-lr10
    rules: DEVICE_RULES
rules: RULES
"""


def config(device_rules="{}", rules="{}"):
    text = BASE.replace("DEVICE_RULES", device_rules).replace("RULES", rules)
    return parse_config(text, file="gw.yaml")


class TestDefaults:
    def test_empty_sections_are_valid(self):
        """``rules: {}`` everywhere gives the documented defaults."""
        cfg = config()
        assert cfg.rules == RulesConfig()
        assert cfg.devices[0].rules == DeviceRulesConfig()
        assert (cfg.rules.gas.lel_alarm1, cfg.rules.gas.lel_alarm2) == (25.0, 50.0)
        assert (cfg.rules.gas.o2_low_pct, cfg.rules.gas.o2_high_pct) == (19.5, 23.5)

    def test_values_reach_the_dataclasses(self):
        cfg = config(
            "{level_high_mm: 1200, points: {level: {high_high: 1800, k: 2, n: 3}}}",
            "{gas: {h2s_limit_ppm: 7}, telemetry: {deadband_by_role: {level_mm: 5}}}",
        )
        assert cfg.devices[0].rules.level_high_mm == 1200
        assert cfg.devices[0].rules.points["level"] == PointRulesConfig(high_high=1800, k=2, n=3)
        assert cfg.rules.gas.h2s_limit_ppm == 7
        assert cfg.rules.telemetry.deadband_by_role == {"level_mm": 5}


class TestChecks:
    """Each section says which of its own settings contradict."""

    @pytest.mark.parametrize(
        ("section", "expected"),
        [
            (
                LevelConfig(high_mm=900, high_high_mm=800),
                [("high_high_mm", "800 must be above high_mm 900")],
            ),
            (LevelConfig(k=6, n=5), [("k", "6 samples cannot be found in a window of n=5")]),
            (GasConfig(lel_alarm1=60), [("lel_alarm2", "50 must be above lel_alarm1 60")]),
            (GasConfig(o2_low_pct=24), [("o2_high_pct", "23.5 must be above o2_low_pct 24")]),
            (PressureConfig(low_bar=5, high_bar=4), [("high_bar", "4 must be above low_bar 5")]),
            (PointRulesConfig(low=3, high_high=2), [("high_high", "2 must be above low 3")]),
            (
                DeviceRulesConfig(pressure_low_bar=3, pressure_high_bar=3),
                [("pressure_high_bar", "3 must be above pressure_low_bar 3")],
            ),
            (PointRulesConfig(low=1, high=2, k=2, n=3), []),
        ],
    )
    def test_section_checks(self, section, expected):
        assert list(section.config_checks()) == expected

    @pytest.mark.parametrize(
        ("device_rules", "rules", "line"),
        [
            (
                "{level_high_mm: 2000, level_high_high_mm: 1500}",
                "{}",
                "gw.yaml:10:54: devices[0].rules.level_high_high_mm: 1500 must be above "
                "level_high_mm 2000",
            ),
            (
                "{points: {level: {k: 4, n: 2}}}",
                "{}",
                "gw.yaml:10:33: devices[0].rules.points.level.k: 4 samples cannot be found in a "
                "window of n=2",
            ),
            (
                "{}",
                "{gas: {lel_alarm1: 70}}",
                "gw.yaml:11:14: rules.gas.lel_alarm2: 50 must be above lel_alarm1 70",
            ),
            ("{}", "{level: {k: 0}}", "gw.yaml:11:20: rules.level.k: 0 is less than the minimum 1"),
        ],
    )
    def test_loader_reports_positions(self, device_rules, rules, line):
        """The loader turns a contradiction into a file:line:col problem at the right key."""
        with pytest.raises(ConfigError) as info:
            config(device_rules, rules)
        assert str(info.value) == line
