"""The simulator's scenarios: the site file's ``scenarios:`` section, read by drivers.sim with
the site reader, every mistake one line naming file, line, column and field."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.sim.scenarios import Scenarios, read_scenarios
from dsp.pipes import MATERIALS
from sitemodel import SiteError, parse_site
from tests.drivers.sim.site_support import seed_site
from tests.sitemodel.test_site import (
    MINI,
    PROFILES,
    assert_one_problem_at,
    assert_problem_lines,
)


def _scenarios(text: str) -> Scenarios:
    return read_scenarios(parse_site(text, source="mini.yaml", profiles=PROFILES))


def test_mini_scenarios_with_defaults():
    [leak] = _scenarios(MINI).leaks
    assert leak.active(0.0) and leak.duration_s is None and leak.start_s == 0.0


def test_a_site_without_scenarios_plays_none():
    text = MINI[: MINI.index("scenarios:")]
    assert _scenarios(text) == Scenarios()


# (mutation of MINI: old -> new, expected line, field, message fragment)
BAD = [
    (
        "level_db: 10}]",
        "level_db: 10, colour: red}]",
        18,
        "scenarios.leaks[0].colour",
        "unknown key",
    ),
    (
        "leaks: [",
        "gas: [{device: lv-1, start_s: 1}]\n  leaks: [",
        18,
        "scenarios.gas[0].device",
        "is a level device, expected gas",
    ),
    (
        "leaks: [",
        "blockages: [{device: gd-1, start_s: 1, duration_s: 5}]\n  leaks: [",
        18,
        "scenarios.blockages[0].device",
        "is a gas device, expected level",
    ),
    (
        "leaks: [",
        "dropouts: [{device: nope, start_s: 1, duration_s: 5}]\n  leaks: [",
        18,
        "scenarios.dropouts[0].device",
        "unknown device 'nope'",
    ),
    (
        "leaks: [",
        "gas: [{device: gd-1, start_s: 1, pressure: lv-1}]\n  leaks: [",
        18,
        "scenarios.gas[0].pressure",
        "is a level device, expected pressure",
    ),
    (
        "leaks: [",
        "blockages: [{device: lv-1, start_s: 1, duration_s: 5, downstream: lv-1}]\n  leaks: [",
        18,
        "scenarios.blockages[0].downstream",
        "the same gauge as device",
    ),
    (
        "leaks: [",
        "blockages: [{device: lv-1, start_s: 1, duration_s: 5, downstream: gd-1}]\n  leaks: [",
        18,
        "scenarios.blockages[0].downstream",
        "is a gas device, expected level",
    ),
    ("pipe: P1, offset_m: 50", "pipe: P9, offset_m: 50", 18, "scenarios.leaks[0].pipe", "P9"),
    ("offset_m: 50, level", "offset_m: 500, level", 18, "scenarios.leaks[0].offset_m", "0..120"),
    ("level_db: 10}", "level_db: !!float x}", 18, "scenarios.leaks[0].level_db", "!!float"),
    (
        "level_db: 10}",
        "level_db: 10, duration_s: !!int x}",
        18,
        "scenarios.leaks[0].duration_s",
        "!!int",
    ),
]


@pytest.mark.parametrize(("old", "new", "line", "field", "fragment"), BAD)
def test_bad_scenario_is_one_line_with_position(old, new, line, field, fragment):
    """Each mistake names file:line:col and the field, on one line."""
    assert old in MINI
    with pytest.raises(SiteError) as err:
        _scenarios(MINI.replace(old, new, 1))
    assert_one_problem_at(err.value, line, field, fragment)


@pytest.mark.parametrize(("tilt", "expected"), [("true", True), ("!!bool yes", True)])
def test_boolean_read_with_its_tag(tilt, expected):
    [cover] = _scenarios(_with_cover(f"tilt: {tilt}")).covers
    assert cover.tilt is expected


def test_boolean_tag_on_other_text_is_refused():
    """``!!bool maybe`` was once read as true (the bare text re-read, the tag ignored)."""
    with pytest.raises(
        SiteError, match=r"^mini\.yaml:21:45: scenarios\.covers\[0\]\.tilt: .*!!bool"
    ):
        _scenarios(_with_cover("tilt: !!bool maybe"))


def _with_cover(scenario_field: str) -> str:
    cover = (
        "  - {name: cv-1, kind: cover, profile: cover-sensor-mc1, asset_id: X-4,\n"
        "     lat: 31.2301, lon: 121.4701, bus: b1, unit_id: 4}\n"
    )
    text = MINI.replace("sim_buses:\n", cover + "sim_buses:\n", 1)
    return text + f"  covers: [{{device: cv-1, start_s: 1, {scenario_field}}}]\n"


_TOKENS = ["", "[", "]", "{", "}", ":", ",", "-", "null", "9" * 400, "-1", "*a", "'x'", "\n"]


@settings(max_examples=100)
@given(st.lists(st.tuples(st.floats(0, 1), st.sampled_from(_TOKENS)), min_size=1, max_size=3))
def test_any_mangled_scenarios_section_is_site_error_lines_or_valid(edits):
    """Whatever happens to the section: valid, or a SiteError of one line per problem."""
    head, section = MINI[: MINI.index("scenarios:")], MINI[MINI.index("scenarios:") :]
    for where, token in edits:
        pos = int(where * (len(section) - 1))
        section = section[:pos] + token + section[pos:]
    try:
        _scenarios(head + section)
    except SiteError as exc:
        assert_problem_lines(exc)


# --- the reference site ---------------------------------------------------------------------


def test_seed_leak_is_bracketed_by_two_loggers_on_metal():
    """The scenario leak sits on metal pipe between two loggers on the same pipe, early."""
    site = seed_site()
    leak = read_scenarios(site).leaks[0]
    assert leak.start_s <= 60
    assert MATERIALS[site.pipe(leak.pipe).material].family == "metal"
    on_pipe = [d.offset_m for d in site.devices_of("noise_logger") if d.pipe == leak.pipe]
    assert any(a < leak.offset_m < b for a in on_pipe for b in on_pipe)
    # both within the ~150 m a logger hears on metal
    assert all(abs(o - leak.offset_m) < 150 for o in on_pipe)


def test_seed_scenarios_fit_the_90_second_demo_at_speed_60():
    """Dropout, gas episode (raise and clear) and cover inside the first hour; the blockage
    after an hour of dry weather (the rule's need) and before the storm; the storm's rise
    within the 90 simulated minutes."""
    sc = read_scenarios(seed_site())
    assert sc.dropouts and sc.dropouts[0].start_s + sc.dropouts[0].duration_s <= 3600
    assert sc.gas and sc.gas[0].start_s + sc.gas[0].duration_s <= 3600 and sc.gas[0].peak_lel > 25
    assert sc.gas[0].pressure == "pt-01" and sc.gas[0].drop_bar > 1.0
    assert sc.covers and sc.covers[0].start_s + sc.covers[0].duration_s <= 3600
    (block,) = sc.blockages
    (storm,) = sc.storms
    assert block.start_s >= 3000 and block.start_s + 15 * 60 <= storm.start_s
    assert block.downstream == "lv-02"
    assert storm.peak_mm_per_h >= 30 and storm.start_s + storm.duration_s / 2 <= 90 * 60
