"""Site file -> pipe graph: listeners, neighbouring logger pairs and the paths between them."""

from pathlib import Path

import pytest

from dsp.network import NetworkError
from dsp.pipes import wave_speed
from edge_agent.site_network import (
    listener_for,
    logger_pairs,
    path_between_loggers,
    site_network,
)
from sitemodel import load_site, parse_site
from tests.edge_agent.mini_site import site_yaml

SEED_SITE = Path(__file__).resolve().parents[2] / "seeds" / "site.yaml"


@pytest.fixture(scope="module")
def site():
    return parse_site(site_yaml(), source="mini-site.yaml")


def test_the_seed_site_converts():
    network, listeners = site_network(load_site(SEED_SITE))
    assert listeners
    for lst in listeners:
        network.check_position(lst.position)


def test_every_placed_logger_becomes_a_listener(site):
    network, listeners = site_network(site)
    assert [lst.name for lst in listeners] == [f"nl-0{i}" for i in range(1, 9)]
    assert network.total_length_m == pytest.approx(sum(p.length_m for p in site.pipes))
    assert listener_for(site, "nl-03").position.offset_m == 168.0


def test_neighbour_pairs_on_the_seed_site(site):
    pairs = logger_pairs(site)
    assert ("nl-02", "nl-03") in pairs  # the scenario leak L1 lies between them
    assert ("nl-01", "nl-02") in pairs
    # nl-02 sits between nl-01 and nl-03 on the trunk: never correlate across it.
    assert ("nl-01", "nl-03") not in pairs
    assert all(a < b for a, b in pairs)


def test_path_between_loggers_of_mixed_materials(site):
    path = path_between_loggers(site, "nl-04", "nl-07")
    assert path.length_m == pytest.approx(70.0 + 40.0)
    assert path.materials == ("cast_iron", "pe")
    expected = 70.0 / wave_speed("cast_iron", 150, 9.0) + 40.0 / wave_speed("pe", 63, 5.8)
    assert path.travel_time_s == pytest.approx(expected)


@pytest.mark.parametrize(
    ("a", "b", "error", "match"),
    [
        ("nl-02", "lv-01", NetworkError, "not a noise logger"),
        ("nl-02", "nope", KeyError, "nope"),
    ],
)
def test_bad_logger_names(a, b, error, match):
    with pytest.raises(error, match=match):
        path_between_loggers(load_site(SEED_SITE), a, b)
