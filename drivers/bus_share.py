"""Recordings' view of a bus: a ``Transport`` whose requests are the bus runner's background
work, sent one at a time in the gaps between polls (``drivers.bus.BusRunner.shared_transport``).

Each request becomes a ``BackgroundRequest`` (its price in wire time and the call that sends
it); the runner's loop sends it when ``drivers.bus_schedule.choose`` finds a gap that holds it
and hands the outcome back through the request's future.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from drivers.transport import Transport

__all__ = ["BackgroundRequest", "RequestResult", "SharedTransport", "Submit"]

# What a request gives back: the values read, or None for a write or a broadcast.
RequestResult = list[int] | list[bool] | None
# (unit or None for a broadcast, function, registers or bits, the call) -> its result
Submit = Callable[
    [int | None, int, int, Callable[[], Awaitable[RequestResult]]], Awaitable[RequestResult]
]


class BackgroundRequest:
    """One queued request: ``price_s`` (what the bus pays), ``exchange_s`` (the wire part of
    it, to learn the device's turnaround from the rest), ``unit`` (None: a broadcast)."""

    __slots__ = ("call", "exchange_s", "future", "price_s", "unit")

    def __init__(
        self,
        price_s: float,
        exchange_s: float,
        unit: int | None,
        call: Callable[[], Awaitable[RequestResult]],
    ) -> None:
        self.price_s = price_s
        self.exchange_s = exchange_s
        self.unit = unit
        self.call = call
        self.future: asyncio.Future[RequestResult] = asyncio.get_running_loop().create_future()


class SharedTransport(Transport):
    """``inner``'s requests, each through ``submit``; ``on_request`` after each one that
    completed (answered, or sent for a broadcast): progress for a watchdog."""

    def __init__(self, inner: Transport, submit: Submit, on_request: Callable[[], None]) -> None:
        super().__init__(timeout_s=inner.timeout_s)
        self._inner = inner
        self._submit = submit
        self._done = on_request
        self.wire = getattr(inner, "wire", self.wire)
        self.kind = inner.kind  # type: ignore[misc]  # a view of its inner link's kind
        self.serial = inner.serial  # type: ignore[misc]

    @property
    def connected(self) -> bool:
        return self._inner.connected

    @property
    def where(self) -> str:
        return self._inner.where

    async def connect(self) -> None:
        await self._inner.connect()

    def close(self) -> None:
        """The runner owns the link: closing a shared view does nothing."""

    async def read(
        self, function: int, unit: int, address: int, count: int, *, timeout_s: float | None = None
    ) -> list[int] | list[bool]:
        inner = self._inner
        values = await self._submit(
            unit, function, count,
            lambda: inner.read(function, unit, address, count, timeout_s=timeout_s),
        )  # fmt: skip
        self._done()
        assert values is not None  # a read's call returns its values
        return values

    async def write_registers(
        self, unit: int, address: int, values: Sequence[int], *, timeout_s: float | None = None
    ) -> None:
        inner = self._inner
        function = 6 if len(values) == 1 else 16
        await self._submit(
            unit, function, len(values),
            lambda: inner.write_registers(unit, address, values, timeout_s=timeout_s),
        )  # fmt: skip
        self._done()

    async def write_coils(
        self, unit: int, address: int, values: Sequence[bool], *, timeout_s: float | None = None
    ) -> None:
        inner = self._inner
        function = 5 if len(values) == 1 else 15
        await self._submit(
            unit, function, len(values),
            lambda: inner.write_coils(unit, address, values, timeout_s=timeout_s),
        )  # fmt: skip
        self._done()

    async def broadcast_registers(self, address: int, values: Sequence[int]) -> None:
        inner = self._inner
        await self._submit(
            None, 16, len(values), lambda: inner.broadcast_registers(address, values)
        )
        self._done()
