"""Events and the clock-synchronisation flag: ids, alarms, and an injectable sync probe."""

import pytest

from edge_agent.clock import MIN_PLAUSIBLE_EPOCH_S, SyncClock, kernel_clock_synchronised
from edge_agent.events import Event, EventDraft, Severity


def test_event_ids_and_alarm_flag():
    ev = Event("gw-01", 7, "lv-01", "level.high", Severity.WARNING, 1.0, "{}")
    assert ev.id == "gw-01:7"
    assert ev.is_alarm
    tel = Event("gw-01", 7, "lv-01", "telemetry", Severity.INFO, 1.0, "{}", stream="telemetry")
    assert tel.id == "gw-01:t7"
    assert not tel.is_alarm


def test_draft_takes_default_severity():
    assert EventDraft.of("gd-01", "gas.alarm2", 1.0, lel=55).sev is Severity.CRITICAL
    assert EventDraft.of("x", "something.new", 1.0).sev is Severity.INFO


class FakeTime:
    def __init__(self, wall, mono=0.0):
        self.wall, self.mono = wall, mono


@pytest.mark.parametrize(
    ("wall", "probe", "expected"),
    [
        (MIN_PLAUSIBLE_EPOCH_S + 10, True, True),
        (MIN_PLAUSIBLE_EPOCH_S + 10, False, False),
        (MIN_PLAUSIBLE_EPOCH_S + 10, None, True),  # unknown: trust a plausible clock
        (946684800.0, True, False),  # year 2000: a Pi that booted without RTC
        (0.0, None, False),
    ],
)
def test_sync_decision(wall, probe, expected):
    t = FakeTime(wall)
    clock = SyncClock(lambda: t.wall, lambda: probe, monotonic_fn=lambda: t.mono)
    assert clock.is_synchronised() is expected


def test_probe_is_cached_then_rechecked():
    t = FakeTime(MIN_PLAUSIBLE_EPOCH_S + 1)
    answers = [False, True]
    calls = []

    def probe():
        calls.append(1)
        return answers[min(len(calls) - 1, 1)]

    clock = SyncClock(lambda: t.wall, probe, recheck_s=10.0, monotonic_fn=lambda: t.mono)
    assert clock.is_synchronised() is False
    t.mono = 5.0
    assert clock.is_synchronised() is False
    assert len(calls) == 1
    t.mono = 10.0
    assert clock.is_synchronised() is True  # NTP caught up
    assert len(calls) == 2


def test_kernel_probe_answers_a_bool_or_none():
    assert kernel_clock_synchronised() in (True, False, None)


def test_kernel_probe_spawns_no_process_after_the_first(monkeypatch):
    """The daemon probes every SYNC_RECHECK_S for years: libc is looked up once, not per probe
    (``ctypes.util.find_library`` runs ``ldconfig -p``)."""
    import subprocess

    kernel_clock_synchronised()
    spawned = []
    real = subprocess.Popen.__init__

    def counting(self, *args, **kwargs):
        spawned.append(args)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", counting)
    first = kernel_clock_synchronised()
    assert [kernel_clock_synchronised() for _ in range(3)] == [first] * 3
    assert spawned == []
