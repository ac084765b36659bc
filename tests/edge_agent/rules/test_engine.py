"""The engine end to end on the shipped profiles: faults, availability, covers, cross-device
rules, config errors, and a no-storm property over random inputs."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.bus import DeviceCoordinator, DeviceSpec, PollPolicy
from drivers.model import AvailabilityChange, PollResult, Quality
from edge_agent.errors import UsageError
from edge_agent.events import Severity
from edge_agent.rules import (
    DeviceInfo,
    DeviceRulesConfig,
    PointRulesConfig,
    RulesConfig,
    RulesConfigError,
    RulesEngine,
)
from edge_agent.rules.config import BlockageConfig
from tests.edge_agent.rules.helpers import PROFILES, kinds, reading


def device(name, profile, **rules):
    return DeviceInfo(name, PROFILES.get(profile), rules=DeviceRulesConfig(**rules))


def site(**overrides):
    devices = [
        device("lv-01", "level-radar-lr10", level_high_mm=1000, level_high_high_mm=1500),
        device("rg-01", "rain-gauge-tb2"),
        device("gd-01", "gas-detector-mg4"),
        device("ps-01", "pump-controller-ps2"),
        device("mc-01", "cover-sensor-mc1"),
        device("pt-01", "pressure-pt5", pressure_low_bar=2.0),
    ]
    return RulesEngine(RulesConfig(**overrides), devices)


class _NoRequests:
    requests = ()

    def decode(self, device, results, ts):
        return []


class Polls:
    """Poll outcomes through the bus's own availability (a ``DeviceCoordinator`` per device,
    offline after 3 failures in a row) into the engine as ``PollResult``s."""

    def __init__(self, engine):
        self.engine = engine
        self.coordinators: dict[str, DeviceCoordinator] = {}

    def __call__(self, dev, ok, ts, reason="timeout"):
        policy = PollPolicy(offline_after=3, jitter_s=0.0)
        spec = DeviceSpec(dev, 1, _NoRequests(), 60.0, policy)
        c = self.coordinators.setdefault(dev, DeviceCoordinator(spec, 0.0))
        change = c.poll_ok(ts, ts) if ok else c.poll_failed(reason, ts, ts)
        error = None if ok else reason
        return self.engine.on_poll(PollResult("bus", dev, ts, (), error, change))


class TestAvailability:
    """Offline after N consecutive failures, online once on recovery (the bus counts; the
    rules turn its transitions into events)."""

    def test_offline_online(self):
        poll = Polls(site())
        out = []
        for ts in range(5):
            out += poll("lv-01", False, float(ts))
        assert [(e.kind, e.ts, e.data["failures"]) for e in out] == [("device.offline", 2.0, 3)]
        assert poll.coordinators["lv-01"].state == "offline"
        (online,) = poll("lv-01", True, 10.0)
        assert (online.kind, online.data["offline_s"]) == ("device.online", 8.0)
        assert poll("lv-01", True, 11.0) == []

    def test_intermittent_failures_stay_online(self):
        """Failures that never reach N in a row raise nothing."""
        poll = Polls(site())
        for ts in range(10):
            assert poll("lv-01", False, ts) == []
            assert poll("lv-01", False, ts) == []
            assert poll("lv-01", True, ts) == []

    def test_event_carries_the_polls_time_and_reason(self):
        poll = Polls(site())
        for _ in range(2):
            poll("gd-01", False, 1000.0, "crc error")
        (event,) = poll("gd-01", False, 1234.0, "crc error")
        assert event.ts == 1234.0
        assert event.data["reason"] == "crc error"

    def test_unknown_device(self):
        change = AvailabilityChange(False, reason="x", failures=3)
        assert site().on_poll(PollResult("bus", "nope", 0.0, error="x", change=change)) == []


class TestFaults:
    """Fault bits, pump faults and bad quality raise device.fault once."""

    def test_fault_bits_and_quality(self):
        engine = site()
        (event,) = engine.on_reading(reading("gd-01", "faults", 0b1, 0))
        assert (event.kind, event.data["faults"], event.sev) == (
            "device.fault",
            ["faults.lel_sensor_fault"],
            Severity.WARNING,
        )
        # a second fault while active: no new event, but it is tracked
        assert engine.on_reading(reading("gd-01", "lel", 0.0, 1, Quality.FAULT)) == []
        assert engine.active_faults("gd-01") == ["faults.lel_sensor_fault", "lel:fault"]
        assert engine.on_reading(reading("gd-01", "faults", 0, 2)) == []
        # fault-free from ts 3; the clear waits for clear_after_s (120 s)
        assert engine.on_reading(reading("gd-01", "lel", 0.0, 3)) == []
        assert engine.on_reading(reading("gd-01", "lel", 0.0, 122)) == []
        assert kinds(engine.on_reading(reading("gd-01", "lel", 0.0, 123))) == [
            "device.fault.cleared"
        ]

    def test_flapping_fault_bit_raises_once(self):
        """A bit toggling every poll is one fault, not an event per poll."""
        engine = site()
        out = []
        for i in range(20):
            out += kinds(engine.on_reading(reading("gd-01", "faults", i % 2, 60.0 * i)))
        assert out == ["device.fault"]
        for i in range(20, 24):
            out += kinds(engine.on_reading(reading("gd-01", "faults", 0, 60.0 * i)))
        assert out == ["device.fault", "device.fault.cleared"]

    def test_status_bits_are_not_faults(self):
        """calibration_due is a status bit: no fault."""
        engine = site()
        assert engine.on_reading(reading("gd-01", "faults", 1 << 9, 0)) == []

    def test_out_of_range_is_a_fault(self):
        engine = site()
        events = engine.on_reading(reading("lv-01", "level", 99999.0, 0, Quality.OUT_OF_RANGE))
        assert kinds(events) == ["device.fault"]
        assert events[0].data["faults"] == ["level:out_of_range"]

    def test_stale_changes_nothing(self):
        engine = site()
        engine.on_reading(reading("gd-01", "faults", 1, 0))
        assert engine.on_reading(reading("gd-01", "faults", None, 1, Quality.STALE)) == []
        assert engine.active_faults("gd-01") == ["faults.lel_sensor_fault"]


class TestCover:
    """Open switch or tilt opens at once; both at rest for closed_after_s (60 s) closes.
    Readings 30 s apart."""

    @pytest.mark.parametrize(
        ("inputs", "expected"),
        [
            (
                [
                    ("cover_open", True),
                    ("cover_open", False),
                    ("cover_open", False),
                    ("cover_open", False),
                ],
                [(0, "cover.opened"), (3, "cover.closed")],
            ),
            # tilt 9 is inside the 2 deg hysteresis band: still open; 7 starts the close
            (
                [
                    ("tilt", 2.0),
                    ("tilt", 15.0),
                    ("tilt", 9.0),
                    ("tilt", 7.0),
                    ("tilt", 7.0),
                    ("tilt", 7.0),
                ],
                [(1, "cover.opened"), (5, "cover.closed")],
            ),
            # switch and tilt: closed only when both are at rest
            (
                [
                    ("tilt", 15.0),
                    ("cover_open", True),
                    ("tilt", 0.0),
                    ("tilt", 0.0),
                    ("tilt", 0.0),
                    ("cover_open", False),
                    ("tilt", 0.0),
                    ("tilt", 0.0),
                ],
                [(0, "cover.opened"), (7, "cover.closed")],
            ),
            # a chattering switch: one opened, closed only after it settles
            (
                [("cover_open", v) for v in (True, False, True, False, True, False)]
                + [("cover_open", False)] * 2,
                [(0, "cover.opened"), (7, "cover.closed")],
            ),
            ([("cover_open", False), ("tilt", 3.0)], []),
        ],
    )
    def test_sequences(self, inputs, expected):
        engine = site()
        out = []
        for i, (point, value) in enumerate(inputs):
            out += [
                (i, k) for k in kinds(engine.on_reading(reading("mc-01", point, value, 30.0 * i)))
            ]
        assert out == expected


def storm(engine, minutes, level, rain=0.0, start=0):
    """Feed one level and one rain reading per minute; return (minute, kind) of events."""
    out = []
    for m in range(start, start + minutes):
        ts = 60.0 * m
        for r in (reading("rg-01", "rain_rate", rain, ts), reading("lv-01", "level", level(m), ts)):
            out += [(m, e.kind) for e in engine.on_reading(r) if e.kind.startswith("sewer")]
    return out


class TestBlockage:
    """Sewer level rising while the rain gauge says dry."""

    def test_dry_weather_rise(self):
        """Dry for an hour, then a 5 mm/min rise: suspected; the rise stops: cleared."""
        engine = site()
        events = storm(engine, 200, lambda m: 300 + 5 * max(0, min(m, 120) - 80))
        assert [k for _, k in events] == [
            "sewer.blockage_suspected",
            "sewer.blockage_suspected.cleared",
        ]
        assert 80 < events[0][0] < 100

    def test_rain_explains_the_rise(self):
        engine = site()
        assert storm(engine, 200, lambda m: 300 + 5 * max(0, m - 80), rain=12.0) == []

    def test_needs_dry_for_long_enough(self):
        """Rain stopped ten minutes ago: a rise is still run-off."""
        engine = site()
        storm(engine, 60, lambda m: 300, rain=8.0)
        assert storm(engine, 30, lambda m: 300 + 5 * m, start=60) == []

    def test_without_a_rain_gauge_the_rule_is_off(self):
        engine = RulesEngine(RulesConfig(), [device("lv-01", "level-radar-lr10")])
        out = []
        for m in range(200):
            out += kinds(engine.on_reading(reading("lv-01", "level", 300 + 5 * m, 60.0 * m)))
        assert "sewer.blockage_suspected" not in out

    def test_disabled(self):
        engine = site(blockage=BlockageConfig(enabled=False))
        assert storm(engine, 200, lambda m: 300 + 5 * max(0, m - 80)) == []


class TestOverflow:
    """Pump fault, high-high float, or all pumps running with the well still rising."""

    def run(self, engine, steps):
        out = []
        for i, (point, value) in enumerate(steps):
            out += [
                (e.kind, e.data.get("reasons"))
                for e in engine.on_reading(reading("ps-01", point, value, 60.0 * i))
                if e.kind.startswith("overflow")
            ]
        return out

    def test_pump_fault(self):
        engine = site()
        steps = [("pump1_fault", False), ("pump1_fault", True)] + [("pump1_fault", False)] * 6
        events = self.run(engine, steps)
        assert events == [
            ("overflow.risk", ["pump1_fault faulted"]),
            ("overflow.risk.cleared", []),
        ]

    def test_all_running_and_rising(self):
        """Two of three pumps running: not flat out; the third starts and the well rises."""
        engine = site()
        steps = [("pump1_running", True), ("pump2_running", True), ("pump3_running", False)]
        steps += [("wet_well_level", 1000 + 20 * i) for i in range(6)]
        steps += [("pump3_running", True)] + [("wet_well_level", 1120 + 20 * i) for i in range(6)]
        steps += [("wet_well_level", 1200)] * 10
        events = self.run(engine, steps)
        assert [k for k, _ in events] == ["overflow.risk", "overflow.risk.cleared"]
        assert events[0][1] == ["all pumps running and the wet well still rising"]

    def test_float_switch(self):
        engine = site()
        assert self.run(engine, [("float_high_high", True)]) == [
            ("overflow.risk", ["high-high float"])
        ]


class TestConfigErrors:
    """Settings that contradict the profiles fail at start, naming the device."""

    @pytest.mark.parametrize(
        ("rules", "fragment"),
        [
            (
                {"points": {"nope": PointRulesConfig()}},
                "rules.points.nope: profile 'level-radar-lr10' has no point",
            ),
            ({"rain_gauge": "gd-01"}, "rules.rain_gauge 'gd-01' is not a device"),
            ({"wet_well": "rg-01"}, "rules.wet_well 'rg-01' is not a device"),
            (
                {"level_high_mm": 2000, "level_high_high_mm": 1500},
                "high 2000 must be below high_high 1500",
            ),
            (
                {"level_high_mm": 900, "points": {"level": PointRulesConfig(k=4, n=2)}},
                "persistence k=4 of n=2",
            ),
        ],
    )
    def test_errors(self, rules, fragment):
        devices = [
            device("lv-01", "level-radar-lr10", **rules),
            device("rg-01", "rain-gauge-tb2"),
            device("gd-01", "gas-detector-mg4"),
        ]
        with pytest.raises(RulesConfigError, match=fragment) as info:
            RulesEngine(RulesConfig(), devices)
        assert isinstance(info.value, UsageError)
        assert "lv-01" in str(info.value)

    def test_duplicate_devices(self):
        with pytest.raises(RulesConfigError, match="unique"):
            RulesEngine(RulesConfig(), [device("a", "pressure-pt5"), device("a", "pressure-pt5")])


class TestDisabled:
    def test_device_rules_off(self):
        engine = RulesEngine(RulesConfig(), [device("gd-01", "gas-detector-mg4", enabled=False)])
        assert engine.on_reading(reading("gd-01", "lel", 80.0, 0)) == []

    def test_point_rules_off(self):
        points = {"lel": PointRulesConfig(enabled=False)}
        engine = RulesEngine(RulesConfig(), [device("gd-01", "gas-detector-mg4", points=points)])
        assert engine.on_reading(reading("gd-01", "lel", 80.0, 0)) == []
        assert kinds(engine.on_reading(reading("gd-01", "h2s", 80.0, 0))) == ["gas.alarm2"]


# Pairs of (raise kinds, clear kind) per alarm family, for the property below.
RAISES = {
    "gas.alarm1",
    "gas.alarm2",
    "level.high",
    "level.high_high",
    "pressure.low",
    "pressure.high",
    "cover.opened",
    "device.fault",
    "level.rising",
    "pressure.drop",
    "sewer.blockage_suspected",
    "overflow.risk",
    "device.offline",
}
CLEARS = {
    "gas.normal": "gas",
    "level.normal": "level",
    "pressure.normal": "pressure",
    "cover.closed": "cover",
    "device.online": "device.offline",
}

POINTS = [
    ("gd-01", "lel", st.floats(0, 100)),
    ("gd-01", "o2", st.floats(15, 26)),
    ("gd-01", "faults", st.sampled_from([0, 1, 2, 1 << 9])),
    ("lv-01", "level", st.floats(0, 3000)),
    ("pt-01", "pressure", st.floats(0, 8)),
    ("mc-01", "tilt", st.floats(0, 30)),
    ("mc-01", "cover_open", st.booleans()),
    ("ps-01", "pump1_fault", st.booleans()),
    ("rg-01", "rain_rate", st.sampled_from([0.0, 0.0, 5.0])),
]


@st.composite
def inputs(draw):
    steps = []
    for _ in range(draw(st.integers(1, 120))):
        i = draw(st.integers(0, len(POINTS)))
        if i == len(POINTS):
            steps.append(("poll", draw(st.sampled_from(["lv-01", "gd-01"])), draw(st.booleans())))
        else:
            dev, point, values = POINTS[i]
            quality = draw(st.sampled_from([Quality.GOOD] * 4 + [Quality.FAULT, Quality.STALE]))
            steps.append((dev, point, draw(values), quality))
    return steps


def family(kind):
    """Which alarm a kind raises or clears: events of one family must alternate."""
    if kind.endswith(".cleared"):
        return kind.removesuffix(".cleared"), "clear"
    if kind in CLEARS:
        return CLEARS[kind], "clear"
    if kind.startswith(("gas.", "level.high", "pressure.low", "pressure.high", "cover.")):
        return kind.split(".")[0], "raise"
    assert kind in RAISES, kind
    return kind, "raise"


History = dict[tuple[str, str, str | None], list[tuple[str, str]]]


def record(history: History, events) -> None:
    """Each event under its (device, family, point), as (kind, raise or clear)."""
    for e in events:
        fam, what = family(e.kind)
        history.setdefault((e.dev, fam, e.data.get("point")), []).append((e.kind, what))


def assert_no_storm(history: History) -> None:
    for key, seq in history.items():
        # a family's events never repeat the same kind back to back ...
        assert all(a[0] != b[0] for a, b in itertools.pairwise(seq)), (key, seq)
        # ... its first event is a raise, and two clears never follow each other
        assert seq[0][1] == "raise", (key, seq)
        assert all(not (a[1] == b[1] == "clear") for a, b in itertools.pairwise(seq)), (key, seq)
        # single-level alarms strictly alternate raise / clear
        if key[1] not in ("gas", "level", "pressure"):
            assert all(a[1] != b[1] for a, b in itertools.pairwise(seq)), (key, seq)


class TestNoStorms:
    """Property: random readings never raise one alarm twice without a clear between."""

    @given(inputs())
    def test_alternation(self, steps):
        engine = site()
        poll = Polls(engine)
        history: History = {}
        for ts, step in enumerate(steps):
            if step[0] == "poll":
                _, dev, ok = step
                events = poll(dev, ok, float(ts))
            else:
                dev, point, value, quality = step
                events = engine.on_reading(reading(dev, point, value, float(ts) * 30, quality))
            record(history, events)
        assert_no_storm(history)
