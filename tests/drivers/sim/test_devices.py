"""Device dynamics of the reference site under an injected clock, read back through each
device's register image exactly as a Modbus master would decode it."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.codec import active_bits
from drivers.errors import ProfileError
from drivers.sim.clock import ManualClock
from drivers.sim.scenarios import read_scenarios
from drivers.sim.site_sim import SiteSimulator
from sitemodel import parse_site
from tests.drivers.sim.site_support import PROFILES, decode_from_store, read_point, seed_site

STEP_S = 30.0
PLAY_S = 2 * 3600.0
HOUR_S = 3600.0


@pytest.fixture(scope="module")
def played():
    """The seed site played for two sim hours in 30 s steps (its storm comes at 70 min, after
    the dry hour the blockage story needs): a trace of decoded points."""
    site = seed_site()
    clock = ManualClock()
    sim = SiteSimulator(site, clock=clock, seed=3)
    m = sim.models
    trace = []
    t = 0.0
    while t <= PLAY_S:
        trace.append(
            {
                "t": t,
                "rain_rate": read_point(m["rg-01"], "rain_rate"),
                "rain_total": read_point(m["rg-01"], "rain_total"),
                "tips": read_point(m["rg-01"], "tips"),
                "sewer": read_point(m["lv-02"], "level"),
                "distance": read_point(m["lv-02"], "distance"),
                "wet_well": read_point(m["lv-01"], "level"),
                "station_level": read_point(m["ps-01"], "wet_well_level"),
                "pumps": [read_point(m["ps-01"], f"pump{i}_running") for i in (1, 2, 3)],
                "high_high": read_point(m["ps-01"], "float_high_high"),
                "lel": read_point(m["gd-01"], "lel"),
                "gas_alarms": read_point(m["gd-01"], "alarms"),
                "cover_open": read_point(m["mc-03"], "cover_open"),
                "open_count": read_point(m["mc-03"], "open_count"),
                "pressure": read_point(m["pt-01"], "pressure"),
                "offline": sim.offline(),
            }
        )
        clock.advance(STEP_S)
        t += STEP_S
        sim.step()
    asyncio.run(sim.stop())
    return site, trace


def _during(trace, start, end):
    return [row for row in trace if start <= row["t"] < end]


def test_storm_raises_the_sewer_level_and_it_recedes(played):
    """Dry level before the storm, well over a metre more near its peak, receding after."""
    site, trace = played
    storm = read_scenarios(site).storms[0]
    cover = site.device("lv-02").sim.cover_depth_mm
    before = max(r["sewer"] for r in _during(trace, 0, storm.start_s))
    peak = max(r["sewer"] for r in trace)
    after = trace[-1]["sewer"]
    assert before < 600
    assert peak > before + 1000
    assert peak <= cover
    assert after < peak - 800
    # the gauge's distance to the surface mirrors the level under the antenna
    row = max(trace, key=lambda r: r["sewer"])
    mount = cover - 200
    assert row["distance"] + row["sewer"] == pytest.approx(mount, abs=15)


def test_rain_gauge_counts_whole_tips_of_the_storm(played):
    """Tips only grow; the total is the storm's integral to within one 0.2 mm tip."""
    site, trace = played
    storm = read_scenarios(site).storms[0]
    tips = [r["tips"] for r in trace]
    assert tips == sorted(tips)
    expected_mm = storm.peak_mm_per_h * storm.duration_s / 2 / 3600  # integral of sin^2
    assert trace[-1]["rain_total"] == pytest.approx(expected_mm, abs=0.2 + 1e-6)
    assert trace[-1]["rain_total"] == pytest.approx(tips[-1] * 0.2)
    assert max(r["rain_rate"] for r in trace) > storm.peak_mm_per_h * 0.7
    assert all(r["rain_rate"] == 0 for r in _during(trace, 0, storm.start_s))


def test_pump_station_cycles_and_the_storm_needs_a_second_pump(played):
    """Dry weather: one pump at a time, the well stays between stop and overflow; the storm
    brings the assist pump and the well near the high-high float."""
    site, trace = played
    p = site.device("ps-01").sim
    storm = read_scenarios(site).storms[0]
    dry = _during(trace, 0, storm.start_s)
    assert any(any(r["pumps"]) for r in trace)
    assert all(sum(r["pumps"]) <= 1 for r in dry)
    assert all(p.stop_level_mm - 50 <= r["station_level"] <= p.overflow_level_mm for r in trace)
    assert max(sum(r["pumps"]) for r in trace) >= 2
    assert max(r["station_level"] for r in trace) > p.assist_level_mm
    # the wet-well gauge reads the station's well
    for r in trace:
        assert r["wet_well"] == pytest.approx(r["station_level"], abs=25)
    # more than one pump did duty over the hour (duty rotation)
    assert sum(1 for i in range(3) if any(r["pumps"][i] for r in trace)) >= 2


def test_gas_episode_raises_and_clears_the_alarm(played):
    site, trace = played
    gas = read_scenarios(site).gas[0]
    before = _during(trace, 0, gas.start_s)
    during = _during(trace, gas.start_s, gas.start_s + gas.duration_s)
    after = _during(trace, gas.start_s + gas.duration_s + 60, HOUR_S + 1)
    assert max(r["lel"] for r in before) < 5
    assert max(r["lel"] for r in during) > 25
    assert max(r["lel"] for r in after) < 5
    assert any(r["gas_alarms"] & 1 for r in during)
    assert not any(r["gas_alarms"] & 1 for r in before + after)


def test_cover_opens_once_for_its_scenario(played):
    site, trace = played
    c = read_scenarios(site).covers[0]
    assert all(r["cover_open"] for r in _during(trace, c.start_s, c.start_s + c.duration_s))
    assert not any(r["cover_open"] for r in _during(trace, 0, c.start_s))
    assert trace[-1]["open_count"] == 1


def test_dropout_takes_the_unit_off_and_back(played):
    site, trace = played
    d = read_scenarios(site).dropouts[0]
    assert all(
        d.device in r["offline"] for r in _during(trace, d.start_s, d.start_s + d.duration_s)
    )
    assert not any(r["offline"] for r in _during(trace, 0, d.start_s))
    assert not any(r["offline"] for r in _during(trace, d.start_s + d.duration_s, HOUR_S + 1))


def test_pressure_stays_plausible(played):
    """Near its mean, but while the seed gas leak drains the line (it loses drop_bar)."""
    site, trace = played
    mean = site.device("pt-01").sim.mean_bar
    gas = read_scenarios(site).gas[0]
    quiet = [r for r in trace if not gas.start_s <= r["t"] < gas.start_s + gas.duration_s]
    assert all(abs(r["pressure"] - mean) < 0.3 for r in quiet)
    leaking = _during(trace, gas.start_s + 200, gas.start_s + gas.duration_s)
    assert all(abs(r["pressure"] - (mean - gas.drop_bar)) < 0.3 for r in leaking)


def test_fault_bits_on_demand_show_in_the_status_word():
    """set_fault ORs bits into the status point; clearing restores it; unknown device fails."""
    sim = SiteSimulator(seed_site(), clock=ManualClock())
    try:
        gas = sim.models["gd-01"]
        faults = gas.profile.point("faults")
        assert read_point(gas, "faults") == 0
        sim.set_fault("gd-01", faults.bit_mask(["lel_sensor_fault"]))
        assert active_bits(faults, read_point(gas, "faults")) == {"lel_sensor_fault"}
        sim.set_fault("gd-01", 0)
        assert read_point(gas, "faults") == 0
        with pytest.raises(KeyError, match="no device 'nope'"):
            sim.set_fault("nope", 1)
    finally:
        asyncio.run(sim.stop())


def test_forced_pump_fault_keeps_that_pump_still():
    """A forced pump fault shows on its discrete input and the controller never runs it."""
    clock = ManualClock()
    sim = SiteSimulator(seed_site(), clock=clock)
    try:
        sim.force("ps-01", "pump2_fault", True)
        station = sim.models["ps-01"]
        ran = set()
        for _ in range(int(HOUR_S / STEP_S)):
            clock.advance(STEP_S)
            sim.step()
            ran |= {i for i in (1, 2, 3) if read_point(station, f"pump{i}_running")}
        assert read_point(station, "pump2_fault") is True
        assert 2 not in ran and ran
        with pytest.raises(ProfileError, match="no point 'pump9_fault'"):
            sim.force("ps-01", "pump9_fault", True)
    finally:
        asyncio.run(sim.stop())


def test_identification_block_matches_every_profile():
    """A scan identifies each simulated device by its profile's identification registers."""
    sim = SiteSimulator(seed_site(), clock=ManualClock())
    try:
        for model in sim.models.values():
            for check in model.profile.identification:
                assert check.matches(decode_from_store(model, check.point)), model.device.name
    finally:
        asyncio.run(sim.stop())


def test_pressure_min_max_cover_the_time_since_the_last_read():
    """The transmitter's min/max span everything since the master last read them."""
    clock = ManualClock()
    sim = SiteSimulator(seed_site(), clock=clock, seed=1)
    try:
        pt = sim.models["pt-01"]
        for _ in range(60):
            clock.advance(60)
            sim.step()
        low, high = read_point(pt, "pressure_min"), read_point(pt, "pressure_max")
        assert low <= read_point(pt, "pressure") <= high
        assert high > low
        first = pt.profile.point("pressure_min")
        pt.on_read(3, first.address, 4)  # the poll reading min and max
        clock.advance(60)
        sim.step()
        now = read_point(pt, "pressure")
        assert read_point(pt, "pressure_min") == pytest.approx(now, abs=1e-6)
        assert read_point(pt, "pressure_max") == pytest.approx(now, abs=1e-6)
    finally:
        asyncio.run(sim.stop())


BLOCKED_SITE = """\
site: blocked
origin: {lat: 31.23, lon: 121.47}
nodes: []
pipes: []
devices:
  - {name: up, kind: level, profile: level-radar-lr10, asset_id: A1,
     lat: 31.23, lon: 121.47, bus: b, unit_id: 1, sim: {cover_depth_mm: 2600}}
  - {name: down, kind: level, profile: level-radar-lr10, asset_id: A2,
     lat: 31.23, lon: 121.47, bus: b, unit_id: 2, sim: {cover_depth_mm: 3200}}
  - {name: gd, kind: gas, profile: gas-detector-mg4, asset_id: A3,
     lat: 31.23, lon: 121.47, bus: b, unit_id: 3}
  - {name: pt, kind: pressure, profile: pressure-pt5, asset_id: A4,
     lat: 31.23, lon: 121.47, bus: b, unit_id: 4, sim: {mean_bar: 2.5, diurnal_bar: 0}}
sim_buses: [{name: b, port: 15998}]
scenarios:
  blockages: [{device: up, start_s: 3600, duration_s: 1800, rise_mm_per_min: 8,
               downstream: down, fall_pct: 45}]
  gas: [{device: gd, start_s: 600, duration_s: 900, peak_lel: 30, pressure: pt, drop_bar: 1.2}]
"""


def _trace(site, until_s, devices, point):
    clock = ManualClock()
    sim = SiteSimulator(site, clock=clock)
    try:
        trace = []
        while clock.elapsed() < until_s:
            clock.advance(STEP_S)
            sim.step()
            trace.append((clock.elapsed(), *(read_point(sim.models[d], point) for d in devices)))
        return trace
    finally:
        asyncio.run(sim.stop())


def test_blockage_backs_the_sewer_up_above_and_starves_it_below():
    """Above the blockage the level climbs at its rate; below it loses fall_pct of its dry
    level within minutes; both come back once it is cleared."""
    site = parse_site(BLOCKED_SITE, profiles=PROFILES)
    block = read_scenarios(site).blockages[0]
    trace = _trace(site, block.start_s + block.duration_s + 3600, ("up", "down"), "level")

    def at(t, i):
        return min(trace, key=lambda row: abs(row[0] - t))[i]

    start, end = block.start_s, block.start_s + block.duration_s
    assert at(start + 1200, 1) - at(start, 1) == pytest.approx(8 * 20, rel=0.15)
    assert at(start + 900, 2) == pytest.approx(at(start - 60, 2) * 0.55, rel=0.1)
    assert at(end + 3600, 1) < at(end - 60, 1) - 150  # drained
    assert at(end + 3600, 2) == pytest.approx(at(start - 60, 2), rel=0.15)  # fed again


def test_gas_leak_takes_the_line_pressure_down():
    site = parse_site(BLOCKED_SITE, profiles=PROFILES)
    trace = _trace(site, 2400, ("pt",), "pressure")
    before = [p for t, p in trace if t < 600]
    during = [p for t, p in trace if 600 + 180 <= t < 1500]
    after = [p for t, p in trace if t >= 1500 + STEP_S]
    assert min(before) > 2.4 and max(during) < 1.35 and min(after) > 2.4


STORMY_SITE = """\
site: stormy
origin: {{lat: 31.23, lon: 121.47}}
nodes: []
pipes: []
devices:
  - {{name: ps, kind: pump_controller, profile: pump-controller-ps2, asset_id: A1,
     lat: 31.23, lon: 121.47, bus: b, unit_id: 1, sim: {{pumps: {pumps}}}}}
  - {{name: well, kind: level, profile: level-radar-lr10, asset_id: A2,
     lat: 31.23, lon: 121.47, bus: b, unit_id: 2, sim: {{station: ps}}}}
  - {{name: mh, kind: level, profile: level-radar-lr10, asset_id: A3,
     lat: 31.23, lon: 121.47, bus: b, unit_id: 3, sim: {{cover_depth_mm: 1500}}}}
  - {{name: rg, kind: rain, profile: rain-gauge-tb2, asset_id: A4,
     lat: 31.23, lon: 121.47, bus: b, unit_id: 4}}
sim_buses: [{{name: b, port: 15999}}]
scenarios:
  storms: [{{start_s: {start}, duration_s: {duration}, peak_mm_per_h: {peak}}}]
"""


@settings(max_examples=20, deadline=None)
@given(
    pumps=st.integers(1, 3),
    # Rounded: PyYAML reads a bare exponent such as 5e-324 as a string, not a float.
    start=st.floats(0, 1800).map(lambda x: round(x, 3)),
    duration=st.floats(60, 3600).map(lambda x: round(x, 3)),
    peak=st.floats(0.5, 250).map(lambda x: round(x, 3)),
    step=st.sampled_from([5.0, 30.0, 120.0, 600.0]),
)
def test_any_storm_keeps_levels_physical(pumps, start, duration, peak, step):
    """Whatever the storm and the step size: levels stay between the invert and the cover
    (or the overflow), tips never go back, and the rain total matches the storm's integral."""
    from sitemodel import parse_site

    site = parse_site(
        STORMY_SITE.format(pumps=pumps, start=start, duration=duration, peak=peak),
        profiles=PROFILES,
    )
    clock = ManualClock()
    sim = SiteSimulator(site, clock=clock)
    try:
        m = sim.models
        overflow = site.device("ps").sim.overflow_level_mm
        tips = 0
        while clock.elapsed() < start + duration + 600:
            clock.advance(step)
            sim.step()
            assert 0 <= read_point(m["ps"], "wet_well_level") <= overflow + 20
            assert 0 <= read_point(m["mh"], "level") <= 1500 + 20
            now = read_point(m["rg"], "tips")
            assert now >= tips
            tips = now
        expected = peak * duration / 2 / 3600
        assert read_point(m["rg"], "rain_total") == pytest.approx(expected, abs=0.2 + 1e-6)
    finally:
        asyncio.run(sim.stop())
