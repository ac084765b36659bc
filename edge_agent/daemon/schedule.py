"""When noise loggers record: slots in the night window, a slower day cadence, and on demand.

Leak noise is continuous while traffic and draw-off are not, so the quiet night window
(``leak_detection.night_window``, local time) is the reference: every ``recording_interval_s``
inside it, all loggers record (one Modbus broadcast per bus starts them together, so night
recordings of neighbours are synchronised for free). Around the clock, outside the window,
they record every ``day_interval_s`` (default 4 x the night interval) so a burst is not
missed for a whole day; day recordings are scored and shown but do not count as nights.
On demand (CLI/command, or a confirmation wanted now) and synchronised pairs (two neighbours
both suspect a leak: the correlator needs simultaneous recordings) come on top.

What a night owes, and restarts: each logger owes the night one recording per slot. What it
has recorded (``recorded``) and when the last day recording was are the scheduler's state
(``ScheduleState``, saved by the daemon in its state directory after every change), so a
restart or a reload does not record everything again: it records only what tonight still
owes. Owed recordings whose slot passed while the daemon was down are spread evenly over the
rest of the window, not made up at once (never closer than the interval or 10 minutes: what
does not fit is forgiven); and a daemon that has just started (``started_at``)
records nothing scheduled for ``settle_s``, so its polls start alone. A first start ever
does its first day recording one day interval later (the night window, or a request,
comes first).

Pure logic on an injected clock: ``due(now)`` returns the jobs to run; nothing here sleeps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

__all__ = [
    "DAY_INTERVAL_FACTOR",
    "RECORDING_RETRIES",
    "START_SETTLE_S",
    "NightWindow",
    "RecordingJob",
    "RecordingScheduler",
    "ScheduleState",
]

DAY_INTERVAL_FACTOR = 4  # day cadence = this x the night interval, unless given
# A recording that failed (a timeout on a busy bus, a logger still busy) is tried again this
# many times, after a delay of a quarter of the interval capped at RETRY_MAX_DELAY_S: waiting
# for the next slot would lose that slot's night, or hours of day cadence.
RECORDING_RETRIES = 3
RETRY_MAX_DELAY_S = 60.0
# After a (re)start no scheduled recording for this long: the buses' first polls go alone.
START_SETTLE_S = 60.0
MIN_MAKE_UP_SPACING_S = 600.0  # owed recordings made up no closer than this (or the interval)
JobReason = Literal["night", "day", "demand", "pair"]


def local_utc_offset_s(ts: float) -> float:
    """The host's UTC offset at ``ts`` (DST-aware)."""
    return float(time.localtime(ts).tm_gmtoff)


@dataclass(frozen=True, slots=True)
class NightWindow:
    """Local quiet hours as minutes after midnight; ``end < start`` crosses midnight."""

    start_min: int
    end_min: int

    def __post_init__(self) -> None:
        for name, value in (("start_min", self.start_min), ("end_min", self.end_min)):
            if not 0 <= value < 24 * 60:
                raise ValueError(f"{name} {value} is not in 0..1439")
        if self.start_min == self.end_min:
            raise ValueError("night window start and end are the same time")

    @property
    def length_s(self) -> float:
        return ((self.end_min - self.start_min) % (24 * 60)) * 60.0

    def night_start(self, local_s: float) -> float | None:
        """Local seconds (since the epoch, in local time) at which the window containing
        ``local_s`` began, or None when ``local_s`` is outside every window."""
        day0 = (local_s // 86400) * 86400
        for start in (day0 + self.start_min * 60, day0 - 86400 + self.start_min * 60):
            if start <= local_s < start + self.length_s:
                return start
        return None

    def next_start(self, local_s: float) -> float:
        """Local seconds of the next window start strictly after ``local_s``."""
        day0 = (local_s // 86400) * 86400
        start = day0 + self.start_min * 60
        return start if start > local_s else start + 86400


@dataclass(frozen=True, slots=True)
class RecordingJob:
    """Record ``devices`` now. ``night`` names the night (local date of the window start,
    ``YYYY-MM-DD``) for night recordings; ``synchronised`` asks for one simultaneous start."""

    devices: tuple[str, ...]
    reason: JobReason
    due_at: float
    night: str | None = None
    synchronised: bool = False
    attempt: int = 0  # 0 for the first try, then 1..RECORDING_RETRIES


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What a restart must not forget: the night being recorded (``YYYY-MM-DD`` of its
    window start), each logger's recordings of it, and when the last day recording was."""

    night: str | None = None
    done: dict[str, int] = field(default_factory=dict)
    last_day_at: float | None = None


class RecordingScheduler:
    """Decides which recordings are due. Times are epoch seconds from the injected clock.

    Night slots are aligned to the window start (02:00, 03:00, ... for a 1 h interval), so a
    restart does not shift them. ``state`` is what a previous run saved (``on_change`` gets
    every new state to save); ``started_at`` the time this run started, after which nothing
    scheduled is due for ``settle_s`` (None: no settling, and a day recording at once).
    """

    def __init__(
        self,
        loggers: Iterable[str],
        *,
        window: NightWindow,
        interval_s: float,
        day_interval_s: float | None = None,
        utc_offset_s: Callable[[float], float] = local_utc_offset_s,
        state: ScheduleState | None = None,
        started_at: float | None = None,
        settle_s: float = START_SETTLE_S,
        on_change: Callable[[ScheduleState], None] | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.loggers = tuple(loggers)
        self.window = window
        self.interval_s = float(interval_s)
        self.day_interval_s = float(
            day_interval_s if day_interval_s is not None else interval_s * DAY_INTERVAL_FACTOR
        )
        if self.day_interval_s <= 0:
            raise ValueError(f"day_interval_s must be > 0, got {self.day_interval_s}")
        self._offset = utc_offset_s
        self._on_change = on_change
        state = state or ScheduleState()
        self._not_before = -math.inf if started_at is None else started_at + settle_s
        # This night: its label, each logger's recordings (done) and jobs handed out, and
        # the times of the jobs it still owes (epoch seconds, planned when the night begins).
        self._night: str | None = None
        self._restored = state
        self._done: dict[str, int] = {}
        self._handed: dict[str, int] = {}
        self._plan: list[float] = []
        self._last_day_at = state.last_day_at
        if self._last_day_at is None and started_at is not None:
            self._last_day_at = started_at  # a first start: one day interval until the first
        self._pending: list[RecordingJob] = []
        self._retries: list[RecordingJob] = []  # due at their ``due_at``, not at once

    # -- on demand -----------------------------------------------------------------------

    def request(self, device: str, now: float) -> None:
        """Record ``device`` as soon as possible. Raises KeyError for an unknown logger."""
        self._check(device)
        if not any(device in j.devices and j.reason == "demand" for j in self._pending):
            self._pending.append(RecordingJob((device,), "demand", now))

    def request_all(self, now: float) -> None:
        """Record every logger as soon as possible, synchronised (one broadcast per bus)."""
        if self.loggers and not any(
            j.devices == self.loggers and j.reason == "demand" for j in self._pending
        ):
            self._pending.append(RecordingJob(self.loggers, "demand", now, synchronised=True))

    def request_pair(self, a: str, b: str, now: float) -> None:
        """A synchronised recording of two neighbours for the correlator. Raises KeyError."""
        self._check(a)
        self._check(b)
        pair = tuple(sorted((a, b)))
        if not any(j.devices == pair and j.reason == "pair" for j in self._pending):
            self._pending.append(RecordingJob(pair, "pair", now, synchronised=True))

    def retry(self, job: RecordingJob, devices: Iterable[str], now: float) -> RecordingJob | None:
        """Try ``devices`` of a failed ``job`` again later (same reason and night).

        Returns the retry job, or None when the job has had its ``RECORDING_RETRIES``.
        """
        devices = tuple(d for d in job.devices if d in set(devices))
        if not devices or job.attempt >= RECORDING_RETRIES:
            return None
        delay = min(self.interval_s / 4.0, RETRY_MAX_DELAY_S)
        again = RecordingJob(
            devices,
            job.reason,
            now + delay,
            job.night,
            synchronised=job.synchronised and len(devices) > 1,
            attempt=job.attempt + 1,
        )
        self._retries.append(again)
        return again

    def recorded(self, job: RecordingJob, devices: Iterable[str]) -> None:
        """``devices`` of ``job`` delivered their recordings: a night job counts for its
        night (a restart will not record them again for that slot)."""
        if job.reason != "night" or job.night != self._night:
            return
        for device in devices:
            if device in self._done:
                self._done[device] += 1
        self._changed()

    def snapshot(self) -> ScheduleState:
        """The state to save (``on_change`` gets it after each change)."""
        if self._night is None:
            return replace(self._restored, last_day_at=self._last_day_at)
        return ScheduleState(self._night, dict(self._done), self._last_day_at)

    def _changed(self) -> None:
        self._restored = self.snapshot()  # what a re-planned night (a clock step) starts from
        if self._on_change is not None:
            self._on_change(self._restored)

    def continue_from(self, previous: RecordingScheduler) -> None:
        """A config reload: go on where ``previous`` (the schedule of the config before)
        stands, so a reload records nothing extra: what tonight's loggers have recorded (a
        logger new to the config owes the whole night; the night is planned again from what
        is owed, on the new window and interval), the last day-cadence job, and the requests
        and retries still waiting, for the loggers still configured. Jobs ``previous`` had
        handed out but not delivered are owed again."""
        self._restored = replace(previous.snapshot(), last_day_at=previous._last_day_at)
        self._last_day_at = previous._last_day_at
        self._night = None  # planned again on the next ``due``
        self._pending = self._still_configured(previous._pending)
        self._retries = self._still_configured(previous._retries)

    def _still_configured(self, jobs: Iterable[RecordingJob]) -> list[RecordingJob]:
        out = []
        for job in jobs:
            devices = tuple(d for d in job.devices if d in self.loggers)
            if devices:
                sync = job.synchronised and len(devices) > 1
                out.append(replace(job, devices=devices, synchronised=sync))
        return out

    def _check(self, device: str) -> None:
        if device not in self.loggers:
            raise KeyError(f"{device!r} is not a noise logger of this gateway")

    # -- the schedule --------------------------------------------------------------------

    def due(self, now: float) -> list[RecordingJob]:
        """The jobs to start now, each handed out once: pending requests first, then the
        night's next owed job or the day cadence."""
        jobs, self._pending = self._pending, []
        if self._retries:
            if any(r.due_at - now > RETRY_MAX_DELAY_S for r in self._retries):
                # The clock stepped back: retry now rather than wait out the step.
                self._retries = [replace(r, due_at=now) for r in self._retries]
            jobs.extend(r for r in self._retries if r.due_at <= now)
            self._retries = [r for r in self._retries if r.due_at > now]
        if not self.loggers:
            return jobs
        if self._last_day_at is not None and now < self._last_day_at:
            # The wall clock stepped back (NTP): the times handed out are on the old time
            # base. Rebase, or nothing would be due until the clock caught up with them (a
            # step of a day inside the window would skip that night). At worst one extra
            # recording when the step was small.
            self._last_day_at = now
            self._night = None
        if now < self._not_before:
            return jobs
        night_start = self._sync_night(now)
        if night_start is not None:
            if self._plan and self._plan[0] <= now:
                while self._plan and self._plan[0] <= now:  # several owed at once: one job
                    self._plan.pop(0)
                owing = tuple(d for d in self.loggers if self._handed[d] < self._slots())
                for device in owing:
                    self._handed[device] += 1
                if owing:
                    jobs.append(RecordingJob(owing, "night", now, self._night, True))
                self._last_day_at = now
                self._changed()
        elif self._last_day_at is None or now - self._last_day_at >= self.day_interval_s:
            self._last_day_at = now
            jobs.append(RecordingJob(self.loggers, "day", now, synchronised=True))
            self._changed()
        return jobs

    def _slots(self) -> int:
        """Recordings each logger owes a whole night."""
        return max(1, math.ceil(self.window.length_s / self.interval_s))

    def _sync_night(self, now: float) -> float | None:
        """Epoch seconds of the start of the night window ``now`` is in (None: outside);
        on entering a night, what it owes is worked out and planned."""
        offset = self._offset(now)
        local_start = self.window.night_start(now + offset)
        if local_start is None:
            return None
        label = time.strftime("%Y-%m-%d", time.gmtime(local_start))
        start = local_start - offset
        if label != self._night:
            self._begin_night(label, start, now)
        return start

    def _begin_night(self, label: str, start: float, now: float) -> None:
        """What night ``label`` (window from ``start``) still owes, planned from ``now``: the
        coming slots when they hold it, else spread evenly over the rest of the window."""
        restored = self._restored.done if self._restored.night == label else {}
        self._night = label
        self._done = {d: int(restored.get(d, 0)) for d in self.loggers}
        self._handed = dict(self._done)
        slots = self._slots()
        owed = max(slots - n for n in self._handed.values())
        if owed <= 0:
            self._plan = []
            return
        current = min(int((now - start) // self.interval_s), slots - 1)
        remaining = [start + k * self.interval_s for k in range(current, slots)]
        if owed <= len(remaining):
            self._plan = remaining[len(remaining) - owed :]
            return
        first = max(now, self._not_before)
        span = max(start + self.window.length_s - first, 0.0)
        # Never closer than the configured interval, nor than MIN_MAKE_UP_SPACING_S: what
        # does not fit is not made up (a 1-minute interval would otherwise record non-stop).
        closest = min(self.interval_s, MIN_MAKE_UP_SPACING_S)
        count = min(owed, max(1, int(span // closest)))
        if count <= len(remaining):
            self._plan = remaining  # the slots left hold as many: keep to them
            return
        step = span / count
        self._plan = [first + k * step for k in range(count)]

    def next_due_at(self, now: float) -> float:
        """Epoch seconds of the next scheduled job (pending requests: now)."""
        if self._pending:
            return now
        retry_at = min((r.due_at for r in self._retries), default=float("inf"))
        return min(retry_at, max(self._next_scheduled_at(now), self._not_before))

    def _next_scheduled_at(self, now: float) -> float:
        if not self.loggers:
            return now + self.day_interval_s
        offset = self._offset(now)
        local = now + offset
        night_start = self._sync_night(now)
        if night_start is not None:
            if self._plan:
                return self._plan[0]
            # All owed: the day cadence resumes when the window closes.
            return night_start + self.window.length_s
        next_night = self.window.next_start(local) - offset
        base = self._last_day_at if self._last_day_at is not None else now
        return max(now, min(next_night, base + self.day_interval_s))
