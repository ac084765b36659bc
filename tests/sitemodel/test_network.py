"""The site file's ``sewer:`` and ``gas_sites:`` sections: what they load into
(``sitemodel.network``), every mistake as one line naming file, line, column and field, and
``SewerNetwork.only`` keeping what one gateway polls."""

from __future__ import annotations

import re

import pytest

from drivers.profile import ProfileRegistry
from sitemodel import GasSite, Manhole, PondingSpot, SewerReach, SiteError, WetWell, parse_site
from tests.drivers.sim.site_support import seed_site

PROFILES = ProfileRegistry()

DEVICES = [
    ("up", "level", "level-radar-lr10", ""),
    ("down", "level", "level-radar-lr10", ""),
    ("ps", "pump_controller", "pump-controller-ps2", ""),
    ("well", "level", "level-radar-lr10", ", sim: {station: ps}"),
    ("rg", "rain", "rain-gauge-tb2", ""),
    ("road", "level", "level-radar-lr10", ""),
    ("gd", "gas", "gas-detector-mg4", ""),
    ("pt", "pressure", "pressure-pt5", ""),
]
NET = (
    "site: net\norigin: {lat: 31.23, lon: 121.47}\nnodes: []\npipes: []\ndevices:\n"
    + "".join(
        f"  - {{name: {name}, kind: {kind}, profile: {profile}, asset_id: A{i},\n"
        f"     lat: 31.23, lon: 121.47, bus: b, unit_id: {i}{extra}}}\n"
        for i, (name, kind, profile, extra) in enumerate(DEVICES, 1)
    )
    + """\
sim_buses: [{name: b, port: 15990}]
sewer:
  reaches:
    - {id: R1, upstream: up, downstream: down, station: ps, rain_gauges: [rg], length_m: 250}
    - {id: R2, upstream: down, station: ps}
  manholes:
    - {gauge: up, rim_mm: 2600, crown_mm: 300, storm_mm_h: 40, lag_min: 12}
  wet_wells:
    - {station: ps, gauge: well, overflow_mm: 4000, assist_mm: 2200, area_m2: 6, pump_l_s: 30,
       duty_pumps: 2, storm_l_s_per_mm_h: 2.5}
  ponding:
    - {device: road, rain_gauges: [rg]}
gas_sites:
  - {id: GV, kind: utility_tunnel, detectors: [gd], pressure: [pt]}
"""
)


def test_the_sections_load_into_the_network():
    network = parse_site(NET, source="net.yaml", profiles=PROFILES).network
    assert network.reaches == (
        SewerReach("R1", "up", "down", "ps", ("rg",), 250.0),
        SewerReach("R2", "down", None, "ps", (), None),
    )
    assert network.manholes == (Manhole("up", 2600.0, 300.0, storm_mm_h=40.0, lag_min=12.0),)
    assert network.wet_wells == (WetWell("ps", "well", 4000.0, 2200.0, 6.0, 30.0, 2, 2.5, ()),)
    assert network.ponding == (PondingSpot("road", ("rg",)),)
    assert network.gas_sites == (GasSite("GV", "utility_tunnel", ("gd",), ("pt",), ()),)


def test_the_seed_site_describes_its_sewer():
    network = seed_site().network
    assert [(r.id, r.upstream, r.downstream) for r in network.reaches] == [
        ("MH09-MH17", "lv-03", "lv-02"),
        ("MH17-PS01", "lv-02", None),
    ]
    assert network.wet_well_gauges() == {"lv-01"} and network.ponding_devices() == {"rp-01"}


# (mutation of NET: old -> new, field, message fragment)
BAD = [
    (
        "upstream: up, downstream: down",
        "upstream: upp, downstream: down",
        "sewer.reaches[0].upstream",
        "unknown device 'upp'",
    ),
    (
        "upstream: up, downstream: down",
        "upstream: rg, downstream: down",
        "sewer.reaches[0].upstream",
        "is a rain device, expected level",
    ),
    (
        "upstream: up, downstream: down",
        "upstream: well, downstream: down",
        "sewer.reaches[0].upstream",
        "reads a wet well",
    ),
    (
        "upstream: up, downstream: down",
        "upstream: up, downstream: up",
        "sewer.reaches[0].downstream",
        "the same gauge",
    ),
    (
        "station: ps, rain_gauges",
        "station: up, rain_gauges",
        "sewer.reaches[0].station",
        "expected pump_controller",
    ),
    (
        "rain_gauges: [rg], length",
        "rain_gauges: [gd], length",
        "sewer.reaches[0].rain_gauges[0]",
        "expected rain",
    ),
    (
        "{id: R2, upstream: down, station: ps}",
        "{id: R2, upstream: down}",
        "sewer.reaches[1]",
        "ends at a downstream gauge or at a station",
    ),
    (
        "{id: R2, upstream: down",
        "{id: R1, upstream: down",
        "sewer.reaches[1].id",
        "duplicate id 'R1'",
    ),
    ("length_m: 250", "length_m: -5", "sewer.reaches[0].length_m", "not in 1..100000"),
    (
        "crown_mm: 300,",
        "crown_mm: 3000,",
        "sewer.manholes[0].crown_mm",
        "must be below rim_mm 2600",
    ),
    (
        "{station: ps, gauge: well,",
        "{station: well, gauge: well,",
        "sewer.wet_wells[0].station",
        "expected pump_controller",
    ),
    ("duty_pumps: 2", "duty_pumps: 0", "sewer.wet_wells[0].duty_pumps", "not in 1..16"),
    ("lag_min: 12", "lag_min: 0", "sewer.manholes[0].lag_min", "not in 1..600"),
    ("{device: road, rain", "{device: gd, rain", "sewer.ponding[0].device", "expected level"),
    (
        "kind: utility_tunnel",
        "kind: bakery",
        "gas_sites[0].kind",
        "'bakery' is not one of gate_station",
    ),
    ("detectors: [gd]", "detectors: []", "gas_sites[0].detectors", "at least one gas detector"),
    ("pressure: [pt]", "pressure: [gd]", "gas_sites[0].pressure[0]", "expected pressure"),
    ("  ponding:", "  pumping:", "sewer.pumping", "unknown key"),
]


@pytest.mark.parametrize(("old", "new", "field", "fragment"), BAD)
def test_bad_sections_are_one_line_with_position(old, new, field, fragment):
    assert old in NET
    with pytest.raises(SiteError) as err:
        parse_site(NET.replace(old, new, 1), source="net.yaml", profiles=PROFILES)
    message = str(err.value)
    assert "\n" not in message
    assert re.match(rf"net\.yaml:\d+:\d+: {re.escape(field)}: ", message), message
    assert fragment in message


def test_only_keeps_what_a_gateway_polls():
    network = parse_site(NET, source="net.yaml", profiles=PROFILES).network
    part = network.only({"up", "down", "ps", "gd"})  # no rain gauge, wet-well gauge, road
    assert [r.id for r in part.reaches] == ["R1", "R2"]
    assert part.reaches[0].rain_gauges == ()
    assert part.wet_wells == () and part.ponding == ()  # their own devices are missing
    assert part.gas_sites[0].pressure == ()
    assert network.only({"ps", "well"}).reaches == ()
