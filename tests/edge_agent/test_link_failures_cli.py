"""``scan`` and ``probe`` on a link that fails: the command's one-line message, exit 1, for
each failure an installer meets at the kerb (settings the port refuses, a port that is gone,
permission denied, a TCP refusal). Real ptys and loopback; tests/helpers/ports.py says how
the OS is made to refuse."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from edge_agent.cli import main
from tests.helpers.modbus import pty_pair
from tests.helpers.net import free_port
from tests.helpers.ports import denied, refuses_even_parity

NO_SUCH_PORT = "no such port (adapter unplugged, or another name: ls /dev/serial/by-id)"


def _one_line(capsys, prefix: str) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    # scan prints progress on stderr before it fails; the failure is the last line
    assert "Traceback" not in captured.err, captured.err
    assert lines and lines[-1].startswith(prefix), captured.err
    assert captured.out == ""
    return lines[-1]


@pytest.fixture
def ptys(tmp_path):
    with pty_pair(tmp_path) as pair:
        yield pair


def _refusing(ptys) -> str:
    if not refuses_even_parity(ptys.client_path):
        pytest.skip("this C library does not report the pty's dropped parity (not glibc)")
    return ptys.client_path


def _rtu_config(tmp_path, port: str, parity: str = "N") -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "version: 1\n"
        "gateway: {site: test, id: gw-1}\n"
        "buses:\n"
        f"  - {{name: b1, type: rtu, port: {port}, baudrate: 9600, parity: {parity},"
        " timeout_s: 0.2, retries: 0}\n"
        "devices:\n"
        "  - {name: lv-01, bus: b1, unit_id: 3, profile: level-radar-lr10}\n"
    )
    return str(path)


def _tcp_config(tmp_path, port: int) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "version: 1\n"
        "gateway: {site: test, id: gw-1}\n"
        "buses:\n"
        f"  - {{name: plc, type: tcp, host: 127.0.0.1, port: {port}, timeout_s: 0.3}}\n"
        "devices:\n"
        "  - {name: lv-01, bus: plc, unit_id: 3, profile: level-radar-lr10}\n"
    )
    return str(path)


class TestScan:
    def test_port_refusing_the_settings(self, ptys, capsys):
        """The documented recipe on a port without even parity (the issue's traceback)."""
        port = _refusing(ptys)
        rc = main(["scan", "--serial", port, "--parity", "E", "--ids", "1-2"])
        line = _one_line(capsys, f"edge-agent scan: cannot open rtu {port}: ")
        assert rc == 1
        assert "the port refuses 9600 8E1" in line

    def test_port_that_is_gone(self, ptys, capsys):
        port = ptys.client_path
        ptys.vanish()
        rc = main(["scan", "--serial", port, "--ids", "1-2"])
        assert rc == 1
        assert _one_line(capsys, "edge-agent scan: ") == (
            f"edge-agent scan: cannot open rtu {port}: {NO_SUCH_PORT}"
        )

    def test_permission_denied(self, ptys, capsys):
        with denied(ptys.client_path) as port:
            rc = main(["scan", "--serial", port, "--ids", "1-2"])
        line = _one_line(capsys, f"edge-agent scan: cannot open rtu {port}: permission denied")
        assert rc == 1 and "dialout" in line

    @pytest.mark.parametrize("framing", [[], ["--rtu-over-tcp"]])
    def test_tcp_refused(self, framing, capsys):
        port = free_port()
        rc = main(["scan", "--host", "127.0.0.1", "--tcp-port", str(port), *framing])
        kind = "rtu_over_tcp" if framing else "tcp"
        line = _one_line(capsys, f"edge-agent scan: cannot open {kind} 127.0.0.1:{port}: ")
        assert rc == 1 and f"connection refused (nothing listens on port {port}" in line


class TestProbe:
    def test_bus_with_parity_the_port_refuses(self, ptys, tmp_path, capsys):
        port = _refusing(ptys)
        rc = main(["probe", "--config", _rtu_config(tmp_path, port, parity="E"), "lv-01"])
        line = _one_line(capsys, f"edge-agent probe: lv-01 (unit 3 on bus b1, rtu {port}): ")
        assert rc == 1 and "the port refuses 9600 8E1" in line

    def test_raw_read_on_a_port_that_is_gone(self, ptys, tmp_path, capsys):
        port = ptys.client_path
        ptys.vanish()
        config = _rtu_config(tmp_path, port)
        rc = main(["probe", "--config", config, "lv-01", "--raw", "0", "2"])
        assert rc == 1
        assert _one_line(capsys, "edge-agent probe: ").endswith(f"rtu {port}: {NO_SUCH_PORT}")

    def test_permission_denied(self, ptys, capsys):
        # The config must stay readable for the user probe runs as: not under tmp_path (0700)
        with tempfile.TemporaryDirectory() as readable:
            os.chmod(readable, 0o755)
            config = _rtu_config(Path(readable), os.path.realpath(ptys.client_path))
            os.chmod(config, 0o644)
            with denied(ptys.client_path) as port:
                rc = main(["probe", "--config", config, "lv-01"])
        line = _one_line(capsys, "edge-agent probe: lv-01 (unit 3 on bus b1, ")
        assert rc == 1 and f"cannot open rtu {port}: permission denied" in line

    def test_tcp_refused(self, tmp_path, capsys):
        port = free_port()
        rc = main(["probe", "--config", _tcp_config(tmp_path, port), "lv-01"])
        line = _one_line(capsys, "edge-agent probe: lv-01 (unit 3 on bus plc, tcp ")
        assert rc == 1 and "connection refused" in line
