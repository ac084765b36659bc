"""The rules engine: routes readings and poll outcomes to small rules, collects events.

Built once from the config (``RulesConfig``) and the gateway's devices (``DeviceInfo``: name,
profile, kind, per-device ``DeviceRulesConfig``). Each rule is a small object for one concern
(see ``point_rules``, ``device_rules``, ``site_rules``) holding its own state, created per
device; the engine only wires (device, point) -> rules and concatenates what they return.
Pure logic: no I/O, time from the readings' and poll results' ``ts``.

With a ``SewerNetwork`` (``edge_agent.rules.network``: where the gauges sit on the sewer, the
pump stations' wet wells, road ponding spots, gas sites) the engine also runs the network
rules (``network_wiring``): a reach's blockage from both its ends, wet wells by their pump
cycles, manhole overflow from the rim, floods, gas with pressure; the single-gauge rules then
leave those devices to them.

Usage::

    engine = RulesEngine(config.rules, [DeviceInfo("lv-01", profile, rules=dev.rules)],
                         network=SewerNetwork(reaches=(SewerReach("R1", "lv-03", "lv-02"),)))
    events = engine.on_poll(result)    # a bus PollResult -> list[EventDraft]: its
                                       # availability change, then its readings' rules
    events = engine.on_reading(reading)  # one reading's rules
    engine.conditions("lv-01")         # its alarm slots (rules/conditions.py), from the wiring
    engine.active("lv-01")             # the ids of those raised now

Raises ``RulesConfigError`` (a ``UsageError``) at construction for settings that contradict
the profiles: an unknown point or rain gauge, thresholds out of order, K above N.

A config reload builds a new engine; ``carry_over(previous, same_devices)`` hands each of
its rules the state of the same rule (same device, same point, same concern) in the old one:
what consumers were told always, the evidence only for devices polled as before (each rule's
``carry_over`` says what it keeps).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, Self, TypeVar

from drivers.model import PollResult, Reading
from drivers.profile import Point, Profile
from edge_agent.events import EventDraft
from edge_agent.rules.conditions import Condition
from edge_agent.rules.config import DeviceRulesConfig, RulesConfig, RulesConfigError
from edge_agent.rules.device_rules import CoverRule, FaultRule, availability_event
from edge_agent.rules.network import SewerNetwork, gas_limits
from edge_agent.rules.network_wiring import (
    MANHOLE_OVERFLOW,
    REACH_BLOCKAGE,
    NetworkWiring,
    check_network,
)
from edge_agent.rules.point_rules import (
    RateRule,
    ThresholdRule,
    ThresholdSpec,
    rate_spec,
    threshold_spec,
)
from edge_agent.rules.sewer import DryWeather
from edge_agent.rules.site_rules import BlockageRule, OverflowRule

__all__ = ["DeviceInfo", "RulesConfigError", "RulesEngine"]

Handler = Callable[[Reading], list[EventDraft]]
Raised = Callable[[], bool]  # is a condition raised now (read off its rule)


class CarriesOver(Protocol):
    """A rule that continues from its predecessor across a config reload."""

    def carry_over(self, old: Self, *, same_device: bool) -> None: ...


R = TypeVar("R", bound=CarriesOver)
_LEVEL_ORDER = ("low_low", "low", "high", "high_high")


@dataclass(frozen=True)
class DeviceInfo:
    """What the engine knows of a device: ``kind`` defaults to the profile's."""

    name: str
    profile: Profile
    kind: str | None = None
    rules: DeviceRulesConfig = field(default_factory=DeviceRulesConfig)

    @property
    def device_kind(self) -> str:
        return self.kind or self.profile.kind


def _check_spec(device: str, point: Point, spec: ThresholdSpec) -> None:
    values = [
        (lv.name, lv.value)
        for lv in sorted(spec.levels, key=lambda lv: _LEVEL_ORDER.index(lv.name))
    ]
    for (name_a, a), (name_b, b) in itertools.pairwise(values):
        if not a < b:
            raise RulesConfigError(
                f"device {device!r} point {point.name!r}: {name_a} {a} must be below {name_b} {b}"
            )
    if not 1 <= spec.k <= spec.n:
        raise RulesConfigError(
            f"device {device!r} point {point.name!r}: persistence k={spec.k} of n={spec.n} "
            "needs 1 <= k <= n"
        )


class RulesEngine:
    """All rules of one gateway."""

    def __init__(
        self,
        rules: RulesConfig,
        devices: Sequence[DeviceInfo],
        network: SewerNetwork | None = None,
    ) -> None:
        self.rules = rules
        self.devices = {d.name: d for d in devices}
        if len(self.devices) != len(devices):
            raise RulesConfigError("device names must be unique")
        self.network = network if network is not None else SewerNetwork()
        self._routes: dict[tuple[str, str], list[Handler]] = {}
        self._faults: dict[str, FaultRule] = {}
        self._conditions: dict[str, dict[str, tuple[Condition, Raised]]] = {}
        # (device, concern) -> the rule object, for carry_over: "threshold:<point>",
        # "rate:<point>", "faults", "cover", "blockage", "overflow"; the network wiring adds
        # "reach:<id>", "wet_well", "manhole", "ponding", "gas_site:<id>".
        self._rules: dict[tuple[str, str], CarriesOver] = {}
        for device in devices:
            self._check_device(device)
        check_network(self, self.network)
        self.wiring = NetworkWiring(self, self.network, rules)
        for device in devices:
            if device.rules.enabled:
                self._wire_device(device)
        for device in devices:
            if device.rules.enabled:
                self._wire_site_rules(device)
        self.wiring.wire()

    # ------------------------------------------------------------------ wiring

    def route(self, device: str, point: str, handler: Handler) -> None:
        """Call ``handler`` with every reading of ``device``'s ``point`` (after earlier ones)."""
        self._routes.setdefault((device, point), []).append(handler)

    def _condition(self, device: str, condition: Condition, raised: Raised) -> None:
        self._conditions.setdefault(device, {})[condition.id] = (condition, raised)

    def _keep(self, device: str, concern: str, rule: R) -> R:
        self._rules[device, concern] = rule
        return rule

    _route = route
    keep = _keep  # for the network wiring
    add_condition = _condition

    def points_with_role(self, device: str, role: str) -> tuple[str, ...]:
        """Names of ``device``'s points with ``role`` (none for an unknown device)."""
        info = self.devices.get(device)
        if info is None:
            return ()
        return tuple(p.name for p in info.profile.points_with_role(role))

    def point_with_role(self, device: str, role: str) -> str:
        """The first point of ``device`` with ``role``; raises ``RulesConfigError``."""
        names = self.points_with_role(device, role)
        if not names:
            raise RulesConfigError(f"device {device!r} has no {role} point")
        return names[0]

    def has_role(self, device: str, role: str) -> bool:
        return bool(self.points_with_role(device, role))

    def _check_device(self, device: DeviceInfo) -> None:
        profile = device.profile
        for name in device.rules.points:
            if not profile.has_point(name):
                known = ", ".join(p.name for p in profile.points)
                raise RulesConfigError(
                    f"device {device.name!r}: rules.points.{name}: profile {profile.name!r} "
                    f"has no point {name!r} (points: {known})"
                )
        gauge = device.rules.rain_gauge
        if gauge is not None and not self.has_role(gauge, "rain_rate_mm_h"):
            raise RulesConfigError(
                f"device {device.name!r}: rules.rain_gauge {gauge!r} is not a device with a "
                "rain_rate_mm_h point"
            )
        well = device.rules.wet_well
        if well is not None and not self.has_role(well, "level_mm"):
            raise RulesConfigError(
                f"device {device.name!r}: rules.wet_well {well!r} is not a device with a "
                "level_mm point"
            )

    def _wire_device(self, device: DeviceInfo) -> None:
        name = device.name
        faults = self._keep(name, "faults", FaultRule(name, device.profile, self.rules.faults))
        self._faults[name] = faults
        fault_condition = Condition("device.fault", ("device.fault",), ("device.fault.cleared",))
        self._condition(name, fault_condition, lambda: faults.latch.active)
        cover = None
        if device.profile.points_with_role("cover_open") or device.profile.points_with_role(
            "cover_tilt_deg"
        ):
            cover = self._keep(name, "cover", CoverRule(name, self.rules.cover))
            self._condition(
                name, Condition("cover", ("cover.opened",), ("cover.closed",)), cover.is_open
            )
        gas_site = self.wiring.gas_site_of(name)
        limits = gas_limits(gas_site) if gas_site is not None else None
        no_rise = name in self.wiring.no_rise_rules()
        for point in device.profile.points:
            if not point.enabled or not device.rules.point(point.name).enabled:
                continue
            spec = threshold_spec(point, device.rules, self.rules, limits)
            if spec is not None:
                _check_spec(name, point, spec)
                threshold = self._keep(
                    name, f"threshold:{point.name}", ThresholdRule(name, point, spec)
                )
                self._route(name, point.name, threshold)
                self._condition(name, threshold.condition, threshold.raised)
            rate = rate_spec(point, device.rules, self.rules)
            if no_rise and point.role == "level_mm":
                rate = None  # a wet well rises every cycle, a road sensor reads water depth
            if rate is not None:
                rate_rule = self._keep(name, f"rate:{point.name}", RateRule(name, point, rate))
                self._route(name, point.name, rate_rule)
                self._condition(name, rate_rule.condition, rate_rule.raised)
            self._route(name, point.name, partial(faults, point=point))
            if cover is not None and point.role in ("cover_open", "cover_tilt_deg"):
                self._route(name, point.name, partial(cover, point=point))

    def _wire_site_rules(self, device: DeviceInfo) -> None:
        name = device.name
        level = next(iter(device.profile.points_with_role("level_mm")), None)
        blockage = self.rules.blockage
        if (
            device.device_kind == "level"
            and level is not None
            and blockage.enabled
            and not self.wiring.handles_blockage(name)
        ):
            if device.rules.rain_gauge is not None:
                gauges: tuple[str, ...] = (device.rules.rain_gauge,)
            else:
                gauges = tuple(d for d in self.devices if self.has_role(d, "rain_rate_mm_h"))
            if gauges:
                rain = DryWeather(gauges, blockage.dry_rain_mm_h, blockage.dry_for_s)
                rule = self._keep(name, "blockage", BlockageRule(name, rain, blockage))
                self._condition(name, REACH_BLOCKAGE, lambda: rule.active)
                self._route(name, level.name, rule.on_level)
                for gauge in gauges:
                    self._route(gauge, self.point_with_role(gauge, "rain_rate_mm_h"), rain.on_rain)
        if device.device_kind == "pump_controller" and self.rules.overflow.enabled:
            pumps = tuple(p.name for p in device.profile.points_with_role("pump_running"))
            well_spec = self.network.wet_well_of(name)
            overflow = self._keep(
                name, "overflow", OverflowRule(name, pumps, self.rules.overflow, well_spec)
            )
            self._condition(name, MANHOLE_OVERFLOW, lambda: overflow.latch.active)
            self.wiring.overflow_rules[name] = overflow
            for point in device.profile.points:
                if point.role in ("pump_running", "pump_fault", "float_high_high"):
                    self._route(name, point.name, partial(overflow.on_pump, role=point.role))
            well = well_spec.gauge if well_spec is not None else None
            well = well or device.rules.wet_well
            if well is not None:
                self._route(
                    well,
                    self.devices[well].profile.points_with_role("level_mm")[0].name,
                    overflow.on_level,
                )
            elif level is not None:
                self._route(name, level.name, overflow.on_level)

    # ------------------------------------------------------------------ inputs

    def on_reading(self, reading: Reading) -> list[EventDraft]:
        """Events caused by one reading (none for an unknown device or point)."""
        events: list[EventDraft] = []
        self._dispatch(reading, events)
        return events

    def _dispatch(self, reading: Reading, events: list[EventDraft]) -> None:
        """``reading``'s rules, their events appended to ``events`` (one list per poll)."""
        for handler in self._routes.get((reading.device, reading.point), ()):
            drafts = handler(reading)
            if drafts:
                events.extend(drafts)

    def on_poll(self, result: PollResult) -> list[EventDraft]:
        """Events caused by one poll: ``device.offline`` / ``device.online`` when it changed
        the device's availability, then its readings' (none for an unknown device)."""
        if result.device not in self.devices:
            return []
        events = (
            []
            if result.change is None
            else [availability_event(result.device, result.change, result.ts)]
        )
        dispatch = self._dispatch
        for reading in result.readings:
            dispatch(reading, events)
        return events

    def conditions(self, device: str) -> tuple[Condition, ...]:
        """The alarm slots the rules wired for ``device`` (none for an unknown device)."""
        return tuple(c for c, _ in self._conditions.get(device, {}).values())

    def active(self, device: str) -> frozenset[str]:
        """The ids of ``device``'s conditions raised now."""
        return frozenset(
            cid for cid, (_, raised) in self._conditions.get(device, {}).items() if raised()
        )

    def carry_over(self, previous: RulesEngine, same_devices: Collection[str]) -> None:
        """Continue from ``previous`` (the engine of the config before a reload): each rule
        here takes over the same rule there (same device and concern, same type);
        ``same_devices`` are the devices polled as before, whose evidence (windows, delays,
        last values) still holds. Rules only one of the two has start fresh or are gone."""
        for (device, concern), rule in self._rules.items():
            old = previous._rules.get((device, concern))
            if old is not None and type(old) is type(rule):
                rule.carry_over(old, same_device=device in same_devices)

    def active_faults(self, device: str) -> list[str]:
        """What ``device.fault`` currently reports for ``device`` (empty: none)."""
        rule = self._faults.get(device)
        return rule.active if rule is not None else []
