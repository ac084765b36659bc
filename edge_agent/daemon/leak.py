"""The leak pipeline: scheduled recordings -> the analysis worker -> ``leak.*`` events, and
synchronised pairs -> correlation -> ``leak.located``.

The pipeline owns the order of things, not the maths, and never loads numba: ``Recorder``
gets recordings off the bus (an exclusive slot on the bus runner, one broadcast start for a
synchronised job), the spool (``edge_agent.daemon.spool``) puts their counts in files, and an
``Analyser`` (``edge_agent.daemon.worker.AnalysisWorker``: a worker process that exists only
while there is sound to analyse) scores them, feeds each logger's tracker and correlates the
pairs, all loggers of a job together, and answers with small values (``JobResult``). The
pipeline keeps each tracker's state (``trackers``, the JSON of ``leak-trackers.json``), sends
it with every job and stores what comes back, so a worker holds nothing between jobs.

The loggers of one job are analysed together: each is compared with the others (the group
comparison of ``dsp.group``) before its tracker sees it. When both loggers of a neighbouring
pair suspect a leak, the pipeline asks the scheduler for a synchronised pair recording and
has it correlated; when three or more loggers that recorded in one synchronised job (a
night's broadcast start) suspect a leak after it, the worker solves all their pairs' delays
together on the pipe graph (``Locator.locate_many``). A pair or group located once is not
re-located for ``relocate_after_s`` (the leak does not move; the recordings cost bus time and
battery).
After every job that scored something, ``persist`` saves the trackers. A job whose analysis
failed even after the worker's retries is logged and shown per logger (``last_error``); the
next job starts afresh.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from typing import Protocol

from drivers.model import Recording
from edge_agent.clock import Clock
from edge_agent.component_status import LoggerStatus
from edge_agent.daemon.analysis_jobs import TRACKER_STATE_VERSION, AnalysisJob, JobResult
from edge_agent.daemon.schedule import RecordingJob, RecordingScheduler
from edge_agent.daemon.spool import RecordingSpool
from edge_agent.daemon.worker import AnalysisFailed
from edge_agent.events import EventDraft, JsonValue
from edge_agent.logs import get_logger

__all__ = [
    "DEFAULT_RELOCATE_AFTER_S",
    "Analyser",
    "LeakPipeline",
    "LoggerStatus",
    "Recorder",
]

DEFAULT_RELOCATE_AFTER_S = 86400.0
SUSPECTING_STATES = frozenset({"suspected", "confirmed"})
# A job that finds nothing to do waits at most this long (leak-clock seconds are converted by
# the clock's own sleep) before looking at the schedule again.
MAX_IDLE_S = 60.0

log = get_logger("edge_agent.daemon.leak")


class Recorder(Protocol):
    """Gets recordings off the bus. Returns a recording or an error text per device."""

    async def record(
        self, devices: tuple[str, ...], *, synchronised: bool
    ) -> dict[str, Recording | str]: ...


class Analyser(Protocol):
    """Runs an analysis job (``AnalysisWorker``), calling ``beat()`` while it makes progress.
    Raises ``AnalysisFailed`` when the job is given up."""

    async def analyse(self, job: AnalysisJob, beat: Callable[[], None]) -> JobResult: ...


class LeakPipeline:
    """Runs the schedule until ``stop`` is set. ``emit`` stores drafts durably (the outbox);
    ``beat`` tells the watchdog the pipeline is alive (once per loop turn, and while the
    analysis is supervised); ``io`` runs the spool's file work (the outbox thread)."""

    def __init__(
        self,
        *,
        scheduler: RecordingScheduler,
        recorder: Recorder,
        analyser: Analyser,
        spool: RecordingSpool,
        pairs: Sequence[tuple[str, str]],
        emit: Callable[[list[EventDraft]], Awaitable[None]],
        clock: Clock,
        io: Executor | None = None,
        trackers: Mapping[str, JsonValue] | None = None,
        beat: Callable[[], None] = lambda: None,
        relocate_after_s: float = DEFAULT_RELOCATE_AFTER_S,
        persist: Callable[[dict[str, JsonValue]], Awaitable[None]] | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.recorder = recorder
        self.analyser = analyser
        self.spool = spool
        self.pairs = tuple(tuple(sorted(p)) for p in pairs)
        self._emit = emit
        self._clock = clock
        self._io = io
        self._beat = beat
        self.relocate_after_s = relocate_after_s
        self._persist = persist
        # Each logger's saved tracker state (dsp.tracker's to_dict): kept here, sent with
        # every job, replaced by what the job returns.
        self.trackers: dict[str, JsonValue] = {
            name: state for name, state in (trackers or {}).items() if name in scheduler.loggers
        }
        self.status: dict[str, LoggerStatus] = {
            name: LoggerStatus(name, state=self.state(name)) for name in scheduler.loggers
        }
        self._located_at: dict[tuple[str, ...], float] = {}
        self._wake = asyncio.Event()
        self._job_ids = itertools.count(1)
        self.jobs_run = 0

    def state(self, device: str) -> str:
        """A logger's leak state as its tracker last saved it (``normal`` before any)."""
        saved = self.trackers.get(device)
        state = saved.get("state") if isinstance(saved, dict) else None
        return state if isinstance(state, str) else "normal"

    def tracker_document(self) -> dict[str, JsonValue]:
        """What ``leak-trackers.json`` holds: every tracker's saved state."""
        return {"version": TRACKER_STATE_VERSION, "trackers": dict(self.trackers)}

    def carry_over(self, previous: LeakPipeline, same_loggers: Collection[str]) -> None:
        """A config reload: continue from ``previous`` (the pipeline of the config before,
        stopped) for ``same_loggers``, the loggers recorded and placed as before: their
        trackers' saved state (nights, baseline, persistence count), what ``status`` shows of
        them, when a pair of them was last located. Other loggers start fresh. The schedule
        goes on where it stood, so a reload records nothing extra. Call before ``run``."""
        keep = set(same_loggers) & set(self.status) & set(previous.status)
        for name in keep:
            if name in previous.trackers:
                self.trackers[name] = previous.trackers[name]
            self.status[name] = replace(previous.status[name], state=self.state(name))
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
        """Record, analyse (score, track; correlate a pair job), emit; ask for pairs that now
        qualify."""
        self.jobs_run += 1
        results = await self.recorder.record(job.devices, synchronised=job.synchronised)
        recordings: dict[str, Recording] = {}
        for device in job.devices:
            got = results.get(device, "no recording returned")
            if isinstance(got, str):
                self.status[device] = replace(self.status[device], last_error=got)
                log.warning("recording failed", device=device, error=got)
            else:
                recordings[device] = got
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
        if recordings:
            result = await self._analyse(job, recordings)
            if result is not None:
                if result.drafts:
                    await self._emit(list(result.drafts))
                if self._persist is not None:
                    await self._persist(self.tracker_document())
        self._request_pairs()

    async def _analyse(
        self, job: RecordingJob, recordings: dict[str, Recording]
    ) -> JobResult | None:
        """Spool the recordings, have them analysed, apply the result to status and trackers.
        None when the analysis was given up (logged by the worker, shown per logger)."""
        loop = asyncio.get_running_loop()
        job_id = next(self._job_ids)
        try:
            refs = await loop.run_in_executor(
                self._io, self.spool.write, job_id, list(recordings.values())
            )
        except OSError as exc:
            self._fail(recordings, f"cannot spool the recording for analysis: {exc}")
            log.error("recordings not analysed: spool not writable", error=str(exc))
            return None
        pair = job.reason == "pair"
        locate = (tuple(sorted(recordings)),) if pair and len(recordings) == 2 else ()
        now = self._clock.time()
        request = AnalysisJob(
            job_id,
            job,
            refs,
            {d: self.trackers[d] for d in recordings if d in self.trackers},
            locate=locate,  # type: ignore[arg-type]
            locate_group=job.synchronised and not pair,
            skip_groups=tuple(
                g for g, at in self._located_at.items() if now - at < self.relocate_after_s
            ),
        )
        try:
            result = await self.analyser.analyse(request, self._beat)
        except AnalysisFailed as exc:
            self._fail(recordings, f"analysis failed: {exc}")
            return None
        finally:
            await loop.run_in_executor(self._io, self.spool.remove, refs)
        self.trackers.update(result.trackers)
        for group in result.groups_tried:  # located or not: not again within the spacing
            self._located_at[group] = now
        for logger in result.loggers:
            rec = recordings[logger.device]
            before = self.status[logger.device]
            if logger.score is None:
                self.status[logger.device] = replace(before, last_error=logger.error)
                continue
            self.status[logger.device] = LoggerStatus(
                logger.device,
                score=logger.score,
                state=logger.state,
                recorded_at=rec.started_at,
                recordings=before.recordings + 1,
            )
        return result

    def _fail(self, recordings: Mapping[str, Recording], error: str) -> None:
        for device in recordings:
            self.status[device] = replace(self.status[device], last_error=error)

    def _request_pairs(self) -> None:
        now = self._clock.time()
        for pair in self.pairs:
            if any(d not in self.status for d in pair):
                continue
            if not all(self.status[d].state in SUSPECTING_STATES for d in pair):
                continue
            last = self._located_at.get(pair)
            if last is not None and now - last < self.relocate_after_s:
                continue
            # Mark now so a failing pair is retried after the same spacing, not every turn.
            self._located_at[pair] = now
            self.scheduler.request_pair(pair[0], pair[1], now)
            self._wake.set()
