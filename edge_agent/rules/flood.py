"""Road flooding: water standing on a road low point while it rains.

``PondingRule`` watches one road water-depth sensor (a ``PondingSpot``): the depth at or above
``ponding_mm`` in K of the last N samples, while one of its rain gauges has seen rain within
``rain_within_s``, gives ``flood.ponding`` with the depth; back below ``ponding_mm -
hysteresis_mm`` (K of N) for ``clear_after_s`` gives ``flood.ponding.cleared`` with the deepest
water seen. Water on a dry road (a van parked under the sensor, a street cleaner, a burst main)
is not a flood this rule reports. Nor is a jump no water makes: a reading more than
``JUMP_MM`` above the last plausible depth, faster than ``RISE_MM_PER_MIN``, is something
standing under the sensor (a vehicle in the rain); it is set aside until the readings come
back down, or for ``OBSTRUCTION_MAX_S`` at most.
"""

from __future__ import annotations

from drivers.model import Reading
from edge_agent.events import EventDraft
from edge_agent.rules.alarm import Alarm, Latch, Transition, good_number
from edge_agent.rules.config import FloodConfig
from edge_agent.rules.network import PondingSpot
from edge_agent.rules.sewer import DryWeather

__all__ = ["PondingRule"]

RISE_MM_PER_MIN = 50.0  # water on a road rises by centimetres a minute, not decimetres
JUMP_MM = 150.0
OBSTRUCTION_MAX_S = 7200.0


class PondingRule:
    """Flood at one ``PondingSpot`` (see the module docstring)."""

    def __init__(self, spot: PondingSpot, rain: DryWeather, config: FloodConfig):
        self.spot = spot
        self.rain = rain
        self.config = config
        self.deep = Alarm(
            config.ponding_mm, hysteresis=config.hysteresis_mm, k=config.k, n=config.n
        )
        self.latch = Latch(config.clear_after_s)
        self.depth: float | None = None
        self.max_depth: float | None = None
        self._plausible: tuple[float, float] | None = None  # (ts, depth) last taken as water
        self._obstructed_since: float | None = None

    def carry_over(self, old: PondingRule, *, same_device: bool) -> None:
        """Continue from this spot's rule before a reload: flooded or not always; the depth
        window and the rain only for the same device."""
        self.latch.carry_over(old.latch, evidence=same_device)
        self.deep.carry_over(old.deep, evidence=same_device)
        if same_device:
            self.depth, self.max_depth = old.depth, old.max_depth
            self._plausible, self._obstructed_since = old._plausible, old._obstructed_since
            self.rain.carry_over(old.rain)

    def _obstructed(self, value: float, ts: float) -> bool:
        last = self._plausible
        if last is None or ts < last[0]:
            self._plausible = (ts, value)
            return False
        allowance = max(JUMP_MM, RISE_MM_PER_MIN * (ts - last[0]) / 60.0)
        if value > last[1] + allowance:
            if self._obstructed_since is None:
                self._obstructed_since = ts
            if ts - self._obstructed_since < OBSTRUCTION_MAX_S:
                return True
        self._obstructed_since = None
        self._plausible = (ts, value)
        return False

    def on_depth(self, reading: Reading) -> list[EventDraft]:
        value = good_number(reading)
        if value is None:
            return []
        ts = reading.ts
        if self._obstructed(value, ts):
            return []
        self.depth = value
        self.deep.update(value, ts)
        raining = self.rain.rained_within(ts, self.config.rain_within_s)
        flooded = self.deep.active and (self.latch.active or raining)
        if flooded:
            self.max_depth = max(self.max_depth or value, value)
        transition = self.latch.update(flooded, ts)
        if transition is None:
            return []
        deepest = self.max_depth
        if transition is Transition.CLEAR:
            self.max_depth = None
        kind = "flood.ponding" if transition is Transition.RAISE else "flood.ponding.cleared"
        return [
            EventDraft.of(
                self.spot.device,
                kind,
                ts,
                depth_mm=round(value, 1),
                max_depth_mm=None if deepest is None else round(deepest, 1),
                threshold_mm=self.config.ponding_mm,
                rain_gauges=list(self.rain.gauges),
                rain_mm_h=self.rain.rain_mm_h(),
            )
        ]
