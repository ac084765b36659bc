"""Rules on one point: thresholds (level, gas, pressure, any point) and rates of change.

A point's *role* (from its profile) picks its defaults; the device's ``rules:`` and then the
point's own overrides win over them (``threshold_spec`` / ``rate_spec`` resolve the three
layers). A ``ThresholdRule`` keeps one ``Alarm`` per threshold and reports the point's state
(normal, or its most severe active threshold) only when that state changes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from drivers.model import Reading
from drivers.profile import Point
from edge_agent.events import EventDraft
from edge_agent.rules.alarm import Alarm, RateAlarm, Transition, good_number
from edge_agent.rules.conditions import Condition
from edge_agent.rules.config import DeviceRulesConfig, RulesConfig
from edge_agent.rules.network import GasSiteLimits

__all__ = [
    "GAS_ROLES",
    "RateRule",
    "RateSpec",
    "ThresholdLevel",
    "ThresholdRule",
    "ThresholdSpec",
    "rate_spec",
    "threshold_spec",
]

LevelName = Literal["low_low", "low", "high", "high_high"]
GAS_ROLES = frozenset({"gas_lel", "gas_h2s_ppm", "gas_co_ppm", "gas_o2_pct"})

# family -> threshold name -> event kind; ``None`` -> the kind when every threshold is clear.
KINDS: dict[str, dict[str | None, str]] = {
    "level": {"high": "level.high", "high_high": "level.high_high", None: "level.normal"},
    "gas": {
        "low": "gas.alarm1",
        "high": "gas.alarm1",
        "low_low": "gas.alarm2",
        "high_high": "gas.alarm2",
        None: "gas.normal",
    },
    "pressure": {
        "low": "pressure.low",
        "low_low": "pressure.low",
        "high": "pressure.high",
        "high_high": "pressure.high",
        None: "pressure.normal",
    },
    "threshold": {
        "low": "threshold.low",
        "low_low": "threshold.low",
        "high": "threshold.high",
        "high_high": "threshold.high",
        None: "threshold.normal",
    },
}
# The more severe threshold wins when several are active.
_SEVERITY_ORDER: tuple[LevelName, ...] = ("high_high", "low_low", "high", "low")


@dataclass(frozen=True)
class ThresholdLevel:
    name: LevelName
    value: float
    hysteresis: float


@dataclass(frozen=True)
class ThresholdSpec:
    """Effective threshold settings of one point."""

    family: str
    levels: tuple[ThresholdLevel, ...]
    k: int
    n: int
    on_delay_s: float


@dataclass(frozen=True)
class RateSpec:
    """Effective rate-of-change settings: alarm ``kind`` when the value moves in
    ``direction`` faster than ``per_min`` (units per minute) over ``window_s``; ``cleared_kind``
    when it settles."""

    kind: str
    cleared_kind: str
    direction: Literal["up", "down"]
    per_min: float
    window_s: float


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def threshold_spec(
    point: Point,
    device_rules: DeviceRulesConfig,
    rules: RulesConfig,
    gas_site: GasSiteLimits | None = None,
) -> ThresholdSpec | None:
    """Thresholds of a point from its role, the device rules and the point overrides;
    ``None`` when it has none. A detector on a gas site (``gas_site``) takes the %LEL alarm
    levels of the site's kind over the ``rules.gas`` ones (a point override still wins)."""
    p = device_rules.point(point.name)
    role = point.role
    values: dict[str, float | None]
    if role == "level_mm":
        lv = rules.level
        family, hyst_default, k, n, delay = "level", lv.hysteresis_mm, lv.k, lv.n, lv.on_delay_s
        values = {
            "high": _first(p.high, device_rules.level_high_mm, lv.high_mm),
            "high_high": _first(p.high_high, device_rules.level_high_high_mm, lv.high_high_mm),
        }
    elif role in GAS_ROLES:
        g = rules.gas
        family, hyst_default, k, n, delay = "gas", None, g.k, g.n, g.on_delay_s
        if role == "gas_o2_pct":
            hyst_default = g.o2_hysteresis_pct_vol
            values = {
                "low_low": p.low_low,
                "low": _first(p.low, g.o2_low_pct),
                "high": _first(p.high, g.o2_high_pct),
                "high_high": p.high_high,
            }
        else:
            lel = (g.lel_alarm1, g.lel_alarm2)
            if gas_site is not None:
                lel = (gas_site.alarm1_lel, gas_site.alarm2_lel)
            alarm1, alarm2 = {
                "gas_lel": lel,
                "gas_h2s_ppm": (g.h2s_limit_ppm, 2 * g.h2s_limit_ppm),
                "gas_co_ppm": (g.co_limit_ppm, 2 * g.co_limit_ppm),
            }[role]
            values = {"high": _first(p.high, alarm1), "high_high": _first(p.high_high, alarm2)}
    elif role == "pressure_bar":
        pr = rules.pressure
        family, hyst_default, k, n, delay = "pressure", pr.hysteresis_bar, pr.k, pr.n, 0.0
        values = {
            "low_low": p.low_low,
            "low": _first(p.low, device_rules.pressure_low_bar, pr.low_bar),
            "high": _first(p.high, device_rules.pressure_high_bar, pr.high_bar),
            "high_high": p.high_high,
        }
    else:
        family, hyst_default, k, n, delay = "threshold", 0.0, 1, 1, 0.0
        values = {"low_low": p.low_low, "low": p.low, "high": p.high, "high_high": p.high_high}
    levels = []
    for name, value in values.items():
        if value is None:
            continue
        if p.hysteresis is not None:
            hysteresis = p.hysteresis
        elif hyst_default is None:  # gas: a percentage of each threshold
            hysteresis = abs(value) * rules.gas.hysteresis_pct / 100.0
        else:
            hysteresis = hyst_default
        levels.append(ThresholdLevel(name, value, hysteresis))  # type: ignore[arg-type]
    if not levels:
        return None
    return ThresholdSpec(
        family=family,
        levels=tuple(levels),
        k=p.k if p.k is not None else k,
        n=p.n if p.n is not None else n,
        on_delay_s=p.on_delay_s if p.on_delay_s is not None else delay,
    )


def rate_spec(point: Point, device_rules: DeviceRulesConfig, rules: RulesConfig) -> RateSpec | None:
    """Rate-of-change alarm of a point: level rising (``level_mm``) or pressure dropping
    (``pressure_bar``); ``None`` when off."""
    p = device_rules.point(point.name)
    if point.role == "level_mm":
        per_min = _first(p.rise_per_min, rules.level.rise_mm_per_min)
        window = rules.level.rise_window_s
        kind, cleared, direction = "level.rising", "level.rising.cleared", "up"
    elif point.role == "pressure_bar":
        per_min = _first(p.rise_per_min, rules.pressure.drop_bar_per_min)
        window = rules.pressure.drop_window_s
        kind, cleared, direction = "pressure.drop", "pressure.drop.cleared", "down"
    else:
        return None
    if per_min is None or per_min <= 0:
        return None
    return RateSpec(
        kind=kind,
        cleared_kind=cleared,
        direction=direction,  # type: ignore[arg-type]
        per_min=per_min,
        window_s=window,
    )


class ThresholdRule:
    """State of one point against its thresholds; an event on every change of state.

    The state is the most severe active threshold (high_high, low_low, high, low) or normal.
    Escalating high -> high_high emits ``level.high_high``; falling back emits ``level.high``
    with ``previous``; all clear emits the family's normal kind. Only GOOD values count.
    """

    def __init__(self, device: str, point: Point, spec: ThresholdSpec):
        self.device = device
        self.point = point
        self.spec = spec
        self.kinds = KINDS[spec.family]
        self.alarms = {
            level.name: Alarm(
                level.value,
                direction="below" if level.name.startswith("low") else "above",
                hysteresis=level.hysteresis,
                k=spec.k,
                n=spec.n,
                on_delay_s=spec.on_delay_s,
            )
            for level in spec.levels
        }
        self.state: str | None = None
        raises = tuple(dict.fromkeys(k for n, k in self.kinds.items() if n is not None))
        self.condition = Condition(spec.family, raises, (self.kinds[None],), point.name)

    def raised(self) -> bool:
        return self.state is not None

    def carry_over(self, old: ThresholdRule, *, same_device: bool) -> None:
        """Continue from this point's rule before a reload: the state consumers were told
        (so a threshold still crossed is not announced again, and one the new settings no
        longer cross is cleared), and each threshold's evidence where it still applies (see
        ``Alarm.carry_over``). Nothing when the point is now judged by another family."""
        if old.spec.family != self.spec.family:
            return
        self.state = old.state
        for name, alarm in self.alarms.items():
            if name in old.alarms:
                alarm.carry_over(old.alarms[name], evidence=same_device)

    def __call__(self, reading: Reading) -> list[EventDraft]:
        value = good_number(reading)
        if value is None:
            return []
        for alarm in self.alarms.values():
            alarm.update(value, reading.ts)
        new = next((n for n in _SEVERITY_ORDER if n in self.alarms and self.alarms[n].active), None)
        if new == self.state:
            return []
        previous, self.state = self.state, new
        kind = self.kinds[new]
        if previous is not None and kind == self.kinds[previous]:
            return []  # e.g. pressure low -> low_low: same kind, nothing new to say
        return [
            EventDraft.of(
                self.device,
                kind,
                reading.ts,
                point=self.point.name,
                value=value,
                unit=self.point.unit,
                threshold=self.alarms[new].threshold if new else None,
                previous=self.kinds[previous] if previous else None,
            )
        ]


class RateRule:
    """A rate-of-change alarm: raises ``spec.kind`` when the value moves faster than
    ``per_min`` in ``direction``; clears (``spec.cleared_kind``) below half that rate.

    A level's rate is taken through a median of the last three samples: one stray radar echo
    (foam, a ladder, a person in the manhole) is no rise."""

    def __init__(self, device: str, point: Point, spec: RateSpec):
        self.device = device
        self.point = point
        self.spec = spec
        self.alarm = RateAlarm(spec.window_s, spec.per_min, spec.direction)
        self._recent: deque[float] | None = deque(maxlen=3) if point.role == "level_mm" else None
        self.condition = Condition(spec.kind, (spec.kind,), (spec.cleared_kind,), point.name)

    def raised(self) -> bool:
        return self.alarm.active

    def carry_over(self, old: RateRule, *, same_device: bool) -> None:
        """Continue from this point's rate rule before a reload (see ``RateAlarm``); the
        median's last samples only for the same device."""
        if old.spec.kind == self.spec.kind:
            self.alarm.carry_over(old.alarm, evidence=same_device)
            if same_device and self._recent is not None and old._recent is not None:
                self._recent.extend(old._recent)

    def __call__(self, reading: Reading) -> list[EventDraft]:
        value = good_number(reading)
        if value is None:
            return []
        if self._recent is not None:
            self._recent.append(value)
            value = sorted(self._recent)[len(self._recent) // 2]
        rate, transition = self.alarm.update(value, reading.ts)
        if rate is None or transition is None:
            return []
        kind = self.spec.kind if transition is Transition.RAISE else self.spec.cleared_kind
        return [
            EventDraft.of(
                self.device,
                kind,
                reading.ts,
                point=self.point.name,
                value=value,
                unit=self.point.unit,
                rate_per_min=round(rate, 3),
                threshold_per_min=self.spec.per_min,
            )
        ]
