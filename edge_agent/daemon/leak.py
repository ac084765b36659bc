"""The leak pipeline: scheduled recordings -> scores (worker threads) -> trackers -> events,
and synchronised pairs -> correlator -> ``leak.located``.

The pipeline owns the order of things, not the maths: ``Recorder`` gets recordings off the
bus (an exclusive slot on the bus runner, one broadcast start for a synchronised job),
``LeakAnalysis`` scores a recording and keeps each logger's tracker (``dsp.leak``), ``Locator``
turns two simultaneous recordings into a position on the pipe path (``dsp.correlate`` and
``edge_agent.site_network``). Scoring and correlating are numba kernels released from the GIL:
they run in the daemon's worker pool, never on the event loop.

The loggers of one job are scored together, in one executor call (``score_job`` -> a frozen
``JobScores``): each is compared with the others (the group comparison of ``dsp.group``)
before its tracker sees it. When both loggers of a
neighbouring pair suspect a leak, the pipeline asks the scheduler for a synchronised pair
recording and correlates it; when three or more suspecting loggers recorded in one
synchronised job (a night's broadcast start), all their pairs' delays are solved together on
the pipe graph (``Locator.locate_many``). A pair or group located once is not re-located for
``relocate_after_s`` (the leak does not move; the recordings cost bus time and battery).
After every job that scored something, ``persist`` saves the trackers (see ``analysis``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from drivers.model import Recording
from edge_agent.clock import Clock
from edge_agent.component_status import LoggerStatus
from edge_agent.daemon.schedule import RecordingJob, RecordingScheduler
from edge_agent.events import EventDraft, JsonValue
from edge_agent.logs import get_logger

if TYPE_CHECKING:  # a type only: the resident daemon loads the kernels where they run
    from dsp.features import Features
    from dsp.group import GroupComparison

__all__ = [
    "DEFAULT_RELOCATE_AFTER_S",
    "JobScores",
    "LeakAnalysis",
    "LeakPipeline",
    "Location",
    "Locator",
    "LoggerStatus",
    "Recorder",
]

DEFAULT_RELOCATE_AFTER_S = 86400.0
SUSPECTING_STATES = frozenset({"suspected", "confirmed"})
MIN_LOGGERS_TO_SOLVE = 3  # fewer: the pair correlator does it
# A job that finds nothing to do waits at most this long (leak-clock seconds are converted by
# the clock's own sleep) before looking at the schedule again.
MAX_IDLE_S = 60.0

log = get_logger("edge_agent.daemon.leak")


class Recorder(Protocol):
    """Gets recordings off the bus. Returns a recording or an error text per device."""

    async def record(
        self, devices: tuple[str, ...], *, synchronised: bool
    ) -> dict[str, Recording | str]: ...


@dataclass(frozen=True, slots=True)
class JobScores:
    """What one job's recordings give (``LeakAnalysis.score_job``): small frozen values, no
    samples, so the job can be scored in a worker thread now and a worker process later.
    ``features`` per logger scored; ``groups`` each of them against the others of the job
    (``dsp.group``); ``refused`` the loggers whose recording dsp refused, with why."""

    features: Mapping[str, Features]
    groups: Mapping[str, GroupComparison]
    refused: Mapping[str, str]


class LeakAnalysis(Protocol):
    """Scores a job's recordings (``score_job``: pure and safe in any thread, run by the
    pipeline's executor, of any kind) and keeps one tracker per logger (the rest: called on
    the event loop only)."""

    def score_job(self, recordings: Mapping[str, Recording]) -> JobScores: ...

    def track(
        self,
        device: str,
        features: Features,
        job: RecordingJob,
        group: GroupComparison | None = None,
    ) -> tuple[float, list[EventDraft]]: ...

    def state(self, device: str) -> str: ...

    def to_json(self) -> object: ...  # every tracker's state, as JSON data

    def restore(self, data: object, only: Collection[str] | None = None) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Location:
    """Where a pair put the leak: ``pipe`` and ``offset_m`` from that pipe's ``from`` node,
    ``distance_m`` along the path from logger ``a``."""

    a: str
    b: str
    pipe: str
    offset_m: float
    distance_m: float
    spacing_m: float
    tdoa_ms: float
    confidence: float
    data: dict[str, JsonValue] = field(default_factory=dict)


class Locator(Protocol):
    """Correlates simultaneous recordings (thread-safe, called from workers).

    ``locate``: two loggers; ``locate_many``: three or more, all pairs solved together. Both
    return None when the source is not between the loggers or the correlation is too weak.
    """

    def locate(self, a: Recording, b: Recording) -> Location | None: ...

    def locate_many(self, recordings: Sequence[Recording]) -> Location | None: ...


class LeakPipeline:
    """Runs the schedule until ``stop`` is set. ``emit`` stores drafts durably (the outbox);
    ``beat`` tells the watchdog the pipeline is alive (once per loop turn)."""

    def __init__(
        self,
        *,
        scheduler: RecordingScheduler,
        recorder: Recorder,
        analysis: LeakAnalysis,
        locator: Locator | None,
        pairs: Sequence[tuple[str, str]],
        emit: Callable[[list[EventDraft]], Awaitable[None]],
        clock: Clock,
        executor: Executor | None,
        beat: Callable[[], None] = lambda: None,
        relocate_after_s: float = DEFAULT_RELOCATE_AFTER_S,
        persist: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.recorder = recorder
        self.analysis = analysis
        self.locator = locator
        self.pairs = tuple(tuple(sorted(p)) for p in pairs)
        self._emit = emit
        self._clock = clock
        self._executor = executor
        self._beat = beat
        self.relocate_after_s = relocate_after_s
        self._persist = persist
        self.status: dict[str, LoggerStatus] = {
            name: LoggerStatus(name, state=analysis.state(name)) for name in scheduler.loggers
        }
        self._located_at: dict[tuple[str, ...], float] = {}
        self._wake = asyncio.Event()
        self.jobs_run = 0

    def carry_over(self, previous: LeakPipeline, same_loggers: Collection[str]) -> None:
        """A config reload: continue from ``previous`` (the pipeline of the config before,
        stopped) for ``same_loggers``, the loggers recorded and placed as before: their
        trackers (nights, baseline, persistence count), what ``status`` shows of them, when a
        pair of them was last located. Other loggers start fresh. The schedule goes on where
        it stood, so a reload records nothing extra. Call before ``run``."""
        keep = set(same_loggers) & set(self.status) & set(previous.status)
        if keep:
            self.analysis.restore(previous.analysis.to_json(), only=keep)
        for name in keep:
            old = previous.status[name]
            self.status[name] = replace(old, state=self.analysis.state(name))
        self._located_at = {
            pair: at for pair, at in previous._located_at.items() if set(pair) <= keep
        }
        self.scheduler.continue_from(previous.scheduler)

    def request(self, device: str) -> None:
        """A recording of ``device`` as soon as possible (on demand). Raises KeyError."""
        self.scheduler.request(device, self._clock.time())
        self._wake.set()

    def request_all(self) -> None:
        """A synchronised recording of every logger as soon as possible (on demand)."""
        self.scheduler.request_all(self._clock.time())
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._beat()
            for job in self.scheduler.due(self._clock.time()):
                if stop.is_set():
                    return
                await self.run_job(job)
                self._beat()
            wait_s = min(
                self.scheduler.next_due_at(self._clock.time()) - self._clock.time(), MAX_IDLE_S
            )
            if wait_s > 0:
                await self._sleep_or_wake(wait_s, stop)

    async def _sleep_or_wake(self, sim_s: float, stop: asyncio.Event) -> None:
        self._wake.clear()
        sleeper = asyncio.ensure_future(self._clock.sleep(sim_s))
        waiters = {
            sleeper,
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(stop.wait()),
        }
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def run_job(self, job: RecordingJob) -> None:
        """Record, score, track; correlate for a pair job; ask for pairs that now qualify."""
        self.jobs_run += 1
        results = await self.recorder.record(job.devices, synchronised=job.synchronised)
        loop = asyncio.get_running_loop()
        recordings: dict[str, Recording] = {}
        drafts: list[EventDraft] = []
        for device in job.devices:
            got = results.get(device, "no recording returned")
            if isinstance(got, str):
                self.status[device] = replace(self.status[device], last_error=got)
                log.warning("recording failed", device=device, error=got)
                continue
            recordings[device] = got
        # One call for the whole job: every logger's features, then each against the others.
        scores = await loop.run_in_executor(self._executor, self.analysis.score_job, recordings)
        for device, error in scores.refused.items():  # too short, not finite
            self.status[device] = replace(self.status[device], last_error=f"cannot score: {error}")
            log.warning("recording not scored", device=device, error=error)
        for device, feats in scores.features.items():
            status = self.status[device]
            score, new_drafts = self.analysis.track(device, feats, job, scores.groups.get(device))
            drafts.extend(new_drafts)
            self.status[device] = LoggerStatus(
                device,
                score=score,
                state=self.analysis.state(device),
                recorded_at=recordings[device].started_at,
                recordings=status.recordings + 1,
            )
        self.scheduler.recorded(job, recordings)
        failed = [d for d in job.devices if d not in recordings]
        log.info(  # one line a job: what ran when, and why (a night slot, a request, ...)
            "recording job done",
            reason=job.reason,
            night=job.night,
            attempt=job.attempt,
            recorded=len(recordings),
            failed=len(failed),
        )
        if failed and job.reason != "pair":  # pairs are re-asked by _request_pairs' spacing
            again = self.scheduler.retry(job, failed, self._clock.time())
            if again is not None:
                log.info(
                    "recording retry scheduled",
                    devices=",".join(again.devices),
                    attempt=again.attempt,
                    in_s=round(again.due_at - self._clock.time(), 1),
                )
        if job.reason == "pair" and len(job.devices) == 2:
            drafts.extend(await self._locate(job, recordings))
        elif job.synchronised:
            drafts.extend(await self._locate_many(recordings))
        if drafts:
            await self._emit(drafts)
        if recordings and self._persist is not None:
            await self._persist()
        self._request_pairs()

    def _request_pairs(self) -> None:
        if self.locator is None:
            return
        now = self._clock.time()
        for pair in self.pairs:
            if not all(self.status[d].state in SUSPECTING_STATES for d in pair if d in self.status):
                continue
            if any(d not in self.status for d in pair):
                continue
            last = self._located_at.get(pair)
            if last is not None and now - last < self.relocate_after_s:
                continue
            # Mark now so a failing pair is retried after the same spacing, not every turn.
            self._located_at[pair] = now
            self.scheduler.request_pair(pair[0], pair[1], now)
            self._wake.set()

    async def _locate_many(self, recordings: dict[str, Recording]) -> list[EventDraft]:
        """Three or more suspecting loggers in one synchronised job: one solution for all."""
        suspects = tuple(sorted(d for d in recordings if self.status[d].state in SUSPECTING_STATES))
        if self.locator is None or len(suspects) < MIN_LOGGERS_TO_SOLVE:
            return []
        now = self._clock.time()
        last = self._located_at.get(suspects)
        if last is not None and now - last < self.relocate_after_s:
            return []
        self._located_at[suspects] = now
        loop = asyncio.get_running_loop()
        try:
            where = await loop.run_in_executor(
                self._executor, self.locator.locate_many, [recordings[d] for d in suspects]
            )
        except ValueError as exc:
            log.warning("multi-logger location failed", loggers=",".join(suspects), error=str(exc))
            return []
        if where is None:
            log.info("loggers correlated, no common source located", loggers=",".join(suspects))
            return []
        ts = max(recordings[d].started_at for d in suspects)
        data = {
            "pipe": where.pipe,
            "offset_m": round(where.offset_m, 1),
            "from_logger": where.a,
            "distance_m": round(where.distance_m, 1),
            "pair": None,
            "spacing_m": None,
            "tdoa_ms": None,
            "confidence": round(where.confidence, 3),
            **where.data,
        }
        return [EventDraft.of(where.a, "leak.located", ts, **data)]

    async def _locate(
        self, job: RecordingJob, recordings: dict[str, Recording]
    ) -> list[EventDraft]:
        a, b = job.devices
        if a not in recordings or b not in recordings or self.locator is None:
            return []
        loop = asyncio.get_running_loop()
        try:
            where = await loop.run_in_executor(
                self._executor, self.locator.locate, recordings[a], recordings[b]
            )
        except ValueError as exc:
            log.warning("correlation failed", device=a, pair=f"{a}/{b}", error=str(exc))
            return []
        if where is None:
            log.info("pair correlated, source not between them", device=a, pair=f"{a}/{b}")
            return []
        ts = max(recordings[a].started_at, recordings[b].started_at)
        data = {
            "pipe": where.pipe,
            "offset_m": round(where.offset_m, 1),
            "from_logger": where.a,
            "distance_m": round(where.distance_m, 1),
            "pair": [where.a, where.b],
            "spacing_m": round(where.spacing_m, 1),
            "tdoa_ms": round(where.tdoa_ms, 3),
            "confidence": round(where.confidence, 3),
            **where.data,
        }
        return [EventDraft.of(where.a, "leak.located", ts, **data)]
