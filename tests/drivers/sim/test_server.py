"""The simulated bus behaves like a real one, checked with a plain pymodbus client over real
loopback TCP and a real socat pty pair."""

from __future__ import annotations

import asyncio

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType

from drivers.sim.server import SimServer, ThreadedSimServer, UnitFaults, UnitStore
from tests.helpers.modbus import RTU_TEST_BAUD, pty_pair, served_units

UNITS = {
    1: {"holding": {0: [1, 2, 3], 100: [0, 8]}, "coils": {0: [True, False]}},
    2: {"holding": {0: [9, 9, 9]}, "input": {10: [42]}},
}


def _tcp_client(server: SimServer, framer=FramerType.SOCKET) -> AsyncModbusTcpClient:
    return AsyncModbusTcpClient(
        "127.0.0.1", port=server.port, framer=framer, timeout=0.3, retries=0
    )


@pytest.mark.parametrize("kind", ["tcp", "rtu_over_tcp"])
def test_reads_and_absent_unit_is_silent(kind):
    """Served units answer their registers; an absent unit times out, never exception 4."""

    async def scenario():
        async with served_units(UNITS, kind=kind) as server:
            framer = FramerType.SOCKET if kind == "tcp" else FramerType.RTU
            client = _tcp_client(server, framer)
            await client.connect()
            try:
                rr = await client.read_holding_registers(0, count=3, device_id=1)
                assert rr.registers == [1, 2, 3]
                rr = await client.read_input_registers(10, count=1, device_id=2)
                assert rr.registers == [42]
                rr = await client.read_coils(0, count=2, device_id=1)
                assert rr.bits[:2] == [True, False]
                with pytest.raises(ModbusIOException):
                    await client.read_holding_registers(0, count=1, device_id=7)
                # the bus still works after the silence
                rr = await client.read_holding_registers(0, count=1, device_id=2)
                assert rr.registers == [9]
            finally:
                client.close()

    asyncio.run(scenario())


def test_missing_register_answers_illegal_address():
    """A register the unit lacks is exception 2, like a real device."""

    async def scenario():
        async with served_units(UNITS) as server:
            client = _tcp_client(server)
            await client.connect()
            try:
                rr = await client.read_holding_registers(50, count=2, device_id=1)
                assert rr.isError() and rr.exception_code == 2
                rr = await client.write_register(50, 1, device_id=1)
                assert rr.isError() and rr.exception_code == 2
            finally:
                client.close()

    asyncio.run(scenario())


def test_broadcast_write_reaches_every_unit_and_calls_hook():
    """A unit-0 write is stored on every unit, unanswered, with the hook called per unit."""

    async def scenario():
        async with served_units(UNITS) as server:
            server.units[2].set_holding(100, [0, 0])
            seen = []

            def on_write(unit_id, function, address, values):
                seen.append((unit_id, function, address, values))
                if address == 100 and values == [1]:
                    server.units[unit_id].set_holding(101, [unit_id * 10])

            server.on_write = on_write
            client = _tcp_client(server)
            await client.connect()
            try:
                await client.write_register(100, 1, device_id=0, no_response_expected=True)
                for _ in range(100):  # bounded: the broadcast is applied asynchronously
                    if len(seen) == 2:
                        break
                    await asyncio.sleep(0.02)
                assert sorted(seen) == [(1, 6, 100, [1]), (2, 6, 100, [1])]
                rr = await client.read_holding_registers(100, count=2, device_id=2)
                assert rr.registers == [1, 20]
            finally:
                client.close()

    asyncio.run(scenario())


def test_hook_can_answer_with_exception():
    """A write hook returning a code answers that exception."""

    async def scenario():
        async with served_units(UNITS) as server:
            server.on_write = lambda unit, fn, address, values: 3 if values == [999] else None
            client = _tcp_client(server)
            await client.connect()
            try:
                rr = await client.write_register(100, 999, device_id=1)
                assert rr.isError() and rr.exception_code == 3
                rr = await client.write_register(100, 5, device_id=1)
                assert not rr.isError()
            finally:
                client.close()

    asyncio.run(scenario())


FAULTS = [
    (UnitFaults(bad_crc=True), "timeout"),
    (UnitFaults(garble=True), "timeout"),
    (UnitFaults(truncate=True), "timeout"),
    (UnitFaults(reply_unit=1), "timeout"),
    (UnitFaults(silent=True), "timeout"),
    (UnitFaults(exception=6), 6),
    (UnitFaults(delay_s=0.4), "timeout"),  # late: its answer lands during later requests
]


def test_rtu_pty_faults_hit_only_the_faulty_unit(tmp_path):
    """Over a real pty: each fault spoils unit 2's answer while unit 1 keeps answering."""

    async def scenario(ptys):
        async with served_units(UNITS, kind="rtu", serial_port=ptys.server_path) as server:
            client = AsyncModbusSerialClient(
                ptys.client_path, baudrate=RTU_TEST_BAUD, timeout=0.3, retries=0
            )
            assert await client.connect()
            try:
                for faults, expected in FAULTS:
                    server.faults[2] = faults
                    if expected == "timeout":
                        with pytest.raises(ModbusIOException):
                            await client.read_holding_registers(0, count=3, device_id=2)
                    else:
                        rr = await client.read_holding_registers(0, count=3, device_id=2)
                        assert rr.exception_code == expected, faults
                    rr = await client.read_holding_registers(0, count=3, device_id=1)
                    assert rr.registers == [1, 2, 3], faults
                server.faults.clear()
                rr = await client.read_holding_registers(0, count=3, device_id=2)
                assert rr.registers == [9, 9, 9]
            finally:
                client.close()

    with pty_pair(tmp_path) as ptys:
        asyncio.run(scenario(ptys))


def test_threaded_server_serves_from_its_own_thread():
    """The threaded variant listens on a free port and stops cleanly."""
    server = SimServer("tcp")
    store = server.add_unit(5, UnitStore())
    store.set_input(0, [7])
    with ThreadedSimServer(server) as running:
        assert running.port > 0

        async def read():
            client = _tcp_client(running)
            await client.connect()
            try:
                return (await client.read_input_registers(0, count=1, device_id=5)).registers
            finally:
                client.close()

        assert asyncio.run(read()) == [7]


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError):
        SimServer("udp")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SimServer("rtu")
    with pytest.raises(ValueError):
        SimServer().add_unit(0)
    with pytest.raises(ValueError):
        UnitStore().set_holding(0, [70000])
