"""Valid configs load into the dataclasses with the values, defaults and resolved paths."""

import dataclasses
import os

import pytest

from edge_agent.config import load_config, parse_config
from edge_agent.config import model as m
from tests.edge_agent.config.conftest import FIXTURES, FULL, MINIMAL, real_profiles


def test_full_fixture_values():
    cfg = load_config(FULL, profiles=real_profiles)
    assert (cfg.gateway.site, cfg.gateway.id) == ("riverside", "gw-01")
    assert [type(b) for b in cfg.buses] == [m.TcpBus, m.RtuBus, m.RtuOverTcpBus]
    tcp, rtu, rot = cfg.buses
    assert (tcp.host, tcp.port, tcp.timeout_s, tcp.backoff.max_s) == ("127.0.0.1", 15021, 0.5, 30.0)
    assert (rtu.port, rtu.baudrate, rtu.parity, rtu.rs485.enabled) == (
        "/dev/ttyUSB0",
        9600,
        "E",
        True,
    )
    assert rtu.inter_frame_gap_ms == 4.0
    assert (rot.host, rot.port, rot.timeout_s) == ("192.0.2.10", 4001, 1.0)
    nl, lv, rg = cfg.devices
    assert nl.location == m.Location(lat=31.2304, lon=121.4737, description="valve chamber V3")
    assert nl.timeout_s is None and nl.poll_interval_s == 60.0
    assert lv.overrides.points["level"].range == (0.0, 5000.0)
    assert lv.rules.level_high_mm == 1800.0 and lv.rules.rain_gauge == "rg-01"
    assert rg.profile == "rain-gauge-site-a"  # only in the fixture's profiles_dir
    assert cfg.uplink.password_env == "EDGE_AGENT_MQTT_PASSWORD"
    assert cfg.leak_detection.materials["pe"].band_hz == (10.0, 300.0)
    assert cfg.leak_detection.night_window_minutes() == (120, 240)
    assert cfg.rules.level.high_mm == 2000.0
    assert cfg.devices_on("pumpstation") == (lv,)
    assert cfg.bus("chamber-v3") is rot
    assert cfg.client_id == "riverside-gw-01"


def test_relative_paths_resolve_against_the_config_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    cfg = load_config(FULL, profiles=real_profiles)
    assert cfg.site_file == str(FIXTURES / "site.yaml")
    assert cfg.profiles_dir == str(FIXTURES / "profiles")
    assert cfg.uplink.tls.ca_file == str(FIXTURES / "certs" / "ca.pem")
    assert cfg.storage.state_dir == "/var/lib/edge-agent"
    assert os.path.isabs(cfg.site_file)


def test_relative_state_dir(tmp_path):
    text = MINIMAL.read_text() + "storage: {state_dir: state}\n"
    (tmp_path / "gw.yaml").write_text(text)
    cfg = load_config(tmp_path / "gw.yaml")
    assert cfg.storage.state_dir == str(tmp_path / "state")


def test_minimal_fixture_gets_the_named_defaults():
    cfg = load_config(MINIMAL, profiles=real_profiles)
    bus = cfg.buses[0]
    assert bus.port == m.DEFAULT_MODBUS_TCP_PORT
    assert bus.timeout_s == m.DEFAULT_BUS_TIMEOUT_S
    assert bus.offline_after == m.DEFAULT_OFFLINE_AFTER
    assert cfg.devices[0].poll_interval_s == m.DEFAULT_POLL_INTERVAL_S
    assert cfg.uplink.url is None
    assert cfg.uplink.topic_root == m.DEFAULT_TOPIC_ROOT
    assert cfg.storage == m.StorageConfig()
    assert cfg.leak_detection == m.LeakDetectionConfig()
    assert cfg.logging == m.LoggingConfig()


def test_marks_point_at_values():
    cfg = load_config(FULL)
    lines = FULL.read_text().splitlines()
    line, col = cfg.marks["devices[1].unit_id"]
    assert lines[line - 1][col - 1 :].startswith("1")
    assert lines[line - 1].strip() == "unit_id: 1"


def test_config_is_frozen():
    cfg = load_config(MINIMAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.gateway.id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "tls"),
    [
        ("mqtt://127.0.0.1:1883", ""),
        ("mqtt://localhost", ""),
        ("mqtt://[::1]:1883", ""),
        ("mqtt://broker.lab:1883", ", tls: {insecure_plaintext: true}"),
        ("mqtts://broker.example:8883", ""),
        ("mqtts://192.0.2.7", ""),
    ],
)
def test_accepted_uplink_urls(url, tls):
    text = MINIMAL.read_text() + f"uplink: {{url: '{url}'{tls}}}\n"
    assert parse_config(text).uplink.url == url


def test_yaml_merge_keys_work_for_repeated_settings():
    text = """\
version: 1
gateway: {site: s, id: g}
buses:
  - &rtu {name: a, type: rtu, port: /dev/ttyUSB0, baudrate: 19200, parity: E}
  - {<<: *rtu, name: b, port: /dev/ttyUSB1}
"""
    a, b = parse_config(text).buses
    assert (b.baudrate, b.parity, b.port) == (19200, "E", "/dev/ttyUSB1")
    assert a.port == "/dev/ttyUSB0"


def test_seed_gateway_config_is_valid(seed_config_path):
    cfg = load_config(seed_config_path, profiles=real_profiles)
    assert cfg.devices


def test_point_overrides_apply_to_the_profile_and_keep_what_they_do_not_set():
    cfg = load_config(FULL, profiles=real_profiles)
    lv = cfg.devices[1]
    profile = real_profiles(cfg.profiles_dir)[lv.profile]
    changed = profile.with_overrides(lv.overrides.points)
    before, after = profile.point("level"), changed.point("level")
    assert after.valid_range == (0.0, 5000.0)
    assert after.scale == 1000.0
    assert after.enabled == before.enabled and after.unit == before.unit
    assert lv.overrides.points["level"].enabled is None
