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

import asyncio
import contextlib
import logging
import struct
import zlib
from collections.abc import AsyncIterator, Mapping

import numpy as np

from drivers.sim.ptys import PtyPair
from drivers.sim.server import ServerKind, SimServer, UnitStore

__all__ = ["RTU_TEST_BAUD", "NoiseLoggers", "make_store", "pty_pair", "served_units"]

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


def pty_pair(directory) -> PtyPair:
    """Two linked ptys under ``directory`` (socat): ``with pty_pair(d) as ptys`` starts them
    and stops them on exit (``PtyPair`` is its own context manager)."""
    return PtyPair(directory)


class NoiseLoggers:
    """A minimal noise-logger model (docs/architecture.md protocol) on a ``SimServer``.

    ``add(unit, samples)`` serves int16 ``samples`` as that unit's next recording. A start
    (write 1 to 100, unicast or broadcast) sets status 1, and ``ready_after_s`` later status 2
    with sample count, scale and CRC-32; a write to 110 maps block N into 200..319.
    ``corrupt_crc`` makes a unit publish a wrong checksum; ``fail`` makes it report status 3.
    """

    FS = 4096
    BLOCK = 120

    def __init__(self, server: SimServer, *, ready_after_s: float = 0.0, scale: float = 0.001):
        self.server = server
        self.ready_after_s = ready_after_s
        self.scale = scale
        self.samples: dict[int, np.ndarray] = {}
        self.started: dict[int, list[int]] = {}  # unit -> durations of the starts it saw
        self.corrupt_crc: set[int] = set()
        self.fail: set[int] = set()
        server.on_write = self._on_write

    def add(self, unit: int, samples: np.ndarray) -> UnitStore:
        store = self.server.units.get(unit) or self.server.add_unit(unit)
        store.set_holding(100, [0, 8, self.FS, 0, 0, 0, 0, 0, 0, 0, 0])
        store.set_holding(200, [0] * self.BLOCK)
        store.read_only.add(102)
        self.samples[unit] = np.asarray(samples, dtype=np.int16)
        return store

    def _on_write(self, unit: int, function: int, address: int, values: list) -> int | None:
        if unit not in self.samples:
            return None
        store = self.server.units[unit]
        if address == 100 and values[0] == 1:
            self.started.setdefault(unit, []).append(store.holding[101])
            store.holding[103] = 1
            asyncio.get_running_loop().call_later(self.ready_after_s, self._ready, unit)
        elif address == 110:
            samples = self.samples[unit]
            start = values[0] * self.BLOCK
            chunk = samples[start : start + self.BLOCK].astype(np.uint16)
            words = [int(v) for v in chunk] + [0] * (self.BLOCK - len(chunk))
            store.set_holding(200, words)
        return None

    def _ready(self, unit: int) -> None:
        store = self.server.units[unit]
        if unit in self.fail:
            store.holding[103] = 3
            return
        samples = self.samples[unit]
        crc = zlib.crc32(samples.astype(">i2").tobytes())
        if unit in self.corrupt_crc:
            crc ^= 0x1
        scale_words = struct.unpack(">HH", struct.pack(">f", self.scale))
        n = len(samples)
        store.set_holding(103, [2, n >> 16, n & 0xFFFF, *scale_words, crc >> 16, crc & 0xFFFF])


def profile_store(profile, values: Mapping[str, object] | None = None) -> UnitStore:
    """A unit that identifies as ``profile`` and serves every point (0 unless in ``values``).

    Values are engineering values, encoded with ``drivers.codec`` (so a test can check the
    decode round trip).
    """
    from drivers.codec import encode_value

    store = UnitStore()
    values = values or {}
    setters = {
        "holding": store.set_holding,
        "input": store.set_input,
        "coil": store.set_coils,
        "discrete": store.set_discrete,
    }
    from drivers.planner import plan_profile

    # The planner reads through small gaps between points: serve them (as zeros).
    for request in plan_profile(profile).requests:
        bits = request.function in ("coil", "discrete")
        setters[request.function](request.address, [False if bits else 0] * request.count)
    for check in profile.identification:
        point = check.point
        setters[point.function](point.address, encode_value(point, check.expected))
    for point in profile.points:
        default = "" if point.type == "string" else False if point.type == "bool" else 0
        value = values.get(point.name, default)
        if point.type not in ("string", "bool") and point.valid_range and point.name not in values:
            value = point.valid_range[0]
        words = encode_value(point, value)
        setters[point.function](point.address, [bool(w) for w in words] if point.is_bits else words)
    return store
