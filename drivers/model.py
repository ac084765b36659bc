"""The data shapes that leave the drivers: ``Reading`` and ``Recording``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

__all__ = ["Quality", "Reading", "Recording"]


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
    samples: np.ndarray
    started_at: float

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.fs
