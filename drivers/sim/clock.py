"""Sim time: the clock the simulators play their scenarios on, shareable with the daemon.

``SimClock(speed=60)`` runs 60 sim seconds per wall second: a one-hour storm plays in one
minute. Three readings of the same instant:

- ``elapsed()``: sim seconds since the clock started: the time base of scenarios
  (``start_s`` in the site file), monotonic;
- ``time()``: epoch seconds in sim time (``epoch_start + elapsed()``): what timestamps
  readings and recordings, so a daemon sharing the clock sees a consistent world;
- ``monotonic()``: an alias of ``elapsed()`` for code that wants a monotonic time function.

``await clock.sleep(sim_s)`` waits ``sim_s / speed`` wall seconds. ``ManualClock`` is the
injected clock for tests: it only moves when ``advance()`` is called.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

__all__ = ["ManualClock", "SimClock"]


class SimClock:
    """Sim time running ``speed`` times faster than the wall clock.

    ``epoch_start`` is the epoch second sim time 0 maps to (default: the wall time at
    creation). ``wall`` is the monotonic wall clock (injectable). Raises ``ValueError`` for a
    speed that is not a positive finite number.
    """

    def __init__(
        self,
        speed: float = 1.0,
        *,
        epoch_start: float | None = None,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (isinstance(speed, int | float) and math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive number, got {speed!r}")
        self._speed = float(speed)
        self._wall = wall
        self._wall_start = wall()
        self.epoch_start = time.time() if epoch_start is None else float(epoch_start)

    @property
    def speed(self) -> float:
        return self._speed

    def elapsed(self) -> float:
        """Sim seconds since the clock started (the scenarios' time base)."""
        return (self._wall() - self._wall_start) * self._speed

    def monotonic(self) -> float:
        return self.elapsed()

    def time(self) -> float:
        """Epoch seconds in sim time."""
        return self.epoch_start + self.elapsed()

    def to_wall(self, sim_s: float) -> float:
        """Wall seconds that ``sim_s`` sim seconds take."""
        return sim_s / self._speed

    async def sleep(self, sim_s: float) -> None:
        await asyncio.sleep(max(0.0, sim_s) / self._speed)


class ManualClock(SimClock):
    """A clock that moves only when told to (tests); ``sleep`` yields without waiting."""

    def __init__(self, *, speed: float = 1.0, epoch_start: float = 1_767_225_600.0) -> None:
        self._now = 0.0
        super().__init__(speed, epoch_start=epoch_start, wall=lambda: self._now / self._speed)

    def advance(self, sim_s: float) -> float:
        """Move sim time forward by ``sim_s`` (>= 0); returns the new ``elapsed()``."""
        if sim_s < 0:
            raise ValueError(f"a clock does not run backwards ({sim_s} s)")
        self._now += sim_s
        return self.elapsed()

    async def sleep(self, sim_s: float) -> None:
        await asyncio.sleep(0)
