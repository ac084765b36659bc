"""Rules on the sewer network: blockages between two gauges, and manholes about to overflow.

- ``DryWeather``: whether the rain gauges a rule asks have all been dry long enough, and
  whether any saw rain lately (shared by the blockage, flood and wet-well rules).
- ``ReachBlockageRule``: on a ``SewerReach``, the two ends pulling apart in dry weather:
  upstream rising while downstream falls or stays, or downstream falling (starved) while
  upstream holds. Each end's change is its mean over the last ``reach_recent_s`` against its
  mean over ``reach_baseline_s`` ending ``reach_gap_s`` before that, taken relative
  (``ln(level + reach_floor_mm)``): depth follows flow the same way at both ends, so a dry
  day's diurnal swing, a storm or a flow wave move them together, and 50 mm of dry-weather
  flow falling to 30 is as telling as a metre falling to 60 cm. A blockage between them
  moves them apart. The divergence must reach ``reach_shift_pct``, stand ``reach_min_t``
  standard errors above the gauges' own scatter, come from an upstream end still rising or
  a downstream end clearly starved (against a baseline hour of dry weather: a storm's tail
  recedes faster at the bottom; a step at the top that has stopped is a flow wave on its
  way down), and last ``reach_confirm_s`` (a rise at the top: until a flow wave would have
  reached the bottom; with the bottom unseen for now, half an hour); while the station's
  wet well below stands high (over its assist level, or the high-high float), a rise
  upstream is its backwater, not a blockage, nor for half an hour and a baseline after it
  drains; nor a rise at the top for as long after a reach above was suspected blocked (its
  backwater comes down as a surge when cleared). A stuck gauge (equal readings in a row that
  its own scatter would not give by chance: ``stuck.StuckGauge``) is an unseen end, and starts
  afresh when it moves again. A rise at the top
  with the bottom rising too backs up only if it outruns the flow wave (``OUTRUN``) past
  the top's highs of the last day (``_Swing``). ``sewer.blockage_suspected`` names the
  reach; it clears once both ends are back near where they stood (``reach_clear_after_s``),
  or once they have pulled apart no further for three hours (then ``last_active`` follows
  on until the ends are back: it may still be blocked).
- ``ManholeOverflowRule``: a gauge with a known rim: ``overflow.risk`` when the level will
  reach the rim within ``eta_s`` at its recent rate (above ``eta_from_fraction`` of the
  depth; the rate trusted only as far ahead as the rise has lasted: a surge that fills the
  pipe in two minutes and levels off says little about the next half hour), or stands at
  ``near_rim_fraction`` of it, or (with its design storm) the storm's run-off will put the
  surcharge at the rim within ``eta_s``; ``data.eta_min`` says how soon. The rate's window
  holds at least four and a half of the gauge's poll intervals.

Pure logic: time is the readings' ``ts``; every level goes through a median of three first,
so one stray echo (foam, a ladder, a person in the manhole) moves nothing.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from collections.abc import Callable

from drivers.model import Reading
from edge_agent.events import EventDraft
from edge_agent.rules.alarm import Latch, Transition, good_number
from edge_agent.rules.config import BlockageConfig, OverflowConfig
from edge_agent.rules.network import Manhole, SewerReach
from edge_agent.rules.runoff import DEFAULT_LAG_S, RunoffModel
from edge_agent.rules.stuck import StuckGauge
from edge_agent.rules.trend import LineFit, Trend

__all__ = ["DryWeather", "ManholeOverflowRule", "ReachBlockageRule"]

# A divergence is confirmed when it held at the start of the confirmation and in three
# quarters of the evaluations since: noise at the threshold does not restart it.
CONFIRM_SHARE = 0.75
# A stuck gauge reads the same value every time: its scatter is no measure of its error.
MIN_SHIFT_ERROR = 0.005
# Backing up must still be climbing: the recent window above the one before it by at least
# this part of the divergence asked for.
CLIMB_PARTS = 8
# The baseline's quartiles: "under its usual lows", "over its usual highs".
LOW, HIGH = 0.25, 0.75
# A rise at the top with the bottom unseen for now (a bottom never heard of aside) must hold
# this long: a satellite pump's pulse passes the top in ten to twenty minutes, a blockage
# holds it up.
UNSEEN_CONFIRM_S = 1800.0
# "Starved" is the bottom under its lowest tenth of the baseline hour: a satellite pump's
# pulse spreads as it travels, and passing the bottom it may fill most of that hour; as it
# ebbs the bottom returns to its usual level, which is under the hour's quartile, not under
# its lows.
LOWEST = 0.1
# A raised blockage whose ends have not pulled apart any further for this long clears: the
# situation has settled (if it is still blocked, the crew has been sent long ago).
SETTLED_S = 3 * 3600.0
# A blockage cleared as settled may still be there: its reach counts as blocked (for the
# reaches around it and the station below) until its ends are back, at most this long after
# the last sign of it (blockages are cleared by a crew within a day).
LINGER_S = 24 * 3600.0
# After the sewer below stops backing a reach up, its backwater takes this long to drain.
BACKWATER_DRAIN_S = 1800.0
# A reach of unknown length is taken to be this long (a flow wave's time down it).
DEFAULT_REACH_LENGTH_M = 300.0
# A station's inflow (its wet well's fill rate, mm/min) is measured between pump runs only.
INFLOW_FLOOR_MM_PER_MIN = 5.0
INFLOW_FRESH_S = 900.0
# A manhole's level trend holds at least this many polls (plus one: the window's ends
# fall between polls), whatever the gauge's poll interval; gaps over MAX_POLL_S are outages.
TREND_SAMPLES = 4.5
MAX_POLL_S = 900.0
# ... and compared as a depth would be: a part-full pipe's depth goes as its flow to about
# the power one half, so half the inflow's relative change is the level's.
INFLOW_POWER = 0.5
# A surcharge just over the design storm says little about how the head grows with the flow:
# r^2 - 1 is taken as at least this (a run-off of 1.12 design storms).
MIN_SURCHARGE_RATIO = 0.25
# A manhole's rate is trusted as far ahead as the rise has lasted (times this).
RISE_TRUST = 1.0
# A rise at the top with the bottom rising too is a flow wave (it moves both ends alike, the
# bottom a little less as it spreads on the way), unless the top rose this many times as
# much (``ln`` units) to over anything the last day's flow gave it, still climbing once the
# wave would have reached the bottom: a blockage backing the top up while the flow wave
# that met it passes the bottom.
OUTRUN = 4.0
# The top's day: its ten-minute means over the last day, whose highest is the highest a day's
# flow (its peaks, satellites' pulses) takes it (``OUTRUN``).
SWING_BIN_S = 600.0
SWING_SPAN_S = 24 * 3600.0
SWING_MIN_BINS = 120  # 20 hours: most of a day
SWING_MIN_READINGS = 3  # per bin
# A level gauge's zero drifts (the benchmark draws 30 mm a year, one standard deviation): at
# dry depths of tens of millimetres a zero drifted low makes every change at that end a larger
# relative change than the other end's, and the ends pull apart with no blockage between them
# (``_Zero``). Each calendar day's lowest half-hour mean, over the first and the latest
# ``ZERO_DAYS`` dry, quiet days.
ZERO_DAY_S = 24 * 3600.0
ZERO_BIN_S = 1800.0
ZERO_MIN_READINGS = 3  # per half hour
ZERO_MIN_BINS = 40  # of 48: most of the day heard
ZERO_DAYS = 7


class DryWeather:
    """Rain as seen by ``gauges`` (device names), from their ``rain_rate_mm_h`` readings."""

    def __init__(self, gauges: tuple[str, ...], dry_rain_mm_h: float, dry_for_s: float):
        self.gauges = gauges
        self.dry_rain_mm_h = dry_rain_mm_h
        self.dry_for_s = dry_for_s
        self.dry_since: dict[str, float | None] = dict.fromkeys(gauges)
        self.last_rain: dict[str, float | None] = dict.fromkeys(gauges)
        self.last_wet: dict[str, float | None] = dict.fromkeys(gauges)

    def carry_over(self, old: DryWeather) -> None:
        """Continue the dry spells and last rain of the gauges ``old`` also watched (a
        reload: the rain gauges were polled as before)."""
        for gauge in self.gauges:
            if gauge in old.dry_since:
                self.dry_since[gauge] = old.dry_since[gauge]
                self.last_rain[gauge] = old.last_rain[gauge]
                self.last_wet[gauge] = old.last_wet[gauge]

    def on_rain(self, reading: Reading) -> list[EventDraft]:
        value = good_number(reading)
        if value is None or reading.device not in self.dry_since:
            return []
        gauge = reading.device
        self.last_rain[gauge] = value
        if value > self.dry_rain_mm_h:
            self.dry_since[gauge] = None
            self.last_wet[gauge] = reading.ts
        elif (since := self.dry_since[gauge]) is None or reading.ts < since:
            self.dry_since[gauge] = reading.ts  # (earlier: the clock stepped back)
        return []

    def dry(self, ts: float) -> bool:
        """Every gauge dry for ``dry_for_s`` (a gauge never heard from is not dry)."""
        return bool(self.gauges) and all(
            since is not None and ts - since >= self.dry_for_s for since in self.dry_since.values()
        )

    def rained_within(self, ts: float, within_s: float) -> bool:
        """Any gauge above the dry rate within ``within_s`` before ``ts``."""
        return any(
            wet is not None and -within_s <= ts - wet <= within_s for wet in self.last_wet.values()
        )

    def rain_mm_h(self) -> list[float | None]:
        return [self.last_rain[g] for g in self.gauges]


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


class _Window:
    """Count, sum and sum of squares of the values in one sliding window; with ``sorted``
    also their median."""

    def __init__(self, keep_sorted: bool = False) -> None:
        self.items: deque[tuple[float, float]] = deque()
        self.sorted: list[float] | None = [] if keep_sorted else None
        self.n = 0
        self.sum = self.sumsq = 0.0

    def push(self, ts: float, x: float) -> None:
        self.items.append((ts, x))
        self.n += 1
        self.sum += x
        self.sumsq += x * x
        if self.sorted is not None:
            bisect.insort(self.sorted, x)

    def pop(self) -> tuple[float, float]:
        ts, x = self.items.popleft()
        self.n -= 1
        self.sum -= x
        self.sumsq -= x * x
        if self.sorted is not None:
            del self.sorted[bisect.bisect_left(self.sorted, x)]
        return ts, x

    def clear(self) -> None:
        self.items.clear()
        self.n = 0
        self.sum = self.sumsq = 0.0
        if self.sorted is not None:
            self.sorted.clear()

    def mean(self) -> float:
        return self.sum / self.n

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (nearest rank) of a ``keep_sorted`` window."""
        assert self.sorted is not None
        return self.sorted[min(int(q * self.n), self.n - 1)]

    def var(self) -> float:
        return max(self.sumsq - self.sum * self.sum / self.n, 0.0) / (self.n - 1)


class _Swing:
    """Ten-minute means (``SWING_BIN_S``) of one end's ``ln`` level over the last day, and
    their highest: as high as a day's flow takes that end."""

    def __init__(self) -> None:
        self.bins: deque[float] = deque(maxlen=int(SWING_SPAN_S // SWING_BIN_S))
        self._start: float | None = None
        self._sum = 0.0
        self._n = 0
        self._high: float | None = None  # as of the last bin closed

    def push(self, ts: float, x: float) -> None:
        start = ts - ts % SWING_BIN_S
        if self._start is not None and start != self._start:
            if start < self._start or start - self._start > SWING_SPAN_S:
                self.bins.clear()  # the clock stepped back, or a day unheard: start afresh
            elif self._n >= SWING_MIN_READINGS:
                self.bins.append(self._sum / self._n)
            self._sum, self._n = 0.0, 0
            self._high = max(self.bins) if len(self.bins) >= SWING_MIN_BINS else None
        self._start = start
        self._sum += x
        self._n += 1

    def high(self) -> float | None:
        """The day's highest ten-minute mean; ``None`` before ``SWING_MIN_BINS``."""
        return self._high


class _Zero:
    """How far a level gauge's zero has drifted: its dry nights' lowest level against those of
    its first dry days. A sewer's night flow is the same from one dry week to the next (a few
    per cent with the season's groundwater), so a gauge whose nights read lower and lower has
    a zero drifting low (or high): every reading less that offset is where the sewer stands.
    The lowest half-hour mean of each calendar day (``ZERO_BIN_S``) that was dry and quiet
    throughout (no blockage suspected, no stuck readings) and heard over most of it; the
    reference is the median of the first ``ZERO_DAYS`` such days, the offset the median of the
    last ``ZERO_DAYS`` less it, updated once a day (``_End._rezero`` takes the windows with
    it). The season's groundwater moves a night's flow a little too (a few millimetres of
    offset over the year): far less than a zero drifting tens of millimetres."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.reference: float | None = None
        self.lows: deque[float] = deque(maxlen=ZERO_DAYS)
        self._first: list[float] = []
        self._day: float | None = None
        self._calm = True
        self._bins = 0
        self._bin: float | None = None
        self._sum = 0.0
        self._n = 0
        self._low = math.inf

    def push(self, ts: float, value: float, calm: bool) -> None:
        """Take a raw reading (mm); ``calm``: dry, no blockage, not stuck."""
        day = ts - ts % ZERO_DAY_S
        if self._day is not None and day != self._day:
            self._close_bin()
            if day > self._day and self._calm and self._bins >= ZERO_MIN_BINS:
                self._learn(self._low)
            self._calm, self._bins, self._low = True, 0, math.inf
        self._day = day
        self._calm = self._calm and calm
        start = ts - ts % ZERO_BIN_S
        if self._bin is not None and start != self._bin:
            self._close_bin()
        self._bin = start
        self._sum += value
        self._n += 1

    def _close_bin(self) -> None:
        if self._n >= ZERO_MIN_READINGS:
            self._low = min(self._low, self._sum / self._n)
            self._bins += 1
        self._sum, self._n = 0.0, 0

    def _learn(self, low: float) -> None:
        if self.reference is None:
            self._first.append(low)
            if len(self._first) == ZERO_DAYS:
                self.reference = sorted(self._first)[ZERO_DAYS // 2]
            return
        self.lows.append(low)
        self.offset = sorted(self.lows)[len(self.lows) // 2] - self.reference


class _End:
    """One end of a reach: ``ln(value + floor)`` after a median of three (a level, or a
    station's inflow), in a recent window and a baseline window ``gap_s`` before it. The gap
    lets a change that takes a quarter of an hour show in full before the baseline catches
    up; the baseline is a median, so a satellite pump's pulses that pass through it do not
    move it."""

    def __init__(
        self,
        recent_s: float,
        gap_s: float,
        baseline_s: float,
        floor: float,
        fresh_s: float,
        power: float = 1.0,
        reset_after_s: float | None = None,
        swing: bool = False,
        zero: bool = False,
    ):
        self.power = power
        self.reset_after_s = gap_s if reset_after_s is None else reset_after_s
        self.recent_s = recent_s
        self.gap_s = gap_s
        self.baseline_s = baseline_s
        self.floor = floor
        self.fresh_s = fresh_s
        self.recent = _Window()
        self.gap = _Window()
        self.base = _Window(keep_sorted=True)
        self.slope = LineFit(recent_s)
        self._median: deque[float] = deque(maxlen=3)
        self.last_ts: float | None = None
        self.value: float | None = None
        # |step| between successive raw readings (ln units) over all three windows: the
        # gauge's own scatter, which a slow change (a dry day's swing) hardly enters
        self.steps = _Window(keep_sorted=True)
        self._last_raw: float | None = None
        # the run of equal readings ending now, and whether it is a gauge that has stopped
        # measuring (``_stopped``; an empty pipe reads its invert, 0, over and over: that is
        # no stuck gauge)
        self.gauge = StuckGauge(empty_at_zero=True)
        # a level gauge's drifting zero, learnt from its dry nights (``_Zero``)
        self.zero = _Zero() if zero else None
        # the day's highs (only a reach's top needs them: ``ReachBlockageRule._outrun``)
        self.swing = _Swing() if swing else None

    def update(self, value: float, ts: float, learn: bool = True, dry: bool = False) -> None:
        """Take a reading; with ``learn`` also into the day's swing (not while a blockage
        is suspected, whose backwater and starving are no dry day's), and with ``dry`` too
        into the zero's dry days."""
        if self.zero is not None:
            offset = self.zero.offset
            self.zero.push(ts, value, learn and dry and not self.stuck)
            if self.zero.offset != offset:
                self._rezero(offset)
        raw = self.log(value)
        if self.gauge.moved(value) or (
            self.last_ts is not None
            and (ts < self.last_ts or ts - self.last_ts > self.reset_after_s)
        ):
            for window in (self.recent, self.gap, self.base):  # the clock stepped back, the
                window.clear()  # gauge was silent a while or stuck: start afresh
            self.slope.clear()
            self._median.clear()
            self.steps.clear()
            self._last_raw = None
            self.gauge.forget()
        self.last_ts = ts
        self.gauge.take(value)
        if self._last_raw is not None:
            self.steps.push(ts, abs(raw - self._last_raw))
            span = self.recent_s + self.gap_s + self.baseline_s
            while self.steps.items[0][0] < ts - span:
                self.steps.pop()
        self._stopped()
        self._last_raw = raw
        self._median.append(value)
        self.value = sorted(self._median)[len(self._median) // 2]
        x = self.log(self.value)
        self.recent.push(ts, x)
        edge = ts - self.recent_s
        while self.recent.items[0][0] <= edge:
            self.gap.push(*self.recent.pop())
        edge -= self.gap_s
        while self.gap.items and self.gap.items[0][0] <= edge:
            self.base.push(*self.gap.pop())
        edge -= self.baseline_s
        while self.base.items and self.base.items[0][0] < edge:
            self.base.pop()
        self.slope.update(x, ts)
        if learn and self.swing is not None and not self.stuck:
            self.swing.push(ts, x)

    def _rezero(self, old: float) -> None:
        """Take the windows' samples to the zero's new offset (learnt once a day): a step
        between samples before and after it would read as a change of the sewer."""

        def relog(x: float) -> float:
            return self.log(math.exp(x / self.power) - self.floor + old)

        for window in (self.recent, self.gap, self.base):
            items = list(window.items)
            window.clear()
            for ts, x in items:
                window.push(ts, relog(x))
        self.slope.clear()
        for ts, x in self.recent.items:
            self.slope.update(x, ts)

    def log(self, value: float) -> float:
        """``ln`` of a reading (less the zero's drift) plus the floor, times ``power``."""
        return self.power * math.log(max(value - self.offset(), 0.0) + self.floor)

    def offset(self) -> float:
        """How far the gauge's zero has drifted (mm; 0 until learnt, or for an inflow)."""
        return self.zero.offset if self.zero is not None else 0.0

    @property
    def stuck(self) -> bool:
        """The gauge has stopped measuring (``_stopped``), until its reading changes."""
        return self.gauge.stuck

    def _stopped(self) -> bool:
        """The run of equal readings ending now is more than this gauge gives by chance
        (``StuckGauge.judge``, over its steps of the windows): a stuck gauge, and this end
        unseen until it moves again. (Over zero: an empty pipe reads 0 mm over and over, a starved
        bottom among them. Five alone is no proof: at 1 mm resolution and 2 mm of scatter on
        a flat night flow a live gauge repeats a reading one time in seven, five in a row
        about once a day at a reading a minute; the demo lost its blockage to them.)"""
        assert self.steps.sorted is not None
        zeros = bisect.bisect_right(self.steps.sorted, 0.0)
        return self.gauge.judge(self.steps.n, zeros)

    def fresh(self, ts: float, within_s: float | None = None) -> bool:
        """Heard from lately (within ``fresh_s``, or ``within_s`` if shorter), and not stuck
        (``_stopped``: a gauge that has stopped measuring tells nothing of where the sewer
        stands)."""
        limit = self.fresh_s if within_s is None else min(self.fresh_s, within_s)
        return self.last_ts is not None and 0 <= ts - self.last_ts <= limit and not self.stuck

    def ready(self) -> bool:
        """Both windows hold enough samples (the baseline over half its length)."""
        recent, base = self.recent, self.base
        return (
            recent.n >= 3
            and base.n >= 5
            and base.items[-1][0] - base.items[0][0] >= self.baseline_s / 2
        )

    def shift(self, q: float = 0.5) -> float:
        """The recent mean against the baseline's ``q`` quantile, ``ln`` units (``ready``)."""
        return self.recent.mean() - self.base.quantile(q)

    def noise(self) -> float:
        """The gauge's scatter (one reading's standard deviation, ``ln`` units), from the
        median step between successive readings (a normal step's median is 0.954 sigma):
        a handful of recent readings can look still by chance, so their own spread is no
        measure of it."""
        if self.steps.n < 5 or self.power != 1.0:
            return 0.0  # (a station's inflow: successive rates share most of their readings)
        return self.steps.quantile(0.5) / 0.954

    def error(self) -> float:
        """Standard error of ``shift()`` (a median's variance is about pi/2 a mean's); the
        larger of the windows' own spread and the gauge's scatter (``noise``)."""
        recent, base = self.recent, self.base
        error = math.sqrt(recent.var() / recent.n + 1.57 * base.var() / base.n)
        sigma = self.noise()
        # the recent mean of median-of-three values is no steadier than one of raw readings
        scatter = sigma * math.sqrt(1.0 / recent.n + 1.57 / base.n)
        return max(error, scatter, MIN_SHIFT_ERROR)

    def baseline(self) -> float | None:
        """Where the end stood before (the baseline's median), ``ln`` units."""
        return self.base.quantile(0.5) if self.base.n else None

    def rising(self) -> float | None:
        """Slope of ``ln(value + floor)`` over the recent window, per minute."""
        return self.slope.slope()

    def climbing(self) -> float:
        """The recent window's mean over the gap window's (``ln`` units): still going up?
        (means of a few samples each: steadier than a slope through them)"""
        if self.gap.n < 2:
            return math.inf
        return self.recent.mean() - self.gap.mean()


class ReachBlockageRule:
    """Blockage between the two ends of one ``SewerReach`` (see the module docstring).

    ``on_upstream`` / ``on_downstream`` take the end gauges' level readings, ``rain.on_rain``
    the rain gauges'. A reach that ends at its station has no downstream gauge: its
    downstream end is the station's inflow, ``on_inflow(ts, mm_per_min)`` from the wet well's
    fill rate between pump runs (``WetWellRule``): only ever a veto (a rise at the top that
    came in at the bottom too is a flow wave), never "starved" by itself.
    ``downstream_shared``: another reach ends at the same downstream gauge, so only a fall
    there that cuts most of its flow says anything. ``backed_up_below``: when the sewer below
    last backed this reach up (its station's wet well over the assist level, or a reach
    below blocked, the next one or further down): the backwater raises both ends, and
    draining away it makes them fall; until it has drained and left the baseline, this reach
    gives no evidence.
    ``blocked_above``: when a reach above this one (draining into its top) was last suspected
    blocked: the backwater it held comes down as a surge when it clears, passing the top
    before the bottom; for as long, a rise at the top is no evidence (a starved bottom is).
    """

    def __init__(
        self,
        reach: SewerReach,
        rain: DryWeather,
        config: BlockageConfig,
        downstream_shared: bool = False,
        backed_up_below: Callable[[], float | None] = lambda: None,
        blocked_above: Callable[[], float | None] = lambda: None,
    ):
        self.reach = reach
        self.rain = rain
        self.config = config
        self.downstream_shared = downstream_shared
        self.backed_up_below = backed_up_below
        self.blocked_above = blocked_above
        self.last_active: float | None = None
        windows = (config.reach_recent_s, config.reach_gap_s, config.reach_baseline_s)
        self.up = _End(
            *windows, config.reach_floor_mm, fresh_s=config.reach_recent_s, swing=True, zero=True
        )
        self.inflow = reach.downstream is None
        if self.inflow:  # between pump runs only: allow for a run
            self.down = _End(
                *windows,
                INFLOW_FLOOR_MM_PER_MIN,
                fresh_s=INFLOW_FRESH_S,
                power=INFLOW_POWER,
                reset_after_s=config.reach_baseline_s,  # pump runs leave gaps: not a restart
            )
        else:
            self.down = _End(
                *windows, config.reach_floor_mm, fresh_s=config.reach_recent_s, zero=True
            )
        self.apart = math.log1p(config.reach_shift_pct / 100.0)
        self.steady = math.log1p(config.reach_steady_pct / 100.0)
        # a backwater takes a while to drain after the sewer below comes down, and the baseline
        # must have forgotten it before the ends are compared again
        self._windows_s = config.reach_recent_s + config.reach_gap_s + config.reach_baseline_s
        self._quiet_after_backwater_s = BACKWATER_DRAIN_S + self._windows_s
        length = reach.length_m if reach.length_m is not None else DEFAULT_REACH_LENGTH_M
        self.wave_s = length / config.reach_wave_m_per_s
        self.active = False
        # (ts, diverging) of each evaluation over the longest confirmation
        self._history: deque[tuple[float, bool]] = deque()
        self._longest = max(config.reach_confirm_s, self.wave_s, UNSEEN_CONFIRM_S)
        self._bases: tuple[float | None, float | None] = (None, None)
        self._back_since: float | None = None
        self._moving_since: float | None = None  # last time the ends still pulled apart
        self._lingering = False  # cleared as settled, the ends not back yet (``_linger``)
        self._cleared_at = 0.0

    def carry_over(self, old: ReachBlockageRule, *, same_device: bool) -> None:
        """Continue from this reach's rule before a reload: suspected or not (and the
        baselines it clears against) always; both ends' windows and the rain only with
        ``same_device`` and the same reach and settings; the ends' learnt zeros with the
        same reach whatever the settings."""
        self.active, self.last_active, self._bases = old.active, old.last_active, old._bases
        self._lingering, self._cleared_at = old._lingering, old._cleared_at
        if same_device and old.reach == self.reach and old.config == self.config:
            self.up, self.down = old.up, old.down
            self._history, self._back_since = old._history, old._back_since
            self.rain.carry_over(old.rain)
        elif same_device and old.reach == self.reach:
            # the zeros' drift is the gauges', not the settings': weeks of dry days to relearn
            self.up.zero, self.down.zero = old.up.zero, old.down.zero

    # -- inputs -------------------------------------------------------------------------------
    def on_upstream(self, reading: Reading) -> list[EventDraft]:
        value = good_number(reading)
        if value is None:
            return []
        self.up.update(
            value, reading.ts, not (self.active or self._lingering), self._dry(reading.ts)
        )
        return self._evaluate(reading.ts)

    def on_downstream(self, reading: Reading) -> list[EventDraft]:
        value = good_number(reading)
        if value is None:
            return []
        self.down.update(
            value, reading.ts, not (self.active or self._lingering), self._dry(reading.ts)
        )
        return self._evaluate(reading.ts)

    def on_inflow(self, ts: float, mm_per_min: float) -> list[EventDraft]:
        """The station's inflow (its wet well's fill rate) as the downstream end."""
        self.down.update(mm_per_min, ts)
        return self._evaluate(ts)

    def _dry(self, ts: float) -> bool:
        """Dry weather and no backwater from below: a day for the ends' zeros to learn from."""
        below = self.backed_up_below()
        return self.rain.dry(ts) and (
            below is None or not 0 <= ts - below <= self._quiet_after_backwater_s
        )

    # -- the signature ------------------------------------------------------------------------
    def diverging(self, ts: float) -> tuple[str | None, dict]:
        """Are the two ends pulling apart now? ``"starved"`` (the downstream end falls under
        its usual lows while the upstream one stays above its own), ``"backing up"`` (the
        upstream end rises over its usual highs, still rising, while the downstream one stays
        under its own) or ``None``; and the figures for the event. Quartiles of the baseline
        hour make a flow wave that passed through it no reference."""
        up, down = self.up, self.down
        if not (up.fresh(ts) and up.ready()):
            return None, {}
        below = self.backed_up_below()
        if below is not None and 0 <= ts - below <= self._quiet_after_backwater_s:
            return None, {}  # backed up from below, or draining since: no evidence here
        # (the wet well's inflow, last measured longer ago than a flow wave takes down the
        # reach, the pumps running since (a satellite's pulse arriving starts them), says
        # nothing of the wave now at the top: the bottom is unseen for now)
        seen_s = max(self.wave_s, self.config.reach_recent_s) if self.inflow else None
        known = down.fresh(ts, seen_s) and down.ready()
        up_shift = up.shift()
        down_shift = down.shift() if known else 0.0
        error = math.hypot(up.error(), down.error() if known else 0.0)
        figures = {
            "shift_pct": _pct(up_shift),
            "downstream_shift_pct": _pct(down_shift) if known else None,
        }
        divergence = up_shift - down_shift
        if divergence < self.apart or divergence < self.config.reach_min_t * error:
            return None, figures
        half = self.apart / 2
        # where two reaches end at one gauge, only a fall that cuts most of its flow (a blockage
        # on the trunk they share, which both name) says anything
        starved_by = 2 * self.apart if self.downstream_shared else half
        # a station's inflow is a fill segment's average, taken between pump runs: it lags
        # and aliases a satellite's pulses, so it can veto a rise at the top (the flow came
        # in at the bottom too) but not tell of a starved bottom by itself
        level_below = known and not self.inflow
        if level_below and down.shift(LOWEST) <= -starved_by and up.shift(LOW) >= -self.steady:
            return "starved", figures
        above = self.blocked_above()
        if above is not None and 0 <= ts - above <= self._quiet_after_backwater_s:
            # a blockage above cleared: its backwater comes down as a surge, at the top first
            return None, figures
        if (
            up.shift(HIGH) >= half
            and up.climbing() >= self.apart / CLIMB_PARTS
            and (
                not known
                or down_shift <= self.steady
                or (level_below and self._outrun(up_shift, down_shift))
            )
        ):
            # (confirmed only once a wave would have passed; with the bottom unseen for now,
            # its gauge silent or just back or the station's pumps running, only once a
            # satellite's pulse would have passed the top too)
            unseen = down.last_ts is not None and not known
            return "backing up", figures | {"unseen": unseen}
        return None, figures  # a step at the top that has settled: a flow wave on its way

    def _outrun(self, up_shift: float, down_shift: float) -> bool:
        """The top rose ``OUTRUN`` times as much as the bottom and stands over the day's
        highest ten-minute mean by twice the shift asked: higher than any flow the day
        brought it (a satellite's pulses, the morning peak), which a flow wave passing
        does not make and a blockage backing it up does."""
        high = self.up.swing.high() if self.up.swing is not None else None
        return (
            high is not None
            and up_shift >= OUTRUN * down_shift
            and self.up.recent.mean() >= high + 2 * self.apart
        )

    def _evaluate(self, ts: float) -> list[EventDraft]:
        if self.active:
            self.last_active = ts
            return self._maybe_clear(ts)
        if self._lingering:
            self._linger(ts)
        evidence, figures = self.diverging(ts)
        if evidence and not self.rain.dry(ts):
            evidence = None
        if evidence == "starved" and self.rain.rained_within(
            ts, self._windows_s + self.rain.dry_for_s
        ):
            # a storm's run-off peaks later and recedes faster at the bottom (more catchment
            # above it) than at the top: a fall at the bottom is measured against a baseline
            # of dry-weather flow only, one that began after an hour's dry weather
            evidence = None
        history = self._history
        if history and ts < history[-1][0]:
            history.clear()  # the clock stepped back
        history.append((ts, evidence is not None))
        # keep the last evaluation at or before the longest confirmation's start: the state
        # the confirmation starts from
        while len(history) > 1 and history[1][0] <= ts - self._longest:
            history.popleft()
        if evidence is None:
            return []
        # a rise at the top alone may be a flow wave: wait until it would have reached the
        # bottom; a starved bottom is no wave
        needed = self.config.reach_confirm_s
        if evidence == "backing up":
            needed = max(needed, self.wave_s)
            if figures.get("unseen"):
                needed = max(needed, UNSEEN_CONFIRM_S)
        start = ts - needed
        if history[0][0] > start:
            return []  # not watched that long yet
        first = max(i for i, (t, _) in enumerate(history) if t <= start)
        held = [ok for _, ok in itertools.islice(history, first, None)]
        if not held[0] or sum(held) < CONFIRM_SHARE * len(held):
            return []
        self.active = True
        history.clear()
        self._bases = (self.up.baseline(), self.down.baseline())
        self._back_since = None
        figures = {k: v for k, v in figures.items() if k != "unseen"}
        return [self._event("sewer.blockage_suspected", ts, figures | {"evidence": evidence})]

    def _maybe_clear(self, ts: float) -> list[EventDraft]:
        """Clear once both ends are back near where they stood, or once nothing has moved
        apart for ``SETTLED_S`` (the situation settled: a crew has been sent; a new
        divergence raises it again)."""
        up_base, down_base = self._bases
        back = _near(self.up, up_base, self.apart / 2)
        if self.down.fresh(ts):
            back = back and _near(self.down, down_base, self.apart / 2)
        diverging, _ = self.diverging(ts)
        if diverging or self._moving_since is None or ts < self._moving_since:
            self._moving_since = ts
        settled = ts - self._moving_since >= SETTLED_S
        if not back and not settled:
            self._back_since = None
            return []
        if self._back_since is None or ts < self._back_since:
            self._back_since = ts
        if ts - self._back_since < self.config.reach_clear_after_s and not settled:
            return []
        self.active = False
        self._moving_since = None
        # cleared as settled with the ends still away from where they stood: it may well be
        # blocked still, and the reaches around it backed up or starved by it
        self._lingering = settled and not back
        self._cleared_at = ts
        return [self._event("sewer.blockage_suspected.cleared", ts, {})]

    def _linger(self, ts: float) -> None:
        """After a clear as settled: ``last_active`` follows on until both ends are back near
        where they stood before the raise (the blockage cleared, the sewer drained), at most
        ``LINGER_S``: the reaches around it and the station below take no evidence from a
        sewer that may still be blocked (``backed_up_below``, ``upstream_blocked``)."""
        up_base, down_base = self._bases
        back = _near(self.up, up_base, self.apart / 2)
        if self.down.fresh(ts):
            back = back and _near(self.down, down_base, self.apart / 2)
        if back or not 0 <= ts - self._cleared_at <= LINGER_S:
            self._lingering = False
            return
        self.last_active = ts

    def _event(self, kind: str, ts: float, figures: dict) -> EventDraft:
        reach = self.reach
        down_level = self.down.value if not self.inflow and self.down.fresh(ts) else None
        return EventDraft.of(
            reach.upstream,
            kind,
            ts,
            reach=reach.id,
            upstream=reach.upstream,
            downstream=reach.downstream,
            station=reach.station,
            evidence=figures.get("evidence"),
            level=_round(self.up.value, 1),
            rate_mm_per_min=_round(_per_min(self.up), 2),
            shift_pct=figures.get("shift_pct"),
            downstream_level=_round(down_level, 1),
            downstream_shift_pct=figures.get("downstream_shift_pct"),
            rain_gauges=list(self.rain.gauges),
            rain_mm_h=self.rain.rain_mm_h(),
        )


def _pct(log_shift: float) -> float:
    return round(math.expm1(log_shift) * 100.0, 1)


def _per_min(end: _End) -> float | None:
    """The end's recent rise per minute in its own unit (its relative slope at its value)."""
    slope = end.rising()
    if slope is None or end.value is None:
        return None
    return slope / end.power * (max(end.value - end.offset(), 0.0) + end.floor)


def _near(end: _End, base: float | None, within: float) -> bool:
    if base is None or end.value is None:
        return True
    return abs(end.log(end.value) - base) <= within


class ManholeOverflowRule:
    """``overflow.risk`` at one manhole gauge from its level, its rate and its rim (see the
    module docstring); with the sewer's design storm, its crown and ``rain`` known, also a
    storm forecast: the pipe surcharged, the level not falling, and the run-off
    (``RunoffModel``, the rain gauges' mean through the manhole's ``lag_min``) heading for
    the ratio of design storms that puts the surcharge at the rim within ``eta_s``.
    (The rule before warned on rain over the design storm with the pipe over its crown:
    a surge that filled the pipe and levelled off far under the rim; six of seven such
    warnings on the benchmark's iteration seed were false.)"""

    def __init__(self, manhole: Manhole, config: OverflowConfig, rain: DryWeather | None = None):
        self.manhole = manhole
        self.config = config
        self.rain = rain
        self.runoff: RunoffModel | None = None
        if manhole.storm_mm_h is not None:
            lag_s = DEFAULT_LAG_S if manhole.lag_min is None else manhole.lag_min * 60.0
            # its inflow in design storms: 1.0 is what the pipe carries running just full
            self.runoff = RunoffModel(1.0 / manhole.storm_mm_h, lag_s)
        self.trend = Trend(config.window_s)
        self.latch = Latch(config.manhole_clear_after_s)
        self.eta_min: float | None = None
        self._last_ts: float | None = None
        self._gaps: deque[float] = deque(maxlen=5)  # the last intervals between readings
        self._rising_since: float | None = None  # since when the level's rate is upwards
        self._ratio = 0.0  # the run-off now, in design storms

    def _fit_poll(self, ts: float) -> None:
        """Widen the trend's window to hold ``TREND_SAMPLES`` polls of this gauge: a gauge
        polled every two minutes never has four readings in five minutes, and its level would
        have no rate at all (its ETA never counted)."""
        last = self._last_ts
        self._last_ts = ts
        if last is None or not 0 < ts - last <= MAX_POLL_S:
            return
        self._gaps.append(ts - last)
        poll = sorted(self._gaps)[len(self._gaps) // 2]
        self.trend.fit.window_s = max(self.config.window_s, TREND_SAMPLES * poll)

    def carry_over(self, old: ManholeOverflowRule, *, same_device: bool) -> None:
        """Continue from this manhole's rule before a reload: at risk or not always; the
        level's trend only for the same device."""
        self.latch.carry_over(old.latch, evidence=same_device)
        if same_device and old.config.window_s == self.config.window_s:
            self.trend = old.trend
            self._gaps, self._last_ts = old._gaps, old._last_ts
            self._rising_since = old._rising_since
        if same_device and self.rain is not None and old.rain is not None:
            self.rain.carry_over(old.rain)
            if self.runoff is not None and old.runoff is not None:
                self.runoff.carry_over(old.runoff)

    def reasons(self, ts: float | None = None) -> list[str]:
        cfg, rim = self.config, self.manhole.rim_mm
        level, rate = self.trend.value, self.trend.slope()
        self.eta_min = None
        if level is None:
            return []
        out = []
        if rate is not None and rate > 0:
            self.eta_min = max(rim - level, 0.0) / rate
            if level >= cfg.eta_from_fraction * rim and self.eta_min * 60.0 <= self._trusted_s(ts):
                out.append(f"rising to the rim in {self.eta_min:.0f} min")
        if level >= cfg.near_rim_fraction * rim:
            out.append(f"within {rim - level:.0f} mm of the rim")
        storm = self._storm_eta_min(level, ts)
        if storm is not None:
            self.eta_min = storm if self.eta_min is None else min(self.eta_min, storm)
            out.append(
                f"run-off at {self._ratio:.1f} x the sewer's design storm "
                f"({self.manhole.storm_mm_h:.0f} mm/h): at the rim in {storm:.0f} min"
            )
        return out

    def _trusted_s(self, ts: float | None) -> float:
        """How far ahead the level's rate is trusted: ``RISE_TRUST`` times as long as the
        rise has lasted (a surge that fills the pipe in two minutes and levels off under the
        rim says little about the next half hour; a rise that has held for a quarter of an
        hour does), at most ``eta_s``."""
        since = self._rising_since
        if ts is None or since is None:
            return self.config.eta_s
        lasted = ts - since + self.trend.fit.window_s / 2  # (the rate's window saw it begin)
        return min(self.config.eta_s, RISE_TRUST * lasted)

    def _storm_eta_min(self, level: float, ts: float | None) -> float | None:
        """Minutes until the surcharge reaches the rim if the rain goes on at its recent rate
        (``None``: not within ``eta_s``, or nothing to tell it by). A surcharged pipe passes
        more than its design flow only as the water over its crown adds head: the head grows
        as the square of the flow, ``h = c (r^2 - 1)`` with ``r`` the run-off over the design
        storm's. ``c`` is taken from the manhole now (its surcharge at the run-off now), so
        the rain gauge's bias cancels out; the run-off's rise still to come (``RunoffModel``)
        says where the surcharge is heading."""
        manhole, runoff, rain = self.manhole, self.runoff, self.rain
        if runoff is None or rain is None or manhole.crown_mm is None or ts is None:
            return None
        rates = [r for r in rain.rain_mm_h() if r is not None]
        runoff.rain(sum(rates) / len(rates) if rates else 0.0, ts)
        # the median of three trails a rising level by a reading: the run-off of its time
        ratio, self._ratio = self._ratio, runoff.inflow_l_s
        surcharge = level - manhole.crown_mm
        if surcharge <= 0 or ratio < 1.0:
            return None  # not surcharged, or by the sewer below (its backwater)
        rate = self.trend.slope()
        if rate is None or rate < 0:
            return None  # draining: the sewer below is taking it away
        per_ratio = surcharge / max(ratio * ratio - 1.0, MIN_SURCHARGE_RATIO)
        # the run-off ratio that puts the surcharge at the rim
        at_rim = math.sqrt(1.0 + (manhole.rim_mm - manhole.crown_mm) / per_ratio)
        eta_s = runoff.time_to_reach_s(at_rim, self.config.eta_s)
        return None if eta_s is None else eta_s / 60.0

    def on_level(self, reading: Reading) -> list[EventDraft]:
        value = good_number(reading)
        if value is None:
            return []
        self._fit_poll(reading.ts)
        self.trend.update(value, reading.ts)
        rate = self.trend.slope()
        if rate is None or rate <= 0:
            self._rising_since = None
        elif self._rising_since is None or reading.ts < self._rising_since:
            self._rising_since = reading.ts
        reasons = self.reasons(reading.ts)
        transition = self.latch.update(bool(reasons), reading.ts)
        if transition is None:
            return []
        kind = "overflow.risk" if transition is Transition.RAISE else "overflow.risk.cleared"
        crown = self.manhole.crown_mm
        level = self.trend.value
        return [
            EventDraft.of(
                self.manhole.gauge,
                kind,
                reading.ts,
                reasons=reasons,
                level_mm=_round(level, 1),
                rim_mm=self.manhole.rim_mm,
                eta_min=_round(self.eta_min, 1),
                rate_mm_per_min=_round(self.trend.slope(), 3),
                surcharged=None if crown is None or level is None else level > crown,
            )
        ]
