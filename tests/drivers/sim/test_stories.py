"""The seed site's stories through the real rules, in process: every device's points decoded
from the simulator's registers once a simulated minute (as a gateway polling every minute
sees them) and fed to the ``RulesEngine`` with the site's ``SewerNetwork``. The blockage is
caught on its reach within 15 minutes in dry weather, the wet well's cycling raises nothing,
the storm warns of the overflow before the well spills, floods the road, the gas leak on the
line is told before the first gas alarm. (The same through Modbus and the daemon:
tests/integration/test_demo.py.)"""

from __future__ import annotations

import asyncio

import pytest

from drivers.model import PollResult, Quality, Reading
from drivers.sim.clock import ManualClock
from drivers.sim.scenarios import read_scenarios
from drivers.sim.site_sim import SiteSimulator
from edge_agent.rules import DeviceInfo, RulesConfig, RulesEngine
from tests.drivers.sim.site_support import PROFILES, read_point, seed_site

STEP_S = 60.0
PLAY_S = 95 * 60.0
GOOD = Quality.GOOD


@pytest.fixture(scope="module")
def played():
    site = seed_site()
    devices = [d for d in site.devices if d.kind != "noise_logger"]
    infos = [DeviceInfo(d.name, PROFILES.get(d.profile), kind=d.kind) for d in devices]
    engine = RulesEngine(RulesConfig(), infos, network=site.network)
    clock = ManualClock()
    sim = SiteSimulator(site, clock=clock, seed=2)
    events, wet_well_top = [], 0.0
    try:
        while clock.elapsed() < PLAY_S:
            clock.advance(STEP_S)
            sim.step()
            t = clock.elapsed()
            wet_well_top = max(wet_well_top, sim.world.stations["ps-01"].level_mm)
            for d in devices:
                model = sim.models[d.name]
                readings = tuple(
                    Reading(d.name, p.name, read_point(model, p.name), p.unit or "", GOOD, t)
                    for p in model.profile.points
                    if p.enabled
                )
                events += engine.on_poll(PollResult("sim", d.name, t, readings))
    finally:
        asyncio.run(sim.stop())
    return read_scenarios(site), site, events, wet_well_top


def first(events, kind, dev=None):
    return next(e for e in events if e.kind == kind and (dev is None or e.dev == dev))


def test_blockage_caught_on_its_reach_in_dry_weather(played):
    scenarios, _, events, _ = played
    block = scenarios.blockages[0]
    blockages = [e for e in events if e.kind == "sewer.blockage_suspected"]
    assert [(e.dev, e.data["reach"]) for e in blockages] == [("lv-03", "MH09-MH17")]
    assert block.start_s < blockages[0].ts <= block.start_s + 15 * 60
    assert blockages[0].data["rain_mm_h"] == [0.0]


def test_the_wet_well_cycling_raises_nothing(played):
    scenarios, _, events, _ = played
    storm = scenarios.storms[0]
    from_well = [e for e in events if e.dev in ("lv-01", "ps-01")]
    assert all(e.ts >= storm.start_s for e in from_well), from_well  # nothing in dry weather
    assert {e.kind for e in from_well} <= {"overflow.risk", "overflow.risk.cleared"}


def test_the_storm_warns_of_the_overflow_and_floods_the_road(played):
    scenarios, site, events, wet_well_top = played
    storm = scenarios.storms[0]
    risk = first(events, "overflow.risk", "ps-01")
    assert storm.start_s < risk.ts and risk.data["eta_min"] is not None
    flood = first(events, "flood.ponding", "rp-01")
    assert flood.ts > storm.start_s and flood.data["depth_mm"] >= 100
    assert wet_well_top > site.device("ps-01").sim.assist_level_mm  # it truly filled up
    manhole = first(events, "overflow.risk", "lv-02")  # MH-17: the storm surcharges it
    assert manhole.ts > storm.start_s and manhole.data["rim_mm"] == 3200


def test_the_gas_leak_on_the_line_comes_before_the_first_alarm(played):
    scenarios, _, events, _ = played
    gas = scenarios.gas[0]
    leak = first(events, "gas.leak_suspected")
    assert gas.start_s < leak.ts < first(events, "gas.alarm1").ts
    assert leak.data["site"] == "GV-03" and leak.data["reasons"] == ["gas with a pressure drop"]
