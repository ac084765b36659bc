"""Time (issue 6): the wall clock steps forward (NTP sets it after an RTC-less boot) and back
(a correction of an hour): seq stays gap-free and monotonic, ``begin()`` keeps acceptance
order (so per-device order), nothing is aged out or evicted because of a step, timestamps
taken while unsynchronised are flagged ``tsq: "unsynced"`` and every payload matches the
event JSON Schema. The poll schedule runs on monotonic time: a backward wall step does not
stall polling and a forward one does not cause a burst.

Clocks are injected (``SyncClock(time_fn, probe)``, the bus runner's ``clock``/``wall``/
``sleep``); the bus runner polls a real pymodbus server over TCP.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest

from drivers.bus import BusRunner, DeviceSpec, PollPolicy, ProfilePollPlan
from drivers.profile import load_profile
from drivers.transport import make_transport
from edge_agent import payload
from edge_agent.clock import MIN_PLAUSIBLE_EPOCH_S, SyncClock
from edge_agent.daemon.schedule import NightWindow, RecordingScheduler
from edge_agent.events import EventDraft, TelemetryDraft
from edge_agent.outbox import Outbox, OutboxSettings
from edge_agent.rules import DeviceInfo, RulesConfig
from edge_agent.rules.alarm import Alarm, Latch, RateOfChange, Transition
from edge_agent.rules.config import TelemetryConfig
from edge_agent.rules.sewer import DryWeather
from edge_agent.rules.telemetry import TelemetryFilter
from tests.edge_agent.rules.helpers import PROFILES, reading
from tests.helpers.modbus import profile_store, served_units

NOW = 1_790_000_000.0  # 2026-09: "real" time after NTP
HOUR, DAY = 3600.0, 86400.0
DEVICES = ("lv-01", "gd-01", "nl-01")
ROOT = Path(__file__).resolve().parents[2]


class SteppedWall:
    """A wall clock the test steps; ``synced`` is what the kernel flag (the probe) says."""

    def __init__(self, t: float, synced: bool) -> None:
        self.t, self.synced = t, synced

    def clock(self) -> SyncClock:
        # recheck_s=0: ask the probe at every acceptance, as if NTP's flag changed just now.
        return SyncClock(lambda: self.t, lambda: self.synced, recheck_s=0.0)


# Each scenario: the boot clock, then steps (new wall time, synced after the step). Between
# steps the gateway accepts a round of events and telemetry, 1 s apart.
SCENARIOS = {
    "rtc-less boot at 1970, NTP to now": (10.0, False, [(NOW, True)]),
    "boot at 2000 (wrong RTC), NTP to now, then back 1 h": (
        946_684_800.0, False, [(NOW, True), (NOW - HOUR, True)]),
    # fake-hwclock restores the last shutdown time: plausible, but 40 days behind; the kernel
    # flag says unsynchronised until NTP steps it forward past the 30-day age bound.
    "fake-hwclock 40 days behind, NTP forward 40 days": (
        NOW - 40 * DAY, False, [(NOW, True)]),
    "synced, back 1 h, forward 2 h": (NOW, True, [(NOW - HOUR, True), (NOW + HOUR, True)]),
    "synced, NTP lost and clock back 1 day, resynced": (
        NOW, True, [(NOW - DAY, False), (NOW + 10, True)]),
}  # fmt: skip


def _round(box: Outbox, wall: SteppedWall, n: int = 4) -> list[tuple[float, bool]]:
    """Accept ``n`` events and ``n`` telemetry records per device at the wall's time."""
    taken = []
    for i in range(n):
        drafts = []
        for dev in DEVICES:
            drafts.append(EventDraft.of(dev, "level.rising", wall.t, rate=i))
            drafts.append(TelemetryDraft(dev, wall.t, {"level": float(i)}))
        box.add_many(drafts)
        taken.append((wall.t, wall.synced))
        wall.t += 1.0
    return taken


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_outbox_across_wall_clock_steps(tmp_path, name):
    boot, synced, steps = SCENARIOS[name]
    wall = SteppedWall(boot, synced)
    settings = OutboxSettings(state_dir=tmp_path / "state", max_age_s=30 * DAY)
    with Outbox(settings, "gw-01", clock=wall.clock()) as box:
        rounds = [_round(box, wall)]
        for t, now_synced in steps:
            wall.t, wall.synced = t, now_synced
            rounds.append(_round(box, wall))
        accepted = sum(len(r) for r in rounds) * len(DEVICES)
        assert box.depth() == 2 * accepted, "nothing evicted or aged out by a step"
        out = []
        while batch := box.begin(7):  # small batches: order must hold across them
            out.extend(batch.events)
            box.end(batch, [e.id for e in batch.events])

    events = [e for e in out if e.stream == "event"]
    telemetry = [e for e in out if e.stream == "telemetry"]
    assert [e.kind for e in events].count("gateway.outbox_dropped") == 0
    assert [e.seq for e in events] == list(range(1, accepted + 1)), "gap-free, monotonic"
    assert [e.seq for e in telemetry] == list(range(1, accepted + 1))
    per_dev = defaultdict(list)
    for e in events:
        per_dev[e.dev].append(e.data["rate"])
    expected_flags = [s for r in rounds for _t, s in r]
    for dev in DEVICES:
        # Per device: the acceptance order (0..3 per round), not the order of ``ts``.
        assert per_dev[dev] == [0, 1, 2, 3] * len(rounds)
        flags = [e.ts_synced for e in events if e.dev == dev]
        assert flags == expected_flags
    for e in out:
        doc = payload.to_payload(e)
        payload.validate(doc)
        assert ("tsq" in doc) is (not e.ts_synced)
        if not e.ts_synced:
            assert doc["tsq"] == payload.TSQ_UNSYNCED
        assert payload.decode(payload.encode(e)) == doc


def test_age_bound_still_applies_to_events_accepted_while_synced(tmp_path):
    """The step guard is not a loophole: a synced row older than the bound still goes (and
    is reported), an unsynced one accepted before NTP stays (only the size cap bounds it)."""
    wall = SteppedWall(NOW - 40 * DAY, False)
    settings = OutboxSettings(state_dir=tmp_path / "state", max_age_s=30 * DAY)
    with Outbox(settings, "gw-01", clock=wall.clock()) as box:
        unsynced = box.add(EventDraft.of("lv-01", "level.high", wall.t, level_mm=1))
        wall.t, wall.synced = NOW, True
        synced = box.add(EventDraft.of("lv-01", "level.high", wall.t, level_mm=2))
        wall.t += 31 * DAY
        box.add(EventDraft.of("lv-01", "level.high", wall.t, level_mm=3))
        left = box.begin(100).events
    assert unsynced.seq in [e.seq for e in left]
    assert synced.seq not in [e.seq for e in left]
    dropped = [e for e in left if e.kind == "gateway.outbox_dropped"]
    assert len(dropped) == 1 and dropped[0].data["seq_ranges"] == [[synced.seq, synced.seq]]


def test_dropped_report_taken_while_unsynced_is_flagged(tmp_path):
    """A gateway.outbox_dropped event is stamped with the gateway clock like any other: while
    the clock is unsynchronised it carries ``tsq: "unsynced"`` too."""
    wall = SteppedWall(NOW, False)
    settings = OutboxSettings(state_dir=tmp_path / "state", max_bytes=4000)
    with Outbox(settings, "gw-01", clock=wall.clock()) as box:
        for i in range(60):
            box.add(TelemetryDraft("lv-01", wall.t, {"level": float(i)}))
            wall.t += 1
        left = box.begin(1000).events
    dropped = [e for e in left if e.kind == "gateway.outbox_dropped"]
    assert dropped and all(not e.ts_synced for e in dropped)
    for e in dropped:
        assert payload.to_payload(e)["tsq"] == payload.TSQ_UNSYNCED
    assert MIN_PLAUSIBLE_EPOCH_S < NOW


# -- the poll schedule ----------------------------------------------------------------------


class FakeTime:
    """Monotonic time advanced only by the runner's sleeps; a wall clock stepped at given
    monotonic instants."""

    def __init__(self, steps: list[tuple[float, float]]) -> None:
        self.mono = 0.0
        self.steps = steps  # (at monotonic s, wall offset from then on)
        self.sleeps: list[float] = []
        self.horizon = 10.0
        self.done = asyncio.Event()

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> float:
        offset = 0.0
        for at, off in self.steps:
            if self.mono >= at:
                offset = off
        return NOW + self.mono + offset

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.mono + seconds > self.horizon:  # the test is over: wait to be stopped
            self.done.set()
            await asyncio.Event().wait()
        self.mono += seconds
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    "steps",
    [
        [(5.0, -HOUR)],  # a backward step must not stall polling for an hour
        [(5.0, 30 * DAY)],  # a forward step must not make up for a month of polls
        [(3.0, -DAY), (6.0, 55 * 365 * DAY)],
    ],
    ids=["back 1 h", "forward 30 days", "back a day then forward 55 years"],
)
def test_poll_schedule_ignores_wall_clock_steps(steps):
    profile = load_profile(ROOT / "drivers/profiles/level-radar-lr10.yaml")
    readings = []

    async def main():
        fake = FakeTime(steps)  # its Event belongs to this loop
        units = {1: profile_store(profile, {"level": 800.0}), 2: profile_store(profile)}
        async with served_units({}) as server:
            for unit, store in units.items():
                server.add_unit(unit, store)
            transport = make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=2.0)
            plan = ProfilePollPlan.for_profile(profile)
            policy = PollPolicy(timeout_s=2.0, retries=1, jitter_s=0.0)
            specs = [DeviceSpec(f"lv-{u}", u, plan, 1.0, policy) for u in units]
            runner = BusRunner(
                "b1", transport, specs, sink=lambda result: readings.extend(result.readings),
                clock=fake.monotonic, wall=fake.wall, sleep=fake.sleep,
            )  # fmt: skip
            runner.start()
            await fake.done.wait()
            await runner.stop()
            return runner, fake

    runner, fake = asyncio.run(asyncio.wait_for(main(), 60))
    for c in runner.coordinators.values():
        # Due at 0, 1, ..., 10 s of monotonic time: 11 polls, however the wall moved.
        assert (c.polls_ok, c.polls_failed) == (11, 0), c.status("b1")
    assert all(0 < s <= 1.0 for s in fake.sleeps), "never a sleep longer than the interval"
    # Readings carry the stepped wall time (that is what timestamps are).
    level_ts = [r.ts for r in readings if r.device == "lv-1" and r.point == "level"]
    final_offset = steps[-1][1]
    assert level_ts[-1] == pytest.approx(NOW + fake.mono + final_offset, abs=2.0)


# -- rules: time from the readings' wall-clock ts ---------------------------------------------
# A backward step makes every later sample look older than the last one. Each rule must
# restart its time base at the step (at worst it waits its own delay again from there), never
# wait for the wall clock to catch up with the time before the step (an hour, a day).


def _samples(start: float, n: int, step: float = 10.0):
    return [start + i * step for i in range(n)]


@pytest.mark.parametrize("back_s", [HOUR, DAY])
def test_rate_of_change_recovers_right_after_a_backward_step(back_s):
    rate = RateOfChange(120.0)
    for i, ts in enumerate(_samples(NOW, 20)):
        last = rate.update(1.0 * i * 10, ts)  # 1 unit/s = 60 units/min
    assert last == pytest.approx(60.0)
    got = []
    for i, ts in enumerate(_samples(NOW + 200 - back_s, 12)):
        got.append(rate.update(200.0 + i * 10, ts))
    # A fresh window after the step: a rate again once it spans half the window (60 s).
    assert got[-1] == pytest.approx(60.0)
    assert got.index(next(g for g in got if g is not None)) <= 7
    assert rate.update(1.0, NOW + 200 - back_s + 110) is None  # a repeated ts is still ignored


@pytest.mark.parametrize("back_s", [HOUR, DAY])
def test_alarm_on_delay_restarts_at_a_backward_step(back_s):
    alarm = Alarm(100.0, on_delay_s=30.0)
    assert alarm.update(150.0, NOW) is None  # pending since NOW
    assert alarm.update(150.0, NOW + 10) is None
    ts = NOW + 20 - back_s  # the clock steps back while the alarm is pending
    out = [alarm.update(150.0, t) for t in _samples(ts, 6)]
    assert out[:3] == [None, None, None] and out[3] is Transition.RAISE  # 30 s after the step


@pytest.mark.parametrize("back_s", [HOUR, DAY])
def test_latch_clear_delay_restarts_at_a_backward_step(back_s):
    latch = Latch(clear_after_s=60.0)
    assert latch.update(True, NOW) is Transition.RAISE
    assert latch.update(False, NOW + 10) is None  # false since NOW + 10
    out = [latch.update(False, t) for t in _samples(NOW + 20 - back_s, 8)]
    assert Transition.CLEAR in out and out.index(Transition.CLEAR) == 6  # 60 s after the step


def test_telemetry_heartbeat_continues_after_a_backward_step():
    device = DeviceInfo("lv-01", PROFILES.get("level-radar-lr10"))
    tf = TelemetryFilter(RulesConfig(telemetry=TelemetryConfig(heartbeat_s=900.0)), [device])
    sends = [tf.should_send(reading("lv-01", "level", 1000.0, NOW + i * 60)) for i in range(16)]
    assert sends[0] and sends[15] and not any(sends[1:15])  # first value, heartbeat at 900 s
    after = NOW + 16 * 60 - HOUR
    sends = [tf.should_send(reading("lv-01", "level", 1000.0, after + i * 60)) for i in range(16)]
    # At the step (a new time base) and 900 s later: not an hour and 15 minutes of silence.
    assert sends[0] and sends[15] and not any(sends[1:15])


def test_blockage_dry_weather_restarts_at_a_backward_step():
    rule = DryWeather(("rg-01",), dry_rain_mm_h=0.5, dry_for_s=600.0)
    for ts in _samples(NOW, 30, 60.0):
        rule.on_rain(reading("rg-01", "rain_rate", 0.0, ts))
    assert rule.dry(NOW + 29 * 60)
    after = NOW + 30 * 60 - DAY
    for ts in _samples(after, 11, 60.0):
        rule.on_rain(reading("rg-01", "rain_rate", 0.0, ts))
    # Dry for 600 s of the new time base: dry again, not a day later.
    assert rule.dry(after + 600)


# -- the recording schedule (wall clock: the night window is local time) ----------------------


def _scheduler() -> RecordingScheduler:
    return RecordingScheduler(
        ("nl-01", "nl-02"),
        window=NightWindow(120, 240),  # 02:00-04:00 UTC here
        interval_s=HOUR,
        utc_offset_s=lambda ts: 0.0,
    )


def _jobs(sched: RecordingScheduler, start: float, minutes: int) -> list[tuple[float, str]]:
    """Ask ``due`` every minute for ``minutes``; (time, reason) of each job."""
    out = []
    for m in range(minutes):
        now = start + m * 60.0
        out.extend((now, job.reason) for job in sched.due(now))
    return out


MIDNIGHT = 1_790_035_200.0  # 2026-09-22T00:00Z: a day boundary for the tests below


def test_backward_step_of_a_day_inside_the_night_window_does_not_skip_the_night():
    sched = _scheduler()
    night2 = MIDNIGHT + DAY
    assert [r for _t, r in _jobs(sched, night2 + 2 * HOUR, 45)] == ["night"]  # 02:00 slot
    # At 02:45 NTP steps the clock back a day: it is 02:45 of the night before.
    back = night2 + 2 * HOUR + 45 * 60 - DAY
    jobs = _jobs(sched, back, 75)  # until 04:00
    # The rest of this (re-lived) window still records: at once and at the 03:00 slot.
    assert [r for _t, r in jobs] == ["night", "night"]


def test_backward_step_does_not_stall_the_day_cadence():
    sched = _scheduler()
    noon = MIDNIGHT + 12 * HOUR
    first = _jobs(sched, noon, 10)
    assert [r for _t, r in first] == ["day"]
    back = noon + 600 - DAY  # NTP steps the clock back a day (still daytime)
    jobs = _jobs(sched, back, 5 * 60)  # five hours of the new time base
    # The day cadence (4 h) restarts at the step: one job within 4 h of it, not a day later.
    assert jobs and jobs[0][0] - back <= sched.day_interval_s


def test_forward_step_gives_one_job_not_a_burst():
    sched = _scheduler()
    _jobs(sched, MIDNIGHT + 12 * HOUR, 10)
    later = MIDNIGHT + 12 * HOUR + 30 * DAY  # a month ahead (NTP after a long outage)
    jobs = _jobs(sched, later, 10)
    assert [r for _t, r in jobs] == ["day"]
