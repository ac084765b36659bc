"""The data shapes that leave the drivers: ``Reading``, ``Recording``, and what one poll of a
device gives its bus's sink (``PollResult``, with the ``AvailabilityChange`` it caused), and
a device's counters for ``status`` (``DeviceStatus``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: importing the shapes must not load numpy (`status` reads them)
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "AvailabilityChange",
    "DeviceStatus",
    "PollResult",
    "Quality",
    "Reading",
    "Recording",
]


class Quality(StrEnum):
    """How far a value can be trusted. Only ``GOOD`` values feed thresholds."""

    GOOD = "good"
    OUT_OF_RANGE = "out_of_range"  # decoded fine, outside the profile's valid range
    FAULT = "fault"  # the device flags a sensor fault / over-range for this point
    STALE = "stale"  # last known value, the device did not answer this cycle


@dataclass(frozen=True, slots=True)
class Reading:
    """One decoded point of one device at one instant (``ts``: epoch seconds, wall clock)."""

    device: str
    point: str
    value: float | int | bool | str | None
    unit: str
    quality: Quality
    ts: float


@dataclass(frozen=True, slots=True, eq=False)
class Recording:
    """A noise-logger recording: ``samples`` in physical units (float64), ``fs`` in Hz.

    ``started_at`` is epoch seconds of the first sample, as the gateway knows it (for a
    broadcast start, the instant the broadcast was sent: every logger shares it).
    """

    device: str
    fs: float
    samples: npt.NDArray[np.float64]
    started_at: float

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.fs


@dataclass(frozen=True, slots=True)
class AvailabilityChange:
    """A device went offline (``online`` False) or came back. Decided in one place, the bus's
    ``DeviceCoordinator``; a sink turns it into what it needs (events, retained state)."""

    online: bool
    reason: str | None = None  # going offline: the last poll error
    failures: int = 0  # going offline: polls failed in a row
    offline_s: float | None = None  # coming back: how long it was offline (None: unknown)


@dataclass(frozen=True, slots=True)
class PollResult:
    """One finished poll of one device, handed to the bus's one sink.

    ``readings`` when it answered (``error`` None), else ``error`` says why in one line;
    ``change`` is the availability transition this poll caused, if any. ``ts``: epoch
    seconds (wall clock) when the poll started; every reading carries the same.
    """

    bus: str
    device: str
    ts: float
    readings: tuple[Reading, ...] = ()
    error: str | None = None
    change: AvailabilityChange | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One device's availability and counters, as ``edge-agent status`` shows them."""

    name: str
    bus: str
    online: bool | None  # None: not polled yet
    last_reading_ts: float | None = None
    polls_ok: int = 0
    polls_failed: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None  # while failing
