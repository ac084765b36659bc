"""Every transport against a real simulated bus: loopback TCP, RTU over TCP, a socat pty."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from drivers.errors import (
    DriverError,
    DriverInitError,
    DriverIOError,
    DriverTimeout,
    ModbusExceptionResponse,
)
from drivers.transport import TRANSPORTS, Transport, make_transport, transport_class
from drivers.transports import _pymodbus
from tests.helpers.modbus import RTU_TEST_BAUD, pty_pair, served_units
from tests.helpers.net import free_port

UNITS = {
    1: {
        "holding": {0: [1, 2, 3], 100: [0, 0]},
        "input": {5: [500, 501]},
        "coils": {0: [True, False, True]},
        "discrete": {0: [False, True]},
    },
    2: {"holding": {0: [9, 9, 9], 100: [0, 0]}},
}


@contextlib.asynccontextmanager
async def bus(kind: str, tmp_path):
    """A served bus and a connected transport of ``kind`` to it."""
    if kind == "rtu":
        with pty_pair(tmp_path) as ptys:
            async with served_units(UNITS, kind="rtu", serial_port=ptys.server_path) as server:
                transport = make_transport(
                    "rtu", port=ptys.client_path, baudrate=RTU_TEST_BAUD, timeout_s=0.3
                )
                async with transport:
                    yield server, transport
        return
    async with served_units(UNITS, kind=kind) as server:
        transport = make_transport(kind, host="127.0.0.1", port=server.port, timeout_s=0.3)
        async with transport:
            yield server, transport


KINDS = ["tcp", "rtu_over_tcp", "rtu"]


@pytest.mark.parametrize("kind", KINDS)
def test_reads_every_table(kind, tmp_path):
    """Functions 1-4 return registers or bits, trimmed to the count asked."""

    async def scenario():
        async with bus(kind, tmp_path) as (_, t):
            assert await t.read(3, 1, 0, 3) == [1, 2, 3]
            assert await t.read(4, 1, 5, 2) == [500, 501]
            assert await t.read(1, 1, 0, 3) == [True, False, True]
            assert await t.read(2, 1, 0, 2) == [False, True]
            assert await t.read(3, 2, 1, 1) == [9]

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_errors_are_mapped_to_driver_errors(kind, tmp_path):
    """An exception reply is decoded by name; an absent unit is a DriverTimeout."""

    async def scenario():
        async with bus(kind, tmp_path) as (_, t):
            with pytest.raises(ModbusExceptionResponse) as caught:
                await t.read(3, 1, 50, 1)
            assert caught.value.code == 2
            assert caught.value.name == "illegal data address"
            assert "unit 1" in str(caught.value)
            with pytest.raises(DriverTimeout) as timeout:
                await t.read(3, 9, 0, 1, timeout_s=0.1)
            assert isinstance(timeout.value, TimeoutError)
            # the link is usable right after
            assert await t.read(3, 2, 0, 1) == [9]
            with pytest.raises(ValueError):
                await t.read(7, 1, 0, 1)

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_short_answer_is_not_a_good_read(kind, tmp_path):
    """A well-formed reply with fewer registers than asked is refused like a truncated one."""
    from drivers.sim.server import UnitFaults

    async def scenario():
        async with bus(kind, tmp_path) as (server, t):
            server.faults[1] = UnitFaults(short=True)
            with pytest.raises(DriverTimeout, match="2 values in the answer"):
                await t.read(3, 1, 0, 3)
            server.faults.clear()
            assert await t.read(3, 1, 0, 3) == [1, 2, 3]

    asyncio.run(scenario())


@pytest.mark.parametrize(("baudrate", "answered"), [(115200, False), (1200, True)])
def test_an_answer_gets_its_time_on_the_wire_on_top_of_the_timeout(baudrate, answered, tmp_path):
    """A device answering 0.4 s after a request with timeout_s 0.3: too late on a fast line,
    in time at 1200 baud, where the request and its 3-register answer alone take 0.22 s
    (pymodbus starts the timeout when the request is handed to the port)."""
    from drivers.sim.server import UnitFaults

    async def scenario():
        with pty_pair(tmp_path) as ptys:
            async with served_units(UNITS, kind="rtu", serial_port=ptys.server_path) as server:
                server.faults[1] = UnitFaults(delay_s=0.4)
                t = make_transport("rtu", port=ptys.client_path, baudrate=baudrate, timeout_s=0.3)
                async with t:
                    if answered:
                        assert await t.read(3, 1, 0, 3) == [1, 2, 3]
                    else:
                        with pytest.raises(DriverTimeout):
                            await t.read(3, 1, 0, 3)

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", ["rtu_over_tcp", "rtu"])
def test_a_late_answer_is_not_taken_for_the_next_requests(kind, tmp_path):
    """RTU frames carry no transaction id: the late answer to a read that timed out, arriving
    while a write waits, is no acknowledgement of that write."""
    from drivers.sim.server import UnitFaults

    async def scenario():
        async with bus(kind, tmp_path) as (server, t):
            server.faults[1] = UnitFaults(delay_s=0.5)
            with pytest.raises(DriverTimeout):
                await t.read(3, 1, 0, 3, timeout_s=0.2)
            with pytest.raises(DriverTimeout, match="late answer"):
                await t.write_registers(1, 100, [7], timeout_s=0.6)
            server.faults.clear()
            await asyncio.sleep(0.5)  # the write's own late answer passes
            assert await t.read(3, 1, 0, 3) == [1, 2, 3]

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_broadcasts_back_to_back_each_land_before_the_next_frame(kind, tmp_path):
    """A device needs the turnaround delay to act on a broadcast (pymodbus's server drops
    the first of two frames arriving while it still applies it): both writes land, and the
    read right behind them is answered."""

    async def scenario():
        async with bus(kind, tmp_path) as (server, t):
            await t.broadcast_registers(101, [3])
            await t.broadcast_registers(100, [1])
            assert await t.read(3, 2, 100, 2) == [1, 3]
            assert [server.units[u].holding[101] for u in (1, 2)] == [3, 3]

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_writes_and_broadcast(kind, tmp_path):
    """Unicast writes are acknowledged; a broadcast lands on every unit without a reply."""

    async def scenario():
        async with bus(kind, tmp_path) as (server, t):
            await t.write_registers(1, 100, [7])
            await t.write_registers(1, 100, [8, 9])
            assert server.units[1].holding[100] == 8
            assert server.units[1].holding[101] == 9
            await t.write_coils(1, 0, [False])
            await t.write_coils(1, 1, [True, False])
            assert [server.units[1].coils[a] for a in range(3)] == [False, True, False]
            await t.broadcast_registers(100, [1, 2])
            for _ in range(50):  # bounded wait: the server applies it on its loop
                if server.units[2].holding[100] == 1:
                    break
                await asyncio.sleep(0.02)
            assert [server.units[u].holding[100] for u in (1, 2)] == [1, 1]
            with pytest.raises(ModbusExceptionResponse):
                await t.write_registers(2, 500, [1])

    asyncio.run(scenario())


def test_connect_failures_are_init_errors(tmp_path):
    """Nothing listening / no such serial port: DriverInitError naming where."""

    async def scenario():
        t = make_transport("tcp", host="127.0.0.1", port=free_port(), timeout_s=0.3)
        with pytest.raises(DriverInitError, match=r"127\.0\.0\.1"):
            await t.connect()
        t.close()
        t.close()  # idempotent
        r = make_transport("rtu", port=str(tmp_path / "ttyUSB9"), timeout_s=0.3)
        with pytest.raises(DriverInitError, match="ttyUSB9"):
            await r.read(3, 1, 0, 1)

    asyncio.run(scenario())


def test_registry_is_lazy_and_complete():
    assert set(TRANSPORTS) == {"tcp", "rtu", "rtu_over_tcp"}
    for kind in TRANSPORTS:
        cls = transport_class(kind)
        assert issubclass(cls, Transport) and cls.kind == kind
    with pytest.raises(DriverInitError, match="unknown transport"):
        transport_class("can")
    with pytest.raises(ValueError):
        make_transport("tcp", host="127.0.0.1", port=0)
    with pytest.raises(ValueError):
        make_transport("rtu", port="/dev/null", parity="X")


def test_serial_port_vanishes_and_returns(tmp_path):
    """USB unplug: requests fail with driver errors; after re-plug the same transport reads."""

    async def scenario():
        with pty_pair(tmp_path) as ptys:
            async with served_units(UNITS, kind="rtu", serial_port=ptys.server_path) as server:
                t = make_transport(
                    "rtu", port=ptys.client_path, baudrate=RTU_TEST_BAUD, timeout_s=0.3
                )
                assert await t.read(3, 1, 0, 1) == [1]
                await server.stop()
                ptys.vanish()
                for _ in range(3):
                    with pytest.raises(DriverError):
                        await t.read(3, 1, 0, 1)
                ptys.restore()
                await server.start()
                for _ in range(50):  # bounded: the pty and server need a moment
                    try:
                        values = await t.read(3, 1, 0, 1)
                        break
                    except (DriverIOError, DriverInitError):
                        await asyncio.sleep(0.1)
                else:
                    pytest.fail("transport never reopened the returned port")
                assert values == [1]
                t.close()

    asyncio.run(scenario())


def test_busy_serial_port_says_so(tmp_path):
    """pyserial opens exclusively: a second opener is told the port is busy."""
    import serial

    async def scenario(ptys):
        holder = serial.Serial(ptys.client_path, exclusive=True)
        try:
            t = make_transport("rtu", port=ptys.client_path, timeout_s=0.3)
            with pytest.raises(DriverInitError, match="port busy"):
                await t.connect()
        finally:
            holder.close()

    with pty_pair(tmp_path) as ptys:
        asyncio.run(scenario(ptys))


def test_rtu_keeps_the_silence_between_frames_on_a_paced_line(tmp_path):
    """Through a line paced at 38400 baud (8N2): every request starts at least 1.75 ms after
    the previous answer's last bit on the wire, and never over a device's answer."""
    from drivers.sim.paced_line import PacedLine, Relay
    from drivers.sim.ptys import PtyPair

    async def scenario(link):
        async with served_units(UNITS, kind="rtu", serial_port=ptys.server_path):
            t = make_transport("rtu", port=str(link), baudrate=38400, stopbits=2, timeout_s=0.5)
            async with t:
                for _ in range(10):
                    assert await t.read(3, 1, 0, 3) == [1, 2, 3]
                    await t.write_registers(1, 100, [5])

    with PtyPair(tmp_path, server_name="sim", client_name="dev") as ptys:
        line = PacedLine(ptys.client_path, tmp_path / "gw", baudrate=38400)
        with Relay([line]):
            asyncio.run(scenario(tmp_path / "gw"))
    frames = line.frames
    assert [f.side for f in frames] == ["master", "device"] * 20
    silences = [b.start - a.end for a, b in zip(frames[1::2], frames[2::2], strict=False)]
    assert min(silences) >= 0.00175
    assert line.wire.collisions == 0


@pytest.mark.parametrize("kind", ["tcp", "rtu_over_tcp"])
def test_socket_reads_are_small_and_an_answer_spans_several(kind, monkeypatch):
    """asyncio reads a socket 256 KiB at a time unless told otherwise: a buffer malloc maps
    and unmaps for every answer. The socket transports ask for ``_READ_SIZE``; an answer
    longer than one read (125 registers in 16-byte reads here) is put together from several."""
    monkeypatch.setattr(_pymodbus, "_READ_SIZE", 16)
    registers = [(i * 257) % 65536 for i in range(125)]

    async def scenario():
        async with served_units({1: {"holding": {0: registers}}}, kind=kind) as server:
            transport = make_transport(kind, host="127.0.0.1", port=server.port, timeout_s=0.5)
            async with transport:
                assert transport._client.ctx.transport.max_size == 16
                assert await transport.read(3, 1, 0, 125) == registers
                assert await transport.read(3, 1, 100, 25) == registers[100:]

    asyncio.run(scenario())
