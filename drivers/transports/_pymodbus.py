"""The shared part of every transport: one pymodbus async client, reused for every request.

Thin on purpose (the bus runner's throughput depends on it): a request is one dict lookup,
one attribute store (the per-request timeout), one pymodbus call and one ``isError()`` check,
plus the log context below. pymodbus's own retries and reconnect loop are switched off
(``retries=0``, ``reconnect_delay=0``): ``drivers.bus`` owns retries, backoff and reconnects,
with the field bus's numbers rather than pymodbus's 300 s reconnect cap.

Opening: pymodbus answers a failed open with ``False`` and keeps the reason to its own log,
and lets some errors (a serial port refusing its settings raises ``termios.error``, not an
``OSError``) escape as they are. The client's open call is therefore wrapped so that every
failure reaches ``connect`` with its real cause, which the transport turns into one
``DriverInitError`` line saying what is wrong and what to check (``_open_failure``).

Log context: while a request (or the open) runs, ``drivers.transports._pymodbus_logs.LINK``
names this transport, so pymodbus's own log lines can say which bus and device they are about.
"""

from __future__ import annotations

import asyncio
import errno
import os
import termios
from abc import abstractmethod
from collections.abc import Sequence

from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from drivers.errors import (
    DriverInitError,
    DriverIOError,
    DriverTimeout,
    ModbusExceptionResponse,
)
from drivers.transport import FUNCTION_NAMES, Transport
from drivers.transports._pymodbus_logs import LINK

__all__ = ["PymodbusTransport", "os_error_of"]

# What asyncio asks of a socket per read (its transports' ``max_size``, 256 KiB by default).
# A buffer that size is mapped and unmapped by malloc for every answer (16 us of CPU per read
# on the development VM against 4 us for 4 KiB, with the daemon's second thread alive); a
# Modbus TCP frame is at most 260 bytes, and a longer read simply takes two.
_READ_SIZE = 4096

# Transaction ids remembered (TCP), to name the device a late answer came from: a ring
# indexed by the id's low bits.
_TRANSACTIONS_REMEMBERED = 16


class _OpenFailed(Exception):
    """Internal: opening the link failed; ``__cause__`` is the real error. Not an
    ``OSError``, so pymodbus lets it through instead of logging it and returning False."""


def os_error_of(exc: BaseException | None) -> tuple[int | None, str]:
    """The errno and its text behind ``exc``, following ``__cause__`` / ``__context__``.

    pyserial wraps ``OSError`` / ``termios.error`` in its own exceptions, sometimes without
    the errno (``Could not configure port: (25, ...)``). ``(None, str(exc))`` when none is
    found.
    """
    seen = exc
    while seen is not None:
        code = getattr(seen, "errno", None)
        if isinstance(seen, termios.error) and seen.args and isinstance(seen.args[0], int):
            code = seen.args[0]
        if isinstance(code, int):
            return code, os.strerror(code)
        seen = seen.__cause__ or seen.__context__
    return None, str(exc)


class PymodbusTransport(Transport):
    """A ``Transport`` over one pymodbus async client built by ``_make_client``.

    pymodbus starts an answer's timeout when it hands the request to the link, so the wait
    it is given is ``timeout_s`` plus the request's own wire time (``self.wire``): on a
    9600-baud line a 120-register answer alone takes 0.28 s. An answer to another function
    than the one asked (a late answer to an earlier request: pymodbus's RTU framing has no
    transaction id to tell them apart) counts as no answer.
    """

    def __init__(self, *, timeout_s: float = 1.0) -> None:
        super().__init__(timeout_s=timeout_s)
        self._client: ModbusBaseClient | None = None
        self._readers: dict = {}
        self.unit_in_flight: int | None = None  # for log lines, see _pymodbus_logs
        self._recent: list[tuple[int, int] | None] = [None] * _TRANSACTIONS_REMEMBERED

    @abstractmethod
    def _make_client(self) -> ModbusBaseClient:
        """A new, unconnected pymodbus client for this link."""

    def _after_connect(self) -> None:
        """Hook for link settings that need the open port (RS-485 mode)."""

    def _open_failure(self, exc: BaseException) -> str:
        """Why opening failed, for an operator: the transports name the causes they know."""
        code, text = os_error_of(exc)
        return f"{text} ({errno.errorcode.get(code, code)})" if code is not None else text

    def _failed_open_cleanup(self, exc: BaseException) -> None:
        """Hook: release what a failed open left behind."""

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def connect(self) -> None:
        if self.connected:
            return
        if self._client is None:
            client = self._make_client()
            _report_open_errors(client)
            self._readers = {
                1: client.read_coils,
                2: client.read_discrete_inputs,
                3: client.read_holding_registers,
                4: client.read_input_registers,
            }
            self._client = client
        self._client.ctx.comm_params.timeout_connect = self.timeout_s
        # The link's reader callbacks are registered during the open: they keep this context,
        # so pymodbus lines logged on a late answer name this link too.
        token = LINK.set(self)
        try:
            ok = await self._client.connect()
        except _OpenFailed as failed:
            cause = failed.__cause__ or failed
            self._failed_open_cleanup(cause)
            reason = self._open_failure(cause)
            raise DriverInitError(f"cannot open {self.where}: {reason}") from cause
        except (OSError, ModbusException) as exc:
            raise DriverInitError(f"cannot open {self.where}: {exc}") from exc
        finally:
            LINK.reset(token)
        if not ok:  # pymodbus's connect timeout: the only failure it still answers with False
            raise DriverInitError(
                f"cannot open {self.where}: no answer within {self.timeout_s:g} s "
                "(host down or unreachable, or a firewall drops the connection)"
            )
        transport = self._client.ctx.transport
        if hasattr(transport, "max_size"):  # asyncio's socket transports (not serial ports)
            transport.max_size = _READ_SIZE  # type: ignore[union-attr]
        self._after_connect()

    def close(self) -> None:
        client, self._client = self._client, None
        self._readers = {}
        if client is not None:
            client.close()

    async def _ready(self, timeout_s: float | None, wire_s: float) -> ModbusBaseClient:
        """The open client, reopened if the link dropped, with this request's timeout set:
        the answer's time on top of the request's ``wire_s`` on the wire."""
        client = self._client
        if client is None or not client.ctx.transport:
            await self.connect()
            client = self._client
            assert client is not None  # connect() opened it or raised
        client.ctx.comm_params.timeout_connect = (timeout_s or self.timeout_s) + wire_s
        return client

    def unit_of_transaction(self, transaction_id: int) -> int | None:
        """The unit a recent request with this (TCP) transaction id went to, if remembered."""
        entry = self._recent[transaction_id % _TRANSACTIONS_REMEMBERED]
        return entry[1] if entry is not None and entry[0] == transaction_id else None

    def _request_done(self, client: ModbusBaseClient, unit: int) -> None:
        # The transaction lock makes next_tid the id the finished request used.
        tid = client.ctx.next_tid
        self._recent[tid % _TRANSACTIONS_REMEMBERED] = (tid, unit)

    async def read(
        self, function: int, unit: int, address: int, count: int, *, timeout_s: float | None = None
    ) -> list[int] | list[bool]:
        if function not in _READ_FUNCTIONS:
            raise ValueError(f"function {function} is not a read function (1-4)")
        client = await self._ready(timeout_s, self.wire.exchange_s(function, count))
        reader = self._readers[function]
        self.unit_in_flight = unit
        token = LINK.set(self)
        try:
            rr = await reader(address, count=count, device_id=unit)
        except ModbusIOException as exc:
            raise DriverTimeout(
                f"unit {unit}: no answer to {FUNCTION_NAMES[function]} {address}+{count}"
            ) from exc
        except (ConnectionException, OSError) as exc:
            raise DriverIOError(f"{self.where}: link lost ({exc})") from exc
        finally:
            LINK.reset(token)
            self._request_done(client, unit)
        _check_answer(rr, function, unit)
        values = rr.registers if function >= 3 else rr.bits[:count]
        if len(values) != count:
            # pymodbus takes a well-formed reply of the wrong length as it is; to the bus it is
            # as unusable as a truncated frame (and must not reach the decoder as a good poll).
            raise DriverTimeout(
                f"unit {unit}: {len(values)} values in the answer to "
                f"{FUNCTION_NAMES[function]} {address}+{count}"
            )
        return values

    async def _write(
        self, function: int, unit: int, count: int, call, timeout_s: float | None
    ) -> None:
        client = await self._ready(timeout_s, self.wire.exchange_s(function, count))
        self.unit_in_flight = unit
        token = LINK.set(self)
        try:
            rr = await call(client)
        except ModbusIOException as exc:
            raise DriverTimeout(f"unit {unit}: no answer to {FUNCTION_NAMES[function]}") from exc
        except (ConnectionException, OSError) as exc:
            raise DriverIOError(f"{self.where}: link lost ({exc})") from exc
        finally:
            LINK.reset(token)
            self._request_done(client, unit)
        if rr is not None:
            _check_answer(rr, function, unit)

    async def write_registers(
        self, unit: int, address: int, values: Sequence[int], *, timeout_s: float | None = None
    ) -> None:
        words = [int(v) for v in values]
        if len(words) == 1:
            await self._write(
                6, unit, 1, lambda c: c.write_register(address, words[0], device_id=unit),
                timeout_s,
            )  # fmt: skip
        else:
            await self._write(
                16, unit, len(words),
                lambda c: c.write_registers(address, words, device_id=unit), timeout_s,
            )  # fmt: skip

    async def write_coils(
        self, unit: int, address: int, values: Sequence[bool], *, timeout_s: float | None = None
    ) -> None:
        bits = [bool(v) for v in values]
        if len(bits) == 1:
            await self._write(
                5, unit, 1, lambda c: c.write_coil(address, bits[0], device_id=unit), timeout_s
            )
        else:
            await self._write(
                15, unit, len(bits), lambda c: c.write_coils(address, bits, device_id=unit),
                timeout_s,
            )  # fmt: skip

    async def broadcast_registers(self, address: int, values: Sequence[int]) -> None:
        words = [int(v) for v in values]
        await self._write(
            16,
            0,
            len(words),
            lambda c: c.write_registers(address, words, device_id=0, no_response_expected=True),
            None,
        )
        await asyncio.sleep(self.wire.broadcast_wait_s)


_READ_FUNCTIONS = frozenset((1, 2, 3, 4))


def _check_answer(rr, function: int, unit: int) -> None:
    """Raise for an exception answer, or an answer to another function (a late one)."""
    if rr.function_code & 0x7F != function:
        raise DriverTimeout(
            f"unit {unit}: answer to function {rr.function_code & 0x7F} (a late answer to an "
            f"earlier request) instead of {FUNCTION_NAMES.get(function, function)}"
        )
    if rr.isError():
        raise ModbusExceptionResponse(rr.exception_code, function=function, unit_id=unit)


def _report_open_errors(client: ModbusBaseClient) -> None:
    """Make the client's open call raise ``_OpenFailed`` from whatever opening raised
    (``OSError``, pyserial's ``SerialException`` and ``ValueError``, ``termios.error``)."""
    ctx = client.ctx
    create = ctx.call_create  # set once when the client is built (pymodbus 3.x)

    async def create_reporting_errors():
        try:
            return await create()
        except Exception as exc:  # the boundary: every cause is described by the transport
            raise _OpenFailed() from exc

    ctx.call_create = create_reporting_errors
