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

Scores (``dsp.leak.score_recording``) add gain-free evidence (the spectrum's shape and
steadiness) to level evidence against a floor: the configured one (the site's noise floor)
until the baseline is learnt, then the baseline. A mis-calibrated logger therefore still
alarms on a leak its spectrum shows, and a loud-but-normal site does not alarm on level alone.

Baseline: each finished night may contribute its quietest recording's ``quiet_level_db``.
Learnt are nights whose recordings the gain-free evidence alone did not call a leak, while
the state was neither SUSPECTED nor CONFIRMED; after the first ``learn_nights`` nights, only
nights that were not positive at all while the state was NORMAL. So a loud-but-normal site is
learnt as normal, and **a leak is never learnt**: not one that starts later, and not one
already running when the logger is installed, as long as its spectrum shows it. (The old rule,
"learn the first nights whatever they score", learnt a running leak into the floor and then
cleared it: a leak must clear because its noise fell back, never because the gateway got used
to it.) Once learnt, the median of the last ``baseline_nights`` values replaces the
configured floor. ``to_dict``/``from_dict`` persist the state as plain JSON-able data so a
restart loses neither the baseline nor the persistence count.
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
_STATE_VERSION = 2
_OLD_STATE_VERSIONS = (1,)  # nights saved without the gain-free flag: read as positive


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
    floor_db: float | None  # None: no floor known yet (gain-free score only)
    positive_nights: int  # in the last confirm_m nights
    prominence_db: float = 0.0
    mode: str = "absolute"
    group_excess_db: float | None = None


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
    # the gain-free evidence alone called a recording of this night a leak: never learnt
    leak_shaped: bool = False
    last_prominence_db: float = 0.0
    last_mode: str = "absolute"
    last_group_excess_db: float | None = None


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
    def floor_db(self) -> float | None:
        """The learnt baseline, else the configured floor (None: units unknown)."""
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
            prominence_db=rec.last_prominence_db,
            mode=rec.last_mode,
            group_excess_db=rec.last_group_excess_db,
        )

    def _finish_night(self, ts: float) -> list[LeakTransition]:
        night = self._current
        self._current = None
        if night is None:
            return []
        rec = self._nights[night]
        out: list[LeakTransition] = []
        if math.isfinite(rec.min_quiet_db) and self._learnable(rec):
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

    def _learnable(self, rec: _Night) -> bool:
        """May this finished night's quiet level join the baseline? (module docstring)"""
        if rec.leak_shaped or self.state in (LeakState.SUSPECTED, LeakState.CONFIRMED):
            return False
        if self._finished < self.config.learn_nights:
            return True
        return not rec.positive and self.state is LeakState.NORMAL

    def tick(self, ts: float) -> list[LeakTransition]:
        """Finish the current night if ``ts`` is past its window (call after the window)."""
        if self._current is None:
            return []
        night, inside = self._night_of(ts)
        if night > self._current or (night == self._current and not inside):
            return self._finish_night(ts)
        return []

    def observe(
        self, ts: float, features: Features, *, group_excess_db: float | None = None
    ) -> TrackerUpdate:
        """Score a recording made at ``ts`` and advance the state; see the module docstring.
        ``group_excess_db``: its steady level over its peers' that night (``dsp.group``)."""
        night, inside = self._night_of(ts)
        out = self.tick(ts)
        score = score_recording(
            features,
            self.config.thresholds,
            floor_db=self.floor_db,
            group_excess_db=group_excess_db,
        )
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
        rec.leak_shaped |= score.relative_score >= self.config.thresholds.threshold
        rec.last_prominence_db = features.prominence_db
        rec.last_mode = score.mode
        rec.last_group_excess_db = group_excess_db
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
                str(n): [
                    r.positive,
                    r.max_score,
                    r.min_quiet_db,
                    r.last_score,
                    r.last_quiet_db,
                    r.leak_shaped,
                ]
                for n, r in self._nights.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: TrackerConfig | None = None) -> LeakTracker:
        """Restore a tracker saved by ``to_dict``; raises ``ValueError`` on malformed data."""
        tracker = cls(config)
        try:
            version = data["version"]
            if version != _STATE_VERSION and version not in _OLD_STATE_VERSIONS:
                raise ValueError(f"unsupported tracker state version {version!r}")
            tracker.state = LeakState(data["state"])
            tracker._current = None if data["current"] is None else int(data["current"])
            tracker._finished = int(data["finished"])
            tracker._clear_streak = int(data["clear_streak"])
            tracker._baseline.extend(float(v) for v in data["baseline"])
            for key, values in data["nights"].items():
                pos, mx, mn, last, lastq = values[:5]
                # version 1 did not record the gain-free flag: a positive night stays unlearnt
                shaped = bool(values[5]) if version == _STATE_VERSION else bool(pos)
                tracker._nights[int(key)] = _Night(
                    bool(pos), float(mx), float(mn), float(last), float(lastq), shaped
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad leak tracker state: {exc}") from exc
        return tracker
