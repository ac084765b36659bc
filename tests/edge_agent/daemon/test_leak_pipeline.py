"""The leak pipeline's order of things on an injected clock: jobs -> spooled recordings ->
analysis (the worker's ``JobRunner``, run in this process) -> tracker transitions -> a
synchronised pair -> leak.located (real correlator, synthetic recordings)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from drivers.model import Recording
from drivers.sim.clock import ManualClock
from dsp.synth import ambient, leak_at_loggers
from edge_agent.daemon.analysis_runner import JobRunner, JobScores
from edge_agent.daemon.leak import LeakPipeline
from edge_agent.daemon.locate import SiteLocator
from edge_agent.daemon.schedule import NightWindow, RecordingJob, RecordingScheduler
from edge_agent.daemon.spool import RecordingSpool
from edge_agent.daemon.worker import AnalysisFailed
from edge_agent.events import EventDraft
from sitemodel import load_site

SITE = Path(__file__).resolve().parents[3] / "seeds" / "site.yaml"
FS = 4096.0
LOGGERS = ("nl-01", "nl-02", "nl-03")
LEAK_OFFSET = 75.0  # on P-02; nl-02 at 12 m, nl-03 at 168 m


class SynthRecorder:
    """Stands in for the bus: nl-02/nl-03 hear the leak, nl-01 hears ambient (or, with
    ``hear_all``, a loud leak reaching nl-01 230 m away too); 'broken' fails."""

    def __init__(self, clock, broken=(), hear_all=False):
        self.clock = clock
        self.broken = set(broken)
        self.hear_all = hear_all
        self.calls: list[tuple[tuple[str, ...], bool]] = []

    async def record(self, devices, *, synchronised):
        self.calls.append((devices, synchronised))
        seed = len(self.calls)
        a, b, c = leak_at_loggers(
            FS,
            4.0,
            material="ductile_iron",
            seed=seed,
            distances_m=(LEAK_OFFSET - 12, 168 - LEAK_OFFSET, 155 + LEAK_OFFSET),
            diameter_mm=300,
            wall_mm=7.2,
            level_db=40.0 if self.hear_all else 20.0,
        )
        heard = {"nl-02": a, "nl-03": b}
        if self.hear_all:
            heard["nl-01"] = c * 30.0
        out = {}
        t0 = self.clock.time()
        for i, dev in enumerate(devices):
            if dev in self.broken:
                out[dev] = "no answer from unit 3"
                continue
            noise = ambient(FS, 4.0, seed=seed * 10 + i, level_db=-6.0)
            out[dev] = Recording.from_samples(dev, FS, heard.get(dev, 0.0) + noise, t0)
        return out


class RmsAnalysis:
    """Score = loud or not; suspected on the first positive, confirmed on the second night.
    Its state goes to and comes from the daemon like the real trackers' (``to_json``)."""

    def __init__(self):
        self.states: dict[str, str] = {}
        self.positives: dict[str, set[str]] = {}

    def state(self, device):
        return self.states.get(device, "normal")

    def score_job(self, recordings):
        features = {n: float(np.sqrt(np.mean(r.samples**2)) > 1.0) for n, r in recordings.items()}
        return JobScores(features, groups={}, refused={})

    def track(self, device, scored, job: RecordingJob, group=None):
        if not scored or job.night is None:
            return scored, []
        nights = self.positives.setdefault(device, set())
        nights.add(job.night)
        before = self.state(device)
        after = "confirmed" if len(nights) >= 2 else "suspected"
        self.states[device] = after
        if before == after:
            return scored, []
        return scored, [EventDraft.of(device, f"leak.{after}", job.due_at, score=scored)]

    def to_json(self):
        trackers = {
            d: {"state": self.state(d), "nights": sorted(self.positives.get(d, ()))}
            for d in set(self.states) | set(self.positives)
        }
        return {"version": 1, "trackers": trackers}

    def restore(self, data):
        for d, saved in data["trackers"].items():
            self.states[d] = saved["state"]
            self.positives[d] = set(saved["nights"])
        return list(data["trackers"])


class InProcessAnalyser:
    """The worker's job runner, in this process; ``fail`` makes every job be given up."""

    def __init__(self, runner):
        self.runner = runner
        self.jobs = []
        self.fail = False

    async def analyse(self, job, beat):
        self.jobs.append(job)
        beat()
        if self.fail:
            raise AnalysisFailed("crashed: killed by SIGKILL")
        return self.runner.run(job)


async def _drive(pipeline, clock, steps):
    for _ in range(steps):
        for job in pipeline.scheduler.due(clock.time()):
            await pipeline.run_job(job)
        clock.advance(3600)


@pytest.fixture
def setup(tmp_path):
    clock = ManualClock(epoch_start=1_767_225_600.0 + 1.5 * 3600)  # 01:30 UTC
    scheduler = RecordingScheduler(
        LOGGERS, window=NightWindow(120, 240), interval_s=3600, utc_offset_s=lambda ts: 0.0
    )
    emitted: list[EventDraft] = []

    async def emit(drafts):
        emitted.extend(drafts)

    recorder = SynthRecorder(clock)
    pipeline = LeakPipeline(
        scheduler=scheduler,
        recorder=recorder,
        analyser=InProcessAnalyser(JobRunner(RmsAnalysis, SiteLocator(load_site(SITE)))),
        spool=RecordingSpool(tmp_path / "spool"),
        pairs=[("nl-03", "nl-02"), ("nl-01", "nl-02")],
        emit=emit,
        clock=clock,
    )
    return pipeline, clock, recorder, emitted


def test_suspected_confirmed_located_once(setup):
    """Two nights: suspected, a pair recording located on P-02, then confirmed; no re-locate."""
    pipeline, clock, recorder, emitted = setup
    pipeline.relocate_after_s = 3 * 86400
    asyncio.run(_drive(pipeline, clock, 30))
    kinds = [(d.dev, d.kind) for d in emitted]
    assert ("nl-02", "leak.suspected") in kinds and ("nl-03", "leak.suspected") in kinds
    assert ("nl-02", "leak.confirmed") in kinds and ("nl-03", "leak.confirmed") in kinds
    assert ("nl-01", "leak.suspected") not in kinds
    located = [d for d in emitted if d.kind == "leak.located"]
    assert len(located) == 1, kinds
    data = located[0].data
    assert data["pipe"] == "P-02" and data["offset_m"] == pytest.approx(LEAK_OFFSET, abs=2.0)
    assert data["pair"] == ["nl-02", "nl-03"] and located[0].dev == "nl-02"
    pair_calls = [c for c in recorder.calls if c[0] == ("nl-02", "nl-03")]
    assert pair_calls == [(("nl-02", "nl-03"), True)]
    assert pipeline.status["nl-02"].state == "confirmed"
    assert pipeline.status["nl-01"].recordings >= 4


def test_relocates_after_the_spacing(setup):
    """A located pair is correlated again once relocate_after_s has passed."""
    pipeline, clock, _, emitted = setup
    pipeline.relocate_after_s = 12 * 3600
    asyncio.run(_drive(pipeline, clock, 30))
    assert len([d for d in emitted if d.kind == "leak.located"]) >= 2


def test_a_failed_recording_is_reported_not_fatal(setup):
    pipeline, clock, recorder, _ = setup
    recorder.broken.add("nl-03")
    asyncio.run(_drive(pipeline, clock, 3))
    assert pipeline.status["nl-03"].last_error == "no answer from unit 3"
    assert pipeline.status["nl-03"].recordings == 0
    assert pipeline.status["nl-02"].recordings > 0


def test_run_loop_stops_promptly(setup):
    """run() returns once stop is set, even while waiting for the next slot."""
    pipeline = setup[0]

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(pipeline.run(stop))
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(main())


def test_a_failed_recording_is_retried_within_the_slot(setup):
    """A logger that misses its night recording (busy bus) is asked again a minute later,
    and its recording counts for that night."""
    pipeline, clock, recorder, _ = setup
    clock.advance(1800)  # 02:00, the first night slot
    recorder.broken.add("nl-03")
    (job,) = pipeline.scheduler.due(clock.time())
    asyncio.run(pipeline.run_job(job))
    assert pipeline.status["nl-03"].recordings == 0
    recorder.broken.clear()
    clock.advance(60)
    (retry,) = pipeline.scheduler.due(clock.time())
    assert retry.devices == ("nl-03",) and retry.night == job.night and retry.attempt == 1
    asyncio.run(pipeline.run_job(retry))
    assert pipeline.status["nl-03"].recordings == 1
    assert pipeline.status["nl-03"].last_error is None


def test_trackers_are_persisted_after_each_job_that_scored_and_only_then(setup):
    """``persist`` is awaited once per job with at least one scored recording (the daemon
    writes the tracker file on its outbox thread); a job where every recording failed has
    nothing new to save."""
    pipeline, clock, recorder, _ = setup
    saved_after: list[int] = []

    async def persist(document):
        await asyncio.sleep(0)  # a real await: the daemon's hop to the outbox thread
        assert document["version"] == 1 and set(document["trackers"]) <= set(LOGGERS)
        saved_after.append(pipeline.jobs_run)

    pipeline._persist = persist
    recorder.broken.update(LOGGERS)
    asyncio.run(_drive(pipeline, clock, 3))
    failed_jobs = pipeline.jobs_run
    assert failed_jobs > 0 and saved_after == []
    recorder.broken.clear()
    asyncio.run(_drive(pipeline, clock, 3))
    assert pipeline.jobs_run > failed_jobs
    assert saved_after == list(range(failed_jobs + 1, pipeline.jobs_run + 1))


def test_a_reload_continues_trackers_status_and_schedule_of_unchanged_loggers(tmp_path):
    """The pipeline a reload builds takes over from the running one, through
    ``carry_over``: the trackers' saved state of the loggers left as they were (a positive
    night is not forgotten: it goes with their next job), their status, and the schedule
    (the slot already recorded is not recorded again); a changed logger starts fresh."""
    clock = ManualClock(epoch_start=1_767_225_600.0 + 2.5 * 3600)  # 02:30 UTC: in the window

    async def emit(drafts):
        pass

    def pipeline() -> LeakPipeline:
        return LeakPipeline(
            scheduler=RecordingScheduler(
                LOGGERS, window=NightWindow(120, 240), interval_s=3600, utc_offset_s=lambda t: 0.0
            ),
            recorder=SynthRecorder(clock),
            analyser=InProcessAnalyser(JobRunner(RmsAnalysis)),
            spool=RecordingSpool(tmp_path / "spool"),
            pairs=[],
            emit=emit,
            clock=clock,
        )

    running = pipeline()

    async def night_slot(p: LeakPipeline) -> int:
        jobs = p.scheduler.due(clock.time())
        for job in jobs:
            await p.run_job(job)
        return len(jobs)

    assert asyncio.run(night_slot(running)) == 1
    heard = {n: running.state(n) for n in LOGGERS}
    assert heard["nl-02"] != "normal" and heard["nl-03"] != "normal"
    reloaded = pipeline()
    reloaded.carry_over(running, {"nl-01", "nl-02"})  # nl-03 moved: fresh
    assert reloaded.state("nl-02") == heard["nl-02"]
    assert reloaded.trackers["nl-02"] == running.trackers["nl-02"]
    assert reloaded.state("nl-03") == "normal" and "nl-03" not in reloaded.trackers
    assert reloaded.status["nl-02"].recordings == 1 and reloaded.status["nl-03"].recordings == 0
    assert reloaded.status["nl-02"].state == heard["nl-02"]
    assert asyncio.run(night_slot(reloaded)) == 0  # this slot is recorded already
    assert asyncio.run(night_slot(pipeline())) == 1  # (a fresh schedule would record again)


def test_the_trackers_state_goes_with_each_job_and_comes_back(setup):
    """The worker keeps nothing: each job carries its loggers' saved state, and the state
    the job returns is what the pipeline keeps (and persists)."""
    pipeline, clock, _, _ = setup
    asyncio.run(_drive(pipeline, clock, 30))
    jobs = pipeline.analyser.jobs
    assert jobs[0].trackers == {}  # nothing saved yet
    later = [j for j in jobs if "nl-02" in j.trackers]
    assert later and later[-1].trackers["nl-02"]["state"] in ("suspected", "confirmed")
    assert (
        pipeline.state("nl-02")
        == "confirmed"
        == pipeline.tracker_document()["trackers"]["nl-02"]["state"]
    )


def test_spooled_files_are_removed_after_each_job(setup, tmp_path):
    pipeline, clock, _, _ = setup
    asyncio.run(_drive(pipeline, clock, 4))
    assert pipeline.analyser.jobs and not list((tmp_path / "spool").glob("*"))


def test_an_analysis_given_up_is_shown_per_logger_and_the_next_job_goes_on(setup, tmp_path):
    """The worker failed every attempt: nothing is emitted or persisted for that job, each
    logger shows why, its spool files are gone, and the next job is analysed as usual."""
    pipeline, clock, _, emitted = setup
    saved = []

    async def persist(document):
        saved.append(document)

    pipeline._persist = persist
    clock.advance(1800)  # 02:00, the first night slot
    pipeline.analyser.fail = True
    (job,) = pipeline.scheduler.due(clock.time())
    asyncio.run(pipeline.run_job(job))
    assert emitted == [] and saved == []
    assert pipeline.status["nl-02"].last_error == "analysis failed: crashed: killed by SIGKILL"
    assert pipeline.status["nl-02"].recordings == 0
    assert not list((tmp_path / "spool").glob("*"))
    pipeline.analyser.fail = False
    clock.advance(3600)
    (job,) = pipeline.scheduler.due(clock.time())
    asyncio.run(pipeline.run_job(job))
    assert pipeline.status["nl-02"].recordings == 1 and pipeline.status["nl-02"].last_error is None
    assert [d.kind for d in emitted if d.dev == "nl-02"] == ["leak.suspected"]


def test_three_suspecting_loggers_are_located_together(setup):
    """All three loggers hear the leak and suspect it: a synchronised night job is solved for
    all pairs at once on the pipe graph (one leak.located, method multi)."""
    pipeline, clock, recorder, emitted = setup
    recorder.hear_all = True
    pipeline.pairs = ()  # no pair jobs: only the night's synchronised recordings
    pipeline.relocate_after_s = 10 * 86400
    asyncio.run(_drive(pipeline, clock, 30))
    located = [d for d in emitted if d.kind == "leak.located"]
    assert len(located) == 1, [d.kind for d in emitted]
    data = located[0].data
    assert data["method"] == "multi" and data["loggers"] == ["nl-01", "nl-02", "nl-03"]
    assert data["pipe"] == "P-02" and data["offset_m"] == pytest.approx(LEAK_OFFSET, abs=2.0)
    assert data["consistent"] is True and data["residual_ms"] < 0.5
    assert located[0].dev == "nl-02"  # the logger nearest the leak
