"""Wires the network rules of a ``SewerNetwork`` into a ``RulesEngine``.

``check_network`` refuses a network that names a device the gateway does not have, or one
without the point role its rule reads (``RulesConfigError``, one line naming the entry);
``NetworkWiring`` builds one rule per reach, manhole, wet well, ponding spot and gas site and
routes the readings each needs (``edge_agent.rules.sewer``, ``wet_well``, ``flood``, ``gas``).
The engine keeps the single-gauge rules for everything the network does not describe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol

from edge_agent.rules.conditions import Condition
from edge_agent.rules.config import RulesConfig, RulesConfigError
from edge_agent.rules.flood import PondingRule
from edge_agent.rules.gas import GasLeakRule
from edge_agent.rules.network import SewerNetwork, SewerReach
from edge_agent.rules.sewer import DryWeather, ManholeOverflowRule, ReachBlockageRule
from edge_agent.rules.site_rules import OverflowRule
from edge_agent.rules.wet_well import WetWellRule

__all__ = ["FLOW_ROLES", "NetworkWiring", "check_network"]

FLOW_ROLES = ("flow_l_s", "flow_m3_h")


class RulesEngine(Protocol):
    """What the wiring uses of ``edge_agent.rules.engine.RulesEngine``."""

    @property
    def devices(self) -> Mapping[str, Any]: ...

    def route(self, device: str, point: str, handler: Callable) -> None: ...
    def points_with_role(self, device: str, role: str) -> tuple[str, ...]: ...
    def point_with_role(self, device: str, role: str) -> str: ...
    def has_role(self, device: str, role: str) -> bool: ...
    def keep(self, device: str, concern: str, rule: Any) -> Any: ...
    def add_condition(
        self, device: str, condition: Condition, raised: Callable[[], bool]
    ) -> None: ...


def _any_raised(raised: tuple[Callable[[], bool], ...]) -> bool:
    return any(f() for f in raised)


def _latest_active(rules: tuple[ReachBlockageRule, ...]) -> float | None:
    """When any of ``rules`` last had its blockage suspected."""
    return max((r.last_active for r in rules if r.last_active is not None), default=None)


# The alarm slot each network rule holds on the device its events name (kinds spelled out:
# tests/edge_agent/test_event_kinds.py finds every kind in the source).
REACH_BLOCKAGE = Condition(
    "sewer.blockage_suspected",
    ("sewer.blockage_suspected",),
    ("sewer.blockage_suspected.cleared",),
)
WET_WELL_FAULT = Condition("wet_well.fault", ("wet_well.fault",), ("wet_well.fault.cleared",))
MANHOLE_OVERFLOW = Condition(  # (and a pump station's)
    "overflow.risk", ("overflow.risk",), ("overflow.risk.cleared",)
)
PONDING = Condition("flood.ponding", ("flood.ponding",), ("flood.ponding.cleared",))
GAS_LEAK = Condition("gas.leak_suspected", ("gas.leak_suspected",), ("gas.leak_suspected.cleared",))


def check_network(engine: RulesEngine, network: SewerNetwork) -> None:
    """Raise ``RulesConfigError`` for the first entry that names a missing device or one
    without the role its rule reads."""

    def need(where: str, device: str | None, *roles: str) -> None:
        if device is None:
            return
        if device not in engine.devices:
            raise RulesConfigError(f"{where}: no device {device!r} on this gateway")
        if not any(engine.has_role(device, role) for role in roles):
            raise RulesConfigError(f"{where}: device {device!r} has no {' or '.join(roles)} point")

    seen: set[str] = set()
    for reach in network.reaches:
        where = f"sewer reach {reach.id!r}"
        if reach.id in seen:
            raise RulesConfigError(f"{where}: the id is used twice")
        seen.add(reach.id)
        need(f"{where} upstream", reach.upstream, "level_mm")
        need(f"{where} downstream", reach.downstream, "level_mm")
        need(f"{where} station", reach.station, "pump_running")
        for gauge in reach.rain_gauges:
            need(f"{where} rain gauge", gauge, "rain_rate_mm_h")
        if reach.upstream == reach.downstream:
            raise RulesConfigError(f"{where}: upstream and downstream are the same gauge")
    for manhole in network.manholes:
        where = f"manhole of {manhole.gauge!r}"
        need(where, manhole.gauge, "level_mm")
        if manhole.crown_mm is not None and not 0 < manhole.crown_mm < manhole.rim_mm:
            raise RulesConfigError(f"{where}: crown_mm must lie between 0 and rim_mm")
    for well in network.wet_wells:
        where = f"wet well of {well.station!r}"
        need(where, well.station, "pump_running")
        need(f"{where} gauge", well.gauge or well.station, "level_mm")
        for gauge in well.rain_gauges:
            need(f"{where} rain gauge", gauge, "rain_rate_mm_h")
    for spot in network.ponding:
        need(f"ponding spot {spot.device!r}", spot.device, "level_mm")
        for gauge in spot.rain_gauges:
            need(f"ponding spot {spot.device!r} rain gauge", gauge, "rain_rate_mm_h")
    for site in network.gas_sites:
        where = f"gas site {site.id!r}"
        if not site.detectors:
            raise RulesConfigError(f"{where}: needs at least one detector")
        for device in site.detectors:
            need(f"{where} detector", device, "gas_lel")
        for device in site.pressure:
            need(f"{where} pressure", device, "pressure_bar")
        for device in site.flow:
            need(f"{where} flow", device, *FLOW_ROLES)


class NetworkWiring:
    """The network rules of one engine, and what the single-gauge rules must leave alone."""

    def __init__(self, engine: RulesEngine, network: SewerNetwork, rules: RulesConfig):
        self.engine = engine
        self.network = network
        self.rules = rules
        self.overflow_rules: dict[str, OverflowRule] = {}  # by station, set by the engine
        self.wet_well_rules: dict[str, WetWellRule] = {}
        self.reach_rules: dict[str, ReachBlockageRule] = {}
        # (device, slot) -> whether each rule holding it is raised: one slot per device and
        # family, raised while any of its rules is (a gauge topping two reaches)
        self._slots: dict[tuple[str, Condition], list[Callable[[], bool]]] = {}

    # -- what the engine asks before wiring its own rules ------------------------------------
    def judged_by_cycles(self) -> frozenset[str]:
        """Devices whose level is a wet well's (its gauge, and the controller's own level
        point): no rise alarm, no single-gauge blockage."""
        out = set(self.network.wet_well_gauges())
        out |= {w.station for w in self.network.wet_wells}
        return frozenset(out)

    def no_rise_rules(self) -> frozenset[str]:
        """Devices whose level must not feed ``level.rising`` or the single-gauge blockage."""
        return self.judged_by_cycles() | self.network.ponding_devices()

    def handles_blockage(self, device: str) -> bool:
        return device in self.network.reach_gauges() or device in self.no_rise_rules()

    # -- wiring ------------------------------------------------------------------------------
    def _rain(self, gauges: tuple[str, ...]) -> DryWeather | None:
        engine, cfg = self.engine, self.rules.blockage
        names = gauges or tuple(d for d in engine.devices if engine.has_role(d, "rain_rate_mm_h"))
        if not names:
            return None
        rain = DryWeather(names, cfg.dry_rain_mm_h, cfg.dry_for_s)
        for gauge in names:
            engine.route(gauge, engine.point_with_role(gauge, "rain_rate_mm_h"), rain.on_rain)
        return rain

    def _level(self, device: str) -> str:
        return self.engine.point_with_role(device, "level_mm")

    def wire(self) -> None:
        self._wire_wet_wells()
        self._wire_reaches()
        self._wire_manholes()
        self._wire_ponding()
        self._wire_gas()
        for (device, slot), raised in self._slots.items():
            self.engine.add_condition(device, slot, partial(_any_raised, tuple(raised)))

    def _hold(
        self, device: str, concern: str, rule: Any, slot: Condition, raised: Callable[[], bool]
    ) -> None:
        """Register ``rule`` for carry-over (as ``concern`` of ``device``) and its slot."""
        self.engine.keep(device, concern, rule)
        self._slots.setdefault((device, slot), []).append(raised)

    def _wire_wet_wells(self) -> None:
        engine, cfg = self.engine, self.rules.wet_well
        for well in self.network.wet_wells:
            overflow = self.overflow_rules.get(well.station)
            if overflow is not None:
                overflow.rain = self._rain(well.rain_gauges)
            if not cfg.enabled:
                continue
            rain = self._rain(well.rain_gauges) or DryWeather((), 0.0, 0.0)
            pumps = engine.points_with_role(well.station, "pump_running")
            rule = WetWellRule(well, pumps, rain, cfg)
            self.wet_well_rules[well.station] = rule
            self._hold(
                well.station, "wet_well", rule, WET_WELL_FAULT, partial(getattr, rule, "active")
            )
            if overflow is not None:  # a pump moving nothing passes nothing of a storm
                overflow.pumps_not_moving = rule.pumps_not_moving
            for point in pumps:
                engine.route(well.station, point, rule.on_pump)
            gauge = well.gauge or well.station
            engine.route(gauge, self._level(gauge), rule.on_level)

    def station_backed_up(self, station: str | None) -> Callable[[], float | None]:
        """When the station's wet well last stood high enough to back the sewer up."""
        overflow = self.overflow_rules.get(station) if station is not None else None
        if overflow is None:
            return lambda: None
        return overflow.backed_up_at

    def _wire_reaches(self) -> None:
        engine, cfg = self.engine, self.rules.blockage
        if not cfg.enabled:
            return
        ends: list[str | None] = [r.downstream for r in self.network.reaches if r.downstream]
        # a reach backed up from below, or draining since, gives no evidence for a while:
        # by its station's wet well standing high, or by the reach below being blocked
        for reach in self.network.reaches:
            rain = self._rain(reach.rain_gauges)
            if rain is None:
                continue  # no rain gauge: dry weather cannot be told, the rule is off
            shared = ends.count(reach.downstream) > 1
            rule = ReachBlockageRule(
                reach,
                rain,
                cfg,
                downstream_shared=shared,
                backed_up_below=self._backed_up_below(reach),
                blocked_above=self._blocked_above(reach),
            )
            self.reach_rules[reach.id] = rule
            self._hold(
                reach.upstream,
                f"reach:{reach.id}",
                rule,
                REACH_BLOCKAGE,
                partial(getattr, rule, "active"),
            )
            engine.route(reach.upstream, self._level(reach.upstream), rule.on_upstream)
            if reach.downstream is not None:
                engine.route(reach.downstream, self._level(reach.downstream), rule.on_downstream)
            elif reach.station in self.wet_well_rules:  # its station's inflow is its bottom end
                self.wet_well_rules[reach.station].inflow_listeners.append(rule.on_inflow)
        # a wet well's inflow is not the sewer's normal one while a reach draining into it is
        # blocked, nor while it empties after
        for station, well_rule in self.wet_well_rules.items():
            well_rule.upstream_blocked = partial(_latest_active, self._draining(station))
        # nor is a rise of its well an overflow risk by itself while that sewer empties
        for station, overflow in self.overflow_rules.items():
            draining = self._draining(station)
            overflow.upstream_blocked = partial(_latest_active, draining)
            for top in sorted({rule.reach.upstream for rule in draining}):
                self.engine.route(top, self._level(top), overflow.on_top_level)

    def _draining(self, station: str) -> tuple[ReachBlockageRule, ...]:
        """The rules of the reaches that drain into ``station``."""
        return tuple(rule for rule in self.reach_rules.values() if rule.reach.station == station)

    def _chain(self, reach: SewerReach, *, downstream: bool) -> list[str]:
        """The reaches below ``reach`` (each starting where one already found ends), or above
        it (each ending where one already found starts), however far the network goes."""
        found: list[str] = []
        ends = [reach.downstream if downstream else reach.upstream]
        while ends:
            end = ends.pop()
            for r in self.network.reaches:
                joins, onward = (
                    (r.upstream, r.downstream) if downstream else (r.downstream, r.upstream)
                )
                if joins == end and r.id not in found and r.id != reach.id:
                    found.append(r.id)
                    ends.append(onward)
        return found

    def _backed_up_below(self, reach: SewerReach) -> Callable[[], float | None]:
        """When the sewer below the reach last backed it up: its station's wet well standing
        high, or a reach below it blocked, the next one or further down (a blockage two reaches
        down backs the sewer up past the gauge between and on to this reach: its backwater,
        then its draining when the crew clears it, read as "backing up" and "starved" here)."""
        below = self._chain(reach, downstream=True)
        station = self.station_backed_up(reach.station)

        def latest() -> float | None:
            rules = tuple(rule for rid in below if (rule := self.reach_rules.get(rid)))
            times = (_latest_active(rules), station())
            return max((t for t in times if t is not None), default=None)

        return latest

    def _blocked_above(self, reach: SewerReach) -> Callable[[], float | None]:
        """When a reach above this one (draining into its top, directly or further up) was
        last suspected blocked: clearing, it sends its backwater down as a surge."""
        above = self._chain(reach, downstream=False)

        def latest() -> float | None:
            rules = tuple(rule for rid in above if (rule := self.reach_rules.get(rid)))
            return _latest_active(rules)

        return latest

    def _wire_manholes(self) -> None:
        if not self.rules.overflow.enabled:
            return
        for manhole in self.network.manholes:
            rain = self._rain(manhole.rain_gauges) if manhole.storm_mm_h is not None else None
            rule = ManholeOverflowRule(manhole, self.rules.overflow, rain)
            self._hold(
                manhole.gauge,
                "manhole",
                rule,
                MANHOLE_OVERFLOW,
                partial(getattr, rule.latch, "active"),
            )
            self.engine.route(manhole.gauge, self._level(manhole.gauge), rule.on_level)

    def _wire_ponding(self) -> None:
        if not self.rules.flood.enabled:
            return
        for spot in self.network.ponding:
            rain = self._rain(spot.rain_gauges)
            if rain is None:
                continue
            rule = PondingRule(spot, rain, self.rules.flood)
            self._hold(
                spot.device, "ponding", rule, PONDING, partial(getattr, rule.latch, "active")
            )
            self.engine.route(spot.device, self._level(spot.device), rule.on_depth)

    def _wire_gas(self) -> None:
        engine = self.engine
        if not self.rules.gas_leak.enabled:
            return
        for site in self.network.gas_sites:
            rule = GasLeakRule(site, self.rules.gas_leak, self.rules.pressure)
            self._hold(
                site.detectors[0],
                f"gas_site:{site.id}",
                rule,
                GAS_LEAK,
                partial(getattr, rule.latch, "active"),
            )
            for device in site.detectors:
                for point in engine.points_with_role(device, "gas_lel"):
                    engine.route(device, point, rule.on_gas)
            for device in site.pressure:
                for point in engine.points_with_role(device, "pressure_bar"):
                    engine.route(device, point, rule.on_pressure)
            for device in site.flow:
                for role in FLOW_ROLES:
                    for point in engine.points_with_role(device, role):
                        engine.route(device, point, rule.on_flow)

    def gas_site_of(self, device: str):
        """The gas site whose detector ``device`` is (its kind sets the alarm levels)."""
        return next((s for s in self.network.gas_sites if device in s.detectors), None)
