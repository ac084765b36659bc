"""Every serial and socket failure is one ``DriverInitError`` line saying what is wrong: a
port that refuses its settings, a port that vanishes, permission denied, a path that is no
serial port, a refused TCP connection. Wrapped with ``from`` (the OS error stays the cause).
The bus runner turns each into "device offline" with that reason, once, and backs off.

All on real ptys (socat) and loopback sockets; see tests/helpers/ports.py for how the OS is
made to refuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import termios

import pytest

from drivers.bus import BusRead, BusRunner, DeviceSpec, PollPolicy
from drivers.errors import DriverError, DriverInitError
from drivers.transport import make_transport
from tests.helpers.modbus import RTU_TEST_BAUD, pty_pair, served_units
from tests.helpers.net import free_port
from tests.helpers.ports import denied, refuses_even_parity

UNITS = {1: {"holding": {0: [11, 12]}}, 2: {"holding": {0: [21, 22]}}}
UNIT_NAMES = (("lv-01", 1), ("lv-02", 2))


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text, text
    return text


@pytest.fixture
def ptys(tmp_path):
    with pty_pair(tmp_path) as pair:
        yield pair


@pytest.fixture
def refusing_port(ptys):
    """A serial port that refuses even parity."""
    if not refuses_even_parity(ptys.client_path):
        pytest.skip("this C library does not report the pty's dropped parity (not glibc)")
    return ptys.client_path


def test_port_refusing_the_settings(refusing_port):
    """8E1 on a port that cannot do it: the settings are named, the termios error is the
    cause; asking again gives the same answer (the failed open released the port), and the
    same port opens with settings it can do."""

    async def scenario():
        t = make_transport("rtu", port=refusing_port, baudrate=9600, parity="E", timeout_s=0.2)
        for _ in range(2):
            with pytest.raises(DriverInitError) as caught:
                await t.read(3, 1, 0, 1)
            text = _one_line(caught.value)
            assert text.startswith(f"cannot open rtu {refusing_port}: the port refuses 9600 8E1")
            assert isinstance(caught.value.__cause__, termios.error)
        ok = make_transport("rtu", port=refusing_port, baudrate=9600, parity="N", timeout_s=0.2)
        await ok.connect()
        assert ok.connected
        ok.close()

    asyncio.run(scenario())


def test_port_that_vanishes(ptys):
    """USB unplug while open: the next requests fail with one line naming the missing port."""

    async def scenario():
        async with served_units(UNITS, kind="rtu", serial_port=ptys.server_path) as server:
            t = make_transport("rtu", port=ptys.client_path, baudrate=RTU_TEST_BAUD, timeout_s=0.2)
            assert await t.read(3, 1, 0, 1) == [11]
            await server.stop()
            ptys.vanish()
            texts = []
            for _ in range(3):  # the first may still be the request that was on the wire
                with pytest.raises(DriverError) as caught:
                    await t.read(3, 1, 0, 1)
                texts.append(_one_line(caught.value))
            assert texts[-1] == (
                f"cannot open rtu {ptys.client_path}: no such port (adapter unplugged, or "
                "another name: ls /dev/serial/by-id)"
            ), texts
            assert isinstance(caught.value.__cause__, OSError)
            t.close()

    asyncio.run(scenario())


def test_permission_denied(ptys):
    async def scenario():
        with denied(ptys.client_path) as path:
            t = make_transport("rtu", port=path, timeout_s=0.2)
            with pytest.raises(DriverInitError) as caught:
                await t.connect()
        text = _one_line(caught.value)
        assert text.startswith(f"cannot open rtu {path}: permission denied")
        assert "dialout" in text
        assert isinstance(caught.value.__cause__, PermissionError | OSError)

    asyncio.run(scenario())


def test_not_a_serial_port():
    """A path that exists but is no tty (a typo'd /dev/null, a regular file)."""

    async def scenario():
        t = make_transport("rtu", port="/dev/null", timeout_s=0.2)
        with pytest.raises(DriverInitError) as caught:
            await t.connect()
        assert _one_line(caught.value) == "cannot open rtu /dev/null: not a serial port"

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", ["tcp", "rtu_over_tcp"])
def test_tcp_connection_refused(kind):
    port = free_port()

    async def scenario():
        t = make_transport(kind, host="127.0.0.1", port=port, timeout_s=0.3)
        with pytest.raises(DriverInitError) as caught:
            await t.read(3, 1, 0, 1)
        assert _one_line(caught.value) == (
            f"cannot open {kind} 127.0.0.1:{port}: connection refused (nothing listens on port "
            f"{port}: wrong port, or the device's Modbus TCP server is off)"
        )
        assert isinstance(caught.value.__cause__, ConnectionRefusedError)

    asyncio.run(scenario())


def test_tcp_connect_that_is_never_answered():
    """A host that drops the connection attempt (down, firewalled): made on loopback by a
    listener whose accept queue is full, so the kernel drops further SYNs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)

    async def scenario():
        t = make_transport("tcp", host="127.0.0.1", port=port, timeout_s=0.3)
        with pytest.raises(DriverInitError) as caught:
            await t.connect()
        assert _one_line(caught.value) == (
            f"cannot open tcp 127.0.0.1:{port}: no answer within 0.3 s (host down or "
            "unreachable, or a firewall drops the connection)"
        )

    try:
        asyncio.run(scenario())
    finally:
        for sock in (*fillers, listener):
            sock.close()


class TwoRegisters:
    requests = (BusRead(3, 0, 2),)

    def decode(self, device, results, ts):
        return []


def test_bus_runner_reports_the_refusal_once_and_backs_off(refusing_port):
    """In ``run``: every device on the bus goes offline once, with the port's reason, the
    loop survives, and it retries at the backoff rate rather than hammering the port."""
    policy = PollPolicy(
        timeout_s=0.2,
        retries=0,
        offline_after=1,
        backoff_initial_s=0.1,
        backoff_max_s=0.2,
        jitter_s=0.0,
    )

    async def scenario():
        transport = make_transport("rtu", port=refusing_port, parity="E", timeout_s=0.2)
        transport.label("rs485-1", {1: "lv-01", 2: "lv-02"})
        offline = []
        runner = BusRunner(
            "rs485-1",
            transport,
            [DeviceSpec(name, unit, TwoRegisters(), 0.05, policy) for name, unit in UNIT_NAMES],
            sink=lambda result: (
                result.change is not None
                and offline.append((result.device, result.change.online, result.change.reason))
            ),
        )
        runner.start()
        try:
            for _ in range(250):
                if len(offline) == 2:
                    break
                await asyncio.sleep(0.02)
            before = {c.name: c.polls_failed for c in runner.coordinators.values()}
            await asyncio.sleep(1.0)
            after = {c.name: c.polls_failed for c in runner.coordinators.values()}
            assert not runner._task.done()
        finally:
            await runner.stop()
        assert sorted(d for d, online, _ in offline if not online) == ["lv-01", "lv-02"]
        assert all(online is False for _, online, _ in offline)  # once each, never back
        for _, _, reason in offline:
            assert "the port refuses 9600 8E1" in reason, reason
        for name in before:
            # 1 s at a 0.1-0.2 s backoff: at most ~10 attempts, not one every poll interval
            # of 0.05 s (and not the hundreds of a loop without backoff).
            assert 1 <= after[name] - before[name] <= 12, (before, after)
        for c in runner.coordinators.values():
            assert c.state == "offline" and "refuses 9600 8E1" in c.last_error

    asyncio.run(scenario())
