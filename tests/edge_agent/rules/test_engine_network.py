"""The engine with a ``SewerNetwork``: the network is checked against the devices, its rules
are wired to the right points, the single-gauge rules leave a wet well and a road sensor
alone, a gas site's kind sets its detectors' alarms, every event fits the payload schema,
and random inputs never raise an alarm twice without a clear."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.model import Quality
from edge_agent import payload
from edge_agent.events import Event
from edge_agent.rules import (
    DeviceInfo,
    DeviceRulesConfig,
    RulesConfig,
    RulesConfigError,
    RulesEngine,
)
from edge_agent.rules.network import (
    GasSite,
    Manhole,
    PondingSpot,
    SewerNetwork,
    SewerReach,
    WetWell,
)
from tests.edge_agent.rules.helpers import PROFILES, kinds, reading

PROFILE_OF = {
    "lv-01": "level-radar-lr10",  # PS-01's wet well
    "lv-02": "level-radar-lr10",  # MH-17
    "lv-03": "level-radar-lr10",  # MH-09, upstream
    "rp-01": "level-radar-lr10",  # road ponding sensor at the underpass
    "rg-01": "rain-gauge-tb2",
    "ps-01": "pump-controller-ps2",
    "gd-01": "gas-detector-mg4",
    "pt-01": "pressure-pt5",
}
NETWORK = SewerNetwork(
    reaches=(
        SewerReach("MH09-MH17", "lv-03", "lv-02", station="ps-01"),
        SewerReach("MH17-PS01", "lv-02", None, station="ps-01"),
    ),
    manholes=(Manhole("lv-02", 3200.0, crown_mm=600.0), Manhole("lv-03", 2600.0)),
    wet_wells=(WetWell("ps-01", "lv-01", overflow_mm=4000.0, assist_mm=2200.0),),
    ponding=(PondingSpot("rp-01"),),
    gas_sites=(GasSite("GV-03", "utility_tunnel", ("gd-01",), pressure=("pt-01",)),),
)


def engine(network=NETWORK, rules=None, **device_rules):
    devices = [
        DeviceInfo(name, PROFILES.get(profile), rules=device_rules.get(name, DeviceRulesConfig()))
        for name, profile in PROFILE_OF.items()
    ]
    return RulesEngine(rules or RulesConfig(), devices, network=network)


def feed(eng, minutes, values, start=0):
    """``values(m)`` -> {(device, point): value}; one reading each per minute."""
    out = []
    for m in range(start, start + minutes):
        for (dev, point), value in values(m).items():
            out += [(m, e) for e in eng.on_reading(reading(dev, point, value, 60.0 * m))]
    return out


def dry(m):
    return {("rg-01", "rain_rate"): 0.0}


class TestChecks:
    @pytest.mark.parametrize(
        ("network", "fragment"),
        [
            (
                SewerNetwork(reaches=(SewerReach("R", "lv-09"),)),
                "sewer reach 'R' upstream: no device 'lv-09'",
            ),
            (
                SewerNetwork(reaches=(SewerReach("R", "rg-01"),)),
                "device 'rg-01' has no level_mm point",
            ),
            (
                SewerNetwork(reaches=(SewerReach("R", "lv-03", station="lv-02"),)),
                "station: device 'lv-02' has no pump_running",
            ),
            (
                SewerNetwork(reaches=(SewerReach("R", "lv-03", rain_gauges=("gd-01",)),)),
                "rain gauge: device 'gd-01'",
            ),
            (
                SewerNetwork(reaches=(SewerReach("R", "lv-03"), SewerReach("R", "lv-02"))),
                "'R': the id is used twice",
            ),
            (SewerNetwork(reaches=(SewerReach("R", "lv-03", "lv-03"),)), "the same gauge"),
            (
                SewerNetwork(manholes=(Manhole("lv-03", 2000.0, crown_mm=2500.0),)),
                "crown_mm must lie",
            ),
            (
                SewerNetwork(wet_wells=(WetWell("lv-01"),)),
                "wet well of 'lv-01': device 'lv-01' has no pump_running",
            ),
            (SewerNetwork(ponding=(PondingSpot("gd-01"),)), "ponding spot 'gd-01'"),
            (
                SewerNetwork(gas_sites=(GasSite("G", "valve_chamber", ("lv-01",)),)),
                "gas site 'G' detector",
            ),
            (
                SewerNetwork(gas_sites=(GasSite("G", "valve_chamber", ()),)),
                "needs at least one detector",
            ),
        ],
    )
    def test_refused(self, network, fragment):
        with pytest.raises(RulesConfigError, match=fragment):
            engine(network)


class TestWiring:
    def test_a_cycling_wet_well_raises_nothing(self):
        """The wet well gauge climbs 60 mm/min for 20 minutes, then the pumps draw it down,
        again and again: no level.rising, no blockage."""
        eng = engine()

        def cycle(m):
            phase = m % 25
            level = 500 + 60 * phase if phase < 20 else 1700 - 240 * (phase - 20)
            on = phase >= 20
            return {
                ("rg-01", "rain_rate"): 0.0,
                ("ps-01", "pump1_running"): on,
                ("lv-01", "level"): float(level),
            }

        assert feed(eng, 600, cycle) == []

    def test_without_the_network_the_same_wet_well_cries_wolf(self):
        """What issue 11 found: one gauge at a time, a wet well's fill is a 'blockage'."""
        eng = engine(SewerNetwork())
        out = feed(
            eng,
            300,
            lambda m: {
                ("rg-01", "rain_rate"): 0.0,
                ("lv-01", "level"): 500.0 + 60 * (m % 25 if m % 25 < 20 else 0),
            },
        )
        assert {"level.rising", "sewer.blockage_suspected"} <= {e.kind for _, e in out}

    @staticmethod
    def blocked_below_mh09(m):
        """From minute 90, MH-09 (lv-03) backs up and MH-17 (lv-02) below it is starved.
        (A millimetre's ripple: a gauge reading the same value over and over is stuck.)"""
        rise = max(0, m - 90)
        ripple = float(m % 3)
        return {
            ("rg-01", "rain_rate"): 0.0,
            ("lv-03", "level"): 300.0 + 6 * rise + ripple,
            ("lv-02", "level"): 250.0 - min(2 * rise, 80) + ripple,
            ("lv-01", "level"): 900.0,
        }

    def test_blockage_names_the_reach(self):
        eng = engine()
        events = [
            (m, e) for m, e in feed(eng, 120, self.blocked_below_mh09) if e.kind.startswith("sewer")
        ]
        (minute, event), *_ = events
        assert event.kind == "sewer.blockage_suspected" and 90 < minute <= 105
        assert event.data["reach"] == "MH09-MH17"
        assert [e.data["reach"] for _, e in events] == ["MH09-MH17"]  # not the reach below

    def test_the_wet_well_knows_when_a_reach_draining_into_it_was_blocked(self):
        """(Its starts are not judged then, nor is its rise an overflow risk by itself: the
        inflow is a blocked or emptying sewer's.)"""
        eng = engine()
        well = eng.wiring.wet_well_rules["ps-01"]
        overflow = eng.wiring.overflow_rules["ps-01"]
        assert well.upstream_blocked() is None and overflow.upstream_blocked() is None
        events = [
            (m, e) for m, e in feed(eng, 120, self.blocked_below_mh09) if e.kind.startswith("sewer")
        ]
        assert events and well.upstream_blocked() == 60.0 * 119
        assert overflow.upstream_blocked() == 60.0 * 119

    def test_the_reach_below_knows_when_a_reach_above_was_blocked(self):
        """(A rise at its top is no evidence then: the blockage's backwater comes down as a
        surge when it clears.)"""
        eng = engine()
        below = eng.wiring.reach_rules["MH17-PS01"]
        above = eng.wiring.reach_rules["MH09-MH17"]
        assert below.blocked_above() is None and above.blocked_above() is None
        feed(eng, 120, self.blocked_below_mh09)
        assert above.last_active is not None
        assert below.blocked_above() == above.last_active
        assert above.blocked_above() is None

    @pytest.mark.parametrize(
        ("blocked", "backed_up"),
        [
            ("RP01-MH09", ()),
            ("MH09-MH17", ("RP01-MH09",)),
            ("MH17-PS01", ("RP01-MH09", "MH09-MH17")),  # two reaches up too
        ],
    )
    def test_a_blockage_below_backs_up_every_reach_above_it(self, blocked, backed_up):
        """A blockage two reaches down backs the sewer up past the gauge between (a dev
        year's false blockages: the backwater, then its draining, read as "backing up" and
        "starved" on the reach above that one)."""
        chain = SewerNetwork(
            reaches=(
                SewerReach("RP01-MH09", "rp-01", "lv-03", station="ps-01"),
                SewerReach("MH09-MH17", "lv-03", "lv-02", station="ps-01"),
                SewerReach("MH17-PS01", "lv-02", None, station="ps-01"),
            ),
            wet_wells=(WetWell("ps-01", "lv-01", overflow_mm=4000.0, assist_mm=2200.0),),
        )
        rules = engine(chain).wiring.reach_rules
        rules[blocked].last_active = 1234.0
        assert {rid for rid, rule in rules.items() if rule.backed_up_below() == 1234.0} == set(
            backed_up
        )

    def test_road_water_with_rain_is_a_flood(self):
        eng = engine()
        out = feed(eng, 40, lambda m: {("rg-01", "rain_rate"): 30.0, ("rp-01", "level"): 8.0 * m})
        assert [e.kind for _, e in out] == ["flood.ponding"]  # and no level.rising for the road

    def test_station_overflow_eta_from_the_wet_well(self):
        eng = engine()
        out = feed(
            eng,
            30,
            lambda m: {
                ("ps-01", "pump1_running"): True,
                ("ps-01", "pump2_running"): True,
                ("lv-01", "level"): 2300.0 + 50 * m,
            },
        )
        risks = [(m, e) for m, e in out if e.kind == "overflow.risk"]
        (minute, event), *_ = risks
        assert event.dev == "ps-01" and event.data["eta_min"] <= 30
        assert (4000 - 2300) / 50 - minute >= 20  # warned 20+ minutes before it spills

    def test_manhole_overflow(self):
        eng = engine()
        out = feed(eng, 50, lambda m: {**dry(m), ("lv-02", "level"): 1200.0 + 40 * m})
        assert "overflow.risk" in [e.kind for _, e in out if e.dev == "lv-02"]

    def test_gas_site_kind_sets_the_alarm(self):
        """A utility tunnel alarms at 20 %LEL (GB 50838), not at 25."""
        eng = engine()
        assert kinds(eng.on_reading(reading("gd-01", "lel", 21.0, 0.0))) == ["gas.alarm1"]
        plain = engine(SewerNetwork())
        assert kinds(plain.on_reading(reading("gd-01", "lel", 21.0, 0.0))) == []

    def test_every_network_event_fits_the_payload_schema(self):
        eng = engine()
        drafts = [
            e
            for _, e in feed(
                eng, 40, lambda m: {("rg-01", "rain_rate"): 30.0, ("rp-01", "level"): 8.0 * m}
            )
        ]
        drafts += [e for _, e in feed(eng, 50, lambda m: {("lv-02", "level"): 1200.0 + 40 * m})]
        assert drafts
        for seq, d in enumerate(drafts, 1):
            event = Event("gw-01", seq, d.dev, d.kind, d.sev, d.ts, payload.dumps_data(d.data))
            payload.validate(payload.to_payload(event))
            payload.check_payload(payload.to_payload(event))


RAISE_CLEAR = {
    "sewer.blockage_suspected": "sewer.blockage_suspected.cleared",
    "overflow.risk": "overflow.risk.cleared",
    "wet_well.fault": "wet_well.fault.cleared",
    "flood.ponding": "flood.ponding.cleared",
    "gas.leak_suspected": "gas.leak_suspected.cleared",
}
CLEARED = {v: k for k, v in RAISE_CLEAR.items()}
STEPS = [
    ("lv-01", "level", st.floats(0, 4500)),
    ("lv-02", "level", st.floats(0, 3500)),
    ("lv-03", "level", st.floats(0, 3000)),
    ("rp-01", "level", st.floats(0, 600)),
    ("rg-01", "rain_rate", st.sampled_from([0.0, 0.0, 0.0, 8.0])),
    ("ps-01", "pump1_running", st.booleans()),
    ("ps-01", "pump2_running", st.booleans()),
    ("gd-01", "lel", st.floats(0, 40)),
    ("pt-01", "pressure", st.floats(0, 5)),
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(STEPS) - 1), st.data()), min_size=1, max_size=300))
def test_network_rules_alternate_raise_and_clear(steps):
    eng = engine()
    history: dict[tuple[str, str], list[str]] = {}
    for i, (index, data) in enumerate(steps):
        dev, point, values = STEPS[index]
        quality = data.draw(st.sampled_from([Quality.GOOD] * 5 + [Quality.FAULT]))
        for e in eng.on_reading(reading(dev, point, data.draw(values), 30.0 * i, quality)):
            family = CLEARED.get(e.kind, e.kind)
            if family in RAISE_CLEAR:
                history.setdefault((e.dev, family), []).append(e.kind)
    for key, seq in history.items():
        assert seq[0] in RAISE_CLEAR, (key, seq)
        assert all(a != b for a, b in itertools.pairwise(seq)), (key, seq)


class TestReload:
    """A config reload builds a new engine that carries over from the old one: a raised
    network alarm stays raised (its slot too) and is neither raised again nor left uncleared."""

    @staticmethod
    def blocked(m):
        rise = max(0, m - 90)
        ripple = float(m % 3)  # (a gauge reading the same value over and over is stuck)
        return {
            ("rg-01", "rain_rate"): 0.0,
            ("lv-03", "level"): 300.0 + 6 * min(rise, 40) + ripple,
            ("lv-02", "level"): 250.0 - min(2 * rise, 80) + ripple,
            ("lv-01", "level"): 900.0,
        }

    def test_slots_list_the_network_alarms(self):
        eng = engine()
        assert "sewer.blockage_suspected" in {c.id for c in eng.conditions("lv-03")}
        assert "wet_well.fault" in {c.id for c in eng.conditions("ps-01")}
        assert "overflow.risk" in {c.id for c in eng.conditions("lv-02")}
        assert "flood.ponding" in {c.id for c in eng.conditions("rp-01")}
        assert "gas.leak_suspected" in {c.id for c in eng.conditions("gd-01")}

    @pytest.mark.parametrize("same", [True, False])
    def test_a_raised_blockage_is_not_raised_again(self, same):
        old = engine()
        before = [e.kind for _, e in feed(old, 140, self.blocked) if e.dev == "lv-03"]
        assert before.count("sewer.blockage_suspected") == 1
        assert "sewer.blockage_suspected" in old.active("lv-03")
        new = engine()
        new.carry_over(old, same_devices=set(PROFILE_OF) if same else set())
        assert "sewer.blockage_suspected" in new.active("lv-03")
        after = [e.kind for _, e in feed(new, 120, self.blocked, start=140) if e.dev == "lv-03"]
        assert "sewer.blockage_suspected" not in after

    def test_a_flood_across_a_reload(self):
        def water(m):
            return {("rg-01", "rain_rate"): 30.0, ("rp-01", "level"): min(8.0 * m, 300.0)}

        old = engine()
        assert [e.kind for _, e in feed(old, 60, water)] == ["flood.ponding"]
        new = engine()
        new.carry_over(old, same_devices=set(PROFILE_OF))
        assert "flood.ponding" in new.active("rp-01")
        assert feed(new, 30, water, start=60) == []

        def drained(m):
            return {("rg-01", "rain_rate"): 0.0, ("rp-01", "level"): 0.0}

        out = [e.kind for _, e in feed(new, 120, drained, start=90)]
        assert out == ["flood.ponding.cleared"]  # the new engine clears what the old raised
