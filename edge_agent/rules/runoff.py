"""Rain to sewer inflow: a catchment's run-off as a linear reservoir, and what it foretells.

Rain does not reach a sewer the minute it falls: it runs off roofs and roads, down gullies
and along pipes, and the flow at a pump station or a manhole rises over the catchment's
*lag* (its time of concentration) and falls the same way after the rain stops. A short
burst of heavy rain therefore never sends its full rate: the catchment smooths it out.

``RunoffModel`` follows that with the simplest model a utility can explain and configure: a
linear reservoir. The inflow ``q`` (l/s) moves towards ``l_s_per_mm_h`` times the rain
(mm/h) with time constant ``lag_s``: ``dq/dt = (k * rain - q) / lag``; between two rain
readings the rain is taken as steady (the exact solution, so any reading interval gives the
same curve). ``rain`` is the mean over the catchment's rain gauges: a storm cell over one
gauge is not rain over the whole catchment.

``time_to_reach_s(inflow, horizon_s)`` answers the overflow rules' question: if the rain
keeps falling at its recent rate, when does the run-off reach ``inflow``? The run-off still
on its way (the reservoir filling towards the rain's rate) arrives over the lag, not at once:
at the first minutes of a storm the forecast is that of the flow now, not of the rain; once
the rain eases, the run-off heads down and nothing more is foretold.

Pure logic: time is the readings' ``ts``; a clock step back restarts the reservoir's clock,
not its state.
"""

from __future__ import annotations

import math

__all__ = ["DEFAULT_LAG_S", "RunoffModel"]

DEFAULT_LAG_S = 600.0  # a design manual's inlet time for a small urban catchment
# The rain's "recent rate" the forecast assumes will go on: smoothed over this long (a burst
# of a few minutes is not a storm; a rain gauge's rate is already a tipping bucket's count
# over ten minutes).
RECENT_RAIN_S = 300.0


class RunoffModel:
    """A catchment sending ``l_s_per_mm_h`` l/s per mm/h of rain, after a lag of ``lag_s``."""

    def __init__(
        self, l_s_per_mm_h: float, lag_s: float = DEFAULT_LAG_S, recent_s: float = RECENT_RAIN_S
    ):
        if lag_s <= 0:
            raise ValueError("lag_s must be positive")
        self.l_s_per_mm_h = l_s_per_mm_h
        self.lag_s = lag_s
        self.recent_s = recent_s
        self.inflow_l_s = 0.0  # the run-off arriving now
        self.recent_mm_h = 0.0  # the rain's rate, smoothed over recent_s (0: not smoothed)
        self._rain_mm_h = 0.0
        self._last_ts: float | None = None

    def carry_over(self, old: RunoffModel) -> None:
        self.inflow_l_s, self.recent_mm_h = old.inflow_l_s, old.recent_mm_h
        self._rain_mm_h, self._last_ts = old._rain_mm_h, old._last_ts

    def advance(self, ts: float) -> None:
        """Run the reservoir up to ``ts`` with the rain last given."""
        last = self._last_ts
        self._last_ts = ts
        if last is None or ts <= last:
            return  # the first reading, a repeat, or the clock stepped back: no time passed
        dt = ts - last
        target = self.l_s_per_mm_h * self._rain_mm_h
        self.inflow_l_s = target + (self.inflow_l_s - target) * math.exp(-dt / self.lag_s)
        rain = self._rain_mm_h
        if self.recent_s > 0:
            self.recent_mm_h = rain + (self.recent_mm_h - rain) * math.exp(-dt / self.recent_s)

    def rain(self, mm_h: float, ts: float) -> None:
        """The catchment's rain is ``mm_h`` from ``ts`` on."""
        self.advance(ts)
        self._rain_mm_h = max(mm_h, 0.0)
        if self.recent_s <= 0:
            self.recent_mm_h = self._rain_mm_h

    @property
    def ultimate_l_s(self) -> float:
        """The inflow the rain's recent rate would bring once the catchment has caught up."""
        return self.l_s_per_mm_h * self.recent_mm_h

    def time_to_reach_s(self, inflow_l_s: float, horizon_s: float) -> float | None:
        """Seconds until the run-off reaches ``inflow_l_s`` with the rain going on at its
        recent rate (0 when it is there now): ``None`` when not within ``horizon_s``."""
        q, ultimate = self.inflow_l_s, self.ultimate_l_s
        if q >= inflow_l_s:
            return 0.0
        if ultimate <= inflow_l_s:
            return None
        t = self.lag_s * math.log((ultimate - q) / (ultimate - inflow_l_s))
        return t if t <= horizon_s else None
