"""Gas sites: concentration, pressure and flow read together.

A detector reading gas is a warning; a pressure drop on the line is a warning; both at one
site within ``coincide_s`` of each other is a leak on that line, worse than either
(``gas.leak_suspected``, critical). A flow surge (the flow ``flow_surge_pct`` above its median
over ``flow_baseline_s``) while the pressure falls is the same evidence from a flow meter: gas
is leaving the line somewhere. "Gas present" is the site kind's ``present_lel``
(``edge_agent.rules.network.GAS_SITE_KINDS``), lower than its first alarm: with the line
losing pressure, a reading well above background is enough. It clears once neither gas nor
the line's evidence has been seen for ``clear_after_s``.

The site kind also sets its detectors' first and second alarm (``gas.alarm1`` /
``gas.alarm2``, wired by the engine): GB/T 50493-2019 (25 / 50 %LEL) at stations, valve
chambers and premises, GB 50838-2015 (20 / 35 %LEL) in a utility tunnel's gas compartment.
"""

from __future__ import annotations

import statistics
from collections import deque

from drivers.model import Reading
from edge_agent.events import EventDraft
from edge_agent.rules.alarm import Latch, RateAlarm, Transition, good_number
from edge_agent.rules.config import GasLeakConfig, PressureConfig
from edge_agent.rules.network import GasSite, gas_limits

__all__ = ["GasLeakRule"]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _recent(at: float | None, ts: float, within_s: float) -> bool:
    return at is not None and -within_s <= ts - at <= within_s


class GasLeakRule:
    """The combined evidence at one ``GasSite`` (see the module docstring)."""

    def __init__(self, site: GasSite, config: GasLeakConfig, pressure: PressureConfig):
        self.site = site
        self.config = config
        self.present_lel = gas_limits(site).present_lel
        self.lel: dict[str, float] = {}
        self.present_at: float | None = None
        self.drops: dict[str, RateAlarm] = {}
        if pressure.drop_bar_per_min:
            self.drops = {
                name: RateAlarm(pressure.drop_window_s, pressure.drop_bar_per_min, "down")
                for name in site.pressure
            }
        self.pressure: dict[str, float] = {}
        self.pressure_rate: dict[str, float] = {}
        self.drop_at: float | None = None
        self.flows: dict[str, deque[tuple[float, float]]] = {name: deque() for name in site.flow}
        self.flow: dict[str, float] = {}
        self.surge_at: float | None = None
        self.latch = Latch(config.clear_after_s)

    def carry_over(self, old: GasLeakRule, *, same_device: bool) -> None:
        """Continue from this site's rule before a reload: suspected or not always; the
        readings and the times of the evidence only with ``same_device`` and the same site."""
        self.latch.carry_over(old.latch, evidence=same_device)
        if not (same_device and old.site == self.site):
            return
        self.lel, self.present_at = old.lel, old.present_at
        for name, drop in self.drops.items():
            if name in old.drops:
                drop.carry_over(old.drops[name])
        self.pressure, self.pressure_rate, self.drop_at = (
            old.pressure,
            old.pressure_rate,
            old.drop_at,
        )
        self.flows, self.flow, self.surge_at = old.flows, old.flow, old.surge_at

    def on_gas(self, reading: Reading) -> list[EventDraft]:
        value = good_number(reading)
        if value is None:
            return []
        self.lel[reading.device] = value
        if value >= self.present_lel:
            self.present_at = reading.ts
        return self._evaluate(reading.ts)

    def on_pressure(self, reading: Reading) -> list[EventDraft]:
        value = good_number(reading)
        alarm = self.drops.get(reading.device)
        if value is None:
            return []
        self.pressure[reading.device] = value
        if alarm is not None:
            rate, _ = alarm.update(value, reading.ts)
            if rate is not None:
                self.pressure_rate[reading.device] = rate
            if alarm.active:
                self.drop_at = reading.ts
        return self._evaluate(reading.ts)

    def on_flow(self, reading: Reading) -> list[EventDraft]:
        value = good_number(reading)
        history = self.flows.get(reading.device)
        if value is None or history is None:
            return []
        ts = reading.ts
        while history and (history[0][0] < ts - self.config.flow_baseline_s or history[0][0] > ts):
            history.popleft()
        falling = any(rate < 0 for rate in self.pressure_rate.values())
        if len(history) >= 3:
            normal = statistics.median(v for _, v in history)
            if normal > 0 and value >= normal * (1 + self.config.flow_surge_pct / 100) and falling:
                self.surge_at = ts
        history.append((ts, value))
        self.flow[reading.device] = value
        return self._evaluate(ts)

    def reasons(self, ts: float) -> list[str]:
        within = self.config.coincide_s
        if not _recent(self.present_at, ts, within):
            return []
        out = []
        if _recent(self.drop_at, ts, within):
            out.append("gas with a pressure drop")
        if _recent(self.surge_at, ts, within):
            out.append("gas with a flow surge")
        return out

    def _evaluate(self, ts: float) -> list[EventDraft]:
        reasons = self.reasons(ts)
        transition = self.latch.update(bool(reasons), ts)
        if transition is None:
            return []
        kind = (
            "gas.leak_suspected" if transition is Transition.RAISE else "gas.leak_suspected.cleared"
        )
        site = self.site
        return [
            EventDraft.of(
                site.detectors[0],
                kind,
                ts,
                site=site.id,
                site_kind=site.kind,
                reasons=reasons,
                lel=max(self.lel.values(), default=None),
                pressure_bar=_rounded(min(self.pressure.values(), default=None)),
                pressure_rate_bar_per_min=_rounded(min(self.pressure_rate.values(), default=None)),
                flow=_rounded(max(self.flow.values(), default=None)),
            )
        ]
