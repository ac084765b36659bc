"""Straight-line trends over a sliding time window, updated in constant time per sample.

``LineFit`` keeps the running sums of a least-squares line through the samples of the last
``window_s`` seconds: ``slope()`` (units per minute), ``stderr()`` (the slope's standard
error from the residuals) and the fitted value at the newest sample. A rule fed every few
seconds for a year calls it millions of times, so it never walks the window: each sample is
added once and subtracted once. Times are kept relative to a base instant, re-based now and
then, so the sums of squared epoch seconds never swamp a window of minutes.

``Trend`` is ``LineFit`` behind a median-of-three filter: one stray echo (a radar gauge seeing
foam, a ladder, a person in the manhole) moves the median by nothing, where a single spike
of 500 mm would tilt a least-squares slope by tens of mm/min for the whole window.

Time is the samples' ``ts``: a sample earlier than the last one (the wall clock stepped
back) starts a new window, as ``edge_agent.rules.alarm.RateOfChange`` does.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["LineFit", "Trend"]

_REBASE_S = 86_400.0  # re-base the sums' time origin when the newest sample is this far past it


class LineFit:
    """Least-squares line through the samples of the last ``window_s`` seconds.

    ``slope()`` is ``None`` until the window holds ``min_samples`` samples spanning at least
    half of it: a slope from two close samples is noise. Raises ``ValueError`` for a window
    that is not positive.
    """

    def __init__(self, window_s: float, *, min_samples: int = 3):
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self.window_s = window_s
        self.min_samples = min_samples
        self._samples: deque[tuple[float, float]] = deque()
        self._base = 0.0
        self._n = 0
        self._st = self._sv = self._stt = self._stv = self._svv = 0.0

    def __len__(self) -> int:
        return self._n

    def clear(self) -> None:
        self._samples.clear()
        self._n = 0
        self._st = self._sv = self._stt = self._stv = self._svv = 0.0

    def carry_over(self, old: LineFit) -> None:
        """Take ``old``'s samples (a reload; this window's length applies to them)."""
        self.clear()
        for ts, value in old._samples:
            self.update(value, ts)

    def _add(self, ts: float, value: float, sign: float) -> None:
        t = ts - self._base
        self._n += int(sign)
        self._st += sign * t
        self._sv += sign * value
        self._stt += sign * t * t
        self._stv += sign * t * value
        self._svv += sign * value * value

    def _rebase(self, base: float) -> None:
        samples = list(self._samples)
        self.clear()
        self._base = base
        for ts, value in samples:
            self._samples.append((ts, value))
            self._add(ts, value, 1.0)

    def update(self, value: float, ts: float) -> None:
        """Add one sample (a repeated timestamp is ignored, an earlier one restarts)."""
        if self._samples and ts <= self._samples[-1][0]:
            if ts == self._samples[-1][0]:
                return
            self.clear()  # the wall clock stepped back: the old samples are another time base
        if not self._samples:
            self._base = ts
        elif ts - self._base > _REBASE_S:
            self._rebase(self._samples[0][0])
        self._samples.append((ts, value))
        self._add(ts, value, 1.0)
        while self._samples[0][0] < ts - self.window_s:
            old_ts, old_value = self._samples.popleft()
            self._add(old_ts, old_value, -1.0)

    def _moments(self) -> tuple[float, float, float] | None:
        n = self._n
        if n < self.min_samples or n < 3:
            return None
        if self._samples[-1][0] - self._samples[0][0] < self.window_s / 2:
            return None
        sxx = self._stt - self._st * self._st / n
        if sxx <= 0:
            return None
        sxy = self._stv - self._st * self._sv / n
        syy = self._svv - self._sv * self._sv / n
        return sxx, sxy, syy

    def slope(self) -> float | None:
        """Units per minute, or ``None`` (too few samples, or they span too little time)."""
        m = self._moments()
        return None if m is None else m[1] / m[0] * 60.0

    def stderr(self) -> float | None:
        """Standard error of ``slope()`` (units per minute) from the residual scatter."""
        m = self._moments()
        if m is None:
            return None
        sxx, sxy, syy = m
        residual = max(syy - sxy * sxy / sxx, 0.0)
        return math.sqrt(residual / (self._n - 2) / sxx) * 60.0

    def first(self) -> tuple[float, float] | None:
        """(ts, value) of the oldest sample in the window."""
        return self._samples[0] if self._samples else None

    def last(self) -> tuple[float, float] | None:
        """(ts, value) of the newest sample."""
        return self._samples[-1] if self._samples else None


class Trend:
    """A ``LineFit`` fed through a median of the last three samples (``value`` is the median).

    A gap longer than the window restarts the filter, so a gauge back from a dropout is not
    judged against values from before it.
    """

    def __init__(self, window_s: float, *, min_samples: int = 4):
        self.fit = LineFit(window_s, min_samples=min_samples)
        self._recent: deque[float] = deque(maxlen=3)
        self._last_ts: float | None = None
        self.value: float | None = None

    def update(self, value: float, ts: float) -> None:
        if self._last_ts is not None and (
            ts < self._last_ts or ts - self._last_ts > self.fit.window_s
        ):
            self._recent.clear()
            self.fit.clear()
        self._last_ts = ts
        self._recent.append(value)
        self.value = sorted(self._recent)[len(self._recent) // 2]
        self.fit.update(self.value, ts)

    def slope(self) -> float | None:
        return self.fit.slope()

    def stderr(self) -> float | None:
        return self.fit.stderr()

    def fresh(self, ts: float, max_age_s: float) -> bool:
        """Has a sample arrived within ``max_age_s`` of ``ts``?"""
        return self._last_ts is not None and 0 <= ts - self._last_ts <= max_age_s
