"""What a bus does next, planned in wire time: polls on their deadlines, transfers in the gaps.

Pure logic on numbers the bus runner gives it (``drivers.bus.BusRunner`` asks ``choose`` before
every request it sends); nothing here reads a clock or touches a link.

Every device's poll has a deadline: its due time (``next_due``, fixed rate). Background work
(a recording transfer, request by request) has none: it takes the bus in the gaps. Each item
is priced in wire time (``drivers.wire.WireModel``: the bytes it moves at the line's speed,
the silences, the device's measured turnaround, ``Turnarounds``). The rules, in order:

1. *urgent* polls are alarm points (gas, level, pressure, covers, pump stations) that are not
   offline. Run back to back in deadline order, each at its price, they have a latest start:
   the time the first must begin for every one to begin by its own deadline (two alarms due
   at the same instant: the first starts one poll early). At that time the first of them runs;
2. another poll that is due runs if it ends before that latest start; otherwise the first
   urgent poll runs now, a little early (by less than the price of the poll it let pass).
   Of the due polls, one *starved* (late by a whole interval, e.g. an offline device's probe
   that found no gap) goes first, still only where it fits: a poll that does not fit never
   delays an alarm, however long it has waited. Running the alarms early, one after another,
   opens the gap it needs within a few of them (each moves the line ahead of the alarms'
   deadlines by the time it did not wait), so it waits no longer than that;
3. background work runs if its next request ends before the latest start of all polls;
   otherwise the first of them runs now, early (rule 2 applied to it). So the bus never
   idles while a transfer waits, and no poll waits for a transfer;
4. with nothing due and no background work, wait for the next latest start or deadline (or
   new work).

An alarm poll is therefore late by at most one request already on the wire when it fell due
(requests are never cut), so never later than its interval plus one transfer block, and in
practice by the pricing error only. An offline device's probe (which costs its timeouts) is
not urgent: it runs in a gap that holds it. (The price of a device that has just stopped
answering is not known before its first timeout: that one poll can delay the alarms behind
it by its timeouts.)

``Turnarounds`` learns each device's answer delay (the time of a request beyond its wire
time: the device's firmware, the line's direction switch, our own OS and event loop) as a
running mean plus twice the mean deviation: pricing high costs a poll run slightly early;
pricing low costs a late one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

__all__ = ["Choice", "PollSlot", "Turnarounds", "choose"]

TURNAROUND_WEIGHT = 0.2  # of each new measurement in the running mean and deviation
DEVIATIONS = 2.0  # price = mean + DEVIATIONS x mean deviation


class PollSlot(Protocol):
    """What the planner reads of a device (``drivers.bus.DeviceCoordinator`` is one)."""

    @property
    def next_due(self) -> float: ...

    @property
    def urgent(self) -> bool:
        """An alarm point that is not offline."""
        ...

    @property
    def interval_s(self) -> float: ...

    @property
    def price_s(self) -> float:
        """What its next poll costs the bus, in seconds."""
        ...


Slot = TypeVar("Slot", bound=PollSlot)


@dataclass(frozen=True, slots=True)
class Choice(Generic[Slot]):
    """What to do now: ``poll`` ``device``, run the next ``background`` request, or
    ``wait`` until ``until`` (monotonic seconds; ``inf``: until new work arrives)."""

    action: Literal["poll", "background", "wait"]
    device: Slot | None = None
    until: float = math.inf


def choose(
    now: float, devices: list[Slot], background_s: float | None
) -> Choice[Slot]:  # fmt: skip
    """The next thing the bus does at ``now`` (see the module docstring for the rules).

    ``background_s``: the price of the next background request, None when there is none.
    """
    urgent: list[Slot] = []
    others: list[Slot] = []
    due: Slot | None = None  # the due poll that is not urgent to try first
    due_starved = False
    for c in devices:
        d = c.next_due
        if c.urgent:
            urgent.append(c)
            continue
        others.append(c)
        if d > now:
            continue
        starved = now - d >= c.interval_s  # late by a whole interval: before other due polls
        if due is None or (starved, -d) > (due_starved, -due.next_due):
            due, due_starved = c, starved
    first_urgent, latest = _chain(urgent)
    if first_urgent is not None and latest <= now:
        return Choice("poll", first_urgent)
    if due is not None:
        if now + due.price_s <= latest or first_urgent is None:
            return Choice("poll", due)
        return Choice("poll", first_urgent)
    if background_s is not None:
        first, latest_all = _chain(devices) if others else (first_urgent, latest)
        if first is None or now + background_s <= latest_all:
            return Choice("background")
        if first.urgent or first_urgent is None or now + first.price_s <= latest:
            return Choice("poll", first)
        return Choice("poll", first_urgent)
    until = min(latest, min((c.next_due for c in others), default=math.inf))
    return Choice("wait", until=until)


def _chain(polls: list[Slot]) -> tuple[Slot | None, float]:
    """The first of ``polls`` in deadline order, and the latest time it may start so that
    each poll after it, run back to back at its price, still starts by its own deadline."""
    if not polls:
        return None, math.inf
    if len(polls) == 1:
        return polls[0], polls[0].next_due
    ordered = sorted(polls, key=_due)
    latest = math.inf
    for c in reversed(ordered):
        latest = min(c.next_due, latest - c.price_s)
    return ordered[0], latest


def _due(c: PollSlot) -> float:
    return c.next_due


class Turnarounds:
    """Each unit's answer delay, learnt from its requests; ``initial_s`` until measured."""

    def __init__(self, initial_s: float, *, ceiling_s: float = math.inf) -> None:
        self.initial_s = initial_s
        self.ceiling_s = ceiling_s  # a measurement beyond it (a timeout) teaches nothing
        self._mean: dict[int, float] = {}
        self._deviation: dict[int, float] = {}

    def of(self, unit: int) -> float:
        """The delay to price a request to ``unit`` with."""
        mean = self._mean.get(unit)
        if mean is None:
            return self.initial_s
        return mean + DEVIATIONS * self._deviation[unit]

    def observe(self, unit: int, delay_s: float) -> None:
        """One answered request took ``delay_s`` beyond its wire time."""
        if not delay_s <= self.ceiling_s:
            return
        sample = max(delay_s, 0.0)
        mean = self._mean.get(unit)
        if mean is None:
            self._mean[unit], self._deviation[unit] = sample, 0.0
            return
        self._mean[unit] = mean + TURNAROUND_WEIGHT * (sample - mean)
        deviation = self._deviation[unit]
        self._deviation[unit] = deviation + TURNAROUND_WEIGHT * (abs(sample - mean) - deviation)
