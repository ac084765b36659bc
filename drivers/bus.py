"""One poll loop per bus: serialises its devices (RS-485 is half-duplex), keeps each on schedule.

A ``BusRunner`` owns one ``Transport`` and one ``DeviceCoordinator`` per device on it (Home
Assistant's coordinator shape): the coordinator holds the device's schedule, failure count,
backoff, availability, last error and counters; the runner's single task picks the device
due first, polls it, and lets the coordinator decide when it is due again. Separate buses are
separate runners, so they poll in parallel on the one event loop.

Scheduling (``PollPolicy`` holds the numbers; the config's bus/device settings map onto it):

- a device is first due at a random phase within ``jitter`` of the start, so devices added
  together do not poll in lockstep; after a good poll it is due one ``interval_s`` after the
  previous due time (fixed rate, no drift; a late poll does not pile up catch-up polls);
- each request is retried ``retries`` times after a timeout; an exception reply is not
  retried (the device answered: asking again changes nothing);
- a failed poll before the device is offline keeps the normal interval; after
  ``offline_after`` consecutive failed polls the device is offline and is probed back at
  the backoff rate: ``backoff_initial_s`` doubling up to ``backoff_max_s``; the first good
  poll brings it back online. One dead or slow device costs the bus at most
  ``(retries + 1) * timeout_s`` per probe, so the others keep their schedule.
- availability changes are logged once ("device offline" / "device recovered"), never per
  poll, and reported to ``on_availability``.

Callbacks (all optional, called on the loop, must not block): ``on_reading(Reading)`` per
decoded value, ``on_poll_ok(device, ts)``, ``on_poll_failed(device, reason, ts)``,
``on_availability(device, online, reason, ts)`` (only for online <-> offline, and for a
device that is offline from the start; a first good poll is just ``on_poll_ok``).

Recordings share the bus: ``runner.shared_transport()`` is a ``Transport`` that takes the bus
for one request at a time, so a long block transfer interleaves with polling; ``async with
runner.exclusive() as t`` holds the bus for a short sequence that must not be split.

The clock is injected (``clock``: monotonic seconds for scheduling, ``wall``: epoch seconds
for timestamps, ``rng`` for jitter, ``sleep`` to wait for the next due time) so that
scheduling logic is tested without real waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from drivers.errors import DriverError, DriverTimeout, ModbusExceptionResponse
from drivers.model import Quality, Reading
from drivers.planner import ReadPlan, plan_profile
from drivers.profile import Point, Profile
from drivers.transport import FUNCTION_NAMES, READ_FUNCTION_OF_TABLE, Transport

__all__ = [
    "BusRead",
    "BusRunner",
    "DeviceCoordinator",
    "DeviceSpec",
    "PollPlan",
    "PollPolicy",
    "ProfilePollPlan",
]

log = structlog.get_logger("drivers.bus")

DEFAULT_JITTER_S = 1.0


@dataclass(frozen=True, slots=True)
class BusRead:
    """One Modbus read: ``function`` 1-4, ``count`` registers or bits from ``address``."""

    function: int
    address: int
    count: int

    def describe(self) -> str:
        return f"{FUNCTION_NAMES.get(self.function, self.function)} {self.address}+{self.count}"


class PollPlan(Protocol):
    """What to read from a device and how to turn the answers into readings.

    ``requests`` are read in order each poll; ``decode`` gets one entry per request (the
    values, or ``None`` where the device answered an exception) and returns the readings.
    ``ProfilePollPlan`` is the implementation for device profiles.
    """

    requests: Sequence[BusRead]

    def decode(self, device: str, results: Sequence[list | None], ts: float) -> list[Reading]: ...


class ProfilePollPlan:
    """A ``PollPlan`` from a profile: ``drivers.planner`` merges the points into requests,
    ``drivers.codec`` decodes them (quality from ranges and fault bits).

    One plan per device: it remembers each point's last value, so the points of a block the
    device refused this poll are reported ``STALE`` with that value (``None`` if never read).
    It also remembers the last answers: registers identical to the previous poll (a noise
    logger's summary changes once a night, a closed cover or an idle pump not at all) are
    not decoded again. Decoding is a pure function of the answers, so this is exact.
    """

    def __init__(self, plan: ReadPlan) -> None:
        self.plan = plan
        self.requests = tuple(
            BusRead(READ_FUNCTION_OF_TABLE[r.function], r.address, r.count) for r in plan.requests
        )
        self._index = {id(r): i for i, r in enumerate(plan.requests)}
        self._last: dict[str, object] = {}
        self._last_results: list | None = None
        self._last_decoded: list = []

    @classmethod
    def for_profile(cls, profile: Profile, points: Iterable[Point] | None = None):
        """Plan the profile's enabled points (or ``points``). Raises ``PlanError``."""
        return cls(plan_profile(profile, points))

    @property
    def point_count(self) -> int:
        return len(self.plan.points)

    def decode(self, device: str, results: Sequence[list | None], ts: float) -> list[Reading]:
        """Readings of every point: decoded where its request was answered, ``STALE`` where
        the device refused the request. Raises ``CodecError``."""
        if results == self._last_results:
            decoded = self._last_decoded
        else:
            decoded = self.plan.decode(_Responses(self._index, results))  # type: ignore[arg-type]
            self._last_results = list(results)
            self._last_decoded = decoded
        readings = [
            Reading(device, point.name, value, point.unit, quality, ts)
            for point, value, quality in decoded
        ]
        last = self._last
        if None in results:
            for request, values in zip(self.plan.requests, results, strict=True):
                if values is None:
                    readings.extend(
                        Reading(device, p.name, last.get(p.name), p.unit, Quality.STALE, ts)
                        for p in request.points
                    )
        for reading in readings:
            if reading.quality is not Quality.STALE:
                last[reading.point] = reading.value
        return readings


class _Responses:
    """The planner looks answers up by request; by identity is enough (and cheap) here."""

    __slots__ = ("_index", "_results")

    def __init__(self, index: dict[int, int], results: Sequence[list | None]) -> None:
        self._index = index
        self._results = results

    def get(self, request: object) -> list | None:
        return self._results[self._index[id(request)]]


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """Timeout, retries, offline threshold and backoff of one device (the bus's by default)."""

    timeout_s: float = 0.5
    retries: int = 1
    offline_after: int = 3
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    jitter_s: float = DEFAULT_JITTER_S

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.retries < 0 or self.offline_after < 1:
            raise ValueError("retries must be >= 0 and offline_after >= 1")
        if not 0 < self.backoff_initial_s <= self.backoff_max_s:
            raise ValueError(
                f"backoff needs 0 < initial_s <= max_s, got {self.backoff_initial_s}, "
                f"{self.backoff_max_s}"
            )
        if self.jitter_s < 0:
            raise ValueError(f"jitter_s must be >= 0, got {self.jitter_s}")

    def backoff_s(self, offline_polls: int) -> float:
        """Wait before probe number ``offline_polls`` (1 = the first probe after going offline)."""
        return min(self.backoff_initial_s * 2.0 ** max(offline_polls - 1, 0), self.backoff_max_s)


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One device on a bus: its name, unit id, what to read, how often, and its policy."""

    name: str
    unit: int
    plan: PollPlan
    interval_s: float
    policy: PollPolicy = PollPolicy()

    def __post_init__(self) -> None:
        if not 1 <= self.unit <= 247:
            raise ValueError(f"device {self.name}: unit id {self.unit} is not in 1..247")
        if not self.interval_s > 0:
            raise ValueError(f"device {self.name}: interval_s must be > 0")


class DeviceCoordinator:
    """Schedule, availability and counters of one device. Pure logic: no I/O, no clock reads.

    ``state`` is ``"unknown"`` until the first poll ends, then ``"online"`` or ``"offline"``
    (derived from the consecutive failure count, never stored twice).
    """

    def __init__(self, spec: DeviceSpec, now: float, rng: random.Random | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        jitter = min(spec.policy.jitter_s, spec.interval_s)
        self.next_due = now + (rng or random).uniform(0.0, jitter) if jitter else now
        self.failures = 0  # consecutive failed polls
        self.polled = False
        self.last_error: str | None = None
        self.last_ok_ts: float | None = None
        self.last_readings: list[Reading] = []
        self.polls_ok = 0
        self.polls_failed = 0
        self.requests = 0
        self.timeouts = 0
        self.exceptions = 0

    @property
    def online(self) -> bool:
        return self.failures < self.spec.policy.offline_after

    @property
    def state(self) -> str:
        if not self.polled:
            return "unknown"
        return "online" if self.online else "offline"

    def poll_ok(self, now: float) -> bool:
        """Record a good poll; returns True if the device came back from offline."""
        recovered = self.polled and not self.online
        self.polled = True
        self.failures = 0
        self.polls_ok += 1
        # Fixed rate from the previous due time; after a long stall, restart from now.
        self.next_due = max(self.next_due + self.spec.interval_s, now)
        return recovered

    def poll_failed(self, reason: str, now: float) -> bool:
        """Record a failed poll; returns True if the device just went offline."""
        was_online = self.online or not self.polled
        self.polled = True
        self.failures += 1
        self.polls_failed += 1
        self.last_error = reason
        policy = self.spec.policy
        if self.online:
            self.next_due = max(self.next_due + self.spec.interval_s, now)
            return False
        self.next_due = now + policy.backoff_s(self.failures - policy.offline_after + 1)
        return was_online

    def snapshot(self) -> dict:
        """Counters and state for ``status`` and tests."""
        return {
            "device": self.name,
            "unit": self.spec.unit,
            "state": self.state,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_ok_ts": self.last_ok_ts,
            "polls_ok": self.polls_ok,
            "polls_failed": self.polls_failed,
            "requests": self.requests,
            "timeouts": self.timeouts,
            "exceptions": self.exceptions,
        }


class _PollFailed(Exception):
    """Internal: one poll failed; ``reason`` is the one line that reaches logs and callbacks."""


class BusRunner:
    """The poll loop of one bus. See the module docstring.

    Lifecycle: ``start()`` (creates the task) ... ``await stop()`` (idempotent; closes the
    transport); or ``await run()`` directly. ``await poll_once(name)`` polls one device now
    (for ``probe``) and raises ``DriverError`` when it fails.
    """

    def __init__(
        self,
        name: str,
        transport: Transport,
        devices: Sequence[DeviceSpec],
        *,
        on_reading: Callable[[Reading], None] | None = None,
        on_poll_ok: Callable[[str, float], None] | None = None,
        on_poll_failed: Callable[[str, str, float], None] | None = None,
        on_availability: Callable[[str, bool, str | None, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        names = [d.name for d in devices]
        if len(set(names)) != len(names):
            raise ValueError(f"bus {name}: duplicate device names")
        self.name = name
        self.transport = transport
        self.on_reading = on_reading
        self.on_poll_ok = on_poll_ok
        self.on_poll_failed = on_poll_failed
        self.on_availability = on_availability
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        now = clock()
        self.coordinators: dict[str, DeviceCoordinator] = {
            d.name: DeviceCoordinator(d, now, rng) for d in devices
        }
        self.transactions = 0  # requests that got an answer (values or exception)
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> asyncio.Task:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"bus-{self.name}")
        return self._task

    async def stop(self, *, close_transport: bool = True) -> None:
        """Stop polling (idempotent); close the transport unless told to keep it open."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            # Python 3.11's wait_for (inside pymodbus) can swallow a cancel that races a
            # reply; the flag ends the loop at the next poll, the repeat cancels a sleep.
            while not task.done():
                task.cancel()
                await asyncio.wait([task], timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._stopping = False
        if close_transport:
            self.transport.close()

    async def run(self) -> None:
        """Poll until stopped or cancelled. Never raises for device or link failures."""
        if not self.coordinators:
            await asyncio.Event().wait()
        heap = [(c.next_due, i, c) for i, c in enumerate(self.coordinators.values())]
        heapq.heapify(heap)
        clock = self._clock
        while not self._stopping:
            due, order, coordinator = heap[0]
            wait = due - clock()
            if wait > 0:
                await self._sleep(wait)
                if coordinator.next_due != due:  # polled meanwhile by poll_once
                    heapq.heapreplace(heap, (coordinator.next_due, order, coordinator))
                    continue
            async with self._lock:
                await self._poll(coordinator, defer=True)
            heapq.heapreplace(heap, (coordinator.next_due, order, coordinator))

    # -- polling ----------------------------------------------------------------------
    async def poll_once(self, device: str) -> list[Reading]:
        """Poll ``device`` now, outside its schedule; returns its readings.

        Raises ``KeyError`` (unknown device) or ``DriverError`` (the poll failed; the message
        is the reason). Counts and availability are updated as for a scheduled poll.
        """
        coordinator = self.coordinators[device]
        async with self._lock:
            ok = await self._poll(coordinator)
        if not ok:
            raise DriverError(coordinator.last_error or "poll failed")
        return coordinator.last_readings

    async def _poll(self, c: DeviceCoordinator, *, defer: bool = False) -> bool:
        """Read a device's plan; decode and deliver now, or (``defer``) on the next loop turn.

        Deferring lets the decode run while the bus waits for the next device's answer
        instead of delaying its request: on a busy bus that is the scheduler's whole overhead.
        The schedule and availability are updated at once either way.
        """
        ts = self._wall()
        try:
            results = await self._read_plan(c)
        except _PollFailed as failed:
            self._failed(c, str(failed), ts)
            return False
        if c.poll_ok(self._clock()):
            log.info("device recovered", bus=self.name, device=c.name)
            if self.on_availability is not None:
                self.on_availability(c.name, True, None, ts)
        if defer:
            asyncio.get_running_loop().call_soon(self._deliver, c, results, ts)
            return True
        return self._deliver(c, results, ts)

    def _deliver(self, c: DeviceCoordinator, results: list, ts: float) -> bool:
        try:
            readings = c.spec.plan.decode(c.name, results, ts)
        except DriverError as exc:  # the device answered nonsense (a register out of type)
            c.polls_ok -= 1  # counted when the answer arrived; it was not a good poll
            self._failed(c, f"cannot decode: {exc}", ts)
            return False
        c.last_ok_ts = ts
        c.last_readings = readings
        on_reading = self.on_reading
        if on_reading is not None:
            for reading in readings:
                on_reading(reading)
        if self.on_poll_ok is not None:
            self.on_poll_ok(c.name, ts)
        return True

    def _failed(self, c: DeviceCoordinator, reason: str, ts: float) -> None:
        if c.poll_failed(reason, self._clock()):
            log.warning("device offline", bus=self.name, device=c.name, reason=reason)
            if self.on_availability is not None:
                self.on_availability(c.name, False, reason, ts)
        if self.on_poll_failed is not None:
            self.on_poll_failed(c.name, reason, ts)

    async def _read_plan(self, c: DeviceCoordinator) -> list[list | None]:
        """Read every request of the plan; exceptions leave ``None``, a timeout ends the poll."""
        spec = c.spec
        unit = spec.unit
        timeout_s = spec.policy.timeout_s
        attempts = spec.policy.retries + 1
        read = self.transport.read
        results: list[list | None] = []
        refused: ModbusExceptionResponse | None = None
        for request in spec.plan.requests:
            for attempt in range(attempts):
                c.requests += 1
                try:
                    values = await read(
                        request.function,
                        unit,
                        request.address,
                        request.count,
                        timeout_s=timeout_s,
                    )
                except DriverTimeout:
                    c.timeouts += 1
                    if attempt + 1 < attempts:
                        continue
                    raise _PollFailed(
                        f"no answer from unit {unit} ({request.describe()}, "
                        f"{attempts} x {timeout_s:g} s)"
                    ) from None
                except ModbusExceptionResponse as exc:
                    c.exceptions += 1
                    self.transactions += 1
                    if exc.means_absent:  # a TCP gateway saying the unit is not there
                        raise _PollFailed(f"unit {unit}: {exc.name} (code {exc.code})") from None
                    refused = exc
                    values = None
                except DriverError as exc:  # link lost / cannot open: next poll reopens
                    raise _PollFailed(str(exc)) from None
                else:
                    self.transactions += 1
                results.append(values)
                break
        if refused is not None:
            c.last_error = (
                f"unit {unit}: {refused.name} (code {refused.code}) to "
                f"{FUNCTION_NAMES.get(refused.function or 0, 'request')}"
            )
            if all(r is None for r in results):
                raise _PollFailed(c.last_error)
        return results

    # -- sharing the bus with recordings ----------------------------------------------
    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[Transport]:
        """Hold the bus (no poll runs) for a short sequence of requests."""
        async with self._lock:
            yield self.transport

    def shared_transport(self) -> Transport:
        """A ``Transport`` taking the bus for one request at a time (interleaves with polls)."""
        return _SharedTransport(self)

    def snapshot(self) -> list[dict]:
        return [c.snapshot() for c in self.coordinators.values()]


class _SharedTransport(Transport):
    """The runner's transport, each request under the bus lock."""

    def __init__(self, runner: BusRunner) -> None:
        super().__init__(timeout_s=runner.transport.timeout_s)
        self._runner = runner
        self._inner = runner.transport
        self.kind = self._inner.kind  # type: ignore[misc]
        self.serial = self._inner.serial  # type: ignore[misc]

    @property
    def connected(self) -> bool:
        return self._inner.connected

    @property
    def where(self) -> str:
        return self._inner.where

    async def connect(self) -> None:
        async with self._runner._lock:
            await self._inner.connect()

    def close(self) -> None:
        """The runner owns the link: closing a shared view does nothing."""

    async def read(self, function, unit, address, count, *, timeout_s=None):
        async with self._runner._lock:
            return await self._inner.read(function, unit, address, count, timeout_s=timeout_s)

    async def write_registers(self, unit, address, values, *, timeout_s=None):
        async with self._runner._lock:
            await self._inner.write_registers(unit, address, values, timeout_s=timeout_s)

    async def write_coils(self, unit, address, values, *, timeout_s=None):
        async with self._runner._lock:
            await self._inner.write_coils(unit, address, values, timeout_s=timeout_s)

    async def broadcast_registers(self, address, values):
        async with self._runner._lock:
            await self._inner.broadcast_registers(address, values)
