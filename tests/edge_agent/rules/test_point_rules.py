"""Point rules: role defaults, overrides, threshold states, rates of change."""

from __future__ import annotations

import pytest

from drivers.model import Quality
from edge_agent.rules.config import (
    DeviceRulesConfig,
    GasConfig,
    LevelConfig,
    PointRulesConfig,
    RulesConfig,
)
from edge_agent.rules.point_rules import (
    RateRule,
    ThresholdRule,
    rate_spec,
    threshold_spec,
)
from tests.edge_agent.rules.helpers import PROFILES, feed, reading

GAS = PROFILES.get("gas-detector-mg4")
LEVEL = PROFILES.get("level-radar-lr10")
PRESSURE = PROFILES.get("pressure-pt5")


def levels(spec):
    return {lv.name: (lv.value, round(lv.hysteresis, 9)) for lv in spec.levels}


class TestSpecs:
    """Three layers: role default < device rules < point override."""

    @pytest.mark.parametrize(
        ("point", "expected"),
        [
            ("lel", {"high": (25.0, 2.5), "high_high": (50.0, 5.0)}),
            ("h2s", {"high": (10.0, 1.0), "high_high": (20.0, 2.0)}),
            ("co", {"high": (25.0, 2.5), "high_high": (50.0, 5.0)}),
            ("o2", {"low": (19.5, 0.5), "high": (23.5, 0.5)}),
        ],
    )
    def test_gas_defaults_follow_gb_t_50493(self, point, expected):
        """%LEL 25/50, O2 19.5/23.5, toxic gases at 100 %/200 % of the limit."""
        spec = threshold_spec(GAS.point(point), DeviceRulesConfig(), RulesConfig())
        assert spec.family == "gas"
        assert levels(spec) == expected

    def test_configured_toxic_limits(self):
        """H2S alarms move with the configured occupational limit."""
        rules = RulesConfig(gas=GasConfig(h2s_limit_ppm=7.0))
        spec = threshold_spec(GAS.point("h2s"), DeviceRulesConfig(), rules)
        assert levels(spec)["high_high"][0] == 14.0

    def test_level_has_no_default_thresholds(self):
        """A level's thresholds depend on the manhole: none until configured."""
        assert threshold_spec(LEVEL.point("level"), DeviceRulesConfig(), RulesConfig()) is None

    def test_layers(self):
        """Global level config, then device, then point override win in that order."""
        rules = RulesConfig(level=LevelConfig(high_mm=900, high_high_mm=1900))
        device = DeviceRulesConfig(level_high_mm=1000)
        point = LEVEL.point("level")
        assert levels(threshold_spec(point, device, rules)) == {
            "high": (1000, 50.0),
            "high_high": (1900, 50.0),
        }
        device = DeviceRulesConfig(
            level_high_mm=1000, points={"level": PointRulesConfig(high=1200, hysteresis=10, k=1)}
        )
        spec = threshold_spec(point, device, rules)
        assert levels(spec) == {"high": (1200, 10.0), "high_high": (1900, 10.0)}
        assert (spec.k, spec.n) == (1, 5)

    def test_any_point_can_get_thresholds(self):
        """A point without a rule role gets generic thresholds from its overrides."""
        device = DeviceRulesConfig(points={"battery": PointRulesConfig(low=20)})
        spec = threshold_spec(LEVEL.point("battery"), device, RulesConfig())
        assert spec.family == "threshold"
        assert levels(spec) == {"low": (20, 0.0)}
        assert (
            threshold_spec(LEVEL.point("temperature"), DeviceRulesConfig(), RulesConfig()) is None
        )

    def test_rates(self):
        """Levels rise, pressures drop; null switches the rate alarm off."""
        level = rate_spec(LEVEL.point("level"), DeviceRulesConfig(), RulesConfig())
        assert (level.kind, level.direction, level.per_min) == ("level.rising", "up", 20.0)
        drop = rate_spec(PRESSURE.point("pressure"), DeviceRulesConfig(), RulesConfig())
        assert (drop.kind, drop.direction) == ("pressure.drop", "down")
        off = RulesConfig(level=LevelConfig(rise_mm_per_min=None))
        assert rate_spec(LEVEL.point("level"), DeviceRulesConfig(), off) is None


def threshold_rule(profile, point, device=DeviceRulesConfig(), rules=RulesConfig()):
    p = profile.point(point)
    return ThresholdRule("dev", p, threshold_spec(p, device, rules))


class TestThresholdRule:
    """State changes only, with escalation and de-escalation."""

    @pytest.mark.parametrize(
        ("point", "values", "expected"),
        [
            # LEL: alarm1, alarm2, back to alarm1, then normal below 25 - 2.5
            (
                "lel",
                [0, 30, 55, 40, 23, 22],
                ["gas.alarm1", "gas.alarm2", "gas.alarm1", "gas.normal"],
            ),
            # LEL chattering around 25 %: one alarm1, no storm
            ("lel", [26, 24, 26, 24, 25, 23], ["gas.alarm1"]),
            # O2 deficiency; 19.9 is still inside the 0.5 %VOL band; fresh air (20.9) clears
            ("o2", [20.9, 19.0, 19.6, 19.9, 20.9], ["gas.alarm1", "gas.normal"]),
            # O2 enrichment
            ("o2", [20.9, 24.0, 23.2, 22.9], ["gas.alarm1", "gas.normal"]),
            # CO straight to alarm2 (2 x 25 ppm)
            ("co", [0, 60, 0], ["gas.alarm2", "gas.normal"]),
        ],
    )
    def test_gas(self, point, values, expected):
        rule = threshold_rule(GAS, point)
        events = feed(rule, "dev", point, values)
        assert [k for _, k in events] == expected

    def test_level_needs_three_of_five(self):
        """Level default persistence: single spikes over high are ignored."""
        device = DeviceRulesConfig(level_high_mm=1000, level_high_high_mm=1500)
        rule = threshold_rule(LEVEL, "level", device)
        values = [
            900,
            1100,
            900,
            1100,
            900,
            900,
            900,
            1100,
            1100,
            1100,
            1600,
            1600,
            1600,
            800,
            800,
            800,
        ]
        events = feed(rule, "dev", "level", values)
        assert events == [
            (540.0, "level.high"),
            (720.0, "level.high_high"),
            (900.0, "level.normal"),
        ]

    def test_event_data(self):
        """Events name the point, value, unit, threshold and the state they left."""
        rule = threshold_rule(GAS, "lel")
        (event,) = rule(reading("dev", "lel", 30.0, 5.0))
        assert event.data == {
            "point": "lel",
            "value": 30.0,
            "unit": "%LEL",
            "threshold": 25.0,
            "previous": None,
        }
        assert event.ts == 5.0

    @pytest.mark.parametrize("quality", [Quality.FAULT, Quality.OUT_OF_RANGE, Quality.STALE])
    def test_bad_quality_is_not_gas(self, quality):
        """A faulted sensor's value neither raises nor clears an alarm."""
        rule = threshold_rule(GAS, "lel")
        assert rule(reading("dev", "lel", 99.0, 0, quality)) == []
        rule(reading("dev", "lel", 30.0, 1))
        assert rule(reading("dev", "lel", 0.0, 2, quality)) == []
        assert rule.state == "high"

    def test_pressure_band(self):
        """Low and high with k=2 of 3 and 0.1 bar hysteresis."""
        device = DeviceRulesConfig(pressure_low_bar=2.0, pressure_high_bar=6.0)
        rule = threshold_rule(PRESSURE, "pressure", device)
        values = [3.0, 1.9, 1.9, 2.05, 2.2, 2.3, 6.5, 6.5, 3.0, 3.0]
        events = feed(rule, "dev", "pressure", values)
        assert [k for _, k in events] == [
            "pressure.low",
            "pressure.normal",
            "pressure.high",
            "pressure.normal",
        ]


class TestRateRule:
    """Rate alarms with half-rate hysteresis."""

    def test_level_rising(self):
        """30 mm/min for a while raises; a flat level clears."""
        p = LEVEL.point("level")
        rule = RateRule("dev", p, rate_spec(p, DeviceRulesConfig(), RulesConfig()))
        values = [500 + 30 * i for i in range(8)] + [710] * 8
        events = feed(rule, "dev", "level", values)
        assert [k for _, k in events] == ["level.rising", "level.rising.cleared"]

    def test_slow_rise_is_quiet(self):
        p = LEVEL.point("level")
        rule = RateRule("dev", p, rate_spec(p, DeviceRulesConfig(), RulesConfig()))
        assert feed(rule, "dev", "level", [500 + 5 * i for i in range(20)]) == []

    def test_pressure_drop(self):
        """A burst main: 1 bar/min down raises pressure.drop with the measured rate."""
        p = PRESSURE.point("pressure")
        rule = RateRule("dev", p, rate_spec(p, DeviceRulesConfig(), RulesConfig()))
        values = [4.0, 4.0, 4.0, 3.0, 2.0, 1.0, 1.0]
        out = []
        for i, v in enumerate(values):
            out.extend(rule(reading("dev", "pressure", v, 60.0 * i)))
        assert [e.kind for e in out] == ["pressure.drop"]
        assert out[0].data["rate_per_min"] <= -0.5
