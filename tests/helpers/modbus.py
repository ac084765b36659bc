"""Real Modbus peers for tests: a served unit set on a free loopback port, a socat pty pair.

    async with served_units({1: {"holding": {0: [1, 2, 3]}}}) as server:
        ... connect to 127.0.0.1:server.port ...

    with pty_pair(tmp_path) as ptys:
        async with served_units(units, kind="rtu", serial_port=ptys.server_path) as server:
            ... an RTU client on ptys.client_path ...

A unit spec maps table name ("holding", "input", "coils", "discrete") to
``{start_address: [values...]}``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Mapping

from drivers.sim.ptys import PtyPair
from drivers.sim.server import ServerKind, SimServer, UnitStore

__all__ = ["RTU_TEST_BAUD", "make_store", "pty_pair", "served_units"]

# A fast baud keeps RTU timings short on a pty (socat ignores the rate anyway).
RTU_TEST_BAUD = 115200

UnitSpec = Mapping[str, Mapping[int, list]]

# pymodbus logs every timeout with a frame dump; tests provoke many on purpose.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def make_store(spec: UnitSpec) -> UnitStore:
    store = UnitStore()
    for table, blocks in spec.items():
        for address, values in blocks.items():
            getattr(store, f"set_{table}")(address, values)
    return store


@contextlib.asynccontextmanager
async def served_units(
    units: Mapping[int, UnitSpec],
    *,
    kind: ServerKind = "tcp",
    serial_port: str | None = None,
) -> AsyncIterator[SimServer]:
    """A started ``SimServer`` serving ``units`` (on 127.0.0.1, a free port, for TCP kinds)."""
    server = SimServer(kind, serial_port=serial_port, baudrate=RTU_TEST_BAUD)
    for unit_id, spec in units.items():
        server.add_unit(unit_id, make_store(spec))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.contextmanager
def pty_pair(directory) -> Iterator[PtyPair]:
    """Two linked ptys under ``directory`` (socat), stopped on exit."""
    pair = PtyPair(directory)
    pair.start()
    try:
        yield pair
    finally:
        pair.stop()
