"""A pump station's wet well, judged by its pump cycles.

A wet well fills and is pumped down many times a day: its level rising is the most ordinary
thing it does, and the pumps will answer it. What is not ordinary:

- **a start that does not draw it down**: when a pump starts, the level's slope must turn
  down by about what one pump moves (its effect: the slope over ``check_s`` before the start
  minus the slope over ``check_s`` after it, per pump started). Inflow does not enter this
  difference, so a storm filling the well fast does not look like a weak pump. A start whose
  effect is under ``min_drawdown_fraction`` of the station's normal one (the median of its
  recent good starts; before any, the rated ``pump_l_s / area_m2``, or
  ``min_drawdown_mm_per_min``) is a fault of that pump (air-locked, impeller blocked, valve
  shut, rising main burst). It clears when that pump next starts and draws down. Two kinds
  of start are not judged (nor learned from), for the inflow may have changed between the
  two slopes by more than a pump moves: one into a surge (the well filling, before the start
  or after it were the pump dead, over ``SURGE_FACTOR`` times its normal dry-weather rate:
  a sewer emptying after a blockage upstream is cleared; a dead pump is caught at its next
  start; or growing across the slope before it: ``_growing``), and any start while a reach
  draining into the station is suspected blocked or within ``UPSTREAM_QUIET_S`` after
  (``upstream_blocked``: a blocked or emptying sewer's inflow is not the sewer's normal one).
- **a run far over normal**: in dry weather, a cycle running ``run_factor`` times its normal
  run time (the median of recent dry-weather cycles, once ``learn_cycles`` are known) and at
  least ``run_extra_s`` longer, after a start that drew down less than ``WORN_SHARE`` of a
  normal one: a worn pump. (A run is long because the pump is weak or the inflow is high;
  a start's effect measures the pump alone, so a long run after a normal start is inflow:
  rain, or a sewer emptying after a blockage, which the overflow and blockage rules report.)
  Rain makes runs long by itself, so this needs a rain gauge and dry weather; it clears when
  the cycle ends.

Both give one ``wet_well.fault`` on the pump controller (``data.faults`` lists what is wrong),
``wet_well.fault.cleared`` once nothing is.

Between pump runs the well's fill rate is the station's inflow: every level reading once the
pumps have been off for ``check_s`` hands the rate over the last ``check_s`` (mm/min) to the
``inflow_listeners`` (the blockage rules of the reaches that end at this station); not while
its gauge is stuck, nor until ``check_s`` of readings after (a stuck gauge's slope, 0, would
read as a station taking no inflow: a starved sewer). Stuck is equal readings in a row that
the gauge's own scatter would not give by chance (``stuck.StuckGauge``, over its steps of the
last ``STEPS_S``): a well filling a few mm a minute, read to the mm, repeats a reading by chance
about one time in eight, four equal readings in a row a few times a day.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.model import Quality, Reading
from edge_agent.events import EventDraft
from edge_agent.rules.alarm import Latch, Transition, good_number
from edge_agent.rules.config import WetWellConfig
from edge_agent.rules.network import WetWell
from edge_agent.rules.sewer import DryWeather
from edge_agent.rules.stuck import StuckGauge
from edge_agent.rules.trend import LineFit

__all__ = ["WetWellRule"]

KEEP_STARTS = 10  # good starts the normal drawdown is the median of
KEEP_CYCLES = 20  # dry-weather cycles the normal run time is the median of
LEARNED_AFTER = 3  # good starts before the station's own drawdown replaces the rated one
# How often the gauge repeated a reading lately (its steps over this long) says whether a run
# of equal readings is a stuck gauge (``stuck.stuck``; no start is judged on one): a wet well
# moves tens of mm a minute by day, a few at night, and an hour is a cycle or two.
STEPS_S = 3600.0
# A start that steepened the fall by less than this share of a normal start's was a weak pump.
WORN_SHARE = 0.7
KEEP_FILLS = 20  # dry-weather fill rates before a first start the normal one is the median of
# A well taking this many times its normal inflow just before a start is taking a surge.
SURGE_FACTOR = 2.0
# A well that hardly fills between runs: its normal fill rate is taken as this share of a
# pump's drawdown at least (noise in a near-zero median is no measure of a surge).
NORMAL_FILL_SHARE = 0.1
# A start whose slope before it steepened, over its last half, by more than this share of a
# pump's drawdown met a growing inflow: by the slope after it, the inflow may have grown by
# four times that, more than (1 - min_drawdown_fraction) of a pump moves.
GROWTH_SHARE = 0.15
# After a reach draining into the station was last suspected blocked, its inflow is a
# blocked or emptying sewer's for this long.
UPSTREAM_QUIET_S = 3600.0


@dataclass(frozen=True, slots=True)
class _Start:
    ts: float
    pumps: tuple[str, ...]
    before_mm_per_min: float
    running_before: int  # pumps already running
    tail_mm_per_min: float | None  # the slope over the last half of the one before


class WetWellRule:
    """Cycles of one station's wet well (``well``); ``pumps`` are the controller's
    ``pump_running`` point names; ``rain`` the gauges that say whether it is dry."""

    def __init__(
        self, well: WetWell, pumps: tuple[str, ...], rain: DryWeather, config: WetWellConfig
    ):
        self.well = well
        self.rain = rain
        self.config = config
        self.running: dict[str, bool] = dict.fromkeys(pumps, False)
        self.segment = LineFit(config.check_s)  # the level since the running set last changed
        self.tail = LineFit(config.check_s / 2, min_samples=2)  # the segment's last half
        self.level: float | None = None
        self.effects: deque[float] = deque(maxlen=KEEP_STARTS)
        self.runs: deque[float] = deque(maxlen=KEEP_CYCLES)
        self.cycle_start: float | None = None
        self.cycle_dry = False
        self.cycle_weak = False  # this cycle's first judged start drew down weakly
        self.problems: dict[str, dict[str, Any]] = {}
        self.latch = Latch(0.0)
        self._start: _Start | None = None
        self._segment_since: float | None = None
        # the run of equal readings ending now, and whether it is a gauge that has stopped
        # measuring
        self._gauge = StuckGauge()
        self._steps: deque[tuple[float, bool]] = deque()  # (ts, equal to the one before)
        self._equal_steps = 0  # of ``_steps``
        self._recent: deque[float] = deque(maxlen=3)
        self._last_good_ts: float | None = None
        self.inflow_listeners: list[Callable[[float, float], list[EventDraft]]] = []
        self.fills: deque[float] = deque(maxlen=KEEP_FILLS)
        # when a reach draining into the station was last suspected blocked (set by the wiring)
        self.upstream_blocked: Callable[[], float | None] = lambda: None

    @property
    def active(self) -> bool:
        return self.latch.active

    def carry_over(self, old: WetWellRule, *, same_device: bool) -> None:
        """Continue from this well's rule before a reload: faulted or not always; the cycles
        learned and under way only with ``same_device`` and the same well and settings."""
        self.latch.carry_over(old.latch, evidence=same_device)
        if not (same_device and old.well == self.well and old.config == self.config):
            return
        if set(old.running) == set(self.running):
            self.running, self._start = old.running, old._start
        self.segment, self.level, self._segment_since = old.segment, old.level, old._segment_since
        self.tail = old.tail
        self.effects, self.runs, self._gauge = old.effects, old.runs, old._gauge
        self._steps, self._equal_steps = old._steps, old._equal_steps
        self._recent = old._recent
        self._last_good_ts = old._last_good_ts
        self.fills = old.fills
        self.cycle_start, self.cycle_dry, self.cycle_weak = (
            old.cycle_start,
            old.cycle_dry,
            old.cycle_weak,
        )
        self.problems = old.problems
        self.rain.carry_over(old.rain)

    def pumps_not_moving(self) -> frozenset[str]:
        """The pumps whose last start drew the well down by nothing like a pump's worth."""
        return frozenset(
            label.split(":", 1)[1] for label in self.problems if label.startswith("no_drawdown:")
        )

    # -- what a healthy start looks like --------------------------------------------------------
    def expected_drawdown(self) -> float | None:
        """mm/min one pump should add to the fall: learned, else rated, else unknown."""
        if len(self.effects) >= LEARNED_AFTER:
            return statistics.median(self.effects)
        return self.well.rated_drawdown_mm_per_min

    def _too_weak(self, effect: float) -> bool:
        expected = self.expected_drawdown()
        if expected is None:
            return effect < self.config.min_drawdown_mm_per_min
        return effect < self.config.min_drawdown_fraction * expected

    def normal_fill(self) -> float | None:
        """mm/min the well fills at before a start in dry weather, once learned."""
        if len(self.fills) < LEARNED_AFTER:
            return None
        return statistics.median(self.fills)

    def _surging(self, start: _Start, after: float) -> bool:
        """The inflow around ``start`` far over the well's normal: its fill rate before the
        start, or after it were the new pump moving nothing (either with the fall the pumps
        already running made added back), over ``SURGE_FACTOR`` times the normal fill rate
        (taken as at least ``NORMAL_FILL_SHARE`` of a pump's drawdown)."""
        normal, expected = self.normal_fill(), self.expected_drawdown()
        if normal is None or expected is None:
            return False
        inflow = max(start.before_mm_per_min, after) + start.running_before * expected
        return inflow > SURGE_FACTOR * max(normal, NORMAL_FILL_SHARE * expected)

    def _growing(self, start: _Start) -> bool:
        """The inflow growing across the slope before ``start``: its last half's slope over
        the whole one's by more than ``GROWTH_SHARE`` of a pump's drawdown. The whole slope is
        the rate at its middle, the last half's a quarter of the span later: growing on as
        fast, the inflow gains four times that difference by the middle of the slope after
        the start, which would hide most of a pump's effect (a sewer emptying after a
        blockage upstream cleared, its surge starting within the slope before)."""
        expected = self.expected_drawdown()
        if start.tail_mm_per_min is None or expected is None:
            return False
        return start.tail_mm_per_min - start.before_mm_per_min > GROWTH_SHARE * expected

    def _upstream_unsettled(self, ts: float) -> bool:
        at = self.upstream_blocked()
        return at is not None and 0 <= ts - at <= UPSTREAM_QUIET_S

    def normal_run_s(self) -> float | None:
        if len(self.runs) < self.config.learn_cycles:
            return None
        return statistics.median(self.runs)

    # -- inputs -------------------------------------------------------------------------------
    def on_pump(self, reading: Reading) -> list[EventDraft]:
        point = reading.point
        if (
            point not in self.running
            or reading.quality is not Quality.GOOD
            or not isinstance(reading.value, bool)
        ):
            return []
        before = sum(self.running.values())
        was_on = self.running[point]
        self.running[point] = reading.value
        after = sum(self.running.values())
        ts = reading.ts
        if after > before and not was_on:
            slope, tail = self.segment.slope(), self.tail.slope()
            last = self.segment.last()
            if last is None or ts - last[0] > self.config.check_s / 2:
                slope = None  # the gauge was silent (or faulted) up to the start: no slope
            started: tuple[str, ...] = (point,)
            if self._start is not None and ts - self._start.ts < 1.0:
                # two pumps reported starting in one poll: one start of both
                started = (*self._start.pumps, point)
                slope, tail = self._start.before_mm_per_min, self._start.tail_mm_per_min
            running_before = after - len(started)
            self._start = (
                _Start(ts, started, slope, running_before, tail) if slope is not None else None
            )
            self._new_segment(ts)
        elif after < before:
            self._start = None  # a stop before the check: nothing to judge
            self._new_segment(ts)
        if before == 0 and after > 0:
            self.cycle_start = ts
            self.cycle_dry = self.rain.dry(ts)
            self.cycle_weak = False
        elif before > 0 and after == 0:
            self._end_cycle(ts)
        return self._emit(ts)

    def on_level(self, reading: Reading) -> list[EventDraft]:
        value = good_number(reading)
        if value is None:
            return []
        ts = reading.ts
        run = self._gauge.readings
        if self._gauge.moved(value):
            # the gauge moves again: nothing read while it was stuck enters a slope (a start
            # under way is not judged; the fill rate is handed on once ``check_s`` is heard),
            # nor its run's steps the gauge's scatter
            for _ in range(min(run - 1, len(self._steps))):
                self._steps.pop()
                self._equal_steps -= 1
            self._recent.clear()
            self._new_segment(ts)
            self._start = None
        self._count_step(value, ts)
        # a median of three: one stray echo (a ladder, foam) in a slope's few readings would
        # tilt it by more than a pump moves; none across a silence (the well moved meanwhile)
        if self._last_good_ts is not None and not 0 <= ts - self._last_good_ts <= (
            self.config.check_s / 2
        ):
            self._recent.clear()
        self._last_good_ts = ts
        self._recent.append(value)
        self.level = sorted(self._recent)[len(self._recent) // 2]
        self.segment.update(self.level, ts)
        self.tail.update(self.level, ts)
        start = self._start
        if start is not None and ts - start.ts >= self.config.check_s:
            self._start = None
            after = self.segment.slope()
            if after is not None and (not self.rain.gauges or self.rain.dry(ts)):
                self._judge_start(start, after, ts)
        self._judge_run(ts)
        events = self._emit(ts)
        since = self._segment_since
        if (
            not any(self.running.values())
            and since is not None
            and ts - since >= self.config.check_s
            and not self._gauge.stuck
        ):
            rate = self.segment.slope()
            if rate is not None:
                for listener in self.inflow_listeners:
                    events += listener(ts, rate)
        return events

    def _count_step(self, value: float, ts: float) -> None:
        """The step from the last reading (equal or not) into the gauge's recent steps, and
        whether its run of equal readings is now a stuck gauge (latched until it moves)."""
        first = self._gauge.last is None
        equal = self._gauge.take(value)
        if not first:
            self._steps.append((ts, equal))
            self._equal_steps += equal
            while self._steps[0][0] < ts - STEPS_S:
                self._equal_steps -= self._steps.popleft()[1]
        self._gauge.judge(len(self._steps), self._equal_steps)

    # -- judgements ---------------------------------------------------------------------------
    def _judge_start(self, start: _Start, after: float, ts: float) -> None:
        if self._gauge.stuck:
            return  # the gauge reads one value over and over: it is stuck, not the pump
        if self._upstream_unsettled(ts) or self._surging(start, after) or self._growing(start):
            # a blocked or emptying sewer upstream, or a surge: the inflow may have changed
            # by more than a pump moves between the slopes; nor is this cycle's run time a
            # dry day's (no long run judged, none learned)
            self.cycle_dry = False
            return
        if start.running_before == 0:
            self.fills.append(start.before_mm_per_min)
        effect = (start.before_mm_per_min - after) / len(start.pumps)
        expected = self.expected_drawdown()
        if expected is not None and effect < WORN_SHARE * expected:
            self.cycle_weak = True
        labels = [f"no_drawdown:{pump}" for pump in start.pumps]
        if self._too_weak(effect):
            for label in labels:
                self.problems.setdefault(
                    label,
                    {
                        "drawdown_mm_per_min": round(effect, 1),
                        "expected_mm_per_min": None if expected is None else round(expected, 1),
                        "since": ts,
                    },
                )
            return
        self.effects.append(effect)
        for label in labels:
            self.problems.pop(label, None)

    def _judge_run(self, ts: float) -> None:
        if self.cycle_start is None or "long_run" in self.problems:
            return
        normal = self.normal_run_s()
        if normal is None or not (self.cycle_weak and self.cycle_dry and self.rain.dry(ts)):
            return
        run = ts - self.cycle_start
        if run >= max(self.config.run_factor * normal, normal + self.config.run_extra_s):
            self.problems["long_run"] = {"run_s": round(run), "normal_run_s": round(normal)}

    def _end_cycle(self, ts: float) -> None:
        start, self.cycle_start = self.cycle_start, None
        was_long = self.problems.pop("long_run", None) is not None
        if start is None or ts < start or was_long:
            return
        if self.cycle_dry and self.rain.dry(ts) and not self.problems and not self.cycle_weak:
            self.runs.append(ts - start)

    def _new_segment(self, ts: float) -> None:
        """The running set changed (or the gauge came back from being stuck): slopes anew."""
        self.segment.clear()
        self.tail.clear()
        self._segment_since = ts

    def _emit(self, ts: float) -> list[EventDraft]:
        transition = self.latch.update(bool(self.problems), ts)
        if transition is None:
            return []
        well = self.well
        data: dict[str, Any] = {
            "station": well.station,
            "gauge": well.gauge,
            "faults": sorted(self.problems),
            "level_mm": None if self.level is None else round(self.level, 1),
        }
        if transition is Transition.CLEAR:
            return [EventDraft.of(well.station, "wet_well.fault.cleared", ts, **data)]
        data["running"] = sorted(p for p, on in self.running.items() if on)
        for problem in self.problems.values():
            data.update({k: v for k, v in problem.items() if k != "since"})
        return [EventDraft.of(well.station, "wet_well.fault", ts, **data)]
