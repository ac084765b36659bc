"""seeds/gateway.yaml is a valid gateway config that polls exactly the simulators of
seeds/site.yaml: same buses and ports on loopback, unit ids, profiles, asset ids, places."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config.loader import load_config
from tests.drivers.sim.site_support import PROFILES, SEED_GATEWAY, seed_site


@pytest.fixture(scope="module")
def pair():
    return seed_site(), load_config(SEED_GATEWAY, profile_exists=PROFILES.exists)


def test_gateway_points_at_the_site_file(pair):
    site, config = pair
    assert Path(config.site_file).resolve() == Path(site.source).resolve()
    assert config.gateway.site == site.site


def test_every_sim_bus_is_polled_on_loopback(pair):
    site, config = pair
    assert {b.name: (b.host, b.port) for b in config.buses} == {
        b.name: ("127.0.0.1", b.port) for b in site.sim_buses
    }
    assert all(b.type == "tcp" for b in config.buses)


def test_every_site_device_is_configured_alike(pair):
    site, config = pair
    assert [d.name for d in config.devices] == [d.name for d in site.devices]
    for sd, cd in zip(site.devices, config.devices, strict=True):
        assert (cd.bus, cd.unit_id, cd.profile, cd.asset_id) == (
            sd.bus,
            sd.unit_id,
            sd.profile,
            sd.asset_id,
        ), sd.name
        assert cd.location.lat == pytest.approx(sd.lat, abs=1e-6)
        assert cd.location.lon == pytest.approx(sd.lon, abs=1e-6)
        assert cd.pipe_segment == sd.pipe
