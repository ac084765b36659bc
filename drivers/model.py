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
    """A noise-logger recording as the logger sent it: ``counts``, the samples as big-endian
    int16 (the bytes its CRC-32 covers), ``scale`` physical units per count, ``fs`` in Hz.

    ``started_at`` is epoch seconds of the first sample, as the gateway knows it (for a
    broadcast start, the instant the broadcast was sent: every logger shares it).

    The resident daemon only moves the bytes (to the analysis worker's spool file), so this
    shape needs no numpy; ``samples`` (float64, physical units) imports it where the samples
    are analysed. ``counts`` may be any buffer (``bytes``, or a ``memoryview`` of a mapped
    spool file: the worker reads recordings without copying them).
    """

    device: str
    fs: float
    counts: bytes | memoryview
    scale: float
    started_at: float

    @property
    def sample_count(self) -> int:
        return len(self.counts) // 2

    @property
    def duration_s(self) -> float:
        return self.sample_count / self.fs

    @property
    def samples(self) -> npt.NDArray[np.float64]:
        """The samples in physical units (a new float64 array each call)."""
        import numpy as np

        return np.frombuffer(self.counts, dtype=">i2").astype(np.float64) * self.scale

    @classmethod
    def from_samples(
        cls, device: str, fs: float, samples: npt.ArrayLike, started_at: float
    ) -> Recording:
        """Quantise physical-unit samples to int16 counts as a logger would (full scale at the
        peak: 16 bits keep a 96 dB range). For simulations and tests."""
        import numpy as np

        x = np.asarray(samples, dtype=np.float64)
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        scale = peak / 32767.0 if peak > 0 and np.isfinite(peak) else 1.0
        counts = np.clip(np.rint(x / scale), -32768, 32767).astype(">i2")
        return cls(device, float(fs), counts.tobytes(), scale, started_at)


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
