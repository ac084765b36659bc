"""One analysis job, start to finish, where the kernels are: in the analysis worker process.

``JobRunner.run(job)``: map each spooled recording, score them all together
(``LeakAnalysis.score_job``: each logger's features, then each against the others of the job:
the group comparison), feed each logger's tracker with its group comparison, correlate the
pairs the job asks for, locate with three or more loggers together when a synchronised job
leaves that many suspecting a leak (``Locator``), and return a ``JobResult`` of small values:
scores, states, the ``leak.*`` drafts and the trackers' new state. A recording dsp refuses
(too short, not finite) fails that logger, not the job.

The runner keeps nothing between jobs: each job builds its trackers from the state the daemon
sent (``LeakAnalysis.restore``), so a job retried after a worker crash counts nothing twice.
The worker process builds it with the daemon's real analysis (``TrackerAnalysis``, numba) and
locator (``SiteLocator``); tests hand in their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from drivers.model import Recording
from edge_agent.daemon.analysis_jobs import AnalysisJob, JobResult, LoggerResult
from edge_agent.daemon.schedule import RecordingJob
from edge_agent.daemon.spool import open_spooled
from edge_agent.events import EventDraft, JsonValue
from edge_agent.logs import get_logger

if TYPE_CHECKING:  # types only: this module is imported where numba is (the worker)
    from dsp.group import GroupComparison

__all__ = ["MIN_LOGGERS_TO_SOLVE", "JobRunner", "JobScores", "LeakAnalysis", "Location", "Locator"]

MIN_LOGGERS_TO_SOLVE = 3  # fewer: the pair correlator does it
SUSPECTING_STATES = frozenset({"suspected", "confirmed"})

log = get_logger("edge_agent.daemon.analysis")


@dataclass(frozen=True, slots=True)
class JobScores:
    """What one job's recordings give (``LeakAnalysis.score_job``): ``features`` per logger
    scored; ``groups`` each of them against the others of the job (``dsp.group``);
    ``refused`` the loggers whose recording dsp refused, with why."""

    features: Mapping[str, Any]
    groups: Mapping[str, GroupComparison]
    refused: Mapping[str, str]


class LeakAnalysis(Protocol):
    """A job's recordings scored together (pure) and one tracker per logger, restorable from
    the state the daemon keeps (``to_json`` / ``restore``: ``edge_agent.daemon.analysis``)."""

    def score_job(self, recordings: Mapping[str, Recording]) -> JobScores: ...

    def track(
        self, device: str, features: Any, job: RecordingJob, group: GroupComparison | None = None
    ) -> tuple[float, list[EventDraft]]: ...

    def state(self, device: str) -> str: ...

    def to_json(self) -> dict[str, Any]: ...

    def restore(self, data: Any) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Location:
    """Where a pair (or a group) put the leak: ``pipe`` and ``offset_m`` from that pipe's
    ``from`` node, ``distance_m`` along the path from logger ``a``."""

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
    """Correlates simultaneous recordings: ``locate`` two loggers, ``locate_many`` three or
    more (all pairs solved together). Both return None when the source is not between the
    loggers or the correlation is too weak; raise ValueError when they cannot be correlated
    (rates differ, no path between them)."""

    def locate(self, a: Recording, b: Recording) -> Location | None: ...

    def locate_many(self, recordings: Sequence[Recording]) -> Location | None: ...


class JobRunner:
    """Runs jobs with a fresh ``LeakAnalysis`` each (``make_analysis``) and an optional
    ``locator`` (None: no site file, pairs are not located)."""

    def __init__(
        self, make_analysis: Callable[[], LeakAnalysis], locator: Locator | None = None
    ) -> None:
        self.make_analysis = make_analysis
        self.locator = locator

    def run(self, job: AnalysisJob, progress: Callable[[str], None] = lambda d: None) -> JobResult:
        """The job's result; ``progress(device)`` after each recording. Raises what the
        analysis raises beyond ValueError (a bug; MemoryError): the job fails as a whole."""
        started = time.monotonic()
        analysis = self.make_analysis()
        for name, saved_state in job.trackers.items():
            try:
                analysis.restore({**analysis.to_json(), "trackers": {name: saved_state}})
            except ValueError as exc:  # a state file of another version, damaged on disk
                log.warning(
                    "leak tracker state not restored, starting fresh", device=name, error=str(exc)
                )
        loggers: list[LoggerResult] = []
        drafts: list[EventDraft] = []
        recordings: dict[str, Recording] = {}
        refused: dict[str, str] = {}
        for ref in job.recordings:
            try:
                recordings[ref.device] = open_spooled(ref)
            except ValueError as exc:  # a spool file that does not hold what it should
                refused[ref.device] = str(exc)
        scores = analysis.score_job(recordings)  # one call: features, then the group
        refused.update(scores.refused)
        for ref in job.recordings:
            device = ref.device
            if device in refused:
                why = refused[device]
                log.warning("recording not scored", device=device, error=why)
                loggers.append(
                    LoggerResult(device, None, analysis.state(device), f"cannot score: {why}")
                )
            else:
                feats = scores.features[device]
                score, new = analysis.track(device, feats, job.job, scores.groups.get(device))
                drafts.extend(new)
                loggers.append(LoggerResult(device, score, analysis.state(device)))
            progress(device)
        scored = {d: r for d, r in recordings.items() if d not in refused}
        for a, b in job.locate:
            drafts.extend(self._locate(scored, a, b))
        tried: tuple[tuple[str, ...], ...] = ()
        if job.locate_group:
            suspects = tuple(sorted(d for d in scored if analysis.state(d) in SUSPECTING_STATES))
            if len(suspects) >= MIN_LOGGERS_TO_SOLVE and suspects not in job.skip_groups:
                tried = (suspects,)
                drafts.extend(self._locate_many(scored, suspects))
                progress(suspects[0])
        saved = analysis.to_json().get("trackers", {})
        return JobResult(
            id=job.id,
            loggers=tuple(loggers),
            drafts=tuple(drafts),
            trackers={r.device: saved[r.device] for r in loggers if r.device in saved},
            analysis_s=time.monotonic() - started,
            groups_tried=tried,
        )

    def _locate(self, recordings: dict[str, Recording], a: str, b: str) -> Sequence[EventDraft]:
        if a not in recordings or b not in recordings or self.locator is None:
            return []
        try:
            where = self.locator.locate(recordings[a], recordings[b])
        except ValueError as exc:
            log.warning("correlation failed", device=a, pair=f"{a}/{b}", error=str(exc))
            return []
        if where is None:
            log.info("pair correlated, source not between them", device=a, pair=f"{a}/{b}")
            return []
        ts = max(recordings[a].started_at, recordings[b].started_at)
        pair: dict[str, JsonValue] = {
            "pair": [where.a, where.b],
            "spacing_m": round(where.spacing_m, 1),
            "tdoa_ms": round(where.tdoa_ms, 3),
        }
        return [_located(where, ts, pair)]

    def _locate_many(
        self, recordings: dict[str, Recording], group: tuple[str, ...]
    ) -> Sequence[EventDraft]:
        """Three or more suspecting loggers of one synchronised job: one solution for all."""
        if self.locator is None:
            return []
        loggers = ",".join(group)
        try:
            where = self.locator.locate_many([recordings[d] for d in group])
        except ValueError as exc:
            log.warning("multi-logger location failed", loggers=loggers, error=str(exc))
            return []
        if where is None:
            log.info("loggers correlated, no common source located", loggers=loggers)
            return []
        ts = max(recordings[d].started_at for d in group)
        return [_located(where, ts, {"pair": None, "spacing_m": None, "tdoa_ms": None})]


def _located(where: Location, ts: float, how: dict[str, JsonValue]) -> EventDraft:
    """The ``leak.located`` draft of a location: where, from which logger, how it was found."""
    data: dict[str, JsonValue] = {
        "pipe": where.pipe,
        "offset_m": round(where.offset_m, 1),
        "from_logger": where.a,
        "distance_m": round(where.distance_m, 1),
        **how,
        "confidence": round(where.confidence, 3),
        **where.data,
    }
    return EventDraft.of(where.a, "leak.located", ts, **data)
