"""Where a site's devices sit on its drainage and gas networks: the site file's ``sewer:`` and
``gas_sites:`` sections, and the shapes the network rules read (``edge_agent.rules.network``
re-exports them; a test or a benchmark builds them directly).

- ``SewerReach``: a stretch of sewer between an upstream level gauge and the next measuring
  point downstream (a level gauge, or the pump station it drains into), with the rain gauges
  that say whether it is dry there. A blockage between them raises the upstream level and
  starves the downstream one.
- ``Manhole``: a level gauge's manhole: the depth from the invert to the rim (where it
  overflows) and to the crown of the outgoing pipe (where it surcharges), and the rain its
  sewer was built to carry.
- ``WetWell``: a pump station's wet well: the controller, the gauge that reads it (or the
  controller's own level point), its overflow and assist levels and, when known, its plan
  area, one pump's rated flow, how many pumps it runs at most and what its catchment sends
  per mm/h of rain.
- ``PondingSpot``: a road water-depth sensor at a low point, and the rain gauges near it.
- ``GasSite``: the detectors, pressure transmitters and flow meters of one gas site, and the
  site's kind (``GAS_SITE_KIND_NAMES``; the rules give each kind its alarm levels).

``SewerNetwork`` holds them all (``Site.network``); ``SewerNetwork.only(devices)`` keeps what
one gateway polls. ``network_references`` is the site reader's check that every name is a
device of the right kind (a gauge reading a wet well is no sewer manhole).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from yamlread import meta, whole
from yamlread.problems import fmt_num

__all__ = [
    "GAS_SITE_KIND_NAMES",
    "GasSite",
    "GasSiteKind",
    "Manhole",
    "PondingSpot",
    "SewerNetwork",
    "SewerReach",
    "SewerSection",
    "WetWell",
    "network_references",
]

_ID = meta(
    "its name in events",
    pattern=r"[A-Za-z0-9_.-]+",
    pattern_help="use letters, digits, '_', '.' or '-'",
)
_RAIN = meta("rain gauges that say whether it is dry there (none: every rain gauge)")


@dataclass(frozen=True, slots=True)
class SewerReach:
    """The sewer between ``upstream`` (a level gauge) and the next measuring point down.

    ``downstream`` is the level gauge at the bottom of the reach, or ``None`` when the reach
    ends at a pump station; ``station`` (a pump controller) is the station the reach drains
    into, directly or further down: while that station cannot keep up, its wet well backs
    the sewer up and a rise upstream is no blockage. ``length_m``: along the sewer from
    ``upstream`` to the next measuring point (a flow wave takes a while down it; ``None``:
    taken as 300 m).
    """

    id: str = field(metadata=_ID)
    upstream: str = field(metadata=meta("the level gauge at its top"))
    downstream: str | None = field(
        default=None, metadata=meta("the level gauge at its bottom (null: it ends at station)")
    )
    station: str | None = field(default=None, metadata=meta("the pump controller it drains to"))
    rain_gauges: tuple[str, ...] = field(default=(), metadata=_RAIN)
    length_m: float | None = field(
        default=None, metadata=meta("along the sewer to its bottom", min=1, max=100_000, unit="m")
    )

    def config_checks(self) -> Iterator[tuple[str, str]]:
        if self.downstream is not None and self.downstream == self.upstream:
            yield "downstream", "the same gauge as upstream"
        if self.downstream is None and self.station is None:
            yield "", "a reach ends at a downstream gauge or at a station: give one"


@dataclass(frozen=True, slots=True)
class Manhole:
    """A level gauge's manhole: ``rim_mm`` from the invert to the cover (it overflows there),
    ``crown_mm`` from the invert to the top of the outgoing pipe (above it the pipe runs
    full: surcharged), ``storm_mm_h`` the rain intensity its sewer was designed for (heavier
    rain surcharges it); ``None`` when unknown."""

    gauge: str = field(metadata=meta("the level gauge in it"))
    rim_mm: float = field(metadata=meta("invert to cover", min=100, max=50_000, unit="mm"))
    crown_mm: float | None = field(
        default=None,
        metadata=meta("invert to the outgoing pipe's top", min=1, max=50_000, unit="mm"),
    )
    storm_mm_h: float | None = field(
        default=None,
        metadata=meta(
            "the rain its sewer was built to carry (design storm)", min=1, max=500, unit="mm/h"
        ),
    )
    lag_min: float | None = field(
        default=None,
        metadata=meta(
            "its catchment's lag: rain reaches the manhole this long after it falls (default 10)",
            min=1,
            max=600,
            unit="min",
        ),
    )
    rain_gauges: tuple[str, ...] = field(default=(), metadata=_RAIN)

    def config_checks(self) -> Iterator[tuple[str, str]]:
        if self.crown_mm is not None and self.crown_mm >= self.rim_mm:
            yield (
                "crown_mm",
                f"{fmt_num(self.crown_mm)} must be below rim_mm {fmt_num(self.rim_mm)}",
            )


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

    station: str = field(metadata=meta("the pump controller"))
    gauge: str | None = field(default=None, metadata=meta("the level gauge in the wet well"))
    overflow_mm: float | None = field(
        default=None, metadata=meta("where it spills", min=100, max=50_000, unit="mm")
    )
    assist_mm: float | None = field(
        default=None, metadata=meta("where every duty pump runs", min=1, max=50_000, unit="mm")
    )
    area_m2: float | None = field(
        default=None, metadata=meta("plan area", min=0.1, max=10_000, unit="m2")
    )
    pump_l_s: float | None = field(
        default=None, metadata=meta("one pump's rated flow", min=0.1, max=100_000, unit="l/s")
    )
    duty_pumps: int = field(default=1, metadata=meta("pumps it runs at most", min=1, max=16))
    storm_l_s_per_mm_h: float | None = field(
        default=None,
        metadata=meta("what its catchment sends per mm/h of rain", min=0, max=100_000, unit="l/s"),
    )
    rain_gauges: tuple[str, ...] = field(default=(), metadata=_RAIN)

    @property
    def rated_drawdown_mm_per_min(self) -> float | None:
        """How fast one pump lowers the level with nothing flowing in (l/s over m2 = mm/s)."""
        if self.area_m2 is None or self.pump_l_s is None:
            return None
        return self.pump_l_s / self.area_m2 * 60.0


@dataclass(frozen=True, slots=True)
class PondingSpot:
    """A road low point watched by a water-depth sensor (``device``, a ``level_mm`` point
    reading the depth of water on the road)."""

    device: str = field(metadata=meta("the road water-depth sensor"))
    rain_gauges: tuple[str, ...] = field(default=(), metadata=_RAIN)


GasSiteKind = Literal[
    "gate_station", "regulator_station", "valve_chamber", "utility_tunnel", "user_premises"
]
GAS_SITE_KIND_NAMES: tuple[str, ...] = get_args(GasSiteKind)


@dataclass(frozen=True, slots=True)
class GasSite:
    """One gas site: its ``kind`` and the devices watching it."""

    id: str = field(metadata=_ID)
    kind: GasSiteKind = field(metadata=meta("what kind of gas site (its alarm levels)"))
    detectors: tuple[str, ...] = field(metadata=meta("its gas detectors"))
    pressure: tuple[str, ...] = field(
        default=(), metadata=meta("pressure transmitters on its line")
    )
    flow: tuple[str, ...] = field(default=(), metadata=meta("flow meters on its line"))

    def config_checks(self) -> Iterator[tuple[str, str]]:
        if not self.detectors:
            yield "detectors", "needs at least one gas detector"


@dataclass(frozen=True, slots=True)
class SewerSection:
    """The site file's ``sewer:``."""

    reaches: tuple[SewerReach, ...] = field(default=(), metadata=meta("stretches between gauges"))
    manholes: tuple[Manhole, ...] = field(default=(), metadata=meta("gauges' manholes"))
    wet_wells: tuple[WetWell, ...] = field(default=(), metadata=meta("pump stations' wet wells"))
    ponding: tuple[PondingSpot, ...] = field(default=(), metadata=meta("road low points"))


@dataclass(frozen=True, slots=True)
class SewerNetwork:
    """Everything the network rules know about a site (all parts optional)."""

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

    def only(self, devices: Collection[str]) -> SewerNetwork:
        """The entries whose devices are all among ``devices`` (a gateway polling part of a
        site): a reach, manhole, wet well, ponding spot or gas site missing a device of its
        own is left out; a missing rain gauge, station, pressure transmitter or flow meter is
        dropped from its entry."""

        def have(*names: str | None) -> bool:
            return all(n is None or n in devices for n in names)

        def kept(names: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(n for n in names if n in devices)

        return SewerNetwork(
            reaches=tuple(
                replace(
                    r,
                    rain_gauges=kept(r.rain_gauges),
                    station=r.station if have(r.station) else None,
                )
                for r in self.reaches
                if have(r.upstream, r.downstream) and (r.downstream or have(r.station))
            ),
            manholes=tuple(
                replace(m, rain_gauges=kept(m.rain_gauges)) for m in self.manholes if have(m.gauge)
            ),
            wet_wells=tuple(
                replace(w, rain_gauges=kept(w.rain_gauges))
                for w in self.wet_wells
                if have(w.station, w.gauge)
            ),
            ponding=tuple(
                replace(p, rain_gauges=kept(p.rain_gauges)) for p in self.ponding if have(p.device)
            ),
            gas_sites=tuple(
                replace(
                    g, detectors=kept(g.detectors), pressure=kept(g.pressure), flow=kept(g.flow)
                )
                for g in self.gas_sites
                if kept(g.detectors)
            ),
        )


# --- the site reader's check: every name a device of the right kind ---------------------------

_LEVEL, _RAIN_KIND, _STATION = ("level",), ("rain",), ("pump_controller",)


def network_references(site: Any) -> Iterator[tuple[str, str]]:
    """Every device named in ``sewer:`` and ``gas_sites:`` of ``site`` (a ``Site``) exists and
    is of the right kind; reach ids are unique."""
    devices = {d.name: d for _, d in whole(site.devices)}
    if len(devices) != len(site.devices if isinstance(site.devices, tuple | list) else ()):
        return  # a device could not be read: an unknown name would be a made-up problem

    def ref(
        where: str, name: str | None, kinds: tuple[str, ...] | None = None, sewer: bool = False
    ):
        if name is None:
            return
        device = devices.get(name)
        if device is None:
            yield where, f"unknown device {name!r}"
        elif kinds is not None and device.kind not in kinds:
            yield where, f"{name!r} is a {device.kind} device, expected {' or '.join(kinds)}"
        elif sewer and getattr(device.sim, "station", None) is not None:
            yield where, f"{name!r} reads a wet well, not a sewer manhole"

    def rain(where: str, names: Any) -> Iterator[tuple[str, str]]:
        for j, name in enumerate(names if isinstance(names, tuple | list) else ()):
            yield from ref(f"{where}.rain_gauges[{j}]", name, _RAIN_KIND)

    sewer = site.sewer
    if sewer is not None:
        seen: set[str] = set()
        for i, r in whole(sewer.reaches):
            where = f"sewer.reaches[{i}]"
            if r.id in seen:
                yield f"{where}.id", f"duplicate id {r.id!r}"
            seen.add(r.id)
            yield from ref(f"{where}.upstream", r.upstream, _LEVEL, sewer=True)
            yield from ref(f"{where}.downstream", r.downstream, _LEVEL, sewer=True)
            yield from ref(f"{where}.station", r.station, _STATION)
            yield from rain(where, r.rain_gauges)
        for i, m in whole(sewer.manholes):
            yield from ref(f"sewer.manholes[{i}].gauge", m.gauge, _LEVEL, sewer=True)
            yield from rain(f"sewer.manholes[{i}]", m.rain_gauges)
        for i, w in whole(sewer.wet_wells):
            yield from ref(f"sewer.wet_wells[{i}].station", w.station, _STATION)
            yield from ref(f"sewer.wet_wells[{i}].gauge", w.gauge, _LEVEL)
            yield from rain(f"sewer.wet_wells[{i}]", w.rain_gauges)
        for i, p in whole(sewer.ponding):
            yield from ref(f"sewer.ponding[{i}].device", p.device, _LEVEL)
            yield from rain(f"sewer.ponding[{i}]", p.rain_gauges)
    for i, g in whole(site.gas_sites):
        for key, kinds in (("detectors", ("gas",)), ("pressure", ("pressure",)), ("flow", None)):
            for j, name in enumerate(getattr(g, key)):
                yield from ref(f"gas_sites[{i}].{key}[{j}]", name, kinds)
