"""The ``Transport`` interface every Modbus link implements, and the registry of links by name.

In python-can's shape: one small abstract base, drivers chosen by name from ``TRANSPORTS`` and
imported only when asked for (``make_transport("rtu", port="/dev/ttyUSB0")`` never imports the
TCP module). A transport moves requests and answers; it does not retry, back off or schedule:
that is ``drivers.bus``'s job. Every method raises only ``drivers.errors`` types:

- ``DriverInitError``: the link cannot be opened (settings refused, port missing, permission
  denied, connection refused): one line naming the cause, the OS error as ``__cause__``;
- ``DriverTimeout``: no valid answer in time (absent unit, garbled / truncated frame, bad CRC,
  reply from another unit: on a real bus all of these look alike);
- ``ModbusExceptionResponse``: the unit answered with an exception code (decoded by name);
- ``DriverIOError``: the link broke mid-request (it reconnects on the next request).

Lifecycle: ``await t.connect()`` (idempotent), requests, ``t.close()`` (idempotent, sync);
or ``async with t: ...``. A request on a closed transport connects first, so a serial port
that vanished and returned is reopened by the next request, without a restart.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from drivers.errors import DriverInitError
from drivers.wire import WireModel

__all__ = [
    "FUNCTION_NAMES",
    "READ_COILS",
    "READ_DISCRETE_INPUTS",
    "READ_FUNCTION_OF_TABLE",
    "READ_HOLDING_REGISTERS",
    "READ_INPUT_REGISTERS",
    "TRANSPORTS",
    "Transport",
    "make_transport",
    "transport_class",
]

READ_COILS = 1
READ_DISCRETE_INPUTS = 2
READ_HOLDING_REGISTERS = 3
READ_INPUT_REGISTERS = 4

# A register table as profiles name it (``drivers.profile.Function``) -> the code reading it.
READ_FUNCTION_OF_TABLE: dict[str, int] = {
    "coil": READ_COILS,
    "discrete": READ_DISCRETE_INPUTS,
    "holding": READ_HOLDING_REGISTERS,
    "input": READ_INPUT_REGISTERS,
}

FUNCTION_NAMES: dict[int, str] = {
    1: "read coils",
    2: "read discrete inputs",
    3: "read holding registers",
    4: "read input registers",
    5: "write single coil",
    6: "write single register",
    15: "write multiple coils",
    16: "write multiple registers",
}

# name -> "module:Class", imported lazily.
TRANSPORTS: dict[str, str] = {
    "tcp": "drivers.transports.tcp:TcpTransport",
    "rtu": "drivers.transports.rtu:RtuTransport",
    "rtu_over_tcp": "drivers.transports.tcp:RtuOverTcpTransport",
}


class Transport(ABC):
    """One Modbus link (a TCP connection, a serial port, a TCP gateway to a serial bus).

    ``timeout_s`` is the default answer timeout; each request may pass its own (per-device
    timeouts). ``kind`` is the registry name. ``serial`` is True when the link is a real
    half-duplex bus (one request at a time, broadcasts are meaningful, absent units are silent).
    ``bus_name`` and ``unit_names`` (set by ``label``) name the link and its devices in log
    lines; a bare link (a scan) is named by ``where``. ``wire`` is the link's timing
    (``drivers.wire.WireModel``): what each request costs on it, for the bus scheduler and
    for the time an answer is given to arrive.
    """

    kind: ClassVar[str] = ""
    serial: ClassVar[bool] = False

    def __init__(self, *, timeout_s: float = 1.0) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = timeout_s
        self.wire = WireModel.tcp()
        self.bus_name = ""
        self.unit_names: Mapping[int, str] = {}

    def label(self, bus: str, unit_names: Mapping[int, str]) -> None:
        """Name the link for log lines: the gateway's bus name, its devices by unit id."""
        self.bus_name = bus
        self.unit_names = dict(unit_names)

    @property
    @abstractmethod
    def connected(self) -> bool:
        """True while the link is open."""

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the link goes, for messages: ``tcp 127.0.0.1:502``, ``rtu /dev/ttyUSB0``."""

    @abstractmethod
    async def connect(self) -> None:
        """Open the link (idempotent). Raises ``DriverInitError``."""

    @abstractmethod
    def close(self) -> None:
        """Close the link (idempotent, never raises)."""

    @abstractmethod
    async def read(
        self, function: int, unit: int, address: int, count: int, *, timeout_s: float | None = None
    ) -> list[int] | list[bool]:
        """Read ``count`` registers (functions 3, 4) or bits (1, 2) from ``unit``.

        Raises ``DriverTimeout``, ``ModbusExceptionResponse``, ``DriverIOError``,
        ``DriverInitError`` (the link could not be reopened), ``ValueError`` (bad function).
        """

    @abstractmethod
    async def write_registers(
        self, unit: int, address: int, values: Sequence[int], *, timeout_s: float | None = None
    ) -> None:
        """Write holding registers (function 16; 6 for a single one). Raises as ``read``."""

    @abstractmethod
    async def write_coils(
        self, unit: int, address: int, values: Sequence[bool], *, timeout_s: float | None = None
    ) -> None:
        """Write coils (function 15; 5 for a single one). Raises as ``read``."""

    @abstractmethod
    async def broadcast_registers(self, address: int, values: Sequence[int]) -> None:
        """Write holding registers to unit 0: every unit on the bus applies it, none answers.

        Returns once the frame is sent plus the turnaround delay a bus needs before the next
        request. Raises ``DriverIOError`` / ``DriverInitError`` when the link is down.
        """

    async def __aenter__(self) -> Transport:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.where}>"


def transport_class(kind: str) -> type[Transport]:
    """The transport class registered as ``kind``. Raises ``DriverInitError`` if unknown."""
    try:
        target = TRANSPORTS[kind]
    except KeyError:
        known = ", ".join(sorted(TRANSPORTS))
        raise DriverInitError(f"unknown transport {kind!r} (known: {known})") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def make_transport(kind: str, **options: Any) -> Transport:
    """Build (not connect) a transport by registry name with its keyword options.

    Raises ``DriverInitError`` for an unknown kind, ``TypeError`` / ``ValueError`` for options
    the transport does not take.
    """
    return transport_class(kind)(**options)
