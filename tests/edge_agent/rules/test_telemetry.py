"""Report-by-exception telemetry: deadband per point, heartbeat, quality changes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.model import Quality
from edge_agent.rules import DeviceInfo, DeviceRulesConfig, PointRulesConfig, RulesConfig
from edge_agent.rules.config import TelemetryConfig
from edge_agent.rules.telemetry import TelemetryFilter, plain
from tests.edge_agent.rules.helpers import PROFILES, reading


def make(points=None, **telemetry):
    device = DeviceInfo(
        "lv-01",
        PROFILES.get("level-radar-lr10"),
        rules=DeviceRulesConfig(points=points or {}),
    )
    return TelemetryFilter(RulesConfig(telemetry=TelemetryConfig(**telemetry)), [device])


def sent(tf, point, values, step=60.0, quality=Quality.GOOD):
    return [
        tf.should_send(reading("lv-01", point, v, i * step, quality)) for i, v in enumerate(values)
    ]


class TestDeadband:
    """Moves larger than the deadband, measured from the last value sent."""

    def test_percent_of_range_default(self):
        """level range 0..10000 mm, 0.5 %: 50 mm deadband."""
        tf = make()
        assert sent(tf, "level", [1000, 1040, 1049, 1051, 1060, 1101]) == [
            True,
            False,
            False,
            True,
            False,
            False,
        ]

    def test_slow_drift_adds_up(self):
        """Ten 10 mm steps are sent once the total passes the deadband."""
        tf = make()
        assert sent(tf, "level", [1000 + 10 * i for i in range(8)]) == [True] + [False] * 5 + [
            True,
            False,
        ]

    @pytest.mark.parametrize(
        ("points", "telemetry", "values", "expected"),
        [
            ({"level": PointRulesConfig(deadband=5)}, {}, [100, 104, 106], [True, False, True]),
            ({}, {"deadband_by_role": {"level_mm": 20}}, [100, 119, 121], [True, False, True]),
            ({}, {"deadband_pct_of_range": 0}, [100, 100, 100.5], [True, False, True]),
        ],
    )
    def test_overrides(self, points, telemetry, values, expected):
        """Point override, then role, then percent of range."""
        assert sent(make(points, **telemetry), "level", values) == expected

    def test_profile_deadband(self):
        """A deadband from the profile (or the device's overrides) beats the role default."""
        device = DeviceInfo(
            "lv-01", PROFILES.get("level-radar-lr10").with_overrides({"level": {"deadband": 2}})
        )
        tf = TelemetryFilter(RulesConfig(), [device])
        assert sent(tf, "level", [100, 101, 103]) == [True, False, True]

    def test_point_without_range_sends_changes(self):
        """The status bitfield has no range: every change goes, repeats do not."""
        assert sent(make(), "status", [0, 0, 1, 1, 0]) == [True, False, True, False, True]


class TestHeartbeatAndQuality:
    def test_heartbeat(self):
        """A still value is re-sent every heartbeat_s."""
        tf = make(heartbeat_s=300)
        assert sent(tf, "level", [1000] * 11) == [True, False, False, False, False, True] + [
            False
        ] * 4 + [True]

    def test_point_heartbeat(self):
        tf = make({"level": PointRulesConfig(heartbeat_s=120)})
        assert sent(tf, "level", [1000] * 5) == [True, False, True, False, True]

    def test_quality_change_is_sent(self):
        """Going stale and coming back are both news."""
        tf = make()
        assert tf.should_send(reading("lv-01", "level", 1000, 0))
        assert tf.should_send(reading("lv-01", "level", None, 60, Quality.STALE))
        assert not tf.should_send(reading("lv-01", "level", None, 120, Quality.STALE))
        assert tf.should_send(reading("lv-01", "level", 1000, 180))

    def test_disabled_point(self):
        tf = make({"level": PointRulesConfig(enabled=False)})
        assert sent(tf, "level", [1, 2000]) == [False, False]

    def test_unknown_point_sends_changes(self):
        """A point the filter was not told about is not swallowed."""
        tf = make()
        assert [tf.should_send(reading("zz", "p", v, 0)) for v in (1, 1, 2)] == [True, False, True]

    def test_filter(self):
        tf = make()
        rs = [reading("lv-01", "level", v, i) for i, v in enumerate([1000, 1001, 2000])]
        assert [r.value for r in rs if tf.should_send(r)] == [1000, 2000]


class TestProperties:
    """Over random value streams: nothing that moved past the deadband is swallowed, and no
    point stays silent longer than its heartbeat while readings keep coming."""

    @given(
        st.lists(
            st.tuples(st.floats(0, 10000, allow_nan=False), st.floats(1, 400)),
            min_size=1,
            max_size=80,
        )
    )
    def test_invariants(self, stream):
        tf = make(heartbeat_s=900)  # level: 50 mm deadband (0.5 % of 0..10000)
        ts, last_value, last_ts = 0.0, None, None
        for value, step in stream:
            ts += step
            sent_now = tf.should_send(reading("lv-01", "level", value, ts))
            if last_value is None or abs(value - last_value) > 50 or ts - last_ts >= 900:
                assert sent_now
            else:
                assert not sent_now
            if sent_now:
                last_value, last_ts = value, ts


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.5, 1.5), (math.nan, None), (math.inf, None), (True, True), ("ok", "ok"), (3, 3)],
)
def test_plain_telemetry_values(value, expected):
    """JSON has no NaN or infinity: they go upstream as null."""
    assert plain(value) == expected
