"""Rules that span devices of one site (one gateway).

- ``BlockageRule``: a sewer level rising steadily while every rain gauge it asks has been dry
  for ``dry_for_s`` gives ``sewer.blockage_suspected`` (the signature of a pipe blocked by
  debris: no rain explains the rise). It clears (``sewer.blockage_suspected.cleared``) when
  the rise stops, not when rain starts: rain does not unblock a pipe.
- ``OverflowRule``: at a pump station, a pump fault, the high-high float, or every pump
  running with the wet well still rising gives ``overflow.risk``; all of them gone for
  ``clear_after_s`` gives ``overflow.risk.cleared``. ``data.reasons`` says which.
"""

from __future__ import annotations

from drivers.model import Quality, Reading
from edge_agent.events import EventDraft
from edge_agent.rules.alarm import Latch, RateAlarm, Transition, good_number
from edge_agent.rules.config import BlockageConfig, OverflowConfig

__all__ = ["BlockageRule", "OverflowRule"]


class BlockageRule:
    """Level rising in dry weather at one level gauge; ``gauges`` are rain-gauge device
    names whose ``rain_rate_mm_h`` readings say whether it is dry."""

    def __init__(self, device: str, gauges: tuple[str, ...], config: BlockageConfig):
        self.device = device
        self.gauges = gauges
        self.config = config
        self.rising = RateAlarm(config.window_s, config.rise_mm_per_min)
        self.dry_since: dict[str, float | None] = dict.fromkeys(gauges)
        self.last_rain: dict[str, float | None] = dict.fromkeys(gauges)
        self.active = False

    def carry_over(self, old: BlockageRule, *, same_device: bool) -> None:
        """Continue from this gauge's rule before a reload: suspected or not always; the
        rise and the dry spell of each gauge it still asks only for the same device."""
        self.active = old.active
        self.rising.carry_over(old.rising, evidence=same_device)
        if same_device:
            for gauge in self.gauges:
                if gauge in old.dry_since:
                    self.dry_since[gauge] = old.dry_since[gauge]
                    self.last_rain[gauge] = old.last_rain[gauge]

    def on_rain(self, reading: Reading) -> list[EventDraft]:
        value = good_number(reading)
        if value is None or reading.device not in self.dry_since:
            return []
        self.last_rain[reading.device] = value
        if value > self.config.dry_rain_mm_h:
            self.dry_since[reading.device] = None
        elif (since := self.dry_since[reading.device]) is None or reading.ts < since:
            self.dry_since[reading.device] = reading.ts  # (earlier: the clock stepped back)
        return []

    def dry(self, ts: float) -> bool:
        return all(
            since is not None and ts - since >= self.config.dry_for_s
            for since in self.dry_since.values()
        )

    def on_level(self, reading: Reading) -> list[EventDraft]:
        value = good_number(reading)
        if value is None:
            return []
        rate, _ = self.rising.update(value, reading.ts)
        # Once raised it stays until the rise ends; raising needs dry weather.
        active = self.rising.active and (self.active or self.dry(reading.ts))
        if active == self.active:
            return []
        self.active = active
        kind = "sewer.blockage_suspected" if active else "sewer.blockage_suspected.cleared"
        return [
            EventDraft.of(
                self.device,
                kind,
                reading.ts,
                level=value,
                rate_mm_per_min=round(rate, 3) if rate is not None else None,
                rain_gauges=list(self.gauges),
                rain_mm_h=[self.last_rain[g] for g in self.gauges],
            )
        ]


class OverflowRule:
    """Overflow risk at one pump station (``device``), from its pumps and wet-well level."""

    def __init__(self, device: str, pumps: tuple[str, ...], config: OverflowConfig):
        self.device = device
        self.running: dict[str, bool | None] = dict.fromkeys(pumps)
        self.faults: dict[str, bool] = {}
        self.float_high_high = False
        self.rising = RateAlarm(config.window_s, config.rise_mm_per_min)
        self.level: float | None = None
        self.latch = Latch(config.clear_after_s)

    def carry_over(self, old: OverflowRule, *, same_device: bool) -> None:
        """Continue from this station's rule before a reload: at risk or not always; the
        pumps, float, faults and wet-well rise last seen only for the same device."""
        self.latch.carry_over(old.latch, evidence=same_device)
        self.rising.carry_over(old.rising, evidence=same_device)
        if same_device:
            for pump in self.running:
                self.running[pump] = old.running.get(pump)
            self.faults = dict(old.faults)
            self.float_high_high, self.level = old.float_high_high, old.level

    def reasons(self) -> list[str]:
        out = [f"{name} faulted" for name, on in sorted(self.faults.items()) if on]
        if self.float_high_high:
            out.append("high-high float")
        if self.running and all(self.running.values()) and self.rising.active:
            out.append("all pumps running and the wet well still rising")
        return out

    def on_pump(self, reading: Reading, role: str | None) -> list[EventDraft]:
        if reading.quality is not Quality.GOOD or not isinstance(reading.value, bool):
            return []
        if role == "pump_running":
            self.running[reading.point] = reading.value
        elif role == "pump_fault":
            self.faults[reading.point] = reading.value
        elif role == "float_high_high":
            self.float_high_high = reading.value
        return self._evaluate(reading.ts)

    def on_level(self, reading: Reading) -> list[EventDraft]:
        value = good_number(reading)
        if value is None:
            return []
        self.level = value
        self.rising.update(value, reading.ts)
        return self._evaluate(reading.ts)

    def _evaluate(self, ts: float) -> list[EventDraft]:
        reasons = self.reasons()
        transition = self.latch.update(bool(reasons), ts)
        if transition is None:
            return []
        kind = "overflow.risk" if transition is Transition.RAISE else "overflow.risk.cleared"
        return [EventDraft.of(self.device, kind, ts, reasons=reasons, level_mm=self.level)]
