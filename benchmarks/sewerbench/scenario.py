"""What goes wrong on a site over the year, drawn at random: the benchmark's ground truth.

- **blockages** (about 1.5 a month): on a random pipe of a gauged reach (a pipe no gauge looks
  down on cannot be seen by any rule, and is left out), at any hour; half sudden (gravel from
  roadworks, in place within two minutes), half growing over 5-20 minutes; a third of them
  complete, the others leaving an opening that costs 5 cm to 2 m of head (median 30 cm) at
  the pipe's mean dry-weather flow; cleared by a crew after 1-24 hours.
- **pump incidents** (about four a year): a pump that runs but moves nothing (air lock, a
  blocked impeller), one worn to 25-50 % of its flow, or one that trips (off, fault
  signalled; the standby takes over); fixed after 6 hours to 3 days.
- **gauge incidents**: dropouts (about 1.5 a month per device, minutes to hours: polls fail),
  lost echoes (the gauge flags a fault), stuck readings (the same value for hours), a slow
  drift over the year, and stray echoes (single wild samples, about one every two days).
- **vehicles** parked under road sensors (about four a month): they read 0.4-1.5 m of "water".
- **clogged rain gauges** (about once a year each, for days): they read no rain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .sites import BenchSite

__all__ = [
    "Blockage",
    "GaugeIncident",
    "PumpIncident",
    "Scenario",
    "Vehicle",
    "draw_scenario",
]

DAY_S = 86_400.0
BLOCKAGES_PER_MONTH = 1.5
PUMP_INCIDENTS_PER_YEAR = 4.0
DROPOUTS_PER_MONTH = 1.5
ECHO_LOSSES_PER_MONTH = 0.5
STUCK_PER_YEAR = 2.0
VEHICLES_PER_MONTH = 4.0
CLOGS_PER_YEAR = 1.0
SPIKES_PER_DAY = 0.5
WARMUP_S = DAY_S  # nothing is scored or injected in the first day: the rules are learning
G = 9.81
CD = 0.6  # the opening's discharge coefficient (as in the hydraulics)


@dataclass(frozen=True, slots=True)
class Blockage:
    link: int
    reaches: tuple[str, ...]  # every reach whose stretch holds that pipe
    t0: float
    ramp_s: float
    fraction: float
    t1: float


@dataclass(frozen=True, slots=True)
class PumpIncident:
    pump: int
    kind: str  # no_flow | worn | tripped
    health: float
    t0: float
    t1: float


@dataclass(frozen=True, slots=True)
class GaugeIncident:
    device: str
    kind: str  # dropout | echo_lost | stuck
    t0: float
    t1: float


@dataclass(frozen=True, slots=True)
class Vehicle:
    device: str
    t0: float
    t1: float
    height_mm: float


@dataclass(frozen=True)
class Scenario:
    blockages: tuple[Blockage, ...]
    pump_incidents: tuple[PumpIncident, ...]
    gauge_incidents: tuple[GaugeIncident, ...]
    vehicles: tuple[Vehicle, ...]
    clogs: tuple[GaugeIncident, ...]
    drift_mm_per_day: dict[str, float]
    spikes_per_day: float = SPIKES_PER_DAY


def _times(rng: np.random.Generator, per_day: float, days: int) -> list[float]:
    """Poisson arrival times (s) after the warm-up day."""
    out, t = [], WARMUP_S
    while per_day > 0:
        t += rng.exponential(DAY_S / per_day)
        if t >= (days - 0.5) * DAY_S:
            return out
        out.append(t)
    return out


def _fraction_for_head(rng: np.random.Generator, site: BenchSite, link: int) -> float:
    """The blocked share of a pipe whose opening costs a drawn head at its mean dry flow."""
    head = float(np.clip(rng.lognormal(math.log(0.3), 0.8), 0.05, 2.0))
    flow = site.carried_dwf_l_s(link) / 1000.0
    full = math.pi * site.links[link].diameter_m ** 2 / 4
    opening = flow / (CD * math.sqrt(2 * G * head))
    return float(np.clip(1.0 - opening / full, 0.5, 0.999))


def _duration(rng: np.random.Generator, median_s: float, lo: float, hi: float) -> float:
    return float(np.clip(rng.lognormal(math.log(median_s), 0.9), lo, hi))


def draw_scenario(
    rng: np.random.Generator, site: BenchSite, links_of: dict[str, tuple[int, ...]], days: int
) -> Scenario:
    gauged_links = sorted({k for links in links_of.values() for k in links})
    blockages = []
    for t0 in _times(rng, BLOCKAGES_PER_MONTH / 30.44, days):
        link = int(rng.choice(gauged_links))
        sudden = rng.random() < 0.5
        ramp = float(rng.uniform(0, 120) if sudden else rng.uniform(300, 1200))
        fraction = 1.0 if rng.random() < 1 / 3 else _fraction_for_head(rng, site, link)
        t1 = t0 + _duration(rng, 4 * 3600, 3600, 24 * 3600)
        reaches = tuple(r for r, links in links_of.items() if link in links)
        if blockages and t0 < blockages[-1].t1 + 3600:
            continue  # one blockage at a time, an hour apart: each is scored on its own
        blockages.append(Blockage(link, reaches, t0, ramp, fraction, t1))
    pumps = []
    for t0 in _times(rng, PUMP_INCIDENTS_PER_YEAR / 365.25, days):
        kind = str(rng.choice(["no_flow", "no_flow", "worn", "tripped"]))
        health = float(rng.uniform(0.25, 0.5)) if kind == "worn" else 0.0
        t1 = t0 + _duration(rng, 20 * 3600, 6 * 3600, 3 * DAY_S)
        if pumps and t0 < pumps[-1].t1:
            continue
        pumps.append(PumpIncident(int(rng.integers(0, site.station.pumps)), kind, health, t0, t1))
    devices = [g.name for g in site.gauges] + [site.station.gauge] + [p.name for p in site.ponding]
    incidents = []
    for device in devices:
        for t0 in _times(rng, DROPOUTS_PER_MONTH / 30.44, days):
            incidents.append(
                GaugeIncident(device, "dropout", t0, t0 + _duration(rng, 1200, 300, 12 * 3600))
            )
        for t0 in _times(rng, ECHO_LOSSES_PER_MONTH / 30.44, days):
            incidents.append(
                GaugeIncident(device, "echo_lost", t0, t0 + _duration(rng, 1800, 600, 3 * 3600))
            )
        for t0 in _times(rng, STUCK_PER_YEAR / 365.25, days):
            incidents.append(
                GaugeIncident(device, "stuck", t0, t0 + _duration(rng, 6 * 3600, 2 * 3600, DAY_S))
            )
    vehicles = [
        Vehicle(p.name, t0, t0 + _duration(rng, 1200, 300, 7200), float(rng.uniform(400, 1500)))
        for p in site.ponding
        for t0 in _times(rng, VEHICLES_PER_MONTH / 30.44, days)
    ]
    clogs = [
        GaugeIncident(r.name, "clogged", t0, t0 + _duration(rng, 3 * DAY_S, DAY_S, 10 * DAY_S))
        for r in site.rain_gauges
        for t0 in _times(rng, CLOGS_PER_YEAR / 365.25, days)
    ]
    drift = {d: float(rng.normal(0, 30.0) / 365.25) for d in devices}
    return Scenario(
        blockages=tuple(blockages),
        pump_incidents=tuple(pumps),
        gauge_incidents=tuple(sorted(incidents, key=lambda i: i.t0)),
        vehicles=tuple(vehicles),
        clogs=tuple(clogs),
        drift_mm_per_day=drift,
    )
