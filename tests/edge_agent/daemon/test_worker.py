"""The analysis worker as real processes: a job end to end, the numba cache kept warm across
worker lives, the idle exit, and the failures that must stay the job's (a worker killed with
SIGKILL, a hung one, one over its memory limit, one that cannot start): each is logged and
retried by a fresh worker, and the supervision keeps beating for the watchdog meanwhile."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from drivers.model import Recording
from dsp.synth import ambient, leak_at_loggers
from edge_agent.config.model import LeakDetectionConfig
from edge_agent.daemon.analysis_jobs import AnalysisJob, AnalysisSetup, SpooledRecording
from edge_agent.daemon.schedule import RecordingJob
from edge_agent.daemon.spool import RecordingSpool
from edge_agent.daemon.worker import AnalysisFailed, AnalysisWorker, WorkerSettings
from sitemodel import load_site

pytestmark = pytest.mark.slow

SITE = Path(__file__).resolve().parents[3] / "seeds" / "site.yaml"
FS = 4096.0
PAIR = ("nl-02", "nl-03")  # on P-02 at 12 m and 168 m; the leak at 75 m
NIGHT = time.mktime((2026, 1, 5, 2, 30, 0, 0, 0, -1))  # inside the default 02:00-04:00 window
QUICK = {"retry_delays_s": (0.0,), "beat_interval_s": 0.5, "log_format": "json"}


def _setup() -> AnalysisSetup:
    return AnalysisSetup(
        LeakDetectionConfig(),
        {name: ("ductile_iron", "P-02") for name in PAIR},
        0.0,
        load_site(SITE),
        time.time(),
    )


def _pair_job(spool: RecordingSpool, job_id: int = 1) -> AnalysisJob:
    a, b = leak_at_loggers(
        FS, 4.0, material="ductile_iron", seed=3, distances_m=(63.0, 93.0),
        diameter_mm=300, wall_mm=7.2, level_db=20.0,
    )  # fmt: skip
    recs = [
        Recording.from_samples(name, FS, x + ambient(FS, 4.0, seed=i, level_db=-6.0), NIGHT)
        for i, (name, x) in enumerate(zip(PAIR, (a, b), strict=True))
    ]
    job = RecordingJob(PAIR, "pair", NIGHT, night="2026-01-05", synchronised=True)
    return AnalysisJob(job_id, job, spool.write(job_id, recs), locate=(PAIR,))


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 300))


def test_a_pair_job_is_scored_and_located_and_the_worker_exits_when_idle(tmp_path):
    spool = RecordingSpool(tmp_path / "spool")
    beats: list[float] = []

    async def scenario():
        worker = AnalysisWorker(_setup(), WorkerSettings(idle_exit_s=1.0, **QUICK))
        result = await worker.analyse(_pair_job(spool), lambda: beats.append(time.monotonic()))
        first_pid = worker.ready.pid
        assert worker.pid == first_pid
        await asyncio.sleep(3.0)  # past idle_exit_s: the daemon closed it
        assert worker.pid is None
        with pytest.raises(ProcessLookupError):
            os.kill(first_pid, 0)
        again = await worker.analyse(_pair_job(spool, 2), lambda: None)
        second = worker.ready
        await worker.close()
        return result, again, first_pid, second, worker.stats()

    result, again, first_pid, second, stats = _run(scenario())
    assert [r.device for r in result.loggers] == list(PAIR)
    assert all(r.score is not None and r.error is None for r in result.loggers)
    (located,) = [d for d in result.drafts if d.kind == "leak.located"]
    assert located.data["pipe"] == "P-02" and located.data["offset_m"] == pytest.approx(75, abs=2)
    assert set(result.trackers) == set(PAIR)
    assert result.trackers["nl-02"]["state"] == "warning"  # one loud night recording
    assert again.trackers == result.trackers  # same job, fresh trackers: same outcome
    # A new process, and its kernels came from the cache the first one used.
    assert second.pid != first_pid and second.cache_misses == 0
    assert second.cache_dir == os.environ["NUMBA_CACHE_DIR"]
    assert stats.starts == 2 and stats.jobs == 2 and stats.failures == 0 and not stats.running
    assert beats, "the supervision beats while the worker loads and works"


def _failing_then_good(tmp_path, on_start, **settings):
    spool = RecordingSpool(tmp_path / "spool")
    beats: list[float] = []

    async def scenario():
        worker = AnalysisWorker(
            _setup(), WorkerSettings(**{**QUICK, **settings}), on_start=on_start
        )
        result = await worker.analyse(_pair_job(spool), lambda: beats.append(time.monotonic()))
        await worker.close()
        return result, worker.stats()

    result, stats = _run(scenario())
    # The retried job counted each logger's recording once (the worker keeps no state).
    assert sorted((d.kind, d.dev) for d in result.drafts) == [
        ("leak.located", "nl-02"), ("leak.warning", "nl-02"), ("leak.warning", "nl-03")
    ]  # fmt: skip
    assert stats.starts == 2 and stats.failures == 1 and stats.jobs == 1 and stats.given_up == 0
    return stats, beats


def test_a_worker_killed_with_sigkill_is_a_retried_job(tmp_path):
    killed: list[int] = []

    def kill_first(pid: int) -> None:
        if not killed:
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)

    stats, _ = _failing_then_good(tmp_path, kill_first)
    assert killed and "killed by SIGKILL" in stats.last_error


def test_a_hung_worker_is_killed_and_the_job_retried_while_the_beats_go_on(tmp_path):
    stopped: list[int] = []

    def hang_first(pid: int) -> None:
        if not stopped:
            stopped.append(pid)
            os.kill(pid, signal.SIGSTOP)  # alive, silent: as hung as a process gets

    stats, beats = _failing_then_good(tmp_path, hang_first, timeout_s=3.0)
    assert stats.last_error == "hung: no answer for 3 s waiting for a job"
    with pytest.raises(ProcessLookupError):
        os.kill(stopped[0], 0)  # killed, not left stopped
    gaps = np.diff(beats)
    assert gaps.max() < 2.0, "the supervision beat at least every beat_interval_s"


def test_a_job_over_the_memory_limit_fails_as_out_of_memory_then_the_next_one_runs(tmp_path):
    """A 90-minute recording at 44.1 kHz needs 1.9 GB as float64: the worker's data limit
    stops it; every attempt is logged, the job is given up, and a fresh worker takes the
    next job."""
    spool = RecordingSpool(tmp_path / "spool")
    huge = tmp_path / "huge.i16"
    count = 44100 * 90 * 60
    with open(huge, "wb") as f:
        f.truncate(2 * count)  # sparse: costs no disk
    big = AnalysisJob(
        7,
        RecordingJob(("nl-02",), "demand", 100.0),
        (SpooledRecording("nl-02", 44100.0, 1.0, 100.0, str(huge), count),),
    )

    async def scenario():
        worker = AnalysisWorker(_setup(), WorkerSettings(memory_mb=400, retries=1, **QUICK))
        with pytest.raises(AnalysisFailed) as failed:
            await worker.analyse(big, lambda: None)
        good = await worker.analyse(_pair_job(spool), lambda: None)
        await worker.close()
        return str(failed.value), good, worker.stats()

    error, good, stats = _run(scenario())
    assert error == "the job failed in the worker: out of memory (limit 400 MB)"
    assert stats.failures == 2 and stats.given_up == 1 and stats.starts == 3
    assert "leak.located" in [d.kind for d in good.drafts]


def test_a_worker_that_cannot_start_fails_the_job_not_the_caller(tmp_path):
    spool = RecordingSpool(tmp_path / "spool")

    async def scenario():
        worker = AnalysisWorker(
            _setup(),
            WorkerSettings(retries=2, **QUICK),
            command=[sys.executable, "-c", "import sys; sys.exit(7)"],
        )
        with pytest.raises(AnalysisFailed, match="crashed: exited with code 7"):
            await worker.analyse(_pair_job(spool), lambda: None)
        return worker.stats()

    stats = _run(scenario())
    assert stats.starts == 3 and stats.failures == 3 and stats.given_up == 1
