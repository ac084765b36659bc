"""A year of weather and of dry-weather flow for the sewer benchmark, minute by minute.

Rain: storm events arrive as a Poisson process whose rate follows the season (a humid
subtropical year: a plum-rain and typhoon summer, a drier winter, about 110 events and
1100 mm). Each event draws a depth from a gamma distribution (shape 0.7: many small events,
a few large ones; deeper in summer), a duration correlated with it (short convective summer
storms, long frontal winter rain), and an intensity profile: a Chicago-style double
exponential around a peak placed at 20-60 % of the event, roughened by a lognormal
multiplier per five minutes and rescaled to the event's depth. Each event also has a storm
cell (a centre and a radius in the site's metres) over which the depth varies by a factor
0.5-1.5, so two rain gauges a kilometre apart disagree as they do in the field.

Dry-weather flow: an hourly residential or commercial pattern (weekends peak later and lower),
a day-to-day factor, an AR(1) wiggle, and groundwater infiltration that follows the season.

Everything is drawn from one ``numpy`` generator, so a seed gives the same year.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Storm", "Weather", "diurnal_factors", "make_weather"]

MINUTES_PER_DAY = 1440
# Rain events per month (a humid subtropical city: about 110 a year).
EVENTS_PER_MONTH = (7, 8, 10, 10, 10, 13, 11, 11, 9, 7, 7, 6)
MEAN_DEPTH_MM = (6, 7, 9, 10, 11, 16, 16, 15, 12, 8, 7, 6)
DEPTH_SHAPE = 0.7
MAX_EVENT_MEAN_MM_H = 30.0  # an event's mean intensity: a 60 mm storm lasts two hours or more
CONVECTIVE_MONTHS = {5, 6, 7, 8}  # June-September (0-based May..Aug): short intense storms

# Hourly dry-weather flow multipliers (mean 1): residential and commercial catchments.
RESIDENTIAL = (
    0.55, 0.45, 0.40, 0.38, 0.40, 0.55, 0.90, 1.35, 1.50, 1.40, 1.25, 1.15,
    1.10, 1.05, 1.00, 0.98, 1.00, 1.10, 1.25, 1.35, 1.30, 1.15, 0.95, 0.70,
)  # fmt: skip
COMMERCIAL = (
    0.40, 0.35, 0.33, 0.33, 0.35, 0.45, 0.70, 1.10, 1.45, 1.55, 1.50, 1.45,
    1.40, 1.45, 1.45, 1.40, 1.30, 1.20, 1.10, 1.00, 0.90, 0.75, 0.60, 0.50,
)  # fmt: skip
WEEKEND_SHIFT_H = 1.5
WEEKEND_FLATTEN = 0.7


@dataclass(frozen=True, slots=True)
class Storm:
    """One rain event: minutes since the start of the year, site-mean depth, cell."""

    start_min: int
    duration_min: int
    depth_mm: float
    cell_x: float
    cell_y: float
    cell_r: float
    profile: np.ndarray  # mm/h per minute of the event (site mean), sums to depth * 60


@dataclass(frozen=True)
class Weather:
    """A year: the storms, and the site-mean rain intensity per minute (mm/h)."""

    minutes: int
    storms: tuple[Storm, ...]
    rain_mm_h: np.ndarray  # float32 [minutes], site mean

    def rain_at(self, x: float, y: float, start: int, stop: int) -> np.ndarray:
        """mm/h per minute of [start, stop) at a point (the storms' cells applied)."""
        out = np.zeros(stop - start, dtype=np.float64)
        for s in self.storms:
            a, b = max(start, s.start_min), min(stop, s.start_min + s.duration_min)
            if a >= b:
                continue
            factor = cell_factor(s, x, y)
            out[a - start : b - start] += factor * s.profile[a - s.start_min : b - s.start_min]
        return out


def cell_factor(storm: Storm, x: float, y: float) -> float:
    """0.5 at the edge of the site to 1.5 under the cell's centre."""
    d2 = (x - storm.cell_x) ** 2 + (y - storm.cell_y) ** 2
    return 0.5 + math.exp(-d2 / (storm.cell_r**2))


def _profile(rng: np.random.Generator, duration: int, depth: float) -> np.ndarray:
    t = np.arange(duration) + 0.5
    peak = rng.uniform(0.2, 0.6) * duration
    # e-folding minutes either side of the peak: a burst lasts a quarter of an hour or more
    sharp = max(rng.uniform(0.12, 0.3) * duration, 12.0)
    shape = np.exp(-np.abs(t - peak) / sharp) + 0.05
    rough = np.repeat(rng.lognormal(0.0, 0.2, duration // 5 + 1), 5)[:duration]
    shape = shape * rough
    return shape / shape.sum() * depth * 60.0  # mm/h per minute: sum / 60 = depth


def make_weather(
    rng: np.random.Generator, days: int, extent_m: float, start_month: int = 0
) -> Weather:
    """Storms over ``days`` (the year starting at ``start_month``) on a site ``extent_m``
    across."""
    minutes = days * MINUTES_PER_DAY
    storms: list[Storm] = []
    t = 0.0
    while True:
        month = (start_month + int(t / (MINUTES_PER_DAY * 30.44))) % 12
        rate_per_min = EVENTS_PER_MONTH[month] / (30.44 * MINUTES_PER_DAY)
        t += rng.exponential(1.0 / rate_per_min)
        if t >= minutes:
            break
        month = (start_month + int(t / (MINUTES_PER_DAY * 30.44))) % 12
        depth = max(rng.gamma(DEPTH_SHAPE, MEAN_DEPTH_MM[month] / DEPTH_SHAPE), 0.3)
        mean_h = 2.0 if month in CONVECTIVE_MONTHS else 5.0
        hours = np.clip(
            rng.gamma(1.5, mean_h / 1.5) * (depth / MEAN_DEPTH_MM[month]) ** 0.3, 0.3, 36.0
        )
        hours = max(hours, depth / MAX_EVENT_MEAN_MM_H)
        duration = max(int(hours * 60), 15)
        start = int(t)
        if storms and start < storms[-1].start_min + storms[-1].duration_min + 60:
            continue  # events are separated by at least an hour of dry weather
        storms.append(
            Storm(
                start_min=start,
                duration_min=duration,
                depth_mm=float(depth),
                cell_x=float(rng.uniform(-0.5, 1.5) * extent_m),
                cell_y=float(rng.uniform(-0.5, 1.5) * extent_m),
                cell_r=float(rng.uniform(0.5, 2.0) * extent_m),
                profile=_profile(rng, duration, depth),
            )
        )
    rain = np.zeros(minutes, dtype=np.float32)
    for s in storms:
        stop = min(minutes, s.start_min + s.duration_min)
        rain[s.start_min : stop] += s.profile[: stop - s.start_min]
    return Weather(minutes=minutes, storms=tuple(storms), rain_mm_h=rain)


def diurnal_factors(
    rng: np.random.Generator, days: int, commercial: bool, start_weekday: int = 0
) -> np.ndarray:
    """Dry-weather flow multiplier per minute (mean about 1) for one catchment."""
    base = np.array(COMMERCIAL if commercial else RESIDENTIAL)
    hours = np.arange(MINUTES_PER_DAY) / 60.0
    weekday = np.interp(hours, np.arange(25), np.append(base, base[0]))
    shifted = (hours - WEEKEND_SHIFT_H) % 24
    weekend = np.interp(shifted, np.arange(25), np.append(base, base[0]))
    weekend = 1.0 + (weekend - 1.0) * WEEKEND_FLATTEN
    out = np.empty(days * MINUTES_PER_DAY)
    day_factor = rng.lognormal(0.0, 0.08, days)
    for d in range(days):
        pattern = weekend if (start_weekday + d) % 7 >= 5 else weekday
        out[d * MINUTES_PER_DAY : (d + 1) * MINUTES_PER_DAY] = pattern * day_factor[d]
    # AR(1) wiggle of a few per cent with a half-hour memory (showers, washing machines)
    phi = math.exp(-1.0 / 30.0)
    noise = rng.normal(0.0, 0.05 * math.sqrt(1 - phi * phi), out.size)
    wiggle = np.empty_like(noise)
    acc = 0.0
    for i, n in enumerate(noise):
        acc = phi * acc + n
        wiggle[i] = acc
    return out * (1.0 + wiggle)


def groundwater_factor(days: int, start_month: int = 0) -> np.ndarray:
    """Infiltration multiplier per minute: high after the wet summer, low in spring."""
    t = np.arange(days * MINUTES_PER_DAY) / (MINUTES_PER_DAY * 365.25)
    phase = (start_month / 12.0 + t) * 2 * math.pi
    return 1.0 + 0.35 * np.sin(phase - 2 * math.pi * 5 / 12)
