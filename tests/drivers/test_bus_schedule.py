"""Planning a bus in wire time: the choice table, learnt turnarounds, and the bus runner on a
simulated wire (an injected clock that moves by each request's time on a 9600-baud line)
while a recording transfer runs: alarm polls keep their deadlines, the line never idles."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import pytest

from drivers.bus import BusRead, BusRunner, DeviceSpec, PollPolicy
from drivers.bus_schedule import Choice, Turnarounds, choose
from drivers.model import Quality, Reading
from drivers.wire import WireModel


@dataclass
class Slot:
    name: str
    next_due: float
    urgent: bool = True
    interval_s: float = 10.0
    price_s: float = 0.05


GAS = Slot("gas", 100.0)
LEVEL = Slot("level", 100.5)
LOGGER = Slot("logger", 99.0, urgent=False, interval_s=300.0)
PROBE = Slot("probe", 99.0, urgent=False, interval_s=10.0, price_s=1.2)  # offline: timeouts

# (case, now, devices, background price or None, expected action, expected device or until)
CASES = [
    ("idle: wait for the next deadline", 90.0, [GAS, LEVEL], None, "wait", 100.0),
    ("nothing at all: wait for work", 0.0, [], None, "wait", math.inf),
    ("no polls: background runs", 0.0, [], 0.3, "background", None),
    ("alarm due: poll it", 100.0, [LEVEL, GAS], None, "poll", "gas"),
    ("two alarms due: earliest deadline first", 101.0, [LEVEL, GAS], None, "poll", "gas"),
    ("alarm before an earlier other poll", 100.0, [LOGGER, GAS], None, "poll", "gas"),
    ("other poll fits before the alarm", 99.5, [LOGGER, GAS], None, "poll", "logger"),
    ("an offline probe does not fit: the alarm goes early", 99.5, [PROBE, GAS], 0.3, "poll", "gas"),
    ("background fits before every deadline", 99.0, [GAS, LEVEL], 0.3, "background", None),
    ("background does not fit: the next poll goes early", 99.8, [GAS, LEVEL], 0.3, "poll", "gas"),
    (
        "background does not fit, next poll is a probe that does not fit: alarm early",
        98.8,
        [Slot("probe", 98.9, urgent=False, price_s=1.5), GAS],
        0.5,
        "poll",
        "gas",
    ),
    (
        "two alarms due together, idle bus: wait for the first to start one poll early",
        99.0,
        [GAS, Slot("pressure", 100.0, price_s=0.08)],
        None,
        "wait",
        99.95,
    ),
    (
        "two alarms due together: the first starts one poll early",
        99.95,
        [GAS, Slot("pressure", 100.0, price_s=0.08)],
        None,
        "poll",
        "gas",
    ),
    (
        "the background yields to a cluster of deadlines, not only the first",
        99.6,
        [GAS, Slot("pressure", 100.0, price_s=0.08), Slot("level", 100.1, price_s=0.3)],
        0.4,  # ends at 100.0: in time for gas alone, not for gas and then pressure
        "poll",
        "gas",
    ),
    (
        "starved (late by a whole interval) and the alarm is due: the alarm goes first",
        100.0,
        [Slot("probe", 89.0, urgent=False, price_s=1.2), GAS],
        None,
        "poll",
        "gas",
    ),
    (
        "starved and it does not fit before the alarm: the alarm goes early",
        99.5,
        [Slot("probe", 89.0, urgent=False, price_s=1.2), GAS],
        0.3,
        "poll",
        "gas",
    ),
    (
        "starved and it fits before the alarm: before other due polls and the transfer",
        98.0,
        [LOGGER, Slot("probe", 89.0, urgent=False, price_s=1.2), GAS],
        0.3,
        "poll",
        "probe",
    ),
    (
        "of due polls that fit, the earliest due goes first",
        98.0,
        [Slot("probe", 97.5, urgent=False, price_s=1.2), Slot("logger", 97.0, False, 300.0), GAS],
        0.3,
        "poll",
        "logger",
    ),
]


@pytest.mark.parametrize(
    ("case", "now", "devices", "background", "action", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_choice(case, now, devices, background, action, expected):
    choice = choose(now, list(devices), background)
    assert choice.action == action
    if action == "poll":
        assert choice.device.name == expected
    elif action == "wait":
        assert choice.until == expected
    else:
        assert choice == Choice("background")


BLOCK_S = 0.308  # a recording block (index write and 120-register read) at 9600 baud


def _plan_in_wire_time(
    slots: list[Slot], now: float, until: float, backoff_s: float
) -> dict[str, list]:
    """Drive ``choose`` on an injected clock with a transfer always queued: each choice takes
    its price of wire time; an alarm's next deadline is one interval on (fixed rate), the
    offline probe's the backoff after it ends. Per device, (deadline, start) of its polls."""
    starts: dict[str, list] = {s.name: [] for s in slots}
    while now < until:
        choice = choose(now, slots, BLOCK_S)
        if choice.action == "background":
            now += BLOCK_S
            continue
        assert choice.action == "poll"  # a transfer is queued: the line never waits
        c = choice.device
        starts[c.name].append((c.next_due, now))
        now += c.price_s
        c.next_due = now + backoff_s if not c.urgent else max(c.next_due + c.interval_s, now)
    return starts


def test_a_starved_probe_never_makes_an_alarm_late_and_still_runs_soon():
    """An offline device's probe that has waited past its interval (after a stall of the
    gateway, say) costs 1.2 s of timeouts: it goes in a gap that holds it, opened by running
    alarms a little early, and no alarm poll starts after its deadline."""
    alarms = [
        Slot("gas", 100.4, interval_s=5.0, price_s=0.035),
        Slot("level", 100.9, interval_s=10.0, price_s=0.055),
        Slot("pressure", 101.6, interval_s=10.0, price_s=0.04),
        Slot("cover", 102.2, interval_s=15.0, price_s=0.05),
    ]
    probe = Slot("probe", 88.0, urgent=False, interval_s=10.0, price_s=1.2)
    starts = _plan_in_wire_time([*alarms, probe], now=100.0, until=170.0, backoff_s=30.0)
    for alarm in alarms:
        polls = starts[alarm.name]
        assert len(polls) >= 65 / alarm.interval_s, alarm.name
        assert all(start <= deadline + 1e-9 for deadline, start in polls), alarm.name
    # It ran within a few alarm polls of the first gap, and again at its backoff.
    first_probe = starts["probe"][0][1]
    assert first_probe - 100.0 < 3.0, starts["probe"]
    assert len(starts["probe"]) == 3


class TestTurnarounds:
    """Learnt per unit: the running mean plus twice the mean deviation."""

    def test_initial_until_measured(self):
        t = Turnarounds(0.01)
        assert t.of(3) == 0.01

    def test_steady_device_converges_to_its_delay(self):
        t = Turnarounds(0.01)
        for _ in range(50):
            t.observe(3, 0.004)
        assert t.of(3) == pytest.approx(0.004)
        assert t.of(4) == 0.01  # others keep the initial guess

    def test_jittery_device_is_priced_above_its_mean(self):
        t = Turnarounds(0.01)
        for k in range(200):
            t.observe(1, 0.002 if k % 2 else 0.006)
        assert 0.006 < t.of(1) < 0.012

    def test_a_timeout_teaches_nothing_and_early_clocks_count_as_zero(self):
        t = Turnarounds(0.01, ceiling_s=0.5)
        t.observe(2, 3.0)
        assert t.of(2) == 0.01
        t.observe(2, -0.001)
        assert t.of(2) == 0.0


# -- the runner on a simulated 9600-baud wire ---------------------------------------------

LINE = WireModel.rtu(9600, 8, "E", 1, turnaround_s=0.01)
DEVICE_TURNAROUND_S = 0.006  # what the simulated devices really take


class WireTime:
    """An injected monotonic clock; waits move it, and so does every request on the wire."""

    def __init__(self) -> None:
        self.now = 0.0
        self.busy_s = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        for _ in range(10):  # new work arriving at this instant cancels the wait first
            await asyncio.sleep(0)
        self.now += max(seconds, 0.0)


class SimulatedLine:
    """A duck-typed transport: each request advances the clock by its true wire time and
    logs (start, unit, function)."""

    kind, serial, where, timeout_s = "rtu", True, "rtu sim", 0.5

    def __init__(self, time: WireTime, turnaround_s: float = DEVICE_TURNAROUND_S) -> None:
        self.time = time
        self.wire = LINE
        self.turnaround_s = turnaround_s
        self.log: list[tuple[float, int, int]] = []

    async def _on_wire(self, unit: int, function: int, count: int) -> None:
        self.log.append((self.time.now, unit, function))
        took = LINE.exchange_s(function, count) + self.turnaround_s
        self.time.now += took
        self.time.busy_s += took
        await asyncio.sleep(0)

    async def read(self, function, unit, address, count, *, timeout_s=None):
        await self._on_wire(unit, function, count)
        return [0] * count

    async def write_registers(self, unit, address, values, *, timeout_s=None):
        await self._on_wire(unit, 6 if len(values) == 1 else 16, len(values))

    def close(self) -> None:
        pass


class OneRead:
    """A poll of ``count`` holding registers."""

    def __init__(self, count: int) -> None:
        self.requests = (BusRead(3, 0, count),)

    def decode(self, device, results, ts):
        return [Reading(device, "v", results[0][0], "", Quality.GOOD, ts)]


POLICY = PollPolicy(timeout_s=0.5, retries=0, jitter_s=0.0)
SITE = [  # the reference site's alarm points on the loggers' line, plus two loggers' summaries
    DeviceSpec("gd-01", 11, OneRead(12), 5.0, POLICY, alarm=True),
    DeviceSpec("pt-01", 12, OneRead(8), 10.0, POLICY, alarm=True),
    DeviceSpec("lv-02", 13, OneRead(10), 10.0, POLICY, alarm=True),
    DeviceSpec("mc-01", 14, OneRead(6), 15.0, POLICY, alarm=True),
    DeviceSpec("nl-01", 1, OneRead(20), 300.0, POLICY),
    DeviceSpec("nl-02", 2, OneRead(20), 300.0, POLICY),
]
BLOCKS = 274  # an 8 s recording at 4096 Hz in 120-register blocks


def _transfer_while_polling(turnaround_s: float) -> tuple[BusRunner, SimulatedLine, float, float]:
    """Run the bus while one logger transfers BLOCKS blocks; the runner, its line, and the
    transfer's start and end on the simulated clock."""
    time = WireTime()
    line = SimulatedLine(time, turnaround_s)

    async def main():
        runner = BusRunner("water", line, SITE, clock=time.clock, sleep=time.sleep)
        runner.start()
        while any(c.polls_ok == 0 for c in runner.coordinators.values()):
            await asyncio.sleep(0)
        for c in runner.coordinators.values():  # devices due together at the start wait
            c.late_max_s = 0.0  # for each other: that is not what is measured here
        shared = runner.shared_transport()
        started, busy = time.now, time.busy_s
        for block in range(BLOCKS):
            await shared.write_registers(1, 110, [block])
            await shared.read(3, 1, 200, 120)
        ended = time.now
        await runner.stop()
        time.busy_s -= busy  # from here on: the line's time during the transfer
        return runner, started, ended

    runner, started, ended = asyncio.run(asyncio.wait_for(main(), 60))
    return runner, line, started, ended


@pytest.mark.parametrize(
    ("turnaround_s", "late_max_s"),
    [(DEVICE_TURNAROUND_S, 1e-9), (0.03, LINE.exchange_s(3, 120) + 0.03)],
    ids=["devices as fast as assumed: on time", "devices 5x slower (learnt): one request"],
)
def test_alarm_polls_keep_their_deadlines_while_a_recording_transfers(turnaround_s, late_max_s):
    """During a 90 s transfer the alarm points are polled every interval: on their due time
    where requests are priced right, never later than one transfer request where the
    devices are slower than assumed; the line is never idle while the transfer waits."""
    runner, line, started, ended = _transfer_while_polling(turnaround_s)
    assert ended - started > 80.0  # the transfer really took the line for minutes
    for spec in SITE:
        c = runner.coordinators[spec.name]
        if spec.alarm:
            assert c.polls_ok >= int((ended - started) / spec.interval_s)
            assert c.late_max_s <= late_max_s, spec.name
    # Busy from the transfer's start to its end: polls and blocks back to back.
    assert line.time.busy_s / (ended - started) > 0.99
