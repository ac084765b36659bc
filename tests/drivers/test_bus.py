"""BusRunner: the coordinator's state machine (pure logic, injected clock) and the poll loop
against a real simulated bus over loopback TCP."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import pytest

from drivers.bus import BusRead, BusRunner, DeviceCoordinator, DeviceSpec, PollPolicy
from drivers.errors import DriverError, DriverTimeout
from drivers.model import AvailabilityChange, PollResult, Quality, Reading
from drivers.transport import make_transport
from tests.helpers.modbus import served_units


class RegisterPlan:
    """A plan reading holding registers; one reading per register, named r<address>."""

    def __init__(self, *spans: tuple[int, int]) -> None:
        self.requests = tuple(BusRead(3, address, count) for address, count in spans)

    def decode(self, device, results, ts):
        out = []
        for request, values in zip(self.requests, results, strict=True):
            if values is None:
                continue
            for offset, value in enumerate(values):
                out.append(
                    Reading(device, f"r{request.address + offset}", value, "", Quality.GOOD, ts)
                )
        return out


POLICY = PollPolicy(
    timeout_s=0.1,
    retries=0,
    offline_after=2,
    backoff_initial_s=1.0,
    backoff_max_s=4.0,
    jitter_s=0.0,
)


def _coordinator(interval_s: float = 10.0) -> DeviceCoordinator:
    spec = DeviceSpec("d", 1, RegisterPlan((0, 1)), interval_s, POLICY)
    return DeviceCoordinator(spec, now=100.0)


class TestCoordinator:
    """Availability and next-due times follow the documented rules."""

    # (event, now, expected state, expected next_due, transition returned)
    CASES = (
        ("ok", 100.0, "online", 110.0, False),
        ("fail", 110.0, "online", 120.0, False),  # one failure: still online, normal interval
        ("fail", 120.0, "offline", 121.0, True),  # offline_after=2: offline, backoff 1 s
        ("fail", 121.0, "offline", 123.0, False),  # backoff doubles
        ("fail", 123.0, "offline", 127.0, False),
        ("fail", 127.0, "offline", 131.0, False),  # capped at 4 s
        ("ok", 131.0, "online", 140.0, True),  # recovered: back on the grid (multiples of 10 s)
        ("ok", 140.0, "online", 150.0, False),
    )

    def test_sequence(self):
        """Each poll result moves state and schedule as the table says."""
        c = _coordinator()
        assert c.state == "unknown" and c.next_due == 100.0
        for event, now, state, due, transition in self.CASES:
            change = c.poll_ok(now) if event == "ok" else c.poll_failed("no answer", now)
            changed = change is not None
            assert (c.state, c.next_due, changed) == (state, due, transition), (event, now)
            if changed:  # the transition says which way, and why it went offline
                assert change.online == (event == "ok")
                assert change.reason == (None if change.online else "no answer")
        assert c.polls_ok == 3 and c.polls_failed == 5 and c.last_error == "no answer"

    def test_fixed_rate_does_not_pile_up(self):
        """A poll that ran late schedules from now, not a burst of catch-up polls."""
        c = _coordinator()
        c.poll_ok(100.0)
        assert c.next_due == 110.0
        c.poll_ok(150.0)  # the bus was busy for 40 s
        assert c.next_due == 150.0
        c.poll_ok(150.5)
        assert c.next_due == 160.0

    def test_offline_from_the_start_is_a_transition(self):
        """A device dead at startup reports going offline once."""
        c = _coordinator()
        assert c.poll_failed("x", 100.0) is None
        assert c.poll_failed("x", 110.0) == AvailabilityChange(False, reason="x", failures=2)
        assert c.poll_failed("x", 111.0) is None

    def test_back_online_says_how_long_it_was_offline(self):
        """The transition carries the offline time, from the polls' wall timestamps."""
        c = _coordinator()
        c.poll_failed("x", 100.0, ts=5000.0)
        c.poll_failed("x", 110.0, ts=5010.0)  # offline from here
        assert c.poll_ok(120.0, ts=5090.0) == AvailabilityChange(True, offline_s=80.0)

    def test_a_device_that_never_answered_is_not_online(self):
        """One failed poll of a device never heard is no news: ``unknown`` (status: not
        online, not offline) until it answers or fails ``offline_after`` polls in a row."""
        c = _coordinator()
        c.poll_failed("no answer", 100.0)
        assert c.state == "unknown" and c.status("b").online is None
        assert c.status("b").last_error == "no answer"
        c.poll_ok(110.0)
        assert c.state == "online" and c.status("b").online is True
        c.poll_failed("no answer", 120.0)  # answered before: one failure is still online
        assert c.state == "online"

    def test_a_changed_device_starts_from_the_availability_last_decided(self):
        """A reload that changed how a device is polled: counters and streak start fresh,
        but an offline device is not reported offline again and comes back once."""
        old = _coordinator()
        old.poll_failed("x", 100.0, ts=5000.0)
        old.poll_failed("x", 110.0, ts=5010.0)
        assert old.state == "offline"
        new = _coordinator()
        new.carry_availability(old)
        assert new.state == "offline" and new.polls_failed == 0
        assert new.poll_failed("x", 200.0) is None  # no second offline
        assert new.poll_ok(210.0, ts=5100.0) == AvailabilityChange(True, offline_s=90.0)
        online = _coordinator()
        online.carry_availability(new)
        assert online.state == "online"
        assert online.poll_failed("x", 300.0) is None
        assert online.poll_failed("x", 310.0) == AvailabilityChange(False, reason="x", failures=2)
        fresh = _coordinator()
        fresh.carry_availability(_coordinator())  # never polled: nothing to carry
        assert fresh.state == "unknown" and not fresh.polled

    def test_first_poll_at_once_then_jitter_spreads_the_phases(self):
        """Every device is due at the start (READY waits for the first cycle); the second
        poll is one interval plus a phase within jitter; the phase stays, the rate is fixed."""
        spec = DeviceSpec("d", 1, RegisterPlan((0, 1)), 10.0, PollPolicy(jitter_s=2.0))
        coordinators = [DeviceCoordinator(spec, 0.0, random.Random(seed)) for seed in range(5)]
        assert {c.next_due for c in coordinators} == {0.0}
        for c in coordinators:
            c.poll_ok(0.1)
        seconds = [c.next_due for c in coordinators]
        assert len(set(seconds)) == 5 and all(10.0 <= d <= 12.0 for d in seconds)
        for c, second in zip(coordinators, seconds, strict=True):
            c.poll_ok(second + 0.1)
            assert c.next_due == second + 10.0

    def test_devices_of_one_interval_poll_in_one_phase(self):
        """Devices created at different times (two buses, a reload) poll on their interval's
        grid after the first poll, so in one phase; a late poll runs at once and the next
        one is back on the grid (the fixed rate is kept)."""
        spec = DeviceSpec("d", 1, RegisterPlan((0, 1)), 1.0, POLICY)
        early, late = DeviceCoordinator(spec, 100.3), DeviceCoordinator(spec, 100.8)
        early.poll_ok(100.3)
        late.poll_ok(100.8)
        assert (early.next_due, late.next_due) == (101.0, 102.0)
        for due in (101.0, 102.0, 103.0):
            early.poll_ok(due)
            assert early.next_due == due + 1.0
        early.poll_ok(105.7)  # stalled: due at 104, answered at 105.7
        assert early.next_due == 105.7
        early.poll_ok(105.7)
        assert early.next_due == 107.0

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"timeout_s": 0},
            {"retries": -1},
            {"offline_after": 0},
            {"backoff_initial_s": 5.0, "backoff_max_s": 1.0},
            {"jitter_s": -1},
        ],
    )
    def test_policy_rejects_bad_numbers(self, kwargs):
        with pytest.raises(ValueError):
            PollPolicy(**kwargs)


class FakeTime:
    """Monotonic and wall clocks that move only when the runner sleeps, up to ``until``."""

    def __init__(self, until: float) -> None:
        self.now = 1000.0
        self.until = until
        self.reached = asyncio.Event()

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1.7e9 + self.now

    async def sleep(self, seconds: float) -> None:
        if self.now + seconds > self.until:
            self.reached.set()
            await asyncio.Event().wait()  # time stops here; the test stops the runner
        self.now += seconds
        await asyncio.sleep(0)


UNITS = {
    1: {"holding": {0: [11, 12, 13], 100: [0]}},
    2: {"holding": {0: [21, 22, 23]}},
    3: {"holding": {0: [31, 32, 33]}},
}


def test_schedule_on_injected_clock_keeps_each_device_rate():
    """Over 60 s of fake time, 1 s and 3 s devices poll 60 and 20 times (+1 at t=0), exactly."""

    async def scenario():
        fake = FakeTime(until=1060.0)
        readings: list[Reading] = []
        async with served_units(UNITS) as server:
            transport = make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=1)
            devices = [
                DeviceSpec("fast", 1, RegisterPlan((0, 3)), 1.0, POLICY),
                DeviceSpec("slow", 2, RegisterPlan((0, 2)), 3.0, POLICY),
            ]
            runner = BusRunner(
                "b",
                transport,
                devices,
                sink=lambda result: readings.extend(result.readings),
                clock=fake.clock,
                wall=fake.wall,
                sleep=fake.sleep,
            )
            runner.start()
            await asyncio.wait_for(fake.reached.wait(), 60)
            await runner.stop()
            fast = runner.coordinators["fast"].polls_ok
            slow = runner.coordinators["slow"].polls_ok
            assert (fast, slow) == (61, 21)  # due at 1000..1060 every 1 s / every 3 s
            assert {r.point for r in readings if r.device == "fast"} == {"r0", "r1", "r2"}
            assert {r.value for r in readings if r.device == "slow"} == {21, 22}

    asyncio.run(scenario())


class _Phases:
    """An rng whose ``uniform`` hands out the given phases in turn."""

    def __init__(self, *phases: float) -> None:
        self.phases = list(phases)

    def uniform(self, _a: float, _b: float) -> float:
        return self.phases.pop(0)


JITTERED = dataclasses.replace(POLICY, jitter_s=1.0)


def test_polls_due_close_together_share_a_wake_up_and_keep_their_rate():
    """Two 1 s devices 0.05 s apart in phase are polled on one wake-up (the second early,
    by its phase difference: under early_s); a third, half a second away, has its own.
    Every device still polls once a second: early polls do not move the due times."""

    async def scenario():
        fake = FakeTime(until=1010.0)
        sleeps: list[float] = []
        polls: dict[str, list[float]] = {"a": [], "b": [], "c": []}

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            await fake.sleep(seconds)

        async with served_units(UNITS) as server:
            transport = make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=1)
            devices = [
                DeviceSpec(name, unit, RegisterPlan((0, 3)), 1.0, JITTERED)
                for name, unit in (("a", 1), ("b", 2), ("c", 3))
            ]
            runner = BusRunner(
                "b",
                transport,
                devices,
                sink=lambda result: polls[result.device].append(result.ts - 1.7e9),
                clock=fake.clock,
                wall=fake.wall,
                rng=_Phases(0.0, 0.05, 0.5),  # type: ignore[arg-type]
                sleep=sleep,
            )
            assert runner.early_s == pytest.approx(0.1)
            runner.start()
            await asyncio.wait_for(fake.reached.wait(), 60)
            await runner.stop()
        a_times = [1000.0 + i for i in range(11)]  # at once, then one interval after
        assert polls["a"] == pytest.approx(a_times)
        assert polls["b"] == pytest.approx(a_times)  # with a: 0.05 s early, every second
        assert polls["c"] == pytest.approx([1000.0] + [1000.5 + i for i in range(1, 10)])
        # one wake-up for a and b, one for c, each second (b alone would add 10), and the
        # sleep that reaches the end of fake time
        assert len(sleeps) == 10 + 9 + 1

    asyncio.run(scenario())


def test_dead_device_does_not_stall_the_bus_and_recovers():
    """An absent unit goes offline once, is probed at the backoff rate, and comes back."""

    async def scenario():
        events: list[tuple] = []
        failed: list[str] = []

        def sink(result: PollResult) -> None:
            if result.change is not None:
                events.append((result.device, result.change.online, result.change.reason))
            if not result.ok:
                failed.append(result.device)

        async with served_units({1: UNITS[1]}) as server:
            transport = make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=0.1)
            policy = PollPolicy(
                timeout_s=0.1,
                retries=1,
                offline_after=2,
                backoff_initial_s=0.2,
                backoff_max_s=0.4,
                jitter_s=0.0,
            )
            devices = [
                DeviceSpec("live", 1, RegisterPlan((0, 3)), 0.02, policy),
                DeviceSpec("dead", 2, RegisterPlan((0, 3)), 0.02, policy),
            ]
            runner = BusRunner(
                "b",
                transport,
                devices,
                sink=sink,
            )
            runner.start()
            live, dead = runner.coordinators["live"], runner.coordinators["dead"]
            for _ in range(500):  # bounded
                if live.polls_ok >= 60:
                    break
                await asyncio.sleep(0.02)
            assert dead.state == "offline"
            assert events[0][:2] == ("dead", False)
            assert "no answer from unit 2" in events[0][2]
            assert len(events) == 1  # logged once, not per probe
            assert set(failed) == {"dead"}
            # Backoff: the dead unit was tried far less often than the live one was polled.
            assert dead.polls_failed * 3 < live.polls_ok
            # retries=1: two attempts per poll until offline (2 polls), then one per probe.
            assert dead.polls_failed > 3
            assert dead.timeouts == 2 * 2 + (dead.polls_failed - 2)
            server.add_unit(2).set_holding(0, [5, 6, 7])
            for _ in range(200):  # bounded
                if dead.state == "online":
                    break
                await asyncio.sleep(0.02)
            await runner.stop()
            assert dead.state == "online"
            assert events[-1][:2] == ("dead", True)
            assert [r.value for r in dead.last_readings] == [5, 6, 7]

    asyncio.run(scenario())


def test_exception_replies_are_named_and_partial_polls_count_as_online():
    """A refused block leaves the other blocks' readings; all blocks refused fails the poll."""

    async def scenario():
        async with served_units(UNITS) as server:
            transport = make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=0.3)
            devices = [
                DeviceSpec("partial", 1, RegisterPlan((0, 3), (50, 2)), 10.0, POLICY),
                DeviceSpec("refused", 2, RegisterPlan((50, 2)), 10.0, POLICY),
            ]
            runner = BusRunner("b", transport, devices)
            readings = await runner.poll_once("partial")
            assert [r.point for r in readings] == ["r0", "r1", "r2"]
            partial = runner.coordinators["partial"]
            assert partial.state == "online"
            assert "illegal data address (code 2)" in partial.last_error
            with pytest.raises(DriverError, match="illegal data address"):
                await runner.poll_once("refused")
            assert runner.coordinators["refused"].exceptions == 1
            await runner.stop()

    asyncio.run(scenario())


def test_shared_transport_interleaves_with_polling():
    """Requests through the shared view run between polls; the runner keeps polling."""

    async def scenario():
        async with served_units(UNITS) as server:
            transport = make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=0.3)
            devices = [DeviceSpec("a", 1, RegisterPlan((0, 3)), 0.01, POLICY)]
            runner = BusRunner("b", transport, devices)
            runner.start()
            shared = runner.shared_transport()
            before = runner.coordinators["a"].polls_ok
            for _ in range(20):
                assert await shared.read(3, 3, 0, 1) == [31]
            async with runner.exclusive() as t:
                await t.write_registers(1, 100, [7])
                assert await t.read(3, 1, 100, 1) == [7]
            for _ in range(100):  # bounded
                if runner.coordinators["a"].polls_ok > before + 5:
                    break
                await asyncio.sleep(0.01)
            await runner.stop()
            assert runner.coordinators["a"].polls_ok > before + 5

    asyncio.run(scenario())


def test_duplicate_names_and_bad_units_are_refused():
    with pytest.raises(ValueError):
        DeviceSpec("d", 0, RegisterPlan((0, 1)), 1.0)
    with pytest.raises(ValueError):
        DeviceSpec("d", 1, RegisterPlan((0, 1)), 0.0)
    spec = DeviceSpec("d", 1, RegisterPlan((0, 1)), 1.0)
    with pytest.raises(ValueError, match="duplicate"):
        BusRunner("b", make_transport("tcp", host="127.0.0.1", port=1), [spec, spec])


def test_refused_block_reports_its_points_stale_with_last_value():
    """A profile device refusing one block: those points are STALE with their last value."""
    from drivers.bus import ProfilePollPlan
    from drivers.profile import ProfileRegistry
    from tests.helpers.modbus import profile_store

    profile = ProfileRegistry().get("noise-logger-nl200")

    async def scenario():
        async with served_units({}) as server:
            store = server.add_unit(1, profile_store(profile, {"listen_start": 120}))
            transport = make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=0.3)
            plan = ProfilePollPlan.for_profile(profile)
            runner = BusRunner("b", transport, [DeviceSpec("nl", 1, plan, 10.0, POLICY)])
            first = {r.point: r for r in await runner.poll_once("nl")}
            assert first["listen_start"].value == 120
            assert first["listen_start"].quality == Quality.GOOD
            del store.holding[10]  # the device now refuses the block holding listen_start
            second = {r.point: r for r in await runner.poll_once("nl")}
            await runner.stop()
            assert set(second) == set(first)
            assert second["listen_start"].quality == Quality.STALE
            assert second["listen_start"].value == 120
            assert second["battery"].quality == Quality.GOOD
            assert runner.coordinators["nl"].state == "online"

    asyncio.run(scenario())


class CountedTransport:
    where = "tcp 127.0.0.1:1"
    timeout_s = 1.0
    kind = "tcp"
    serial = False

    def __init__(self) -> None:
        self.fail = False

    async def read(self, function, unit, address, count, *, timeout_s=None):
        if self.fail:
            raise DriverTimeout("no answer")
        return [0] * count

    async def write_registers(self, unit, address, values, *, timeout_s=None):
        return None

    async def broadcast_registers(self, address, values):
        return None


def test_progressing_counts_completed_requests_only():
    """Each answered request is progress; a timeout is not; other attributes pass through."""
    beats: list[int] = []
    inner = CountedTransport()
    t = BusRunner("b", inner, []).shared_transport(on_request=lambda: beats.append(1))

    async def main():
        await t.read(3, 1, 100, 2)
        await t.write_registers(1, 110, [4])
        await t.broadcast_registers(100, [1])
        inner.fail = True
        with pytest.raises(DriverTimeout):
            await t.read(3, 1, 100, 2)

    asyncio.run(main())
    assert len(beats) == 3
    assert t.where == "tcp 127.0.0.1:1"


def test_an_adopted_coordinator_goes_on_where_it_was():
    """A runner built for a reload polls with the previous runner's coordinator of a device
    left as it was: its schedule, counters and availability go on. Only before start."""

    async def scenario():
        async with served_units(UNITS) as server:

            def runner() -> BusRunner:
                transport = make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=1)
                spec = DeviceSpec("fast", 1, RegisterPlan((0, 1)), 0.05, POLICY)
                return BusRunner("b", transport, [spec])

            first = runner()
            first.start()
            while first.coordinators["fast"].polls_ok < 3:
                await asyncio.sleep(0.02)
            await first.stop()
            kept = first.coordinators["fast"]
            polls = kept.polls_ok
            second = runner()
            second.adopt(kept)
            second.start()
            while kept.polls_ok < polls + 2:
                await asyncio.sleep(0.02)
            assert second.coordinators["fast"] is kept
            with pytest.raises(RuntimeError):
                second.adopt(kept)
            await second.stop()
            with pytest.raises(KeyError):
                runner().adopt(DeviceCoordinator(DeviceSpec("other", 2, RegisterPlan(), 1.0), 0.0))

    asyncio.run(scenario())
