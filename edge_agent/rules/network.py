"""Where the gateway's devices sit on the drainage and gas networks: what the network rules need.

Frozen dataclasses the caller builds (from the site file, a benchmark's generated site, a
test) and hands to ``RulesEngine(..., network=...)``; the rules never read a file.

- ``SewerReach``: a stretch of sewer between an upstream level gauge and the next measuring
  point downstream (a level gauge, or the pump station it drains into), with the rain gauges
  that say whether it is dry there. A blockage between them raises the upstream level and
  starves the downstream one.
- ``Manhole``: a level gauge's manhole: the depth from the invert to the rim (where it
  overflows) and to the crown of the outgoing pipe (where it surcharges).
- ``WetWell``: a pump station's wet well: the controller, the gauge that reads it (or the
  controller's own level point), its overflow level and, when known, its plan area and the
  rated flow of one pump.
- ``PondingSpot``: a road water-depth sensor at a low point, and the rain gauges near it.
- ``GasSite``: the detectors, pressure transmitters and flow meters of one gas site, and the
  site's kind (which sets its alarm levels, ``GAS_SITE_KINDS``).

Names are device names of the gateway config; ``RulesEngine`` checks that each exists and has
the point role the rule reads, and raises ``RulesConfigError`` naming the entry otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "GAS_SITE_KINDS",
    "GasSite",
    "GasSiteKind",
    "GasSiteLimits",
    "Manhole",
    "PondingSpot",
    "SewerNetwork",
    "SewerReach",
    "WetWell",
]


@dataclass(frozen=True, slots=True)
class SewerReach:
    """The sewer between ``upstream`` (a level gauge) and the next measuring point down.

    ``downstream`` is the level gauge at the bottom of the reach, or ``None`` when the reach
    ends at a pump station; ``station`` (a pump controller) is the station the reach drains
    into, directly or further down: while that station cannot keep up, its wet well backs
    the sewer up and a rise upstream is no blockage. ``rain_gauges``: empty = every rain
    gauge of the gateway. ``length_m``: along the sewer from ``upstream`` to the next
    measuring point (a flow wave takes a while down it; ``None``: taken as 300 m).
    """

    id: str
    upstream: str
    downstream: str | None = None
    station: str | None = None
    rain_gauges: tuple[str, ...] = ()
    length_m: float | None = None


@dataclass(frozen=True, slots=True)
class Manhole:
    """A level gauge's manhole: ``rim_mm`` from the invert to the cover (it overflows there),
    ``crown_mm`` from the invert to the top of the outgoing pipe (above it the pipe runs
    full: surcharged), ``None`` when unknown."""

    gauge: str
    rim_mm: float
    crown_mm: float | None = None


@dataclass(frozen=True, slots=True)
class WetWell:
    """A pump station's wet well.

    ``gauge`` is the level device in it (``None``: the controller's own ``level_mm`` point).
    ``overflow_mm`` is where it spills, ``assist_mm`` the level at which the controller runs
    every pump it is meant to (above it a rise means the station is not keeping up);
    ``area_m2`` the wet well's plan area and ``pump_l_s`` one pump's rated flow, which give
    the drawdown a running pump should make before any cycle has been seen; ``duty_pumps``
    the pumps it runs at most (the others stand by) and ``storm_l_s_per_mm_h`` how much its
    catchment sends per mm/h of rain (its paved area): together, how heavy a rain it can
    pass.
    """

    station: str
    gauge: str | None = None
    overflow_mm: float | None = None
    assist_mm: float | None = None
    area_m2: float | None = None
    pump_l_s: float | None = None
    duty_pumps: int = 1
    storm_l_s_per_mm_h: float | None = None
    rain_gauges: tuple[str, ...] = ()

    @property
    def rated_drawdown_mm_per_min(self) -> float | None:
        """How fast one pump lowers the level with nothing flowing in (l/s over m2 = mm/s)."""
        if self.area_m2 is None or self.pump_l_s is None:
            return None
        return self.pump_l_s / self.area_m2 * 60.0


@dataclass(frozen=True, slots=True)
class PondingSpot:
    """A road low point watched by a water-depth sensor (``device``, a ``level_mm`` point
    reading the depth of water on the road). ``rain_gauges``: empty = every rain gauge."""

    device: str
    rain_gauges: tuple[str, ...] = ()


GasSiteKind = Literal[
    "gate_station", "regulator_station", "valve_chamber", "utility_tunnel", "user_premises"
]
GAS_SITE_KIND_NAMES: tuple[str, ...] = get_args(GasSiteKind)


@dataclass(frozen=True, slots=True)
class GasSiteLimits:
    """Combustible-gas levels of one kind of site, %LEL: first and second alarm, and the
    reading that counts as gas present for the combined rule (well above a clean
    chamber's background, well below the first alarm)."""

    alarm1_lel: float
    alarm2_lel: float
    present_lel: float
    standard: str


# GB/T 50493-2019: first alarm <= 25 %LEL, second <= 50 %LEL. GB 50838-2015 (utility tunnels):
# the natural-gas compartment alarms at <= 20 %LEL and shuts off at <= 35 %LEL. Where people
# are (tunnels, premises) gas present counts from a lower reading.
GAS_SITE_KINDS: dict[str, GasSiteLimits] = {
    "gate_station": GasSiteLimits(25.0, 50.0, 10.0, "GB/T 50493-2019"),
    "regulator_station": GasSiteLimits(25.0, 50.0, 10.0, "GB/T 50493-2019"),
    "valve_chamber": GasSiteLimits(25.0, 50.0, 10.0, "GB/T 50493-2019"),
    "utility_tunnel": GasSiteLimits(20.0, 35.0, 5.0, "GB 50838-2015"),
    "user_premises": GasSiteLimits(25.0, 50.0, 5.0, "GB/T 50493-2019"),
}


@dataclass(frozen=True, slots=True)
class GasSite:
    """One gas site: its ``kind`` (``GAS_SITE_KINDS``) and the devices watching it."""

    id: str
    kind: GasSiteKind
    detectors: tuple[str, ...]
    pressure: tuple[str, ...] = ()
    flow: tuple[str, ...] = ()

    @property
    def limits(self) -> GasSiteLimits:
        return GAS_SITE_KINDS[self.kind]


@dataclass(frozen=True, slots=True)
class SewerNetwork:
    """Everything the network rules know about the gateway's site (all parts optional)."""

    reaches: tuple[SewerReach, ...] = ()
    manholes: tuple[Manhole, ...] = ()
    wet_wells: tuple[WetWell, ...] = ()
    ponding: tuple[PondingSpot, ...] = ()
    gas_sites: tuple[GasSite, ...] = ()

    def wet_well_gauges(self) -> frozenset[str]:
        """Level devices that read a wet well (judged by pump cycles, never by a rise)."""
        return frozenset(w.gauge for w in self.wet_wells if w.gauge is not None)

    def ponding_devices(self) -> frozenset[str]:
        return frozenset(p.device for p in self.ponding)

    def reach_gauges(self) -> frozenset[str]:
        """Level devices at either end of a reach (the reach rule watches them)."""
        ends = {r.upstream for r in self.reaches}
        ends |= {r.downstream for r in self.reaches if r.downstream is not None}
        return frozenset(ends)

    def manhole(self, gauge: str) -> Manhole | None:
        return next((m for m in self.manholes if m.gauge == gauge), None)

    def wet_well_of(self, station: str) -> WetWell | None:
        return next((w for w in self.wet_wells if w.station == station), None)
