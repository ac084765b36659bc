"""One poll loop per bus: serialises its devices (RS-485 is half-duplex), keeps each on schedule.

A ``BusRunner`` owns one ``Transport`` and one ``DeviceCoordinator`` per device on it (Home
Assistant's coordinator shape): the coordinator holds the device's schedule, failure count,
backoff, availability, last error and counters; the runner's single task picks the device
due first, polls it, and lets the coordinator decide when it is due again. Separate buses are
separate runners, so they poll in parallel on the one event loop.

Scheduling (``PollPolicy`` holds the numbers; the config's bus/device settings map onto it):

- a device is first due at once (the daemon is ready when every device has been polled once,
  so the first cycle is not held back); after that one ``interval_s`` after the previous
  due time (fixed rate, no drift; a late poll does not pile up catch-up polls). Without
  jitter (``jitter_s`` 0, the default) the polls fall on the interval's grid of the clock
  (the multiples of ``interval_s``, as Telegraf's ``round_interval``; a poll after a stall
  or an offline spell returns to it): every device with the same interval, on every bus,
  polls in one phase, a bus polls them back to back, and the buses' answers share the
  process's wake-ups (random phases cost the daemon twice the wake-ups on the benchmark's
  site: docs/benchmarks.md). With ``jitter_s`` the second poll comes one interval plus a
  random phase within it later, so the devices do not poll in lockstep: the daemon sets it
  on serial lines (``edge_agent.bus_setup.poll_policy``), where devices due at once make a
  long alarm chain that must start early;
- each request is retried ``retries`` times after a timeout; an exception reply is not
  retried (the device answered: asking again changes nothing);
- a failed poll before the device is offline keeps the normal interval; after
  ``offline_after`` consecutive failed polls the device is offline and is probed back at
  the backoff rate: ``backoff_initial_s`` doubling up to ``backoff_max_s``; the first good
  poll brings it back online. A probe is one attempt (no retries): a device that has not
  answered ``offline_after`` polls in a row is asked once per backoff, and a lost frame
  only delays its recovery by one backoff. So one dead device costs the bus one
  ``timeout_s`` per probe, and a slow one ``(retries + 1) * timeout_s`` per poll; the
  others keep their schedule.
- availability changes are logged once ("device offline" / "device recovered"), never per
  poll;
- a poll due within ``early_s`` (a tenth of the bus's shortest interval, at most 0.1 s) when
  the bus would otherwise sleep runs at once, early: devices whose phases fall close
  together share one wake-up of the process instead of one each; their due times, and so
  their rate, do not change.

One sink (Telegraf's accumulator): every finished poll, good or failed, becomes one
``drivers.model.PollResult`` (the device, its readings or the failure, the availability
transition it caused, the time) handed to ``sink`` on the loop, which must not block.
Availability is decided here only (``DeviceCoordinator``); a sink reads the transition off the
result (only online <-> offline, and a device offline from the start; a first good poll
carries none).

The bus plans in wire time (``drivers.bus_schedule``): every request is priced by the bytes it
moves at the line's speed (``transport.wire``, a ``drivers.wire.WireModel``) plus each device's
measured turnaround; alarm points (``DeviceSpec.alarm``) are polled on their deadlines first.
Recordings share the bus: ``runner.shared_transport()`` is a ``Transport`` whose requests the
runner sends as background work, one at a time in the gaps between polls, each only when it
ends before the next poll's deadline; so a long block transfer keeps the line busy without
making an alarm poll late. ``async with runner.exclusive() as t`` holds the bus for a short
sequence that must not be split.

The clock is injected (``clock``: monotonic seconds for scheduling, ``wall``: epoch seconds
for timestamps, ``rng`` for jitter, ``sleep`` to wait for the next due time) so that
scheduling logic is tested without real waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from drivers.bus_schedule import Turnarounds, choose
from drivers.bus_share import BackgroundRequest, RequestResult, SharedTransport
from drivers.codec import Value
from drivers.errors import DriverError, DriverIOError, DriverTimeout, ModbusExceptionResponse
from drivers.model import AvailabilityChange, DeviceStatus, PollResult, Quality, Reading
from drivers.planner import ReadPlan, plan_profile
from drivers.profile import Point, Profile
from drivers.transport import FUNCTION_NAMES, READ_FUNCTION_OF_TABLE, Transport
from drivers.wire import WireModel

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

DEFAULT_JITTER_S = 0.0  # devices of one interval poll in one phase: fewer wake-ups
# A poll due within this share of the bus's shortest interval (at most EARLY_MAX_S) when the
# bus would otherwise go to sleep runs at once: a wake-up of the whole process per poll is
# most of what an idle bus costs the daemon, and 0.1 s early changes nothing a 1 s poll says.
EARLY_SHARE = 0.1
EARLY_MAX_S = 0.1

# One request's answer: registers or bits, or None where the device answered an exception.
Answer = list[int] | list[bool] | None


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

    @property
    def requests(self) -> Sequence[BusRead]: ...

    def decode(self, device: str, results: Sequence[Answer], ts: float) -> list[Reading]: ...


class ProfilePollPlan:
    """A ``PollPlan`` from a profile: ``drivers.planner`` merges the points into requests,
    ``drivers.codec`` decodes them (quality from ranges and fault bits).

    One plan per device: it remembers each point's last value, so the points of a block the
    device refused this poll are reported ``STALE`` with that value (``None`` if never read).
    It also remembers the last answers: registers identical to the previous poll (a noise
    logger's summary changes once a night, a closed cover or an idle pump not at all) are
    not decoded again, the whole poll's or (``ReadPlan.decode``'s memo) each point's.
    Decoding is a pure function of the answers, so this is exact.
    """

    def __init__(self, plan: ReadPlan) -> None:
        self.plan = plan
        self.requests = tuple(
            BusRead(READ_FUNCTION_OF_TABLE[r.function], r.address, r.count) for r in plan.requests
        )
        self._index = {id(r): i for i, r in enumerate(plan.requests)}
        self._last: dict[str, Value | None] = {}
        self._last_results: list[Answer] | None = None
        self._last_decoded: list[tuple[Point, Value, Quality]] = []
        self._memo: dict = {}  # point name -> its last registers, flags and decoding

    @classmethod
    def for_profile(
        cls, profile: Profile, points: Iterable[Point] | None = None
    ) -> ProfilePollPlan:
        """Plan the profile's enabled points (or ``points``). Raises ``PlanError``."""
        return cls(plan_profile(profile, points))

    @property
    def point_count(self) -> int:
        return len(self.plan.points)

    def decode(self, device: str, results: Sequence[Answer], ts: float) -> list[Reading]:
        """Readings of every point: decoded where its request was answered, ``STALE`` where
        the device refused the request. Raises ``CodecError``."""
        if results == self._last_results:
            decoded = self._last_decoded
        else:
            decoded = self.plan.decode(_Responses(self._index, results), self._memo)  # type: ignore[arg-type]
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

    def __init__(self, index: dict[int, int], results: Sequence[Answer]) -> None:
        self._index = index
        self._results = results

    def get(self, request: object) -> Answer:
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
    """One device on a bus: its name, unit id, what to read, how often, and its policy.
    ``alarm``: an alarm point (gas, level, pressure, cover, pump station), polled on its
    deadline before anything else on the bus."""

    name: str
    unit: int
    plan: PollPlan
    interval_s: float
    policy: PollPolicy = PollPolicy()
    alarm: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.unit <= 247:
            raise ValueError(f"device {self.name}: unit id {self.unit} is not in 1..247")
        if not self.interval_s > 0:
            raise ValueError(f"device {self.name}: interval_s must be > 0")


class DeviceCoordinator:
    """Schedule, availability and counters of one device. Pure logic: no I/O, no clock reads.

    The one place availability is decided: ``state`` is ``"unknown"`` until the device first
    answers or fails ``offline_after`` polls in a row, then ``"online"`` or ``"offline"``
    (derived from the consecutive failure count, never stored twice); each poll outcome
    returns the ``AvailabilityChange`` it caused, if any.
    ``poll_ok`` / ``poll_failed`` record an outcome and schedule the next poll; the runner
    splits the first into ``answered`` (schedule, at once) and ``succeeded`` (after decoding).
    ``price_s`` is what the next poll costs the bus (kept by the runner), ``late_s`` /
    ``late_max_s`` how late the last / latest poll started against its due time.
    """

    def __init__(self, spec: DeviceSpec, now: float, rng: random.Random | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.interval_s = spec.interval_s
        self.price_s = 0.0
        self.late_s = 0.0
        self.late_max_s = 0.0
        jitter = min(spec.policy.jitter_s, spec.interval_s)
        self.next_due = now
        # No jitter: on the interval's grid. Jittered: a random phase added to the first
        # interval only, then a fixed rate from there (it spreads the phases for good).
        self._on_grid = not jitter
        self._phase = (rng or random).uniform(0.0, jitter) if jitter else 0.0
        self.failures = 0  # consecutive failed polls
        self.polled = False
        self.offline_since: float | None = None  # wall ts of the poll that took it offline
        self.last_error: str | None = None
        self.last_ok_ts: float | None = None
        self.last_readings: tuple[Reading, ...] = ()
        self.polls_ok = 0
        self.polls_failed = 0
        self.requests = 0
        self.timeouts = 0
        self.exceptions = 0

    @property
    def online(self) -> bool:
        return self.failures < self.spec.policy.offline_after

    @property
    def has_answered(self) -> bool:
        """The device has given a good poll at least once (since the start, or before the
        reload that carried its availability over)."""
        return self.last_ok_ts is not None

    @property
    def state(self) -> str:
        """``unknown`` until the device first answers or goes offline: one failed poll of a
        device that never answered says nothing yet, and counting it online would tell
        ``status`` and READY a device works that was never heard."""
        if not self.polled or (self.online and not self.has_answered):
            return "unknown"
        return "online" if self.online else "offline"

    @property
    def urgent(self) -> bool:
        """An alarm point not known to be offline: its deadline comes first on the bus."""
        return self.spec.alarm and self.online

    def poll_ok(self, now: float, ts: float | None = None) -> AvailabilityChange | None:
        """Record a good poll at monotonic ``now`` (wall ``ts``); the change if it came back."""
        self.answered(now)
        return self.succeeded(now if ts is None else ts)

    def poll_failed(
        self, reason: str, now: float, ts: float | None = None
    ) -> AvailabilityChange | None:
        """Record a poll nobody answered; the change if the device just went offline. Due
        again at the normal rate while still online, at the backoff rate once offline."""
        change = self.failed(reason, now if ts is None else ts)
        if self.online:
            self.next_due = self._next_due(now)
        else:
            policy = self.spec.policy
            self.next_due = now + policy.backoff_s(self.failures - policy.offline_after + 1)
        return change

    def answered(self, now: float) -> None:
        """The device answered: due one interval after the previous due time (fixed rate, no
        drift); after a long stall, from now (no burst of catch-up polls)."""
        self.next_due = self._next_due(now)

    def _next_due(self, now: float) -> float:
        """One interval after the previous due time; after a stall, now. On the grid: the
        multiple of the interval nearest to it, a tie going later (a no-op on the grid, the
        way back onto it after the first poll, a probe or a stall)."""
        interval = self.spec.interval_s
        if self._on_grid:
            due = math.floor((self.next_due + interval) / interval + 0.5) * interval
        else:
            phase, self._phase = self._phase, 0.0
            due = self.next_due + interval + phase
        return max(due, now)

    def succeeded(self, ts: float) -> AvailabilityChange | None:
        """Count a good poll (its answers decoded); ``online`` if it was offline."""
        recovered = self.polled and not self.online
        self.polled = True
        self.failures = 0
        self.polls_ok += 1
        self.last_ok_ts = ts
        if not recovered:
            return None
        since, self.offline_since = self.offline_since, None
        return AvailabilityChange(True, offline_s=None if since is None else ts - since)

    def failed(self, reason: str, ts: float) -> AvailabilityChange | None:
        """Count a failed poll (no schedule change: an answer that did not decode was already
        scheduled); ``offline`` if this failure crossed ``offline_after``."""
        was_online = self.online or not self.polled
        self.polled = True
        self.failures += 1
        self.polls_failed += 1
        self.last_error = reason
        if self.online or not was_online:
            return None
        self.offline_since = ts
        return AvailabilityChange(False, reason=reason, failures=self.failures)

    def status(self, bus: str) -> DeviceStatus:
        """Availability and counters for ``status`` (``last_error`` only while failing)."""
        state = self.state
        return DeviceStatus(
            name=self.name,
            bus=bus,
            online=None if state == "unknown" else state == "online",
            last_reading_ts=self.last_ok_ts,
            polls_ok=self.polls_ok,
            polls_failed=self.polls_failed,
            consecutive_failures=self.failures,
            last_error=self.last_error if self.failures else None,
        )

    def carry_availability(self, previous: DeviceCoordinator) -> None:
        """A config reload changed how this device is polled (bus, unit, profile, timing):
        it starts fresh (schedule, counters, failure streak), but from the availability last
        decided for it, so its next change is the one a sink must report: a device that was
        offline comes back with ``online`` on its first good poll and is never reported
        offline a second time; one that was online goes offline only after ``offline_after``
        failures of the new settings. (A device the reload left as it was keeps its whole
        coordinator: ``BusRunner.adopt``.)"""
        self.last_ok_ts = previous.last_ok_ts
        state = previous.state
        if state == "offline":
            self.polled = True
            self.failures = self.spec.policy.offline_after
            self.offline_since = previous.offline_since
            self.last_error = previous.last_error
        elif state == "online":
            self.polled = True


class _PollFailed(Exception):
    """Internal: one poll failed; ``reason`` is the one line that reaches logs and the sink."""


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
        sink: Callable[[PollResult], None] | None = None,
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
        self.sink = sink
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        # Duck-typed transports (tests) without a model cost what Modbus TCP does.
        self.wire: WireModel = getattr(transport, "wire", None) or WireModel.tcp()
        # A measured delay beyond any timeout is a late answer, not a device's turnaround.
        ceiling = max((d.policy.timeout_s for d in devices), default=transport.timeout_s)
        self.turnarounds = Turnarounds(self.wire.turnaround_s, ceiling_s=ceiling)
        now = clock()
        self.coordinators: dict[str, DeviceCoordinator] = {
            d.name: DeviceCoordinator(d, now, rng) for d in devices
        }
        for c in self.coordinators.values():
            c.price_s = self._poll_price(c)
        self.transactions = 0  # requests that got an answer (values or exception)
        # A poll due this soon after the bus's last action runs at once (module docstring).
        self.early_s = min(
            EARLY_MAX_S, EARLY_SHARE * min((d.interval_s for d in devices), default=1.0)
        )
        self._background: deque[BackgroundRequest] = deque()
        self._wake: asyncio.Future[None] | None = None  # resolved: new background work
        # A poll read but not yet decoded (``_poll(defer=True)``), and its loop turn.
        self._deferred: tuple[DeviceCoordinator, list[Answer], float] | None = None
        self._deferred_turn: asyncio.Handle | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> asyncio.Task[None]:
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
        while self._background:  # whoever waits for these hears why, instead of hanging
            request = self._background.popleft()
            if not request.future.done():
                request.future.set_exception(DriverIOError(f"bus {self.name} stopped"))
        if close_transport:
            self.transport.close()

    async def run(self) -> None:
        """Poll until stopped or cancelled; send background requests in the gaps (see
        ``drivers.bus_schedule``). Never raises for device or link failures."""
        devices = list(self.coordinators.values())
        background = self._background
        clock = self._clock
        while not self._stopping:
            while background and background[0].future.done():  # its waiter gave up
                background.popleft()
            now = clock()
            choice = choose(now, devices, background[0].price_s if background else None)
            if choice.action == "wait" and choice.until - now <= self.early_s:
                # Awake, and the next poll is due in a moment: run it now, not after a wake-up
                # of its own (the schedule keeps its due times: the rate does not change).
                ahead = choose(choice.until, devices, None)
                if ahead.action == "poll":
                    choice = ahead
            if choice.action == "poll":
                c = choice.device
                assert c is not None  # a poll choice names its device
                c.late_s = now - c.next_due
                c.late_max_s = max(c.late_max_s, c.late_s)
                async with self._lock:
                    await self._poll(c, defer=True)
                c.price_s = self._poll_price(c)
            elif choice.action == "background":
                request = background.popleft()
                async with self._lock:
                    await self._run_background(request)
                # One loop turn lets the waiter queue its next request (a transfer's next
                # block) before the plan is made again, rather than after a wait begins.
                await asyncio.sleep(0)
            else:
                self._decode_deferred()  # before idling, not on a loop turn of its own
                await self._idle(choice.until - now)

    async def _idle(self, seconds: float) -> None:
        """Wait ``seconds``, or less when background work arrives (``_submit`` resolves the
        wake future). On the real clock the wait is one timer handle on the loop: no task,
        no ``asyncio.wait`` (a bus idles between most polls, so this is per poll); an
        injected ``sleep`` (tests' fake time) runs as a task that resolves the same future."""
        if self._background:
            return
        loop = asyncio.get_running_loop()
        wake = self._wake = loop.create_future()
        try:
            if seconds == math.inf:
                await wake
            elif self._sleep is asyncio.sleep:
                timer = loop.call_later(seconds, _resolve, wake)
                try:
                    await wake
                finally:
                    timer.cancel()
            else:
                sleeper = asyncio.ensure_future(self._sleep(seconds))
                sleeper.add_done_callback(lambda _: _resolve(wake))
                try:
                    await wake
                finally:
                    sleeper.cancel()
        finally:
            self._wake = None

    def _poll_price(self, c: DeviceCoordinator) -> float:
        """What ``c``'s next poll costs the bus: its requests on the wire with the device's
        turnaround; for a failing device, its first request's timeouts."""
        wire, spec = self.wire, c.spec
        requests = spec.plan.requests
        if c.failures and requests:
            first = requests[0]
            attempts = _attempts(c)
            return attempts * (spec.policy.timeout_s + wire.exchange_s(first.function, first.count))
        turnaround = self.turnarounds.of(spec.unit)
        return sum(wire.request_s(r.function, r.count, turnaround) for r in requests)

    # -- polling ----------------------------------------------------------------------
    async def poll_once(self, device: str) -> tuple[Reading, ...]:
        """Poll ``device`` now, outside its schedule; returns its readings.

        Raises ``KeyError`` (unknown device) or ``DriverError`` (the poll failed; the message
        is the reason). Counts, availability and the sink see it as a scheduled poll.
        """
        coordinator = self.coordinators[device]
        async with self._lock:
            result = await self._poll(coordinator)
        if result is None or result.error is not None:
            raise DriverError(coordinator.last_error or "poll failed")
        return result.readings

    async def _poll(self, c: DeviceCoordinator, *, defer: bool = False) -> PollResult | None:
        """Read a device's plan; decode and deliver now, or (``defer``, returns None) on the
        next loop turn, or before the bus idles, whichever comes first.

        Deferring lets the decode run while the bus waits for the next device's answer
        instead of delaying its request: on a busy bus that is the scheduler's whole overhead.
        When the bus idles next (most polls at 1 s), ``run`` decodes at once instead: a loop
        turn of its own per poll would cost more than the decode. The schedule is updated at
        once either way. (An answer that does not decode counts as a failed poll but keeps the
        normal rate: the device does answer.)
        """
        ts = self._wall()
        try:
            results = await self._read_plan(c)
        except _PollFailed as failed:
            reason = str(failed)
            change = c.poll_failed(reason, self._clock(), ts)
            return self._deliver(PollResult(self.name, c.name, ts, error=reason, change=change))
        c.answered(self._clock())
        if defer:
            self._decode_deferred()  # (one at most: an earlier one whose turn has not come)
            self._deferred = (c, results, ts)
            self._deferred_turn = asyncio.get_running_loop().call_soon(self._decode_deferred)
            return None
        return self._decode(c, results, ts)

    def _decode_deferred(self) -> None:
        """Decode and deliver the deferred poll now, if one waits."""
        deferred, self._deferred = self._deferred, None
        if deferred is None:
            return
        if self._deferred_turn is not None:
            self._deferred_turn.cancel()
            self._deferred_turn = None
        self._decode(*deferred)

    def _decode(self, c: DeviceCoordinator, results: list[Answer], ts: float) -> PollResult:
        try:
            readings = tuple(c.spec.plan.decode(c.name, results, ts))
        except DriverError as exc:  # the device answered nonsense (a register out of type)
            reason = f"cannot decode: {exc}"
            change = c.failed(reason, ts)
            return self._deliver(PollResult(self.name, c.name, ts, error=reason, change=change))
        change = c.succeeded(ts)
        c.last_readings = readings
        return self._deliver(PollResult(self.name, c.name, ts, readings, None, change))

    def _deliver(self, result: PollResult) -> PollResult:
        """Log an availability change (once, not per poll), then hand the result on."""
        change = result.change
        if change is not None:
            if change.online:
                log.info("device recovered", bus=self.name, device=result.device)
            else:
                log.warning(
                    "device offline", bus=self.name, device=result.device, reason=change.reason
                )
        if self.sink is not None:
            self.sink(result)
        return result

    async def _read_plan(self, c: DeviceCoordinator) -> list[Answer]:
        """Read every request of the plan; exceptions leave ``None``, a timeout ends the poll."""
        spec = c.spec
        unit = spec.unit
        timeout_s = spec.policy.timeout_s
        attempts = _attempts(c)
        read = self.transport.read
        clock = self._clock
        results: list[Answer] = []
        refused: ModbusExceptionResponse | None = None
        for request in spec.plan.requests:
            for attempt in range(attempts):
                c.requests += 1
                sent = clock()
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
                    self._learn(unit, request.function, request.count, clock() - sent)
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

    def _learn(self, unit: int, function: int, count: int, took_s: float) -> None:
        """An answered request to ``unit`` took ``took_s``: the part beyond the wire time is
        that device's turnaround (with our own latencies: what the bus really pays)."""
        self.turnarounds.observe(unit, took_s - self.wire.exchange_s(function, count))

    # -- sharing the bus with recordings ----------------------------------------------
    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[Transport]:
        """Hold the bus (no poll runs) for a short sequence of requests."""
        async with self._lock:
            yield self.transport

    def shared_transport(self, on_request: Callable[[], None] | None = None) -> Transport:
        """A ``Transport`` whose requests are background work of this bus: each waits for a
        gap in the polling that holds it (see ``drivers.bus_schedule``); without a running
        loop, for the bus lock. ``on_request`` is called after each request that completed
        (answered or sent): a long block transfer is progress, request by request, for a
        watchdog."""
        return SharedTransport(self.transport, self._submit, on_request or _nothing)

    async def _submit(
        self,
        unit: int | None,
        function: int,
        count: int,
        call: Callable[[], Awaitable[RequestResult]],
    ) -> RequestResult:
        """Run one background request (``unit`` None: a broadcast) when the plan allows."""
        wire = self.wire
        if unit is None:
            exchange = price = wire.broadcast_s(count)
        else:
            exchange = wire.exchange_s(function, count)
            price = exchange + self.turnarounds.of(unit)
        if self._task is None or self._task.done():  # no loop to plan with: take the lock
            async with self._lock:
                return await self._timed(unit, exchange, call)
        request = BackgroundRequest(price, exchange, unit, call)
        self._background.append(request)
        if self._wake is not None:
            _resolve(self._wake)
        return await request.future

    async def _run_background(self, request: BackgroundRequest) -> None:
        """Send one queued background request; its outcome goes to its waiter."""
        future = request.future
        try:
            result = await self._timed(request.unit, request.exchange_s, request.call)
        except asyncio.CancelledError:  # the runner stops: the waiter must not hang
            if not future.done():
                future.set_exception(DriverIOError(f"bus {self.name} stopped"))
            raise
        except Exception as exc:  # DriverError, ValueError: the waiter's to handle
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)

    async def _timed(
        self, unit: int | None, exchange_s: float, call: Callable[[], Awaitable[RequestResult]]
    ) -> RequestResult:
        """Await ``call``; an answered request teaches ``unit``'s turnaround."""
        sent = self._clock()
        result = await call()
        if unit is not None:
            self.turnarounds.observe(unit, self._clock() - sent - exchange_s)
        return result

    def status(self) -> list[DeviceStatus]:
        return [c.status(self.name) for c in self.coordinators.values()]

    def adopt(self, coordinator: DeviceCoordinator) -> None:
        """Before ``start``: poll with ``coordinator`` (a previous runner's, for a device a
        config reload left as it was) in place of the one built here, so its schedule,
        availability, counters and last values go on. Raises KeyError for a device this
        runner does not poll, RuntimeError once running."""
        if self._task is not None:
            raise RuntimeError(f"bus {self.name}: adopt() after start()")
        if coordinator.name not in self.coordinators:
            raise KeyError(coordinator.name)
        self.coordinators[coordinator.name] = coordinator


def _attempts(c: DeviceCoordinator) -> int:
    """Tries per request of ``c``'s next poll: with retries while it may be answering; one
    for the probe of a device that is offline (asking twice only doubles its timeouts)."""
    return c.spec.policy.retries + 1 if c.online else 1


def _nothing() -> None:
    pass


def _resolve(wake: asyncio.Future[None]) -> None:
    """End an idle wait (its timer, its sleeper or new work: whichever comes first)."""
    if not wake.done():
        wake.set_result(None)
