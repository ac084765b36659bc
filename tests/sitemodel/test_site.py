"""The site file: the reference seed is what the issue asks for, and every mistake in a site
file is one line naming file, line, column and field."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.profile import ProfileRegistry
from dsp.pipes import MATERIALS
from sitemodel import (
    PLACEMENT_TOLERANCE_M,
    LevelParams,
    SiteError,
    latlon_to_local,
    load_site,
    local_to_latlon,
    parse_site,
)
from tests.drivers.sim.site_support import SEED_SITE, seed_site
from yamlread import ReadError

PROFILES = ProfileRegistry()

MINI = """\
site: mini
origin: {lat: 31.23, lon: 121.47}
nodes:
  - {id: A, x: 0, y: 0}
  - {id: B, x: 100, y: 0}
pipes:
  - {id: P1, from: A, to: B, material: cast_iron, length_m: 120}
devices:
  - {name: nl-1, kind: noise_logger, profile: noise-logger-nl200, asset_id: X-1,
     pipe: P1, offset_m: 10, bus: b1, unit_id: 1}
  - {name: lv-1, kind: level, profile: level-radar-lr10, asset_id: X-2,
     lat: 31.2301, lon: 121.4701, bus: b1, unit_id: 2}
  - {name: gd-1, kind: gas, profile: gas-detector-mg4, asset_id: X-3,
     lat: 31.2301, lon: 121.4701, bus: b1, unit_id: 3}
sim_buses:
  - {name: b1, port: 15900}
scenarios:
  leaks: [{id: L1, pipe: P1, offset_m: 50, level_db: 10}]
"""


def test_mini_site_parses_with_defaults():
    """A minimal file loads; positions come from the pipe placement or from lat/lon."""
    site = parse_site(MINI, source="mini.yaml", profiles=PROFILES)
    assert site.site == "mini" and site.name == "mini"
    logger = site.device("nl-1")
    # a pipe of 120 m between nodes 100 m apart: 10 m along it is 10/120 of the way
    assert logger.x == pytest.approx(100 * 10 / 120)
    assert logger.lat == pytest.approx(local_to_latlon(31.23, 121.47, logger.x, 0)[0])
    assert isinstance(site.device("lv-1").sim, LevelParams)
    assert site.pipe("P1").wave_speed_m_s == pytest.approx(1267, abs=20)
    assert site.scenarios is not None  # kept for the simulator (tests/drivers/sim)
    assert site.devices_on("b1")[0].name == "nl-1"


def test_latlon_round_trip():
    """Local metres and lat/lon convert back and forth to well under a centimetre."""
    lat, lon = local_to_latlon(31.23, 121.47, 523.4, -211.9)
    x, y = latlon_to_local(31.23, 121.47, lat, lon)
    assert (x, y) == (pytest.approx(523.4, abs=1e-3), pytest.approx(-211.9, abs=1e-3))


# (mutation of MINI: old -> new, expected line, field, message fragment)
BAD = [
    ("site: mini", "site: 'mi ni'", 1, "site", "'mi ni' is not allowed: use letters, digits"),
    (
        "  - {id: B, x: 100, y: 0}",
        "  - {id: B, x: 100, y: 0}\n  - {id: A, x: 5, y: 5}",
        6,
        "nodes[2].id",
        "duplicate id 'A'",
    ),
    ("to: B, material: cast_iron", "to: C, material: cast_iron", 7, "pipes[0].to", "unknown node"),
    ("material: cast_iron", "material: copper", 7, "pipes[0].material", "unknown material"),
    ("length_m: 120}", "length_m: 80}", 7, "pipes[0].length_m", "shorter than the 100.0 m"),
    ("offset_m: 10, bus", "offset_m: 130, bus", 10, "devices[0].offset_m", "not in 0..120"),
    ("unit_id: 2}", "unit_id: 300}", 12, "devices[1].unit_id", "300 is not in 1..247"),
    ("unit_id: 3}", "unit_id: 2}", 13, "devices[2]", "already used by 'lv-1'"),
    ("kind: level", "kind: lamp", 11, "devices[1].kind", "'lamp' is not one of noise_logger,"),
    ("bus: b1, unit_id: 1}", "bus: b9, unit_id: 1}", 10, "devices[0].bus", "unknown sim bus"),
    ("profile: level-radar-lr10", "profile: level-x", 11, "devices[1].profile", "unknown profile"),
    ("profile: level-radar-lr10", "profile: gas-detector-mg4", 11, "devices[1].profile", "gas"),
    ("pipe: P1, offset_m: 10,", "", 9, "devices[0]", "needs a pipe placement"),
    (
        "lat: 31.2301, lon: 121.4701, bus: b1, unit_id: 2",
        "bus: b1, unit_id: 2",
        11,
        "devices[1]",
        "missing coordinates",
    ),
    ("{name: b1, port: 15900}", "{name: b1, port: 70000}", 16, "sim_buses[0].port", "70000"),
    ("unit_id: 2}", "unit_id: 2, sim: {station: gd-1}}", 11, "devices[1]", "not a pump_controller"),
    ("unit_id: 2}", "unit_id: 2, sim: {lag_s: -5}}", 12, "devices[1].sim.lag_s", "not in 1..86400"),
    # An explicit tag is read as tagged, never re-read from the bare text.
    ("port: 15900}", "port: 1" + "0" * 400 + "}", 16, "sim_buses[0].port", "not in 1..65535"),
    ("port: 15900}", "port: !!int abc}", 16, "sim_buses[0].port", "not a valid !!int"),
    ("port: 15900}", "port: !!int '1.5'}", 16, "sim_buses[0].port", "not a valid !!int"),
    (
        "origin: {lat: 31.23, lon: 121.47}",
        "origin: [31.23, 121.47]",
        2,
        "origin",
        "expected a mapping",
    ),
]


def assert_one_problem_at(error: SiteError, line: int, field: str, fragment: str) -> None:
    """One line, ``mini.yaml:LINE:COL: FIELD: ...FRAGMENT...``."""
    message = str(error)
    assert "\n" not in message
    m = re.match(r"mini\.yaml:(\d+):(\d+): (\S+): (.*)$", message)
    assert m, message
    assert int(m.group(1)) == line, message
    assert m.group(3) == field, message
    assert fragment in m.group(4), message


def assert_problem_lines(error: SiteError) -> None:
    """One printable line per problem, each naming the file."""
    lines = str(error).splitlines()
    assert lines and len(lines) == len(error.problems)
    assert all(line.startswith("mini.yaml") and line.isprintable() for line in lines)


@pytest.mark.parametrize(("old", "new", "line", "field", "fragment"), BAD)
def test_bad_site_is_one_line_with_position(old, new, line, field, fragment):
    """Each mistake names file:line:col and the field, on one line."""
    assert old in MINI
    with pytest.raises(SiteError) as err:
        parse_site(MINI.replace(old, new, 1), source="mini.yaml", profiles=PROFILES)
    assert_one_problem_at(err.value, line, field, fragment)


_TOKENS = [
    "",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    "-",
    "null",
    "~",
    "1e999",
    "9" * 400,
    "-1",
    "&a",
    "*a",
    "!!binary",
    "'x'",
    "\n",
    "  ",
    "true",
    ".nan",
    "<<: *a",
    "?",
    "|",
    "\t",
    "P1",
]


@settings(max_examples=150)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 1),
            st.sampled_from(["insert", "delete", "replace"]),
            st.sampled_from(_TOKENS),
            st.integers(1, 8),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_mangled_site_file_is_a_one_line_site_error_or_valid(edits):
    """Whatever a person (or an editor) does to the file: valid, or a SiteError of one line
    per problem."""
    text = MINI
    for where, op, token, n in edits:
        pos = int(where * (len(text) - 1))
        if op == "insert":
            text = text[:pos] + token + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + n :]
        else:
            text = text[:pos] + token + text[pos + n :]
    try:
        parse_site(text, source="mini.yaml", profiles=PROFILES)
    except SiteError as exc:
        assert_problem_lines(exc)


def test_every_problem_of_the_file_at_once():
    """Mistakes in different records are all listed, in file order, one line each."""
    text = MINI.replace("site: mini", "site: 'mi ni'").replace("unit_id: 2}", "unit_id: 300}")
    text = text.replace("material: cast_iron", "material: copper")
    with pytest.raises(SiteError) as err:
        parse_site(text, source="mini.yaml", profiles=PROFILES)
    assert [p.path for p in err.value.problems] == [
        "site",
        "pipes[0].material",
        "devices[1].unit_id",
    ]
    assert len(str(err.value).splitlines()) == 3


def test_ids_may_be_written_as_numbers():
    """A CIM export may give ids such as 101 or 0001: read as the text written."""
    text = MINI.replace("{id: B,", "{id: 0002,").replace("to: B,", "to: 0002,")
    text = text.replace("asset_id: X-2", "asset_id: 0042")
    site = parse_site(text, source="mini.yaml", profiles=PROFILES)
    assert site.pipe("P1").to_node == "0002" and site.device("lv-1").asset_id == "0042"


def test_placement_far_from_coordinates_is_refused():
    """lat/lon more than the tolerance away from the spot on the pipe is a typo somewhere."""
    far = MINI.replace(
        "pipe: P1, offset_m: 10,", "lat: 31.2330, lon: 121.4700, pipe: P1, offset_m: 10,"
    )
    with pytest.raises(
        SiteError, match=rf"m from the device's spot on pipe P1.*{PLACEMENT_TOLERANCE_M:g}"
    ):
        parse_site(far, source="mini.yaml")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty"),
        ("site: [unclosed", "YAML syntax"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_unusable_files(text, fragment, tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(text)
    with pytest.raises(SiteError, match=fragment) as err:
        load_site(path)
    assert str(err.value).startswith(str(path))
    assert isinstance(err.value, ReadError)  # the root every format's errors share


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(SiteError, match="cannot read site file"):
        load_site(tmp_path / "nope.yaml")


# --- the reference site ---------------------------------------------------------------------


def test_seed_site_has_what_the_issue_asks_for():
    """Mixed materials, >= 6 loggers, pump station, gas chamber, covers, all with asset ids."""
    site = seed_site()
    materials = {p.material for p in site.pipes}
    assert {"ductile_iron", "cast_iron", "pe"} <= materials
    loggers = site.devices_of("noise_logger")
    assert len(loggers) >= 6
    assert {site.pipe(d.pipe).material for d in loggers} >= {"ductile_iron", "cast_iron", "pe"}
    kinds = {d.kind for d in site.devices}
    assert kinds >= {"pump_controller", "level", "rain", "gas", "pressure", "cover"}
    assert any(getattr(d.sim, "station", None) for d in site.devices_of("level"))
    assert len(site.devices_of("level")) >= 2  # wet well and sewer
    for d in site.devices:
        assert d.asset_id.startswith("CIM-")
        assert math.isfinite(d.lat) and math.isfinite(d.lon)
        # every device within a couple of km of the district origin
        assert math.hypot(d.x, d.y) < 2000
    assert all(15020 <= b.port <= 15029 for b in site.sim_buses)
    assert len({d.asset_id for d in site.devices}) == len(site.devices)
    assert all(p.material in MATERIALS for p in site.pipes)


def test_seed_site_loads_without_profiles():
    """Coverage and other tools may load the site without a profile registry."""
    assert load_site(SEED_SITE).site == "riverside"
