"""sd_notify over a real unix datagram socket, and the progress tracker behind WATCHDOG=1."""

from __future__ import annotations

import os
import socket

import pytest

from edge_agent.daemon.systemd import Notifier, ProgressTracker, watchdog_interval_s


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    yield str(path), sock
    sock.close()


class TestNotifier:
    def test_ready_and_status_arrive_as_one_datagram(self, notify_socket):
        """READY=1 and STATUS= travel together, newline separated."""
        path, sock = notify_socket
        notifier = Notifier(path)
        assert notifier.ready("3/3 devices online")
        assert sock.recv(4096) == b"READY=1\nSTATUS=3/3 devices online"
        notifier.close()

    def test_abstract_socket_address(self):
        """A leading @ names an abstract socket."""
        name = f"edge-agent-test-{os.getpid()}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind("\0" + name)
        sock.settimeout(2.0)
        try:
            notifier = Notifier("@" + name)
            assert notifier.watchdog()
            assert sock.recv(4096) == b"WATCHDOG=1"
            notifier.close()
        finally:
            sock.close()

    def test_no_socket_is_a_quiet_no_op(self, monkeypatch):
        """Outside systemd nothing is sent and nothing fails."""
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
        notifier = Notifier()
        assert not notifier.enabled
        assert notifier.ready() is False

    def test_a_receiver_that_stops_reading_never_blocks(self, notify_socket):
        """A full receive queue drops notifications instead of blocking the event loop."""
        path, _sock = notify_socket
        notifier = Notifier(path)
        results = [notifier.status("x" * 1000) for _ in range(2000)]
        assert results[0] is True and results[-1] is False
        assert "failed" in (notifier.last_error or "")
        notifier.close()

    def test_vanished_socket_reports_without_raising(self, tmp_path):
        """A socket that went away gives False and a last_error, never an exception."""
        notifier = Notifier(str(tmp_path / "gone.sock"))
        assert notifier.status("x") is False
        assert "gone.sock" in (notifier.last_error or "")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "junk"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
    ],
)
def test_watchdog_interval(env, expected):
    """Half of WATCHDOG_USEC, only for our own pid."""
    assert watchdog_interval_s(env) == expected


class TestProgressTracker:
    def test_fresh_loops_are_healthy(self):
        """A loop counts as fresh when it registers."""
        clock = FakeClock()
        tracker = ProgressTracker(clock)
        tracker.register("bus:water", 10)
        tracker.register("uplink", 30)
        assert tracker.healthy()

    def test_a_loop_that_stops_beating_is_named(self):
        """Only the silent loop is reported, with how long it has been silent."""
        clock = FakeClock()
        tracker = ProgressTracker(clock)
        tracker.register("bus:water", 10)
        tracker.register("uplink", 30)
        clock.t += 8
        tracker.beat("bus:water")
        clock.t += 8
        tracker.beat("bus:water")
        clock.t += 20
        stalled = tracker.stalled()
        assert [s.name for s in stalled] == ["bus:water", "uplink"]
        tracker.beat("bus:water")
        clock.t += 5
        assert [s.name for s in tracker.stalled()] == ["uplink"]
        assert tracker.stalled()[0].silent_s == pytest.approx(41.0)

    def test_unregistered_loop_stops_counting(self):
        """A loop torn down (bus removed on reload) no longer holds the watchdog back."""
        clock = FakeClock()
        tracker = ProgressTracker(clock)
        tracker.register("bus:old", 1)
        clock.t += 5
        assert not tracker.healthy()
        tracker.unregister("bus:old")
        tracker.beat("bus:old")
        assert tracker.healthy()

    def test_deadline_must_be_positive(self):
        with pytest.raises(ValueError, match="deadline"):
            ProgressTracker().register("x", 0)
