"""Config + profiles -> bus runners: settings land where the config says."""

from __future__ import annotations

import pytest

from drivers.profile import ProfileRegistry
from edge_agent.bus_setup import SERIAL_JITTER_S, build_bus_setup
from edge_agent.config.loader import load_config
from edge_agent.errors import UsageError

CONFIG = """\
version: 1
gateway: {site: test, id: gw-1}
buses:
  - name: plc
    type: tcp
    host: 127.0.0.1
    port: 1502
    timeout_s: 0.4
    retries: 2
    offline_after: 5
    backoff: {initial_s: 2.0, max_s: 20.0}
  - name: rs485
    type: rtu
    port: /dev/ttyUSB0
    baudrate: 19200
    parity: E
    inter_frame_gap_ms: 5
    turnaround_ms: 25
  - {name: spare, type: rtu_over_tcp, host: 127.0.0.1, port: 4001, baudrate: 4800, stopbits: 2}
devices:
  - {name: lv-01, bus: plc, unit_id: 2, profile: level-radar-lr10, poll_interval_s: 5}
  - {name: rg-01, bus: spare, unit_id: 3, profile: rain-gauge-tb2}
  - name: nl-01
    bus: rs485
    unit_id: 7
    profile: noise-logger-nl200
    timeout_s: 1.5
    retries: 0
    overrides: {points: {battery: {enabled: false}}}
"""


def _profiles(user_dir):
    return {p.name: p for p in ProfileRegistry(user_dir=user_dir).all()}


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    return load_config(path, profiles=_profiles)


def test_runners_per_bus_with_devices(cfg):
    """Only buses with devices get a runner; the transport matches the bus."""
    setup = build_bus_setup(cfg)
    assert set(setup.runners) == {"plc", "rs485", "spare"}
    plc, rs485 = setup.runners["plc"].transport, setup.runners["rs485"].transport
    assert (plc.kind, plc.host, plc.port, plc.timeout_s) == ("tcp", "127.0.0.1", 1502, 0.4)
    assert (rs485.kind, rs485.baudrate, rs485.parity) == ("rtu", 19200, "E")
    assert rs485.inter_frame_gap_s == pytest.approx(0.005)
    assert setup.bus_of == {"lv-01": "plc", "nl-01": "rs485", "rg-01": "spare"}


def test_each_bus_prices_requests_on_its_line(cfg):
    """The wire model: a TCP round trip; 19200 8E1 with the configured gap and turnaround;
    the line behind an RTU-over-TCP device server at 4800 8N2."""
    setup = build_bus_setup(cfg)
    plc, rs485, spare = (setup.runners[b].wire for b in ("plc", "rs485", "spare"))
    assert not plc.serial
    assert (rs485.char_s, rs485.gap_s, rs485.turnaround_s) == pytest.approx(
        (11 / 19200, 0.005, 0.025)
    )
    assert (spare.char_s, spare.per_request_s > 0) == (pytest.approx(11 / 4800), True)


def test_alarm_points_are_the_alarm_kinds(cfg):
    """Level gauges are alarm points, polled on their deadlines; loggers and rain are not."""
    setup = build_bus_setup(cfg)
    alarm = {
        name: c.spec.alarm
        for runner in setup.runners.values()
        for name, c in runner.coordinators.items()
    }
    assert alarm == {"lv-01": True, "nl-01": False, "rg-01": False}


def test_policy_device_overrides_bus(cfg):
    """Device timeout/retries win; offline threshold and backoff are the bus's."""
    setup = build_bus_setup(cfg)
    lv = setup.runners["plc"].coordinators["lv-01"].spec
    assert (lv.unit, lv.interval_s) == (2, 5.0)
    p = lv.policy
    assert (p.timeout_s, p.retries, p.offline_after) == (0.4, 2, 5)
    assert (p.backoff_initial_s, p.backoff_max_s) == (2.0, 20.0)
    nl = setup.runners["rs485"].coordinators["nl-01"].spec.policy
    assert (nl.timeout_s, nl.retries) == (1.5, 0)


def test_tcp_devices_share_a_phase_serial_lines_spread_theirs(cfg):
    """Modbus TCP: no jitter (one phase per interval, fewer wake-ups); a serial line, local
    or behind a device server: a random phase within SERIAL_JITTER_S (short alarm chains)."""
    setup = build_bus_setup(cfg)
    jitter = {
        name: c.spec.policy.jitter_s
        for runner in setup.runners.values()
        for name, c in runner.coordinators.items()
    }
    assert jitter == {"lv-01": 0.0, "nl-01": SERIAL_JITTER_S, "rg-01": SERIAL_JITTER_S}
    assert SERIAL_JITTER_S > 0


def test_overrides_reach_the_plan(cfg):
    """A disabled point is not read."""
    setup = build_bus_setup(cfg)
    assert not setup.profiles["nl-01"].point("battery").enabled
    plan = setup.runners["rs485"].coordinators["nl-01"].spec.plan
    assert "battery" not in {p.name for p in plan.plan.points}
    assert setup.profiles["nl-01"].recording is not None


def test_turnaround_on_a_tcp_bus_is_refused(tmp_path):
    from edge_agent.config.loader import ConfigError

    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG.replace("    port: 1502\n", "    port: 1502\n    turnaround_ms: 5\n"))
    with pytest.raises(ConfigError, match=r"buses\[0\]\.turnaround_ms: applies to rtu"):
        load_config(path, profiles=_profiles)


def test_only_devices_and_unknown_profile(cfg):
    setup = build_bus_setup(cfg, only_devices={"nl-01"})
    assert set(setup.runners) == {"rs485"}

    class Empty(ProfileRegistry):
        def __init__(self):
            super().__init__()
            self._profiles = {}

    with pytest.raises(UsageError, match=r"gateway\.yaml:\d+:\d+: devices\[0\]\.profile"):
        build_bus_setup(cfg, registry=Empty())
