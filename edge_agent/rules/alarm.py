"""The building blocks every rule uses: one alarm's raise / clear logic, and a rate estimator.

``Alarm`` turns a stream of (value, ts) into at most one transition per sample: ``RAISE``
when K of the last N samples are beyond the threshold and have been for ``on_delay_s``;
``CLEAR`` when K of the last N samples are back inside by more than ``hysteresis``. The
window restarts at each transition, so a chattering input cannot raise and clear on
alternate samples: each alarm is raised once and cleared once.

``Latch`` is the same idea for yes/no conditions (a fault bit, a cover switch): it raises at
once and clears only after the condition has been false for ``clear_after_s``, so a
flapping bit gives one raise, not one per poll.

``RateOfChange`` is a least-squares slope (units per minute) over a sliding time window; a
straight line through several samples shrugs off one noisy reading where first-minus-last
would not.

``RateAlarm`` is the two together as every rate rule uses them: raised when the slope beyond
a limit, cleared once it falls below half of it.

``good_number`` is what every threshold and rate rule feeds them: a reading's value when it
is a GOOD number, else None (a faulty or stale value neither raises nor clears).

Time is the samples' wall-clock ``ts``. When it goes backwards (NTP stepped the clock back)
every delay and window restarts from the earlier sample, so a rule waits at most its own
delay again, never the size of the step.

A config reload builds new ones; ``carry_over(old, evidence=...)`` continues from the old
one: its state (raised or not: what consumers were told) always, its evidence (a K-of-N
window, an on-delay or clear delay under way, a rate window's samples) only when the device
is the same one and, for a window classified against a threshold, the settings are too.
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from typing import Literal

from drivers.model import Quality, Reading
from edge_agent.rules.trend import LineFit

__all__ = ["Alarm", "Latch", "RateAlarm", "RateOfChange", "Transition", "good_number"]


def good_number(reading: Reading) -> float | None:
    """The reading's value as a float when its quality is GOOD and it is a number, else None."""
    value = reading.value
    if reading.quality is not Quality.GOOD or isinstance(value, bool | str) or value is None:
        return None
    return float(value)


class Transition(Enum):
    RAISE = "raise"
    CLEAR = "clear"


class Alarm:
    """Raise / clear one threshold with hysteresis, K-of-N persistence and an on-delay.

    ``direction="above"`` raises at ``value >= threshold`` and clears at
    ``value < threshold - hysteresis``; ``"below"`` mirrors it. Time comes from the
    samples' own ``ts``. Raises ``ValueError`` for a bad setting.
    """

    def __init__(
        self,
        threshold: float,
        *,
        direction: Literal["above", "below"] = "above",
        hysteresis: float = 0.0,
        k: int = 1,
        n: int = 1,
        on_delay_s: float = 0.0,
    ):
        if not 1 <= k <= n:
            raise ValueError(f"persistence {k} of {n}: need 1 <= k <= n")
        if hysteresis < 0 or on_delay_s < 0:
            raise ValueError("hysteresis and on_delay_s must not be negative")
        self.threshold = threshold
        self.direction = direction
        self.hysteresis = hysteresis
        self.k = k
        self.n = n
        self.on_delay_s = on_delay_s
        self.active = False
        self._window: deque[int] = deque(maxlen=n)  # +1 beyond, -1 back inside, 0 in the band
        self._pending_since: float | None = None

    def _settings(self) -> tuple[object, ...]:
        return (self.threshold, self.direction, self.hysteresis, self.k, self.n, self.on_delay_s)

    def carry_over(self, old: Alarm, *, evidence: bool = True) -> None:
        """Continue from ``old`` (this alarm before a reload): raised or not always; the
        K-of-N window and a pending on-delay only with ``evidence`` and the same settings
        (a window classified against another threshold says nothing about this one)."""
        self.active = old.active
        if evidence and self._settings() == old._settings():
            self._window = deque(old._window, maxlen=self.n)
            self._pending_since = old._pending_since

    def _classify(self, value: float) -> int:
        if self.direction == "above":
            if value >= self.threshold:
                return 1
            return -1 if value < self.threshold - self.hysteresis else 0
        if value <= self.threshold:
            return 1
        return -1 if value > self.threshold + self.hysteresis else 0

    def update(self, value: float, ts: float) -> Transition | None:
        """Feed one good sample; returns the transition it causes, if any."""
        self._window.append(self._classify(value))
        if not self.active:
            if self._window.count(1) < self.k:
                self._pending_since = None
                return None
            if self._pending_since is None or ts < self._pending_since:
                self._pending_since = ts  # (earlier: the wall clock stepped back; restart)
            if ts - self._pending_since < self.on_delay_s:
                return None
            self.active = True
        else:
            if self._window.count(-1) < self.k:
                return None
            self.active = False
        self._window.clear()
        self._pending_since = None
        return Transition.RAISE if self.active else Transition.CLEAR


class Latch:
    """Raise at once when a condition turns true; clear once it has stayed false for
    ``clear_after_s`` (sample time). Raises ``ValueError`` for a negative delay."""

    def __init__(self, clear_after_s: float = 0.0):
        if clear_after_s < 0:
            raise ValueError("clear_after_s must not be negative")
        self.clear_after_s = clear_after_s
        self.active = False
        self._false_since: float | None = None

    def carry_over(self, old: Latch, *, evidence: bool = True) -> None:
        """Continue from ``old`` (this latch before a reload): raised or not always; a clear
        delay under way with ``evidence`` (how long the condition has been false is a fact
        whatever the delay now is)."""
        self.active = old.active
        if evidence:
            self._false_since = old._false_since

    def update(self, condition: bool, ts: float) -> Transition | None:
        if condition:
            self._false_since = None
            if self.active:
                return None
            self.active = True
            return Transition.RAISE
        if not self.active:
            return None
        if self._false_since is None or ts < self._false_since:
            self._false_since = ts  # (earlier: the wall clock stepped back; restart)
        if ts - self._false_since < self.clear_after_s:
            return None
        self.active = False
        self._false_since = None
        return Transition.CLEAR


class RateOfChange:
    """Slope of a value over the last ``window_s`` seconds, in units per minute.

    ``update`` returns ``None`` until the window holds at least ``min_samples`` samples that
    span at least half the window: a rate from two close samples is noise. A repeated
    timestamp carries no rate information (ignored); an earlier one means the wall clock
    stepped back (NTP): the old samples are on another time base, so a new window starts
    rather than the rule staying blind until the clock catches up with them (an hour, a day).
    The sums are kept by ``edge_agent.rules.trend.LineFit`` (constant time per sample).
    """

    def __init__(self, window_s: float, *, min_samples: int = 3):
        self._fit = LineFit(window_s, min_samples=min_samples)
        self.window_s = window_s
        self.min_samples = min_samples

    def carry_over(self, old: RateOfChange, *, evidence: bool = True) -> None:
        """Continue from ``old`` (before a reload): its samples with ``evidence`` (they are
        readings; a new window length applies from the next sample on)."""
        if evidence:
            self._fit.carry_over(old._fit)

    def update(self, value: float, ts: float) -> float | None:
        last = self._fit.last()
        if last is not None and ts == last[0]:
            return None
        self._fit.update(value, ts)
        return self._fit.slope()

    def rate(self) -> float | None:
        return self._fit.slope()


class RateAlarm:
    """A rate-of-change alarm: raised when the value moves faster than ``per_min`` units per
    minute in ``direction`` (over ``window_s``), cleared once it moves slower than half that."""

    def __init__(self, window_s: float, per_min: float, direction: Literal["up", "down"] = "up"):
        self.rate = RateOfChange(window_s)
        self.alarm = Alarm(per_min, hysteresis=per_min / 2)
        self._sign = 1.0 if direction == "up" else -1.0

    @property
    def active(self) -> bool:
        return self.alarm.active

    def carry_over(self, old: RateAlarm, *, evidence: bool = True) -> None:
        """Continue from ``old`` (before a reload): see ``Alarm`` and ``RateOfChange``."""
        self.rate.carry_over(old.rate, evidence=evidence)
        self.alarm.carry_over(old.alarm, evidence=evidence)

    def update(self, value: float, ts: float) -> tuple[float | None, Transition | None]:
        """Feed one good sample: (the rate, ``None`` until the window has one; the transition
        it causes, if any)."""
        rate = self.rate.update(value, ts)
        if rate is None:
            return None, None
        return rate, self.alarm.update(self._sign * rate, ts)
