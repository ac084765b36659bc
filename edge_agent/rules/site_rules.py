"""Rules that span devices of one site (one gateway).

- ``BlockageRule``: a sewer level rising steadily while every rain gauge it asks has been dry
  for ``dry_for_s`` gives ``sewer.blockage_suspected`` (the signature of a pipe blocked by
  debris: no rain explains the rise). It clears (``sewer.blockage_suspected.cleared``) when
  the rise stops, not when rain starts: rain does not unblock a pipe.
- ``OverflowRule``: at a pump station, a pump fault, the high-high float, every pump
  running with the wet well still rising, or (with the station's ``WetWell`` known) the well
  above its assist level and due to reach its overflow level within ``eta_s``, or rain
  heavier than its duty pumps can pass with too little storage left, gives
  ``overflow.risk``; all of them gone for ``clear_after_s`` gives ``overflow.risk.cleared``.
  ``data.reasons`` says which, ``data.eta_min`` how soon it would spill.

A gateway whose site file describes its sewer network (``edge_agent.rules.network``) uses
``edge_agent.rules.sewer.ReachBlockageRule`` for the gauges on a reach instead of
``BlockageRule``, and never runs either on a wet well (``edge_agent.rules.wet_well``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from drivers.model import Quality, Reading
from edge_agent.events import EventDraft
from edge_agent.rules.alarm import Latch, RateAlarm, Transition, good_number
from edge_agent.rules.config import BlockageConfig, OverflowConfig
from edge_agent.rules.network import WetWell
from edge_agent.rules.sewer import DryWeather
from edge_agent.rules.station_storm import StationStormForecast, StormEta
from edge_agent.rules.trend import LineFit
from edge_agent.rules.wet_well import UPSTREAM_QUIET_S

__all__ = ["BlockageRule", "OverflowRule"]

# A storm's run-off is a risk only once the well bears it out: its inflow measured at this
# share of what the duty pumps pass (before that, the catchment has not sent it yet, or the
# rain gauge sees a cell that is not over the catchment).
STORM_CONFIRM_SHARE = 0.5
# The sewer above is emptying into the well when the top of a reach draining into it stands
# at DRAIN_SHARE or less of its highest over the last DRAIN_WINDOW_S (its backwater draining
# once a crew clears the blockage; a storm raises it instead).
DRAIN_WINDOW_S = 600.0
DRAIN_SHARE = 0.7
# The well's inflow is its rise over at most this long since a pump last started or stopped
# (known again a minute after a start: a storm fills a small well in ten).
INFLOW_WINDOW_S = 120.0
# Above ``near_rim_fraction`` of its overflow level, the sewer above emptying into the well is
# still no risk by itself once its rise is seen topping out (slowing down, with no pump
# started over the rate window) under the spill by at least half the margin between
# ``near_rim_fraction`` and the spill: the surge of a cleared blockage is a finite volume.
TOP_OUT_MARGIN_SHARE = 0.5


class BlockageRule:
    """Level rising in dry weather at one level gauge; ``rain`` says whether it is dry."""

    def __init__(self, device: str, rain: DryWeather, config: BlockageConfig):
        self.device = device
        self.rain = rain
        self.gauges = rain.gauges
        self.rising = RateAlarm(config.window_s, config.rise_mm_per_min)
        self.active = False

    def carry_over(self, old: BlockageRule, *, same_device: bool) -> None:
        """Continue from this gauge's rule before a reload: suspected or not always; the
        rise and the dry spell of each gauge it still asks only for the same device."""
        self.active = old.active
        self.rising.carry_over(old.rising, evidence=same_device)
        if same_device:
            self.rain.carry_over(old.rain)

    def on_rain(self, reading: Reading) -> list[EventDraft]:
        return self.rain.on_rain(reading)

    def dry(self, ts: float) -> bool:
        return self.rain.dry(ts)

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
                rain_mm_h=self.rain.rain_mm_h(),
            )
        ]


def _never() -> float | None:
    return None


class OverflowRule:
    """Overflow risk at one pump station (``device``), from its pumps and wet-well level.

    With the station's ``WetWell`` known it also looks ahead: the well above its assist
    level and due to spill within ``eta_s`` at its recent rate (measured only once the last
    pump to start has had ``window_s`` to act), or, with ``rain`` given and the well's
    ``storm_l_s_per_mm_h``, ``pump_l_s`` and ``duty_pumps``, rain heavier than the duty pumps
    can pass: its storage left over the excess is the time to the spill, once the well bears
    the storm out (its inflow, the rise plus what the running pumps move, at
    ``STORM_CONFIRM_SHARE`` of the duty pumps: at the first minutes of rain the catchment
    has not sent it yet, and a cell over the rain gauge may miss the catchment).

    In dry weather a rise is no risk by itself just after a reach draining into the station
    was suspected blocked (``upstream_blocked``: the sewer above emptying into the well, see
    ``_upstream_emptying``), nor at the assist level before the assist pump is seen to start.
    """

    def __init__(
        self,
        device: str,
        pumps: tuple[str, ...],
        config: OverflowConfig,
        well: WetWell | None = None,
    ):
        self.device = device
        self.config = config
        self.well = well
        self.rain: DryWeather | None = None  # set by the network wiring
        self.eta_min: float | None = None
        self.running: dict[str, bool | None] = dict.fromkeys(pumps)
        self.faults: dict[str, bool] = {}
        self.float_high_high = False
        self.rising = RateAlarm(config.window_s, config.rise_mm_per_min)
        self._late_rise = LineFit(config.window_s / 2)  # the rate window's last half
        self.level: float | None = None
        self._recent: deque[float] = deque(maxlen=3)
        self._last_start: float | None = None
        self._backed_up_at: float | None = None
        self._above_floor_since: float | None = None  # the well above its assist level since
        self.latch = Latch(config.clear_after_s)
        # the pumps that run but move nothing (set by the network wiring: the wet-well rule's)
        self.pumps_not_moving: Callable[[], frozenset[str]] = frozenset
        # when a reach draining into the station was last suspected blocked (set by the
        # network wiring: the latest ``last_active`` of those reaches' rules)
        self.upstream_blocked: Callable[[], float | None] = _never
        # the levels of the tops of those reaches over DRAIN_WINDOW_S (fed by the wiring)
        self._tops: dict[str, deque[tuple[float, float]]] = {}
        self._segment = LineFit(INFLOW_WINDOW_S)  # the level since a pump started or stopped
        self.forecast: StationStormForecast | None = None
        if well is not None and well.area_m2 is not None and well.pump_l_s is not None:
            self.forecast = StationStormForecast(well.storm_l_s_per_mm_h)
        self._eta: StormEta | None = None  # the forecast of the last inflow measured
        self._eta_at: float | None = None
        self._inflow_now: float | None = None

    def carry_over(self, old: OverflowRule, *, same_device: bool) -> None:
        """Continue from this station's rule before a reload: at risk or not always; the
        pumps, float, faults, wet-well rise, rain, the time above the assist level and the
        tops of the reaches draining into it last seen only for the same device."""
        self.latch.carry_over(old.latch, evidence=same_device)
        self.rising.carry_over(old.rising, evidence=same_device)
        if same_device:
            for pump in self.running:
                self.running[pump] = old.running.get(pump)
            self.faults = dict(old.faults)
            self.float_high_high, self.level = old.float_high_high, old.level
            self._recent.extend(old._recent)
            self._last_start, self._segment = old._last_start, old._segment
            self._late_rise = old._late_rise
            self._above_floor_since, self._tops = old._above_floor_since, old._tops
            if self.forecast is not None and old.forecast is not None:
                self.forecast.carry_over(old.forecast)
            if self.rain is not None and old.rain is not None:
                self.rain.carry_over(old.rain)

    def reasons(self, ts: float) -> list[str]:
        out = [f"{name} faulted" for name, on in sorted(self.faults.items()) if on]
        if self.float_high_high:
            out.append("high-high float")
        self.eta_min = None
        if self._upstream_emptying(ts):
            return out  # its rise is the sewer above emptying: its spill is not in sight
        if self.running and all(self.running.values()) and self.rising.active:
            out.append("all pumps running and the wet well still rising")
        rising = self._rising_eta_min(ts)
        if rising is not None and rising * 60.0 <= self.config.eta_s:
            self.eta_min = rising
            out.append(f"rising to overflow in {rising:.0f} min")
        storm = self._storm_eta_min()
        if storm is not None:
            self.eta_min = storm if self.eta_min is None else min(self.eta_min, storm)
            out.append(
                f"storm inflow beyond the pumps: overflow in {storm:.0f} min at the earliest"
            )
        return out

    def _upstream_emptying(self, ts: float) -> bool:
        """Is the well's rise a blocked sewer above emptying into it, and no overflow risk by
        itself? Within ``UPSTREAM_QUIET_S`` after a reach draining into the station was last
        suspected blocked (a crew clearing it sends the backed-up sewer down as a surge, which
        filled wells to 0.7-0.9 of their depth and spilled none on the dev seeds), with no
        pump fault nor high-high float, no pump moving nothing, the rain's run-off bringing
        less than ``STORM_CONFIRM_SHARE`` of the duty pumps' flow, and the well under
        ``near_rim_fraction`` of its overflow level (above it, really near its spill, the
        rise is warned whatever fills the well)."""
        at = self.upstream_blocked()
        well, level = self.well, self.level
        if at is None or not 0 <= ts - at <= UPSTREAM_QUIET_S:
            return False
        if well is None or well.overflow_mm is None or level is None:
            return False
        if any(self.faults.values()) or self.float_high_high:
            return False
        if self.pumps_not_moving() & set(self.running):
            return False
        if level >= self.config.near_rim_fraction * well.overflow_mm and not self._topping_out(ts):
            return False
        return self._sewer_above_draining(ts) and self._rain_explains_little(ts)

    def _topping_out(self, ts: float) -> bool:
        """Is the well's rise slowing down to a top under its spill (by ``TOP_OUT_MARGIN_SHARE``
        of the margin above ``near_rim_fraction``)? The rate window's slope is the rate at its
        middle, its last half's a quarter of the window later: their difference over that
        time is the slowing; held on, the rise stops at ``rate^2 / (2 x slowing)`` above the
        level. Not with a pump started within the window (a step down, not a slowing), nor
        while the rise is not slowing."""
        well, level = self.well, self.level
        if well is None or well.overflow_mm is None or level is None:
            return False
        window = self.config.window_s
        if self._last_start is not None and 0 <= ts - self._last_start < window:
            return False
        whole, late = self.rising.rate.rate(), self._late_rise.slope()
        if whole is None or late is None or late >= whole:
            return False
        quarter_min = window / 4 / 60.0
        slowing = (whole - late) / quarter_min  # mm/min per min
        now = late - slowing * quarter_min  # the rate at the last reading
        top = level + max(now, 0.0) ** 2 / (2.0 * slowing)
        margin = (1.0 - self.config.near_rim_fraction) * well.overflow_mm
        return top < well.overflow_mm - TOP_OUT_MARGIN_SHARE * margin

    def _sewer_above_draining(self, ts: float) -> bool:
        """The top of a reach draining into the station at ``DRAIN_SHARE`` or less of its
        highest over ``DRAIN_WINDOW_S``: a backwater draining, not a storm (a rain gauge
        clogged in a storm read dry while a false blockage stood: the rise was the storm's)."""
        for levels in self._tops.values():
            if not levels or not 0 <= ts - levels[-1][0] <= DRAIN_WINDOW_S:
                continue  # (a gauge silent for a while says nothing of now)
            if levels[-1][1] <= DRAIN_SHARE * max(v for _, v in levels):
                return True
        return False

    def on_top_level(self, reading: Reading) -> list[EventDraft]:
        """A level at the top of a reach draining into the station (for
        ``_sewer_above_draining``)."""
        value = good_number(reading)
        if value is None:
            return []
        levels = self._tops.setdefault(reading.device, deque())
        levels.append((reading.ts, value))
        while levels and not 0 <= reading.ts - levels[0][0] <= DRAIN_WINDOW_S:
            levels.popleft()
        return []

    def _rain_explains_little(self, ts: float) -> bool:
        """The rain's run-off, now or where the recent rain takes it, times the station's
        learnt gain, under ``STORM_CONFIRM_SHARE`` of the duty pumps (a drizzle is no storm);
        without a learnt gain, every rain gauge dry (none known: it cannot be told)."""
        forecast, well = self.forecast, self.well
        if forecast is not None and forecast.gain > 0 and well is not None:
            forecast.runoff.advance(ts)
            runoff = max(forecast.runoff.inflow_l_s, forecast.runoff.ultimate_l_s)
            return forecast.gain * runoff < STORM_CONFIRM_SHARE * self._duty_l_s()
        return self.rain is not None and self.rain.dry(ts)

    def _storm_eta_min(self) -> float | None:
        """The earliest the well spills by the storm forecast, once the well bears the storm
        out (its inflow measured at ``STORM_CONFIRM_SHARE`` of the duty pumps, and foretold to
        pass them): ``None`` otherwise."""
        eta, well, forecast = self._eta, self.well, self.forecast
        if eta is None or eta.earliest is None or well is None or well.pump_l_s is None:
            return None
        if forecast is None or not forecast.raining:
            return None  # a dry-weather surge is no storm: the level's own rate judges it
        duty = self._duty_l_s()
        if self._inflow_now is None or self._inflow_now < STORM_CONFIRM_SHARE * duty:
            return None
        if eta.peak_l_s <= duty:
            return None
        return eta.earliest

    def backs_up(self) -> bool:
        """Is the well high enough to back the sewer above it up (the high-high float, or
        above its assist level: where the sewer's inlet sits in a usual design)? A tripped
        pump with a standby taking over is not."""
        if self.float_high_high:
            return True
        well, level = self.well, self.level
        return (
            well is not None
            and well.assist_mm is not None
            and level is not None
            and (level >= well.assist_mm)
        )

    def backed_up_at(self) -> float | None:
        """When the well last stood that high (its backwater drains for a while after)."""
        return self._backed_up_at

    def _rising_eta_min(self, ts: float) -> float | None:
        """Minutes until the well spills at its recent rate, once above its assist level
        (below it the pumps still have a step to take) and once the last pump to start has
        acted for a whole rate window: ``None`` when not rising there."""
        well, level, floor = self.well, self.level, self._eta_floor_mm()
        if well is None or well.overflow_mm is None or level is None or floor is None:
            return None
        if level < floor:
            return None
        if self._eta is not None and self.forecast is not None and self.forecast.raining:
            return self._eta.central  # the inflow measured now, as the storm's run-off changes it
        if self._last_start is not None and 0 <= ts - self._last_start < self.config.window_s:
            return None
        since = self._above_floor_since
        if (
            since is not None
            and 0 <= ts - since < self.config.window_s
            and self._pump_to_start()
            and self._dry(ts)
        ):
            return None  # the controller starts the assist pump there: not seen yet
        rate = self.rising.rate.rate()
        if rate is None or rate <= 0:
            return None
        return max(well.overflow_mm - level, 0.0) / rate

    def _dry(self, ts: float) -> bool:
        """No rain nor its run-off (the storm forecast's), or without a forecast every rain
        gauge dry; ``False`` when it cannot be told (no rain gauge)."""
        if self.forecast is not None and self.rain is not None:
            return not self.forecast.raining
        return self.rain is not None and self.rain.dry(ts)

    def _eta_floor_mm(self) -> float | None:
        """The level from which the well's time to the spill counts: its assist level."""
        well = self.well
        if well is None or well.overflow_mm is None:
            return None
        if well.assist_mm is not None:
            return well.assist_mm
        return self.config.eta_from_fraction * well.overflow_mm

    def _pump_to_start(self) -> bool:
        """Fewer pumps running (those moving nothing not counted) than the duty pumps the
        controller may still start?"""
        well = self.well
        if well is None:
            return False
        moving = self.pumps_not_moving()
        healthy = len(self.running) - len(moving & set(self.running))
        running = sum(1 for pump, on in self.running.items() if on and pump not in moving)
        return running < min(well.duty_pumps, healthy)

    def _duty_l_s(self) -> float:
        """What the duty pumps pass at their rated flow, those that move nothing (the wet-well
        rule's ``no_drawdown``) not counted."""
        well = self.well
        assert well is not None and well.pump_l_s is not None
        healthy = len(self.running) - len(self.pumps_not_moving() & set(self.running))
        return well.pump_l_s * min(well.duty_pumps, healthy)

    def _inflow_l_s(self, ts: float) -> float | None:
        """The well's inflow now: its rise (mm/min x m2 = l/min) since the pumps last started
        or stopped (over ``INFLOW_WINDOW_S`` at most: a minute after a start it is known again,
        where a whole rate window straddling the start would mix two slopes) plus what its
        running pumps move at their rated flow; ``None`` before that, or with a pump's state
        unknown."""
        well = self.well
        if well is None or well.area_m2 is None or well.pump_l_s is None:
            return None
        rate = self._segment.slope()
        if rate is None or any(on is None for on in self.running.values()):
            return None
        moving = self.pumps_not_moving()
        running = sum(1 for pump, on in self.running.items() if on and pump not in moving)
        return rate * well.area_m2 / 60.0 + running * well.pump_l_s

    def on_pump(self, reading: Reading, role: str | None) -> list[EventDraft]:
        if reading.quality is not Quality.GOOD or not isinstance(reading.value, bool):
            return []
        if role == "pump_running":
            if reading.value and not self.running.get(reading.point):
                self._last_start = reading.ts
            if reading.value != self.running.get(reading.point):
                self._segment.clear()
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
        self._recent.append(value)  # a median of three: one stray echo is no rise
        self.level = sorted(self._recent)[len(self._recent) // 2]
        self.rising.update(self.level, reading.ts)
        self._late_rise.update(self.level, reading.ts)
        floor = self._eta_floor_mm()
        if floor is None or self.level < floor:
            self._above_floor_since = None
        elif self._above_floor_since is None:
            self._above_floor_since = reading.ts
        self._segment.update(self.level, reading.ts)
        self._forecast(reading.ts)
        return self._evaluate(reading.ts)

    def _forecast(self, ts: float) -> None:
        """Feed the storm forecast its rain and the inflow measured now, and ask it when the
        well spills (``self._eta``; ``None`` without a measure of the inflow)."""
        forecast, well, level = self.forecast, self.well, self.level
        if self._eta_at is not None and not 0 <= ts - self._eta_at <= 2 * self.config.window_s:
            self._eta = self._inflow_now = None  # (a pump just started: the last one holds)
        if forecast is None or well is None or level is None or well.overflow_mm is None:
            return
        if self.rain is not None:
            rates = [r for r in self.rain.rain_mm_h() if r is not None]
            forecast.rain(sum(rates) / len(rates) if rates else 0.0, ts)
        inflow = self._inflow_l_s(ts)
        if inflow is None:
            return
        self._inflow_now, self._eta_at = inflow, ts
        forecast.observe(ts, inflow, level, well.overflow_mm)
        assert well.area_m2 is not None and well.pump_l_s is not None  # (a forecast needs them)
        litres_left = max(well.overflow_mm - level, 0.0) * well.area_m2  # mm x m2 = litres
        self._eta = forecast.eta_min(ts, inflow, self._duty_l_s(), litres_left, self.config.eta_s)

    def _evaluate(self, ts: float) -> list[EventDraft]:
        if self.backs_up():
            self._backed_up_at = ts
        reasons = self.reasons(ts)
        transition = self.latch.update(bool(reasons), ts)
        if transition is None:
            return []
        kind = "overflow.risk" if transition is Transition.RAISE else "overflow.risk.cleared"
        return [
            EventDraft.of(
                self.device,
                kind,
                ts,
                reasons=reasons,
                level_mm=self.level,
                eta_min=None if self.eta_min is None else round(self.eta_min, 1),
            )
        ]
