"""``edge-agent scan`` and ``probe`` end to end: the real CLI against simulators on loopback
TCP and a socat pty; errors are one line with the documented exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivers.profile import ProfileRegistry
from drivers.sim.server import SimServer, ThreadedSimServer
from edge_agent.cli import main
from tests.helpers.modbus import RTU_TEST_BAUD, profile_store, pty_pair
from tests.helpers.net import free_port

REGISTRY = ProfileRegistry()


def _units(server: SimServer) -> None:
    nl = profile_store(REGISTRY.get("noise-logger-nl200"), {"leak_level": 31.5, "battery": 87})
    nl.set_holding(500, [0x4148, 0x0000, 0x0000, 0x4148])  # 12.5 in ABCD, then in CDAB
    server.add_unit(3, nl)
    server.add_unit(7, profile_store(REGISTRY.get("level-radar-lr10")))


@pytest.fixture(scope="module")
def tcp_sim():
    server = SimServer("tcp")
    _units(server)
    with ThreadedSimServer(server) as running:
        yield running


def _config(tmp_path, port: int, *, unit: int = 3, extra: str = "") -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "version: 1\n"
        "gateway: {site: test, id: gw-1}\n"
        "buses:\n"
        f"  - {{name: b1, type: tcp, host: 127.0.0.1, port: {port}, timeout_s: 0.3, retries: 0}}\n"
        "devices:\n"
        f"  - {{name: nl-01, bus: b1, unit_id: {unit}, profile: noise-logger-nl200}}\n" + extra
    )
    return str(path)


def _one_line_error(capsys, prefix: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(prefix) and "Traceback" not in captured.err
    return lines[0]


def test_scan_tcp_json_lists_units_with_profiles(tcp_sim, capsys):
    rc = main(["scan", "--host", "127.0.0.1", "--tcp-port", str(tcp_sim.port), "--json"])
    assert rc == 0
    found = json.loads(capsys.readouterr().out)
    assert [(u["unit_id"], u["profile"]) for u in found] == [
        (3, "noise-logger-nl200"),
        (7, "level-radar-lr10"),
    ]


def test_scan_table_for_people(tcp_sim, capsys):
    rc = main(["scan", "--host", "127.0.0.1", "--tcp-port", str(tcp_sim.port), "--ids", "1-8"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "noise-logger-nl200" in out and "level-radar-lr10" in out
    assert "2 units found" in out


def test_scan_serial_pty_shows_progress(tmp_path, capsys):
    with pty_pair(tmp_path) as ptys:
        server = SimServer("rtu", serial_port=ptys.server_path, baudrate=RTU_TEST_BAUD)
        _units(server)
        with ThreadedSimServer(server):
            baud = str(RTU_TEST_BAUD)
            rc = main(["scan", "--serial", ptys.client_path, "--baud", baud, "--ids", "1-10"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "10/10 units, 2 found" in captured.err
    assert "noise-logger-nl200" in captured.out


def test_probe_prints_points_with_units_and_quality(tcp_sim, tmp_path, capsys):
    rc = main(["probe", "--config", _config(tmp_path, tcp_sim.port), "nl-01", "--json"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    points = {p["point"]: p for p in result["points"]}
    assert points["leak_level"] == {
        "point": "leak_level",
        "value": 31.5,
        "unit": "dB",
        "quality": "good",
    }
    assert points["battery"]["value"] == 87
    assert result["unit_id"] == 3 and result["profile"] == "noise-logger-nl200"
    rc = main(["probe", "--config", _config(tmp_path, tcp_sim.port), "nl-01"])
    out = capsys.readouterr().out
    assert rc == 0 and "leak_level" in out and "31.5" in out and "dB" in out


def test_probe_reads_each_profile_file_once(tcp_sim, tmp_path, capsys, monkeypatch):
    """The config check's profiles (user dir included) serve the bus setup: no second parse."""
    import drivers.profile

    user_dir = tmp_path / "profiles"
    user_dir.mkdir()
    shipped = REGISTRY.get("noise-logger-nl200").source
    text = Path(shipped).read_text(encoding="utf-8")
    (user_dir / "nl-local.yaml").write_text(
        text.replace("name: noise-logger-nl200", "name: nl-local", 1), encoding="utf-8"
    )
    loaded: list[str] = []
    real_load = drivers.profile.load_profile

    def counting_load(path):
        loaded.append(str(path))
        return real_load(path)

    monkeypatch.setattr(drivers.profile, "load_profile", counting_load)
    config = _config(tmp_path, tcp_sim.port, extra=f"profiles_dir: {user_dir}\n")
    text = Path(config).read_text(encoding="utf-8").replace("noise-logger-nl200", "nl-local")
    Path(config).write_text(text, encoding="utf-8")
    rc = main(["probe", "--config", config, "nl-01", "--json"])
    assert rc == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["profile"] == "nl-local"
    assert loaded and len(loaded) == len(set(loaded))


def test_probe_raw_shows_every_word_order(tcp_sim, tmp_path, capsys):
    config = _config(tmp_path, tcp_sim.port)
    rc = main(["probe", "--config", config, "nl-01", "--raw", "500", "4", "--json"])
    assert rc == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["registers"] == [0x4148, 0, 0, 0x4148]
    assert raw["pairs"]["500-501"]["ABCD"]["f32"] == 12.5
    assert raw["pairs"]["502-503"]["CDAB"]["f32"] == 12.5
    rc = main(["probe", "--config", config, "nl-01", "--raw", "500", "2"])
    out = capsys.readouterr().out
    assert rc == 0 and "ABCD" in out and "12.5" in out and "DCBA" in out


@pytest.mark.parametrize(
    ("argv", "code", "prefix"),
    [
        (["scan", "--serial", "/nonexistent/ttyUSB9", "--ids", "1-2"], 1, "edge-agent scan:"),
        (["scan", "--host", "127.0.0.1", "--ids", "0-5"], 2, "edge-agent scan: --ids"),
        (["scan", "--serial", "/dev/null", "--baud", "fast"], 2, "edge-agent scan: --baud"),
        (["scan", "--host", "127.0.0.1", "--serial", "/dev/x"], 2, "edge-agent scan: error"),
    ],
)
def test_scan_errors_are_one_line(argv, code, prefix, capsys):
    assert _exit_code(argv) == code
    _one_line_error(capsys, prefix)


def _exit_code(argv) -> int:
    """The exit code, whether the command returns it or argparse exits."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def test_scan_nothing_there_exits_1(capsys):
    server = SimServer("tcp", port=0)
    with ThreadedSimServer(server) as running:
        port = running.port
        rc = main(["scan", "--host", "127.0.0.1", "--tcp-port", str(port), "--ids", "1-3"])
    assert rc == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress lines
    assert last.startswith("edge-agent scan: no unit answered")


def test_probe_errors_are_one_line(tcp_sim, tmp_path, capsys):
    config = _config(tmp_path, tcp_sim.port)
    assert main(["probe", "--config", config, "nl-99"]) == 2
    assert "no device 'nl-99'" in _one_line_error(capsys, "edge-agent probe:")

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ngateway: {site: t, id: g}\nbuses: []\ndevices: [{name: x}]\n")
    assert main(["probe", "--config", str(bad), "x"]) == 2
    assert "bad.yaml:" in _one_line_error(capsys, "edge-agent probe:")

    _config(tmp_path, tcp_sim.port)
    text = (tmp_path / "gateway.yaml").read_text().replace("noise-logger-nl200", "nl-9000")
    (tmp_path / "gateway.yaml").write_text(text)
    (tmp_path / "u.yaml").write_text((tmp_path / "gateway.yaml").read_text())
    assert main(["probe", "--config", str(tmp_path / "u.yaml"), "nl-01"]) == 2
    assert "nl-9000" in _one_line_error(capsys, "edge-agent probe:")

    silent = _config(tmp_path, tcp_sim.port, unit=99)
    assert main(["probe", "--config", silent, "nl-01"]) == 1
    assert "no answer from unit 99" in _one_line_error(capsys, "edge-agent probe: nl-01")

    closed = _config(tmp_path, free_port())
    assert main(["probe", "--config", closed, "nl-01"]) == 1
    assert "cannot open" in _one_line_error(capsys, "edge-agent probe: nl-01")

    assert main(["probe", "--config", config, "nl-01", "--raw", "0", "200"]) == 2
    _one_line_error(capsys, "edge-agent probe: --raw")
