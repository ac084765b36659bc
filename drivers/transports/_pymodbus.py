"""The shared part of every transport: one pymodbus async client, reused for every request.

Thin on purpose (the bus runner's throughput depends on it): a request is one dict lookup,
one attribute store (the per-request timeout), one pymodbus call and one ``isError()`` check.
pymodbus's own retries and reconnect loop are switched off (``retries=0``,
``reconnect_delay=0``): ``drivers.bus`` owns retries, backoff and reconnects, with the
field bus's numbers rather than pymodbus's 300 s reconnect cap.
"""

from __future__ import annotations

import asyncio
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

__all__ = ["BROADCAST_TURNAROUND_S", "PymodbusTransport"]

# Modbus over serial line spec: after a broadcast the master waits a "turnaround delay"
# (typically 100-200 ms) so slaves can act before the next request.
BROADCAST_TURNAROUND_S = 0.1


class PymodbusTransport(Transport):
    """A ``Transport`` over one pymodbus async client built by ``_make_client``."""

    broadcast_turnaround_s: float = BROADCAST_TURNAROUND_S

    def __init__(self, *, timeout_s: float = 1.0) -> None:
        super().__init__(timeout_s=timeout_s)
        self._client: ModbusBaseClient | None = None
        self._readers: dict = {}

    @abstractmethod
    def _make_client(self) -> ModbusBaseClient:
        """A new, unconnected pymodbus client for this link."""

    def _after_connect(self) -> None:
        """Hook for link settings that need the open port (RS-485 mode)."""

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def connect(self) -> None:
        if self.connected:
            return
        if self._client is None:
            client = self._make_client()
            self._readers = {
                1: client.read_coils,
                2: client.read_discrete_inputs,
                3: client.read_holding_registers,
                4: client.read_input_registers,
            }
            self._client = client
        self._client.ctx.comm_params.timeout_connect = self.timeout_s
        try:
            ok = await self._client.connect()
        except (OSError, ModbusException) as exc:
            raise DriverInitError(f"cannot open {self.where}: {exc}") from exc
        if not ok:
            raise DriverInitError(f"cannot open {self.where}{self._open_failure_hint()}")
        self._after_connect()

    def _open_failure_hint(self) -> str:
        """Why opening probably failed (pymodbus keeps the reason to its log)."""
        return ""

    def close(self) -> None:
        client, self._client = self._client, None
        self._readers = {}
        if client is not None:
            client.close()

    async def _ready(self, timeout_s: float | None) -> ModbusBaseClient:
        """The open client, reopened if the link dropped, with this request's timeout set."""
        client = self._client
        if client is None or not client.ctx.transport:
            await self.connect()
            client = self._client
            assert client is not None  # connect() opened it or raised
        client.ctx.comm_params.timeout_connect = timeout_s or self.timeout_s
        return client

    async def read(
        self, function: int, unit: int, address: int, count: int, *, timeout_s: float | None = None
    ) -> list[int] | list[bool]:
        await self._ready(timeout_s)
        try:
            reader = self._readers[function]
        except KeyError:
            raise ValueError(f"function {function} is not a read function (1-4)") from None
        try:
            rr = await reader(address, count=count, device_id=unit)
        except ModbusIOException as exc:
            raise DriverTimeout(
                f"unit {unit}: no answer to {FUNCTION_NAMES[function]} {address}+{count}"
            ) from exc
        except (ConnectionException, OSError) as exc:
            raise DriverIOError(f"{self.where}: link lost ({exc})") from exc
        if rr.isError():
            raise ModbusExceptionResponse(rr.exception_code, function=function, unit_id=unit)
        values = rr.registers if function >= 3 else rr.bits[:count]
        if len(values) != count:
            # pymodbus takes a well-formed reply of the wrong length as it is; to the bus it is
            # as unusable as a truncated frame (and must not reach the decoder as a good poll).
            raise DriverTimeout(
                f"unit {unit}: {len(values)} values in the answer to "
                f"{FUNCTION_NAMES[function]} {address}+{count}"
            )
        return values

    async def _write(self, function: int, unit: int, call, timeout_s: float | None) -> None:
        client = await self._ready(timeout_s)
        try:
            rr = await call(client)
        except ModbusIOException as exc:
            raise DriverTimeout(f"unit {unit}: no answer to {FUNCTION_NAMES[function]}") from exc
        except (ConnectionException, OSError) as exc:
            raise DriverIOError(f"{self.where}: link lost ({exc})") from exc
        if rr is not None and rr.isError():
            raise ModbusExceptionResponse(rr.exception_code, function=function, unit_id=unit)

    async def write_registers(
        self, unit: int, address: int, values: Sequence[int], *, timeout_s: float | None = None
    ) -> None:
        words = [int(v) for v in values]
        if len(words) == 1:
            await self._write(
                6, unit, lambda c: c.write_register(address, words[0], device_id=unit), timeout_s
            )
        else:
            await self._write(
                16, unit, lambda c: c.write_registers(address, words, device_id=unit), timeout_s
            )

    async def write_coils(
        self, unit: int, address: int, values: Sequence[bool], *, timeout_s: float | None = None
    ) -> None:
        bits = [bool(v) for v in values]
        if len(bits) == 1:
            await self._write(
                5, unit, lambda c: c.write_coil(address, bits[0], device_id=unit), timeout_s
            )
        else:
            await self._write(
                15, unit, lambda c: c.write_coils(address, bits, device_id=unit), timeout_s
            )

    async def broadcast_registers(self, address: int, values: Sequence[int]) -> None:
        words = [int(v) for v in values]
        await self._write(
            16,
            0,
            lambda c: c.write_registers(address, words, device_id=0, no_response_expected=True),
            None,
        )
        await asyncio.sleep(self.broadcast_turnaround_s)
