"""A pump station's storm, forecast: when its wet well spills, and how soon at the earliest.

A wet well of a few square metres goes from its assist level to the spill in minutes once a
storm's inflow passes its pumps: watching the level alone, the warning comes minutes before.
The rain gauges see the storm coming a catchment's lag earlier. ``StationStormForecast``
joins the two:

- **what the well takes now** is measured (``inflow_l_s``: its rise times its area plus what
  the running pumps move, from ``OverflowRule``);
- **what the rain will still add** comes from the run-off (``RunoffModel`` at one l/s per
  mm/h: the rain gauges' mean through a linear reservoir of ``DEFAULT_LAG_S``), heading for
  the gauges' rate now (a tipping bucket's ten-minute count, not smoothed again): its rise
  still to come, times the station's **learnt gain** (l/s of inflow per mm/h of run-off).
  The gain is learnt from the station's own storms, a least squares fit of the measured
  inflow over its dry-weather base against the run-off (the site file's
  ``storm_l_s_per_mm_h`` is the prior, worth ``PRIOR_SAMPLES`` samples): a rain gauge away
  from the storm cell, a paved area larger than drawn, all end up in the gain.
  The fit's residual scatter gives the gain's **upper bound** (``SPREAD_Z`` standard
  deviations, relative), hence the earliest time the well can spill;
- the well **spills** when the inflow to come over what the duty pumps pass has filled the
  storage left (its overflow level over the level now, times its area), stepped minute by
  minute up to the horizon asked.

``eta_min(...)`` returns both times (central, earliest). With no rain the forecast is the
inflow now held steady: the well's own rate, as before.

Pure logic: time is the readings' ``ts``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge_agent.rules.runoff import DEFAULT_LAG_S, RunoffModel

__all__ = ["StationStormForecast", "StormEta"]

# The prior gain counts as this many samples of the fit (a few minutes of one storm): the
# station's own storms take over within its first one or two.
PRIOR_SAMPLES = 30.0
# Samples learnt from: the run-off at least this (mm/h), the well under its overflow level by
# at least SPILL_MARGIN_MM (a spilling well measures its pumps, not its inflow).
LEARN_MIN_MM_H = 2.0
SPILL_MARGIN_MM = 100.0
# The dry-weather base inflow: a running mean over this long of the inflow without rain.
BASE_TAU_S = 6 * 3600.0
# Dry means the run-off under this (mm/h).
DRY_MM_H = 0.2
# The gain's upper bound: this many of the fit's relative standard deviations over it, the
# spread taken as at most MAX_SPREAD (more would be the fit of a few samples). On the dev
# year (seed 12) 1.0 gave one more false warning at one station and 0 leads up to a minute
# shorter; the scatter is small next to what the rain does next.
SPREAD_Z = 0.5
MAX_SPREAD = 1.0
STEP_S = 60.0
# The rain rate the forecast heads for: the gauges' own (a tipping bucket's count over ten
# minutes, already smoothed), not smoothed again (five minutes more, the manholes' default,
# foretold an intensifying storm lower than its rain now and an easing one higher).
RECENT_RAIN_S = 0.0


@dataclass(frozen=True, slots=True)
class StormEta:
    """Minutes until the well spills: ``central`` at the learnt gain, ``earliest`` at its
    upper bound (``None``: not within the horizon); ``peak_l_s`` the inflow foretold at its
    highest within the horizon (central)."""

    central: float | None
    earliest: float | None
    peak_l_s: float


class StationStormForecast:
    """One station's inflow to come (see the module docstring); ``prior_gain`` l/s per mm/h
    (the site file's ``storm_l_s_per_mm_h``; ``None``: learnt from nothing)."""

    def __init__(self, prior_gain: float | None, lag_s: float = DEFAULT_LAG_S):
        self.runoff = RunoffModel(1.0, lag_s, recent_s=RECENT_RAIN_S)
        g = prior_gain or 0.0
        # the prior, as if PRIOR_SAMPLES samples at 10 mm/h lay on it (none: nothing known)
        self._sxx = PRIOR_SAMPLES * 100.0 if prior_gain is not None else 0.0
        self._sxy = g * self._sxx
        self._syy = g * g * self._sxx
        self._n = PRIOR_SAMPLES if prior_gain is not None else 0.0
        self.base_l_s: float | None = None
        self._base_ts: float | None = None

    def carry_over(self, old: StationStormForecast) -> None:
        self.runoff.carry_over(old.runoff)
        self._sxx, self._sxy, self._syy, self._n = old._sxx, old._sxy, old._syy, old._n
        self.base_l_s, self._base_ts = old.base_l_s, old._base_ts

    # -- what is learnt -------------------------------------------------------------------------
    @property
    def gain(self) -> float:
        """l/s of inflow per mm/h of run-off (0 until known)."""
        return max(self._sxy / self._sxx, 0.0) if self._sxx > 0 and self._n > 0 else 0.0

    @property
    def spread(self) -> float:
        """The gain's relative standard deviation over the samples fitted."""
        g = self.gain
        if g <= 0:
            return 0.0
        resid = max(self._syy - 2 * g * self._sxy + g * g * self._sxx, 0.0)
        return min(math.sqrt(resid / self._sxx) / g, MAX_SPREAD)

    @property
    def raining(self) -> bool:
        """Rain lately, or its run-off still arriving (over ``DRY_MM_H``)."""
        return max(self.runoff.inflow_l_s, self.runoff.recent_mm_h) >= DRY_MM_H

    def rain(self, mm_h: float, ts: float) -> None:
        """The catchment's rain (its gauges' mean) from ``ts`` on."""
        self.runoff.rain(mm_h, ts)

    def observe(self, ts: float, inflow_l_s: float, level_mm: float, overflow_mm: float) -> None:
        """The well's inflow measured at ``ts``: learn the dry base or the storm gain."""
        self.runoff.advance(ts)
        r = self.runoff.inflow_l_s
        if r < DRY_MM_H:
            if self.base_l_s is None or self._base_ts is None:
                self.base_l_s = inflow_l_s
            else:
                dt = max(ts - self._base_ts, 0.0)
                a = math.exp(-dt / BASE_TAU_S)
                self.base_l_s = inflow_l_s + (self.base_l_s - inflow_l_s) * a
            self._base_ts = ts
            return
        if r < LEARN_MIN_MM_H or level_mm > overflow_mm - SPILL_MARGIN_MM:
            return
        y = inflow_l_s - (self.base_l_s or 0.0)
        self._sxx += r * r
        self._sxy += r * y
        self._syy += y * y
        self._n += 1

    # -- the forecast ---------------------------------------------------------------------------
    def eta_min(
        self,
        ts: float,
        inflow_l_s: float,
        pumps_l_s: float,
        litres_left: float,
        horizon_s: float,
    ) -> StormEta:
        """When ``litres_left`` of storage are filled by the inflow over ``pumps_l_s``, the
        inflow starting at ``inflow_l_s`` and changing as the run-off heads for the rain's
        rate now (the learnt gain, and its upper bound)."""
        self.runoff.advance(ts)
        r0, target = self.runoff.inflow_l_s, self.runoff.ultimate_l_s
        lag = self.runoff.lag_s
        gain = self.gain
        out: list[float | None] = []
        peak = inflow_l_s
        for g in (gain, gain * (1.0 + SPREAD_Z * self.spread)):
            filled, t, eta = 0.0, 0.0, None
            while t < horizon_s:
                t += STEP_S
                r = target + (r0 - target) * math.exp(-t / lag)
                q = inflow_l_s + g * (r - r0)
                if g == gain:
                    peak = max(peak, q)
                # (a well the pumps keep down fills from where it stands once they cannot)
                filled = max(filled + (q - pumps_l_s) * STEP_S, 0.0)
                if filled >= litres_left:
                    eta = t / 60.0
                    break
            out.append(eta)
        return StormEta(out[0], out[1], peak)
