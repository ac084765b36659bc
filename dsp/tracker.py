"""``LeakTracker``: one logger's leak state over nights, with persistence and a learned baseline.

A logger records several times a night; one loud recording is not a leak, a leak is still
there tomorrow night. The tracker turns per-recording scores (``dsp.leak.score_recording``)
into state changes, with injected times (epoch seconds; no clock is read here).

Only recordings inside the night window (local time, ``night_window`` hours, may cross
midnight) count; others are scored and returned but change nothing. Night ``n`` is the window
that starts on local day ``n``. A recording is *positive* when its score >= the threshold.

State machine (transitions are returned as ``LeakTransition``; ``kind`` is the event kind):
```
NORMAL    --positive recording-------------------------------> WARNING    "leak.warning"
WARNING   --another positive recording (same or later night)--> SUSPECTED  "leak.suspected"
SUSPECTED --positive recordings on >= K of the last M nights--> CONFIRMED  "leak.confirmed"
WARNING | SUSPECTED | CONFIRMED
          --clear_nights nights in a row, each with recordings
            all scoring < clear_score (< threshold: hysteresis)-> NORMAL     "leak.cleared"
```
A night without recordings (logger offline) neither confirms nor clears. A night scoring between
``clear_score`` and the threshold restarts the clear count.

Baseline: each finished night contributes its quietest recording's ``quiet_level_db``. The
first ``learn_nights`` nights are learnt whatever they scored (a loud-but-normal site is learnt
as normal); after that only nights that were not positive while the state was NORMAL (a leak is
never learnt). Once learnt, the median of the last ``baseline_nights`` values replaces the
configured floor, so a loud-but-normal site stops alarming and clears, and a new leak on a quiet
site stands out against its own quiet nights. ``to_dict``/``from_dict`` persist the state as
plain JSON-able data so a restart loses neither the baseline nor the persistence count.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dsp.features import Features
from dsp.leak import LeakScore, LeakThresholds, score_recording

__all__ = [
    "LeakState",
    "LeakTracker",
    "LeakTransition",
    "TrackerConfig",
    "TrackerUpdate",
]

_DAY_S = 86400.0
_STATE_VERSION = 1


class LeakState(StrEnum):
    NORMAL = "normal"
    WARNING = "warning"
    SUSPECTED = "suspected"
    CONFIRMED = "confirmed"


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """Persistence rules; see the module docstring for what each does."""

    thresholds: LeakThresholds = field(default_factory=LeakThresholds)
    night_window: tuple[float, float] = (2.0, 4.0)  # local hours [start, end)
    utc_offset_s: float = 0.0  # local time = UTC + this
    confirm_k: int = 2
    confirm_m: int = 3
    clear_score: float = 0.3
    clear_nights: int = 2
    learn_nights: int = 5
    baseline_nights: int = 14

    def __post_init__(self) -> None:
        start, end = self.night_window
        # (0, 24) is the whole day (every recording counts); start == end is ambiguous
        if not (0.0 <= start < 24.0 and 0.0 <= end <= 24.0 and start != end):
            raise ValueError(f"night_window {self.night_window!r}: hours in 0..24, start != end")
        if not 1 <= self.confirm_k <= self.confirm_m:
            raise ValueError(
                f"need 1 <= confirm_k <= confirm_m, got {self.confirm_k}, {self.confirm_m}"
            )
        if not 0.0 < self.clear_score <= self.thresholds.threshold:
            raise ValueError(f"clear_score must be in (0, threshold], got {self.clear_score}")
        if self.clear_nights < 1 or self.learn_nights < 1:
            raise ValueError("clear_nights and learn_nights must be >= 1")
        if self.baseline_nights < self.learn_nights:
            raise ValueError("baseline_nights must be >= learn_nights")


@dataclass(frozen=True, slots=True)
class LeakTransition:
    """A state change: ``kind`` is ``leak.warning|suspected|confirmed|cleared``."""

    kind: str
    ts: float
    state: LeakState
    score: float
    quiet_level_db: float
    floor_db: float
    positive_nights: int  # in the last confirm_m nights


@dataclass(frozen=True, slots=True)
class TrackerUpdate:
    """What one observation did: its score, whether it counted, the transitions it caused."""

    score: LeakScore
    counted: bool
    transitions: tuple[LeakTransition, ...]


@dataclass(slots=True)
class _Night:
    positive: bool = False
    max_score: float = 0.0
    min_quiet_db: float = math.inf
    last_score: float = 0.0
    last_quiet_db: float = math.nan


class LeakTracker:
    """One logger's leak state. Not thread-safe: one tracker per logger, one caller."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config if config is not None else TrackerConfig()
        self.state = LeakState.NORMAL
        self._nights: dict[int, _Night] = {}
        self._current: int | None = None  # night id being recorded
        self._baseline: deque[float] = deque(maxlen=self.config.baseline_nights)
        self._finished = 0  # nights finished so far (for learning)
        self._clear_streak = 0

    # -- time ---------------------------------------------------------------------------------
    def _night_of(self, ts: float) -> tuple[int, bool]:
        start, end = self.config.night_window
        local = ts + self.config.utc_offset_s - start * 3600.0
        length = ((end - start) % 24.0 or 24.0) * 3600.0
        night = math.floor(local / _DAY_S)
        return night, (local - night * _DAY_S) < length

    # -- baseline -----------------------------------------------------------------------------
    @property
    def baseline_db(self) -> float | None:
        """The learned quiet-night level, or None while learning."""
        if self._finished < self.config.learn_nights or not self._baseline:
            return None
        return float(statistics.median(self._baseline))

    @property
    def floor_db(self) -> float:
        base = self.baseline_db
        return self.config.thresholds.floor_db if base is None else base

    def _positive_nights(self, upto: int) -> int:
        m = self.config.confirm_m
        return sum(1 for n, rec in self._nights.items() if upto - m < n <= upto and rec.positive)

    # -- events -------------------------------------------------------------------------------
    def _transition(self, kind: str, state: LeakState, ts: float, night: int) -> LeakTransition:
        self.state = state
        rec = self._nights.get(night, _Night())
        return LeakTransition(
            kind=kind,
            ts=ts,
            state=state,
            score=rec.last_score,
            quiet_level_db=rec.last_quiet_db,
            floor_db=self.floor_db,
            positive_nights=self._positive_nights(night),
        )

    def _finish_night(self, ts: float) -> list[LeakTransition]:
        night = self._current
        self._current = None
        if night is None:
            return []
        rec = self._nights[night]
        out: list[LeakTransition] = []
        learning = self._finished < self.config.learn_nights
        if math.isfinite(rec.min_quiet_db) and (
            learning or (not rec.positive and self.state is LeakState.NORMAL)
        ):
            self._baseline.append(rec.min_quiet_db)
        self._finished += 1
        if self.state is not LeakState.NORMAL:
            if rec.max_score < self.config.clear_score:
                self._clear_streak += 1
            else:
                self._clear_streak = 0
            if self._clear_streak >= self.config.clear_nights:
                self._clear_streak = 0
                out.append(self._transition("leak.cleared", LeakState.NORMAL, ts, night))
        keep = max(self.config.confirm_m, self.config.clear_nights) + 1
        for old in [n for n in self._nights if n <= night - keep]:
            del self._nights[old]
        return out

    def tick(self, ts: float) -> list[LeakTransition]:
        """Finish the current night if ``ts`` is past its window (call after the window)."""
        if self._current is None:
            return []
        night, inside = self._night_of(ts)
        if night > self._current or (night == self._current and not inside):
            return self._finish_night(ts)
        return []

    def observe(self, ts: float, features: Features) -> TrackerUpdate:
        """Score a recording made at ``ts`` and advance the state; see the module docstring."""
        night, inside = self._night_of(ts)
        out = self.tick(ts)
        floor = self.floor_db
        score = score_recording(features, self.config.thresholds, floor_db=floor)
        if not inside or (self._current is not None and night < self._current):
            # outside the window, or older than the night in progress (a late upload): scored,
            # not counted, so time never runs backwards in the state
            return TrackerUpdate(score=score, counted=False, transitions=tuple(out))
        self._current = night
        rec = self._nights.setdefault(night, _Night())
        positive = score.score >= self.config.thresholds.threshold
        rec.positive |= positive
        rec.max_score = max(rec.max_score, score.score)
        rec.min_quiet_db = min(rec.min_quiet_db, features.quiet_level_db)
        rec.last_score = score.score
        rec.last_quiet_db = features.quiet_level_db
        if positive:
            self._clear_streak = 0
            if self.state is LeakState.NORMAL:
                out.append(self._transition("leak.warning", LeakState.WARNING, ts, night))
            elif self.state is LeakState.WARNING:
                out.append(self._transition("leak.suspected", LeakState.SUSPECTED, ts, night))
            if (
                self.state is LeakState.SUSPECTED
                and self._positive_nights(night) >= self.config.confirm_k
            ):
                out.append(self._transition("leak.confirmed", LeakState.CONFIRMED, ts, night))
        return TrackerUpdate(score=score, counted=True, transitions=tuple(out))

    # -- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able state (not the config: that comes from the gateway config)."""
        return {
            "version": _STATE_VERSION,
            "state": self.state.value,
            "current": self._current,
            "finished": self._finished,
            "clear_streak": self._clear_streak,
            "baseline": list(self._baseline),
            "nights": {
                str(n): [r.positive, r.max_score, r.min_quiet_db, r.last_score, r.last_quiet_db]
                for n, r in self._nights.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: TrackerConfig | None = None) -> LeakTracker:
        """Restore a tracker saved by ``to_dict``; raises ``ValueError`` on malformed data."""
        tracker = cls(config)
        try:
            if data["version"] != _STATE_VERSION:
                raise ValueError(f"unsupported tracker state version {data['version']!r}")
            tracker.state = LeakState(data["state"])
            tracker._current = None if data["current"] is None else int(data["current"])
            tracker._finished = int(data["finished"])
            tracker._clear_streak = int(data["clear_streak"])
            tracker._baseline.extend(float(v) for v in data["baseline"])
            for key, (pos, mx, mn, last, lastq) in data["nights"].items():
                tracker._nights[int(key)] = _Night(
                    bool(pos), float(mx), float(mn), float(last), float(lastq)
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad leak tracker state: {exc}") from exc
        return tracker
