"""The recording schedule on an injected clock: night slots, day cadence, on demand, pairs."""

from __future__ import annotations

import calendar
import time

import pytest

from edge_agent.daemon.schedule import NightWindow, RecordingJob, RecordingScheduler, ScheduleState

LOGGERS = ("nl-01", "nl-02", "nl-03")


def utc(text: str) -> float:
    """'2026-01-05 02:00' as epoch seconds (the tests run the schedule in UTC)."""
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M")))


def make(window=(120, 240), interval=3600.0, day=None) -> RecordingScheduler:
    return RecordingScheduler(
        LOGGERS,
        window=NightWindow(*window),
        interval_s=interval,
        day_interval_s=day,
        utc_offset_s=lambda ts: 0.0,
    )


@pytest.mark.parametrize(
    ("window", "clock", "inside"),
    [
        ((120, 240), "2026-01-05 01:59", False),
        ((120, 240), "2026-01-05 02:00", True),
        ((120, 240), "2026-01-05 03:59", True),
        ((120, 240), "2026-01-05 04:00", False),
        ((23 * 60, 60), "2026-01-05 23:30", True),
        ((23 * 60, 60), "2026-01-06 00:30", True),
        ((23 * 60, 60), "2026-01-06 01:00", False),
    ],
)
def test_night_window_membership(window, clock, inside):
    """Windows that cross midnight belong to the night they started in."""
    assert (NightWindow(*window).night_start(utc(clock)) is not None) is inside


def test_window_crossing_midnight_names_the_starting_night():
    sched = make(window=(23 * 60, 60))
    (job,) = sched.due(utc("2026-01-06 00:30"))
    assert job.reason == "night" and job.night == "2026-01-05"


def test_night_slots_once_each_aligned_to_the_window():
    """One job per slot for all loggers, synchronised; a slot is never handed out twice."""
    sched = make()
    (job,) = sched.due(utc("2026-01-05 02:00"))
    assert job.devices == LOGGERS and job.reason == "night" and job.synchronised
    assert job.night == "2026-01-05"
    assert sched.due(utc("2026-01-05 02:30")) == []
    assert sched.next_due_at(utc("2026-01-05 02:30")) == utc("2026-01-05 03:00")
    assert [j.reason for j in sched.due(utc("2026-01-05 03:01"))] == ["night"]
    # past the last slot the next thing is the end of the window
    assert sched.next_due_at(utc("2026-01-05 03:30")) == utc("2026-01-05 04:00")


def test_day_cadence_outside_the_window():
    """Outside the window loggers record every day_interval_s; nights are not counted."""
    sched = make(day=4 * 3600)
    (job,) = sched.due(utc("2026-01-05 10:00"))
    assert job.reason == "day" and job.night is None
    assert sched.due(utc("2026-01-05 13:59")) == []
    assert sched.next_due_at(utc("2026-01-05 12:00")) == utc("2026-01-05 14:00")
    assert [j.reason for j in sched.due(utc("2026-01-05 14:00"))] == ["day"]


def test_next_due_prefers_the_coming_night():
    sched = make(day=4 * 3600)
    sched.due(utc("2026-01-05 23:00"))
    assert sched.next_due_at(utc("2026-01-05 23:30")) == utc("2026-01-06 02:00")


def test_default_day_interval_is_four_night_intervals():
    assert make(interval=1800).day_interval_s == 7200


def test_demand_and_pairs_come_first_and_deduplicate():
    """Requests are handed out at the next due() call, once, before the schedule."""
    sched = make()
    now = utc("2026-01-05 02:00")
    sched.request("nl-02", now)
    sched.request("nl-02", now)
    sched.request_pair("nl-03", "nl-02", now)
    sched.request_pair("nl-02", "nl-03", now)
    assert sched.next_due_at(now) == now
    jobs = sched.due(now)
    assert [(j.reason, j.devices, j.synchronised) for j in jobs] == [
        ("demand", ("nl-02",), False),
        ("pair", ("nl-02", "nl-03"), True),
        ("night", LOGGERS, True),
    ]
    assert sched.due(now) == []


def test_unknown_logger_is_refused():
    with pytest.raises(KeyError, match="nl-99"):
        make().request("nl-99", 0.0)


@pytest.mark.parametrize(("start", "end"), [(120, 120), (-1, 30), (0, 1440)])
def test_bad_windows(start, end):
    with pytest.raises(ValueError):
        NightWindow(start, end)


def test_no_loggers_no_jobs():
    sched = RecordingScheduler((), window=NightWindow(120, 240), interval_s=3600)
    assert sched.due(utc("2026-01-05 02:00")) == []


def test_request_all_is_one_synchronised_job():
    sched = make()
    now = utc("2026-01-05 12:00")
    sched.request_all(now)
    sched.request_all(now)
    assert [(j.reason, j.devices, j.synchronised) for j in sched.due(now)][:1] == [
        ("demand", LOGGERS, True)
    ]


def test_a_failed_job_is_retried_later_then_given_up():
    """Failed loggers of a night job come back after a quarter interval (capped at 60 s),
    keeping the night; after RECORDING_RETRIES tries the job is dropped."""
    from edge_agent.daemon.schedule import RECORDING_RETRIES

    s = make()
    now = utc("2026-01-05 02:00")
    (job,) = s.due(now)
    retry = s.retry(job, ["nl-02"], now)
    assert retry.devices == ("nl-02",) and retry.night == job.night and retry.attempt == 1
    assert not retry.synchronised  # one logger: nothing to synchronise
    assert s.next_due_at(now) == now + 60.0
    assert s.due(now + 59.0) == []
    assert s.due(now + 60.0) == [retry]
    attempt = retry
    for _ in range(RECORDING_RETRIES - 1):
        attempt = s.retry(attempt, attempt.devices, attempt.due_at)
    assert attempt.attempt == RECORDING_RETRIES
    assert s.retry(attempt, attempt.devices, attempt.due_at) is None


def test_retry_keeps_sync_for_several_loggers_and_survives_a_backward_step():
    s = make(interval=120.0)
    now = utc("2026-01-05 12:00")
    (job,) = s.due(now)
    retry = s.retry(job, ["nl-03", "nl-01"], now)
    assert retry.devices == ("nl-01", "nl-03") and retry.synchronised
    assert retry.due_at == now + 30.0  # a quarter of a short interval
    # The wall clock steps back an hour: the retry runs now, not an hour late.
    (again,) = s.due(now - 3600.0)
    assert again.devices == retry.devices and again.attempt == 1


# -- what a night owes, across restarts -------------------------------------------------------


def restarted(state, at: str, interval_s: float = 3600.0, **kw) -> RecordingScheduler:
    """A scheduler started at ``at`` from a saved ``state`` (settling 60 s after the start)."""
    return RecordingScheduler(
        LOGGERS,
        window=NightWindow(120, 240),
        interval_s=interval_s,
        utc_offset_s=lambda ts: 0.0,
        state=state,
        started_at=utc(at),
        **kw,
    )


def jobs_between(sched, start: str, end: str) -> list[tuple[str, tuple[str, ...]]]:
    """Ask every minute from ``start`` to ``end``; (HH:MM, devices) of each night job."""
    out, now = [], utc(start)
    while now <= utc(end):
        for job in sched.due(now):
            out.append((time.strftime("%H:%M", time.gmtime(now)), job.devices))
        now += 60.0
    return out


def test_recorded_night_jobs_are_saved_and_day_jobs_are_not_counted():
    saved = []
    s = make()
    s._on_change = saved.append
    (job,) = s.due(utc("2026-01-05 02:00"))
    s.recorded(job, ["nl-01", "nl-03"])
    assert saved[-1] == ScheduleState(
        "2026-01-05", {"nl-01": 1, "nl-02": 0, "nl-03": 1}, job.due_at
    )
    day = RecordingJob(LOGGERS, "day", utc("2026-01-05 12:00"))
    s.recorded(day, LOGGERS)
    assert s.snapshot().done == {"nl-01": 1, "nl-02": 0, "nl-03": 1}


def test_a_restart_after_the_slot_was_recorded_waits_for_the_next_slot():
    """Slot 02:00 recorded, restart at 02:20: nothing until 03:00 (no start-up burst)."""
    state = ScheduleState("2026-01-05", dict.fromkeys(LOGGERS, 1), utc("2026-01-05 02:00"))
    s = restarted(state, "2026-01-05 02:20")
    assert s.next_due_at(utc("2026-01-05 02:20")) == utc("2026-01-05 03:00")
    assert jobs_between(s, "2026-01-05 02:20", "2026-01-05 03:59") == [("03:00", LOGGERS)]


def test_a_restart_owing_the_current_slot_records_it_after_settling():
    state = ScheduleState("2026-01-05", {}, None)
    s = restarted(state, "2026-01-05 02:20")
    assert jobs_between(s, "2026-01-05 02:20", "2026-01-05 03:59") == [
        ("02:21", LOGGERS),
        ("03:00", LOGGERS),
    ]


def test_slots_missed_while_down_are_spread_over_the_rest_of_the_window():
    """Down from 01:00 to 03:20: two recordings owed, 39 minutes left after settling: at
    03:21 and 19.5 minutes later."""
    s = restarted(ScheduleState(), "2026-01-05 03:20")
    assert jobs_between(s, "2026-01-05 03:20", "2026-01-05 04:30") == [
        ("03:21", LOGGERS),
        ("03:41", LOGGERS),
    ]


def test_each_logger_owes_its_own_count():
    """nl-02 joined after the first slot: it records in both remaining jobs, the others
    only in the first (what they still owe)."""
    state = ScheduleState("2026-01-05", {"nl-01": 1, "nl-03": 1}, None)
    s = restarted(state, "2026-01-05 03:20")
    assert jobs_between(s, "2026-01-05 03:20", "2026-01-05 04:30") == [
        ("03:21", LOGGERS),
        ("03:41", ("nl-02",)),
    ]


def test_a_saved_older_night_owes_nothing_to_tonight():
    state = ScheduleState("2026-01-04", dict.fromkeys(LOGGERS, 2), None)
    s = restarted(state, "2026-01-05 02:20")
    assert [t for t, _ in jobs_between(s, "2026-01-05 02:20", "2026-01-05 03:59")] == [
        "02:21",
        "03:00",
    ]


def test_a_first_start_outside_the_window_records_no_day_job_at_once():
    """The first day recording comes one day interval after the first start; a restart
    keeps the cadence from the saved time; on-demand recordings never wait."""
    s = restarted(ScheduleState(), "2026-01-05 10:00")
    now = utc("2026-01-05 10:00")
    s.request("nl-02", now)
    assert [j.reason for j in s.due(now)] == ["demand"]
    assert s.due(utc("2026-01-05 13:59")) == []
    assert [j.reason for j in s.due(utc("2026-01-05 14:00"))] == ["day"]
    again = restarted(s.snapshot(), "2026-01-05 15:00")
    assert again.due(utc("2026-01-05 17:59")) == []
    assert [j.reason for j in again.due(utc("2026-01-05 18:00"))] == ["day"]


def test_making_up_is_never_closer_than_the_interval():
    """A 15-minute interval, down until 03:40: eight slots owed, 19 minutes left: the slot
    of 03:30 after settling and the one of 03:45 (the six missed are forgiven)."""
    s = restarted(ScheduleState(), "2026-01-05 03:40", interval_s=900.0)
    jobs = jobs_between(s, "2026-01-05 03:40", "2026-01-05 04:30")
    assert [t for t, _ in jobs] == ["03:41", "03:45"]


def test_nothing_scheduled_while_settling():
    s = restarted(ScheduleState(), "2026-01-05 02:00", settle_s=300.0)
    assert s.due(utc("2026-01-05 02:04")) == []
    assert s.next_due_at(utc("2026-01-05 02:01")) == utc("2026-01-05 02:05")
    assert [j.reason for j in s.due(utc("2026-01-05 02:05"))] == ["night"]


def test_a_reload_goes_on_from_the_running_schedule():
    """Slot 02:00 handed to all three, delivered by nl-01 and nl-02 only, when a reload at
    02:20 adds nl-04 and drops nl-02 (the state file, read before the old runtime saved
    it, says nothing): the new schedule owes nl-01 the 03:00 slot only, nl-03 (its recording
    lost with the old runtime) and nl-04 both slots. A request still waiting carries over
    for the loggers still configured."""
    running = restarted(ScheduleState(), "2026-01-05 01:00")
    (job,) = running.due(utc("2026-01-05 02:00"))
    running.recorded(job, ["nl-01", "nl-02"])
    running.request("nl-02", utc("2026-01-05 02:19"))
    running.request("nl-03", utc("2026-01-05 02:19"))
    reloaded = RecordingScheduler(
        ("nl-01", "nl-03", "nl-04"),
        window=NightWindow(120, 240),
        interval_s=3600.0,
        utc_offset_s=lambda ts: 0.0,
        state=ScheduleState(),
        started_at=utc("2026-01-05 02:20"),
    )
    reloaded.continue_from(running)
    (demand,) = reloaded.due(utc("2026-01-05 02:20"))
    assert demand.devices == ("nl-03",) and demand.reason == "demand"
    assert jobs_between(reloaded, "2026-01-05 02:20", "2026-01-05 03:59") == [
        ("02:21", ("nl-01", "nl-03", "nl-04")),
        ("03:00", ("nl-03", "nl-04")),
    ]
    assert reloaded.snapshot().done == {
        "nl-01": 1,
        "nl-03": 0,
        "nl-04": 0,
    }  # nothing delivered since
    assert reloaded.snapshot().night == "2026-01-05"
