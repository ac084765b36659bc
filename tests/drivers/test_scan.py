"""Scans over real loopback TCP and a real socat pty find exactly the units that are there."""

from __future__ import annotations

import asyncio
import socket

import pytest

from drivers.errors import DriverInitError
from drivers.profile import ProfileRegistry
from drivers.scan import parse_unit_ids, scan_units, serial_scan_timeout_s
from drivers.sim.server import UnitFaults, UnitStore
from drivers.transport import make_transport
from tests.helpers.modbus import RTU_TEST_BAUD, profile_store, pty_pair, served_units

REGISTRY = ProfileRegistry()
PROFILES = REGISTRY.all()


def _serve(server, layout):
    for unit, profile in layout.items():
        if profile is None:
            store = UnitStore()
            store.set_holding(0, [1, 2])  # a device we have no profile for
            server.add_unit(unit, store)
        else:
            server.add_unit(unit, profile_store(REGISTRY.get(profile)))


def test_full_tcp_scan_finds_units_and_names_profiles():
    """1-247 over TCP with parallel connections: every served unit, right profile or None."""
    layout = {3: "noise-logger-nl200", 7: "level-radar-lr10", 12: None, 200: "gas-detector-mg4"}

    async def scenario():
        async with served_units({}) as server:
            _serve(server, layout)
            progress = []
            hits = await scan_units(
                lambda: make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=0.2),
                range(1, 248),
                PROFILES,
                timeout_s=0.2,
                workers=32,
                on_progress=lambda done, total, hit: progress.append((done, total)),
            )
        assert {h.unit_id: h.profile for h in hits} == layout
        assert progress[-1] == (247, 247) and len(progress) == 247
        unknown = next(h for h in hits if h.unit_id == 12)
        assert "illegal data address" in unknown.note

    asyncio.run(scenario())


def test_scan_asks_each_register_block_once_per_unit():
    """The presence answer is reused by identification: no request is sent twice to a unit."""
    layout = {3: "noise-logger-nl200", 5: "cover-sensor-mc1", 12: None}

    async def scenario():
        asked: list[tuple[int, int, int, int]] = []
        async with served_units({}) as server:
            _serve(server, layout)
            server.on_read = lambda unit, function, address, count: asked.append(
                (unit, function, address, count)
            )
            hits = await scan_units(
                lambda: make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=0.2),
                range(1, 16),
                PROFILES,
                timeout_s=0.2,
                workers=4,
            )
        assert {h.unit_id: h.profile for h in hits} == layout
        assert {unit for unit, *_ in asked} == set(layout)
        assert len(asked) == len(set(asked)), sorted(asked)

    asyncio.run(scenario())


def test_rtu_scan_on_a_pty(tmp_path):
    """One request at a time on a serial line; cover sensors identify from input registers."""
    layout = {2: "cover-sensor-mc1", 5: "pressure-pt5", 9: "rain-gauge-tb2"}

    async def scenario(ptys):
        async with served_units({}, kind="rtu", serial_port=ptys.server_path) as server:
            _serve(server, layout)
            hits = await scan_units(
                lambda: make_transport(
                    "rtu", port=ptys.client_path, baudrate=RTU_TEST_BAUD, timeout_s=0.1
                ),
                parse_unit_ids("1-10"),
                PROFILES,
                timeout_s=0.1,
                baudrate=RTU_TEST_BAUD,
            )
        assert {h.unit_id: h.profile for h in hits} == layout
        assert all(h.baudrate == RTU_TEST_BAUD for h in hits)
        assert [h.note for h in hits] == ["", "", ""]  # identified: no exception note

    with pty_pair(tmp_path) as ptys:
        asyncio.run(scenario(ptys))


@pytest.mark.parametrize(
    ("code", "present"),
    [(4, False), (10, False), (11, False), (1, True), (6, True)],
)
def test_exception_codes_that_mean_absent(code, present):
    """Gateway 10/11 and pymodbus's unknown-unit 4 are not devices; 1 or busy 6 are."""

    async def scenario():
        async with served_units({}) as server:
            _serve(server, {9: "noise-logger-nl200"})
            server.faults[9] = UnitFaults(exception=code)
            hits = await scan_units(
                lambda: make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=0.2),
                [8, 9],
                PROFILES,
                timeout_s=0.2,
                workers=2,
            )
        assert [h.unit_id for h in hits] == ([9] if present else [])
        if present:
            assert hits[0].profile is None and f"code {code}" in hits[0].note

    asyncio.run(scenario())


def test_nothing_listening_is_an_init_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def scenario():
        with pytest.raises(DriverInitError):
            await scan_units(
                lambda: make_transport("tcp", host="127.0.0.1", port=port, timeout_s=0.2),
                [1, 2],
                PROFILES,
                timeout_s=0.2,
                workers=2,
            )

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1-3", [1, 2, 3]), ("5", [5]), ("3,1-2,3", [1, 2, 3]), ("1-247", list(range(1, 248)))],
)
def test_parse_unit_ids(text, expected):
    assert parse_unit_ids(text) == expected


@pytest.mark.parametrize("text", ["0-3", "1-248", "5-2", "x", "1-", ""])
def test_parse_unit_ids_rejects(text):
    with pytest.raises(ValueError):
        parse_unit_ids(text)


def test_serial_timeouts_shrink_with_baud():
    assert serial_scan_timeout_s(9600) > serial_scan_timeout_s(115200) >= 0.05
    assert serial_scan_timeout_s(9600) < 0.2
