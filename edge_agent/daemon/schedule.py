"""When noise loggers record: slots in the night window, a slower day cadence, and on demand.

Leak noise is continuous while traffic and draw-off are not, so the quiet night window
(``leak_detection.night_window``, local time) is the reference: every ``recording_interval_s``
inside it, all loggers record (one Modbus broadcast per bus starts them together, so night
recordings of neighbours are synchronised for free). Around the clock, outside the window,
they record every ``day_interval_s`` (default 4 x the night interval) so a burst is not
missed for a whole day; day recordings are scored and shown but do not count as nights.
On demand (CLI/command, or a confirmation wanted now) and synchronised pairs (two neighbours
both suspect a leak: the correlator needs simultaneous recordings) come on top.

Pure logic on an injected clock: ``due(now)`` returns the jobs to run; nothing here sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal

__all__ = [
    "DAY_INTERVAL_FACTOR",
    "RECORDING_RETRIES",
    "NightWindow",
    "RecordingJob",
    "RecordingScheduler",
]

DAY_INTERVAL_FACTOR = 4  # day cadence = this x the night interval, unless given
# A recording that failed (a timeout on a busy bus, a logger still busy) is tried again this
# many times, after a delay of a quarter of the interval capped at RETRY_MAX_DELAY_S: waiting
# for the next slot would lose that slot's night, or hours of day cadence.
RECORDING_RETRIES = 3
RETRY_MAX_DELAY_S = 60.0
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


class RecordingScheduler:
    """Decides which recordings are due. Times are epoch seconds from the injected clock.

    Night slots are aligned to the window start (02:00, 03:00, ... for a 1 h interval), so a
    restart does not shift them; a slot missed while the daemon was down is not replayed
    (a late recording is no longer a night recording of that slot).
    """

    def __init__(
        self,
        loggers: Iterable[str],
        *,
        window: NightWindow,
        interval_s: float,
        day_interval_s: float | None = None,
        utc_offset_s: Callable[[float], float] = local_utc_offset_s,
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
        self._last_slot: float | None = None  # local seconds of the last slot handed out
        self._last_day_at: float | None = None
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

    def continue_from(self, previous: RecordingScheduler) -> None:
        """A config reload: go on where ``previous`` (the schedule of the config before)
        stands, so a reload records nothing extra: the last day-cadence job, the last night
        slot (when the window and interval are the same: slots are aligned to them), and the
        requests and retries still waiting, for the loggers still configured."""
        self._last_day_at = previous._last_day_at
        if (previous.window, previous.interval_s) == (self.window, self.interval_s):
            self._last_slot = previous._last_slot
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
        current night slot or the day cadence."""
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
            # The wall clock stepped back (NTP): the slots handed out are on the old time
            # base. Rebase, or nothing would be due until the clock caught up with them (a
            # step of a day inside the window would skip that night). At worst one extra
            # recording when the step was small.
            self._last_slot = None
            self._last_day_at = now
        local = now + self._offset(now)
        night_start = self.window.night_start(local)
        if night_start is not None:
            slot = night_start + ((local - night_start) // self.interval_s) * self.interval_s
            if self._last_slot is None or slot > self._last_slot:
                self._last_slot = slot
                night = time.strftime("%Y-%m-%d", time.gmtime(night_start))
                jobs.append(RecordingJob(self.loggers, "night", now, night, synchronised=True))
                self._last_day_at = now
        elif self._last_day_at is None or now - self._last_day_at >= self.day_interval_s:
            self._last_day_at = now
            jobs.append(RecordingJob(self.loggers, "day", now, synchronised=True))
        return jobs

    def next_due_at(self, now: float) -> float:
        """Epoch seconds of the next scheduled job (pending requests: now)."""
        if self._pending:
            return now
        retry_at = min((r.due_at for r in self._retries), default=float("inf"))
        return min(retry_at, self._next_scheduled_at(now))

    def _next_scheduled_at(self, now: float) -> float:
        if not self.loggers:
            return now + self.day_interval_s
        offset = self._offset(now)
        local = now + offset
        night_start = self.window.night_start(local)
        if night_start is not None:
            nxt = night_start + ((local - night_start) // self.interval_s + 1) * self.interval_s
            if nxt < night_start + self.window.length_s:
                return nxt - offset
            # Past the last slot: the day cadence resumes when the window closes.
            return night_start + self.window.length_s - offset
        next_night = self.window.next_start(local) - offset
        base = self._last_day_at if self._last_day_at is not None else now
        return max(now, min(next_night, base + self.day_interval_s))
