"""A simulated Modbus bus: several unit ids behind one endpoint, behaving like a real bus.

``SimServer`` wraps pymodbus's server (TCP, RTU over a serial pty, RTU over TCP) around a
register store of our own, so that device models can react to writes and so that the bus
behaves like a field bus rather than like pymodbus's defaults:

- a unit that is not served answers with **silence** (the master times out), not with
  exception 4 as pymodbus 3.16 would;
- a write to unit 0 is a **broadcast**: applied to every served unit, no reply;
- a register a unit lacks answers exception 2 (illegal data address), as real devices do.

Usage::

    server = SimServer(kind="tcp")                 # or "rtu_over_tcp", or "rtu" + serial_port=
    unit = server.add_unit(1)
    unit.set_holding(100, [0, 8, 4096])            # addresses 100..102
    server.on_write = lambda unit_id, function, address, values: ...
    await server.start()                           # binds 127.0.0.1:<free port>
    print(server.port)
    ...
    await server.stop()

``ThreadedSimServer`` runs the same server on its own event loop in a daemon thread (for
benchmarks and synchronous tests). Faults for bus-fault tests are set per unit with
``server.faults[unit_id] = UnitFaults(...)`` (late answers, silence, exception replies,
garbled / truncated frames, bad CRC, replies carrying the wrong unit id).

Hooks run on the server's event loop; they may change any unit's store (a noise logger
mapping a recording block into its window on a write to the block index, say):
``on_write(unit_id, function, address, values)`` after a write was stored (broadcasts call it
once per unit) and ``on_read(unit_id, function, address, count)`` before a read is answered.
A hook returning an int answers that request with that Modbus exception code instead.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerRTU, FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import SimData, SimDevice

__all__ = [
    "READ_FUNCTIONS",
    "ServerKind",
    "SimServer",
    "ThreadedSimServer",
    "UnitFaults",
    "UnitStore",
]

ServerKind = Literal["tcp", "rtu", "rtu_over_tcp"]
Table = Literal["coils", "discrete", "holding", "input"]

# Modbus function code -> the table it touches.
_TABLE_OF_FUNCTION: dict[int, Table] = {
    1: "coils",
    5: "coils",
    15: "coils",
    2: "discrete",
    3: "holding",
    6: "holding",
    16: "holding",
    22: "holding",
    23: "holding",
    4: "input",
}
READ_FUNCTIONS = frozenset({1, 2, 3, 4})

WriteHook = Callable[[int, int, int, list[int] | list[bool]], int | None]
ReadHook = Callable[[int, int, int, int], int | None]


class UnitStore:
    """The four Modbus tables of one simulated unit, sparse: unset addresses are absent.

    Values are plain ints (registers, 0..65535) and bools (coils, discrete inputs). Reading
    or writing any address that was never set answers exception 2, like a device that lacks
    the register. ``read_only`` holding addresses answer exception 2 to writes.
    """

    def __init__(self) -> None:
        self.coils: dict[int, bool] = {}
        self.discrete: dict[int, bool] = {}
        self.holding: dict[int, int] = {}
        self.input: dict[int, int] = {}
        self.read_only: set[int] = set()

    def table(self, name: Table) -> dict:
        return getattr(self, name)

    def set_holding(self, address: int, values: Iterable[int]) -> None:
        _set_words(self.holding, address, values)

    def set_input(self, address: int, values: Iterable[int]) -> None:
        _set_words(self.input, address, values)

    def set_coils(self, address: int, values: Iterable[bool] | Iterable[int]) -> None:
        for offset, value in enumerate(values):
            self.coils[address + offset] = bool(value)

    def set_discrete(self, address: int, values: Iterable[bool] | Iterable[int]) -> None:
        for offset, value in enumerate(values):
            self.discrete[address + offset] = bool(value)

    def get(self, name: Table, address: int, count: int) -> list | None:
        """Values at ``address .. address+count-1``, or None if any of them is unset."""
        table = self.table(name)
        try:
            return [table[a] for a in range(address, address + count)]
        except KeyError:
            return None


def _set_words(table: dict[int, int], address: int, values: Iterable[int]) -> None:
    for offset, value in enumerate(values):
        if not 0 <= value <= 0xFFFF:
            raise ValueError(f"register {address + offset}: {value} is not a 16-bit word")
        table[address + offset] = value


@dataclass(slots=True)
class UnitFaults:
    """Misbehaviour of one unit, for bus-fault tests (mutable: flip fields while serving).

    ``delay_s`` answers late; ``silent`` never answers; ``exception`` answers every request
    with that Modbus exception code; ``garble`` replaces the reply with noise of the same
    length; ``bad_crc`` corrupts the RTU checksum; ``truncate`` sends only the first half of
    the reply; ``reply_unit`` answers carrying another unit id; ``short`` answers a register
    read with one register fewer than asked, in a well-formed frame (a buggy gateway).
    """

    delay_s: float = 0.0
    silent: bool = False
    exception: int | None = None
    garble: bool = False
    bad_crc: bool = False
    truncate: bool = False
    reply_unit: int | None = None
    short: bool = False


class _BusContext:
    """The datastore pymodbus's request handler calls (``ModbusServerContext``'s shape)."""

    def __init__(self, owner: SimServer) -> None:
        self._owner = owner

    def device_ids(self) -> list[int]:
        return list(self._owner.units)

    async def async_getValues(self, device_id: int, func_code: int, address: int, count: int = 1):
        owner = self._owner
        store = await owner._enter(device_id)
        if isinstance(store, ExcCodes):
            return store
        if owner.on_read is not None and func_code in READ_FUNCTIONS:
            code = owner.on_read(device_id, func_code, address, count)
            if code:
                return ExcCodes(code)
        table = _TABLE_OF_FUNCTION.get(func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        values = store.get(table, address, count)
        return ExcCodes.ILLEGAL_ADDRESS if values is None else values

    async def async_setValues(self, device_id: int, func_code: int, address: int, values):
        owner = self._owner
        store = await owner._enter(device_id)
        if isinstance(store, ExcCodes):
            return store
        table_name = _TABLE_OF_FUNCTION.get(func_code)
        if table_name is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if not isinstance(values, list):
            values = [values]
        table = store.table(table_name)
        span = range(address, address + len(values))
        if any(a not in table for a in span):
            return ExcCodes.ILLEGAL_ADDRESS
        if table_name == "holding" and any(a in store.read_only for a in span):
            return ExcCodes.ILLEGAL_ADDRESS
        for a, value in zip(span, values, strict=True):
            table[a] = bool(value) if table_name == "coils" else int(value)
        if owner.on_write is not None:
            code = owner.on_write(device_id, func_code, address, list(values))
            if code:
                return ExcCodes(code)
        return None


class SimServer:
    """Several simulated units behind one endpoint. See the module docstring for usage.

    ``kind``: ``"tcp"`` (MBAP framing on loopback TCP), ``"rtu_over_tcp"`` (RTU frames on
    TCP) or ``"rtu"`` (RTU frames on ``serial_port``, e.g. one end of a socat pty pair).
    ``port=0`` binds a free port; read the bound one from ``.port`` after ``start()``.
    """

    def __init__(
        self,
        kind: ServerKind = "tcp",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        serial_port: str | None = None,
        baudrate: int = 19200,
        units: Mapping[int, UnitStore] | None = None,
    ) -> None:
        if kind not in ("tcp", "rtu", "rtu_over_tcp"):
            raise ValueError(f"unknown server kind {kind!r}")
        if kind == "rtu" and not serial_port:
            raise ValueError("an rtu server needs serial_port")
        self.kind: ServerKind = kind
        self.host = host
        self.port = port
        self.serial_port = serial_port
        self.baudrate = baudrate
        self.units: dict[int, UnitStore] = dict(units or {})
        self.faults: dict[int, UnitFaults] = {}
        self.on_write: WriteHook | None = None
        self.on_read: ReadHook | None = None
        self.requests = 0  # requests answered or ignored, all units (a cheap activity gauge)
        self._server: ModbusTcpServer | ModbusSerialServer | None = None

    # -- units ------------------------------------------------------------------------
    def add_unit(self, unit_id: int, store: UnitStore | None = None) -> UnitStore:
        """Serve ``unit_id`` (1..247) from ``store`` (a new empty one by default)."""
        if not 1 <= unit_id <= 247:
            raise ValueError(f"unit id {unit_id} is not in 1..247")
        self.units[unit_id] = store if store is not None else UnitStore()
        return self.units[unit_id]

    def remove_unit(self, unit_id: int) -> None:
        """Stop serving ``unit_id``: from now on it is silent, like a device unplugged."""
        self.units.pop(unit_id, None)

    async def _enter(self, unit_id: int) -> UnitStore | ExcCodes:
        """Apply faults that act before the answer: silence (NoSuchId), exception."""
        self.requests += 1
        store = self.units.get(unit_id)
        if store is None:
            raise NoSuchIdException(f"unit {unit_id} not served")
        faults = self.faults.get(unit_id)
        if faults is not None:
            if faults.silent:
                raise NoSuchIdException(f"unit {unit_id} silent")
            if faults.exception:
                return ExcCodes(faults.exception)
        return store

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Start serving on the running loop; returns once the endpoint is listening.

        Raises ``OSError`` when the port cannot be bound or the serial port opened.
        """
        if self._server is not None:
            return
        placeholder = SimDevice(id=1, simdata=[SimData(0)])
        # ignore_missing_devices: an absent unit is silent, as on a real bus;
        # broadcast_enable: unit 0 writes go to every unit, unanswered.
        server: ModbusSerialServer | ModbusTcpServer
        if self.kind == "rtu":
            assert self.serial_port is not None  # __init__ refuses rtu without one
            server = ModbusSerialServer(
                placeholder,
                framer=FramerType.RTU,
                port=self.serial_port,
                baudrate=self.baudrate,
                reconnect_delay=0.2,
                ignore_missing_devices=True,
                broadcast_enable=True,
            )
        else:
            server = ModbusTcpServer(
                placeholder,
                framer=FramerType.SOCKET if self.kind == "tcp" else FramerType.RTU,
                address=(self.host, self.port),
                ignore_missing_devices=True,
                broadcast_enable=True,
            )
        # One context for every unit id, and our handler per connection: pymodbus has no
        # public hook for either, so these replace its own (typed for its own classes).
        server.context = _BusContext(self)  # type: ignore[assignment]
        server.callback_new_connection = functools.partial(self._new_handler, server)  # type: ignore[method-assign]
        if not await server.listen():
            where = self.serial_port if self.kind == "rtu" else f"{self.host}:{self.port}"
            raise OSError(f"simulator cannot listen on {where}")
        if self.kind != "rtu":
            self.port = server.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]  # an asyncio Server
        self._server = server

    async def stop(self) -> None:
        """Stop serving and close every connection (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()

    @property
    def running(self) -> bool:
        return self._server is not None

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- faults on the wire -----------------------------------------------------------
    def _new_handler(self, server) -> ServerRequestHandler:
        """pymodbus's per-connection handler, with our fault hook on its outgoing bytes."""
        handler = ServerRequestHandler(server, None, None, None)
        handler.trace_packet = functools.partial(self._trace_packet, handler)
        return handler

    def _trace_packet(self, handler: ServerRequestHandler, sending: bool, data: bytes) -> bytes:
        if not sending or not self.faults or len(data) < 2:
            return data
        rtu = self.kind != "tcp"
        unit_pos = 0 if rtu else 6
        faults = self.faults.get(data[unit_pos])
        if faults is None:
            return data
        if faults.delay_s > 0:
            # Answer late on the wire (the reply keeps its own unit id and transaction id,
            # which pymodbus's handler would relabel if the delay sat in the datastore).
            late = self._mangle(faults, data, rtu, unit_pos)
            handler.loop.call_later(faults.delay_s, _send_late, handler, late)
            return b""
        return self._mangle(faults, data, rtu, unit_pos)

    @staticmethod
    def _mangle(faults: UnitFaults, data: bytes, rtu: bool, unit_pos: int) -> bytes:
        if faults.short and data[unit_pos + 1] in (3, 4) and data[unit_pos + 2] >= 2:
            # Drop the last register and fix the byte count, MBAP length and CRC to match.
            frame = bytearray(data[:-2] if rtu else data)
            del frame[-2:]
            frame[unit_pos + 2] -= 2
            if rtu:
                frame += FramerRTU.compute_CRC(bytes(frame)).to_bytes(2, "big")
            else:
                frame[4:6] = (len(frame) - 6).to_bytes(2, "big")
            data = bytes(frame)
        if faults.reply_unit is not None:
            frame = bytearray(data)
            frame[unit_pos] = faults.reply_unit
            if rtu:
                body = bytes(frame[:-2])
                frame = bytearray(body + FramerRTU.compute_CRC(body).to_bytes(2, "big"))
            data = bytes(frame)
        if faults.bad_crc and rtu:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        if faults.garble:
            data = os.urandom(len(data))
        if faults.truncate:
            data = data[: max(1, len(data) // 2)]
        return data


def _send_late(handler: ServerRequestHandler, data: bytes) -> None:
    if handler.transport:  # the master may have hung up meanwhile
        handler.transport.write(data)  # type: ignore[attr-defined]  # a stream transport


class ThreadedSimServer:
    """Run a ``SimServer`` on its own event loop in a daemon thread.

    ``start()`` blocks until the endpoint listens (raises what ``SimServer.start`` raises);
    ``stop()`` is idempotent. ``call(fn, *args)`` runs ``fn`` on the server's loop and
    returns its result, for changing stores without racing the handler.
    """

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SimServer:
        if self._thread is not None:
            return self.server
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.server.start())
            except OSError as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.server.stop())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="sim-server", daemon=True)
        self._thread.start()
        started.wait(30)
        if failure:
            self._thread = None
            raise failure[0]
        return self.server

    def call(self, fn: Callable, *args):
        """Run ``fn(*args)`` on the server loop and return the result."""
        assert self._loop is not None, "start() first"

        async def invoke():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(10)

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        thread.join(10)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
